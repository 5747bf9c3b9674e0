import KCP

// The C ABI of include/kcp.h: validate, unwrap, call the engine, report.

@_cdecl("kcp_abi_version")
public func kcp_abi_version() -> Int32 { 7 }

@_cdecl("kcp_op_table")
public func kcp_op_table(_ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
                         _ length: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary { try Arguments.text(OpCode.table, buffer, capacity, length) }
}

@_cdecl("kcp_info")
public func kcp_info(_ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
                     _ length: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary { try Arguments.text(engineInfo, buffer, capacity, length) }
}

@_cdecl("kcp_threads_set")
public func kcp_threads_set(_ n: Int32) -> Int32 {
    boundary { try Threads.set(Int(n)) }
}

@_cdecl("kcp_threads_get")
public func kcp_threads_get() -> Int32 { Int32(clamping: Threads.count) }

@_cdecl("kcp_layer_geometry")
public func kcp_layer_geometry(_ shape: UnsafePointer<Int64>?, _ ndim: Int32, _ groups: Int64,
                               _ geometry: UnsafeMutablePointer<Int64>?, _ capacity: Int64) -> Int32
{
    boundary {
        let layer = try Arguments.geometry(shape, ndim, groups)
        let values = [layer.inChannels, layer.outChannels, layer.clusterLength, layer.kernelCount]
        try Arguments.output(geometry, "geometry", capacity: capacity, count: values.count).store(values) { Int64($0) }
    }
}

@_cdecl("kcp_layer_scores")
public func kcp_layer_scores(_ weight: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ ndim: Int32,
                             _ groups: Int64, _ criterion: Int32, _ center: Int32, _ seed: UInt64,
                             _ scores: UnsafeMutablePointer<Double>?, _ capacity: Int64) -> Int32
{
    boundary {
        let layer = try Arguments.geometry(shape, ndim, groups)
        let result = try layerScores(weight: Arguments.buffer(weight, layer.elementCount, "weight"), geometry: layer,
                                     criterion: Arguments.criterion(criterion, center: center, seed: seed))
        try Arguments.output(scores, "scores", capacity: capacity, count: result.count).store(result) { $0 }
    }
}

@_cdecl("kcp_layer_cluster")
public func kcp_layer_cluster(_ weight: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ ndim: Int32,
                              _ groups: Int64, _ ratio: Double, _ center: Int32, _ centers: Int32,
                              _ granularity: Int32, _ roundTo: Int32, _ seed: UInt64,
                              _ scores: UnsafeMutablePointer<Double>?, _ labels: UnsafeMutablePointer<Int32>?,
                              _ centersOut: UnsafeMutablePointer<Float>?, _ keep: UnsafeMutablePointer<UInt8>?,
                              _ capacities: UnsafePointer<Int64>?) -> Int32
{
    boundary {
        let layer = try Arguments.geometry(shape, ndim, groups)
        guard let granularity = Granularity(rawValue: granularity) else {
            throw KCPError.invalidArgument(argument: "granularity", reason: "unknown code \(granularity)")
        }
        let room = try Arguments.buffer(capacities, 4, "capacities")
        let pruning = try LayerPruning(weight: Arguments.buffer(weight, layer.elementCount, "weight"),
                                       geometry: layer, ratio: ratio, center: Arguments.center(center),
                                       clusters: Int(centers), granularity: granularity,
                                       roundTo: Int(roundTo), seed: seed)
        // Every output is checked before any is written; channel granularity also writes labels and centers.
        let scoresOut = try Arguments.output(scores, "scores", capacity: room[0], count: pruning.scores.count)
        let keepOut = try Arguments.output(keep, "keep", capacity: room[3], count: pruning.keep.count)
        let labelsOut = granularity == .channel
            ? try Arguments.output(labels, "labels", capacity: room[1], count: pruning.labels.count) : nil
        let centersOut = granularity == .channel
            ? try Arguments.output(centersOut, "centers", capacity: room[2], count: pruning.centers.count) : nil
        labelsOut?.store(pruning.labels) { Int32($0) }
        centersOut?.store(pruning.centers) { $0 }
        scoresOut.store(pruning.scores) { $0 }
        keepOut.store(pruning.keep) { $0 ? 1 : 0 }
    }
}

@_cdecl("kcp_scores_select")
public func kcp_scores_select(_ scores: UnsafePointer<Double>?, _ count: Int64, _ ratio: Double, _ roundTo: Int32,
                              _ keep: UnsafeMutablePointer<UInt8>?) -> Int32
{
    boundary {
        let values = try Arguments.buffer(scores, Int(max(count, 0)), "scores")
        let selected = try selectKeep(scores: Array(values), ratio: ratio, roundTo: Int(roundTo))
        try Arguments.output(keep, "keep").store(selected) { $0 ? 1 : 0 }
    }
}

@_cdecl("kcp_weight_compact")
public func kcp_weight_compact(_ weight: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ ndim: Int32,
                               _ keepOut: UnsafePointer<UInt8>?, _ keepIn: UnsafePointer<UInt8>?,
                               _ out: UnsafeMutablePointer<Float>?, _ outCount: Int64) -> Int32
{
    boundary {
        let slice = try SliceShape(Arguments.shape(shape, ndim))
        if keepIn != nil && slice.dimensions < 2 {
            throw KCPError.invalidArgument(argument: "keep_in", reason: "needs a weight with at least 2 dimensions")
        }
        try compact(Arguments.buffer(weight, slice.count, "weight").baseAddress!, shape: slice,
                    keepOut: Arguments.mask(keepOut, slice.rows), keepIn: Arguments.mask(keepIn, slice.columns),
                    into: UnsafeMutableBufferPointer(start: Arguments.output(out, "out"), count: Int(max(outCount, 0))))
    }
}

@_cdecl("kcp_weight_mask")
public func kcp_weight_mask(_ weight: UnsafeMutablePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ ndim: Int32,
                            _ keep: UnsafePointer<UInt8>?, _ keepCount: Int64, _ axis: Int32) -> Int32
{
    boundary {
        let slice = try SliceShape(Arguments.shape(shape, ndim))
        guard let axis = MaskAxis(rawValue: axis) else {
            throw KCPError.invalidArgument(argument: "axis", reason: "unknown code \(axis)")
        }
        guard let mask = Arguments.mask(keep, Int(max(keepCount, 0))) else {
            throw KCPError.invalidArgument(argument: "keep", reason: "is NULL")
        }
        try zeroPruned(Arguments.output(weight, "weight"), shape: slice, keep: mask, axis: axis)
    }
}
