import Testing
@testable import KCP

// The convolution's fast paths against slow, obviously correct versions:
// unfolding by tiles of output rows against the im2col formula, folding as
// its adjoint, and the fused batchnorm/relu epilogue against the ops run one
// after the other (bitwise).

/// Geometries whose tiles take every branch of `unfold`: runs copied whole
/// (stride 1, `Wout == W`), lines copied one by one, strides, dilation,
/// asymmetric and negative padding (as a transposed conv's), several tiles
/// per sample.
let unfoldCases: [ConvCase] = backConvCases + [
    ConvCase(label: "3x3 same, 4 tiles per sample", input: [1, 16, 40, 40], weight: [4, 16, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
    ConvCase(label: "5x5 dilation 2, stride 1, wider than tall", input: [2, 3, 6, 11], weight: [2, 3, 5, 5],
             conv: Conv2d(padding: (4, 4, 4, 4), dilation: (2, 2)), bias: false),
    ConvCase(label: "negative padding (cropping)", input: [1, 2, 7, 6], weight: [2, 2, 3, 3],
             conv: Conv2d(padding: (-1, 2, 0, -1)), bias: false),
    ConvCase(label: "stride 2 rows only, several tiles", input: [1, 20, 60, 30], weight: [3, 20, 3, 3],
             conv: Conv2d(stride: (2, 1), padding: (1, 1, 1, 1)), bias: false),
] + smallProductCases + splitCases

/// 1x1 convs whose products over a few rows fit OpenBLAS's small-matrix
/// kernels (`smallProductRows`): tiles of 4 rows written in place, and
/// tiles of 3 rows of 42 outputs padded to 44, staged.
let smallProductCases: [ConvCase] = [
    ConvCase(label: "1x1, tiles of 4 rows in small products", input: [2, 60, 12, 100], weight: [40, 60, 1, 1],
             conv: Conv2d(), bias: true),
    ConvCase(label: "1x1, 42 outputs padded to 44, tiles of 3 rows", input: [1, 60, 10, 100], weight: [42, 60, 1, 1],
             conv: Conv2d(), bias: false),
]

/// Products of few tiles with many output channels, split into blocks of
/// channels (`ConvSplit`): a 3x3 conv whose 130 outputs are padded to 132
/// rows, a 1x1 product and a strided 1x1 conv.
let splitCases: [ConvCase] = [
    ConvCase(label: "130 outputs of one 7x7 tile, in blocks", input: [1, 20, 7, 7], weight: [130, 20, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "1x1 product, 256 outputs in blocks", input: [1, 24, 9, 9], weight: [256, 24, 1, 1],
             conv: Conv2d(), bias: false),
    ConvCase(label: "1x1 stride 2, 192 outputs in blocks", input: [1, 24, 14, 14], weight: [192, 24, 1, 1],
             conv: Conv2d(stride: (2, 2)), bias: true),
]

/// The geometry of case `c`'s convolution.
func geometry(_ c: ConvCase) -> ConvGeometry {
    let (pt, pl, pb, pr) = c.conv.padding
    let outHeight = (c.input[2] + pt + pb - c.conv.dilation.0 * (c.weight[2] - 1) - 1) / c.conv.stride.0 + 1
    let outWidth = (c.input[3] + pl + pr - c.conv.dilation.1 * (c.weight[3] - 1) - 1) / c.conv.stride.1 + 1
    return ConvGeometry(input: c.input, weight: c.weight, output: [c.input[0], c.weight[0], outHeight, outWidth], c.conv)
}

/// One conv path called itself: input, weights, geometry, epilogue, output.
typealias ConvPath = (UnsafePointer<Float>, Tensor, ConvGeometry, ConvEpilogue, UnsafeMutablePointer<Float>) -> Void

/// The unfolded product (`unfoldedConv2d`) as a `ConvPath`.
let unfoldedPath: ConvPath = { unfoldedConv2d($0, weight: $1.data, $2, epilogue: $3, into: $4) }

/// Case `c`'s conv of `x` through `path` itself on the active set, whichever
/// path `conv2dForward` would choose, with the epilogue given.
func pathForward(_ path: ConvPath, _ x: Tensor, weight w: Tensor, bias b: Tensor?, _ c: ConvCase,
                 normalization: (scale: [Float], shift: [Float])? = nil, residual: Tensor? = nil,
                 activation: Activation.Kind? = nil) -> Tensor
{
    let s = geometry(c)
    let shape = [s.batch, s.outputs, s.outHeight, s.outWidth]
    return convOutput(shape: shape, residual: residual, reusable: false) { y, r in
        x.data.withUnsafeBufferPointer { xs in
            withConvEpilogue(bias: b, normalization: normalization, residual: r, activation: activation, output: y) {
                path(xs.baseAddress!, w, s, $0, y)
            }
        }
    }
}

/// Case `c` through `path` itself against the naive conv, on input, weights and bias drawn from `seed`.
func expectPathMatchesNaive(_ path: ConvPath, _ c: ConvCase, seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng)
    let b = c.bias ? netTensor([c.weight[0]], &rng) : nil
    netExpect(pathForward(path, x, weight: w, bias: b, c), naiveConv2d(x, w, b, c.conv))
}

@Suite("Conv kernels: unfold, fold, fused epilogue")
struct ConvKernelTests {
    @Test(arguments: unfoldCases)
    func unfoldMatchesTheIm2colFormula(_ c: ConvCase) {
        var rng = SplitMix64(seed: 201)
        let s = geometry(c), x = fdTensor([s.perGroup, s.height, s.width], &rng)
        var tile = [Float](repeating: .nan, count: s.tileSize)
        for block in 0..<s.blocks {
            let rows = s.rows(block), span = rows.count * s.outWidth
            // Whole, and in two parts by input channel (as split products unfold), on alternate tiles.
            let parts: [Range<Int>?] = block % 2 == 0 && s.blocks > 1 ? [nil]
                : [0..<(s.perGroup / 2), (s.perGroup / 2)..<s.perGroup]
            tile.withUnsafeMutableBufferPointer { $0.update(repeating: .nan) }
            for part in parts {
                x.data.withUnsafeBufferPointer { xs in
                    tile.withUnsafeMutableBufferPointer {
                        unfold(xs.baseAddress!, s, rows: rows, channels: part, into: $0.baseAddress!)
                    }
                }
            }
            var expected = [Float](repeating: 0, count: s.patch * span)
            for c in 0..<s.perGroup {
                for p in 0..<s.kh {
                    for q in 0..<s.kw {
                        for oy in rows {
                            for ox in 0..<s.outWidth {
                                let iy = oy * s.conv.stride.0 + p * s.conv.dilation.0 - s.conv.padding.0
                                let ix = ox * s.conv.stride.1 + q * s.conv.dilation.1 - s.conv.padding.1
                                guard iy >= 0 && iy < s.height && ix >= 0 && ix < s.width else { continue }
                                expected[((c * s.kh + p) * s.kw + q) * span + (oy - rows.lowerBound) * s.outWidth + ox] =
                                    x.data[(c * s.height + iy) * s.width + ix]
                            }
                        }
                    }
                }
            }
            #expect(Array(tile[0..<(s.patch * span)]) == expected, "tile \(block) of \(s.blocks)")
        }
    }

    @Test("fold is the adjoint of unfold: <unfold(x), t> = <x, fold(t)>", arguments: unfoldCases)
    func foldIsTheAdjoint(_ c: ConvCase) {
        var rng = SplitMix64(seed: 202)
        let s = geometry(c), x = fdTensor([s.perGroup, s.height, s.width], &rng)
        for block in 0..<s.blocks {
            let rows = s.rows(block), t = fdTensor([s.patch * rows.count * s.outWidth], &rng)
            var unfolded = [Float](repeating: 0, count: t.count), folded = [Float](repeating: 0, count: x.count)
            x.data.withUnsafeBufferPointer { xs in
                unfolded.withUnsafeMutableBufferPointer { unfold(xs.baseAddress!, s, rows: rows, into: $0.baseAddress!) }
            }
            t.data.withUnsafeBufferPointer { ts in
                folded.withUnsafeMutableBufferPointer { fold(ts.baseAddress!, s, rows: rows, into: $0.baseAddress!) }
            }
            let left = zip(unfolded, t.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let right = zip(x.data, folded).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            // fold sums in float: allow its rounding, relative to the terms' magnitude.
            let magnitude = zip(unfolded, t.data).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
            #expect(abs(left - right) <= 1e-6 * magnitude, "tile \(block): \(left) vs \(right)")
        }
    }

    @Test("the split cases are split into blocks of output channels, the result equal to the naive conv",
          arguments: splitCases)
    func splitProducts(_ c: ConvCase) {
        let s = geometry(c)
        #expect(ConvSplit(s, rows: (s.outPerGroup + 3) / 4 * 4).blocks > 1)
        var rng = SplitMix64(seed: 7)
        let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng), b = c.bias ? netTensor([c.weight[0]], &rng) : nil
        netExpect(pathForward(unfoldedPath, x, weight: w, bias: b, c), naiveConv2d(x, w, b, c.conv))
    }

    @Test("1x1 convs are tiled for small products where one row fits, the result equal to the naive conv",
          arguments: smallProductCases)
    func smallProducts(_ c: ConvCase) {
        let s = geometry(c), m = (s.outPerGroup + 3) / 4 * 4
        #expect(s.smallProductRows(m) == 1_000_000 / (m * s.patch * s.outWidth))
        var rng = SplitMix64(seed: 9)
        let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng), b = c.bias ? netTensor([c.weight[0]], &rng) : nil
        netExpect(pathForward(unfoldedPath, x, weight: w, bias: b, c), naiveConv2d(x, w, b, c.conv))
        // One row's product too large; one row too narrow (28 columns); a 7x7 sample whole.
        #expect(geometry(ConvCase(label: "", input: [1, 960, 4, 32], weight: [160, 960, 1, 1], conv: Conv2d(),
                                  bias: false)).smallProductRows(160) == nil)
        #expect(geometry(ConvCase(label: "", input: [1, 276, 28, 28], weight: [69, 276, 1, 1], conv: Conv2d(),
                                  bias: false)).smallProductRows(72) == nil)
        #expect(geometry(ConvCase(label: "", input: [1, 64, 7, 7], weight: [64, 64, 1, 1], conv: Conv2d(),
                                  bias: false)).smallProductRows(64) == 7)
    }

    @Test("kernel rows and columns that read only padding are dropped, the result equal to the naive conv")
    func paddingTapsDropped() {
        let cases = [  // (case, the kernel kept)
            (ConvCase(label: "dilation 7 on 6x6: 1x1", input: [1, 8, 6, 6], weight: [12, 8, 3, 3],
                      conv: Conv2d(padding: (7, 7, 7, 7), dilation: (7, 7)), bias: true), [1, 1]),
            (ConvCase(label: "columns of dilation 6 on 5 columns, stride 2", input: [2, 5, 9, 5], weight: [6, 5, 3, 3],
                      conv: Conv2d(stride: (2, 1), padding: (2, 6, 1, 6), dilation: (2, 6)), bias: false), [3, 1]),
            (ConvCase(label: "top row only in padding", input: [1, 3, 6, 8], weight: [4, 3, 3, 3],
                      conv: Conv2d(padding: (4, 1, 0, 1), dilation: (3, 1)), bias: true), [2, 3]),
        ]
        for (c, kept) in cases {
            let s = geometry(c)
            var rng = SplitMix64(seed: 11)
            let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng), b = c.bias ? netTensor([c.weight[0]], &rng) : nil
            #expect(withoutPaddingTaps(s, weight: w).map { Array($0.weight.shape.suffix(2)) } == kept, "\(c.label)")
            netExpect(conv2dForward(x, weight: w, bias: b, c.conv, outputShape: [s.batch, s.outputs, s.outHeight, s.outWidth]),
                      naiveConv2d(x, w, b, c.conv))
        }
        #expect(withoutPaddingTaps(geometry(splitCases[0]), weight: Tensor(zeros: splitCases[0].weight)) == nil)
    }

    @Test("forms made from the weights (tap blocks, cropped taps, packed blocks, Winograd kernels, depthwise vectors) follow the weights and their copies")
    func weightFormsFollowTheWeights() {
        let cropped = ConvCase(label: "dilation 7 on 6x6: 1x1", input: [1, 8, 6, 6], weight: [12, 8, 3, 3],
                               conv: Conv2d(padding: (7, 7, 7, 7), dilation: (7, 7)), bias: false)
        // The paths that keep forms on every instruction set, each case taking its path (in dispatch order).
        let (winograd, direct, depthwise) = (geometry(winogradCases[0]), geometry(directCases[0]),
                                             geometry(depthwiseVectorCases[0]))
        #expect(WinogradConvolution.suits(winograd))
        #expect(!WinogradConvolution.suits(depthwise) && DepthwiseVectorConvolution.suits(depthwise))
        #expect(!WinogradConvolution.suits(direct) && !DepthwiseVectorConvolution.suits(direct)
                && DirectConvolution.suits(direct) && !ChannelVectorConvolution.suits(direct))
        for c in [tapCases[0], cropped, pointwiseKernelCases[0], channelVectorCases[0], winogradCases[0], directCases[0],
                  depthwiseVectorCases[0]] {
            let s = geometry(c), shape = [s.batch, s.outputs, s.outHeight, s.outWidth]
            var rng = SplitMix64(seed: 13)
            let x = netTensor(c.input, &rng)
            var w = netTensor(c.weight, &rng)
            netExpect(conv2dForward(x, weight: w, bias: nil, c.conv, outputShape: shape), naiveConv2d(x, w, nil, c.conv))
            // Weights that every path reads: the centre tap (or the only one) of input channels 0 and 1.
            let (first, second) = (s.kh * s.kw / 2, s.kh * s.kw + s.kh * s.kw / 2)
            var copy = w
            copy.data[second] += 1
            w.data[first] -= 2
            netExpect(conv2dForward(x, weight: w, bias: nil, c.conv, outputShape: shape), naiveConv2d(x, w, nil, c.conv))
            netExpect(conv2dForward(x, weight: copy, bias: nil, c.conv, outputShape: shape),
                      naiveConv2d(x, copy, nil, c.conv))
        }
    }

    @Test("conv with batchnorm and activation epilogue = conv, then batchNormInference, then activationForward (bitwise)",
          arguments: (unfoldCases + directCases + tapCases + winogradCases + depthwiseVectorCases + channelVectorCases)
              .filter { $0.conv.padding.0 >= 0 && $0.conv.padding.1 >= 0 })
    func fusedEpilogue(_ c: ConvCase) throws {
        try withSteadyInstructionSet {  // runs compared bitwise
            var rng = SplitMix64(seed: 203)
            let s = geometry(c), x = fdTensor(c.input, &rng), w = fdTensor(c.weight, &rng)
            let b = c.bias ? fdTensor([c.weight[0]], &rng) : nil
            let (gamma, beta, mean) = (fdTensor([s.outputs], &rng).data, fdTensor([s.outputs], &rng).data,
                                       fdTensor([s.outputs], &rng).data)
            let variance = fdTensor([s.outputs], &rng).data.map { $0 * $0 + 0.1 }
            let shape = [s.batch, s.outputs, s.outHeight, s.outWidth]
            let plain = conv2dForward(x, weight: w, bias: b, c.conv, outputShape: shape)
            let normalized = batchNormInference(plain, gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: 1e-5)
            let affine = batchNormScaleShift(gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: 1e-5)
            #expect(conv2dForward(x, weight: w, bias: b, c.conv, outputShape: shape, normalization: affine) == normalized)
            for kind in ConvEpilogue.activations {
                #expect(conv2dForward(x, weight: w, bias: b, c.conv, outputShape: shape, normalization: affine, activation: kind)
                        == activationForward(normalized, Activation(kind)), "\(kind)")
            }
            for kind in ConvEpilogue.activations {  // without batchnorm: the bias, then the activation
                #expect(conv2dForward(x, weight: w, bias: b, c.conv, outputShape: shape, activation: kind)
                        == activationForward(plain, Activation(kind)), "\(kind) without batchnorm")
            }
            let residual = fdTensor(shape, &rng), sum = binaryForward(residual, normalized, .add, outputShape: shape)
            let expected = activationForward(sum, .relu)
            #expect(conv2dForward(x, weight: w, bias: b, c.conv, outputShape: shape, normalization: affine,
                                  residual: residual, activation: .relu) == expected)
            #expect(conv2dForward(x, weight: w, bias: b, c.conv, outputShape: shape, normalization: affine,
                                  residual: residual) == sum, "a residual without activation")
            // A reusable residual: the same sum, written over it by a path that writes each output once.
            var spare: Tensor? = Tensor(shape: shape, data: residual.data.map { $0 })
            let memory = spare!.data.withUnsafeBufferPointer { $0.baseAddress! }
            let reused = conv2dForward(x, weight: w, bias: b, c.conv, outputShape: shape, normalization: affine,
                                       residual: spare.take(), residualReusable: true, activation: .relu)
            #expect(reused == expected)
            let taken = withoutPaddingTaps(s, weight: w).map { ConvGeometry(input: c.input, weight: $0.weight.shape,
                                                                             output: shape, $0.conv) } ?? s
            let inPlace = reused.data.withUnsafeBufferPointer { $0.baseAddress! == memory }
            #expect(inPlace == Conv2dPath(taken).writesEachOutputOnce, "\(Conv2dPath(taken))")
            // Memory another tensor holds is not written: the residual stays as it was.
            let before = residual.data
            #expect(conv2dForward(x, weight: w, bias: b, c.conv, outputShape: shape, normalization: affine,
                                  residual: residual, residualReusable: true, activation: .relu) == expected)
            #expect(residual.data == before)
        }
    }

    @Test("a residual block's conv, batchnorm, add and relu run as one step when the add's other operand exists")
    func residualChainsFold() throws {
        let b = try NetZoo.resnet.build()
        let net = b.net
        var seconds = [Double](repeating: -1, count: net.nodes.count)
        _ = try net.forward(b.inputs(batch: 2), nodeSeconds: &seconds)
        let folded = Set(net.nodes.indices.filter { seconds[$0] == 0 }.map { net.valueNames[net.nodes[$0].output] })
        // b1.conv2's add reads the stem, computed before it; b2's add reads b2.bn2, computed before the projection.
        #expect(folded.isSuperset(of: ["b1.bn2", "b1.add", "b1.relu", "b2.proj.bn", "b2.add", "b2.relu"]))
    }

    @Test("a conv, batchnorm and hardswish run as one step, with the results of running node by node")
    func hardswishChainsFold() throws {
        let b = NetBuilder(seed: 5)
        let x = try b.input("x", [1, 3, 9, 20])
        try b.output(try b.op("hs", .activation(Activation(.hardswish)), try b.batchNorm("bn", try b.conv("c", x, out: 6))))
        var seconds = [Double](repeating: -1, count: b.net.nodes.count)
        let inputs = b.inputs(batch: 2)
        #expect(try withSteadyInstructionSet { try b.net.forward(inputs, nodeSeconds: &seconds) == nodeByNode(b.net, inputs) })
        #expect(seconds.dropFirst().allSatisfy { $0 == 0 }, "batchnorm and hardswish fold into the conv")
    }

    @Test("residuals that the add reads last, that are graph inputs, the conv's input or read later: node-by-node results, inputs unchanged")
    func residualsReusedInPlace() throws {
        let b = NetBuilder(seed: 8)
        let x = try b.input("x", [1, 8, 12, 32])
        /// `relu(batchnorm(conv(input)) + residual)`: one fused step (direct kernel, each output written once).
        func block(_ name: String, _ input: Int, residual: Int) throws -> Int {
            let normalized = try b.batchNorm("\(name).bn", try b.conv(name, input, out: 8))
            let sum = try b.op("\(name).add", .binary(.add), normalized, residual)
            return try b.op("\(name).relu", .activation(Activation(.relu)), sum)
        }
        let first = try block("on x", x, residual: x)  // the graph input
        let own = try block("own", first, residual: first)  // the conv's own input
        let kept = try b.conv("kept", own, out: 8)
        let reused = try block("reused", own, residual: try b.conv("spent", own, out: 8))  // read last by the add
        let later = try block("later", reused, residual: kept)
        try b.output(try b.op("kept again", .binary(.mul), later, kept))  // `kept` read after its add
        var seconds = [Double](repeating: -1, count: b.net.nodes.count)
        let inputs = b.inputs(batch: 2), copies = inputs.map { Tensor(shape: $0.shape, data: $0.data.map { $0 }) }
        #expect(try withSteadyInstructionSet {
            try b.net.forward(inputs, nodeSeconds: &seconds) == nodeByNode(b.net, inputs)
        })
        #expect(inputs == copies)
        let folded = Set(b.net.nodes.indices.filter { seconds[$0] == 0 }.map { b.net.valueNames[b.net.nodes[$0].output] })
        #expect(folded.isSuperset(of: ["on x.add", "own.add", "reused.add", "later.add"]), "\(folded)")
        #expect(Conv2dPath(ConvGeometry(input: [2, 8, 12, 32], weight: [8, 8, 3, 3], output: [2, 8, 12, 32],
                                        Conv2d(padding: (1, 1, 1, 1)))).writesEachOutputOnce)
    }

    @Test("an expansion and the depthwise conv that alone reads it run as one step in bands, with the results of running node by node")
    func expansionsFold() throws {
        let b = NetBuilder(seed: 9)
        let x = try b.input("x", [1, 16, 80, 80])
        /// A 1x1 conv to `expanded` channels, batchnorm and relu, then a 3x3 depthwise conv, batchnorm and hardswish.
        func expansion(_ name: String, _ input: Int, _ expanded: Int, stride: Int) throws -> Int {
            let e = try b.op("\(name).relu", .activation(Activation(.relu)),
                             try b.batchNorm("\(name).bn", try b.conv(name, input, out: expanded, kernel: 1)))
            let d = try b.conv("\(name).dw", e, out: expanded, stride: stride, groups: expanded)
            return try b.op("\(name).hs", .activation(Activation(.hardswish)), try b.batchNorm("\(name).dw.bn", d))
        }
        let first = try expansion("first", x, 64, stride: 2)  // 1.6 MB expanded: two bands
        let narrow = try b.conv("narrow", first, out: 96, kernel: 1)
        try b.output(try expansion("second", narrow, 192, stride: 1))  // 96 input channels: two convs
        // MobileNetV2's block: a ReLU6 that no epilogue applies, between the convs and after them.
        let relu6 = Op.activation(Activation(.clip, alpha: 0, beta: 6))
        let wide = try b.op("third.relu6", relu6, try b.batchNorm("third.bn", try b.conv("third", x, out: 64, kernel: 1)))
        let d = try b.batchNorm("third.dw.bn", try b.conv("third.dw", wide, out: 64, stride: 2, groups: 64))
        try b.output(try b.op("third.dw.relu6", relu6, d))
        var seconds = [Double](repeating: -1, count: b.net.nodes.count)
        let inputs = b.inputs(batch: 2)
        let (result, expected) = try withSteadyInstructionSet {
            (try b.net.forward(inputs, nodeSeconds: &seconds), try nodeByNode(b.net, inputs))
        }
        // AVX2's 1x1 convs alone are OpenBLAS products, in bands the pointwise kernel: rounding differs there.
        let bitwise = result == expected  // (a Bool: the tensors' values would fill the report)
        if InstructionSet.active == .avx512 { #expect(bitwise) }
        for (got, want) in zip(result, expected) {
            netExpect(got, NetReference(shape: want.shape, data: want.data.map(Double.init)), tolerance: 1e-5)
        }
        let folded = Set(b.net.nodes.indices.filter { seconds[$0] == 0 }.map { b.net.valueNames[b.net.nodes[$0].output] })
        #expect(folded == ["first.bn", "first.relu", "first.dw", "first.dw.bn", "first.hs", "second.bn", "second.relu",
                           "second.dw.bn", "second.hs", "third.bn", "third.relu6", "third.dw", "third.dw.bn"], "\(folded)")
    }

    @Test("a resize that only the next node, a concat, reads is written into the concat's channels, with the results of running node by node",
          arguments: [Resize(height: 10, width: 21, mode: .bilinear), Resize(height: 9, width: 14, mode: .nearest),
                      Resize(height: 10, width: 14, mode: .bilinear, alignCorners: true)])
    func resizesIntoConcats(_ r: Resize) throws {
        let b = NetBuilder(seed: 6)
        let x = try b.input("x", [1, 3, 5, 7])
        let before = try b.op("before", .resize(r), try b.conv("c1", x, out: 2))
        let late = try b.conv("c2", x, out: 4)
        let middle = try b.op("middle", .resize(r), late)
        let joined = try b.op("joined", .concat, before, middle, try b.op("same", .resize(r), try b.conv("c3", x, out: 3)))
        // Not folded: a resize that is also an output, and one read again after the concat.
        let c5 = try b.op("c5 up", .resize(r), try b.conv("c5", x, out: 2))
        let shown = try b.op("shown", .resize(r), x)
        try b.output(try b.op("after shown", .concat, c5, shown))
        let c6 = try b.op("c6 up", .resize(r), try b.conv("c6", x, out: 2))
        let twice = try b.op("twice", .resize(r), c6)
        let again = try b.op("after twice", .concat, c6, twice)
        try b.output(try b.op("sum", .binary(.add), again, try b.op("twice again", .concat, twice, twice)))
        try b.output(joined)
        try b.output(shown)
        var seconds = [Double](repeating: -1, count: b.net.nodes.count)
        let inputs = b.inputs(batch: 3)
        #expect(try withSteadyInstructionSet { try b.net.forward(inputs, nodeSeconds: &seconds) == nodeByNode(b.net, inputs) })
        let folded = Set(b.net.nodes.indices.filter { seconds[$0] == 0 }.map { b.net.valueNames[b.net.nodes[$0].output] })
        #expect(folded == ["joined"], "only the concat after `same` takes its resize in: \(folded)")
    }

    @Test("network inference fuses conv-batchnorm(-relu) chains with the results of running node by node",
          arguments: NetZoo.allCases)
    func fusedNetworkForward(_ zoo: NetZoo) throws {
        let b = try zoo.build()
        let inputs = b.inputs(batch: 2)
        #expect(try withSteadyInstructionSet { try b.net.forward(inputs) == nodeByNode(b.net, inputs) })
    }
}

/// `net`'s outputs on `inputs`, each node run on its own (`Op.forward`), nothing fused.
private func nodeByNode(_ net: Network, _ inputs: [Tensor]) throws -> [Tensor] {
    var values = [Tensor?](repeating: nil, count: net.valueCount)
    for (tensor, input) in zip(inputs, net.inputs) { values[input.value] = tensor }
    let shapes = try net.shapes(for: inputs)
    for node in net.nodes {
        values[node.output] = node.op.forward(node.inputs.map { values[$0]! },
                                              parameters: node.parameters.map { net.parameters[$0].tensor },
                                              outputShape: shapes[node.output])
    }
    return net.outputs.map { values[$0]! }
}
