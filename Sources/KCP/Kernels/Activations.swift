import Glibc
import KCPVector

/// The activation family, forward and backward (see `Activation.Kind` for
/// each formula). A backward takes the forward's input `x`, its output `y`
/// and `gradient = dL/dy`, and returns `dL/dx`; at kinks it takes PyTorch's
/// one-sided choice (`relu'(0) = 0`, `hardtanh` zero at the clip bounds).
func activationForward(_ x: Tensor, _ a: Activation) -> Tensor {
    let (alpha, beta) = (a.alpha, a.beta)
    switch a.kind {
    case .relu: return map(x, Relu())
    case .clip: return map(x, Clip(alpha: alpha, beta: beta))
    case .leakyRelu: return map(x, LeakyRelu(alpha: alpha))
    case .sigmoid: return exponentialMap(x, nil, .sigmoid)
    case .tanh: return map(x, Tanh())
    case .silu: return exponentialMap(x, nil, .silu)
    case .gelu: return map(x, Gelu())
    case .geluTanh: return map(x, GeluTanh())
    case .hardswish: return map(x, Hardswish())
    case .hardsigmoid: return map(x, Hardsigmoid(alpha: alpha, beta: beta))
    case .elu: return map(x, Elu(alpha: alpha))
    case .mish: return map(x, Mish())
    case .softplus: return map(x, Softplus(alpha: alpha, beta: beta))
    case .affine: return map(x, Affine(alpha: alpha, beta: beta))
    }
}

func activationBackward(_ x: Tensor, _ a: Activation, output y: Tensor, gradient: Tensor) -> Tensor {
    let (alpha, beta) = (a.alpha, a.beta)
    switch a.kind {
    case .relu: return combine(x, gradient, ReluGradient())
    case .clip: return combine(x, gradient, ClipGradient(alpha: alpha, beta: beta))
    case .leakyRelu: return combine(x, gradient, LeakyReluGradient(alpha: alpha))
    case .sigmoid: return combine(y, gradient, SigmoidGradient())
    case .tanh: return combine(y, gradient, TanhGradient())
    case .silu: return exponentialMap(x, gradient, .siluGradient)
    case .gelu: return combine(x, gradient, GeluGradient())
    case .geluTanh: return combine(x, gradient, GeluTanhGradient())
    case .hardswish: return combine(x, gradient, HardswishGradient())
    case .hardsigmoid: return combine(x, gradient, HardsigmoidGradient(alpha: alpha, beta: beta))
    case .elu: return combine(x, gradient, EluGradient(alpha: alpha))
    case .mish: return combine(x, gradient, MishGradient())
    case .softplus: return combine(x, gradient, SoftplusGradient(alpha: alpha, beta: beta))
    case .affine: return map(gradient, Scale(alpha: alpha))
    }
}

// MARK: - The activations, `y = f(x)`

private struct Relu: ElementFunction { func callAsFunction(_ x: Float) -> Float { Swift.max(x, 0) } }
private struct Clip: ElementFunction {
    let alpha: Float, beta: Float
    func callAsFunction(_ x: Float) -> Float { Swift.min(Swift.max(x, alpha), beta) }
}
private struct LeakyRelu: ElementFunction {
    let alpha: Float
    func callAsFunction(_ x: Float) -> Float { x >= 0 ? x : alpha * x }
}
private struct Tanh: ElementFunction { func callAsFunction(_ x: Float) -> Float { tanhf(x) } }
private struct Gelu: ElementFunction {
    func callAsFunction(_ x: Float) -> Float { 0.5 * x * (1 + erff(x * Float(0.5.squareRoot()))) }
}
private struct GeluTanh: ElementFunction { func callAsFunction(_ x: Float) -> Float { 0.5 * x * (1 + tanhf(geluTanhInner(x))) } }
private struct Hardswish: ElementFunction { func callAsFunction(_ x: Float) -> Float { x * Swift.min(Swift.max(x / 6 + 0.5, 0), 1) } }
private struct Hardsigmoid: ElementFunction {
    let alpha: Float, beta: Float
    func callAsFunction(_ x: Float) -> Float { Swift.min(Swift.max(alpha * x + beta, 0), 1) }
}
private struct Elu: ElementFunction {
    let alpha: Float
    func callAsFunction(_ x: Float) -> Float { x > 0 ? x : alpha * (expf(x) - 1) }
}
private struct Mish: ElementFunction { func callAsFunction(_ x: Float) -> Float { x * tanhf(softplus(x)) } }
private struct Softplus: ElementFunction {
    let alpha: Float, beta: Float
    func callAsFunction(_ x: Float) -> Float { alpha * x > beta ? x : softplus(alpha * x) / alpha }
}
private struct Affine: ElementFunction {
    let alpha: Float, beta: Float
    func callAsFunction(_ x: Float) -> Float { alpha * x + beta }
}
/// The affine's backward: `alpha * g`.
private struct Scale: ElementFunction {
    let alpha: Float
    func callAsFunction(_ g: Float) -> Float { alpha * g }
}

// MARK: - Their backwards, `dL/dx` from `x` (or `y` for sigmoid and tanh) and `g = dL/dy`

private struct ReluGradient: ElementPairFunction { func callAsFunction(_ x: Float, _ g: Float) -> Float { x > 0 ? g : 0 } }
private struct ClipGradient: ElementPairFunction {
    let alpha: Float, beta: Float
    func callAsFunction(_ x: Float, _ g: Float) -> Float { x > alpha && x < beta ? g : 0 }
}
private struct LeakyReluGradient: ElementPairFunction {
    let alpha: Float
    func callAsFunction(_ x: Float, _ g: Float) -> Float { x > 0 ? g : alpha * g }
}
private struct SigmoidGradient: ElementPairFunction { func callAsFunction(_ y: Float, _ g: Float) -> Float { g * y * (1 - y) } }
private struct TanhGradient: ElementPairFunction { func callAsFunction(_ y: Float, _ g: Float) -> Float { g * (1 - y * y) } }
private struct GeluGradient: ElementPairFunction {
    func callAsFunction(_ x: Float, _ g: Float) -> Float {
        let cdf = 0.5 * (1 + erff(x * Float(0.5.squareRoot())))
        let pdf = expf(-0.5 * x * x) / Float((2 * Double.pi).squareRoot())
        return g * (cdf + x * pdf)
    }
}
private struct GeluTanhGradient: ElementPairFunction {
    func callAsFunction(_ x: Float, _ g: Float) -> Float {
        let t = tanhf(geluTanhInner(x))
        let inner = Float((2 / Double.pi).squareRoot()) * (1 + 3 * 0.044715 * x * x)
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner)
    }
}
private struct HardswishGradient: ElementPairFunction {
    func callAsFunction(_ x: Float, _ g: Float) -> Float { x < -3 ? 0 : x <= 3 ? g * (x / 3 + 0.5) : g }
}
private struct HardsigmoidGradient: ElementPairFunction {
    let alpha: Float, beta: Float
    func callAsFunction(_ x: Float, _ g: Float) -> Float {
        let u = alpha * x + beta
        return u > 0 && u < 1 ? g * alpha : 0
    }
}
private struct EluGradient: ElementPairFunction {
    let alpha: Float
    func callAsFunction(_ x: Float, _ g: Float) -> Float { x > 0 ? g : g * alpha * expf(x) }
}
private struct MishGradient: ElementPairFunction {
    func callAsFunction(_ x: Float, _ g: Float) -> Float {
        let t = tanhf(softplus(x))
        return g * (t + x * sigmoid(x) * (1 - t * t))
    }
}
private struct SoftplusGradient: ElementPairFunction {
    let alpha: Float, beta: Float
    func callAsFunction(_ x: Float, _ g: Float) -> Float { alpha * x > beta ? g : g * sigmoid(alpha * x) }
}

/// `f` of `x` (and `gradient`) through the vector kernels (`exponentialActivation`), in parallel chunks.
private func exponentialMap(_ x: Tensor, _ gradient: Tensor?, _ f: ExponentialActivation) -> Tensor {
    precondition(gradient.map { $0.shape == x.shape } ?? true, "shapes \(x.shape) and \(gradient!.shape) differ")
    return x.data.withUnsafeBufferPointer { xs in
        withOptionalBuffer(gradient?.data) { g in
            Tensor(shape: x.shape) { ys in
                parallelChunks(ys.count) { chunk in
                    exponentialActivation(f, xs.baseAddress! + chunk.lowerBound, gradient: g.map { $0 + chunk.lowerBound },
                                          into: ys.baseAddress! + chunk.lowerBound, count: chunk.count)
                }
            }
        }
    }
}

/// The sigmoid of one float, as the sigmoid activation computes it.
private func sigmoid(_ x: Float) -> Float {
    var (x, y) = (x, Float(0))
    exponentialActivation(.sigmoid, &x, gradient: nil, into: &y, count: 1)
    return y
}

/// `log(1 + exp(x))` without overflow.
@inline(__always) private func softplus(_ x: Float) -> Float { x > 20 ? x : log1pf(expf(x)) }

@inline(__always) private func geluTanhInner(_ x: Float) -> Float {
    Float((2 / Double.pi).squareRoot()) * (x + 0.044715 * x * x * x)
}
