/// First-order optimizers over a list of parameter tensors, with PyTorch's
/// update rules so that runs can be compared step for step.
public struct Optimizer: Sendable {
    public enum Rule: Sendable, Equatable {
        /// SGD with momentum `mu`, dampening 0 and L2 weight decay `lambda`
        /// (PyTorch `torch.optim.SGD`): `g = grad + lambda p`;
        /// `b = g` on the first step, else `b = mu b + g`; the step direction
        /// is `g + mu b` with Nesterov, else `b`; `p -= lr * direction`.
        /// Plain SGD is `momentum: 0`.
        case sgd(momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0)
        /// AdamW (Loshchilov & Hutter, ICLR 2019; PyTorch `torch.optim.AdamW`):
        /// `p *= 1 - lr lambda`; `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`;
        /// `p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
        case adamW(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01)
    }

    public let rule: Rule
    /// Steps taken so far.
    public internal(set) var step = 0
    /// Per parameter: the momentum buffer (SGD) or the first moment (AdamW);
    /// empty until the first step.
    public internal(set) var firstMoments: [[Float]] = []
    /// Per parameter: the second moment (AdamW only).
    public internal(set) var secondMoments: [[Float]] = []

    public init(_ rule: Rule) { self.rule = rule }

    /// Updates `parameters` in place from their `gradients` at `learningRate`.
    public mutating func update(_ parameters: inout [Tensor], gradients: [Tensor], learningRate: Float) throws {
        try require(gradients.count == parameters.count, "gradients",
                    "has \(gradients.count) tensors for \(parameters.count) parameters")
        for (p, g) in zip(parameters, gradients) {
            try require(p.shape == g.shape, "gradients", "shape \(g.shape) does not match parameter \(p.shape)")
        }
        if firstMoments.isEmpty {
            firstMoments = parameters.map { [Float](repeating: 0, count: $0.count) }
            if case .adamW = rule { secondMoments = firstMoments }
        }
        step += 1
        for index in parameters.indices {
            apply(&parameters[index].data, gradients[index].data, index, learningRate)
        }
    }

    private mutating func apply(_ p: inout [Float], _ grad: [Float], _ index: Int, _ lr: Float) {
        switch rule {
        case let .sgd(momentum, nesterov, weightDecay):
            for k in p.indices {
                let g = grad[k] + weightDecay * p[k]
                var direction = g
                if momentum != 0 {
                    let buffer = step == 1 ? g : momentum * firstMoments[index][k] + g
                    firstMoments[index][k] = buffer
                    direction = nesterov ? g + momentum * buffer : buffer
                }
                p[k] -= lr * direction
            }
        case let .adamW(beta1, beta2, epsilon, weightDecay):
            let correction1 = 1 - pow(beta1, step), correction2 = 1 - pow(beta2, step)
            for k in p.indices {
                p[k] *= 1 - lr * weightDecay
                let m = beta1 * firstMoments[index][k] + (1 - beta1) * grad[k]
                let v = beta2 * secondMoments[index][k] + (1 - beta2) * grad[k] * grad[k]
                (firstMoments[index][k], secondMoments[index][k]) = (m, v)
                p[k] -= lr * (m / correction1) / ((v / correction2).squareRoot() + epsilon)
            }
        }
    }
}

/// `base^exponent` for a positive integer exponent, by squaring.
private func pow(_ base: Float, _ exponent: Int) -> Float {
    var (result, factor, n) = (Float(1), base, exponent)
    while n > 0 {
        if n & 1 == 1 { result *= factor }
        factor *= factor
        n >>= 1
    }
    return result
}
