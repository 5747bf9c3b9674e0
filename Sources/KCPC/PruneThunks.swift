import Glibc
import KCP

// Channel spaces, plans and pruned networks: the pruning part of include/kcp.h.

@_cdecl("kcp_network_spaces")
public func kcp_network_spaces(_ network: OpaquePointer?, _ counts: UnsafeMutablePointer<Int64>?) -> Int32 {
    boundary {
        let found = try NetworkHandle.from(network).snapshotWithSpaces.spaces
        let channels = found.classOf.reduce(0) { $0 + $1.count }
        try Arguments.output(counts, "counts").store([found.classCount, found.spaces.count, channels]) { Int64($0) }
    }
}

@_cdecl("kcp_network_space_data")
public func kcp_network_space_data(_ network: OpaquePointer?, _ classOf: UnsafeMutablePointer<Int64>?, _ channels: Int64,
                                   _ spaceOf: UnsafeMutablePointer<Int64>?, _ frozen: UnsafeMutablePointer<UInt8>?,
                                   _ classes: Int64) -> Int32
{
    boundary {
        let found = try NetworkHandle.from(network).snapshotWithSpaces.spaces
        try expectSize(channels, found.classOf.reduce(0) { $0 + $1.count }, "class_of", "channels")
        try expectSize(classes, found.classCount, "space_of", "channel classes")
        try Arguments.output(classOf, "class_of").store(found.classOf.joined()) { Int64($0) }
        try Arguments.output(spaceOf, "space_of").store(found.spaceOf) { Int64($0) }
        try Arguments.output(frozen, "frozen").store(found.frozen) { $0 ? 1 : 0 }
    }
}

/// Fails unless an array of `size` entries holds the network's `expected` ones: a network changed
/// since the array was sized (by another thread or a callback) is refused, never written past.
private func expectSize(_ size: Int64, _ expected: Int, _ name: String, _ what: String) throws {
    try require(size == Int64(expected), name,
                "has \(size) entries, the network has \(expected) \(what) (it changed since the array was sized)")
}

@_cdecl("kcp_network_space_reasons")
public func kcp_network_space_reasons(_ network: OpaquePointer?, _ space: Int64, _ buffer: UnsafeMutablePointer<CChar>?,
                                      _ capacity: Int64, _ length: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let found = try NetworkHandle.from(network).snapshotWithSpaces.spaces
        try require(found.spaces.indices.contains(Int(space)), "space", "no space \(space)")
        try Arguments.text(found.spaces[Int(space)].frozenReasons.joined(separator: "\n"), buffer, capacity, length)
    }
}

@_cdecl("kcp_network_plan")
public func kcp_network_plan(_ network: OpaquePointer?, _ amountKind: Int32, _ amount: Double, _ global: Int32,
                             _ maxRatio: Double, _ criterion: Int32, _ center: Int32, _ roundTo: Int32, _ seed: UInt64,
                             _ overrideSpaces: UnsafePointer<Int64>?, _ overrideRatios: UnsafePointer<Double>?,
                             _ overrideCount: Int32, _ weights: UnsafePointer<UnsafePointer<Float>?>?,
                             _ weightCount: Int64,
                             _ keep: UnsafeMutablePointer<UInt8>?, _ scores: UnsafeMutablePointer<Double>?,
                             _ classes: Int64, _ ratio: UnsafeMutablePointer<Double>?, _ costs: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let (net, found) = try NetworkHandle.from(network).snapshotWithSpaces
        let kind: PruningTarget.Amount
        switch amountKind {
        case 0: kind = .ratio(amount)
        case 1: kind = .macsReduction(amount)
        default: throw KCPError.invalidArgument(argument: "amount_kind", reason: "unknown code \(amountKind)")
        }
        let spaces = try Arguments.indices(overrideSpaces, overrideCount, "override_spaces")
        let ratios = spaces.isEmpty ? [] : Array(try Arguments.buffer(overrideRatios, spaces.count, "override_ratios"))
        let target = PruningTarget(
            amount: kind, global: global != 0, maxRatio: maxRatio,
            criterion: try Arguments.criterion(criterion, center: center, seed: seed), roundTo: Int(roundTo), seed: seed,
            overrides: Dictionary(zip(spaces, ratios)) { _, last in last })
        let plan = try NetworkPlan(network: net, target: target, weights: try borrowed(weights, weightCount, of: net),
                                  spaces: found)
        try expectSize(classes, plan.keep.count, "keep", "channel classes")
        try Arguments.output(keep, "keep").store(plan.keep) { $0 ? 1 : 0 }
        try Arguments.output(scores, "scores").store(plan.scores) { $0 }
        try Arguments.output(ratio, "ratio").pointee = plan.ratio
        try Arguments.output(costs, "costs").store([plan.before.macs, plan.before.parameters, plan.after.macs,
                                                    plan.after.parameters]) { Int64($0) }
    }
}

/// The non-NULL entries of `weights` (NULL, or one pointer per parameter of
/// `network`), each read as its parameter's element count.
private func borrowed(_ weights: UnsafePointer<UnsafePointer<Float>?>?, _ count: Int64,
                      of network: Network) throws -> [Int: UnsafeBufferPointer<Float>]
{
    guard let weights else { return [:] }
    try require(count == network.parameters.count, "weight_count",
                "is \(count), the network has \(network.parameters.count) parameters")
    var borrowed: [Int: UnsafeBufferPointer<Float>] = [:]
    for (index, parameter) in network.parameters.enumerated() {
        if let start = weights[index] {
            borrowed[index] = UnsafeBufferPointer(start: start, count: parameter.tensor.count)
        }
    }
    return borrowed
}

@_cdecl("kcp_network_prune")
public func kcp_network_prune(_ network: OpaquePointer?, _ keep: UnsafePointer<UInt8>?, _ count: Int64, _ mode: Int32,
                              _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32
{
    boundary {
        let (net, found) = try NetworkHandle.from(network).snapshotWithSpaces
        let keepClasses = try Array(Arguments.buffer(keep, Int(max(count, 0)), "keep")).map { $0 != 0 }
        let pruned: Network
        switch mode {
        case 0: pruned = try net.masked(found, keepClasses: keepClasses)
        case 1: pruned = try net.compacted(found, keepClasses: keepClasses)
        default: throw KCPError.invalidArgument(argument: "mode", reason: "unknown code \(mode)")
        }
        try Arguments.output(out, "out").pointee = NetworkHandle.retained(pruned)
    }
}

@_cdecl("kcp_network_compensate")
public func kcp_network_compensate(_ network: OpaquePointer?, _ keep: UnsafePointer<UInt8>?, _ count: Int64,
                                   _ inputs: UnsafeRawPointer?, _ batch: Int64, _ ridge: Double,
                                   _ chunk: Int64, _ progress: ProgressCallback?, _ context: UnsafeMutableRawPointer?,
                                   _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32
{
    boundary {
        let (net, found) = try NetworkHandle.from(network).snapshotWithSpaces
        let keepClasses = try Array(Arguments.buffer(keep, Int(max(count, 0)), "keep")).map { $0 != 0 }
        let result = try Arguments.output(out, "out"), report = throttled(progress, context)
        let compensated = try net.compensated(found, keepClasses: keepClasses,
                                              calibration: try inputTensors(net, inputs, batch, "calibration"), ridge: ridge,
                                              chunk: Int(chunk)) { report($0, $1, .nan) }
        result.pointee = compensated.map(NetworkHandle.retained)
    }
}
