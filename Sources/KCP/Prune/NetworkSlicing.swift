/// Masked and compact forms of a network for a choice of kept channel classes.
///
/// Every parameter is sliced along axis 0 (the outputs a producer writes, or
/// a batchnorm's channels) and axis 1 (the inputs a consumer reads), the
/// other way round for a transposed conv's `[I, O/g, kh, kw]` (or `[I, O/g, kd, kh, kw]`) weight; how is
/// decided by the first node using it.
extension Network {
    /// Which entries of a parameter survive: `out` over axis 0, `in` over
    /// axis 1 (`nil`: the whole axis).
    struct ParameterSlice {
        var keepOut: [Bool]?
        var keepIn: [Bool]?
        /// Masked entries become 1, not 0: a batchnorm's running variance (the
        /// identity), a constant divisor (a pruned channel stays 0 / 1 = 0).
        var masksToOne = false
    }

    /// The slice of every parameter given kept channels per value.
    func parameterSlices(keep: [[Bool]]) -> [Int: ParameterSlice] {
        var slices = [Int: ParameterSlice]()
        for node in nodes {
            let x = node.inputs[0], y = node.output
            switch node.op {
            case .conv2d, .conv3d:
                // Grouped convs keep the same positions in every group (ChannelSpaces), so group 0's say which.
                let groups = node.op.convolutionGroups!
                let weightIn = groups == 1 ? keep[x] : groups == keep[x].count ? nil
                    : Array(keep[x].prefix(keep[x].count / groups))
                slices[node.parameters[0]] = slices[node.parameters[0]] ?? ParameterSlice(keepOut: keep[y], keepIn: weightIn)
                if node.parameters.count > 1 { slices[node.parameters[1]] = ParameterSlice(keepOut: keep[y]) }
            case .convTranspose2d, .convTranspose3d:
                // The weight [I, O/g, k...] is read by input channels along axis 0 and writes outputs along axis 1.
                let groups = node.op.convolutionGroups!
                let weightOut = groups == 1 ? keep[y] : groups == keep[x].count ? nil
                    : Array(keep[y].prefix(keep[y].count / groups))
                slices[node.parameters[0]] = slices[node.parameters[0]] ?? ParameterSlice(keepOut: keep[x], keepIn: weightOut)
                if node.parameters.count > 1 { slices[node.parameters[1]] = ParameterSlice(keepOut: keep[y]) }
            case .linear:
                slices[node.parameters[0]] = slices[node.parameters[0]] ?? ParameterSlice(keepOut: keep[y], keepIn: keep[x])
                if node.parameters.count > 1 { slices[node.parameters[1]] = ParameterSlice(keepOut: keep[y]) }
            case .normalization:
                for p in node.parameters { slices[p] = ParameterSlice(keepOut: keep[x]) }
            case .batchNorm:
                for (position, p) in node.parameters.enumerated() {
                    slices[p] = ParameterSlice(keepOut: keep[x], masksToOne: position == 3)
                }
            case let .binary(binary):
                // A constant operand follows the channels where it has one per channel.
                if let constant = node.parameters.first, parameters[constant].tensor.shape.first == keep[y].count,
                   keep[y].count > 1
                {
                    slices[constant] = ParameterSlice(keepOut: keep[y], masksToOne: binary.kind == .div && !binary.constantFirst)
                }
            case .activation, .concat, .maxPool, .avgPool, .maxPool3d, .avgPool3d, .adaptivePool, .globalAvgPool, .flatten,
                 .resize, .resize3d,
                 .correlation, .costVolume, .softmax, .softArgmin, .identity, .channelShuffle, .channelChunk, .channelwise:
                break
            }
        }
        return slices
    }

    /// Per value, whether each channel is kept, from kept classes.
    func channelKeep(_ spaces: ChannelSpaces, keepClasses: [Bool]) -> [[Bool]] {
        spaces.classOf.map { classes in classes.map { keepClasses[$0] } }
    }

    /// Checks that `keepClasses` keeps every frozen class and a channel of every value.
    func validate(_ spaces: ChannelSpaces, keepClasses: [Bool]) throws {
        try require(keepClasses.count == spaces.classCount, "keep",
                    "has \(keepClasses.count) entries, the network has \(spaces.classCount) channel classes")
        if let label = (0..<spaces.classCount).first(where: { spaces.frozen[$0] && !keepClasses[$0] }) {
            throw KCPError.invalidArgument(argument: "keep", reason: "channel class \(label) is frozen and must be kept")
        }
        for (value, classes) in spaces.classOf.enumerated() where !classes.isEmpty {
            try require(classes.contains { keepClasses[$0] }, "keep", "prunes every channel of '\(valueNames[value])'")
        }
    }

    /// The same network with pruned channels zeroed: producer filters and
    /// biases, consumer kernel clusters, batchnorm entries (running var 1),
    /// normalization entries (statistics mask 0: they no longer count).
    public func masked(_ spaces: ChannelSpaces, keepClasses: [Bool]) throws -> Network {
        try validate(spaces, keepClasses: keepClasses)
        var result = self
        for (index, slice) in parameterSlices(keep: channelKeep(spaces, keepClasses: keepClasses)) {
            let shape = try SliceShape(parameters[index].tensor.shape)
            try result.parameters[index].tensor.data.withUnsafeMutableBufferPointer { data in
                if let keepOut = slice.keepOut {
                    try zeroPruned(data.baseAddress!, shape: shape, keep: keepOut, axis: .output)
                    if slice.masksToOne {
                        let inner = data.count / keepOut.count
                        for (i, kept) in keepOut.enumerated() where !kept { data[(i * inner)..<((i + 1) * inner)].update(repeating: 1) }
                    }
                }
                if let keepIn = slice.keepIn { try zeroPruned(data.baseAddress!, shape: shape, keep: keepIn, axis: .input) }
            }
        }
        return result
    }

    /// The same network with pruned channels physically removed; depthwise
    /// convs (and transposed convs) keep one group per remaining channel, other grouped convs their
    /// groups with fewer channels each; GroupNorm keeps its whole groups left.
    public func compacted(_ spaces: ChannelSpaces, keepClasses: [Bool]) throws -> Network {
        try validate(spaces, keepClasses: keepClasses)
        let keep = channelKeep(spaces, keepClasses: keepClasses)
        var result = self
        for (index, slice) in parameterSlices(keep: keep) {
            let tensor = parameters[index].tensor
            var shape = tensor.shape
            if let keepOut = slice.keepOut { shape[0] = keepOut.filter { $0 }.count }
            if let keepIn = slice.keepIn { shape[1] = keepIn.filter { $0 }.count }
            var compact = Tensor(zeros: shape)
            try tensor.data.withUnsafeBufferPointer { source in
                try compact.data.withUnsafeMutableBufferPointer { destination in
                    try KCP.compact(source.baseAddress!, shape: SliceShape(tensor.shape), keepOut: slice.keepOut,
                                    keepIn: slice.keepIn, into: destination)
                }
            }
            result.parameters[index].tensor = compact
        }
        for (index, node) in nodes.enumerated() {
            switch node.op {
            case var .conv2d(conv) where conv.groups > 1 && conv.groups == keep[node.inputs[0]].count:
                conv.groups = keep[node.inputs[0]].filter { $0 }.count
                result.nodes[index].op = .conv2d(conv)
            case var .convTranspose2d(t) where t.groups > 1 && t.groups == keep[node.inputs[0]].count:
                t.groups = keep[node.inputs[0]].filter { $0 }.count
                result.nodes[index].op = .convTranspose2d(t)
            case var .conv3d(conv) where conv.groups > 1 && conv.groups == keep[node.inputs[0]].count:
                conv.plane.groups = keep[node.inputs[0]].filter { $0 }.count
                result.nodes[index].op = .conv3d(conv)
            case var .convTranspose3d(t) where t.groups > 1 && t.groups == keep[node.inputs[0]].count:
                t.plane.groups = keep[node.inputs[0]].filter { $0 }.count
                result.nodes[index].op = .convTranspose3d(t)
            case var .channelwise(shape):
                shape[0] = keep[node.output].filter { $0 }.count
                result.nodes[index].op = .channelwise(shape: shape)
            case var .normalization(n) where n.groups > 1:
                // Whole groups go (ChannelSpaces); InstanceNorm keeps a group per channel.
                n.groups = keep[node.inputs[0]].filter { $0 }.count / (keep[node.inputs[0]].count / n.groups)
                result.nodes[index].op = .normalization(n)
            default:
                break
            }
        }
        try result.reinferShapes()
        return result
    }
}
