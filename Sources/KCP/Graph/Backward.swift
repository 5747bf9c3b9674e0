/// Training passes over a network: a forward pass that keeps every value
/// (batchnorm on batch statistics), and the backward pass from output
/// gradients to parameter gradients.
public struct TrainingPass: Sendable {
    /// Every value of the forward pass, by value index.
    public var values: [Tensor]
    /// Batch mean and biased variance of each batchnorm node (by node index)
    /// in training mode.
    public var batchStatistics: [Int: (mean: [Float], variance: [Float])]
    /// Whether batchnorm used batch statistics.
    public var training: Bool

    public func outputs(of network: Network) -> [Tensor] { network.outputs.map { values[$0] } }
}

extension Network {
    /// Runs the network keeping every value. With `training`, batchnorm
    /// normalises by batch statistics (returned for the running averages);
    /// otherwise by its running statistics, as at inference. With `last`,
    /// only nodes up to that index run (the later values stay empty).
    public func trainingForward(_ inputs: [Tensor], training: Bool = true, through last: Int? = nil) throws
        -> TrainingPass
    {
        let shapes = try shapes(for: inputs)
        var values = [Tensor](repeating: Tensor(zeros: [0]), count: valueCount)
        for (tensor, input) in zip(inputs, self.inputs) { values[input.value] = tensor }
        var statistics = [Int: (mean: [Float], variance: [Float])]()
        for (index, node) in nodes.enumerated().prefix((last ?? nodes.count - 1) + 1) {
            let x = node.inputs.map { values[$0] }
            let p = node.parameters.map { parameters[$0].tensor }
            if training, case let .batchNorm(epsilon) = node.op {
                let (y, mean, variance) = batchNormTrainingForward(x[0], gamma: p[0].data, beta: p[1].data,
                                                                   epsilon: epsilon)
                values[node.output] = y
                statistics[index] = (mean, variance)
            } else {
                values[node.output] = node.op.forward(x, parameters: p, outputShape: shapes[node.output])
            }
        }
        return TrainingPass(values: values, batchStatistics: statistics, training: training)
    }

    /// Gradients of every parameter (by parameter index; shared parameters
    /// sum over their users) from the gradients of the network's outputs.
    public func backward(_ pass: TrainingPass, outputGradients: [Tensor]) throws -> [Tensor] {
        try require(outputGradients.count == outputs.count, "output_gradients",
                    "the network has \(outputs.count) outputs, got \(outputGradients.count)")
        var gradients = [Tensor?](repeating: nil, count: valueCount)
        for (value, gradient) in zip(outputs, outputGradients) {
            try require(gradient.shape == pass.values[value].shape, "output_gradients",
                        "shape \(gradient.shape) does not match output \(pass.values[value].shape)")
            accumulate(&gradients[value], gradient)
        }
        var parameterGradients = [Tensor?](repeating: nil, count: parameters.count)
        let needed = valuesNeedingGradients
        for (index, node) in nodes.enumerated().reversed() {
            guard needed[node.output], let gradient = gradients[node.output] else { continue }
            gradients[node.output] = nil
            let x = node.inputs.map { pass.values[$0] }
            let p = node.parameters.map { parameters[$0].tensor }
            let (inputGradients, weightGradients) = node.op.backward(
                x, parameters: p, output: pass.values[node.output], statistics: pass.batchStatistics[index],
                gradient: gradient, inputGradients: node.inputs.contains { needed[$0] })
            for (value, g) in zip(node.inputs, inputGradients) where needed[value] { accumulate(&gradients[value], g) }
            for (parameter, g) in zip(node.parameters, weightGradients) { accumulate(&parameterGradients[parameter], g) }
        }
        return zip(parameterGradients, parameters).map { $0 ?? Tensor(zeros: $1.tensor.shape) }
    }

    /// By value index: whether a parameter lies upstream of the value, so
    /// that the backward pass needs its gradient. A network input's gradient
    /// is never needed, nor that of any value computed from inputs alone (the
    /// first conv's `dL/dx` is skipped).
    var valuesNeedingGradients: [Bool] {
        var needed = [Bool](repeating: false, count: valueCount)
        for node in nodes { needed[node.output] = !node.parameters.isEmpty || node.inputs.contains { needed[$0] } }
        return needed
    }
}

/// `total += g` (or `total = g` when there is none yet).
private func accumulate(_ total: inout Tensor?, _ g: Tensor) {
    if total == nil { total = g } else { addAssign(&total!, g) }
}

extension Op {
    /// Gradients with respect to each input and each parameter, given the
    /// gradient of the output. `statistics` are the batch statistics of a
    /// batchnorm run in training mode (nil: running statistics were used).
    /// Without `inputGradients` (no input needs one), a conv may return no
    /// input gradients.
    func backward(_ inputs: [Tensor], parameters p: [Tensor], output: Tensor,
                  statistics: (mean: [Float], variance: [Float])?, gradient: Tensor,
                  inputGradients: Bool = true) -> (inputs: [Tensor], parameters: [Tensor])
    {
        let x = inputs[0]
        switch self {
        case let .conv2d(conv):
            let g = conv2dBackward(x, weight: p[0], hasBias: p.count > 1, conv, gradient: gradient,
                                   inputGradient: inputGradients)
            return (g.input.map { [$0] } ?? [], [g.weight] + (g.bias.map { [$0] } ?? []))
        case let .convTranspose2d(t):
            let g = convTranspose2dBackward(x, weight: p[0], hasBias: p.count > 1, t, gradient: gradient)
            return ([g.input], [g.weight] + (g.bias.map { [$0] } ?? []))
        case let .conv3d(conv):
            let g = conv3dBackward(x, weight: p[0], hasBias: p.count > 1, conv, gradient: gradient)
            return ([g.input], [g.weight] + (g.bias.map { [$0] } ?? []))
        case let .convTranspose3d(t):
            let g = convTranspose3dBackward(x, weight: p[0], hasBias: p.count > 1, t, gradient: gradient)
            return ([g.input], [g.weight] + (g.bias.map { [$0] } ?? []))
        case let .batchNorm(epsilon):
            let (mean, variance) = statistics ?? (p[2].data, p[3].data)
            let g = batchNormBackward(x, gamma: p[0].data, mean: mean, variance: variance, epsilon: epsilon,
                                      training: statistics != nil, gradient: gradient)
            return ([g.input], [Tensor(shape: p[0].shape, data: g.gamma), Tensor(shape: p[1].shape, data: g.beta),
                                Tensor(zeros: p[2].shape), Tensor(zeros: p[3].shape)])
        case let .normalization(n):
            let g = normalizationBackward(x, n, weight: p[0].data, mask: p[2].data, gradient: gradient)
            return ([g.input], [Tensor(shape: p[0].shape, data: g.weight), Tensor(shape: p[1].shape, data: g.bias),
                                Tensor(zeros: p[2].shape)])
        case let .activation(a): return ([activationBackward(x, a, output: output, gradient: gradient)], [])
        case let .binary(b):
            let g = binaryBackward(x, inputs.count > 1 ? inputs[1] : p[0], b, gradient: gradient)
            return inputs.count > 1 ? ([g.a, g.b], []) : ([g.a], [g.b])
        case .concat: return (concatBackward(gradient, channels: inputs.map { $0.shape[1] }), [])
        case let .maxPool(pool): return ([pool2dBackward(x, pool, max: true, gradient: gradient)], [])
        case let .avgPool(pool): return ([pool2dBackward(x, pool, max: false, gradient: gradient)], [])
        case let .adaptivePool(_, _, useMax): return ([adaptivePoolBackward(x, max: useMax, gradient: gradient)], [])
        case let .maxPool3d(pool): return ([pool3dBackward(x, pool, max: true, gradient: gradient)], [])
        case let .avgPool3d(pool): return ([pool3dBackward(x, pool, max: false, gradient: gradient)], [])
        case .globalAvgPool: return ([globalAvgPoolBackward(inputShape: x.shape, gradient: gradient)], [])
        case .flatten: return ([Tensor(shape: x.shape, data: gradient.data)], [])
        case .linear:
            let g = linearBackward(x, weight: p[0], hasBias: p.count > 1, gradient: gradient)
            return ([g.input], [g.weight] + (g.bias.map { [$0] } ?? []))
        case let .resize(r): return ([resizeBackward(gradient, inputShape: x.shape, r)], [])
        case let .resize3d(r): return ([resize3dBackward(gradient, inputShape: x.shape, r)], [])
        case let .correlation(maxDisparity, scale):
            let g = correlationBackward(x, inputs[1], maxDisparity: maxDisparity, scale: scale, gradient: gradient)
            return ([g.left, g.right], [])
        case .softmax: return ([softmaxBackward(output: output, gradient: gradient)], [])
        case let .costVolume(v):
            let g = v.kind == .concatenation
                ? concatenationVolumeBackward(inputShape: x.shape, maxDisparity: v.maxDisparity, gradient: gradient)
                : groupCorrelationBackward(x, inputs[1], maxDisparity: v.maxDisparity, groups: v.groups, scale: v.scale,
                                           gradient: gradient)
            return ([g.left, g.right], [])
        case let .softArgmin(sign): return ([softArgminBackward(x, sign: sign, gradient: gradient)], [])
        case .identity: return ([gradient], [])
        case let .channelShuffle(groups): return ([shuffleChannels(gradient, groups: gradient.shape[1] / groups)], [])
        case let .channelChunk(index, parts):
            return ([channelSliceBackward(gradient, start: index * x.shape[1] / parts, inputShape: x.shape)], [])
        case .channelwise: preconditionFailure("shapes(for:) refuses networks with channelwise nodes")
        }
    }
}
