extension Network {
    /// Runs the network on `inputs` (one tensor per graph input, any batch
    /// size) and returns its outputs. Values are freed after their last use.
    /// A conv followed by a batchnorm (a residual add, a relu or hardswish) that alone read
    /// its output runs as one step (`fusedChains`), and so do two such chains of a 1x1 conv and
    /// the depthwise conv that alone reads it, an activation between them or not (`expansions`), and a resize whose
    /// output only the next node, a concat, reads (`resizesIntoConcats`), with the same results.
    /// - Parameter nodeSeconds: if given, receives each node's wall time (a
    ///   fused chain's time is its first node's).
    public func forward(_ inputs: [Tensor], nodeSeconds: UnsafeMutablePointer<Double>? = nil) throws -> [Tensor] {
        let shapes = try shapes(for: inputs)
        var lastUse = [Int](repeating: -1, count: valueCount), readers = [Int](repeating: 0, count: valueCount)
        for (index, node) in nodes.enumerated() {
            for value in node.inputs { (lastUse[value], readers[value]) = (index, readers[value] + 1) }
        }
        for value in outputs { lastUse[value] = nodes.count }

        var values = [Tensor?](repeating: nil, count: valueCount)
        for (tensor, input) in zip(inputs, self.inputs) { values[input.value] = tensor }
        let chains = fusedChains(lastUse: lastUse, readers: readers, shapes: shapes)
        let expansions = expansions(chains: chains, lastUse: lastUse, readers: readers, shapes: shapes)
        let resizesIntoConcats = resizesIntoConcats(lastUse: lastUse, readers: readers)
        var index = 0
        while index < nodes.count {
            let node = nodes[index]
            let last = expansions[index].map { $0.depthwise + chains[$0.depthwise]!.length }
                ?? index + (chains[index]?.length ?? (resizesIntoConcats[index] ? 1 : 0))
            let x = node.inputs.map { values[$0]! }
            let p = node.parameters.map { parameters[$0].tensor }
            let start = monotonicSeconds()
            if let (depthwise, between, pair) = expansions[index] {
                var activation: Activation? = nil
                if let between, case let .activation(a) = nodes[between].op { activation = a }
                values[nodes[last].output] = expandedDepthwiseForward(pair, nodes[index..<(between ?? depthwise)],
                                                                      activation, nodes[depthwise...last], x[0],
                                                                      outputShape: shapes[nodes[depthwise].output])
            } else if let chain = chains[index] {
                let residual = chain.residual.map { values[$0]! }
                // The residual's memory may take the output where the chain's add reads it last, and
                // neither the caller (a graph input) nor the conv (its own input) holds it.
                let reusable = chain.residual.map { r in
                    lastUse[r] <= last && !node.inputs.contains(r) && !self.inputs.contains { $0.value == r }
                } ?? false
                if reusable { values[chain.residual!] = nil }
                values[nodes[last].output] = fusedConvForward(nodes[index...last], x[0], parameters: p,
                                                              residual: consume residual, residualReusable: reusable,
                                                              outputShape: shapes[node.output])
            } else if resizesIntoConcats[index], case let .resize(r) = node.op {
                values[nodes[last].output] = concatForward(nodes[last].inputs.map { value in
                    value == node.output ? .resized(x[0], r) : .tensor(values[value]!)
                })
            } else {
                values[node.output] = node.op.forward(x, parameters: p, outputShape: shapes[node.output])
            }
            for step in index...last {
                nodeSeconds?[step] = step == index ? monotonicSeconds() - start : 0
                for value in nodes[step].inputs where lastUse[value] == step { values[value] = nil }
            }
            index = last + 1
        }
        return outputs.map { values[$0]! }
    }

    /// For each conv (2-D or 3-D), the nodes right after it that fold into it, each the
    /// only reader of the value before it (which is no graph output): its
    /// batchnorm, then an add whose other operand (`residual`) exists before
    /// the conv runs, then an activation of `ConvEpilogue.activations`. Nil where nothing folds.
    private func fusedChains(lastUse: [Int], readers: [Int], shapes: [[Int]]) -> [(length: Int, residual: Int?)?] {
        var producer = [Int](repeating: -1, count: valueCount)
        for (index, node) in nodes.enumerated() { producer[node.output] = index }
        let readAlone = { (index: Int) in
            index + 1 < nodes.count && nodes[index + 1].inputs.contains(nodes[index].output)
                && readers[nodes[index].output] == 1 && lastUse[nodes[index].output] == index + 1
        }
        return nodes.indices.map { index in
            guard [.conv2d, .conv3d].contains(nodes[index].op.kind), readAlone(index), case .batchNorm = nodes[index + 1].op
            else { return nil }
            var (last, residual): (Int, Int?) = (index + 1, nil)
            if readAlone(last), nodes[last + 1].op == .binary(.add), nodes[last + 1].inputs.count == 2,
               let other = nodes[last + 1].inputs.first(where: { $0 != nodes[last].output }), producer[other] < index,
               shapes[other] == shapes[nodes[last].output] {
                (last, residual) = (last + 1, other)
            }
            if readAlone(last), case let .activation(a) = nodes[last + 1].op, ConvEpilogue.activations.contains(a.kind) {
                last += 1
            }
            return (last - index, residual)
        }
    }

    /// For each fused chain (`fusedChains`) of a 1x1 conv whose output only the chain of a depthwise
    /// conv reads, directly or through an activation the epilogue does not apply (MobileNetV2's ReLU6,
    /// EfficientNet's SiLU) that alone reads it, neither chain adding a residual, where the two run
    /// band by band (`ExpandedDepthwise.inBands`): the index of the depthwise conv, of the activation,
    /// and the pair.
    private func expansions(chains: [(length: Int, residual: Int?)?], lastUse: [Int], readers: [Int],
                            shapes: [[Int]]) -> [(depthwise: Int, activation: Int?, pair: ExpandedDepthwise)?]
    {
        /// Whether node `index`'s output is read by the next node alone.
        func readByNext(_ index: Int) -> Bool {
            let output = nodes[index].output
            return index + 1 < nodes.count && nodes[index + 1].inputs == [output] && readers[output] == 1
                && lastUse[output] == index + 1
        }
        return nodes.indices.map { index in
            guard let chain = chains[index], chain.residual == nil, readByNext(index + chain.length)
            else { return nil }
            var next = index + chain.length + 1, between: Int? = nil
            if case .activation = nodes[next].op, readByNext(next) { (between, next) = (next, next + 1) }
            guard let after = chains[next], after.residual == nil,
                  case let .conv2d(e) = nodes[index].op, case let .conv2d(d) = nodes[next].op
            else { return nil }
            let geometry = { (node: Node, conv: Conv2d) in
                ConvGeometry(input: shapes[node.inputs[0]], weight: self.parameters[node.parameters[0]].tensor.shape,
                             output: shapes[node.output], conv)
            }
            return ExpandedDepthwise.inBands(expand: geometry(nodes[index], e), depthwise: geometry(nodes[next], d))
                .map { (next, between, $0) }
        }
    }

    /// For each node, whether it is a 2-D resize whose output only the next node, a concat, reads
    /// (once, and it is no graph output): the resize then writes into the concat's channels
    /// (`ConcatPart.resized`), the concat's other inputs being computed already. A U-Net's decoder
    /// upsamples and concatenates so: at 512x512 the two steps took 6.6 and 6.2 ms, and the network
    /// ran 134-148 -> 128-133 ms at 1 thread, 72-74 -> 65-71 ms at 2 (Xeon, AVX-512).
    private func resizesIntoConcats(lastUse: [Int], readers: [Int]) -> [Bool] {
        nodes.indices.map { index in
            guard case .resize = nodes[index].op, index + 1 < nodes.count, case .concat = nodes[index + 1].op else {
                return false
            }
            let output = nodes[index].output
            return readers[output] == 1 && lastUse[output] == index + 1 && nodes[index + 1].inputs.contains(output)
        }
    }

    /// `chain` (conv, batchnorm, add?, activation?) on the conv's input `x`, the
    /// batchnorm, the add of `residual` and the activation applied to each tile of
    /// the conv's output as it is written (over the residual, where it is `residualReusable`).
    private func fusedConvForward(_ chain: ArraySlice<Node>, _ x: Tensor, parameters p: [Tensor],
                                  residual: consuming Tensor?, residualReusable: Bool, outputShape: [Int]) -> Tensor
    {
        let (bias, normalization, activation) = epilogueSettings(chain)
        switch chain.first!.op {
        case let .conv2d(conv):
            return conv2dForward(x, weight: p[0], bias: bias, conv, outputShape: outputShape,
                                 normalization: normalization, residual: consume residual,
                                 residualReusable: residualReusable, activation: activation)
        case let .conv3d(conv):
            return conv3dForward(x, weight: p[0], bias: bias, conv, outputShape: outputShape,
                                 normalization: normalization, residual: consume residual,
                                 residualReusable: residualReusable, activation: activation)
        default: preconditionFailure("a fused chain starts with a conv2d or conv3d")
        }
    }

    /// The chain `expand` (a 1x1 conv, batchnorm, activation?) on `x`, then `activation` where given,
    /// and the chain `depthwise` (a depthwise conv, batchnorm, activation?) on that, band by band
    /// (`pair`).
    private func expandedDepthwiseForward(_ pair: ExpandedDepthwise, _ expand: ArraySlice<Node>,
                                          _ activation: Activation?, _ depthwise: ArraySlice<Node>, _ x: Tensor,
                                          outputShape: [Int]) -> Tensor
    {
        let weights = (parameters[expand.first!.parameters[0]].tensor, parameters[depthwise.first!.parameters[0]].tensor)
        let (first, second) = (epilogueSettings(expand), epilogueSettings(depthwise))
        return Tensor(shape: outputShape) { ys in
            let y = ys.baseAddress!
            x.data.withUnsafeBufferPointer { xs in
                withConvEpilogue(bias: first.bias, normalization: first.normalization, residual: nil,
                                 activation: first.activation, output: y) { expandEpilogue in
                    withConvEpilogue(bias: second.bias, normalization: second.normalization, residual: nil,
                                     activation: second.activation, output: y) { depthwiseEpilogue in
                        KCP.expandedDepthwiseForward(xs.baseAddress!, pair, expandWeight: weights.0,
                                                     expandEpilogue: expandEpilogue, activation: activation,
                                                     depthwiseWeight: weights.1, depthwiseEpilogue: depthwiseEpilogue,
                                                     into: y)
                    }
                }
            }
        }
    }

    /// The epilogue of a fused chain (conv, batchnorm, add?, activation?): the conv's bias, the
    /// batchnorm's scale and shift, and the activation.
    private func epilogueSettings(_ chain: ArraySlice<Node>)
        -> (bias: Tensor?, normalization: (scale: [Float], shift: [Float]), activation: Activation.Kind?)
    {
        guard case let .batchNorm(epsilon) = chain.dropFirst().first!.op
        else { preconditionFailure("a fused chain starts with conv, batchnorm") }
        let n = chain.dropFirst().first!.parameters.map { parameters[$0].tensor.data }
        let normalization = batchNormScaleShift(gamma: n[0], beta: n[1], mean: n[2], variance: n[3], epsilon: epsilon)
        let conv = chain.first!.parameters
        var activation: Activation.Kind? = nil
        if case let .activation(a) = chain.last!.op { activation = a.kind }
        return (conv.count > 1 ? parameters[conv[1]].tensor : nil, normalization, activation)
    }

    /// Checks `inputs` against the network's inputs (one batch size, at
    /// least 1, for all) and infers every value's shape for them.
    func shapes(for inputs: [Tensor]) throws -> [[Int]] {
        MemoryPolicy.keepFreedMemory()
        try require(inputs.count == self.inputs.count, "inputs",
                    "the network has \(self.inputs.count) inputs, got \(inputs.count)")
        let batch = inputs.first?.shape.first
        try require((batch ?? 1) >= 1, "inputs", "the batch must hold at least one sample")
        for (tensor, input) in zip(inputs, self.inputs) {
            try require(tensor.shape.first == batch && tensor.shape.dropFirst() == input.shape.dropFirst(), "inputs",
                        "input '\(valueNames[input.value])' must be [\(batch ?? 0)] + \(Array(input.shape.dropFirst())) (one batch size for all inputs), got \(tensor.shape)")
        }
        if let node = nodes.first(where: { !$0.op.hasKernel }) {
            throw KCPError.invalidArgument(argument: "network",
                                           reason: "node '\(node.name)' (\(node.op.name)) has no kernel in the engine: the network can be pruned, compacted and exported, not run natively")
        }
        return try inferShapes(batch: batch)
    }
}

extension Op {
    /// This op applied to `inputs`, whose shapes were checked by shape inference.
    func forward(_ inputs: [Tensor], parameters p: [Tensor], outputShape: [Int]) -> Tensor {
        let x = inputs[0]
        switch self {
        case let .conv2d(conv):
            return conv2dForward(x, weight: p[0], bias: p.count > 1 ? p[1] : nil, conv, outputShape: outputShape)
        case let .convTranspose2d(t):
            return convTranspose2dForward(x, weight: p[0], bias: p.count > 1 ? p[1] : nil, t, outputShape: outputShape)
        case let .conv3d(conv):
            return conv3dForward(x, weight: p[0], bias: p.count > 1 ? p[1] : nil, conv, outputShape: outputShape)
        case let .convTranspose3d(t):
            return convTranspose3dForward(x, weight: p[0], bias: p.count > 1 ? p[1] : nil, t, outputShape: outputShape)
        case let .batchNorm(epsilon):
            return batchNormInference(x, gamma: p[0].data, beta: p[1].data, mean: p[2].data, variance: p[3].data,
                                      epsilon: epsilon)
        case let .normalization(n):
            return normalizationForward(x, n, weight: p[0].data, bias: p[1].data, mask: p[2].data)
        case let .activation(a): return activationForward(x, a)
        case let .binary(b): return binaryForward(x, inputs.count > 1 ? inputs[1] : p[0], b, outputShape: outputShape)
        case .concat: return concatForward(inputs)
        case let .maxPool(pool): return pool2dForward(x, pool, max: true, outputShape: outputShape)
        case let .avgPool(pool): return pool2dForward(x, pool, max: false, outputShape: outputShape)
        case let .adaptivePool(_, _, useMax): return adaptivePoolForward(x, max: useMax, outputShape: outputShape)
        case let .maxPool3d(pool): return pool3dForward(x, pool, max: true, outputShape: outputShape)
        case let .avgPool3d(pool): return pool3dForward(x, pool, max: false, outputShape: outputShape)
        case .globalAvgPool: return globalAvgPoolForward(x)
        case .flatten: return Tensor(shape: outputShape, data: x.data)
        case .linear: return linearForward(x, weight: p[0], bias: p.count > 1 ? p[1] : nil)
        case let .resize(r): return resizeForward(x, r)
        case let .resize3d(r): return resize3dForward(x, r)
        case let .correlation(maxDisparity, scale):
            return correlationForward(x, inputs[1], maxDisparity: maxDisparity, scale: scale)
        case .softmax: return softmaxForward(x)
        case let .costVolume(v):
            switch v.kind {
            case .concatenation: return concatenationVolumeForward(x, inputs[1], maxDisparity: v.maxDisparity)
            case .groupCorrelation:
                return groupCorrelationForward(x, inputs[1], maxDisparity: v.maxDisparity, groups: v.groups, scale: v.scale)
            }
        case let .softArgmin(sign): return softArgminForward(x, sign: sign)
        case .identity: return x
        case let .channelShuffle(groups): return shuffleChannels(x, groups: groups)
        case let .channelChunk(index, parts): return channelSlice(x, start: index * x.shape[1] / parts, count: outputShape[1])
        case .channelwise: preconditionFailure("shapes(for:) refuses networks with channelwise nodes")
        }
    }
}
