import Testing
@testable import KCP

// Retraining-free compensation in the engine: a Siamese network whose
// pruned channels are copies of kept ones (the shared layer after them is
// fitted to both branches at once) comes back exactly; bad arguments are named.

@Suite("Compensation")
struct CompensationTests {
    /// Two branches through shared conv1 (3 -> 6, channels 3-5 copies of
    /// 0-2), relu, shared conv2 (6 -> 4), then summed; and the classes to
    /// keep: all but conv1's copied channels.
    private func siamese() throws -> (net: Network, spaces: ChannelSpaces, keep: [Bool]) {
        let b = NetBuilder(seed: 31)
        let (left, right) = (try b.input("left", [1, 3, 9, 11]), try b.input("right", [1, 3, 9, 11]))
        let first = b.convParameters("conv1", in: 3, out: 6), second = b.convParameters("conv2", in: 6, out: 4)
        var branches: [Int] = []
        for (side, x) in [("l", left), ("r", right)] {
            let h = try b.op("relu.\(side)", .activation(.relu), try b.conv("conv1.\(side)", x, out: 6, shared: first))
            branches.append(try b.conv("conv2.\(side)", h, out: 4, shared: second))
        }
        try b.output(try b.op("sum", .binary(.add), branches[0], branches[1]))
        for p in first {
            let per = b.net.parameters[p].tensor.count / 6
            b.net.parameters[p].tensor.data.replaceSubrange((3 * per)..<(6 * per),
                                                            with: b.net.parameters[p].tensor.data[0..<(3 * per)])
        }
        let spaces = ChannelSpaces(network: b.net, shapes: try b.net.inferShapes())
        let hidden = b.net.nodes.first { $0.name == "conv1.l" }!.output
        var keep = [Bool](repeating: true, count: spaces.classCount)
        for copy in spaces.classOf[hidden][3..<6] { keep[copy] = false }
        return (b.net, spaces, keep)
    }

    /// `samples` random left and right images for `siamese()`.
    private func imagePairs(_ samples: Int, _ rng: inout SplitMix64) -> [Tensor] {
        [netTensor([samples, 3, 9, 11], &rng), netTensor([samples, 3, 9, 11], &rng)]
    }

    @Test("pruned copies of kept channels are recovered exactly, the shared layer fitted to both branches")
    func siameseCopiesAreRecovered() throws {
        let (net, spaces, keep) = try siamese()
        var rng = SplitMix64(seed: 32)
        let calibration = imagePairs(12, &rng)
        var steps: [Int] = []
        let compensated = try #require(try net.compensated(spaces, keepClasses: keep, calibration: calibration,
                                                           ridge: 0, chunk: 5) { step, total in
            steps.append(step)
            return step <= total
        })
        // One refitted parameter (conv2, shared by both branches), 3 chunks of calibration, then the end.
        #expect(steps == [0, 1, 2, 3])
        let test = imagePairs(2, &rng)
        let dense = try net.forward(test)[0], plain = try net.compacted(spaces, keepClasses: keep).forward(test)[0]
        let fitted = try compensated.forward(test)[0]
        let scale = dense.data.map(abs).max()!
        let worst = { (t: Tensor) in zip(t.data, dense.data).map { abs($0 - $1) }.max()! }
        #expect(worst(plain) > 0.1 * scale)
        #expect(worst(fitted) < 1e-4 * scale)
    }

    @Test("a progress callback that says stop gets no network")
    func stopped() throws {
        let (net, spaces, keep) = try siamese()
        var rng = SplitMix64(seed: 34)
        let calibration = imagePairs(4, &rng)
        for stop in 0...2 {
            let result = try net.compensated(spaces, keepClasses: keep, calibration: calibration, ridge: 0, chunk: 2) {
                step, _ in step < stop
            }
            #expect(result == nil)
        }
    }

    @Test("a negative or non-finite ridge, chunk 0 and calibration of the wrong shape are refused")
    func badArguments() throws {
        let (net, spaces, keep) = try siamese()
        var rng = SplitMix64(seed: 33)
        let calibration = imagePairs(2, &rng)
        for ridge in [-1.0, .nan, .infinity] {
            expectInvalidArgument("ridge") {
                _ = try net.compensated(spaces, keepClasses: keep, calibration: calibration, ridge: ridge)
            }
        }
        expectInvalidArgument("chunk") {
            _ = try net.compensated(spaces, keepClasses: keep, calibration: calibration, ridge: 0, chunk: 0)
        }
        expectInvalidArgument("inputs") {
            _ = try net.compensated(spaces, keepClasses: keep, calibration: [calibration[0]], ridge: 0)
        }
    }
}
