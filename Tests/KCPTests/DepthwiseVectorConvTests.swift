import Testing
@testable import KCP

// The depthwise kernel with channels along the vector lanes against the
// naive reference: a last block of fewer than 16 channels, strides,
// dilation, asymmetric padding, a window narrower than the input (stride 2
// on an even width), several tiles per sample, batches, 1x1 and 7x7 kernels.

let depthwiseVectorCases: [ConvCase] = [
    ConvCase(label: "3x3 on 7x7, 40 channels (a block of 8 left over)", input: [1, 40, 7, 7], weight: [40, 1, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1), groups: 40), bias: true),
    ConvCase(label: "5x5 stride 2, 14x14 -> 7x7, batch 2", input: [2, 16, 14, 14], weight: [16, 1, 5, 5],
             conv: Conv2d(stride: (2, 2), padding: (2, 2, 2, 2), groups: 16), bias: false),
    ConvCase(label: "3x3 dilation 2, asymmetric padding, 20 channels", input: [1, 20, 11, 13], weight: [20, 1, 3, 3],
             conv: Conv2d(padding: (2, 1, 0, 3), dilation: (2, 2), groups: 20), bias: true),
    ConvCase(label: "7x7 on rows of 14, 3 channels", input: [1, 3, 9, 14], weight: [3, 1, 7, 7],
             conv: Conv2d(padding: (3, 3, 3, 3), groups: 3), bias: true),
    ConvCase(label: "stride (2, 3), the window narrower than the input", input: [1, 17, 10, 12], weight: [17, 1, 3, 2],
             conv: Conv2d(stride: (2, 3), groups: 17), bias: false),
    ConvCase(label: "100 rows in two tiles", input: [1, 5, 100, 20], weight: [5, 1, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1), groups: 5), bias: true),
    ConvCase(label: "1x1, a per-channel scale", input: [3, 18, 5, 6], weight: [18, 1, 1, 1], conv: Conv2d(groups: 18),
             bias: true),
]

@Suite("Depthwise channel-vector kernel")
struct DepthwiseVectorConvTests {
    @Test(arguments: depthwiseVectorCases)
    func matchesTheNaiveConvolution(_ c: ConvCase) {
        let s = geometry(c)
        #expect(DepthwiseVectorConvolution.suits(s), "the case must take the channel-vector depthwise kernel")
        var rng = SplitMix64(seed: 23)
        let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng)
        let b = c.bias ? netTensor([c.weight[0]], &rng) : nil
        let y = conv2dForward(x, weight: w, bias: b, c.conv, outputShape: [s.batch, s.outputs, s.outHeight, s.outWidth])
        netExpect(y, naiveConv2d(x, w, b, c.conv))
    }

    @Test("rows of 16 pixels or more that the direct kernel suits, and cropping, are left to the others")
    func unsuitedGeometries() {
        let cases = [
            ConvCase(label: "rows of 32", input: [1, 16, 8, 32], weight: [16, 1, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1), groups: 16), bias: false),
            ConvCase(label: "rows of 28, 5x5 taps", input: [1, 16, 8, 28], weight: [16, 1, 5, 5],
                     conv: Conv2d(padding: (2, 2, 2, 2), groups: 16), bias: false),
            ConvCase(label: "cropping", input: [1, 16, 8, 8], weight: [16, 1, 3, 3],
                     conv: Conv2d(padding: (-1, 1, 1, 1), groups: 16), bias: false),
            ConvCase(label: "not depthwise", input: [1, 16, 8, 8], weight: [16, 2, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1), groups: 8), bias: false),
        ]
        for c in cases { #expect(!DepthwiseVectorConvolution.suits(geometry(c)), "\(c.label)") }
    }
}
