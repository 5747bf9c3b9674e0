import Testing
@testable import KCP

// Convs whose taps read mostly padding, computed as a sum of each tap's 1x1
// product over the outputs where it reads the input (`tapProductConv2d`),
// against the naive conv; the fused epilogue on every instruction set and
// the thread counts are covered where `tapCases` join the other conv cases.

/// Geometries that take the tap products: dilation large against the
/// plane, groups, strides (a strided gather), asymmetric padding, no tap
/// covering every output or none reading the input, output channels in blocks.
let tapCases: [ConvCase] = [
    ConvCase(label: "dilation 12 on 16x16, the centre tap covers the output", input: [1, 66, 16, 16], weight: [72, 66, 3, 3],
             conv: Conv2d(padding: (12, 12, 12, 12), dilation: (12, 12)), bias: true),
    ConvCase(label: "groups 2, stride 2, dilation (9, 8), asymmetric padding", input: [2, 6, 45, 45],
             weight: [140, 3, 3, 3], conv: Conv2d(stride: (2, 2), padding: (9, 7, 10, 8), dilation: (9, 8), groups: 2),
             bias: false),
    ConvCase(label: "no tap covers every output", input: [1, 70, 20, 18], weight: [66, 70, 3, 3],
             conv: Conv2d(padding: (12, 8, 4, 8), dilation: (8, 8)), bias: true),
    ConvCase(label: "5x5, stride (1, 3), 130 outputs in blocks of 64", input: [1, 4, 18, 60], weight: [130, 4, 5, 5],
             conv: Conv2d(stride: (1, 3), padding: (8, 8, 8, 8), dilation: (4, 4)), bias: true),
    ConvCase(label: "no tap reads the input: the bias alone", input: [1, 3, 1, 256], weight: [70, 3, 1, 1],
             conv: Conv2d(stride: (3, 1), padding: (1, 0, 1, 0)), bias: true),
]

@Suite("Tap products")
struct TapProductTests {
    @Test(arguments: tapCases)
    func matchesTheNaiveConvolution(_ c: ConvCase) {
        let s = geometry(c)
        #expect(TapProducts.suits(s) && !DirectConvolution.suits(s), "the case must take the tap products")
        var rng = SplitMix64(seed: 19)
        let x = netTensor(c.input, &rng), w = netTensor(c.weight, &rng)
        let b = c.bias ? netTensor([c.weight[0]], &rng) : nil
        netExpect(conv2dForward(x, weight: w, bias: b, c.conv, outputShape: [s.batch, s.outputs, s.outHeight, s.outWidth]),
                  naiveConv2d(x, w, b, c.conv))
    }

    @Test("the cases cover rows split across 64-pixel segments, partial last segments and strided gathers")
    func casesCoverTheSegments() {
        let taps = tapCases.flatMap { c in TapProducts(geometry(c)).taps.map { (s: geometry(c), tap: $0) } }
        #expect(taps.contains { 64 % $0.tap.columns.valid.count != 0 && $0.tap.rows.valid.count > 1 })
        #expect(taps.contains { $0.tap.rows.valid.count * $0.tap.columns.valid.count % 64 != 0 })
        #expect(taps.contains { $0.s.conv.stride.1 > 1 })
    }

    @Test("the stride-1 input gradient, a conv of dL/dy that takes the tap products, is the adjoint: <conv(x), g> = <x, dx(g)>",
          arguments: tapCases.filter { $0.conv.stride == (1, 1) })
    func inputGradientIsTheAdjoint(_ c: ConvCase) {
        var rng = SplitMix64(seed: 23)
        let s = geometry(c), x = fdTensor(c.input, &rng), w = fdTensor(c.weight, &rng)
        let shape = [s.batch, s.outputs, s.outHeight, s.outWidth], g = fdTensor(shape, &rng)
        let (reachY, reachX, p) = (c.conv.dilation.0 * (s.kh - 1), c.conv.dilation.1 * (s.kw - 1), c.conv.padding)
        let transposed = ConvGeometry(input: shape, weight: [s.channels, s.outPerGroup, s.kh, s.kw], output: c.input,
                                      Conv2d(padding: (reachY - p.0, reachX - p.1, reachY - p.2, reachX - p.3), dilation: c.conv.dilation,
                                             groups: s.groups))
        #expect(TapProducts.suits(transposed) && !DirectConvolution.suits(transposed))
        let y = conv2dForward(x, weight: w, bias: nil, c.conv, outputShape: shape)
        let dx = conv2dBackward(x, weight: w, hasBias: false, c.conv, gradient: g).input!
        let left = zip(y.data, g.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let right = zip(x.data, dx.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let magnitude = zip(y.data, g.data).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
        #expect(abs(left - right) <= 1e-5 * magnitude, "\(left) vs \(right)")
    }

    @Test("DeepLabV3's ASPP convs of dilation 12 and 24 on 32x32 take the tap products; dense 3x3 convs do not")
    func chosenByEffectiveMACs() {
        /// The geometry of a `cin -> cout` 3x3 conv of dilation `d` (padding `d`) on `size x size`.
        func conv(_ cin: Int, _ cout: Int, _ size: Int, dilation d: Int) -> ConvGeometry {
            ConvGeometry(input: [1, cin, size, size], weight: [cout, cin, 3, 3], output: [1, cout, size, size],
                         Conv2d(padding: (d, d, d, d), dilation: (d, d)))
        }
        #expect(TapProducts.suits(conv(960, 256, 32, dilation: 12)) && TapProducts.suits(conv(960, 256, 32, dilation: 24)))
        #expect(TapProducts.suits(conv(256, 256, 32, dilation: 6)))
        #expect(!TapProducts.suits(conv(64, 64, 56, dilation: 1)) && !TapProducts.suits(conv(256, 256, 16, dilation: 1)))
        #expect(!TapProducts.suits(conv(512, 512, 4, dilation: 1)), "too few pixels")
    }
}
