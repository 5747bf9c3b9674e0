import KCP

// The fine-tuning part of include/kcp.h.

/// The object behind a `kcp_finetune *`: a run that serves one call at a
/// time; a concurrent or re-entrant call is refused (`HandleLock.exclusive`).
final class FineTuneHandle {
    private var tuner: FineTuner
    private let lock = HandleLock()

    init(_ tuner: FineTuner) { self.tuner = tuner }

    /// Runs `body` on the run, alone.
    func using<R>(_ body: (inout FineTuner) throws -> R) throws -> R {
        try lock.exclusive("finetune") { try body(&tuner) }
    }

    static func from(_ pointer: OpaquePointer?) throws -> FineTuneHandle {
        guard let pointer else { throw KCPError.invalidArgument(argument: "finetune", reason: "is NULL") }
        return Unmanaged<FineTuneHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}

/// A `kcp_samples` of include/kcp.h as a dataset for `net`: inputs shaped
/// like the network's with the targets' sample count first.
private func dataset(_ net: Network, _ samples: UnsafeRawPointer, _ name: String) throws -> Dataset {
    let targetShape = samples.load(fromByteOffset: 8, as: UnsafePointer<Int64>?.self)
    let ndim = samples.load(fromByteOffset: 16, as: Int64.self)
    let targets = samples.load(fromByteOffset: 24, as: UnsafePointer<Float>?.self)
    let mask = samples.load(fromByteOffset: 32, as: UnsafePointer<UInt8>?.self)
    try require((1...8).contains(ndim), "\(name) targets", "has \(ndim) dimensions, expected 1 to 8")
    let shape = try Arguments.buffer(targetShape, Int(ndim), "\(name) targets").map { Int($0) }
    try require(shape.allSatisfy { $0 >= 1 }, "\(name) targets", "needs positive dimensions, got \(shape)")
    let count = try Checked.product(shape, "target elements", argument: "\(name) targets")
    let inputs = try SizedArrays(samples.load(as: UnsafeRawPointer?.self), name)
        .tensors(net.inputs.map { [shape[0]] + $0.shape.dropFirst() })
    let values = Array(try Arguments.buffer(targets, count, "\(name) targets"))
    return try Dataset(inputs: inputs, targets: Tensor(shape: shape, data: values),
                       mask: mask.map { m in (0..<count).map { m[$0] != 0 } })
}

@_cdecl("kcp_finetune_create")
public func kcp_finetune_create(_ network: OpaquePointer?, _ settings: UnsafeRawPointer?, _ train: UnsafeRawPointer?,
                                _ val: UnsafeRawPointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32
{
    boundary {
        let net = try NetworkHandle.network(network)
        guard let train else { throw KCPError.invalidArgument(argument: "train", reason: "is NULL") }
        let trainData = try dataset(net, train, "train")
        let validation = try val.map { try dataset(net, $0, "val") }
        let tuner = try FineTuner(network: net, settings: FineTuneSettings(abi: settings, samples: trainData.count),
                                  train: trainData, validation: validation)
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
        let recordOut = try Arguments.output(record, "record"), stoppedOut = try Arguments.output(stopped, "stopped")
        let result = try FineTuneHandle.from(finetune).using { try $0.runEpoch(onStep: throttled(progress, context)) }
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
        let history = try FineTuneHandle.from(finetune).using { $0.history }
        try Arguments.output(count, "count").pointee = Int64(history.count)
        if let records {
            try require(capacity >= Int64(history.count * 5), "records",
                        "holds \(capacity) values, \(history.count) epochs need \(history.count * 5)")
            records.store(history.flatMap(values)) { $0 }
        }
    }
}

@_cdecl("kcp_finetune_network")
public func kcp_finetune_network(_ finetune: OpaquePointer?, _ mode: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?)
    -> Int32
{
    boundary {
        let tuner = try FineTuneHandle.from(finetune).using { $0 }
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
        let bytes = try FineTuneHandle.from(finetune).using { $0.checkpoint() }
        try Arguments.output(size, "size").pointee = Int64(bytes.count)
        if let buffer {
            try require(capacity >= Int64(bytes.count), "buffer", "holds \(capacity) bytes, the checkpoint \(bytes.count)")
            buffer.update(from: bytes, count: bytes.count)
        }
    }
}

@_cdecl("kcp_finetune_restore")
public func kcp_finetune_restore(_ finetune: OpaquePointer?, _ checkpoint: UnsafePointer<UInt8>?, _ size: Int64) -> Int32 {
    boundary {
        let bytes = Array(try Arguments.buffer(checkpoint, Int(max(size, 0)), "checkpoint"))
        try FineTuneHandle.from(finetune).using { try $0.restore(bytes) }
    }
}
