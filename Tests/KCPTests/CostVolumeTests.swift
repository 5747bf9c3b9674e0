import Glibc
import Testing
@testable import KCP

/// `y[n, k, d, h, w]` of PSMNet's concatenation volume (`kind` concatenation)
/// or GwcNet's group-wise correlation, in doubles, one element at a time.
func naiveCostVolume(_ l: Tensor, _ r: Tensor, _ volume: CostVolume) -> NetReference {
    let (batch, channels, height, width) = (l.shape[0], l.shape[1], l.shape[2], l.shape[3])
    let (depth, concatenation) = (volume.maxDisparity, volume.kind == .concatenation)
    let k = concatenation ? 2 * channels : volume.groups
    var y = NetReference(zeros: [batch, k, depth, height, width])
    for n in 0..<batch {
        for g in 0..<k {
            for d in 0..<depth {
                for h in 0..<height {
                    for w in d..<max(width, d) {
                        let value: Double
                        if concatenation {
                            value = g < channels ? l[n, g, h, w] : r[n, g - channels, h, w - d]
                        } else {
                            let perGroup = channels / volume.groups
                            let group = g * perGroup..<(g + 1) * perGroup
                            value = Double(volume.scale) * group.reduce(0.0) { $0 + l[n, $1, h, w] * r[n, $1, h, w - d] }
                        }
                        y.data[(((n * k + g) * depth + d) * height + h) * width + w] = value
                    }
                }
            }
        }
    }
    return y
}

@Suite("Cost volumes and disparity regression")
struct CostVolumeTests {
    @Test func concatenationLiteral() throws {
        // One channel, one row: left [1, 2, 3], right [4, 5, 6]; disparity 1 shifts right by one, zero where w < d.
        let l = Tensor(shape: [1, 1, 1, 3], data: [1, 2, 3]), r = Tensor(shape: [1, 1, 1, 3], data: [4, 5, 6])
        netExpect(try netRunOp(.costVolume(CostVolume(.concatenation, maxDisparity: 2)), [l, r]), shape: [1, 2, 2, 1, 3],
                  [1, 2, 3, 0, 2, 3, 4, 5, 6, 0, 4, 5])
    }

    @Test func groupCorrelationLiteral() throws {
        // Two channels in two groups (each its own product), and in one group (their mean).
        let l = Tensor(shape: [1, 2, 1, 2], data: [1, 2, 3, 4]), r = Tensor(shape: [1, 2, 1, 2], data: [5, 6, 7, 8])
        netExpect(try netRunOp(.costVolume(CostVolume(.groupCorrelation, maxDisparity: 2, groups: 2, scale: 1)), [l, r]),
                  shape: [1, 2, 2, 1, 2], [5, 12, 0, 10, 21, 32, 0, 28])
        netExpect(try netRunOp(.costVolume(CostVolume(.groupCorrelation, maxDisparity: 2, groups: 1, scale: 0.5)), [l, r]),
                  shape: [1, 1, 2, 1, 2], [13, 22, 0, 19])
    }

    @Test(arguments: [CostVolume(.concatenation, maxDisparity: 4), CostVolume(.concatenation, maxDisparity: 9),
                      CostVolume(.groupCorrelation, maxDisparity: 3, groups: 2, scale: 1.0 / 3),
                      CostVolume(.groupCorrelation, maxDisparity: 7, groups: 6, scale: 1),
                      CostVolume(.groupCorrelation, maxDisparity: 1, groups: 1, scale: -0.5),
                      CostVolume(.groupCorrelation, maxDisparity: 22, groups: 3, scale: 0.5)])
    func volumesMatchTheNaiveOnes(_ volume: CostVolume) throws {
        var rng = SplitMix64(seed: 30)
        // Widths of 13 and 37 run the vector loops and their tails; disparities 7 to 22 pass the width 5.
        for shape in [[2, 6, 3, 13], [1, 6, 2, 5], [1, 6, 2, 37]] {
            let l = netTensor(shape, &rng), r = netTensor(shape, &rng)
            netExpect(try netRunOp(.costVolume(volume), [l, r]), naiveCostVolume(l, r, volume))
        }
    }

    /// DispNetC's correlation is the one-group correlation with its channel squeezed.
    @Test func correlationIsTheOneGroupVolume() throws {
        var rng = SplitMix64(seed: 31)
        let l = netTensor([2, 4, 3, 11], &rng), r = netTensor([2, 4, 3, 11], &rng)
        let volume = try netRunOp(.costVolume(CostVolume(.groupCorrelation, maxDisparity: 5, groups: 1, scale: 0.25)), [l, r])
        let correlation = try netRunOp(.correlation(maxDisparity: 5, scale: 0.25), [l, r])
        #expect(volume.shape == [2, 1, 5, 3, 11] && correlation.shape == [2, 5, 3, 11] && volume.data == correlation.data)
    }

    @Test("cost volumes: finite differences for left and right",
          arguments: [CostVolume(.concatenation, maxDisparity: 3), CostVolume(.concatenation, maxDisparity: 12),
                      CostVolume(.groupCorrelation, maxDisparity: 4, groups: 3, scale: 0.5),
                      CostVolume(.groupCorrelation, maxDisparity: 12, groups: 1, scale: 1.0 / 6)])
    func backward(_ volume: CostVolume) {
        let left = pwTensor([2, 6, 2, 10], seed: 32), right = pwTensor([2, 6, 2, 10], seed: 33)
        pwCheckBackward([left, right], what: "\(volume.kind) volume D \(volume.maxDisparity)", {
            volume.kind == .concatenation ? concatenationVolumeForward($0[0], $0[1], maxDisparity: volume.maxDisparity)
                : groupCorrelationForward($0[0], $0[1], maxDisparity: volume.maxDisparity, groups: volume.groups,
                                          scale: volume.scale)
        }) {
            let d = volume.kind == .concatenation
                ? concatenationVolumeBackward(inputShape: left.shape, maxDisparity: volume.maxDisparity, gradient: $0)
                : groupCorrelationBackward(left, right, maxDisparity: volume.maxDisparity, groups: volume.groups,
                                           scale: volume.scale, gradient: $0)
            return [d.left, d.right]
        }
    }

    @Test func concatenationBackwardLiteral() {
        // Width 3, D = 2, one channel: the gradient where w < d (entries 3 and 9) reaches no input.
        let g = Tensor(shape: [1, 2, 2, 1, 3], data: [1, 2, 3, 100, 4, 5, 6, 7, 8, 100, 9, 10])
        let d = concatenationVolumeBackward(inputShape: [1, 1, 1, 3], maxDisparity: 2, gradient: g)
        // dleft[w] = g[0, 0, w] + g[0, 1, w] (w >= 1); dright[v] = g[1, 0, v] + g[1, 1, v + 1] (v + 1 < 3).
        #expect(d.left.data == [1, 6, 8])
        #expect(d.right.data == [15, 17, 8])
    }

    /// PSMNet's regression `sum_d d softmax_d(x)` over `D` of `[N, 1, D, H, W]` is GC-Net's soft argmin of `-x`.
    @Test func regressionSignAndRank() throws {
        var rng = SplitMix64(seed: 34)
        let x = netTensor([2, 1, 5, 3, 4], &rng, scale: 3)
        let negated = Tensor(shape: [2, 5, 3, 4], data: x.data.map { -$0 })
        let plus = try netRunOp(.softArgmin(sign: 1), [x]), minus = try netRunOp(.softArgmin(sign: -1), [negated])
        #expect(plus.shape == [2, 1, 3, 4] && plus.data == minus.data)
        // A much higher score picks its disparity.
        netExpect(try netRunOp(.softArgmin(sign: 1), [Tensor(shape: [1, 1, 3, 1, 1], data: [0, 0, 50])]),
                  shape: [1, 1, 1, 1], [2], tolerance: 1e-5)
    }

    @Test("disparity regression of two disparities is a logistic of the difference, over its whole range, in every run of 16 pixels and the partial last one")
    func regressionExponential() {
        // y = p_1 = 1 / (1 + e^(x0 - x1)) for sign 1: the vector exponential against the double one.
        let pixels = 4101  // blocks of 4096 and a last run of 5
        let differences = (0..<pixels).map { -90 + 180 * Double($0) / Double(pixels - 1) }
        let x = Tensor(shape: [1, 2, 1, pixels], data: [Float](repeating: 0, count: pixels) + differences.map(Float.init))
        let y = softArgminForward(x, sign: 1)
        var worst = 0.0
        for (value, difference) in zip(y.data, differences) {
            let expected: Double = 1 / (1 + Glibc.exp(-Double(Float(difference))))
            worst = max(worst, abs(Double(value) - expected))
        }
        #expect(worst < 3e-7, "worst error \(worst)")
    }

    @Test("disparity regression: finite differences for both signs and ranks",
          arguments: [([2, 4, 2, 3], Float(-1)), ([2, 1, 4, 2, 3], Float(1)), ([1, 1, 6, 1, 2], Float(-1))]
            as [([Int], Float)])
    func regressionBackward(shape: [Int], sign: Float) {
        let x = pwTensor(shape, seed: 35, in: -2...2)
        pwCheckBackward([x], what: "regression \(shape) sign \(sign)", { softArgminForward($0[0], sign: sign) }) {
            [softArgminBackward(x, sign: sign, gradient: $0)]
        }
    }
}

@Suite("Cost volumes: channel rules and compaction")
struct CostVolumeSpacesTests {
    /// Siamese features (a shared conv) into `volume`, read by a linear layer through a flatten.
    func stereoNet(_ volume: CostVolume, features: Int = 6, activation: Activation = .relu) throws -> (NetBuilder, [Int]) {
        let b = NetBuilder(seed: 40)
        let left = try b.input("left", [1, 3, 3, 8]), right = try b.input("right", [1, 3, 3, 8])
        let shared = b.convParameters("f", in: 3, out: features)
        let fl = try b.op("act.l", .activation(activation), try b.conv("f.l", left, out: features, shared: shared))
        let fr = try b.op("act.r", .activation(activation), try b.conv("f.r", right, out: features, shared: shared))
        let cost = try b.op("volume", .costVolume(volume), fl, fr)
        try b.output(try b.linear("head", try b.op("flat", .flatten, cost), out: 2))
        return (b, [fl, fr, cost])
    }

    @Test func concatenationTiesEachFeatureToBothCopies() throws {
        let (b, values) = try stereoNet(CostVolume(.concatenation, maxDisparity: 3))
        let s = try ChannelSpaces(b.net)
        let (fl, fr, cost) = (values[0], values[1], values[2])
        #expect(s.classOf[fl] == s.classOf[fr])
        #expect(s.classOf[cost] == s.classOf[fl] + s.classOf[fl])
        #expect(!s.classOf[fl].contains { s.frozen[$0] })
    }

    @Test func groupCorrelationAlignsGroupsAndKeepsThem() throws {
        let (b, values) = try stereoNet(CostVolume(.groupCorrelation, maxDisparity: 3, groups: 2, scale: 1.0 / 3))
        let s = try ChannelSpaces(b.net)
        let (fl, fr, cost) = (values[0], values[1], values[2])
        #expect(s.classOf[fl] == s.classOf[fr])
        #expect(Array(s.classOf[fl][0..<3]) == Array(s.classOf[fl][3..<6]) && Set(s.classOf[fl]).count == 3)
        #expect(s.classOf[cost].allSatisfy { s.frozen[$0] })
        #expect(s.spaces.contains { $0.frozenReasons == ["group channels of cost volume 'volume'"] })
    }

    @Test func sigmoidFeaturesBeforeGroupCorrelationFreeze() throws {
        let (b, values) = try stereoNet(CostVolume(.groupCorrelation, maxDisparity: 3, groups: 2, scale: 1.0 / 3),
                                        activation: .sigmoid)
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[values[0]].allSatisfy { s.frozen[$0] })
        // A concatenation volume copies features: the consumer's masked kernels cancel sigmoid(0) there.
        let (c, concatenated) = try stereoNet(CostVolume(.concatenation, maxDisparity: 3), activation: .sigmoid)
        let t = try ChannelSpaces(c.net)
        #expect(!t.classOf[concatenated[0]].contains { t.frozen[$0] })
    }

    @Test(arguments: [(CostVolume(.concatenation, maxDisparity: 3), Activation.relu),
                      (CostVolume(.concatenation, maxDisparity: 5), Activation.sigmoid),
                      (CostVolume(.groupCorrelation, maxDisparity: 4, groups: 2, scale: 1.0 / 3), Activation.relu),
                      (CostVolume(.groupCorrelation, maxDisparity: 4, groups: 3, scale: 0.5), Activation(.tanh))])
    func compactEqualsMasked(_ volume: CostVolume, _ activation: Activation) throws {
        let (b, _) = try stereoNet(volume, activation: activation)
        let target = PruningTarget(amount: .ratio(0.5), criterion: .kcp(center: .mean))
        let plan = try NetworkPlan(network: b.net, target: target)
        let compact = try b.net.compacted(plan.spaces, keepClasses: plan.keep)
        let masked = try b.net.masked(plan.spaces, keepClasses: plan.keep)
        #expect(try compact.cost() == plan.after && plan.after.macs < plan.before.macs)
        #expect(compact.nodes.first { $0.name == "volume" }!.op == .costVolume(volume))
        let inputs = b.inputs(batch: 2)
        netCheckSameOutputs(try compact.forward(inputs), try masked.forward(inputs), what: "compact vs masked")
    }
}
