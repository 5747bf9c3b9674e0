/// Multiply-accumulates and parameter counts.
///
/// MACs of a conv are `O * (I/g) * kh * kw * Hout * Wout` (a volumetric one
/// `O * (I/g) * kd * kh * kw * Dout * Hout * Wout`), of a transposed conv
/// `I * (O/g) * kh * kw * Hin * Win` (likewise with `kd * Din`), of a linear layer `O * I`, per sample; other ops count none. Parameters count learnable
/// entries once even when nodes share them (batchnorm running statistics are
/// buffers, not parameters).
public struct Cost: Equatable, Sendable {
    public var macs: Int
    public var parameters: Int
}

extension Network {
    /// MACs per sample of each node, in node order; `widths[v]` overrides
    /// the channel count of value `v` (a pruned network's widths).
    /// - Throws: `invalidArgument` naming the node whose count overflows.
    public func nodeMACs(shapes: [[Int]], widths: [Int]? = nil) throws -> [Int] {
        let widths = widths ?? shapes.map { $0[1] }
        return try nodes.map { node in
            let x = node.inputs[0], y = node.output
            switch node.op {
            case let .conv2d(conv):
                let w = parameters[node.parameters[0]].tensor.shape
                let groups = conv.groups == 1 ? 1 : conv.groups == shapes[x][1] ? widths[x] : conv.groups
                return try Checked.product([widths[y], widths[x] / max(groups, 1), w[2], w[3], shapes[y][2], shapes[y][3]],
                                           "node '\(node.name)' MACs")
            case let .convTranspose2d(t):
                let w = parameters[node.parameters[0]].tensor.shape
                let groups = t.groups == 1 ? 1 : t.groups == shapes[x][1] ? widths[x] : t.groups
                return try Checked.product([widths[x], widths[y] / max(groups, 1), w[2], w[3], shapes[x][2], shapes[x][3]],
                                           "node '\(node.name)' MACs")
            case let .conv3d(conv):
                let w = parameters[node.parameters[0]].tensor.shape
                let groups = conv.groups == 1 ? 1 : conv.groups == shapes[x][1] ? widths[x] : conv.groups
                return try Checked.product([widths[y], widths[x] / max(groups, 1), w[2], w[3], w[4], shapes[y][2],
                                            shapes[y][3], shapes[y][4]], "node '\(node.name)' MACs")
            case let .convTranspose3d(t):
                let w = parameters[node.parameters[0]].tensor.shape
                let groups = t.groups == 1 ? 1 : t.groups == shapes[x][1] ? widths[x] : t.groups
                return try Checked.product([widths[x], widths[y] / max(groups, 1), w[2], w[3], w[4], shapes[x][2],
                                            shapes[x][3], shapes[x][4]], "node '\(node.name)' MACs")
            case .linear:
                return try Checked.multiply(widths[y], widths[x], "node '\(node.name)' MACs")
            case .batchNorm, .normalization, .activation, .binary, .concat, .maxPool, .avgPool, .maxPool3d, .avgPool3d,
                 .adaptivePool, .globalAvgPool, .flatten, .resize, .resize3d, .correlation, .costVolume, .softmax,
                 .softArgmin, .identity, .channelShuffle, .channelChunk, .channelwise:
                return 0
            }
        }
    }

    /// Indices of the parameters that are learned (not running statistics).
    public var learnableParameters: Set<Int> {
        var learnable = Set<Int>()
        for node in nodes {
            switch node.op {
            case .batchNorm, .normalization: learnable.formUnion(node.parameters.prefix(2))
            default: learnable.formUnion(node.parameters)
            }
        }
        return learnable
    }

    /// Total MACs per sample and learnable parameter count.
    public func cost() throws -> Cost {
        return Cost(macs: try Checked.sum(nodeMACs(shapes: try inferShapes()), "total MACs"),
                    parameters: learnableParameters.reduce(0) { $0 + parameters[$1].tensor.count })
    }

    /// The cost of the compact network that keeping `keep[v][c]` would give,
    /// without building it.
    func cost(shapes: [[Int]], keep: [[Bool]]) throws -> Cost {
        let widths = keep.map { $0.filter { $0 }.count }
        let slices = parameterSlices(keep: keep)
        let parameterCount = learnableParameters.reduce(0) { total, index in
            var shape = parameters[index].tensor.shape
            if let keepOut = slices[index]?.keepOut { shape[0] = keepOut.filter { $0 }.count }
            if let keepIn = slices[index]?.keepIn { shape[1] = keepIn.filter { $0 }.count }
            return total + shape.reduce(1, *)
        }
        return Cost(macs: try Checked.sum(nodeMACs(shapes: shapes, widths: widths), "total MACs"), parameters: parameterCount)
    }
}
