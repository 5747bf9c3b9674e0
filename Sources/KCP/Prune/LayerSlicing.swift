/// Slicing a parameter along its first two axes: axis 0 indexes outputs,
/// axis 1 indexes inputs (`[O, I/g, ...]` weights, `[O]` biases).

/// Which axes a keep mask covers.
public enum MaskAxis: Int32, Sendable {
    /// `keep[o]` over axis 0.
    case output = 0
    /// `keep[j]` over axis 1.
    case input = 1
    /// `keep[o, j]` over axes 0 and 1 (kernel masks).
    case kernel = 2
}

/// Copies the kept entries of `source` into the smaller `destination`:
/// `destination[a', b', ...] = source[outs[a'], ins[b'], ...]`.
/// A `nil` mask keeps the whole axis.
public func compact(_ source: UnsafePointer<Float>, shape: SliceShape, keepOut: [Bool]?, keepIn: [Bool]?,
                    into destination: UnsafeMutableBufferPointer<Float>) throws
{
    let (rows, columns, inner) = (shape.rows, shape.columns, shape.inner)
    if let keepOut { try require(keepOut.count == rows, "keep_out", "has \(keepOut.count) entries, axis 0 has \(rows)") }
    if let keepIn { try require(keepIn.count == columns, "keep_in", "has \(keepIn.count) entries, axis 1 has \(columns)") }
    let outs = (0..<rows).filter { keepOut?[$0] ?? true }
    let ins = (0..<columns).filter { keepIn?[$0] ?? true }
    try require(destination.count == outs.count * ins.count * inner, "out",
                "has \(destination.count) elements, the compact weight has \(outs.count * ins.count * inner)")
    guard let dst = destination.baseAddress else { return }
    parallelFor(outs.count) { a in
        for (b, column) in ins.enumerated() {
            (dst + (a * ins.count + b) * inner).update(from: source + (outs[a] * columns + column) * inner, count: inner)
        }
    }
}

/// Zeroes, in place, every entry of `weight` whose slot in `keep` is false.
public func zeroPruned(_ w: UnsafeMutablePointer<Float>, shape: SliceShape, keep: [Bool], axis: MaskAxis) throws {
    let (rows, columns, inner) = (shape.rows, shape.columns, shape.inner)
    let expected: Int
    switch axis {
    case .output: expected = rows
    case .input: expected = columns
    case .kernel: expected = rows * columns
    }
    try require(axis == .output || shape.dimensions >= 2, "axis", "a 1-D parameter has only the output axis")
    try require(keep.count == expected, "keep", "has \(keep.count) entries, expected \(expected) for axis \(axis)")
    parallelFor(rows) { a in
        for b in 0..<columns {
            let kept: Bool
            switch axis {
            case .output: kept = keep[a]
            case .input: kept = keep[b]
            case .kernel: kept = keep[a * columns + b]
            }
            if !kept { (w + (a * columns + b) * inner).update(repeating: 0, count: inner) }
        }
    }
}

/// A parameter's shape read as `[rows, columns, inner]`: axis 0, axis 1 (1
/// for a 1-D parameter) and the product of the remaining axes.
public struct SliceShape: Sendable {
    public let rows: Int, columns: Int, inner: Int
    public let dimensions: Int
    public var count: Int { rows * columns * inner }

    public init(_ shape: [Int]) throws {
        try require((1...8).contains(shape.count), "weight", "has \(shape.count) dimensions, expected 1 to 8")
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            try require(d >= 0 && !overflow, "weight", "invalid shape \(shape)")
            count = product
        }
        rows = shape[0]
        columns = shape.count > 1 ? shape[1] : 1
        inner = shape.dropFirst(2).reduce(1, *)
        dimensions = shape.count
    }
}
