import Testing
@testable import KCP

// Graph construction, shape inference errors, MACs and parameter counts.

struct NetBadNodeCase: Sendable, CustomTestStringConvertible {
    var label: String
    /// The bad node's op and the shapes it reads; parameters are zero tensors.
    var op: Op
    var inputs: [[Int]]
    var parameters: [[Int]]
    /// A fragment the reason must contain besides the node name.
    var fragment: String
    var testDescription: String { label }
}

let netBadNodeCases: [NetBadNodeCase] = [
    NetBadNodeCase(label: "conv channels", op: .conv2d(Conv2d()), inputs: [[1, 3, 5, 5]], parameters: [[2, 4, 3, 3]],
                   fragment: "3 channels"),
    NetBadNodeCase(label: "conv groups do not divide outputs", op: .conv2d(Conv2d(groups: 2)), inputs: [[1, 4, 5, 5]],
                   parameters: [[3, 2, 3, 3]], fragment: "groups"),
    NetBadNodeCase(label: "conv zero groups", op: .conv2d(Conv2d(groups: 0)), inputs: [[1, 4, 5, 5]],
                   parameters: [[4, 4, 3, 3]], fragment: "groups"),
    NetBadNodeCase(label: "conv kernel too large", op: .conv2d(Conv2d()), inputs: [[1, 3, 2, 5]],
                   parameters: [[2, 3, 3, 3]], fragment: "kernel"),
    NetBadNodeCase(label: "conv on 2-D input", op: .conv2d(Conv2d()), inputs: [[1, 3]], parameters: [[2, 3, 1, 1]],
                   fragment: "4-D"),
    NetBadNodeCase(label: "conv bias", op: .conv2d(Conv2d()), inputs: [[1, 3, 5, 5]], parameters: [[2, 3, 3, 3], [3]],
                   fragment: "bias"),
    NetBadNodeCase(label: "conv stride 0", op: .conv2d(Conv2d(stride: (0, 1))), inputs: [[1, 3, 5, 5]],
                   parameters: [[2, 3, 3, 3]], fragment: "stride"),
    NetBadNodeCase(label: "batchnorm parameters", op: .batchNorm(epsilon: 1e-5), inputs: [[1, 3, 5, 5]],
                   parameters: [[3], [3], [4], [3]], fragment: "[3]"),
    NetBadNodeCase(label: "add shapes", op: .binary(.add), inputs: [[1, 3, 5, 5], [1, 2, 5, 5]], parameters: [],
                   fragment: "do not broadcast"),
    NetBadNodeCase(label: "mul shapes", op: .binary(.mul), inputs: [[1, 3, 5, 5], [1, 3, 5, 4]], parameters: [],
                   fragment: "do not broadcast"),
    NetBadNodeCase(label: "sub ranks", op: .binary(Binary(.sub)), inputs: [[1, 3, 5, 5], [1, 3]], parameters: [],
                   fragment: "do not broadcast"),
    NetBadNodeCase(label: "div constant", op: .binary(Binary(.div)), inputs: [[1, 3, 5, 5]], parameters: [[2, 1, 1]],
                   fragment: "do not broadcast"),
    NetBadNodeCase(label: "concat spatial", op: .concat, inputs: [[1, 3, 5, 5], [1, 2, 4, 5]], parameters: [],
                   fragment: "channels"),
    NetBadNodeCase(label: "concat rank", op: .concat, inputs: [[1, 3, 5, 5], [1, 2]], parameters: [],
                   fragment: "except in channels"),
    NetBadNodeCase(label: "concat volume and map", op: .concat, inputs: [[1, 3, 2, 5, 5], [1, 2, 5, 5]], parameters: [],
                   fragment: "except in channels"),
    NetBadNodeCase(label: "concat without spatial axes", op: .concat, inputs: [[1, 3], [1, 2]], parameters: [],
                   fragment: "positions"),
    NetBadNodeCase(label: "linear features", op: .linear, inputs: [[1, 6]], parameters: [[4, 5]], fragment: "[4, 5]"),
    NetBadNodeCase(label: "linear on 4-D input", op: .linear, inputs: [[1, 6, 2, 2]], parameters: [[4, 24]],
                   fragment: "2-D"),
    NetBadNodeCase(label: "max pool kernel too large", op: .maxPool(Pool2d(kernel: (3, 3), stride: (1, 1))),
                   inputs: [[1, 3, 2, 2]], parameters: [], fragment: "kernel"),
    NetBadNodeCase(label: "avg pool stride 0", op: .avgPool(Pool2d(kernel: (2, 2), stride: (0, 1))),
                   inputs: [[1, 3, 4, 4]], parameters: [], fragment: "stride"),
    NetBadNodeCase(label: "global pool rank", op: .globalAvgPool, inputs: [[1, 3]], parameters: [],
                   fragment: "expected an input with positions"),
    NetBadNodeCase(label: "resize to height 0", op: .resize(Resize(height: 0, width: 4, mode: .nearest)),
                   inputs: [[1, 3, 2, 2]], parameters: [], fragment: "size"),
    NetBadNodeCase(label: "adaptive pool to width 0", op: .adaptivePool(height: 2, width: 0, max: true),
                   inputs: [[1, 3, 4, 4]], parameters: [], fragment: "size"),
    NetBadNodeCase(label: "channel shuffle groups", op: .channelShuffle(groups: 4), inputs: [[1, 6, 2, 2]],
                   parameters: [], fragment: "4 groups"),
    NetBadNodeCase(label: "channel chunk index", op: .channelChunk(index: 2, parts: 2), inputs: [[1, 6, 2, 2]],
                   parameters: [], fragment: "part 2 of 2"),
    NetBadNodeCase(label: "channelwise channels", op: .channelwise(shape: [4, 2, 2]), inputs: [[1, 6, 2, 2]],
                   parameters: [], fragment: "neither 4 channels"),
    NetBadNodeCase(label: "correlation shapes", op: .correlation(maxDisparity: 2, scale: 1), inputs: [[1, 3, 4, 4], [1, 2, 4, 4]],
                   parameters: [], fragment: "equal shapes"),
    NetBadNodeCase(label: "correlation disparity 0", op: .correlation(maxDisparity: 0, scale: 1),
                   inputs: [[1, 3, 4, 4], [1, 3, 4, 4]], parameters: [], fragment: "disparity"),
    NetBadNodeCase(label: "soft-argmin rank", op: .softArgmin(sign: -1), inputs: [[1, 3]], parameters: [],
                   fragment: "[N, D, H, W]"),
    NetBadNodeCase(label: "soft-argmin volume channels", op: .softArgmin(sign: 1), inputs: [[1, 2, 3, 4, 4]],
                   parameters: [], fragment: "one-channel volume"),
    NetBadNodeCase(label: "soft-argmin sign", op: .softArgmin(sign: 2), inputs: [[1, 3, 4, 4]], parameters: [],
                   fragment: "sign"),
    NetBadNodeCase(label: "cost volume shapes", op: .costVolume(CostVolume(.concatenation, maxDisparity: 2)),
                   inputs: [[1, 3, 4, 4], [1, 3, 4, 5]], parameters: [], fragment: "equal shapes"),
    NetBadNodeCase(label: "cost volume disparity 0", op: .costVolume(CostVolume(.concatenation, maxDisparity: 0)),
                   inputs: [[1, 3, 4, 4], [1, 3, 4, 4]], parameters: [], fragment: "disparity"),
    NetBadNodeCase(label: "cost volume groups", op: .costVolume(CostVolume(.groupCorrelation, maxDisparity: 2, groups: 2)),
                   inputs: [[1, 3, 4, 4], [1, 3, 4, 4]], parameters: [], fragment: "2 groups do not divide"),
    NetBadNodeCase(label: "concatenation volume groups",
                   op: .costVolume(CostVolume(.concatenation, maxDisparity: 2, groups: 3)),
                   inputs: [[1, 3, 4, 4], [1, 3, 4, 4]], parameters: [], fragment: "groups 1 and scale 1"),
]

@Suite("Network graph, shapes and cost")
struct NetworkGraphTests {
    /// Each bad node sits after a valid one, so the message must name the right node:
    /// `addNode` refuses it (shapes are kept as nodes are added), and so do shape
    /// inference, cost and forward when a node is changed into it afterwards.
    @Test(arguments: netBadNodeCases)
    func shapeErrorsNameTheNode(_ c: NetBadNodeCase) throws {
        var net = Network()
        var values: [Int] = []
        for (k, shape) in c.inputs.enumerated() {
            let x = try net.addInput(name: "in\(k)", shape: shape)
            values.append(try net.addNode(name: "good\(k)", op: .identity, inputs: [x]))
        }
        let ps = c.parameters.enumerated().map { net.addParameter(name: "p\($0)", tensor: Tensor(zeros: $1)) }
        netExpectNetworkError(["node 'bad_node'", c.op.name, c.fragment]) {
            _ = try net.addNode(name: "bad_node", op: c.op, inputs: values, parameters: ps)
        }
        #expect(net.nodes.count == values.count && net.declaredShapes.count == net.valueCount)
        // A valid stand-in, then changed into the bad node.
        let y = try net.addNode(name: "bad_node", op: .identity, inputs: [values[0]])
        net.nodes[net.nodes.count - 1].op = c.op
        net.nodes[net.nodes.count - 1].inputs = values
        net.nodes[net.nodes.count - 1].parameters = ps
        try net.addOutput(y)
        netExpectNetworkError(["node 'bad_node'", c.op.name, c.fragment]) { _ = try net.inferShapes() }
        netExpectNetworkError(["node 'bad_node'"]) { _ = try net.cost() }
        let inputs = c.inputs.map { Tensor(zeros: $0) }
        netExpectNetworkError(["node 'bad_node'"]) { _ = try net.forward(inputs) }
    }

    @Test func shapesOfAChain() throws {
        let b = NetBuilder(seed: 1)
        let x = try b.input("x", [2, 3, 9, 10])
        let c = try b.conv("c", x, out: 4, kernel: 3, stride: 2, padding: 1)
        let p = try b.op("p", .maxPool(Pool2d(kernel: (2, 2), stride: (2, 2))), c)
        let u = try b.op("u", .resize(Resize(height: 6, width: 6, mode: .bilinear)), p)
        let cat = try b.op("cat", .concat, u, u)
        let g = try b.op("g", .globalAvgPool, cat)
        let f = try b.op("f", .flatten, g)
        let l = try b.linear("l", f, out: 5)
        let shapes = try b.net.inferShapes()
        #expect(shapes[c] == [2, 4, 5, 5])
        #expect(shapes[p] == [2, 4, 2, 2])
        #expect(shapes[u] == [2, 4, 6, 6])
        #expect(shapes[cat] == [2, 8, 6, 6])
        #expect(shapes[g] == [2, 8, 1, 1])
        #expect(shapes[f] == [2, 8])
        #expect(shapes[l] == [2, 5])
        #expect(try b.net.inferShapes(batch: 7)[l] == [7, 5])
    }

    @Test func constructionErrors() throws {
        var net = Network()
        let x = try net.addInput(name: "x", shape: [1, 3, 4, 4])
        let w = net.addParameter(name: "w", tensor: Tensor(zeros: [2, 3, 1, 1]))
        netExpectInvalidArgument("shape", ["'bad'"]) { _ = try net.addInput(name: "bad", shape: [1, 0, 4]) }
        netExpectInvalidArgument("shape", ["'huge'", "elements per sample"]) {
            _ = try net.addInput(name: "huge", shape: [1, 1 << 20, 1 << 20, 1 << 30])  // overflows Int too
        }
        netExpectInvalidArgument("network", ["node 'cost'", "elements per sample"]) {
            var wide = Network()
            let v = try wide.addInput(name: "v", shape: [1, 2, 4, 4])
            _ = try wide.addNode(name: "cost", op: .correlation(maxDisparity: 1 << 31, scale: 1), inputs: [v, v])
            _ = try wide.inferShapes()
        }
        netExpectInvalidArgument("inputs", ["'n1'"]) { _ = try net.addNode(name: "n1", op: .activation(.relu), inputs: [5]) }
        netExpectInvalidArgument("parameters", ["'n2'"]) {
            _ = try net.addNode(name: "n2", op: .conv2d(Conv2d()), inputs: [x], parameters: [9])
        }
        netExpectInvalidArgument("inputs", ["'n3'"]) { _ = try net.addNode(name: "n3", op: .binary(.add), inputs: [x]) }
        netExpectInvalidArgument("parameters", ["'n5'"]) { _ = try net.addNode(name: "n5", op: .conv2d(Conv2d()), inputs: [x]) }
        netExpectInvalidArgument("parameters", ["'n6'"]) {
            _ = try net.addNode(name: "n6", op: .activation(.relu), inputs: [x], parameters: [w])
        }
        netExpectInvalidArgument("value") { try net.addOutput(3) }
        netExpectInvalidArgument("data", ["'w'"]) { try net.setParameter(w, data: [1, 2]) }
        #expect(net.nodes.isEmpty && net.valueCount == 1)
        let y = try net.addNode(name: "conv", op: .conv2d(Conv2d()), inputs: [x], parameters: [w])
        try net.addOutput(y)
        netExpectInvalidArgument("inputs") { _ = try net.forward([]) }
        netExpectInvalidArgument("inputs", ["'x'"]) { _ = try net.forward([Tensor(zeros: [1, 3, 4, 5])]) }
        try net.setParameter(w, data: [1, 0, 0, 0, 1, 0])
        let input = netIota([1, 3, 4, 4])
        let out = try net.forward([input])[0]
        #expect(out.data == Array(input.data[0..<16]) + Array(input.data[16..<32]))
    }

    /// A concat needs at least one input.
    @Test
    func concatWithoutInputsIsRejected() throws {
        var net = Network()
        _ = try net.addInput(name: "x", shape: [1, 3, 4, 4])
        netExpectInvalidArgument("inputs", ["'empty'"]) { _ = try net.addNode(name: "empty", op: .concat, inputs: []) }
        #expect(net.nodes.isEmpty)
    }

    /// All inputs of one forward call share one batch size.
    @Test
    func inputsWithDifferentBatchSizesAreRejected() throws {
        var net = Network()
        let a = try net.addInput(name: "a", shape: [1, 3, 4, 4])
        let b = try net.addInput(name: "b", shape: [1, 3, 4, 4])
        try net.addOutput(try net.addNode(name: "sum", op: .binary(.add), inputs: [a, b]))
        netExpectInvalidArgument("inputs") { _ = try net.forward([Tensor(zeros: [2, 3, 4, 4]), Tensor(zeros: [1, 3, 4, 4])]) }
    }

    @Test func macsPerNode() throws {
        var net = Network()
        let x = try net.addInput(name: "x", shape: [1, 4, 11, 9])
        // O=6, I/g=2, 3x2 kernel, stride (2,1), padding (1,0,0,1), dilation (1,2):
        // Hout = (11 + 1 - 2 - 1) / 2 + 1 = 5, Wout = (9 + 1 - 2 - 1) / 1 + 1 = 8.
        let w1 = net.addParameter(name: "c1.w", tensor: Tensor(zeros: [6, 2, 3, 2]))
        let b1 = net.addParameter(name: "c1.b", tensor: Tensor(zeros: [6]))
        let c1 = try net.addNode(name: "c1", op: .conv2d(Conv2d(stride: (2, 1), padding: (1, 0, 0, 1), dilation: (1, 2), groups: 2)),
                                 inputs: [x], parameters: [w1, b1])
        let bnParameters = (0..<4).map { net.addParameter(name: "bn.\($0)", tensor: Tensor(zeros: [6])) }
        let bn = try net.addNode(name: "bn", op: .batchNorm(epsilon: 1e-5), inputs: [c1], parameters: bnParameters)
        let r = try net.addNode(name: "r", op: .activation(.relu), inputs: [bn])
        // Depthwise, multiplier 2, padding 1: [12, 1, 3, 3] on 5x8.
        let w2 = net.addParameter(name: "dw.w", tensor: Tensor(zeros: [12, 1, 3, 3]))
        let dw = try net.addNode(name: "dw", op: .conv2d(Conv2d(padding: (1, 1, 1, 1), groups: 6)), inputs: [r], parameters: [w2])
        let g = try net.addNode(name: "g", op: .globalAvgPool, inputs: [dw])
        let f = try net.addNode(name: "f", op: .flatten, inputs: [g])
        let wl = net.addParameter(name: "fc.w", tensor: Tensor(zeros: [7, 12]))
        let bl = net.addParameter(name: "fc.b", tensor: Tensor(zeros: [7]))
        let fc = try net.addNode(name: "fc", op: .linear, inputs: [f], parameters: [wl, bl])
        try net.addOutput(fc)

        let shapes = try net.inferShapes()
        #expect(shapes[c1] == [1, 6, 5, 8] && shapes[dw] == [1, 12, 5, 8])
        let macs = try net.nodeMACs(shapes: shapes)
        #expect(macs == [6 * 2 * 3 * 2 * 5 * 8, 0, 0, 12 * 1 * 3 * 3 * 5 * 8, 0, 0, 7 * 12])
        // The formula O * (I/g) * kh * kw * Hout * Wout, and O * I, from the shapes.
        for (node, count) in zip(net.nodes, macs) {
            let y = shapes[node.output], xShape = shapes[node.inputs[0]]
            switch node.op {
            case let .conv2d(conv):
                let w = net.parameters[node.parameters[0]].tensor.shape
                #expect(count == w[0] * (xShape[1] / conv.groups) * w[2] * w[3] * y[2] * y[3])
            case .linear: #expect(count == y[1] * xShape[1])
            default: #expect(count == 0)
            }
        }
        // Batch size does not change per-sample MACs.
        #expect(try net.nodeMACs(shapes: try net.inferShapes(batch: 5)) == macs)
        // Parameters: conv 72 + 6, batchnorm gamma and beta only (12), depthwise 108, linear 84 + 7.
        #expect(try net.cost() == Cost(macs: macs.reduce(0, +), parameters: 78 + 12 + 108 + 91))
        #expect(net.learnableParameters == Set([w1, b1, 2, 3, w2, wl, bl]))
    }

    @Test func sharedParametersCountOnce() throws {
        let b = NetBuilder(seed: 2)
        let left = try b.input("left", [1, 3, 6, 6])
        let right = try b.input("right", [1, 3, 6, 6])
        let shared = b.convParameters("feat", in: 3, out: 4)
        let bnShared = b.batchNormParameters("bn", 4)
        let cl = try b.conv("feat_l", left, out: 4, shared: shared)
        let cr = try b.conv("feat_r", right, out: 4, shared: shared)
        let fl = try b.batchNorm("bn_l", cl, shared: bnShared)
        let fr = try b.batchNorm("bn_r", cr, shared: bnShared)
        let sum = try b.op("sum", .binary(.add), fl, fr)
        try b.output(sum)
        // Weight 4*3*3*3 + bias 4, batchnorm gamma and beta 8; each conv applied once per side.
        #expect(try b.net.cost() == Cost(macs: 2 * (4 * 3 * 9 * 36), parameters: 108 + 4 + 8))
    }
}
