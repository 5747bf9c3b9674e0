import Testing
@testable import KCP

/// Whole-network gradients: for every network of the zoo and every
/// parameter tensor `p`, the analytic `dL/dp . v` along a random direction
/// `v` equals the central difference `(L(p + h v) - L(p - h v)) / 2h` of
/// `L = sum r * outputs`, in training mode (batch statistics) and eval mode.
/// Each op's backward, kinks included, is checked tightly on its own
/// (Backward*Tests); this checks the plumbing (routing, fan-out sums, shared
/// parameters, batch statistics) on smooth versions of the networks (relu
/// becomes sigmoid, max pooling average pooling) so that the difference
/// quotient is exact up to float32 rounding: the tolerance is 5% plus 20
/// roundings of `L` over `2h`, where a routing error is O(100%).
@Suite("Network backward")
struct NetworkBackwardTests {
    static let networks: [NetZoo] = [.chain, .resnet, .concatSkip, .unet, .stereo, .depthwiseSeparable, .twoOutputs, .gated,
                                     .mobileNetV3, .resNeXt, .shuffleNet, .layerScale]

    @Test(arguments: networks, [true, false])
    func parameterGradientsMatchFiniteDifferences(zoo: NetZoo, training: Bool) throws {
        let builder = try zoo.build()
        let network = smoothed(builder.net)
        let inputs = builder.inputs(batch: 2)
        var rng = SplitMix64(seed: 7)
        let pass = try network.trainingForward(inputs, training: training)
        let weights = pass.outputs(of: network).map { fdTensor($0.shape, &rng) }
        func loss(_ net: Network) throws -> Double {
            zip(weights, try net.trainingForward(inputs, training: training).outputs(of: net)).reduce(0) { $0 + fdDot($1.0, $1.1) }
        }
        let gradients = try network.backward(pass, outputGradients: weights)
        let step: Float = 1e-3
        let noise = 20 * Double(Float.ulpOfOne) * abs(try loss(network)) / (2 * Double(step))
        let learnable = network.learnableParameters
        for index in network.parameters.indices where learnable.contains(index) {
            let direction = fdUniform(network.parameters[index].tensor.count, &rng)
            let analytic = zip(gradients[index].data, direction).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            var up = network, down = network
            try up.setParameter(index, data: zip(network.parameters[index].tensor.data, direction).map { $0 + step * $1 })
            try down.setParameter(index, data: zip(network.parameters[index].tensor.data, direction).map { $0 - step * $1 })
            let numeric = (try loss(up) - loss(down)) / (2 * Double(step))
            #expect(abs(analytic - numeric) <= 5e-2 * max(abs(numeric), abs(analytic)) + noise,
                    "\(zoo) \(network.parameters[index].name): analytic \(analytic), numeric \(numeric)")
        }
    }

    /// The network with its kinks smoothed: relu, leaky relu, clip, hardswish
    /// and hardsigmoid become sigmoid, max pooling (adaptive too) average pooling.
    func smoothed(_ network: Network) -> Network {
        var smooth = network
        for index in smooth.nodes.indices {
            switch smooth.nodes[index].op {
            case let .activation(a) where [.relu, .leakyRelu, .clip, .hardswish, .hardsigmoid].contains(a.kind):
                smooth.nodes[index].op = .activation(.sigmoid)
            case let .maxPool(pool): smooth.nodes[index].op = .avgPool(pool)
            case let .adaptivePool(height, width, _): smooth.nodes[index].op = .adaptivePool(height: height, width: width, max: false)
            default: break
            }
        }
        return smooth
    }

    @Test func sharedParametersSumTheirUsersGradients() throws {
        let builder = try NetZoo.stereo.build()
        let network = builder.net
        let pass = try network.trainingForward(builder.inputs(batch: 1))
        let gradients = try network.backward(pass, outputGradients: pass.outputs(of: network).map { Tensor(shape: $0.shape, data: [Float](repeating: 1, count: $0.count)) })
        let shared = Dictionary(grouping: network.nodes.flatMap(\.parameters), by: { $0 })
            .filter { $0.value.count > 1 && network.learnableParameters.contains($0.key) }
        #expect(!shared.isEmpty)
        for parameter in shared.keys { #expect(gradients[parameter].data.contains { $0 != 0 }) }
    }

    @Test func wrongOutputGradientsAreRefused() throws {
        let builder = try NetZoo.chain.build()
        let pass = try builder.net.trainingForward(builder.inputs(batch: 1))
        #expect(throws: KCPError.self) { _ = try builder.net.backward(pass, outputGradients: []) }
        #expect(throws: KCPError.self) {
            _ = try builder.net.backward(pass, outputGradients: [Tensor(zeros: [3])])
        }
    }
}
