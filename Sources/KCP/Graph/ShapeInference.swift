extension Network {
    /// The shape of every value, inferred from the input shapes (with their
    /// batch dimension replaced by `batch` if given).
    /// - Throws: `invalidArgument` naming the node and the shapes that disagree.
    public func inferShapes(batch: Int? = nil) throws -> [[Int]] {
        var shapes = [[Int]](repeating: [], count: valueCount)
        for (value, shape) in inputs { shapes[value] = [batch ?? shape[0]] + shape.dropFirst() }
        for node in nodes { shapes[node.output] = try outputShape(of: node, shapes: shapes) }
        return shapes
    }

    /// `declaredShapes` with the batch dimension replaced by `batch` (nil: as declared).
    public func shapes(batch: Int?) -> [[Int]] {
        guard let batch else { return declaredShapes }
        return declaredShapes.map { [batch] + $0.dropFirst() }
    }

    /// Infers `declaredShapes` again, after ops or parameters changed.
    mutating func reinferShapes() throws { declaredShapes = try inferShapes() }

    /// The shape of `node`'s output given the shapes of the values before it.
    func outputShape(of node: Node, shapes: [[Int]]) throws -> [Int] {
        do {
            let shape = try node.op.outputShape(inputs: node.inputs.map { shapes[$0] },
                                                parameters: node.parameters.map { parameters[$0].tensor.shape })
            try check(fitsOneSample(shape), "output \(shape) has more than \(maxSampleElements) elements per sample")
            return shape
        } catch let KCPError.invalidArgument(_, reason) {
            throw KCPError.invalidArgument(argument: "network", reason: "node '\(node.name)' (\(node.op.name)): \(reason)")
        }
    }
}

extension Op {
    /// The output shape for these input and parameter shapes.
    func outputShape(inputs: [[Int]], parameters: [[Int]]) throws -> [Int] {
        let x = inputs[0]
        switch self {
        case let .conv2d(conv):
            try expectRank(x, 4)
            let w = parameters[0]
            try check(w.count == 4, "weight must be [O, I/g, kh, kw], got \(w)")
            try check(conv.groups >= 1 && w[0] % conv.groups == 0, "\(conv.groups) groups do not divide \(w[0]) outputs")
            try check(x[1] == (try Checked.multiply(w[1], conv.groups, "weight input channels * groups")),
                      "input \(x) has \(x[1]) channels, weight \(w) with \(conv.groups) groups reads \(w[1] * conv.groups)")
            try checkBias(parameters, outputs: w[0])
            let height = try outputSize(x[2], kernel: w[2], stride: conv.stride.0, padding: (conv.padding.0, conv.padding.2),
                                        dilation: conv.dilation.0, axis: "h")
            let width = try outputSize(x[3], kernel: w[3], stride: conv.stride.1, padding: (conv.padding.1, conv.padding.3),
                                       dilation: conv.dilation.1, axis: "w")
            return [x[0], w[0], height, width]
        case let .convTranspose2d(t):
            try expectRank(x, 4)
            let w = parameters[0]
            try check(w.count == 4, "weight must be [I, O/g, kh, kw], got \(w)")
            try check(t.groups >= 1 && w[0] % t.groups == 0, "\(t.groups) groups do not divide \(w[0]) inputs")
            try check(x[1] == w[0], "input \(x) has \(x[1]) channels, weight \(w) reads \(w[0])")
            try checkBias(parameters, outputs: w[1] * t.groups)
            let height = try transposedSize(x[2], kernel: w[2], stride: t.stride.0, padding: t.padding.0 + t.padding.2,
                                            outputPadding: t.outputPadding.0, dilation: t.dilation.0)
            let width = try transposedSize(x[3], kernel: w[3], stride: t.stride.1, padding: t.padding.1 + t.padding.3,
                                           outputPadding: t.outputPadding.1, dilation: t.dilation.1)
            return [x[0], try Checked.multiply(w[1], t.groups, "outputs per group * groups"), height, width]
        case let .conv3d(conv):
            try expectRank(x, 5)
            let w = parameters[0]
            try check(w.count == 5, "weight must be [O, I/g, kd, kh, kw], got \(w)")
            try check(conv.groups >= 1 && w[0] % conv.groups == 0, "\(conv.groups) groups do not divide \(w[0]) outputs")
            try check(x[1] == (try Checked.multiply(w[1], conv.groups, "weight input channels * groups")),
                      "input \(x) has \(x[1]) channels, weight \(w) with \(conv.groups) groups reads \(w[1] * conv.groups)")
            try checkBias(parameters, outputs: w[0])
            let (d, p) = (conv.depth, conv.plane)
            let depth = try outputSize(x[2], kernel: w[2], stride: d.stride, padding: (d.front, d.back), dilation: d.dilation,
                                       axis: "d")
            let height = try outputSize(x[3], kernel: w[3], stride: p.stride.0, padding: (p.padding.0, p.padding.2),
                                        dilation: p.dilation.0, axis: "h")
            let width = try outputSize(x[4], kernel: w[4], stride: p.stride.1, padding: (p.padding.1, p.padding.3),
                                       dilation: p.dilation.1, axis: "w")
            return [x[0], w[0], depth, height, width]
        case let .convTranspose3d(t):
            try expectRank(x, 5)
            let w = parameters[0]
            try check(w.count == 5, "weight must be [I, O/g, kd, kh, kw], got \(w)")
            try check(t.groups >= 1 && w[0] % t.groups == 0, "\(t.groups) groups do not divide \(w[0]) inputs")
            try check(x[1] == w[0], "input \(x) has \(x[1]) channels, weight \(w) reads \(w[0])")
            try checkBias(parameters, outputs: w[1] * t.groups)
            let (d, p) = (t.depth, t.plane)
            let depth = try transposedSize(x[2], kernel: w[2], stride: d.stride, padding: d.front + d.back,
                                           outputPadding: t.depthOutputPadding, dilation: d.dilation)
            let height = try transposedSize(x[3], kernel: w[3], stride: p.stride.0, padding: p.padding.0 + p.padding.2,
                                            outputPadding: p.outputPadding.0, dilation: p.dilation.0)
            let width = try transposedSize(x[4], kernel: w[4], stride: p.stride.1, padding: p.padding.1 + p.padding.3,
                                           outputPadding: p.outputPadding.1, dilation: p.dilation.1)
            return [x[0], try Checked.multiply(w[1], t.groups, "outputs per group * groups"), depth, height, width]
        case .batchNorm:
            try check(x.count >= 2, "input must have channels, got \(x)")
            try check(parameters.allSatisfy { $0 == [x[1]] }, "parameters must each be [\(x[1])], got \(parameters)")
            return x
        case let .normalization(n):
            try check(x.count >= 2, "input must have channels, got \(x)")
            try check(n.groups >= 1 && x[1] % n.groups == 0, "\(n.groups) groups do not divide \(x[1]) channels")
            try check(n.epsilon > 0 && n.epsilon.isFinite, "epsilon must be positive, got \(n.epsilon)")
            try check(parameters.allSatisfy { $0 == [x[1]] }, "parameters must each be [\(x[1])], got \(parameters)")
            return x
        case .activation, .identity:
            return x
        case .binary:
            let operands = inputs.count == 2 ? inputs : [x, [1] + parameters[0]]
            return try broadcastShape(operands[0], operands[1])
        case .concat:
            try check(x.count >= 3, "expected inputs with positions [N, C, ...], got \(x)")
            for other in inputs {
                try check(other.count == x.count && other[0] == x[0] && other[2...] == x[2...],
                          "inputs must agree except in channels, got \(inputs)")
            }
            return [x[0], try Checked.sum(inputs.map { $0[1] }, "concatenated channels")] + x[2...]
        case let .maxPool(pool), let .avgPool(pool):
            try expectRank(x, 4)
            try check(pool.kernel.0 >= 1 && pool.kernel.1 >= 1, "kernel must be positive")
            try check(max(pool.padding.0, pool.padding.2) <= pool.kernel.0 / 2
                      && max(pool.padding.1, pool.padding.3) <= pool.kernel.1 / 2,
                      "padding \(pool.padding) must be at most half the kernel \(pool.kernel)")
            return [x[0], x[1],
                    try pooledSize(x[2], kernel: pool.kernel.0, stride: pool.stride.0, padding: (pool.padding.0, pool.padding.2),
                                   dilation: pool.dilation.0, ceilMode: pool.ceilMode, axis: "h"),
                    try pooledSize(x[3], kernel: pool.kernel.1, stride: pool.stride.1, padding: (pool.padding.1, pool.padding.3),
                                   dilation: pool.dilation.1, ceilMode: pool.ceilMode, axis: "w")]
        case let .adaptivePool(height, width, _):
            try expectRank(x, 4)
            try check(height >= 1 && width >= 1, "output size must be positive, got \(height)x\(width)")
            return [x[0], x[1], height, width]
        case let .maxPool3d(pool), let .avgPool3d(pool):
            try expectRank(x, 5)
            let plane = try Op.maxPool(pool.plane).outputShape(inputs: [[x[0], x[1] * x[2], x[3], x[4]]], parameters: [])
            try check(pool.kernel >= 1, "kernel must be positive")
            try check(max(pool.front, pool.back) <= pool.kernel / 2,
                      "padding (\(pool.front), \(pool.back)) must be at most half the kernel \(pool.kernel)")
            return [x[0], x[1],
                    try pooledSize(x[2], kernel: pool.kernel, stride: pool.stride, padding: (pool.front, pool.back),
                                   dilation: pool.dilation, ceilMode: pool.plane.ceilMode, axis: "d"),
                    plane[2], plane[3]]
        case .globalAvgPool:
            try check(x.count >= 3, "expected an input with positions [N, C, ...], got \(x)")
            return [x[0], x[1]] + Array(repeating: 1, count: x.count - 2)
        case .flatten:
            try check(x.count >= 2, "input must have at least 2 dimensions, got \(x)")
            return [x[0], try Checked.product(x.dropFirst(), "flattened features")]
        case .linear:
            try expectRank(x, 2)
            let w = parameters[0]
            try check(w.count == 2 && w[1] == x[1], "input \(x) does not match weight \(w) ([O, \(x[1])] expected)")
            try checkBias(parameters, outputs: w[0])
            return [x[0], w[0]]
        case let .resize(r):
            try expectRank(x, 4)
            try check(r.height >= 1 && r.width >= 1, "output size must be positive, got \(r.height)x\(r.width)")
            return [x[0], x[1], r.height, r.width]
        case let .resize3d(r):
            try expectRank(x, 5)
            try check(r.depth >= 1 && r.plane.height >= 1 && r.plane.width >= 1,
                      "output size must be positive, got \(r.depth)x\(r.plane.height)x\(r.plane.width)")
            return [x[0], x[1], r.depth, r.plane.height, r.plane.width]
        case let .correlation(maxDisparity, _):
            try expectRank(x, 4)
            try check(inputs[0] == inputs[1], "left and right must have equal shapes, got \(inputs[0]) and \(inputs[1])")
            try check(maxDisparity >= 1, "max disparity must be positive, got \(maxDisparity)")
            return [x[0], maxDisparity, x[2], x[3]]
        case .softmax:
            try check(x.count >= 2, "input must have channels, got \(x)")
            return x
        case let .costVolume(v):
            try expectRank(x, 4)
            try check(inputs[0] == inputs[1], "left and right must have equal shapes, got \(inputs[0]) and \(inputs[1])")
            try check(v.maxDisparity >= 1, "max disparity must be positive, got \(v.maxDisparity)")
            switch v.kind {
            case .concatenation:
                try check(v.groups == 1 && v.scale == 1,
                          "a concatenation volume takes groups 1 and scale 1, got \(v.groups) and \(v.scale)")
            case .groupCorrelation:
                try check(v.groups >= 1 && x[1] % v.groups == 0,
                          "\(v.groups) groups do not divide the \(x[1]) channels of \(x)")
                try check(v.scale.isFinite, "scale must be finite, got \(v.scale)")
            }
            let channels = v.kind == .concatenation ? try Checked.multiply(2, x[1], "2 * channels") : v.groups
            return [x[0], channels, v.maxDisparity, x[2], x[3]]
        case let .softArgmin(sign):
            try check(sign == 1 || sign == -1, "sign must be 1 or -1, got \(sign)")
            try check(x.count == 4 || (x.count == 5 && x[1] == 1),
                      "expected [N, D, H, W] or a one-channel volume [N, 1, D, H, W], got \(x)")
            return [x[0], 1, x[x.count - 2], x[x.count - 1]]
        case let .channelShuffle(groups):
            try check(x.count >= 2 && groups >= 1 && x[1] % groups == 0, "\(groups) groups do not divide the channels of \(x)")
            return x
        case let .channelChunk(index, parts):
            try check(x.count >= 2 && parts >= 1 && (0..<parts).contains(index) && x[1] % parts == 0,
                      "part \(index) of \(parts) equal parts does not fit the channels of \(x)")
            return [x[0], x[1] / parts] + x.dropFirst(2)
        case let .channelwise(shape):
            try check(!shape.isEmpty && shape.allSatisfy { $0 >= 1 }, "output shape \(shape) must be positive")
            for input in inputs {
                try check(input.count >= 2 && (input[1] == shape[0] || input[1] == 1),
                          "input \(input) has neither \(shape[0]) channels nor one")
            }
            return [x[0]] + shape
        }
    }
}

private func check(_ condition: Bool, _ reason: @autoclosure () -> String) throws {
    if !condition { throw KCPError.invalidArgument(argument: "network", reason: reason()) }
}

private func expectRank(_ shape: [Int], _ rank: Int) throws {
    try check(shape.count == rank, "expected a \(rank)-D input, got \(shape)")
}

private func checkBias(_ parameters: [[Int]], outputs: Int) throws {
    try check(parameters.count < 2 || parameters[1] == [outputs], "bias must be [\(outputs)], got \(parameters[1])")
}

/// NumPy broadcasting of two shapes of one rank: each dimension equal, or 1 on one side.
func broadcastShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
    try check(a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || $0 == 1 || $1 == 1 },
              "shapes \(a) and \(b) do not broadcast (equal ranks, each dimension equal or 1)")
    return zip(a, b).map { Swift.max($0, $1) }
}

/// A pooled size, PyTorch's rule: `floor` (or with `ceilMode` `ceil`) of
/// `(size + padding - dilation (kernel - 1) - 1) / stride`, plus 1; with
/// `ceilMode` a last window that would start in the end padding is dropped.
/// `axis` ("h" or "w") names the attributes in errors.
func pooledSize(_ size: Int, kernel: Int, stride: Int, padding: (Int, Int), dilation: Int, ceilMode: Bool,
                axis: String) throws -> Int
{
    var count = try outputSize(size, kernel: kernel, stride: stride, padding: padding, dilation: dilation, axis: axis)
    let extent = try span(size, kernel: kernel, padding: padding, dilation: dilation, axis: axis)
    if ceilMode && extent % stride != 0 {
        count += 1
        if (count - 1) * stride >= size + padding.0 { count -= 1 }
    }
    return count
}

/// `floor((size + padding - dilation * (kernel - 1) - 1) / stride) + 1`, at least 1.
func outputSize(_ size: Int, kernel: Int, stride: Int, padding: (Int, Int), dilation: Int = 1, axis: String) throws -> Int {
    try check(stride >= 1 && dilation >= 1 && padding.0 >= 0 && padding.1 >= 0,
              "stride and dilation must be positive, padding non-negative")
    let extent = try span(size, kernel: kernel, padding: padding, dilation: dilation, axis: axis)
    try check(extent >= 0, "kernel \(kernel) (dilation \(dilation)) does not fit input size \(size) with padding \(padding)")
    return extent / stride + 1
}

/// `size + padding - dilation * (kernel - 1) - 1`, the room the first window leaves.
private func span(_ size: Int, kernel: Int, padding: (Int, Int), dilation: Int, axis: String) throws -> Int {
    let reach = try Checked.multiply(dilation, kernel - 1, "dilation_\(axis) * (kernel_\(axis) - 1)")
    let (begin, end) = axis == "d" ? ("front", "back") : axis == "h" ? ("top", "bottom") : ("left", "right")
    let padded = try Checked.sum([size, padding.0, padding.1], "input size + pad_\(begin) + pad_\(end)")
    return padded - reach - 1
}

/// `(size - 1) * stride - padding + dilation * (kernel - 1) + outputPadding + 1`, at least 1, with
/// `outputPadding` smaller than the stride or the dilation (PyTorch's rule).
func transposedSize(_ size: Int, kernel: Int, stride: Int, padding: Int, outputPadding: Int, dilation: Int) throws -> Int {
    try check(stride >= 1 && dilation >= 1 && padding >= 0 && outputPadding >= 0,
              "stride and dilation must be positive, padding and output padding non-negative")
    try check(outputPadding < max(stride, dilation),
              "output padding \(outputPadding) must be smaller than the stride \(stride) or the dilation \(dilation)")
    let scattered = try Checked.multiply(size - 1, stride, "(input size - 1) * stride")
    let reach = try Checked.multiply(dilation, kernel - 1, "dilation * (kernel - 1)")
    let result = try Checked.sum([scattered, reach, outputPadding, 1], "transposed output size") - padding
    try check(result >= 1, "padding \(padding) crops all of the output of size \(size) (kernel \(kernel), stride \(stride))")
    return result
}

/// The most elements one sample of a value may have (a float32 tensor of
/// 8 GB): beyond it a shape is a mistake, not a network to run.
let maxSampleElements = Int(Int32.max)

/// Whether `shape` (batch first) has at most `maxSampleElements` elements per sample, without overflowing.
func fitsOneSample(_ shape: [Int]) -> Bool {
    var count = 1
    for dimension in shape.dropFirst() {
        let (product, overflow) = count.multipliedReportingOverflow(by: max(dimension, 0))
        if overflow || product > maxSampleElements { return false }
        count = product
    }
    return true
}
