import Glibc

/// A learning rate as a function of the optimizer step.
///
/// An optional linear warm-up raises the rate from `base / warmup` to `base`
/// over the first `warmup` steps (Goyal et al., "Accurate, Large Minibatch
/// SGD", 2017); after it the shape applies to the remaining steps.
public struct Schedule: Sendable, Equatable {
    public enum Shape: Sendable, Equatable {
        case constant
        /// `base * gamma^floor(t / every)` (PyTorch `StepLR`).
        case step(every: Int, gamma: Double)
        /// `minimum + (base - minimum) (1 + cos(pi t / total)) / 2` over
        /// `total` steps (Loshchilov & Hutter, SGDR, ICLR 2017; PyTorch
        /// `CosineAnnealingLR`).
        case cosine(total: Int, minimum: Double = 0)
    }

    public var base: Double
    public var shape: Shape
    public var warmup: Int

    public init(base: Double, shape: Shape = .constant, warmup: Int = 0) {
        (self.base, self.shape, self.warmup) = (base, shape, warmup)
    }

    /// The rate for step `t` (0-based).
    public func rate(at t: Int) -> Double {
        if t < warmup { return base * Double(t + 1) / Double(warmup) }
        let s = t - warmup
        switch shape {
        case .constant:
            return base
        case let .step(every, gamma):
            return base * Glibc.pow(gamma, Double(s / max(every, 1)))
        case let .cosine(total, minimum):
            let progress = Double(min(s, total)) / Double(max(total, 1))
            return minimum + (base - minimum) * (1 + cos(Double.pi * progress)) / 2
        }
    }
}
