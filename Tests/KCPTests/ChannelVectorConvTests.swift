import Testing
@testable import KCP

// The channel-vector conv kernel against the naive reference, on geometries
// that take each of its branches: a last block of 1 to 3 vectors with zero
// channels past the outputs, tiles of 6 pixels across rows with a short
// tail, several chunks of pixels (across samples), sums over several parts of the input
// channels, strides, dilation, asymmetric padding, groups, batches, an
// unpadded conv read in place, 1x1 convs on planes that leave the pointwise
// kernel's lanes idle, and both job orders (`blocksInner`). The kernel is
// called itself, so it is tested whatever set is active (convs take it with
// AVX-512, and on AVX2's short rows); `InstructionSetTests` runs it on every set.

let channelVectorCases: [ConvCase] = [
    ConvCase(label: "96 outputs (a block and 2 vectors), rows of 14", input: [2, 7, 14, 14], weight: [96, 7, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "67 outputs (a 3-channel vector), 5 tiles of 6 and a 1-pixel tail", input: [1, 5, 1, 31],
             weight: [67, 5, 3, 3], conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
    ConvCase(label: "130 outputs of 20 channels in 3 parts, 400 pixels in 5 chunks", input: [1, 20, 20, 20],
             weight: [130, 20, 3, 3], conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "stride 2, asymmetric padding, dilation 2", input: [1, 9, 23, 19], weight: [80, 9, 3, 3],
             conv: Conv2d(stride: (2, 2), padding: (2, 1, 0, 3), dilation: (2, 2)), bias: true),
    ConvCase(label: "5x2 kernel, stride (3, 1), dilation (2, 1)", input: [2, 4, 17, 11], weight: [70, 4, 5, 2],
             conv: Conv2d(stride: (3, 1), padding: (3, 0, 1, 0), dilation: (2, 1)), bias: false),
    ConvCase(label: "groups 2 of 72 outputs", input: [1, 8, 10, 10], weight: [144, 4, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1), groups: 2), bias: true),
    ConvCase(label: "batch 3, 3x3 without padding: a chunk and a tile across samples", input: [3, 6, 9, 8],
             weight: [65, 6, 3, 3], conv: Conv2d(), bias: false),
    ConvCase(label: "batch 5 of 2x2 pixels: tiles across samples", input: [5, 8, 2, 2], weight: [72, 8, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "3x3 read in place, 200 channels in 15 parts, 7x7", input: [2, 200, 9, 9], weight: [100, 200, 3, 3],
             conv: Conv2d(), bias: true),
    ConvCase(label: "weights past the cache: each chunk for one block", input: [1, 240, 9, 11], weight: [130, 240, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
    ConvCase(label: "stride 2, 48 outputs (ahead of the direct kernel)", input: [3, 20, 17, 16], weight: [48, 20, 3, 3],
             conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "1x1 on 7x7, 3 samples: tiles across samples", input: [3, 24, 7, 7], weight: [80, 24, 1, 1],
             conv: Conv2d(), bias: true),
    ConvCase(label: "1x1, stride 2, to 5x5", input: [2, 16, 10, 9], weight: [70, 16, 1, 1],
             conv: Conv2d(stride: (2, 2)), bias: false),
]

@Suite("Channel-vector conv kernel")
struct ChannelVectorConvTests {
    @Test(arguments: channelVectorCases)
    func matchesTheNaiveConvolution(_ c: ConvCase) throws {
        let s = geometry(c)
        // Winograd's bound depends on the set: on AVX2, where convs never take this kernel, it is lower.
        let beforeWinograd = try withSteadyInstructionSet { InstructionSet.active != .avx512 || !WinogradConvolution.suits(s) }
        // 1x1 convs on planes that idle the pointwise kernel's lanes take this kernel on 256-bit units only.
        let taken = ChannelVectorConvolution.pays(s) || (s.kh * s.kw == 1 && !InstructionSet.halfWidthUnits)
        #expect(taken && beforeWinograd && !TapProducts.suits(s),
                "the case must take the channel-vector kernel with AVX-512 (a 1x1 conv: on 256-bit units)")
        expectPathMatchesNaive(channelVectorConv2d, c, seed: 23)
    }

    @Test("the cases cover both job orders, several chunks and parts, and tails of every kind")
    func casesCoverTheBranches() {
        let kernels = channelVectorCases.map { ChannelVectorConvolution(geometry($0)) }
        #expect(kernels.contains { $0.blocksInner } && kernels.contains { !$0.blocksInner })
        #expect(kernels.contains { $0.chunks > 1 } && kernels.contains { $0.s.perGroup > $0.channelsPerPart })
        #expect(kernels.contains { $0.chunkSize > $0.s.pixels && $0.chunks > 1 })
        #expect(kernels.contains { !$0.padded } && kernels.contains { $0.s.outPerGroup % 64 == 3 })
    }

    @Test("1x1 convs whose pixel blocks fill their lanes (the pointwise kernel's), 64 outputs, strided ones of 16 outputs, from 3 channels or on rows of a pixel vector or more, and cropping take the other paths")
    func unsuitedGeometries() {
        let cases = [
            ConvCase(label: "16 outputs, stride 2", input: [1, 8, 16, 16], weight: [16, 8, 3, 3],
                     conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "48 outputs, stride 2, on rows of 16", input: [2, 20, 32, 32], weight: [48, 20, 3, 3],
                     conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "an image's 3 channels, 7x7 stride 2", input: [1, 3, 32, 32], weight: [64, 3, 7, 7],
                     conv: Conv2d(stride: (2, 2), padding: (3, 3, 3, 3)), bias: false),
            ConvCase(label: "1x1", input: [1, 512, 14, 14], weight: [128, 512, 1, 1], conv: Conv2d(), bias: false),
            ConvCase(label: "1x1 stride 2", input: [1, 512, 28, 28], weight: [128, 512, 1, 1],
                     conv: Conv2d(stride: (2, 2)), bias: false),
            ConvCase(label: "1x1 on 7x7, 64 outputs", input: [1, 512, 7, 7], weight: [64, 512, 1, 1], conv: Conv2d(),
                     bias: false),
            ConvCase(label: "64 outputs", input: [1, 8, 16, 16], weight: [64, 8, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "negative padding", input: [1, 8, 16, 16], weight: [80, 8, 3, 3],
                     conv: Conv2d(padding: (-1, 1, 1, 1)), bias: false),
        ]
        for c in cases { #expect(!ChannelVectorConvolution.pays(geometry(c)), "\(c.label)") }
    }

    @Test("pixel blocks fill their lanes on planes of 90% of whole blocks or more")
    func lanesFilled() {
        let planes = [(4, 4), (5, 5), (7, 7), (14, 14), (28, 28), (3, 15), (9, 13)]
        let filled = planes.map { h, w in
            PointwiseConvolution.fillsLanes(geometry(ConvCase(label: "", input: [2, 32, h, w], weight: [96, 32, 1, 1],
                                                              conv: Conv2d(), bias: false)))
        }
        // 16 of 16 lanes, 25 of 32, 49 of 64, 196 of 208, 784 of 784, 45 of 48, 117 of 128.
        #expect(filled == [true, false, false, true, true, true, true])
    }

    @Test("with AVX-512 the kernel takes strided convs of long rows, and 1x1 convs on 7x7 on 256-bit units; with AVX2 only convs of several taps on short rows")
    func pathsBySet() {
        let convs = [
            ConvCase(label: "1x1 on 7x7", input: [1, 512, 7, 7], weight: [2048, 512, 1, 1], conv: Conv2d(), bias: false),
            ConvCase(label: "1x1 on 14x14", input: [1, 1024, 14, 14], weight: [256, 1024, 1, 1], conv: Conv2d(),
                     bias: false),
            ConvCase(label: "3x3 on 7x7", input: [1, 512, 7, 7], weight: [512, 512, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "3x3, stride 2, to 28x28", input: [1, 128, 56, 56], weight: [128, 128, 3, 3],
                     conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1)), bias: false),
        ].map(geometry)
        let expected: [InstructionSet: [Conv2dPath]] = [
            .avx512: [InstructionSet.halfWidthUnits ? .channelVectors : .pointwise, .pointwise, .channelVectors,
                      .channelVectors],
            .avx2: [.unfolded, .unfolded, .channelVectors, .unfolded],
        ]
        for set in InstructionSet.supported {
            #expect(withInstructionSet(set) { convs.map(Conv2dPath.init) } == expected[set], "\(set)")
        }
    }

    @Test("packed weights are made once per weight values: a changed weight, or a changed copy, is packed again")
    func packedWeightsFollowTheValues() {
        let c = channelVectorCases[0], s = geometry(c)
        var rng = SplitMix64(seed: 5)
        let x = netTensor(c.input, &rng)
        var w = netTensor(c.weight, &rng)
        netExpect(pathForward(channelVectorConv2d, x, weight: w, bias: nil, c), naiveConv2d(x, w, nil, c.conv))
        let packed = w.derived("channel vectors", layout: [s.outputs, s.perGroup, s.kh, s.kw, s.groups]) { [] }
        #expect(packed.count == (s.outputs + 15) / 16 * 16 * s.patch, "the first conv kept its packed weights")
        var copy = w
        copy.data[7] += 1
        w.data[3] -= 2
        netExpect(pathForward(channelVectorConv2d, x, weight: w, bias: nil, c), naiveConv2d(x, w, nil, c.conv))
        netExpect(pathForward(channelVectorConv2d, x, weight: copy, bias: nil, c), naiveConv2d(x, copy, nil, c.conv))
        netExpect(pathForward(channelVectorConv2d, x, weight: w, bias: nil, c), naiveConv2d(x, w, nil, c.conv))
    }

    @Test("transposed tiles: whole 16 x 16 blocks and the channels and pixels past them, gathered or as blocks of whole rows")
    func transposedTiles() {
        for (pixels, channels) in [(16, 16), (37, 64), (5, 3), (32, 50), (20, 60)] {
            for wholeRows in [false, true] {
                let pitch = 64, linePitch = pixels + 3
                let tiles = (0..<(pixels * pitch)).map { Float($0) }
                var lines = [Float](repeating: -1, count: channels * linePitch)
                transposeTiles(tiles, tilePitch: pitch, pixels: pixels, channels: channels, wholeRows: wholeRows,
                               into: &lines, linePitch: linePitch)
                let expected = (0..<(channels * linePitch)).map { k in
                    k % linePitch < pixels ? Float(k % linePitch * pitch + k / linePitch) : -1
                }
                #expect(lines == expected, "\(pixels) pixels, \(channels) channels, whole rows \(wholeRows)")
            }
        }
    }
}
