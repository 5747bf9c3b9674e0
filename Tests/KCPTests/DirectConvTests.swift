import Testing
@testable import KCP

// The direct conv kernel against the naive reference, on geometries that
// take each of its branches: balanced channel blocks with empty slots,
// pixel blocks inside one row (with an idle tail) or running through the
// rows of a tile, column and row phases of strides, dilation, negative
// padding, groups, several tiles per sample, depthwise runs (blocks taken
// in fours across rows, and the ones left over), depthwise columns (2 to
// 7 kernel rows, dilated rows, calls of fewer blocks), depthwise rows
// computed in place in the tile (spilling into the next) and jobs of
// several groups.

let directCases: [ConvCase] = [
    ConvCase(label: "11 outputs in blocks of 6 and 5, rows of 32", input: [2, 5, 32, 32], weight: [11, 5, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "4 outputs, rows of 30 with a 14-pixel tail", input: [1, 3, 12, 30], weight: [4, 3, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
    ConvCase(label: "13 outputs, pixel blocks through rows of 28", input: [2, 4, 9, 28], weight: [13, 4, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "9 outputs, rows of 16: blocks in fours across rows, one left over", input: [2, 3, 5, 16],
             weight: [9, 3, 3, 3], conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "7 outputs, rows of 31 (a 15-pixel tail block): blocks across rows, two left over",
             input: [1, 5, 7, 31], weight: [7, 5, 3, 3], conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
    ConvCase(label: "stride 2, asymmetric padding, 4 phases", input: [1, 3, 40, 67], weight: [7, 3, 3, 3],
             conv: Conv2d(stride: (2, 2), padding: (1, 0, 2, 1)), bias: true),
    ConvCase(label: "stride (1, 3), dilation 2, 3 column phases", input: [1, 2, 21, 100], weight: [5, 2, 3, 3],
             conv: Conv2d(stride: (1, 3), padding: (2, 2, 2, 2), dilation: (2, 2)), bias: false),
    ConvCase(label: "5x2 kernel, stride (3, 1), dilation (2, 1)", input: [2, 3, 30, 33], weight: [8, 3, 5, 2],
             conv: Conv2d(stride: (3, 1), padding: (3, 0, 1, 0), dilation: (2, 1)), bias: true),
    ConvCase(label: "groups 2 of 6 outputs", input: [1, 4, 10, 32], weight: [12, 2, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1), groups: 2), bias: true),
    ConvCase(label: "40 input channels, several tiles", input: [1, 40, 30, 64], weight: [6, 40, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
    ConvCase(label: "negative padding (cropping)", input: [1, 4, 12, 36], weight: [5, 4, 3, 3],
             conv: Conv2d(padding: (-1, 2, 0, -1)), bias: true),
    ConvCase(label: "batch 5 of 3 rows", input: [5, 2, 3, 32], weight: [4, 2, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
    ConvCase(label: "depthwise, rows of 80 (runs of 64 and 16)", input: [2, 5, 9, 80], weight: [5, 1, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1), groups: 5), bias: true),
    ConvCase(label: "depthwise stride 2, flat through rows of 33", input: [1, 4, 10, 66], weight: [4, 1, 3, 3],
             conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1), groups: 4), bias: false),
    ConvCase(label: "depthwise 5x5, stride 2", input: [1, 3, 37, 80], weight: [3, 1, 5, 5],
             conv: Conv2d(stride: (2, 2), padding: (2, 2, 2, 2), groups: 3), bias: true),
    ConvCase(label: "depthwise 5x5 dilation 2, rows of 32 (blocks in fours across rows)", input: [1, 3, 7, 32],
             weight: [3, 1, 5, 5], conv: Conv2d(padding: (4, 4, 4, 4), dilation: (2, 2), groups: 3), bias: true),
    ConvCase(label: "depthwise stride 2, rows of 48 (three blocks each, one left over)", input: [2, 2, 13, 96],
             weight: [2, 1, 3, 3], conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1), groups: 2), bias: false),
    ConvCase(label: "depthwise 7x7, rows of 100 in columns of 3, 3 and 1 blocks", input: [1, 2, 11, 100],
             weight: [2, 1, 7, 7], conv: Conv2d(padding: (3, 3, 3, 3), groups: 2), bias: true),
    ConvCase(label: "depthwise 2x3, dilation (3, 1): columns of rows 3 apart, rows of 36", input: [2, 3, 14, 36],
             weight: [3, 1, 2, 3], conv: Conv2d(padding: (2, 1, 1, 1), dilation: (3, 1), groups: 3), bias: false),
    ConvCase(label: "depthwise 6x3, dilation (2, 1), 11 rows of 50", input: [1, 2, 11, 50], weight: [2, 1, 6, 3],
             conv: Conv2d(padding: (5, 1, 5, 1), dilation: (2, 1), groups: 2), bias: true),
    ConvCase(label: "depthwise 3x3, rows of 28 in place: each row's last block spills into the next row",
             input: [2, 3, 9, 28], weight: [3, 1, 3, 3], conv: Conv2d(padding: (1, 1, 1, 1), groups: 3), bias: true),
    ConvCase(label: "depthwise 5x5 stride 2, runs of 30 in place", input: [1, 2, 12, 60], weight: [2, 1, 5, 5],
             conv: Conv2d(stride: (2, 2), padding: (2, 2, 2, 2), groups: 2), bias: false),
    ConvCase(label: "depthwise 1x5, flat through rows of 40", input: [1, 2, 6, 40], weight: [2, 1, 1, 5],
             conv: Conv2d(padding: (0, 2, 0, 2), groups: 2), bias: false),
    ConvCase(label: "depthwise, 64 channels: several per job through one window, its padding cleared once",
             input: [2, 64, 12, 72], weight: [64, 1, 3, 3], conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1), groups: 64),
             bias: true),
]

@Suite("Direct conv kernel")
struct DirectConvTests {
    @Test(arguments: directCases)
    func matchesTheNaiveConvolution(_ c: ConvCase) {
        let s = geometry(c)
        #expect(DirectConvolution.suits(s), "the case must take the direct kernel")
        var rng = SplitMix64(seed: 17)
        let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng)
        let b = c.bias ? netTensor([c.weight[0]], &rng) : nil
        let y = conv2dForward(x, weight: w, bias: b, c.conv, outputShape: [s.batch, s.outputs, s.outHeight, s.outWidth])
        netExpect(y, naiveConv2d(x, w, b, c.conv))
    }

    @Test("a depthwise tile holds its rows as the output plane does, but for flat runs and dilated columns")
    func depthwiseRowsInPlace() {
        let pitch = { (label: String) in
            DirectConvolution(geometry(directCases.first { $0.label.hasPrefix(label) }!)).depthwisePitch
        }
        #expect(pitch("depthwise 3x3, rows of 28 in place") == 28)
        #expect(pitch("depthwise 5x5 stride 2, runs of 30 in place") == 30)
        #expect(pitch("depthwise 2x3, dilation (3, 1): columns of rows 3 apart, rows of 36") == 48)
        #expect(pitch("depthwise stride 2, flat through rows of 33") == 34)
    }

    @Test("the kernel takes 1x1 convs, more than 64 outputs per group and 8-pixel rows to the unfolded product")
    func unsuitedGeometries() {
        let cases = [
            ConvCase(label: "1x1 stride 2", input: [1, 8, 16, 16], weight: [8, 8, 1, 1],
                     conv: Conv2d(stride: (2, 2)), bias: false),
            ConvCase(label: "65 outputs", input: [1, 8, 16, 16], weight: [65, 8, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "8-pixel rows", input: [1, 8, 8, 8], weight: [16, 8, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
            ConvCase(label: "3 outputs", input: [1, 8, 16, 16], weight: [3, 8, 3, 3],
                     conv: Conv2d(padding: (1, 1, 1, 1)), bias: false),
        ]
        for c in cases { #expect(!DirectConvolution.suits(geometry(c)), "\(c.label)") }
    }
}
