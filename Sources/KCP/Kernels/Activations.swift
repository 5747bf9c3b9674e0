import Glibc
import KCPVector

/// The activation family, forward and backward (see `Activation.Kind` for
/// each formula). A backward takes the forward's input `x`, its output `y`
/// and `gradient = dL/dy`, and returns `dL/dx`; at kinks it takes PyTorch's
/// one-sided choice (`relu'(0) = 0`, `hardtanh` zero at the clip bounds).
func activationForward(_ x: Tensor, _ a: Activation) -> Tensor {
    x.data.withUnsafeBufferPointer { xs in
        Tensor(shape: x.shape) { ys in
            parallelChunks(ys.count) { chunk in
                applyActivation(a, xs.baseAddress! + chunk.lowerBound, into: ys.baseAddress! + chunk.lowerBound,
                                count: chunk.count)
            }
        }
    }
}

/// `y[i] = f(x[i])` for `i < count`, `y` the same floats as `x` or others: `activationForward` on one
/// run of floats (the expansion bands apply an activation to their buffer so, `ExpandedDepthwise`).
func applyActivation(_ a: Activation, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    /// The loop compiled for `f`, vectorised where `f` allows. The compiler vectorises it behind a
    /// check that `y` does not overlap `x`, so in place (`y == x`, the expansion bands' ReLU6) it ran
    /// one float at a time: there it goes through runs of 256 floats on the stack, which no other
    /// pointer reaches (MobileNetV2's first expansion in bands 1.69 -> 1.33-1.37 ms).
    @inline(__always)
    func each<F: ElementFunction>(_ f: F) {
        guard UnsafePointer(y) == x else {
            for i in 0..<count { y[i] = f(x[i]) }
            return
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { run in
            var done = 0
            while done < count {
                let n = min(256, count - done), source = x + done
                for k in 0..<n { run[k] = f(source[k]) }
                copyFloats(run.baseAddress!, to: y + done, count: n)
                done += n
            }
        }
    }
    let (alpha, beta) = (a.alpha, a.beta)
    switch a.kind {
    case .relu: each(Relu())
    case .clip: each(Clip(alpha: alpha, beta: beta))
    case .leakyRelu: each(LeakyRelu(alpha: alpha))
    case .sigmoid: exponentialActivation(.sigmoid, x, gradient: nil, into: y, count: count)
    case .tanh: each(Tanh())
    case .silu: exponentialActivation(.silu, x, gradient: nil, into: y, count: count)
    case .gelu: each(Gelu())
    case .geluTanh: each(GeluTanh())
    case .hardswish: each(Hardswish())
    case .hardsigmoid: each(Hardsigmoid(alpha: alpha, beta: beta))
    case .elu: each(Elu(alpha: alpha))
    case .mish: each(Mish())
    case .softplus: each(Softplus(alpha: alpha, beta: beta))
    case .affine: each(Affine(alpha: alpha, beta: beta))
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
    case .silu: return siluBackward(x, gradient)
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

/// SiLU's backward through the vector kernels (`exponentialActivation`), in parallel chunks.
private func siluBackward(_ x: Tensor, _ gradient: Tensor) -> Tensor {
    precondition(gradient.shape == x.shape, "shapes \(x.shape) and \(gradient.shape) differ")
    return x.data.withUnsafeBufferPointer { xs in
        gradient.data.withUnsafeBufferPointer { gs in
            Tensor(shape: x.shape) { ys in
                parallelChunks(ys.count) { chunk in
                    let first = chunk.lowerBound
                    exponentialActivation(.siluGradient, xs.baseAddress! + first, gradient: gs.baseAddress! + first,
                                          into: ys.baseAddress! + first, count: chunk.count)
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
