/// What a network learns and how it is scored.
public enum Task: Sendable, Equatable {
    /// Labels per sample (`targets [S]`), cross-entropy; metric: accuracy.
    case classification
    /// Labels per pixel (`targets [S, H, W]`), cross-entropy skipping
    /// `ignoreLabel`; metric: mean IoU.
    case segmentation(ignoreLabel: Int32?)
    /// Disparities (`targets [S, 1, H, W]`, mask = valid pixels), smooth-L1;
    /// metric: end-point error (lower is better).
    case disparity
    /// Any targets shaped like the output, mean squared error; metric: the same.
    case regression

    /// The loss of `output` against `targets` and its gradient.
    func loss(_ output: Tensor, targets: Tensor, mask: [Bool]?) throws -> Loss {
        switch self {
        case .classification: return try crossEntropy(logits: output, labels: targets.data.map { Int32($0) })
        case let .segmentation(ignore):
            return try crossEntropy(logits: output, labels: targets.data.map { Int32($0) }, ignoreLabel: ignore)
        case .disparity: return try smoothL1(prediction: output, target: targets, mask: mask)
        case .regression: return try meanSquaredError(prediction: output, target: targets, mask: mask)
        }
    }

    /// The task's validation metric of `output`.
    func metric(_ output: Tensor, targets: Tensor, mask: [Bool]?) -> Double {
        switch self {
        case .classification: return accuracy(logits: output, labels: targets.data.map { Int32($0) })
        case let .segmentation(ignore):
            return segmentationScores(logits: output, labels: targets.data.map { Int32($0) }, ignoreLabel: ignore).meanIoU
        case .disparity: return disparityScores(prediction: output, target: targets.data, mask: mask).endPointError
        case .regression:
            return (try? meanSquaredError(prediction: output, target: targets, mask: mask).value) ?? .nan
        }
    }
}

/// When and how much to prune while fine-tuning (soft filter pruning, He et
/// al., IJCAI 2018, with KCP's channel classes).
public struct PruneSchedule: Sendable {
    public var target: PruningTarget
    /// Hard: pruned weights, their gradients and optimizer state stay zero.
    /// Soft: they are zeroed at each re-mask and may regrow in between.
    public var hard: Bool
    /// Masks are recomputed after every `every` epochs.
    public var every: Int
    /// The ratio (or MACs reduction) rises linearly from 0 to the target
    /// over the first `rampEpochs` epochs.
    public var rampEpochs: Int

    public init(target: PruningTarget, hard: Bool = false, every: Int = 1, rampEpochs: Int = 0) {
        (self.target, self.hard, self.every, self.rampEpochs) = (target, hard, every, rampEpochs)
    }

    /// The target in force for masks computed after `epochs` epochs.
    func target(after epochs: Int) -> PruningTarget {
        let fraction = rampEpochs > 0 ? min(1, Double(epochs) / Double(rampEpochs)) : 1
        var ramped = target
        switch target.amount {
        case let .ratio(r): ramped.amount = .ratio(r * fraction)
        case let .macsReduction(goal): ramped.amount = fraction > 0 ? .macsReduction(goal * fraction) : .ratio(0)
        }
        return ramped
    }
}

public struct FineTuneSettings: Sendable {
    public var epochs: Int
    public var batchSize: Int
    public var task: Task
    public var optimizer: Optimizer.Rule
    /// Learning rate per optimizer step.
    public var schedule: Schedule
    public var prune: PruneSchedule?
    public var seed: UInt64
    /// Random flips and shifts of training batches (images and per-pixel
    /// targets alike; never for disparity, where a flip swaps the views).
    public var augmentation: Augmentation

    public init(epochs: Int, batchSize: Int, task: Task, optimizer: Optimizer.Rule = .sgd(momentum: 0.9),
                schedule: Schedule, prune: PruneSchedule? = nil, seed: UInt64 = 0, augmentation: Augmentation = .none)
    {
        (self.epochs, self.batchSize, self.task, self.optimizer) = (epochs, batchSize, task, optimizer)
        (self.schedule, self.prune, self.seed, self.augmentation) = (schedule, prune, seed, augmentation)
    }
}

/// One epoch of a fine-tuning history.
public struct EpochRecord: Sendable, Equatable {
    public var epoch: Int
    /// Mean training loss over the epoch's batches.
    public var loss: Double
    /// The task metric on the validation set (NaN without one).
    public var metric: Double
    /// MACs per sample of the network as pruned after this epoch.
    public var macs: Int
    /// Learning rate of the epoch's last step.
    public var learningRate: Double
}
