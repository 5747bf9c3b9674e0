/// Native fine-tuning with KCP soft pruning.
///
/// Masks are computed from the current weights before the first step and
/// after every `prune.every` epochs, and the pruned weights (producer
/// filters, batchnorm entries, consumer kernel clusters) are zeroed. In hard
/// mode they and their optimizer state are zeroed again after every step, so
/// they stay at zero. In soft mode (SFP) their optimizer state is kept: a
/// pruned channel's gradients are zero while all its weights are, so its
/// momentum (or Adam moments) is what lets it regrow until the next re-mask.
/// After the last epoch `compacted()` removes the pruned channels from the
/// network and from the optimizer state alike.
public struct FineTuner: Sendable {
    public private(set) var network: Network
    public private(set) var optimizer: Optimizer
    public private(set) var history: [EpochRecord] = []
    public let settings: FineTuneSettings
    let train: Dataset
    let validation: Dataset?
    private var rng: SplitMix64
    private var step = 0
    /// The current pruning decision (nil: nothing pruned).
    public private(set) var plan: NetworkPlan?
    /// Per learnable parameter (ascending index), the entries `plan` zeroes,
    /// whose optimizer state hard mode zeroes: derived once per plan (empty
    /// in soft mode).
    private var prunedEntries: [[Int]] = []

    public init(network: Network, settings: FineTuneSettings, train: Dataset, validation: Dataset? = nil) throws {
        try require(settings.epochs >= 0, "epochs", "must not be negative, got \(settings.epochs)")
        try require(settings.batchSize >= 1, "batch_size", "must be at least 1, got \(settings.batchSize)")
        try require(network.outputs.count == 1, "network", "fine-tuning needs one output, the network has \(network.outputs.count)")
        let output = network.declaredShapes[network.outputs[0]]
        for (name, data) in [("train", train), ("val", validation)] {
            guard let data else { continue }
            try require(data.inputs.count == network.inputs.count, name,
                        "has \(data.inputs.count) input arrays, the network \(network.inputs.count) inputs")
            try settings.task.check(data, output: output, name: name)
        }
        if let prune = settings.prune {
            try require(prune.every >= 1, "every", "must be at least 1, got \(prune.every)")
        }
        try require(settings.augmentation.shift >= 0, "shift", "must not be negative, got \(settings.augmentation.shift)")
        if settings.augmentation != .none {
            try require(network.inputs.allSatisfy { $0.shape.count == 4 }, "augmentation", "needs image inputs [N, C, H, W]")
            switch settings.task {
            case .classification: break
            case let .segmentation(ignore):
                try require(settings.augmentation.shift == 0 || ignore != nil, "shift",
                            "needs an ignore_label for the pixels shifted in")
            case .disparity, .regression:
                throw KCPError.invalidArgument(argument: "augmentation", reason: "is for classification and segmentation")
            }
        }
        (self.network, self.settings, self.train, self.validation) = (network, settings, train, validation)
        optimizer = Optimizer(settings.optimizer)
        rng = SplitMix64(seed: settings.seed)
        try remask(after: 0)
    }

    /// Whether every epoch has run.
    public var finished: Bool { history.count >= settings.epochs }

    /// Runs the next epoch. `onStep(step, steps, loss)` is called after each
    /// batch; returning false stops at the next step boundary: before the
    /// next batch (then this returns nil, the network and optimizer as after
    /// the last completed step), or, after the epoch's last batch, once the
    /// epoch is complete and recorded.
    public mutating func runEpoch(onStep: (Int, Int, Double) -> Bool = { _, _, _ in true }) throws -> EpochRecord? {
        try require(!finished, "epochs", "all \(settings.epochs) epochs have run")
        let epoch = history.count
        var order = Array(0..<train.count)
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        let batches = stride(from: 0, to: order.count, by: settings.batchSize).map {
            Array(order[$0..<min($0 + settings.batchSize, order.count)])
        }
        var total = 0.0, rate = settings.schedule.rate(at: step)
        for (index, indices) in batches.enumerated() {
            let batch = train.batch(indices)
            var (inputs, targets) = (batch.inputs, batch.targets)
            if settings.augmentation != .none {
                let perPixel = settings.task != .classification
                let fill: Float = if case let .segmentation(ignore?) = settings.task { Float(ignore) } else { 0 }
                let augmented = settings.augmentation.apply(inputs, targets: perPixel ? targets : nil, fillLabel: fill,
                                                            rng: &rng)
                inputs = augmented.0
                if let moved = augmented.1 { targets = moved }
            }
            let pass = try network.trainingForward(inputs, training: true)
            let loss = try settings.task.loss(pass.outputs(of: network)[0], targets: targets, mask: batch.mask)
            guard loss.value.isFinite else {
                throw KCPError.numeric("training loss became \(loss.value) at epoch \(epoch + 1), step \(index + 1)")
            }
            let gradients = try network.backward(pass, outputGradients: [loss.gradient])
            rate = settings.schedule.rate(at: step)
            var parameters = network.parameters.map(\.tensor)
            let learnable = network.learnableParameters
            let trainable = parameters.indices.filter { learnable.contains($0) }
            var updated = trainable.map { parameters[$0] }
            try optimizer.update(&updated, gradients: trainable.map { gradients[$0] }, learningRate: Float(rate))
            for (position, index) in trainable.enumerated() { parameters[index] = updated[position] }
            updateRunningStatistics(&parameters, pass)
            for index in parameters.indices { try network.setParameter(index, data: parameters[index].data) }
            if settings.prune?.hard == true { try applyMask() }
            step += 1
            total += loss.value
            if !onStep(index + 1, batches.count, loss.value) && index + 1 < batches.count { return nil }
        }
        if let prune = settings.prune, (epoch + 1) % prune.every == 0 { try remask(after: epoch + 1) }
        let record = EpochRecord(epoch: epoch + 1, loss: total / Double(batches.count), metric: try validate(),
                                 macs: try plan?.after.macs ?? network.cost().macs, learningRate: rate)
        history.append(record)
        return record
    }

    /// The network with the pruned channels removed, and the optimizer with
    /// its state sliced the same way.
    public func compacted() throws -> (network: Network, optimizer: Optimizer) {
        guard let plan else { return (network, optimizer) }
        var sliced = optimizer
        let learnable = network.learnableParameters.sorted()
        func slice(_ moments: [[Float]]) throws -> [[Float]] {
            if moments.isEmpty { return moments }
            var carrier = network
            for (position, index) in learnable.enumerated() { try carrier.setParameter(index, data: moments[position]) }
            let compact = try carrier.compacted(plan.spaces, keepClasses: plan.keep)
            return learnable.map { compact.parameters[$0].tensor.data }
        }
        sliced.firstMoments = try slice(optimizer.firstMoments)
        sliced.secondMoments = try slice(optimizer.secondMoments)
        return (try network.compacted(plan.spaces, keepClasses: plan.keep), sliced)
    }

    /// Everything needed to continue this run exactly: weights, optimizer
    /// state, shuffling state, step, history and masks. Restore it into a
    /// tuner made with the same network, settings and data.
    public func checkpoint() -> [UInt8] {
        var out = ByteWriter()
        out.write(FineTuner.checkpointMagic)
        out.write(step)
        out.write(rng.state)
        out.write(history.count)
        for record in history {
            out.write(record.epoch)
            out.write(record.loss)
            out.write(record.metric)
            out.write(record.macs)
            out.write(record.learningRate)
        }
        out.write(network.parameters.count)
        for parameter in network.parameters { out.write(parameter.tensor.data) }
        out.write(optimizer.step)
        for moments in [optimizer.firstMoments, optimizer.secondMoments] {
            out.write(moments.count)
            for moment in moments { out.write(moment) }
        }
        out.write(plan?.keep ?? [])
        out.write(plan?.ratio ?? 0)
        return out.bytes
    }

    /// Continues from `checkpoint`; on any mismatch throws and changes nothing.
    public mutating func restore(_ checkpoint: [UInt8]) throws {
        var input = ByteReader(checkpoint)
        try require(try input.uint64() == FineTuner.checkpointMagic, "checkpoint", "is not a kcp fine-tuning checkpoint")
        var restored = self
        restored.step = try input.int()
        restored.rng = SplitMix64(seed: try input.uint64())
        restored.history = try (0..<input.count(itemBytes: 40)).map { _ in
            EpochRecord(epoch: try input.int(), loss: try input.double(), metric: try input.double(),
                        macs: try input.int(), learningRate: try input.double())
        }
        try require(try input.int() == network.parameters.count, "checkpoint", "was made for another network")
        for index in network.parameters.indices {
            let data = try input.floats()
            try require(data.count == network.parameters[index].tensor.count, "checkpoint", "was made for another network")
            try restored.network.setParameter(index, data: data)
        }
        restored.optimizer.step = try input.int()
        let moments = try (0..<2).map { _ in try (0..<input.count(itemBytes: 8)).map { _ in try input.floats() } }
        let sizes = network.learnableParameters.sorted().map { network.parameters[$0].tensor.count }
        let isAdam = { if case .adamW = settings.optimizer { return true } else { return false } }()
        try require(moments[0].isEmpty || moments[0].map(\.count) == sizes, "checkpoint", "was made for another network")
        try require(moments[1].isEmpty ? !isAdam || moments[0].isEmpty : isAdam && moments[1].map(\.count) == sizes,
                    "checkpoint", "was made with another optimizer")
        (restored.optimizer.firstMoments, restored.optimizer.secondMoments) = (moments[0], moments[1])
        let keep = try input.bools(), ratio = try input.double()
        try restored.adopt(keep.isEmpty ? nil : try NetworkPlan(network: restored.network, keep: keep, ratio: ratio))
        try require(input.atEnd && restored.history.count <= settings.epochs, "checkpoint",
                    "does not match these settings")
        self = restored
    }

    static let checkpointMagic: UInt64 = 0x4B43_5046_5431_0001 // "KCPFT1", version 1

    /// Recomputes the masks for the target in force after `epochs` epochs and
    /// zeroes what they prune.
    private mutating func remask(after epochs: Int) throws {
        guard let prune = settings.prune else { return }
        try adopt(try NetworkPlan(network: network, target: prune.target(after: epochs)))
        try applyMask()
    }

    /// Makes `plan` the current one, with the entries it zeroes.
    private mutating func adopt(_ plan: NetworkPlan?) throws {
        self.plan = plan
        prunedEntries = settings.prune?.hard == true ? try plan.map(network.prunedEntries) ?? [] : []
    }

    /// Zeroes the pruned weights, and in hard mode their optimizer state.
    private mutating func applyMask() throws {
        guard let plan else { return }
        network = try network.masked(plan.spaces, keepClasses: plan.keep)
        if optimizer.firstMoments.isEmpty { return }
        for (position, entries) in prunedEntries.enumerated() {
            for k in entries {
                optimizer.firstMoments[position][k] = 0
                if !optimizer.secondMoments.isEmpty { optimizer.secondMoments[position][k] = 0 }
            }
        }
    }

    /// Batchnorm running averages, as PyTorch: `r = 0.9 r + 0.1 s`, with the
    /// unbiased batch variance `v * m / (m - 1)` (`m` values per channel).
    private func updateRunningStatistics(_ parameters: inout [Tensor], _ pass: TrainingPass) {
        for (index, (mean, variance)) in pass.batchStatistics {
            let node = network.nodes[index]
            let x = pass.values[node.inputs[0]]
            let m = Float(x.count / x.shape[1])
            for c in mean.indices {
                parameters[node.parameters[2]].data[c] = 0.9 * parameters[node.parameters[2]].data[c] + 0.1 * mean[c]
                parameters[node.parameters[3]].data[c] = 0.9 * parameters[node.parameters[3]].data[c]
                    + 0.1 * variance[c] * m / max(m - 1, 1)
            }
        }
    }

    /// The task metric on the validation set, in batches, batchnorm in eval mode.
    private func validate() throws -> Double {
        guard let validation else { return .nan }
        var outputs: [Float] = []
        var shape: [Int] = []
        for start in stride(from: 0, to: validation.count, by: settings.batchSize) {
            let batch = validation.batch(Array(start..<min(start + settings.batchSize, validation.count)))
            let output = try network.forward(batch.inputs)[0]
            outputs += output.data
            shape = output.shape
        }
        shape[0] = validation.count
        return settings.task.metric(Tensor(shape: shape, data: outputs), targets: validation.targets, mask: validation.mask)
    }
}

extension Network {
    /// Per learnable parameter (ascending index), the entries that masking
    /// with `plan` zeroes.
    fileprivate func prunedEntries(_ plan: NetworkPlan) throws -> [[Int]] {
        var ones = self
        for index in ones.parameters.indices {
            try ones.setParameter(index, data: [Float](repeating: 1, count: ones.parameters[index].tensor.count))
        }
        let masks = try ones.masked(plan.spaces, keepClasses: plan.keep).parameters
        return learnableParameters.sorted().map { index in
            masks[index].tensor.data.indices.filter { masks[index].tensor.data[$0] == 0 }
        }
    }
}
