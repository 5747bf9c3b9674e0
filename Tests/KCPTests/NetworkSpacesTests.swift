import Testing
@testable import KCP

// Channel spaces of small graphs, with literal expectations. Classes are
// numbered in order of first appearance over (value, channel); spaces in
// order of their first value.

extension ChannelSpaces {
    init(_ network: Network) throws { self.init(network: network, shapes: try network.inferShapes()) }

    var spaceValues: [[Int]] { spaces.map(\.values) }
}

/// `Array(range)`, for literals.
func netClasses(_ range: Range<Int>) -> [Int] { Array(range) }

@Suite("Network channel spaces")
struct NetworkSpacesTests {
    @Test func chain() throws {
        let b = NetBuilder(seed: 1)
        let x = try b.input("x", [1, 3, 6, 6])
        let c1 = try b.conv("conv1", x, out: 8)
        let bn = try b.batchNorm("bn1", c1)
        let r = try b.op("relu1", .activation(.relu), bn)
        let c2 = try b.conv("conv2", r, out: 4)
        try b.output(c2)
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[x] == [0, 1, 2])
        #expect(s.classOf[c1] == netClasses(3..<11) && s.classOf[bn] == s.classOf[c1] && s.classOf[r] == s.classOf[c1])
        #expect(s.classOf[c2] == netClasses(11..<15))
        #expect(s.spaceValues == [[x], [c1, bn, r], [c2]])
        #expect(s.spaceOf == [0, 0, 0] + [Int](repeating: 1, count: 8) + [2, 2, 2, 2])
        #expect(s.frozen == [true, true, true] + [Bool](repeating: false, count: 8) + [true, true, true, true])
        #expect(s.spaces.map(\.classes) == [[0, 1, 2], netClasses(3..<11), netClasses(11..<15)])
        #expect(s.spaces.map(\.frozenReasons) == [["network input 'x'"], [], ["network output 'conv2'"]])
    }

    @Test func residualIdentityShortcut() throws {
        let b = NetBuilder(seed: 2)
        let x = try b.input("x", [1, 3, 6, 6])
        let a = try b.conv("a", x, out: 4)
        let ra = try b.op("ra", .activation(.relu), a)
        let c = try b.conv("b", ra, out: 4)
        let sum = try b.op("add", .binary(.add), c, ra)
        let r2 = try b.op("r2", .activation(.relu), sum)
        let head = try b.conv("head", r2, out: 2)
        try b.output(head)
        let s = try ChannelSpaces(b.net)
        for value in [a, ra, c, sum, r2] { #expect(s.classOf[value] == netClasses(3..<7)) }
        #expect(s.classOf[head] == [7, 8])
        #expect(s.spaceValues == [[x], [a, ra, c, sum, r2], [head]])
        #expect(s.frozen == [true, true, true, false, false, false, false, true, true])
    }

    @Test func residualProjectionShortcut() throws {
        let b = NetBuilder(seed: 3)
        let x = try b.input("x", [1, 3, 8, 8])
        let a = try b.conv("a", x, out: 4)
        let ra = try b.op("ra", .activation(.relu), a)
        let c = try b.conv("b", ra, out: 6, stride: 2)
        let bn = try b.batchNorm("bn", c)
        let proj = try b.conv("proj", ra, out: 6, kernel: 1, stride: 2)
        let sum = try b.op("add", .binary(.add), bn, proj)
        let r2 = try b.op("r2", .activation(.relu), sum)
        let head = try b.conv("head", r2, out: 2)
        try b.output(head)
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[a] == netClasses(3..<7) && s.classOf[ra] == s.classOf[a])
        for value in [c, bn, proj, sum, r2] { #expect(s.classOf[value] == netClasses(7..<13)) }
        #expect(s.classOf[head] == [13, 14])
        #expect(s.spaceValues == [[x], [a, ra], [c, bn, proj, sum, r2], [head]])
        #expect(s.frozen.filter { $0 }.count == 5)
    }

    @Test func concatSkip() throws {
        let b = NetBuilder(seed: 4)
        let x = try b.input("x", [1, 3, 6, 6])
        let a = try b.conv("a", x, out: 3)
        let ra = try b.op("ra", .activation(.relu), a)
        let c = try b.conv("b", ra, out: 5)
        let rb = try b.op("rb", .activation(.relu), c)
        let cat = try b.op("cat", .concat, ra, rb)
        let head = try b.conv("head", cat, out: 2)
        try b.output(head)
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[ra] == [3, 4, 5])
        #expect(s.classOf[rb] == [6, 7, 8, 9, 10])
        // The concat is a view: the ordered union of its inputs' classes, in no space of its own.
        #expect(s.classOf[cat] == netClasses(3..<11))
        #expect(s.spaceValues == [[x], [a, ra], [c, rb], [head]])
        #expect(s.spaces.map(\.classes) == [[0, 1, 2], [3, 4, 5], netClasses(6..<11), [11, 12]])
        #expect(!s.frozen[3..<11].contains(true))
    }

    @Test func batchNormAfterConcatFollowsTheView() throws {
        let b = NetBuilder(seed: 4)
        let x = try b.input("x", [1, 3, 6, 6])
        let a = try b.conv("a", x, out: 3)
        let c = try b.conv("b", a, out: 2)
        let cat = try b.op("cat", .concat, a, c)
        let bn = try b.batchNorm("bn", cat)
        let r = try b.op("r", .activation(.relu), bn)
        try b.output(try b.conv("head", r, out: 2))
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[cat] == [3, 4, 5, 6, 7] && s.classOf[bn] == [3, 4, 5, 6, 7] && s.classOf[r] == [3, 4, 5, 6, 7])
        #expect(s.spaces.map(\.classes) == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]])
        #expect(s.spaceOf == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
        #expect(!s.frozen[3..<8].contains(true))
    }

    @Test func concatOutputFreezesItsInputs() throws {
        let b = NetBuilder(seed: 4)
        let x = try b.input("x", [1, 3, 6, 6])
        let a = try b.conv("a", x, out: 3)
        let c = try b.conv("b", x, out: 2)
        let d = try b.conv("d", x, out: 4)
        let cat = try b.op("cat", .concat, a, c)
        try b.output(cat)
        try b.output(d)
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[cat] == [3, 4, 5, 6, 7])
        #expect(s.spaceValues == [[x], [a], [c], [d]])
        #expect(s.spaces.map(\.frozenReasons) == [["network input 'x'"], ["network output 'cat'"],
                                                   ["network output 'cat'"], ["network output 'd'"]])
        #expect(s.frozen.allSatisfy { $0 })
    }

    @Test func concatOfOneValueTwice() throws {
        let b = NetBuilder(seed: 5)
        let x = try b.input("x", [1, 2, 4, 4])
        let a = try b.conv("a", x, out: 3)
        let cat = try b.op("cat", .concat, a, a)
        try b.output(try b.conv("head", cat, out: 2))
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[cat] == [2, 3, 4, 2, 3, 4])
    }

    @Test func flattenToLinear() throws {
        let b = NetBuilder(seed: 6)
        let x = try b.input("x", [1, 2, 4, 4])
        let a = try b.conv("a", x, out: 3)
        let pool = try b.op("pool", .maxPool(Pool2d(kernel: (2, 2), stride: (2, 2))), a)
        let flat = try b.op("flat", .flatten, pool)
        let fc = try b.linear("fc", flat, out: 5)
        try b.output(fc)
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[a] == [2, 3, 4] && s.classOf[pool] == [2, 3, 4])
        // Channel c maps to columns [c*S, (c+1)*S), S = 2*2.
        #expect(s.classOf[flat] == [2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4])
        #expect(s.spaceValues == [[x], [a, pool, flat], [fc]])

        // Removing channel 1 removes columns 4..<8 of the linear weight.
        var net = b.net
        let fcWeight = net.nodes[3].parameters[0]
        try net.setParameter(fcWeight, data: (0..<60).map(Float.init))
        var keep = [Bool](repeating: true, count: s.classCount)
        keep[3] = false
        let compact = try net.compacted(s, keepClasses: keep)
        let w = compact.parameters[fcWeight].tensor
        #expect(w.shape == [5, 8])
        let keptColumns: [Int] = [0, 1, 2, 3, 8, 9, 10, 11]
        let expectedWeight: [Float] = (0..<5).flatMap { (o: Int) -> [Float] in keptColumns.map { Float(o * 12 + $0) } }
        #expect(w.data == expectedWeight)
        #expect(compact.parameters[net.nodes[0].parameters[0]].tensor.shape == [2, 2, 3, 3])
        let masked = try net.masked(s, keepClasses: keep)
        let expectedMasked: [Float] = (0..<60).map { (k: Int) -> Float in k % 12 / 4 == 1 ? 0 : Float(k) }
        #expect(masked.parameters[fcWeight].tensor.data == expectedMasked)
    }

    @Test func depthwise() throws {
        let b = NetBuilder(seed: 7)
        let x = try b.input("x", [1, 3, 6, 6])
        let a = try b.conv("a", x, out: 4)
        let dw1 = try b.conv("dw1", a, out: 4, groups: 4)
        let dw2 = try b.conv("dw2", dw1, out: 8, groups: 4)
        let head = try b.conv("head", dw2, out: 2)
        try b.output(head)
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[a] == [3, 4, 5, 6] && s.classOf[dw1] == [3, 4, 5, 6])
        // Multiplier 2: output o reads input o / 2.
        #expect(s.classOf[dw2] == [3, 3, 4, 4, 5, 5, 6, 6])
        #expect(s.spaceValues == [[x], [a, dw1, dw2], [head]])
        #expect(!s.frozen[3..<7].contains(true))

        var keep = [Bool](repeating: true, count: s.classCount)
        keep[4] = false
        let compact = try b.net.compacted(s, keepClasses: keep)
        #expect(compact.nodes[1].op == .conv2d(Conv2d(padding: (1, 1, 1, 1), groups: 3)))
        #expect(compact.nodes[2].op == .conv2d(Conv2d(padding: (1, 1, 1, 1), groups: 3)))
        #expect(compact.parameters[compact.nodes[1].parameters[0]].tensor.shape == [3, 1, 3, 3])
        #expect(compact.parameters[compact.nodes[2].parameters[0]].tensor.shape == [6, 1, 3, 3])
        #expect(compact.parameters[compact.nodes[3].parameters[0]].tensor.shape == [2, 6, 3, 3])
        #expect(try compact.inferShapes()[head] == [1, 2, 6, 6])
    }

    /// A grouped conv (1 < g < C) ties channel j of every group of its input
    /// and of its output: prunable, and compaction keeps g with smaller groups.
    @Test func groupedConvTiesChannelJOfEveryGroupAndIsPrunable() throws {
        let b = NetBuilder(seed: 8)
        let x = try b.input("x", [1, 3, 6, 6])
        let a = try b.conv("a", x, out: 4)
        let g = try b.conv("gconv", a, out: 6, groups: 2)
        let c = try b.conv("c", g, out: 5)
        let r = try b.op("r", .activation(.relu), c)
        let head = try b.conv("head", r, out: 2)
        try b.output(head)
        let s = try ChannelSpaces(b.net)
        #expect(s.spaceValues == [[x], [a], [g], [c, r], [head]])
        #expect(s.classOf[a] == [3, 4, 3, 4] && s.classOf[g] == [5, 6, 7, 5, 6, 7])
        #expect(s.frozen == [true, true, true] + [Bool](repeating: false, count: 10) + [true, true])
        #expect(s.spaces.allSatisfy { $0.frozenReasons.allSatisfy { !$0.contains("'gconv'") } })

        // Drop channel 1 of each group of a, channel 0 of each group of gconv's output.
        var keep = [Bool](repeating: true, count: s.classCount)
        keep[4] = false
        keep[5] = false
        let compact = try b.net.compacted(s, keepClasses: keep)
        #expect(compact.nodes[1].op == .conv2d(Conv2d(padding: (1, 1, 1, 1), groups: 2)))
        let weight = b.net.parameters[b.net.nodes[1].parameters[0]].tensor
        let small = compact.parameters[b.net.nodes[1].parameters[0]].tensor
        #expect(small.shape == [4, 1, 3, 3])
        // Kept outputs 1, 2, 4, 5; of each one's two inputs (j = 0, 1) only j = 0.
        let expected: [Float] = [1, 2, 4, 5].flatMap { (o: Int) -> [Float] in Array(weight.data[(o * 18)..<(o * 18 + 9)]) }
        #expect(small.data == expected)
        #expect(compact.parameters[b.net.nodes[0].parameters[0]].tensor.shape == [2, 3, 3, 3])
        #expect(compact.parameters[b.net.nodes[2].parameters[0]].tensor.shape == [5, 4, 3, 3])
        #expect(try compact.inferShapes()[g] == [1, 4, 6, 6])
        let inputs = b.inputs(batch: 2)
        let masked = try b.net.masked(s, keepClasses: keep)
        netCheckSameOutputs(try compact.forward(inputs), try masked.forward(inputs), what: "compact vs masked")
    }

    @Test func siameseSharedConvTiesOutputs() throws {
        let b = NetBuilder(seed: 9)
        let left = try b.input("left", [1, 3, 6, 6])
        let right = try b.input("right", [1, 3, 6, 6])
        let shared = b.convParameters("feat", in: 3, out: 4)
        let fl = try b.conv("feat_l", left, out: 4, shared: shared)
        let fr = try b.conv("feat_r", right, out: 4, shared: shared)
        let hl = try b.conv("head_l", fl, out: 2)
        let hr = try b.conv("head_r", fr, out: 2)
        let sum = try b.op("sum", .binary(.add), hl, hr)
        try b.output(sum)
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[left] == [0, 1, 2] && s.classOf[right] == [0, 1, 2])
        #expect(s.classOf[fl] == [3, 4, 5, 6] && s.classOf[fr] == [3, 4, 5, 6])
        #expect(s.classOf[hl] == [7, 8] && s.classOf[hr] == [7, 8] && s.classOf[sum] == [7, 8])
        #expect(s.spaceValues == [[left, right], [fl, fr], [hl, hr, sum]])
        #expect(s.frozen == [true, true, true, false, false, false, false, true, true])
        #expect(s.spaces[0].frozenReasons == ["network input 'left'", "network input 'right'"])
    }

    @Test func correlationTiesLeftAndRightAndFreezesDisparities() throws {
        let b = NetBuilder(seed: 10)
        let left = try b.input("left", [1, 3, 4, 8])
        let right = try b.input("right", [1, 3, 4, 8])
        let cl = try b.conv("cl", left, out: 4)
        let cr = try b.conv("cr", right, out: 4)
        let corr = try b.op("corr", .correlation(maxDisparity: 3, scale: 0.25), cl, cr)
        let agg = try b.conv("agg", corr, out: 5)
        let r = try b.op("r", .activation(.relu), agg)
        let head = try b.conv("head", r, out: 3)
        let disparity = try b.op("disp", .softArgmin(sign: -1), head)
        try b.output(disparity)
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[cl] == [6, 7, 8, 9] && s.classOf[cr] == [6, 7, 8, 9])
        #expect(s.classOf[corr] == [10, 11, 12])
        #expect(s.spaceValues == [[left], [right], [cl, cr], [corr], [agg, r], [head], [disparity]])
        #expect(s.classOf[left] == [0, 1, 2] && s.classOf[right] == [3, 4, 5])
        #expect(!s.frozen[6..<10].contains(true))
        #expect(s.frozen[10..<13].allSatisfy { $0 })
        #expect(!s.frozen[13..<18].contains(true))
        #expect(s.frozen[18...].allSatisfy { $0 })
        #expect(s.spaces[3].frozenReasons == ["disparity channels of correlation 'corr'"])
        #expect(s.spaces[5].frozenReasons.contains { $0.contains("'disp'") })
    }

    @Test func inputsAndOutputsAreFrozen() throws {
        // An input read by a linear layer, an output that is also read further.
        let b = NetBuilder(seed: 11)
        let x = try b.input("features", [1, 6])
        let h = try b.linear("h", x, out: 5)
        let r = try b.op("r", .activation(.relu), h)
        let y = try b.linear("y", r, out: 3)
        let z = try b.linear("z", r, out: 2)
        try b.output(r)
        try b.output(y)
        try b.output(z)
        let s = try ChannelSpaces(b.net)
        #expect(s.spaceValues == [[x], [h, r], [y], [z]])
        #expect(s.frozen.allSatisfy { $0 })
        #expect(s.spaces.map(\.frozenReasons) == [["network input 'features'"], ["network output 'r'"],
                                                   ["network output 'y'"], ["network output 'z'"]])
    }

    @Test func softmaxMixesChannels() throws {
        let b = NetBuilder(seed: 12)
        let x = try b.input("x", [1, 3, 4, 4])
        let a = try b.conv("a", x, out: 4)
        let p = try b.op("p", .softmax, a)
        let head = try b.conv("head", p, out: 2)
        try b.output(head)
        let s = try ChannelSpaces(b.net)
        // Both sides frozen (not tied: softmax mixes its channels).
        #expect(s.spaceValues == [[x], [a], [p], [head]])
        #expect(s.frozen.allSatisfy { $0 })
        #expect(s.spaces[1].frozenReasons == ["softmax 'p' mixes channels"])
        #expect(s.spaces[2].frozenReasons == ["softmax 'p' mixes channels"])
    }
}
