import Testing
@testable import KCP

// A channelwise node: an op the engine has no kernel for (an imported op
// known only by its rule: output channel c reads channel c of each input, an
// input of one channel broadcasting). Its channels prune and compact, its
// shape follows the kept channels, and running the network is refused, naming it.

@Suite("Channelwise nodes")
struct ChannelwiseTests {
    /// `x -> conv a (4) -> channelwise(a, gate) [4, 3, 3] -> conv head`, where `gate` has one channel.
    func network() throws -> (b: NetBuilder, a: Int, gate: Int, cw: Int) {
        let b = NetBuilder(seed: 80)
        let x = try b.input("x", [1, 3, 6, 6])
        let a = try b.conv("a", x, out: 4)
        let gate = try b.conv("gate", x, out: 1)
        let cw = try b.net.addNode(name: "cw", op: .channelwise(shape: [4, 3, 3]), inputs: [a, gate])
        try b.output(try b.conv("head", cw, out: 2))
        return (b, a, gate, cw)
    }

    @Test func spacesTieItsChannelsToItsWideInputs() throws {
        let (b, a, gate, cw) = try network()
        #expect(try b.net.inferShapes()[cw] == [1, 4, 3, 3])
        let s = try ChannelSpaces(b.net)
        #expect(s.classOf[a] == [3, 4, 5, 6] && s.classOf[cw] == s.classOf[a])
        #expect(s.classOf[gate] == [7])
        #expect(s.spaceValues == [[0], [a, cw], [gate], [b.net.nodes[3].output]])
        #expect(!s.frozen[3...7].contains(true))
    }

    @Test func compactionShrinksItsShape() throws {
        let (b, a, gate, cw) = try network()
        let plan = try NetworkPlan(network: b.net, target: PruningTarget(amount: .ratio(0.5)))
        let keep = netKeepMasks(plan)
        #expect(keep[a].filter { $0 }.count == 2 && keep[cw] == keep[a] && keep[gate] == [true])
        let compact = try b.net.compacted(plan.spaces, keepClasses: plan.keep)
        #expect(compact.nodes[2].op == .channelwise(shape: [2, 3, 3]))
        #expect(compact.declaredShapes[cw] == [1, 2, 3, 3])
        #expect(try compact.inferShapes()[cw] == [1, 2, 3, 3])
        #expect(compact.parameters[b.net.nodes[0].parameters[0]].tensor.shape == [2, 3, 3, 3])
        #expect(compact.parameters[b.net.nodes[3].parameters[0]].tensor.shape == [2, 2, 3, 3])
        #expect(try compact.cost() == plan.after)
        // Masking keeps shapes; neither form runs.
        let masked = try b.net.masked(plan.spaces, keepClasses: plan.keep)
        #expect(masked.nodes[2].op == .channelwise(shape: [4, 3, 3]))
        for net in [b.net, compact, masked] {
            netExpectNetworkError(["node 'cw'", "channelwise", "no kernel"]) { _ = try net.forward(b.inputs(batch: 1)) }
            netExpectNetworkError(["node 'cw'"]) { _ = try net.trainingForward(b.inputs(batch: 1)) }
        }
    }

    @Test func inputsOfAnotherWidthAreRefused() throws {
        var net = Network()
        let x = try net.addInput(name: "x", shape: [1, 3, 4, 4])
        netExpectNetworkError(["node 'cw'", "neither 4 channels nor one"]) {
            _ = try net.addNode(name: "cw", op: .channelwise(shape: [4, 4, 4]), inputs: [x])
        }
        netExpectNetworkError(["node 'cw'", "positive"]) {
            _ = try net.addNode(name: "cw", op: .channelwise(shape: [3, 0]), inputs: [x])
        }
    }
}
