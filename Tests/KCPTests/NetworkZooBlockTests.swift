import Testing
@testable import KCP

// The zoo's modern blocks (NetworkZoo.swift): MobileNetV3's squeeze-excitation,
// ResNeXt's grouped conv, ShuffleNetV2's split and shuffle, a constant layer
// scale. Each is pruned at ratio 0.5 with the zoo's checks (compact == masked,
// parameters sliced as the kept channels say); here, which spaces prune and
// the shapes they compact to. (NetworkZooTests runs every target on them too.)

@Suite("Network zoo: modern blocks")
struct NetworkZooBlockTests {
    /// Prunes `zoo` at ratio 0.5 and expects the named nodes' outputs prunable and pruned;
    /// returns the network and its compact form.
    func pruneHalf(_ zoo: NetZoo, prunable names: [String],
                   sourceLocation: SourceLocation = #_sourceLocation) throws -> (net: Network, compact: Network, plan: NetworkPlan)
    {
        let b = try zoo.build()
        let plan = try netCheckPruning(b.net, inputs: b.inputs(batch: 2), target: PruningTarget(amount: .ratio(0.5)),
                                       sourceLocation: sourceLocation)
        let keep = netKeepMasks(plan)
        for name in names {
            let value = try #require(b.net.nodes.first { $0.name == name }, sourceLocation: sourceLocation).output
            #expect(!plan.spaces.classOf[value].contains { plan.spaces.frozen[$0] }, "'\(name)' is frozen",
                    sourceLocation: sourceLocation)
            #expect(keep[value].contains(false), "'\(name)' kept every channel", sourceLocation: sourceLocation)
        }
        return (b.net, try b.net.compacted(plan.spaces, keepClasses: plan.keep), plan)
    }

    /// The compact network's op and first parameter's shape for node `name`.
    func compacted(_ pruned: (net: Network, compact: Network, plan: NetworkPlan), _ name: String,
                   parameter: Int = 0) -> (op: Op, shape: [Int]) {
        let index = pruned.net.nodes.firstIndex { $0.name == name }!
        let node = pruned.compact.nodes[index]
        return (node.op, node.parameters.isEmpty ? [] : pruned.compact.parameters[node.parameters[parameter]].tensor.shape)
    }

    @Test func mobileNetV3SqueezeExcitation() throws {
        let pruned = try pruneHalf(.mobileNetV3, prunable: ["stem", "expand", "dw", "se.pool", "se.reduce", "se.expand",
                                                           "se.hsig", "se.mul", "project", "add"])
        #expect(compacted(pruned, "stem").shape == [4, 3, 3, 3])
        #expect(compacted(pruned, "expand").shape == [8, 4, 1, 1])
        // The depthwise conv stays depthwise, one group per kept channel.
        #expect(compacted(pruned, "dw").op == .conv2d(Conv2d(padding: (1, 1, 1, 1), groups: 8)))
        #expect(compacted(pruned, "dw").shape == [8, 1, 3, 3])
        // The gate follows the channels it scales: se.expand writes the map's kept channels.
        #expect(compacted(pruned, "se.reduce").shape == [2, 8, 1, 1])
        #expect(compacted(pruned, "se.expand").shape == [8, 2, 1, 1])
        #expect(compacted(pruned, "project").shape == [4, 8, 1, 1])
        #expect(compacted(pruned, "head").shape == [4, 4, 1, 1])
        let shapes = try pruned.compact.inferShapes()
        let gate = pruned.net.nodes.first { $0.name == "se.hsig" }!.output
        #expect(shapes[gate] == [1, 8, 1, 1])
    }

    @Test func resNeXtGroupedConvKeepsItsGroups() throws {
        let pruned = try pruneHalf(.resNeXt, prunable: ["stem", "a", "g", "c", "add"])
        let g = pruned.net.nodes.first { $0.name == "g" }!
        // 4 groups of 4 inputs and 6 outputs become 4 groups of 2 and 3: the same positions in every group.
        #expect(compacted(pruned, "g").op == g.op)
        #expect(compacted(pruned, "g").shape == [12, 2, 3, 3])
        let keep = netKeepMasks(pruned.plan)
        #expect(keep[g.inputs[0]].count == 16 && (0..<4).allSatisfy { Array(keep[g.inputs[0]][($0 * 4)..<($0 * 4 + 4)]) == Array(keep[g.inputs[0]][0..<4]) })
        #expect((0..<4).allSatisfy { Array(keep[g.output][($0 * 6)..<($0 * 6 + 6)]) == Array(keep[g.output][0..<6]) })
        #expect(compacted(pruned, "a").shape == [8, 4, 1, 1])
        #expect(compacted(pruned, "c").shape == [4, 12, 1, 1])
        #expect(compacted(pruned, "head").shape == [4, 4, 1, 1])
    }

    @Test func shuffleNetSplitAndShuffle() throws {
        let pruned = try pruneHalf(.shuffleNet, prunable: ["stem", "split.0", "split.1", "b1", "b2", "b3", "shuffle"])
        // The shuffle ties channel j of the passed-through half to channel j of the branch, and the chunks
        // tie the two halves of the stem: one set of classes for stem, both halves, b3 and the shuffle.
        let classes = { (name: String) in pruned.plan.spaces.classOf[pruned.net.nodes.first { $0.name == name }!.output] }
        #expect(classes("split.0") == classes("split.1") && classes("b3") == classes("split.0"))
        #expect(classes("stem") == classes("split.0") + classes("split.0"))
        #expect(classes("shuffle") == classes("b3").flatMap { [$0, $0] })
        #expect(compacted(pruned, "stem").shape == [4, 3, 3, 3])
        #expect(compacted(pruned, "split.1").op == .channelChunk(index: 1, parts: 2))
        #expect(compacted(pruned, "b1").shape == [2, 2, 1, 1])
        #expect(compacted(pruned, "b2").op == .conv2d(Conv2d(padding: (1, 1, 1, 1), groups: 2)))
        #expect(compacted(pruned, "b3").shape == [2, 2, 1, 1])
        #expect(compacted(pruned, "shuffle").op == .channelShuffle(groups: 2))
        #expect(compacted(pruned, "head").shape == [4, 4, 1, 1])
    }

    @Test func layerScaleConstantsFollowTheChannels() throws {
        let pruned = try pruneHalf(.layerScale, prunable: ["trunk", "branch", "scale", "add", "shift", "norm"])
        #expect(compacted(pruned, "trunk").shape == [3, 3, 3, 3])
        #expect(compacted(pruned, "branch").shape == [3, 3, 3, 3])
        #expect(compacted(pruned, "scale").shape == [3, 1, 1])
        #expect(compacted(pruned, "shift").shape == [3, 1, 1])
        #expect(compacted(pruned, "norm").shape == [3, 1, 8])
        #expect(compacted(pruned, "head").shape == [4, 3, 3, 3])
        let scale = pruned.net.nodes.first { $0.name == "scale" }!
        let keep = netKeepMasks(pruned.plan)[scale.output]
        let original = pruned.net.parameters[scale.parameters[0]].tensor.data
        #expect(pruned.compact.parameters[scale.parameters[0]].tensor.data == zip(keep, original).filter(\.0).map(\.1))
    }
}
