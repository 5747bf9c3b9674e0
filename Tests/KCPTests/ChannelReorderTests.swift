import Testing
@testable import KCP

// Ops that move channels without arithmetic: ShuffleNet's channel shuffle and
// `torch.chunk` along channels. Literals, finite differences, and how they
// tie channels for pruning (every group, or part, keeps the same positions).

@Suite("Channel shuffle and chunk")
struct ChannelReorderTests {
    @Test func shuffleLiterals() throws {
        let x = netIota([1, 6, 1, 1])
        // k = 3 per group: output j g + i is input i k + j.
        netExpect(try netRunOp(.channelShuffle(groups: 2), [x]), shape: [1, 6, 1, 1], [0, 3, 1, 4, 2, 5], tolerance: 0)
        netExpect(try netRunOp(.channelShuffle(groups: 3), [x]), shape: [1, 6, 1, 1], [0, 2, 4, 1, 3, 5], tolerance: 0)
        netExpect(try netRunOp(.channelShuffle(groups: 1), [x]), shape: [1, 6, 1, 1], [0, 1, 2, 3, 4, 5], tolerance: 0)
        // Two samples of [6] features, and a shuffle with k groups undoing one with g.
        netExpect(try netRunOp(.channelShuffle(groups: 2), [netIota([2, 6])]), shape: [2, 6],
                  [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11], tolerance: 0)
        let y = netIota([2, 6, 2, 3])
        #expect(shuffleChannels(shuffleChannels(y, groups: 2), groups: 3) == y)
    }

    @Test func chunkLiterals() throws {
        // Samples of 6 channels of 2 values: part 1 of 3 is channels 2 and 3.
        netExpect(try netRunOp(.channelChunk(index: 1, parts: 3), [netIota([2, 6, 1, 2])]), shape: [2, 2, 1, 2],
                  [4, 5, 6, 7, 16, 17, 18, 19], tolerance: 0)
        netExpect(try netRunOp(.channelChunk(index: 1, parts: 2), [netIota([2, 4])]), shape: [2, 2], [2, 3, 6, 7], tolerance: 0)
        netExpect(try netRunOp(.channelChunk(index: 0, parts: 1), [netIota([1, 3, 1, 1])]), shape: [1, 3, 1, 1], [0, 1, 2],
                  tolerance: 0)
    }

    @Test(arguments: [2, 3, 6], [[2, 6, 2, 3], [3, 6]])
    func shuffleFiniteDifferences(_ groups: Int, _ shape: [Int]) {
        var rng = SplitMix64(seed: 70)
        fdCheckOp(.channelShuffle(groups: groups), [fdTensor(shape, &rng)], seed: 71)
    }

    @Test(arguments: [(0, 3), (1, 3), (2, 3), (1, 2), (0, 1)], [[2, 6, 2, 3], [3, 6]])
    func chunkFiniteDifferences(_ part: (index: Int, parts: Int), _ shape: [Int]) {
        var rng = SplitMix64(seed: 72)
        fdCheckOp(.channelChunk(index: part.index, parts: part.parts), [fdTensor(shape, &rng)], seed: 73)
    }

    /// A shuffle ties channel j of every group of its input; the compact
    /// shuffle, with g groups of fewer channels, moves the kept ones alike.
    @Test func shuffleSpacesAndCompaction() throws {
        let b = NetBuilder(seed: 74)
        let x = try b.input("x", [1, 3, 4, 4])
        let a = try b.conv("a", x, out: 6)
        let shuffled = try b.op("shuffle", .channelShuffle(groups: 3), a)
        try b.output(try b.conv("head", shuffled, out: 2))
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[a] == [3, 4, 3, 4, 3, 4] && s.classOf[shuffled] == [3, 3, 3, 4, 4, 4])
        #expect(s.spaceValues == [[x], [a, shuffled], [b.net.nodes[2].output]])
        #expect(!s.frozen[3] && !s.frozen[4])
        var keep = [Bool](repeating: true, count: s.classCount)
        keep[4] = false
        let compact = try b.net.compacted(s, keepClasses: keep)
        #expect(compact.nodes[1].op == .channelShuffle(groups: 3))
        #expect(compact.parameters[b.net.nodes[0].parameters[0]].tensor.shape == [3, 3, 3, 3])
        #expect(compact.parameters[b.net.nodes[2].parameters[0]].tensor.shape == [2, 3, 3, 3])
        let inputs = b.inputs(batch: 2)
        netCheckSameOutputs(try compact.forward(inputs), try b.net.masked(s, keepClasses: keep).forward(inputs),
                            what: "compact vs masked")
    }

    /// A chunk ties channel j of every part of its input, so that part `index`
    /// of the compact input is still the kept channels of the original part.
    @Test func chunkSpacesAndCompaction() throws {
        let b = NetBuilder(seed: 75)
        let x = try b.input("x", [1, 3, 4, 4])
        let a = try b.conv("a", x, out: 6)
        let part = try b.op("part", .channelChunk(index: 1, parts: 3), a)
        try b.output(try b.conv("head", part, out: 2))
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[a] == [3, 4, 3, 4, 3, 4] && s.classOf[part] == [3, 4])
        #expect(s.spaceValues == [[x], [a, part], [b.net.nodes[2].output]])
        var keep = [Bool](repeating: true, count: s.classCount)
        keep[3] = false
        let compact = try b.net.compacted(s, keepClasses: keep)
        #expect(compact.nodes[1].op == .channelChunk(index: 1, parts: 3))
        #expect(try compact.inferShapes()[part] == [1, 1, 4, 4])
        let inputs = b.inputs(batch: 2)
        netCheckSameOutputs(try compact.forward(inputs), try b.net.masked(s, keepClasses: keep).forward(inputs),
                            what: "compact vs masked")
    }
}
