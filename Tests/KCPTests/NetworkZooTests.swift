import Testing
@testable import KCP

// A zoo of small topologies, each pruned with `NetworkPlan` for several
// criteria and targets, then compacted and masked: both forms must agree,
// the compact cost must be the plan's, and every parameter must have the
// shape (and entries) the kept channels imply (see NetworkZoo.swift).

@Suite("Network zoo: prune, compact, mask")
struct NetworkZooTests {
    @Test(arguments: NetZoo.allCases, netTargetCases)
    func pruneCompactMask(_ zoo: NetZoo, _ c: NetTargetCase) throws {
        let b = try zoo.build()
        let inputs = b.inputs(batch: 2)
        try netCheckPruning(b.net, inputs: inputs, target: c.target)
    }

    /// A compact network is an ordinary network: it can be planned and pruned again.
    @Test(arguments: NetZoo.allCases)
    func pruneTwice(_ zoo: NetZoo) throws {
        let b = try zoo.build()
        let inputs = b.inputs(batch: 2)
        let first = try NetworkPlan(network: b.net, target: PruningTarget(amount: .ratio(0.3)))
        let once = try b.net.compacted(first.spaces, keepClasses: first.keep)
        let second = try netCheckPruning(once, inputs: inputs, target: PruningTarget(amount: .ratio(0.5), criterion: .filter(.l1)))
        #expect(second.before == first.after)
    }

    @Test(arguments: NetZoo.allCases)
    func ratioZeroKeepsTheNetwork(_ zoo: NetZoo) throws {
        let b = try zoo.build()
        let inputs = b.inputs(batch: 2)
        let plan = try NetworkPlan(network: b.net, target: PruningTarget(amount: .ratio(0)))
        #expect(!plan.keep.contains(false))
        #expect(plan.after == plan.before)
        let compact = try b.net.compacted(plan.spaces, keepClasses: plan.keep)
        let masked = try b.net.masked(plan.spaces, keepClasses: plan.keep)
        let original = try b.net.forward(inputs)
        #expect(try compact.forward(inputs) == original)
        #expect(try masked.forward(inputs) == original)
    }

    @Test(arguments: NetZoo.allCases)
    func pruningChangesTheFunction(_ zoo: NetZoo) throws {
        // The masked network really differs from the original (masks are not no-ops).
        let b = try zoo.build()
        let inputs = b.inputs(batch: 1)
        let plan = try NetworkPlan(network: b.net, target: PruningTarget(amount: .ratio(0.5)))
        let masked = try b.net.masked(plan.spaces, keepClasses: plan.keep)
        #expect(try masked.forward(inputs) != b.net.forward(inputs))
    }

    /// A grouped conv (1 < g < C) no longer freezes its spaces: channel j of
    /// every group is pruned together, on its input and its output, so each
    /// group shrinks alike and g stays; compact still equals masked.
    @Test func groupedConvPrunesTheSamePositionsInEveryGroupAndKeepsG() throws {
        let b = try NetZoo.grouped.build()
        let net = b.net
        let plan = try NetworkPlan(network: net, target: PruningTarget(amount: .ratio(0.5)))
        let reasons = plan.spaces.spaces.flatMap(\.frozenReasons)
        #expect(reasons.allSatisfy { !$0.contains("'gconv'") })
        let keep = netKeepMasks(plan)
        let gconv = net.nodes.first { $0.name == "gconv" }!
        for value in [gconv.inputs[0], gconv.output] {
            #expect(keep[value].filter { $0 }.count == 4)
            #expect(Array(keep[value][0..<4]) == Array(keep[value][4..<8]))
        }
        let compact = try net.compacted(plan.spaces, keepClasses: plan.keep)
        #expect(compact.nodes.first { $0.name == "gconv" }!.op == gconv.op)
        #expect(compact.parameters[gconv.parameters[0]].tensor.shape == [4, 2, 3, 3])
        let c3 = net.nodes.first { $0.name == "c3" }!
        #expect(compact.parameters[c3.parameters[0]].tensor.shape == [3, 4, 3, 3])
        #expect(compact.parameters[net.nodes.last!.parameters[0]].tensor.shape == [4, 3, 3, 3])
        let inputs = b.inputs(batch: 2)
        let masked = try net.masked(plan.spaces, keepClasses: plan.keep)
        netCheckSameOutputs(try compact.forward(inputs), try masked.forward(inputs), what: "compact vs masked")
    }

    @Test func stereoSharesOnePlanForBothSides() throws {
        let net = try NetZoo.stereo.build().net
        let plan = try NetworkPlan(network: net, target: PruningTarget(amount: .ratio(0.5), criterion: .filter(.l1)))
        let keep = netKeepMasks(plan)
        let node = { (name: String) in net.nodes.first { $0.name == name }! }
        #expect(keep[node("f2.l").output] == keep[node("f2.r").output])
        #expect(keep[node("f1.l").output] == keep[node("f1.r").output])
        #expect(!keep[node("corr").output].contains(false))
        let compact = try net.compacted(plan.spaces, keepClasses: plan.keep)
        #expect(compact.parameters[node("f1.l").parameters[0]].tensor.shape == [4, 3, 3, 3])
        #expect(compact.parameters[node("f2.l").parameters[0]].tensor.shape == [3, 4, 3, 3])
        #expect(compact.parameters[node("agg1").parameters[0]].tensor.shape == [4, 4, 3, 3])
        // The correlation keeps its scale 1/6 after pruning to 3 channels.
        #expect(compact.nodes.first { $0.name == "corr" }!.op == .correlation(maxDisparity: 4, scale: 1.0 / 6))
    }

    @Test func resnetProjectionAndIdentityShapes() throws {
        let net = try NetZoo.resnet.build().net
        let plan = try NetworkPlan(network: net, target: PruningTarget(amount: .ratio(0.5)))
        let compact = try net.compacted(plan.spaces, keepClasses: plan.keep)
        let weight = { (name: String) in compact.parameters[net.nodes.first { $0.name == name }!.parameters[0]].tensor.shape }
        // Stem and block 1 share one 8-channel space; block 2's output and projection one 12-channel space.
        #expect(weight("stem") == [4, 3, 3, 3])
        #expect(weight("b1.conv1") == [4, 4, 3, 3])
        #expect(weight("b1.conv2") == [4, 4, 3, 3])
        #expect(weight("b2.conv1") == [6, 4, 3, 3])
        #expect(weight("b2.conv2") == [6, 6, 3, 3])
        #expect(weight("b2.proj") == [6, 4, 1, 1])
        #expect(weight("fc") == [5, 6])
    }

    @Test func kcpScoresSumOverConsumers() throws {
        // Residual space read by b1.conv1, b1.add -> b2.conv1 and b2.proj: the
        // KCP score of each class is the sum of those layers' s_i.
        let net = try NetZoo.resnet.build().net
        let plan = try NetworkPlan(network: net, target: PruningTarget(amount: .ratio(0.5)))
        let node = { (name: String) in net.nodes.first { $0.name == name }! }
        func layer(_ name: String, _ criterion: Criterion) throws -> [Double] {
            let w = net.parameters[node(name).parameters[0]].tensor
            return try netLayerScores(w, criterion)
        }
        let stemClasses = plan.spaces.classOf[node("stem").output]
        let expected = try zip(zip(layer("b1.conv1", .kcp(center: .mean)), layer("b2.conv1", .kcp(center: .mean))),
                               layer("b2.proj", .kcp(center: .mean))).map { $0.0 + $0.1 + $1 }
        netExpectClose(stemClasses.map { plan.scores[$0] }, expected)
        // Block 2's output space is read only by the linear layer after GAP -> flatten (one column per channel).
        let fcClasses = plan.spaces.classOf[node("b2.add").output]
        netExpectClose(fcClasses.map { plan.scores[$0] }, try layer("fc", .kcp(center: .mean)))

        // Baselines sum over producers: stem, b1.conv2 for the 8-channel space.
        let l1 = try NetworkPlan(network: net, target: PruningTarget(amount: .ratio(0.5), criterion: .filter(.l1)))
        let producers = try zip(layer("stem", .filter(.l1)), layer("b1.conv2", .filter(.l1))).map { $0 + $1 }
        netExpectClose(stemClasses.map { l1.scores[$0] }, producers)
    }

    @Test func kcpScoresOfAFlattenSumColumns() throws {
        let net = try NetZoo.twoOutputs.build().net
        let plan = try NetworkPlan(network: net, target: PruningTarget(amount: .ratio(0.5)))
        let fc = net.nodes.first { $0.name == "fc" }!
        let w = net.parameters[fc.parameters[0]].tensor
        let columns = try netLayerScores(w, .kcp(center: .mean))
        let c2 = net.nodes.first { $0.name == "c2" }!
        let classes = plan.spaces.classOf[c2.output]
        #expect(classes.count == 6 && w.shape == [3, 24])
        netExpectClose(classes.map { plan.scores[$0] }, (0..<6).map { c in columns[(c * 4)..<((c + 1) * 4)].reduce(0, +) })
    }

    @Test func invalidKeepsAreRejected() throws {
        let net = try NetZoo.chain.build().net
        let spaces = try ChannelSpaces(net)
        var keep = [Bool](repeating: true, count: spaces.classCount)
        netExpectInvalidArgument("keep") { _ = try net.compacted(spaces, keepClasses: Array(keep.dropLast())) }
        keep[0] = false // a channel of the input
        netExpectInvalidArgument("keep", ["frozen"]) { _ = try net.masked(spaces, keepClasses: keep) }
        keep[0] = true
        let c1 = net.nodes.first { $0.name == "c1" }!
        for label in spaces.classOf[c1.output] { keep[label] = false }
        netExpectInvalidArgument("keep", ["'c1'"]) { _ = try net.compacted(spaces, keepClasses: keep) }
        netExpectInvalidArgument("keep", ["'c1'"]) { _ = try net.masked(spaces, keepClasses: keep) }
    }

    /// A pruned channel of a Siamese feature extractor ending in a sigmoid
    /// would be sigmoid(0) = 0.5 on both sides in the masked network, and the
    /// correlation sums over channels: those channels are frozen instead, so
    /// compact and masked still agree.
    @Test func sigmoidFeaturesBeforeCorrelation() throws {
        let b = NetBuilder(seed: 8)
        let left = try b.input("left", [1, 3, 4, 6])
        let right = try b.input("right", [1, 3, 4, 6])
        let conv = b.convParameters("f", in: 3, out: 6)
        let fl = try b.op("sig.l", .activation(.sigmoid), try b.conv("f.l", left, out: 6, shared: conv))
        let fr = try b.op("sig.r", .activation(.sigmoid), try b.conv("f.r", right, out: 6, shared: conv))
        let cost = try b.op("corr", .correlation(maxDisparity: 3, scale: 1.0 / 6), fl, fr)
        try b.output(try b.conv("agg", cost, out: 2))
        let inputs = b.inputs(batch: 1)
        let plan = try NetworkPlan(network: b.net, target: PruningTarget(amount: .ratio(0.5), criterion: .filter(.l1)))
        let compact = try b.net.compacted(plan.spaces, keepClasses: plan.keep)
        let masked = try b.net.masked(plan.spaces, keepClasses: plan.keep)
        #expect(try compact.cost() == plan.after)
        #expect(plan.spaces.spaces.contains { $0.frozenReasons.contains("sigmoid 'sig.l' (nonzero at 0) feeds correlation 'corr'") })
        netCheckSameOutputs(try compact.forward(inputs), try masked.forward(inputs), what: "compact vs masked")
    }

    /// A masked (zero) channel of a divisor would give `x / 0` and poison the
    /// masked network, so divisors (`a / b`, `c / x`) are frozen; a constant
    /// divisor (`x / c`) prunes, its masked entries set to 1 so that `0 / 1` stays 0.
    @Test func divisorsAreFrozenAndConstantDivisorsMaskToOne() throws {
        let b = NetBuilder(seed: 9)
        let x = try b.input("x", [1, 3, 6, 6])
        let numerator = try b.op("num.relu", .activation(.relu), try b.conv("num", x, out: 4))
        // Far from 0 here, but 0 in a masked channel (the constant's entry is masked to 0).
        let denominator = try b.binary("den.shift", .add, try b.conv("den", x, out: 4), constant: [4, 1, 1], in: 3...4)
        let ratio = try b.op("ratio", .binary(Binary(.div)), numerator, denominator)
        let inverse = try b.binary("inverse", Binary(.div, constantFirst: true), try b.conv("c", ratio, out: 5),
                                   constant: [5, 1, 1], in: 1...2)
        let scaled = try b.binary("scaled", Binary(.div), try b.conv("d", inverse, out: 6), constant: [6, 1, 1], in: 1...2)
        try b.output(try b.conv("head", scaled, out: 2))
        let plan = try NetworkPlan(network: b.net, target: PruningTarget(amount: .ratio(0.5)))
        let reasons = plan.spaces.spaces.flatMap(\.frozenReasons)
        #expect(reasons.contains("divisor of div 'ratio'") && reasons.contains("divisor of div 'inverse'"))
        #expect(!reasons.contains { $0.contains("'scaled'") })
        let keep = netKeepMasks(plan)
        let node = { (name: String) in b.net.nodes.first { $0.name == name }! }
        for value in [numerator, denominator, ratio, node("c").output, inverse] { #expect(!keep[value].contains(false)) }
        #expect(keep[scaled].filter { $0 }.count == 3)
        let masked = try b.net.masked(plan.spaces, keepClasses: plan.keep)
        let constant = node("scaled").parameters[0]
        #expect(masked.parameters[constant].tensor.data
                == zip(keep[scaled], b.net.parameters[constant].tensor.data).map { $0 ? $1 : 1 })
        let inputs = b.inputs(batch: 2)
        netCheckSameOutputs(try b.net.compacted(plan.spaces, keepClasses: plan.keep).forward(inputs),
                            try masked.forward(inputs), what: "compact vs masked")
    }

    /// Weights lent by the caller plan exactly as the same weights written into
    /// the network; here every other parameter is lent, the rest are the network's own.
    @Test(arguments: NetZoo.allCases, [Criterion.kcp(center: .mean), .filter(.l1)])
    func borrowedWeightsPlanAsWrittenOnes(_ zoo: NetZoo, _ criterion: Criterion) throws {
        let own = try zoo.build().net
        let lent = try zoo.build(seed: 7).net.parameters.enumerated().filter { $0.offset % 2 == 0 }
        let buffers = lent.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: $0.element.tensor.count) }
        defer { buffers.forEach { $0.deallocate() } }
        var written = own
        for ((index, parameter), buffer) in zip(lent, buffers) {
            _ = buffer.initialize(from: parameter.tensor.data)
            try written.setParameter(index, data: parameter.tensor.data)
        }
        let weights = Dictionary(uniqueKeysWithValues: zip(lent.map(\.offset), buffers.map { UnsafeBufferPointer($0) }))
        let target = PruningTarget(amount: .ratio(0.5), criterion: criterion)
        let borrowed = try NetworkPlan(network: own, target: target, weights: weights)
        let expected = try NetworkPlan(network: written, target: target)
        #expect(borrowed.scores == expected.scores && borrowed.keep == expected.keep)
        #expect(borrowed.scores != (try NetworkPlan(network: own, target: target)).scores)
    }

    @Test func borrowedWeightsOfAnotherSizeOrNotFiniteAreRefused() throws {
        let net = try NetZoo.chain.build().net
        let c2 = try #require(net.parameters.firstIndex { $0.name == "c2.weight" })
        let count = net.parameters[c2].tensor.count
        let target = PruningTarget(amount: .ratio(0.5))
        let short = [Float](repeating: 1, count: count - 1), nan = [Float](repeating: .nan, count: count)
        short.withUnsafeBufferPointer { weight in
            netExpectInvalidArgument("weights", ["'c2.weight' has \(count) elements, got \(count - 1)"]) {
                _ = try NetworkPlan(network: net, target: target, weights: [c2: weight])
            }
            netExpectInvalidArgument("weights", ["no parameter \(net.parameters.count)"]) {
                _ = try NetworkPlan(network: net, target: target, weights: [net.parameters.count: weight])
            }
        }
        nan.withUnsafeBufferPointer { weight in
            netExpectInvalidArgument("weight", ["must be finite"]) {
                _ = try NetworkPlan(network: net, target: target, weights: [c2: weight])
            }
        }
    }

    @Test func targetErrors() throws {
        let net = try NetZoo.chain.build().net
        netExpectInvalidArgument("ratio") { _ = try NetworkPlan(network: net, target: PruningTarget(amount: .ratio(1))) }
        netExpectInvalidArgument("ratio") { _ = try NetworkPlan(network: net, target: PruningTarget(amount: .ratio(-0.1))) }
        netExpectInvalidArgument("macs_reduction") {
            _ = try NetworkPlan(network: net, target: PruningTarget(amount: .macsReduction(0)))
        }
        netExpectInvalidArgument("macs_reduction", ["out of reach"]) {
            _ = try NetworkPlan(network: net, target: PruningTarget(amount: .macsReduction(0.999)))
        }
        netExpectInvalidArgument("max_ratio") {
            _ = try NetworkPlan(network: net, target: PruningTarget(amount: .ratio(0.5), global: true, maxRatio: 1))
        }
        netExpectInvalidArgument("round_to") {
            _ = try NetworkPlan(network: net, target: PruningTarget(amount: .ratio(0.5), roundTo: 0))
        }
        // Everything frozen: a single conv from input to output.
        let b = NetBuilder(seed: 3)
        let x = try b.input("x", [1, 3, 4, 4])
        try b.output(try b.conv("only", x, out: 2))
        netExpectInvalidArgument("macs_reduction", ["out of reach"]) {
            _ = try NetworkPlan(network: b.net, target: PruningTarget(amount: .macsReduction(0.1)))
        }
    }
}
