import Testing
@testable import KCP

// Volumetric convolutions: double references written from the gather
// (conv3d) and scatter (conv_transpose3d) definitions, finite differences on
// both input-gradient paths, shape errors, and pruning the 3-D zoo network.

struct Conv3dCase: Sendable, CustomTestStringConvertible {
    var label: String
    var input: [Int]
    /// `[O, I/g, kd, kh, kw]` (a transposed conv: `[I, O/g, kd, kh, kw]`).
    var weight: [Int]
    var depth: DepthAxis
    var stride: (Int, Int) = (1, 1)
    var padding: (Int, Int, Int, Int) = (0, 0, 0, 0)
    var dilation: (Int, Int) = (1, 1)
    var groups = 1
    var outputPadding: (Int, Int, Int) = (0, 0, 0)
    var testDescription: String { label }

    var conv: Conv3d {
        Conv3d(depth: depth, plane: Conv2d(stride: stride, padding: padding, dilation: dilation, groups: groups))
    }

    var transposed: ConvTranspose3d {
        ConvTranspose3d(depth: depth, depthOutputPadding: outputPadding.0,
                        plane: ConvTranspose2d(stride: stride, padding: padding,
                                               outputPadding: (outputPadding.1, outputPadding.2), dilation: dilation,
                                               groups: groups))
    }
}

let conv3dCases: [Conv3dCase] = [
    Conv3dCase(label: "3x3x3, padding 1", input: [2, 3, 4, 5, 4], weight: [4, 3, 3, 3, 3],
               depth: DepthAxis(front: 1, back: 1), padding: (1, 1, 1, 1)),
    Conv3dCase(label: "strides (2, 1, 2), asymmetric padding, 2 groups", input: [1, 4, 5, 4, 5], weight: [4, 2, 2, 3, 3],
               depth: DepthAxis(stride: 2, front: 1, back: 0), stride: (1, 2), padding: (0, 1, 1, 0), groups: 2),
    Conv3dCase(label: "depth dilation 2", input: [1, 2, 6, 4, 4], weight: [3, 2, 3, 2, 2],
               depth: DepthAxis(front: 2, back: 2, dilation: 2), padding: (1, 0, 0, 1)),
    Conv3dCase(label: "depthwise, stride 2", input: [1, 3, 4, 4, 4], weight: [3, 1, 3, 3, 3],
               depth: DepthAxis(stride: 2, front: 1, back: 1), stride: (2, 2), padding: (1, 1, 1, 1), groups: 3),
    Conv3dCase(label: "depth taps wholly in padding", input: [1, 2, 2, 3, 3], weight: [2, 2, 3, 1, 1],
               depth: DepthAxis(front: 3, back: 3)),
    // Rows of 16 and 4 outputs: the direct kernel over the stacked depth taps.
    Conv3dCase(label: "direct kernel, rows of 16", input: [1, 2, 3, 3, 16], weight: [4, 2, 3, 3, 3],
               depth: DepthAxis(front: 2, back: 1), padding: (1, 1, 1, 1)),
]

/// The row-major offset of `(a, b, c, d, e)` in `shape`.
private func offset5(_ shape: [Int], _ a: Int, _ b: Int, _ c: Int, _ d: Int, _ e: Int) -> Int {
    let ab: Int = a * shape[1] + b
    let abc: Int = ab * shape[2] + c
    return (abc * shape[3] + d) * shape[4] + e
}

/// `Conv3d`'s gather definition in double precision.
func naiveConv3d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ conv: Conv3d, outputShape: [Int]) -> NetReference {
    let (batch, depth, height, width) = (x.shape[0], x.shape[2], x.shape[3], x.shape[4])
    let (outputs, perGroup, kd, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3], w.shape[4])
    let (outDepth, outHeight, outWidth) = (outputShape[2], outputShape[3], outputShape[4])
    let (d, p) = (conv.depth, conv.plane), outPerGroup = outputs / p.groups
    var y = NetReference(zeros: outputShape)
    for n in 0..<batch {
        for o in 0..<outputs {
            for z in 0..<outDepth {
                for oh in 0..<outHeight {
                    for ow in 0..<outWidth {
                        var total = b.map { Double($0.data[o]) } ?? 0
                        for j in 0..<perGroup {
                            let c = o / outPerGroup * perGroup + j
                            for t in 0..<kd {
                                for r in 0..<kh {
                                    for q in 0..<kw {
                                        let iz = z * d.stride + t * d.dilation - d.front
                                        let ih = oh * p.stride.0 + r * p.dilation.0 - p.padding.0
                                        let iw = ow * p.stride.1 + q * p.dilation.1 - p.padding.1
                                        guard (0..<depth).contains(iz), (0..<height).contains(ih), (0..<width).contains(iw)
                                        else { continue }
                                        let weight = Double(w.data[offset5(w.shape, o, j, t, r, q)])
                                        total += weight * Double(x.data[offset5(x.shape, n, c, iz, ih, iw)])
                                    }
                                }
                            }
                        }
                        y.data[offset5(outputShape, n, o, z, oh, ow)] = total
                    }
                }
            }
        }
    }
    return y
}

/// `ConvTranspose3d`'s scatter definition in double precision.
func naiveConvTranspose3d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ t: ConvTranspose3d, outputShape: [Int]) -> NetReference {
    let (batch, inputs, depth, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4])
    let (outPerGroup, kd, kh, kw) = (w.shape[1], w.shape[2], w.shape[3], w.shape[4])
    let (outputs, outDepth, outHeight, outWidth) = (outputShape[1], outputShape[2], outputShape[3], outputShape[4])
    let (d, p) = (t.depth, t.plane), perGroup = inputs / p.groups
    var y = NetReference(zeros: outputShape)
    for n in 0..<batch {
        for o in 0..<outputs {
            let plane = outDepth * outHeight * outWidth, base = (n * outputs + o) * plane
            for k in 0..<plane { y.data[base + k] = Double(b?.data[o] ?? 0) }
        }
        for i in 0..<inputs {
            for z in 0..<depth {
                for h in 0..<height {
                    for v in 0..<width {
                        let value = Double(x.data[offset5(x.shape, n, i, z, h, v)])
                        for o in 0..<outPerGroup {
                            for a in 0..<kd {
                                for r in 0..<kh {
                                    for q in 0..<kw {
                                        let oz = z * d.stride + a * d.dilation - d.front
                                        let oy = h * p.stride.0 + r * p.dilation.0 - p.padding.0
                                        let ox = v * p.stride.1 + q * p.dilation.1 - p.padding.1
                                        guard (0..<outDepth).contains(oz), (0..<outHeight).contains(oy),
                                              (0..<outWidth).contains(ox) else { continue }
                                        let channel = i / perGroup * outPerGroup + o
                                        let weight = Double(w.data[offset5(w.shape, i, o, a, r, q)])
                                        y.data[offset5(outputShape, n, channel, oz, oy, ox)] += weight * value
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return y
}

@Suite("Volumetric convolution")
struct Conv3dTests {
    func arguments(_ c: Conv3dCase, outputs: Int, seed: UInt64) -> (x: Tensor, weight: Tensor, bias: Tensor) {
        var rng = SplitMix64(seed: seed)
        return (fdTensor(c.input, &rng), fdTensor(c.weight, &rng), fdTensor([outputs], &rng))
    }

    @Test("the kernels' forms (Winograd, direct, unfolded) follow the weights and their copies")
    func weightFormsFollowTheWeights() throws {
        let winograd = Conv3dCase(label: "Winograd slices", input: [1, 32, 3, 10, 10], weight: [48, 32, 3, 3, 3],
                                  depth: DepthAxis(front: 1, back: 1), padding: (1, 1, 1, 1))
        let cases = [winograd, conv3dCases[5], conv3dCases[0]]
        let shapes = try cases.map { try Op.conv3d($0.conv).outputShape(inputs: [$0.input], parameters: [$0.weight]) }
        let geometries = zip(cases, shapes).map { c, shape in
            Conv3dGeometry(input: c.input, weight: c.weight, output: shape, c.conv)
        }
        let winogradSuits = geometries.map { s in s.winogradSlices.map { WinogradConvolution.suits(s.plane, slices: $0) } ?? false }
        #expect(winogradSuits == [true, false, false])
        #expect(geometries.map { DirectConvolution.suits($0.stacked) }.dropFirst() == [true, false])
        for (c, shape) in zip(cases, shapes) {
            let (x, original, _) = arguments(c, outputs: c.weight[0], seed: 91)
            var weight = original
            netExpect(conv3dForward(x, weight: weight, bias: nil, c.conv, outputShape: shape),
                      naiveConv3d(x, weight, nil, c.conv, outputShape: shape), tolerance: 1e-5)
            var copy = weight
            copy.data[1] += 1
            weight.data[0] -= 2
            netExpect(conv3dForward(x, weight: weight, bias: nil, c.conv, outputShape: shape),
                      naiveConv3d(x, weight, nil, c.conv, outputShape: shape), tolerance: 1e-5)
            netExpect(conv3dForward(x, weight: copy, bias: nil, c.conv, outputShape: shape),
                      naiveConv3d(x, copy, nil, c.conv, outputShape: shape), tolerance: 1e-5)
        }
    }

    @Test(arguments: conv3dCases)
    func forwardMatchesTheGather(_ c: Conv3dCase) throws {
        let (x, weight, bias) = arguments(c, outputs: c.weight[0], seed: 90)
        let op = Op.conv3d(c.conv)
        let shape = try op.outputShape(inputs: [x.shape], parameters: [weight.shape, bias.shape])
        netExpect(try netRunOp(op, [x], parameters: [weight, bias]),
                  naiveConv3d(x, weight, bias, c.conv, outputShape: shape), tolerance: 1e-5)
    }

    @Test(arguments: conv3dCases)
    func transposedForwardMatchesTheScatter(_ c: Conv3dCase) throws {
        var c = c
        c.weight.swapAt(0, 1)
        c.weight[0] = c.input[1]
        c.weight[1] = 2
        if c.depth.stride > 1 { c.outputPadding = (1, 0, c.stride.1 - 1) }
        c.depth.front = min(c.depth.front, 1)
        c.depth.back = min(c.depth.back, 1)
        let (x, weight, bias) = arguments(c, outputs: 2 * c.groups, seed: 91)
        let op = Op.convTranspose3d(c.transposed)
        let shape = try op.outputShape(inputs: [x.shape], parameters: [weight.shape, bias.shape])
        netExpect(try netRunOp(op, [x], parameters: [weight, bias]),
                  naiveConvTranspose3d(x, weight, bias, c.transposed, outputShape: shape), tolerance: 1e-5)
        fdCheckOp(op, [x], parameters: [weight, bias], seed: 93)
    }

    /// Unit strides take the conv path of the input gradient, the others the gather of folded products.
    @Test(arguments: conv3dCases)
    func finiteDifferences(_ c: Conv3dCase) {
        let (x, weight, bias) = arguments(c, outputs: c.weight[0], seed: 92)
        fdCheckOp(.conv3d(c.conv), [x], parameters: [weight, bias], seed: 94)
    }

    /// The cases above take both kernels: the direct one over stacked taps, and stacked unfolded products.
    @Test func bothKernelsAreTested() throws {
        let suits = try conv3dCases.map { c in
            let shape = try Op.conv3d(c.conv).outputShape(inputs: [c.input], parameters: [c.weight])
            return DirectConvolution.suits(Conv3dGeometry(input: c.input, weight: c.weight, output: shape, c.conv).stacked)
        }
        #expect(suits.last == true)
        #expect(suits.contains(false))
    }

    @Test func shapeErrorsNameTheProblem() {
        netExpectNetworkError(["expected a 5-D input"]) {
            _ = try Op.conv3d(Conv3d()).outputShape(inputs: [[1, 3, 4, 4]], parameters: [[4, 3, 3, 3, 3]])
        }
        netExpectNetworkError(["weight must be [O, I/g, kd, kh, kw]"]) {
            _ = try Op.conv3d(Conv3d()).outputShape(inputs: [[1, 3, 4, 4, 4]], parameters: [[4, 3, 3, 3]])
        }
        netExpectNetworkError(["kernel 5 (dilation 1) does not fit input size 3"]) {
            _ = try Op.conv3d(Conv3d()).outputShape(inputs: [[1, 3, 3, 8, 8]], parameters: [[4, 3, 5, 3, 3]])
        }
        netExpectNetworkError(["output padding 2 must be smaller than the stride 2 or the dilation 1"]) {
            _ = try Op.convTranspose3d(ConvTranspose3d(depth: DepthAxis(stride: 2), depthOutputPadding: 2))
                .outputShape(inputs: [[1, 4, 4, 4, 4]], parameters: [[4, 2, 3, 3, 3]])
        }
    }
}
