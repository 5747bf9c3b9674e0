import Testing
@testable import KCP

// Transposed convolution: a double reference written from the scatter
// definition, finite differences, shape errors, and pruning a decoder
// (NetZoo.decoder): classes, compact shapes, KCP scores from the weight's rows.

struct ConvTransposeCase: Sendable, CustomTestStringConvertible {
    var label: String
    var input: [Int]
    /// `[I, O/g, kh, kw]`.
    var weight: [Int]
    var op: ConvTranspose2d
    var testDescription: String { label }
}

let convTransposeCases: [ConvTransposeCase] = [
    ConvTransposeCase(label: "3x3, padding 1", input: [2, 3, 5, 4], weight: [3, 4, 3, 3],
                      op: ConvTranspose2d(padding: (1, 1, 1, 1))),
    ConvTransposeCase(label: "1x1 (pointwise)", input: [2, 3, 3, 3], weight: [3, 5, 1, 1], op: ConvTranspose2d()),
    ConvTransposeCase(label: "stride 2, output padding 1", input: [1, 4, 4, 5], weight: [4, 3, 3, 3],
                      op: ConvTranspose2d(stride: (2, 2), padding: (1, 1, 1, 1), outputPadding: (1, 1))),
    ConvTransposeCase(label: "asymmetric stride, padding and kernel", input: [2, 2, 3, 4], weight: [2, 3, 2, 3],
                      op: ConvTranspose2d(stride: (2, 3), padding: (0, 1, 1, 0), outputPadding: (1, 2))),
    ConvTransposeCase(label: "dilation 2, output padding 1 at stride 1", input: [1, 3, 4, 4], weight: [3, 2, 3, 3],
                      op: ConvTranspose2d(padding: (1, 1, 1, 1), outputPadding: (1, 1), dilation: (2, 2))),
    ConvTransposeCase(label: "padding past the kernel crops", input: [1, 2, 5, 5], weight: [2, 3, 2, 2],
                      op: ConvTranspose2d(padding: (2, 1, 1, 0))),
    ConvTransposeCase(label: "2 groups, stride 2", input: [2, 4, 4, 4], weight: [4, 3, 3, 3],
                      op: ConvTranspose2d(stride: (2, 2), padding: (1, 1, 1, 1), groups: 2)),
    ConvTransposeCase(label: "depthwise, multiplier 2", input: [1, 4, 5, 5], weight: [4, 2, 3, 3],
                      op: ConvTranspose2d(stride: (2, 2), padding: (1, 1, 1, 1), outputPadding: (1, 1), groups: 4)),
    // dL/dx is a conv with 4 outputs per group and 16 columns: the direct kernel.
    ConvTransposeCase(label: "16 wide (direct kernel backward)", input: [1, 4, 6, 16], weight: [4, 2, 3, 3],
                      op: ConvTranspose2d(padding: (1, 1, 1, 1))),
]

/// `ConvTranspose2d`'s scatter definition in double precision.
func naiveConvTranspose(_ x: Tensor, _ w: Tensor, bias: Tensor?, _ t: ConvTranspose2d, outputShape: [Int]) -> NetReference {
    let (batch, inputs, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (outPerGroup, kh, kw) = (w.shape[1], w.shape[2], w.shape[3]), inPerGroup = inputs / t.groups
    let (outputs, outHeight, outWidth) = (outputShape[1], outputShape[2], outputShape[3])
    var y = NetReference(zeros: outputShape)
    for n in 0..<batch {
        for o in 0..<outputs {
            for k in 0..<(outHeight * outWidth) { y.data[(n * outputs + o) * outHeight * outWidth + k] = Double(bias?.data[o] ?? 0) }
        }
        for i in 0..<inputs {
            let g = i / inPerGroup
            for h in 0..<height {
                for v in 0..<width {
                    for o in 0..<outPerGroup {
                        for p in 0..<kh {
                            for q in 0..<kw {
                                let oy = h * t.stride.0 + p * t.dilation.0 - t.padding.0
                                let ox = v * t.stride.1 + q * t.dilation.1 - t.padding.1
                                guard (0..<outHeight).contains(oy), (0..<outWidth).contains(ox) else { continue }
                                let channel = g * outPerGroup + o
                                y.data[((n * outputs + channel) * outHeight + oy) * outWidth + ox] +=
                                    Double(w.data[((i * outPerGroup + o) * kh + p) * kw + q]) * x[n, i, h, v]
                            }
                        }
                    }
                }
            }
        }
    }
    return y
}

@Suite("Transposed convolution")
struct ConvTransposeTests {
    func arguments(_ c: ConvTransposeCase, seed: UInt64) -> (x: Tensor, weight: Tensor, bias: Tensor) {
        var rng = SplitMix64(seed: seed)
        return (fdTensor(c.input, &rng), fdTensor(c.weight, &rng), fdTensor([c.weight[1] * c.op.groups], &rng))
    }

    @Test(arguments: convTransposeCases)
    func forwardMatchesTheScatter(_ c: ConvTransposeCase) throws {
        let (x, weight, bias) = arguments(c, seed: 80)
        let shape = try Op.convTranspose2d(c.op).outputShape(inputs: [x.shape], parameters: [weight.shape, bias.shape])
        netExpect(try netRunOp(.convTranspose2d(c.op), [x], parameters: [weight, bias]),
                  naiveConvTranspose(x, weight, bias: bias, c.op, outputShape: shape), tolerance: 1e-5)
        netExpect(try netRunOp(.convTranspose2d(c.op), [x], parameters: [weight]),
                  naiveConvTranspose(x, weight, bias: nil, c.op, outputShape: shape), tolerance: 1e-5)
    }

    /// PyTorch's sizes: `(in - 1) * s - pad + d * (k - 1) + output_padding + 1`.
    @Test func outputSizes() throws {
        let sizes = try convTransposeCases.map {
            try Op.convTranspose2d($0.op).outputShape(inputs: [$0.input], parameters: [$0.weight])
        }
        #expect(sizes == [[2, 4, 5, 4], [2, 5, 3, 3], [1, 3, 8, 10], [2, 3, 6, 13], [1, 2, 7, 7], [1, 3, 3, 5],
                          [2, 6, 7, 7], [1, 8, 10, 10], [1, 2, 6, 16]])
    }

    @Test(arguments: convTransposeCases)
    func finiteDifferences(_ c: ConvTransposeCase) {
        let (x, weight, bias) = arguments(c, seed: 81)
        fdCheckOp(.convTranspose2d(c.op), [x], parameters: [weight, bias], seed: 82)
    }

    @Test func shapeErrorsNameTheProblem() {
        let op = { (t: ConvTranspose2d) in Op.convTranspose2d(t) }
        netExpectNetworkError(["input [1, 3, 4, 4] has 3 channels, weight [4, 2, 3, 3] reads 4"]) {
            _ = try op(ConvTranspose2d()).outputShape(inputs: [[1, 3, 4, 4]], parameters: [[4, 2, 3, 3]])
        }
        netExpectNetworkError(["3 groups do not divide 4 inputs"]) {
            _ = try op(ConvTranspose2d(groups: 3)).outputShape(inputs: [[1, 4, 4, 4]], parameters: [[4, 2, 3, 3]])
        }
        netExpectNetworkError(["output padding 2 must be smaller than the stride 2 or the dilation 1"]) {
            _ = try op(ConvTranspose2d(stride: (2, 2), outputPadding: (2, 0)))
                .outputShape(inputs: [[1, 4, 4, 4]], parameters: [[4, 2, 3, 3]])
        }
        netExpectNetworkError(["padding 8 crops all of the output"]) {
            _ = try op(ConvTranspose2d(padding: (4, 0, 4, 0))).outputShape(inputs: [[1, 4, 4, 4]], parameters: [[4, 2, 3, 3]])
        }
        netExpectNetworkError(["bias must be [6]"]) {
            _ = try op(ConvTranspose2d(groups: 2)).outputShape(inputs: [[1, 4, 4, 4]], parameters: [[4, 3, 3, 3], [3]])
        }
        var net = Network()
        netExpectNetworkError(["node 'up'", "conv_transpose2d"]) {
            let x = try net.addInput(name: "x", shape: [1, 3, 4, 4])
            let w = net.addParameter(name: "w", tensor: Tensor(zeros: [4, 2, 3, 3]))
            _ = try net.addNode(name: "up", op: op(ConvTranspose2d()), inputs: [x], parameters: [w])
        }
    }

    /// The decoder's grouped transposed conv keeps its groups, each shrunk alike; the depthwise one
    /// keeps one group per kept input; weights lose rows with their inputs and columns with their outputs.
    @Test func decoderCompactShapes() throws {
        let b = try NetZoo.decoder.build()
        let plan = try netCheckPruning(b.net, inputs: b.inputs(batch: 2), target: PruningTarget(amount: .ratio(0.5)))
        let keep = netKeepMasks(plan)
        let node = { (name: String) in b.net.nodes.first { $0.name == name }! }
        let gup = node("gup")
        for (value, width) in [(gup.inputs[0], 6), (gup.output, 4)] {
            #expect(Array(keep[value][0..<width]) == Array(keep[value][width..<(2 * width)]))
        }
        let compact = try b.net.compacted(plan.spaces, keepClasses: plan.keep)
        let weight = { (name: String) in compact.parameters[node(name).parameters[0]].tensor.shape }
        #expect(weight("up1") == [4, 3, 3, 3])
        #expect(weight("gup") == [6, 2, 3, 3])
        #expect(weight("dwup") == [4, 2, 2, 2])
        #expect(weight("head") == [2, 8, 1, 1])
        #expect(compact.nodes.first { $0.name == "dwup" }!.op
                == .convTranspose2d(ConvTranspose2d(stride: (2, 2), groups: 4)))
    }

    /// KCP scores the channels a transposed conv reads by its weight's rows:
    /// `s_i = ||W[i] - mean_i W[i]|| / mean`, `W[i]` flattened (`O/g * kh * kw`).
    @Test func kcpScoresTheRowsOfTheWeight() throws {
        let b = NetBuilder(seed: 9)
        let x = try b.input("x", [1, 3, 6, 6])
        let features = try b.op("relu", .activation(.relu), try b.conv("c", x, out: 6))
        try b.output(try b.convTranspose("up", features, out: 4, stride: 2))
        let plan = try NetworkPlan(network: b.net, target: PruningTarget(amount: .ratio(0.5)))
        let w = b.net.parameters[b.net.nodes[2].parameters[0]].tensor
        let rows = (0..<6).map { w.data[($0 * 36)..<(($0 + 1) * 36)] }
        let mean = (0..<36).map { k in rows.reduce(0.0) { $0 + Double($1[$1.startIndex + k]) } / 6 }
        let distances = rows.map { row in
            zip(row, mean).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }.squareRoot()
        }
        let classes = plan.spaces.classOf[features]
        expectClose(classes.map { plan.scores[$0] }, normalised(distances), tolerance: 1e-5)
        #expect(plan.keep.filter { !$0 }.count == 3)
    }
}
