import Glibc

/// The activation family, forward and backward (see `Activation.Kind` for
/// each formula). A backward takes the forward's input `x`, its output `y`
/// and `gradient = dL/dy`, and returns `dL/dx`; at kinks it takes PyTorch's
/// one-sided choice (`relu'(0) = 0`, `hardtanh` zero at the clip bounds).
func activationForward(_ x: Tensor, _ a: Activation) -> Tensor {
    let (alpha, beta) = (a.alpha, a.beta)
    switch a.kind {
    case .relu: return map(x) { Swift.max($0, 0) }
    case .clip: return map(x) { Swift.min(Swift.max($0, alpha), beta) }
    case .leakyRelu: return map(x) { $0 >= 0 ? $0 : alpha * $0 }
    case .sigmoid: return map(x) { sigmoid($0) }
    case .tanh: return map(x) { tanhf($0) }
    case .silu: return map(x) { $0 * sigmoid($0) }
    case .gelu: return map(x) { 0.5 * $0 * (1 + erff($0 * Float(0.5.squareRoot()))) }
    case .geluTanh: return map(x) { 0.5 * $0 * (1 + tanhf(geluTanhInner($0))) }
    case .hardswish: return map(x) { $0 * Swift.min(Swift.max($0 / 6 + 0.5, 0), 1) }
    case .hardsigmoid: return map(x) { Swift.min(Swift.max(alpha * $0 + beta, 0), 1) }
    case .elu: return map(x) { $0 > 0 ? $0 : alpha * (expf($0) - 1) }
    case .mish: return map(x) { $0 * tanhf(softplus($0)) }
    case .softplus: return map(x) { alpha * $0 > beta ? $0 : softplus(alpha * $0) / alpha }
    case .affine: return map(x) { alpha * $0 + beta }
    }
}

func activationBackward(_ x: Tensor, _ a: Activation, output y: Tensor, gradient: Tensor) -> Tensor {
    let (alpha, beta) = (a.alpha, a.beta)
    switch a.kind {
    case .relu: return combine(x, gradient) { $0 > 0 ? $1 : 0 }
    case .clip: return combine(x, gradient) { $0 > alpha && $0 < beta ? $1 : 0 }
    case .leakyRelu: return combine(x, gradient) { $0 > 0 ? $1 : alpha * $1 }
    case .sigmoid: return combine(y, gradient) { $1 * $0 * (1 - $0) }
    case .tanh: return combine(y, gradient) { $1 * (1 - $0 * $0) }
    case .silu:
        return combine(x, gradient) { x, g in
            let s = sigmoid(x)
            return g * s * (1 + x * (1 - s))
        }
    case .gelu:
        return combine(x, gradient) { x, g in
            let cdf = 0.5 * (1 + erff(x * Float(0.5.squareRoot())))
            let pdf = expf(-0.5 * x * x) / Float((2 * Double.pi).squareRoot())
            return g * (cdf + x * pdf)
        }
    case .geluTanh:
        return combine(x, gradient) { x, g in
            let t = tanhf(geluTanhInner(x))
            let inner = Float((2 / Double.pi).squareRoot()) * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner)
        }
    case .hardswish: return combine(x, gradient) { $0 < -3 ? 0 : $0 <= 3 ? $1 * ($0 / 3 + 0.5) : $1 }
    case .hardsigmoid:
        return combine(x, gradient) { x, g in
            let u = alpha * x + beta
            return u > 0 && u < 1 ? g * alpha : 0
        }
    case .elu: return combine(x, gradient) { $0 > 0 ? $1 : $1 * alpha * expf($0) }
    case .mish:
        return combine(x, gradient) { x, g in
            let t = tanhf(softplus(x))
            return g * (t + x * sigmoid(x) * (1 - t * t))
        }
    case .softplus:
        return combine(x, gradient) { x, g in alpha * x > beta ? g : g * sigmoid(alpha * x) }
    case .affine: return map(gradient) { alpha * $0 }
    }
}

@inline(__always) private func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

/// `log(1 + exp(x))` without overflow.
@inline(__always) private func softplus(_ x: Float) -> Float { x > 20 ? x : log1pf(expf(x)) }

@inline(__always) private func geluTanhInner(_ x: Float) -> Float {
    Float((2 / Double.pi).squareRoot()) * (x + 0.044715 * x * x * x)
}
