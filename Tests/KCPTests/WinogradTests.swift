import Testing
@testable import KCP

/// 3x3 stride-1 convs that take Winograd's F(4x4, 3x3): partial tiles at
/// the right and bottom edges, padding wider than a tile on one side and
/// none on the other, groups, two runs of 16 tiles in a band, and chunks
/// of several bands.
let winogradCases: [ConvCase] = [
    ConvCase(label: "48 channels, 13x11: partial tiles, 3 samples", input: [3, 48, 13, 11], weight: [48, 48, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "asymmetric padding (5, 6, 0, 1)", input: [3, 48, 14, 15], weight: [56, 48, 3, 3],
             conv: Conv2d(padding: (5, 6, 0, 1)), bias: false),
    ConvCase(label: "groups 2 of 32 on rows of 70", input: [1, 64, 9, 70], weight: [64, 32, 3, 3],
             conv: Conv2d(padding: (0, 2, 1, 0), groups: 2), bias: true),
    ConvCase(label: "unpadded, 32 bands in chunks of 4", input: [2, 64, 66, 82], weight: [80, 64, 3, 3],
             conv: Conv2d(), bias: false),
    ConvCase(label: "66 -> 22 channels (harmonic mean 33) on rows of 40", input: [1, 66, 9, 40],
             weight: [22, 66, 3, 3], conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
]

/// `dL/dW[o, c, p, q] = sum_{n, oy, ox} dy[n, o, oy, ox] x[n, g(o) C/g + c, oy + p - top, ox + q - left]`
/// (stride 1, dilation 1), in double.
func naiveWinogradWeightGradient(_ x: Tensor, _ dy: Tensor, _ c: ConvCase) -> [Double] {
    let s = geometry(c), (top, left) = (c.conv.padding.0, c.conv.padding.1)
    var dw = [Double](repeating: 0, count: s.outputs * s.perGroup * 9)
    for n in 0..<s.batch {
        for o in 0..<s.outputs {
            let g = o / s.outPerGroup
            for ch in 0..<s.perGroup {
                for p in 0..<3 {
                    for q in 0..<3 {
                        var sum = 0.0
                        for oy in 0..<s.outHeight {
                            let iy = oy + p - top
                            guard iy >= 0 && iy < s.height else { continue }
                            for ox in 0..<s.outWidth {
                                let ix = ox + q - left
                                guard ix >= 0 && ix < s.width else { continue }
                                sum += Double(dy.data[((n * s.outputs + o) * s.outHeight + oy) * s.outWidth + ox])
                                    * Double(x.data[((n * s.channels + g * s.perGroup + ch) * s.height + iy) * s.width + ix])
                            }
                        }
                        dw[((o * s.perGroup + ch) * 3 + p) * 3 + q] += sum
                    }
                }
            }
        }
    }
    return dw
}

@Suite("Winograd convolution")
struct WinogradTests {
    @Test(arguments: winogradCases)
    func matchesTheNaiveConvolution(_ c: ConvCase) {
        let s = geometry(c)
        #expect(WinogradConvolution.suits(s), "the case must take the Winograd path")
        var rng = SplitMix64(seed: 23)
        let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng)
        let b = c.bias ? netTensor([c.weight[0]], &rng) : nil
        let y = conv2dForward(x, weight: w, bias: b, c.conv, outputShape: [s.batch, s.outputs, s.outHeight, s.outWidth])
        netExpect(y, naiveConv2d(x, w, b, c.conv))
    }

    @Test("the weight gradient matches the double-precision sum over outputs, and a finite difference",
          arguments: winogradCases.prefix(3))
    func weightGradient(_ c: ConvCase) {
        let s = geometry(c), shape = [s.batch, s.outputs, s.outHeight, s.outWidth]
        var rng = SplitMix64(seed: 29)
        let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng), dy = netTensor(shape, &rng)
        let dw = conv2dBackward(x, weight: w, hasBias: false, c.conv, gradient: dy).weight
        let expected = naiveWinogradWeightGradient(x, dy, c)
        let scale = expected.reduce(0.0) { max($0, abs($1)) }
        fdExpectEqual(dw.data, expected, tolerance: 1e-5 * scale, "dW")
        // L(w) = <dy, conv(x, w)> is linear in w: (L(w + h d) - L(w - h d)) / 2h = <dL/dw, d> for a direction d.
        let direction = netTensor(c.weight, &rng), h: Float = 1e-2
        func loss(_ sign: Float) -> Double {
            let moved = Tensor(shape: c.weight, data: zip(w.data, direction.data).map { $0 + sign * h * $1 })
            let y = conv2dForward(x, weight: moved, bias: nil, c.conv, outputShape: shape)
            return zip(y.data, dy.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let numeric = (loss(1) - loss(-1)) / (2 * Double(h))
        let analytic = zip(dw.data, direction.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(numeric - analytic) <= 1e-3 * max(1, abs(analytic)), "\(numeric) vs \(analytic)")
    }

    @Test("one to three chunks give the naive result and the same bytes on 1 and 2 threads, whether the passes or whole chunks are shared out",
          arguments: [1, 2, 3])
    func chunksOnThreads(_ chunks: Int) throws {
        // Rows of 16 tiles, 4 bands per chunk (64 tiles); 16 output rows per chunk (for one worker: the machine's
        // processors may share 3 as 2 wider ones, `chunksForWorkers`).
        let c = ConvCase(label: "\(chunks) chunks", input: [1, 32, 16 * chunks, 64], weight: [32, 32, 3, 3],
                         conv: Conv2d(padding: (1, 1, 1, 1)), bias: true)
        let s = geometry(c), winograd = WinogradConvolution(s)
        #expect(WinogradConvolution.suits(s) && winograd.chunks == chunks)
        var rng = SplitMix64(seed: 41)
        let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng), b = netTensor([32], &rng)
        let run = { conv2dForward(x, weight: w, bias: b, c.conv, outputShape: [1, 32, s.outHeight, s.outWidth]) }
        let one = try withThreads(1, run)
        netExpect(one, naiveConv2d(x, w, b, c.conv))
        #expect(try withThreads(2, run) == one)
    }

    @Test("a few chunks that the machine's threads cannot share evenly are fewer and wider, where they fit")
    func chunksForWorkers() {
        // 12 bands of 16 tiles: 3 chunks of 4 bands for one worker; 2 of 6 for two.
        let narrow = geometry(ConvCase(label: "12 bands", input: [1, 32, 48, 64], weight: [32, 32, 3, 3],
                                       conv: Conv2d(padding: (1, 1, 1, 1)), bias: false))
        #expect([1, 2, 3, 4].map { WinogradConvolution(narrow, workers: $0).chunks } == [3, 2, 3, 3])
        // 11 bands: 4, 4 and 3 for one worker; 2 of 6 for two; the 3 for four, fewer than them (passes shared).
        let odd = geometry(ConvCase(label: "11 bands", input: [1, 32, 44, 64], weight: [32, 32, 3, 3],
                                    conv: Conv2d(padding: (1, 1, 1, 1)), bias: false))
        #expect([1, 2, 4].map { WinogradConvolution(odd, workers: $0).chunks } == [3, 2, 3])
        // 256 channels: a band's transformed inputs and products fill a chunk, which cannot be wider.
        let wide = geometry(ConvCase(label: "256 channels", input: [1, 256, 12, 64], weight: [256, 256, 3, 3],
                                     conv: Conv2d(padding: (1, 1, 1, 1)), bias: false))
        #expect(WinogradConvolution(wide).chunks == 3 && WinogradConvolution(wide, workers: 2).chunks == 3)
    }

    @Test("a volumetric conv runs its slices through the same transforms")
    func volumes() {
        // Depth padding 2 in front and none behind: output slices 0 and 1 lose taps, slice 4 reads the last one.
        let conv = Conv3d(depth: DepthAxis(front: 2), plane: Conv2d(padding: (1, 0, 1, 2), groups: 2))
        let (input, weight, output) = ([2, 32, 5, 13, 11], [96, 16, 3, 3, 3], [2, 96, 5, 13, 11])
        let s = Conv3dGeometry(input: input, weight: weight, output: output, conv)
        #expect(s.winogradSlices.map { WinogradConvolution.suits(s.plane, slices: $0) } == true)
        var rng = SplitMix64(seed: 37)
        let x = netTensor(input, &rng), w = netTensor(weight, &rng), b = netTensor([96], &rng)
        netExpect(conv3dForward(x, weight: w, bias: b, conv, outputShape: output),
                  naiveConv3d(x, w, b, conv, outputShape: output))
    }

    @Test("the kernels transform as G g G^T, point by point")
    func kernelTransform() {
        var rng = SplitMix64(seed: 5)
        let c = winogradCases[0], w = netTensor([19, 1, 3, 3], &rng)
        let g: [[Double]] = [[1.0 / 2, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [1.0 / 6, -1.0 / 6, 1.0 / 6],
                             [1.0 / 30, 1.0 / 15, 2.0 / 15], [-16.0 / 15, 8.0 / 15, -4.0 / 15], [0, 0, 1]]
        let s = ConvGeometry(input: [1, 1, 8, 8], weight: w.shape, output: [1, 19, 8, 8], c.conv)
        let u = WinogradConvolution(s).transformedKernels(w.data)
        for kernel in 0..<19 {
            for a in 0..<6 {
                for b in 0..<6 {
                    var expected = 0.0
                    for p in 0..<3 { for q in 0..<3 { expected += g[a][p] * Double(w.data[kernel * 9 + p * 3 + q]) * g[b][q] } }
                    #expect(abs(Double(u[(a * 6 + b) * 19 + kernel]) - expected) <= 1e-6 * (1 + abs(expected)))
                }
            }
        }
    }

    @Test("convs with few channels or tiles, strides or dilation keep the other paths")
    func unsuitedGeometries() {
        let cases = [
            ConvCase(label: "12 channels", input: [1, 12, 32, 32], weight: [12, 12, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "24 channels on rows of 16", input: [64, 24, 16, 16], weight: [24, 24, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "16 tiles for 262144 kernels", input: [4, 512, 7, 7], weight: [512, 512, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "4 tiles", input: [1, 256, 7, 7], weight: [256, 256, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "stride 2", input: [1, 64, 64, 64], weight: [64, 64, 3, 3],
                     conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "dilation 2", input: [1, 64, 64, 64], weight: [64, 64, 3, 3],
                     conv: Conv2d(padding: (2, 2, 2, 2), dilation: (2, 2)), bias: false),
            ConvCase(label: "5x5", input: [1, 64, 64, 64], weight: [64, 64, 5, 5],
                     conv: Conv2d(padding: (2, 2, 2, 2)), bias: false),
        ]
        for c in cases { #expect(!WinogradConvolution.suits(geometry(c)), "\(c.label)") }
    }

    @Test("the harmonic mean of the channel counts decides, by row length and instruction set")
    func channelBound() {
        let conv = { (inputs: Int, outputs: Int, width: Int) in
            geometry(ConvCase(label: "\(inputs) -> \(outputs)", input: [4, inputs, 16, width],
                              weight: [outputs, inputs, 3, 3], conv: Conv2d(padding: (1, 1, 1, 1)), bias: false))
        }
        for set in InstructionSet.supported {
            withInstructionSet(set) {
                let suits = { (inputs: Int, outputs: Int, width: Int) in WinogradConvolution.suits(conv(inputs, outputs, width)) }
                // Rows of 64: harmonic means 33, 31, 21, 24 and 16.
                #expect(suits(66, 22, 64) && suits(20, 64, 64), "\(set)")
                #expect(suits(16, 32, 64) == (set == .avx2) && suits(48, 16, 64) == (set == .avx2), "\(set)")
                #expect(!suits(16, 16, 64), "\(set)")
                // Rows of 28: 51 and 32; rows of 8: 26 and 16.
                #expect(suits(32, 128, 28) && suits(32, 32, 28) == (set == .avx2), "\(set)")
                #expect(suits(64, 16, 8) && !suits(16, 16, 8), "\(set)")
            }
        }
    }

    @Test("a conv of few tiles for its kernels goes to AVX-512's channel-vector kernel, else to Winograd")
    func tileBoundFollowsTheOtherPath() {
        // 16 tiles for 65536 kernels: one per 4096, within 8192, beyond 2048. On AVX2 the channel-vector
        // kernel would take the conv (rows of 14) but for Winograd.
        let c = ConvCase(label: "256 channels on 14x14", input: [1, 256, 14, 14], weight: [256, 256, 3, 3],
                         conv: Conv2d(padding: (1, 1, 1, 1)), bias: false)
        let s = geometry(c)
        for set in InstructionSet.supported {
            let (winograd, channelVectors) = withInstructionSet(set) {
                (WinogradConvolution.suits(s), ChannelVectorConvolution.suits(s))
            }
            #expect(winograd == (set != .avx512) && channelVectors, "\(set)")
        }
    }
}
