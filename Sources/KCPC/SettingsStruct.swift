import KCP

/// The fields of `kcp_finetune_settings` (include/kcp.h), in order, 8 bytes each.
private enum Field: Int, CaseIterable {
    case version, size, epochs, batchSize, seed, task, ignoreLabel, optimizer, momentum, nesterov, weightDecay, beta1,
         beta2, epsilon, learningRate, schedule, stepEvery, stepGamma, minimumRate, warmupSteps, prune,
         pruneAmountKind, pruneAmount, pruneGlobal, pruneMaxRatio, pruneCriterion, pruneCenter, pruneRoundTo,
         pruneEvery, pruneRampEpochs, flip, shift
}

/// `KCP_FINETUNE_SETTINGS_VERSION`.
private let settingsVersion: Int64 = 1

/// A `kcp_finetune_settings`, read field by field.
private struct SettingsStruct {
    let raw: UnsafeRawPointer

    func int(_ field: Field) -> Int { Int(raw.load(fromByteOffset: 8 * field.rawValue, as: Int64.self)) }
    func double(_ field: Field) -> Double { raw.load(fromByteOffset: 8 * field.rawValue, as: Double.self) }
    func flag(_ field: Field) -> Bool { int(field) != 0 }

    /// An `Int32` field (a code or a label), refused if out of range.
    func int32(_ field: Field, _ name: String) throws -> Int32 {
        try Checked.narrow(int(field), to: Int32.self, name, argument: name)
    }
}

extension FineTuneSettings {
    /// Settings from a `kcp_finetune_settings`, for `samples` training samples.
    init(abi: UnsafeRawPointer?, samples: Int) throws {
        guard let abi else { throw KCPError.invalidArgument(argument: "settings", reason: "is NULL") }
        let s = SettingsStruct(raw: abi)
        try require(abi.load(as: Int64.self) == settingsVersion, "settings",
                    "version \(abi.load(as: Int64.self)), the engine reads version \(settingsVersion)")
        try require(s.int(.size) == 8 * Field.allCases.count, "settings",
                    "size \(s.int(.size)), the engine's kcp_finetune_settings has \(8 * Field.allCases.count) bytes")
        let epochs = s.int(.epochs), batchSize = s.int(.batchSize), seed = UInt64(bitPattern: Int64(s.int(.seed)))
        try require(epochs >= 0, "epochs", "must not be negative, got \(epochs)")
        try require(batchSize >= 1, "batch_size", "must be at least 1, got \(batchSize)")
        let task: Task
        switch s.int(.task) {
        case 0: task = .classification
        case 1: task = .segmentation(ignoreLabel: s.int(.ignoreLabel) < 0 ? nil : try s.int32(.ignoreLabel, "ignore_label"))
        case 2: task = .disparity
        case 3: task = .regression
        default: throw KCPError.invalidArgument(argument: "task", reason: "unknown code \(s.int(.task))")
        }
        let optimizer: Optimizer.Rule
        let (momentum, decay) = (Float(s.double(.momentum)), Float(s.double(.weightDecay)))
        switch s.int(.optimizer) {
        case 0: optimizer = .sgd(momentum: momentum, nesterov: s.flag(.nesterov), weightDecay: decay)
        case 1: optimizer = .adamW(beta1: Float(s.double(.beta1)), beta2: Float(s.double(.beta2)),
                                   epsilon: Float(s.double(.epsilon)), weightDecay: decay)
        default: throw KCPError.invalidArgument(argument: "optimizer", reason: "unknown code \(s.int(.optimizer))")
        }
        let rate = s.double(.learningRate)
        try require(rate > 0 && rate.isFinite, "lr", "must be positive, got \(rate)")
        let warmup = s.int(.warmupSteps)
        try require(warmup >= 0, "warmup", "must not be negative, got \(warmup)")
        let steps = try Checked.multiply(epochs, (samples + batchSize - 1) / batchSize, "epochs * steps per epoch",
                                         argument: "epochs")
        let shape: Schedule.Shape
        switch s.int(.schedule) {
        case 0: shape = .constant
        case 1: shape = .step(every: max(s.int(.stepEvery), 1), gamma: s.double(.stepGamma))
        case 2: shape = .cosine(total: max(steps - warmup, 1), minimum: s.double(.minimumRate))
        default: throw KCPError.invalidArgument(argument: "schedule", reason: "unknown code \(s.int(.schedule))")
        }
        var prune: PruneSchedule?
        if s.int(.prune) != 0 {
            try require((1...2).contains(s.int(.prune)), "prune", "unknown mode \(s.int(.prune))")
            let amount: PruningTarget.Amount
            switch s.int(.pruneAmountKind) {
            case 0: amount = .ratio(s.double(.pruneAmount))
            case 1: amount = .macsReduction(s.double(.pruneAmount))
            default: throw KCPError.invalidArgument(argument: "amount_kind", reason: "unknown code \(s.int(.pruneAmountKind))")
            }
            let criterion = try Arguments.criterion(try s.int32(.pruneCriterion, "criterion"),
                                                    center: try s.int32(.pruneCenter, "center"), seed: seed)
            let target = PruningTarget(amount: amount, global: s.flag(.pruneGlobal), maxRatio: s.double(.pruneMaxRatio),
                                       criterion: criterion, roundTo: s.int(.pruneRoundTo), seed: seed)
            prune = PruneSchedule(target: target, hard: s.int(.prune) == 2, every: s.int(.pruneEvery),
                                  rampEpochs: s.int(.pruneRampEpochs))
        }
        self.init(epochs: epochs, batchSize: batchSize, task: task, optimizer: optimizer,
                  schedule: Schedule(base: rate, shape: shape, warmup: warmup), prune: prune, seed: seed,
                  augmentation: Augmentation(flip: s.flag(.flip), shift: s.int(.shift)))
    }
}
