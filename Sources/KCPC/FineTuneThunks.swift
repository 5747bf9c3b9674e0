import KCP

// The fine-tuning part of include/kcp.h.

/// The object behind a `kcp_finetune *`.
final class FineTuneHandle {
    var tuner: FineTuner

    init(_ tuner: FineTuner) { self.tuner = tuner }

    static func from(_ pointer: OpaquePointer?) throws -> FineTuneHandle {
        guard let pointer else { throw KCPError.invalidArgument(argument: "finetune", reason: "is NULL") }
        return Unmanaged<FineTuneHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}

/// `KCP_FT_SETTINGS_COUNT`.
private let settingsLength = 30

/// Settings from the `KCP_FT_*` array, for `samples` training samples.
private func fineTuneSettings(_ s: [Double], samples: Int) throws -> FineTuneSettings {
    func integer(_ i: Int, _ name: String) throws -> Int {
        guard s[i].isFinite, s[i] == s[i].rounded(), abs(s[i]) < 1e15 else {
            throw KCPError.invalidArgument(argument: name, reason: "must be an integer, got \(s[i])")
        }
        return Int(s[i])
    }
    let epochs = try integer(0, "epochs"), batchSize = try integer(1, "batch_size")
    let seed = UInt64(max(try integer(2, "seed"), 0))
    let task: Task
    switch try integer(3, "task") {
    case 0: task = .classification
    case 1: task = .segmentation(ignoreLabel: s[4] < 0 ? nil : Int32(try integer(4, "ignore_label")))
    case 2: task = .disparity
    case 3: task = .regression
    default: throw KCPError.invalidArgument(argument: "task", reason: "unknown code \(s[3])")
    }
    let optimizer: Optimizer.Rule
    switch try integer(5, "optimizer") {
    case 0: optimizer = .sgd(momentum: Float(s[6]), nesterov: s[7] != 0, weightDecay: Float(s[8]))
    case 1: optimizer = .adamW(beta1: Float(s[9]), beta2: Float(s[10]), epsilon: Float(s[11]), weightDecay: Float(s[8]))
    default: throw KCPError.invalidArgument(argument: "optimizer", reason: "unknown code \(s[5])")
    }
    try require(s[12] > 0 && s[12].isFinite, "lr", "must be positive, got \(s[12])")
    let warmup = try integer(17, "warmup")
    let steps = epochs * ((samples + max(batchSize, 1) - 1) / max(batchSize, 1))
    let shape: Schedule.Shape
    switch try integer(13, "schedule") {
    case 0: shape = .constant
    case 1: shape = .step(every: max(try integer(14, "step_every"), 1), gamma: s[15])
    case 2: shape = .cosine(total: max(steps - warmup, 1), minimum: s[16])
    default: throw KCPError.invalidArgument(argument: "schedule", reason: "unknown code \(s[13])")
    }
    var prune: PruneSchedule?
    let pruneMode = try integer(18, "prune")
    if pruneMode != 0 {
        let amount: PruningTarget.Amount = try integer(19, "amount_kind") == 0 ? .ratio(s[20]) : .macsReduction(s[20])
        let target = PruningTarget(amount: amount, global: s[21] != 0, maxRatio: s[22],
                                   criterion: try Arguments.criterion(Int32(try integer(23, "criterion")),
                                                                      center: Int32(try integer(24, "center")), seed: seed),
                                   roundTo: try integer(25, "round_to"), seed: seed)
        prune = PruneSchedule(target: target, hard: pruneMode == 2, every: try integer(26, "every"),
                              rampEpochs: try integer(27, "ramp_epochs"))
    }
    return FineTuneSettings(epochs: epochs, batchSize: batchSize, task: task, optimizer: optimizer,
                            schedule: Schedule(base: s[12], shape: shape, warmup: warmup), prune: prune, seed: seed,
                            augmentation: Augmentation(flip: s[28] != 0, shift: try integer(29, "shift")))
}

/// A dataset from the caller's arrays: inputs shaped like the network's with
/// `samples` first, targets of `targetShape` with `samples` first.
private func dataset(_ net: Network, _ inputs: UnsafePointer<UnsafePointer<Float>?>?, samples: Int, targetShape: [Int],
                     _ targets: UnsafePointer<Float>?, _ mask: UnsafePointer<UInt8>?, _ name: String) throws -> Dataset
{
    try require(samples >= 1, name, "needs at least one sample")
    let pointers = try Arguments.buffer(inputs, net.inputs.count, name)
    let tensors = try net.inputs.enumerated().map { position, input in
        let shape = [samples] + input.shape.dropFirst()
        return Tensor(shape: shape, data: Array(try Arguments.buffer(pointers[position], shape.reduce(1, *), name)))
    }
    let shape = [samples] + targetShape.dropFirst()
    let count = try SliceShape(shape).count
    let values = Array(try Arguments.buffer(targets, count, "\(name) targets"))
    try require(values.allSatisfy(\.isFinite), "\(name) targets", "must be finite")
    let valid = mask.map { m in (0..<count).map { m[$0] != 0 } }
    return try Dataset(inputs: tensors, targets: Tensor(shape: shape, data: values), mask: valid)
}

@_cdecl("kcp_finetune_create")
public func kcp_finetune_create(_ network: OpaquePointer?, _ settings: UnsafePointer<Double>?, _ settingsCount: Int32,
                                _ inputs: UnsafePointer<UnsafePointer<Float>?>?, _ targetShape: UnsafePointer<Int64>?,
                                _ targetNdim: Int32, _ targets: UnsafePointer<Float>?, _ mask: UnsafePointer<UInt8>?,
                                _ valInputs: UnsafePointer<UnsafePointer<Float>?>?, _ valSamples: Int64,
                                _ valTargets: UnsafePointer<Float>?, _ valMask: UnsafePointer<UInt8>?,
                                _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32
{
    boundary {
        let net = try NetworkHandle.from(network).network
        try require(settingsCount == settingsLength, "settings", "expected \(settingsLength) entries, got \(settingsCount)")
        let shape = try Arguments.shape(targetShape, targetNdim)
        let train = try dataset(net, inputs, samples: shape[0], targetShape: shape, targets, mask, "train")
        let validation = valSamples > 0
            ? try dataset(net, valInputs, samples: Int(valSamples), targetShape: shape, valTargets, valMask, "val") : nil
        let tuner = try FineTuner(network: net, settings: fineTuneSettings(Array(Arguments.buffer(settings, settingsLength, "settings")),
                                                                          samples: shape[0]),
                                  train: train, validation: validation)
        try Arguments.output(out, "out").pointee = OpaquePointer(Unmanaged.passRetained(FineTuneHandle(tuner)).toOpaque())
    }
}

@_cdecl("kcp_finetune_destroy")
public func kcp_finetune_destroy(_ finetune: OpaquePointer?) {
    guard let finetune else { return }
    Unmanaged<FineTuneHandle>.fromOpaque(UnsafeRawPointer(finetune)).release()
}

@_cdecl("kcp_finetune_run_epoch")
public func kcp_finetune_run_epoch(_ finetune: OpaquePointer?,
                                   _ progress: ProgressCallback?, _ context: UnsafeMutableRawPointer?,
                                   _ record: UnsafeMutablePointer<Double>?, _ stopped: UnsafeMutablePointer<Int32>?) -> Int32
{
    boundary {
        let handle = try FineTuneHandle.from(finetune)
        let recordOut = try Arguments.output(record, "record"), stoppedOut = try Arguments.output(stopped, "stopped")
        let result = try handle.tuner.runEpoch(onStep: throttled(progress, context))
        stoppedOut.pointee = result == nil ? 1 : 0
        if let result { recordOut.store(values(result)) { $0 } }
    }
}

/// An epoch record as the `KCP_FT_RECORD_*` doubles.
private func values(_ record: EpochRecord) -> [Double] {
    [Double(record.epoch), record.loss, record.metric, Double(record.macs), record.learningRate]
}

@_cdecl("kcp_finetune_history")
public func kcp_finetune_history(_ finetune: OpaquePointer?, _ records: UnsafeMutablePointer<Double>?, _ capacity: Int64,
                                 _ count: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let history = try FineTuneHandle.from(finetune).tuner.history
        try Arguments.output(count, "count").pointee = Int64(history.count)
        if let records, capacity >= Int64(history.count * 5) { records.store(history.flatMap(values)) { $0 } }
    }
}

@_cdecl("kcp_finetune_network")
public func kcp_finetune_network(_ finetune: OpaquePointer?, _ mode: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?)
    -> Int32
{
    boundary {
        let tuner = try FineTuneHandle.from(finetune).tuner
        let network: Network
        switch mode {
        case 0: network = tuner.network
        case 1: network = try tuner.compacted().network
        default: throw KCPError.invalidArgument(argument: "mode", reason: "unknown code \(mode)")
        }
        try Arguments.output(out, "out").pointee = NetworkHandle.retained(network)
    }
}

@_cdecl("kcp_finetune_checkpoint")
public func kcp_finetune_checkpoint(_ finetune: OpaquePointer?, _ buffer: UnsafeMutablePointer<UInt8>?, _ capacity: Int64,
                                    _ size: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let bytes = try FineTuneHandle.from(finetune).tuner.checkpoint()
        try Arguments.output(size, "size").pointee = Int64(bytes.count)
        if let buffer, capacity >= Int64(bytes.count) { buffer.update(from: bytes, count: bytes.count) }
    }
}

@_cdecl("kcp_finetune_restore")
public func kcp_finetune_restore(_ finetune: OpaquePointer?, _ checkpoint: UnsafePointer<UInt8>?, _ size: Int64) -> Int32 {
    boundary {
        let handle = try FineTuneHandle.from(finetune)
        try handle.tuner.restore(Array(try Arguments.buffer(checkpoint, Int(max(size, 0)), "checkpoint")))
    }
}
