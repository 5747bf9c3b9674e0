import Testing
@testable import KCP

// The pointwise conv kernel against the naive reference, on geometries that
// take each of its branches: output channel blocks of 6 and 5, chunks of
// 64 pixels (1024 input channels) and of more, a last chunk of a few pixels
// with idle lanes, a plane of one vector, groups, batches, jobs that split
// the output channels where chunks are few, and strides (the subsampled
// copy of every second pixel, and of every third). The kernel is called
// itself, so it is tested whatever set is active (convs take it with
// AVX-512 only); `InstructionSetTests` runs it on every set.

let pointwiseKernelCases: [ConvCase] = [
    ConvCase(label: "70 outputs (blocks of 6 and 5), 20 channels: chunks of up to 3264 pixels, 3293 in two",
             input: [1, 20, 37, 89], weight: [70, 20, 1, 1], conv: Conv2d(), bias: true),
    ConvCase(label: "1024 channels: chunks of 64 pixels, the last of 1", input: [1, 1024, 5, 13],
             weight: [32, 1024, 1, 1], conv: Conv2d(), bias: false),
    ConvCase(label: "300 channels: 7x7 in one chunk, outputs split among jobs",
             input: [1, 300, 7, 7], weight: [32, 300, 1, 1], conv: Conv2d(), bias: false),
    ConvCase(label: "batch 3, groups 2 of 33 outputs", input: [3, 16, 10, 10], weight: [66, 8, 1, 1],
             conv: Conv2d(groups: 2), bias: true),
    ConvCase(label: "batch 4 of 4x4", input: [4, 40, 4, 4], weight: [36, 40, 1, 1], conv: Conv2d(), bias: true),
    ConvCase(label: "64 channels: 195 pixels in one chunk, its last call on 3", input: [2, 64, 5, 39],
             weight: [48, 64, 1, 1], conv: Conv2d(), bias: false),
    ConvCase(label: "stride 2 on 33x41: 17x21 outputs, chunks of 256 across output rows", input: [2, 256, 33, 41],
             weight: [40, 256, 1, 1], conv: Conv2d(stride: (2, 2)), bias: true),
    ConvCase(label: "stride (3, 1)", input: [1, 24, 11, 10], weight: [38, 24, 1, 1],
             conv: Conv2d(stride: (3, 1)), bias: false),
    ConvCase(label: "stride (1, 3), groups 3", input: [1, 24, 9, 20], weight: [96, 8, 1, 1],
             conv: Conv2d(stride: (1, 3), groups: 3), bias: true),
]

@Suite("Pointwise conv kernel")
struct PointwiseConvTests {
    @Test(arguments: pointwiseKernelCases)
    func matchesTheNaiveConvolution(_ c: ConvCase) {
        #expect(PointwiseConvolution.pays(geometry(c)), "the case must take the pointwise kernel with AVX-512")
        expectPathMatchesNaive(pointwiseConv2d, c, seed: 29)
    }

    @Test("the cases cover chunks of 64 pixels and more, short last chunks, channel blocks of two sizes, split jobs, strides and strided chunks that start mid-row")
    func casesCoverTheBranches() throws {
        // On 2 threads, whatever the machine's count: the jobs split where one chunk cannot keep both busy.
        let kernels = try withThreads(2) { pointwiseKernelCases.map { PointwiseConvolution(geometry($0)) } }
        #expect(kernels.contains { $0.chunkPixels == PointwiseConvolution.callPixels }
                && kernels.contains { $0.chunkPixels > PointwiseConvolution.callPixels })
        #expect(kernels.contains { $0.pixels($0.chunks - 1).count < 16 })
        #expect(kernels.contains { kernel in
            let blocks = kernel.channelBlocks
            return blocks.channels(0).count != blocks.channels(blocks.count - 1).count
        })
        #expect(kernels.contains { $0.parts > 1 })
        #expect(kernels.contains { $0.s.conv.stride.1 == 2 } && kernels.contains { $0.s.conv.stride.1 > 2 })
        #expect(kernels.contains { $0.s.conv.stride != (1, 1) && $0.chunks > 1 && $0.chunkPixels % $0.s.outWidth != 0 })
    }

    @Test("few chunks of unequal pixels split their output channels among the threads, with the bytes of one thread")
    func unequalChunksOnThreads() throws {
        // 196 pixels of 1024 channels: chunks of 64, 64, 64 and 4 pixels, of which 2 threads would run 128 and 68.
        let c = ConvCase(label: "1024 channels on 14x14", input: [1, 1024, 14, 14], weight: [64, 1024, 1, 1],
                         conv: Conv2d(), bias: true)
        let s = geometry(c)
        #expect(try [1, 2].map { n in try withThreads(n) { PointwiseConvolution(s).parts } } == [1, 2])
        #expect(balance([64, 64, 64, 4], threads: 2) == 196.0 / 256 && balance([64, 64, 64, 4], threads: 1) == 1)
        var rng = SplitMix64(seed: 31)
        let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng), b = netTensor([64], &rng)
        let one = try withThreads(1) { pathForward(pointwiseConv2d, x, weight: w, bias: b, c) }
        netExpect(one, naiveConv2d(x, w, b, c.conv))
        #expect(try withThreads(2) { pathForward(pointwiseConv2d, x, weight: w, bias: b, c) } == one)
    }

    @Test("padded 1x1 convs, those of few outputs or few pixels, and kxk convs take the other paths")
    func unsuitedGeometries() {
        let cases = [
            ConvCase(label: "padding", input: [1, 64, 14, 14], weight: [128, 64, 1, 1], conv: Conv2d(padding: (1, 1, 1, 1)),
                     bias: false),
            ConvCase(label: "16 outputs", input: [1, 64, 32, 32], weight: [16, 64, 1, 1], conv: Conv2d(), bias: false),
            ConvCase(label: "3x3 outputs", input: [2, 96, 3, 3], weight: [64, 96, 1, 1], conv: Conv2d(), bias: false),
            ConvCase(label: "depthwise", input: [1, 64, 14, 14], weight: [64, 1, 1, 1], conv: Conv2d(groups: 64),
                     bias: false),
            ConvCase(label: "3x3", input: [1, 64, 14, 14], weight: [128, 64, 3, 3], conv: Conv2d(padding: (1, 1, 1, 1)),
                     bias: false),
        ]
        for c in cases { #expect(!PointwiseConvolution.pays(geometry(c)), "\(c.label)") }
    }
}
