import Testing
@testable import KCP

// The normalization family (LayerNorm over channels, GroupNorm,
// InstanceNorm): a double reference written from the definition, with and
// without a statistics mask, finite differences, and shape errors.

struct NormalizationCase: Sendable, CustomTestStringConvertible {
    var name: String
    var normalization: Normalization
    var shape: [Int]
    var testDescription: String { name }
}

let normalizationCases: [NormalizationCase] = [
    NormalizationCase(name: "layer norm over channels", normalization: Normalization(groups: 1, spatial: false, epsilon: 1e-5),
                      shape: [2, 6, 3, 4]),
    NormalizationCase(name: "layer norm over features", normalization: Normalization(groups: 1, spatial: false, epsilon: 1e-3),
                      shape: [3, 5]),
    NormalizationCase(name: "group norm", normalization: Normalization(groups: 3, spatial: true, epsilon: 1e-5),
                      shape: [2, 6, 3, 4]),
    NormalizationCase(name: "instance norm", normalization: Normalization(groups: 6, spatial: true, epsilon: 1e-5),
                      shape: [2, 6, 3, 4]),
]

/// `Normalization` from its definition, in double precision.
func naiveNormalization(_ x: Tensor, _ n: Normalization, weight: [Float], bias: [Float], mask: [Float]) -> NetReference {
    let (batch, channels) = (x.shape[0], x.shape[1]), positions = x.count / (batch * channels)
    let perGroup = channels / n.groups
    var y = NetReference(zeros: x.shape)
    for sample in 0..<batch {
        for group in 0..<n.groups {
            let members = (group * perGroup)..<((group + 1) * perGroup)
            for position in (n.spatial ? [0] : Array(0..<positions)) {
                let places = n.spatial ? Array(0..<positions) : [position]
                let counted = members.filter { mask[$0] != 0 }.flatMap { c in places.map { (c, $0) } }
                let at = { (c: Int, s: Int) in (sample * channels + c) * positions + s }
                let m = Double(counted.count)
                let mean = m == 0 ? 0 : counted.reduce(0.0) { $0 + Double(x.data[at($1.0, $1.1)]) } / m
                let variance = m == 0 ? 0 : counted.reduce(0.0) {
                    let d = Double(x.data[at($1.0, $1.1)]) - mean
                    return $0 + d * d
                } / m
                for c in members {
                    for s in places {
                        y.data[at(c, s)] = (Double(x.data[at(c, s)]) - mean) / (variance + Double(n.epsilon)).squareRoot()
                            * Double(weight[c]) + Double(bias[c])
                    }
                }
            }
        }
    }
    return y
}

@Suite("Normalization")
struct NormalizationTests {
    func parameters(_ channels: Int, seed: UInt64) -> (weight: Tensor, bias: Tensor) {
        var rng = SplitMix64(seed: seed)
        return (fdTensor([channels], &rng), fdTensor([channels], &rng))
    }

    @Test(arguments: normalizationCases)
    func forwardMatchesTheDefinition(_ c: NormalizationCase) throws {
        var rng = SplitMix64(seed: 70)
        let x = fdTensor(c.shape, &rng, scale: 3)
        let (weight, bias) = parameters(c.shape[1], seed: 71)
        let ones = Tensor(shape: [c.shape[1]], data: [Float](repeating: 1, count: c.shape[1]))
        netExpect(try netRunOp(.normalization(c.normalization), [x], parameters: [weight, bias, ones]),
                  naiveNormalization(x, c.normalization, weight: weight.data, bias: bias.data, mask: ones.data),
                  tolerance: 1e-5)
    }

    /// With a statistics mask, only the kept channels count, whatever the others hold.
    @Test(arguments: normalizationCases)
    func maskedChannelsDoNotCount(_ c: NormalizationCase) throws {
        var rng = SplitMix64(seed: 72)
        let x = fdTensor(c.shape, &rng, scale: 3)
        let (weight, bias) = parameters(c.shape[1], seed: 73)
        let perGroup = c.shape[1] / c.normalization.groups
        // Drops channel 1 of every group that has two or more, and all of the last group.
        let mask = (0..<c.shape[1]).map { channel -> Float in
            channel % perGroup == 1 || channel >= c.shape[1] - perGroup && c.normalization.groups > 1 ? 0 : 1
        }
        let y = try netRunOp(.normalization(c.normalization), [x], parameters: [weight, bias, Tensor(shape: [c.shape[1]], data: mask)])
        netExpect(y, naiveNormalization(x, c.normalization, weight: weight.data, bias: bias.data, mask: mask), tolerance: 1e-5)
    }

    @Test(arguments: normalizationCases)
    func finiteDifferences(_ c: NormalizationCase) {
        var rng = SplitMix64(seed: 74)
        let (weight, bias) = parameters(c.shape[1], seed: 75)
        let ones = Tensor(shape: [c.shape[1]], data: [Float](repeating: 1, count: c.shape[1]))
        fdCheckOp(.normalization(c.normalization), [fdTensor(c.shape, &rng)], parameters: [weight, bias, ones], seed: 76)
    }

    @Test func groupsMustDivideTheChannels() {
        let op = Op.normalization(Normalization(groups: 4, spatial: true, epsilon: 1e-5))
        netExpectInvalidArgument("network", ["4 groups do not divide 6 channels"]) {
            _ = try op.outputShape(inputs: [[1, 6, 2, 2]], parameters: [[6], [6], [6]])
        }
        netExpectInvalidArgument("network", ["epsilon must be positive"]) {
            _ = try Op.normalization(Normalization(groups: 1, spatial: false, epsilon: 0))
                .outputShape(inputs: [[1, 6, 2, 2]], parameters: [[6], [6], [6]])
        }
    }
}
