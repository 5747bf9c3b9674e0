import Testing
@testable import KCP

// A 1x1 conv and the depthwise conv after it, band by band
// (`ExpandedDepthwise`), against the two convs run in turn over whole
// planes (bitwise: the same kernels) and against the naive convs; bands
// of a few rows, so that every case has a first, a middle and a last band,
// on every instruction set the machine has.

/// A 1x1 conv of `input` to `expanded` channels, then a depthwise conv of `kernel` taps.
struct ExpansionCase: Sendable, CustomTestStringConvertible {
    var label: String
    var input: [Int]
    var expanded: Int
    var kernel: Int
    var depthwise: Conv2d
    /// The expanded floats a band aims for.
    var bandFloats: Int
    var testDescription: String { label }

    var expand: ConvGeometry {
        ConvGeometry(input: input, weight: [expanded, input[1], 1, 1], output: [input[0], expanded, input[2], input[3]],
                     Conv2d())
    }

    var depthwiseCase: ConvCase {
        ConvCase(label: label, input: [input[0], expanded, input[2], input[3]], weight: [expanded, 1, kernel, kernel],
                 conv: depthwise, bias: true)
    }
}

let expansionCases: [ExpansionCase] = [
    ExpansionCase(label: "8 -> 40, 3x3 stride 2 on 29x37 (odd rows), batch 2", input: [2, 8, 29, 37], expanded: 40,
                  kernel: 3, depthwise: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1), groups: 40),
                  bandFloats: 40 * 37 * 5),
    ExpansionCase(label: "16 -> 32, 5x5 on rows of 37", input: [1, 16, 20, 37], expanded: 32, kernel: 5,
                  depthwise: Conv2d(padding: (2, 2, 2, 2), groups: 32), bandFloats: 32 * 37 * 7),
    ExpansionCase(label: "12 -> 48, 3x3 of dilation 2 on rows of 18", input: [1, 12, 17, 18], expanded: 48, kernel: 3,
                  depthwise: Conv2d(padding: (2, 2, 2, 2), dilation: (2, 2), groups: 48), bandFloats: 48 * 18 * 6),
    ExpansionCase(label: "8 -> 36, 3x3 on rows of 12 (channels along the lanes)", input: [1, 8, 25, 12], expanded: 36,
                  kernel: 3, depthwise: Conv2d(padding: (1, 1, 1, 1), groups: 36), bandFloats: 36 * 12 * 6),
    ExpansionCase(label: "8 -> 32, 3x3 stride 2 padded below and right only", input: [1, 8, 22, 32], expanded: 32,
                  kernel: 3, depthwise: Conv2d(stride: (2, 2), padding: (0, 0, 1, 1), groups: 32),
                  bandFloats: 32 * 32 * 4),
]

@Suite("Expansion and depthwise conv in bands")
struct ExpandedDepthwiseTests {
    @Test("bands give the two convs' results bitwise, and the naive convs'", arguments: expansionCases)
    func bandsMatchTheTwoConvs(_ c: ExpansionCase) {
        var rng = SplitMix64(seed: 41)
        let e = c.expand, d = geometry(c.depthwiseCase)
        let x = netTensor(c.input, &rng), w1 = netTensor([c.expanded, c.input[1], 1, 1], &rng)
        let b1 = netTensor([c.expanded], &rng), w2 = netTensor([c.expanded, 1, c.kernel, c.kernel], &rng)
        let b2 = netTensor([c.expanded], &rng)
        let affine = { (rng: inout SplitMix64) in (scale: netTensor([c.expanded], &rng).data, shift: netTensor([c.expanded], &rng).data) }
        let (n1, n2) = (affine(&rng), affine(&rng))
        let pair = ExpandedDepthwise(expand: e, depthwise: d, bandFloats: c.bandFloats)
        #expect(pair.bands >= 3, "a first, a middle and a last band")
        let shape = [d.batch, d.outputs, d.outHeight, d.outWidth]
        /// The two convs and the bands, with `between` applied to the expanded rows where given.
        func run(between: Activation?) -> (twoConvs: Tensor, bands: Tensor) {
            var expanded = pathForward({ pointwiseConv2d($0, weight: $1, $2, epilogue: $3, into: $4) }, x, weight: w1,
                                       bias: b1, ConvCase(label: "", input: c.input, weight: w1.shape, conv: Conv2d(),
                                                          bias: true), normalization: n1, activation: .relu)
            if let between { expanded = activationForward(expanded, between) }
            let twoConvs = conv2dForward(expanded, weight: w2, bias: b2, c.depthwise, outputShape: shape,
                                         normalization: n2, activation: .hardswish)
            let bands = Tensor(shape: shape) { ys in
                x.data.withUnsafeBufferPointer { xs in
                    withConvEpilogue(bias: b1, normalization: n1, residual: nil, activation: .relu,
                                     output: ys.baseAddress!) { first in
                        withConvEpilogue(bias: b2, normalization: n2, residual: nil, activation: .hardswish,
                                         output: ys.baseAddress!) { second in
                            expandedDepthwiseForward(xs.baseAddress!, pair, expandWeight: w1, expandEpilogue: first,
                                                     activation: between, depthwiseWeight: w2, depthwiseEpilogue: second,
                                                     into: ys.baseAddress!)
                        }
                    }
                }
            }
            return (twoConvs, bands)
        }
        // ReLU6 and SiLU between the convs, as MobileNetV2 and EfficientNet have them: the same bits as applied alone.
        for between in [Activation(.clip, alpha: 0, beta: 6), Activation(.silu)] {
            let (twoConvs, bands) = run(between: between)
            let same = bands.data.map(\.bitPattern) == twoConvs.data.map(\.bitPattern)
            #expect(same, "\(between.kind) between")
        }
        let results = InstructionSet.supported.map { set in withInstructionSet(set) { run(between: nil) } }
        // The naive convs, each through its epilogue in doubles.
        let expandedReference = naiveConv2d(x, w1, b1, Conv2d())
        let plane = c.input[2] * c.input[3]
        let expanded = Tensor(shape: expandedReference.shape, data: expandedReference.data.enumerated().map { k, v in
            let o = k / plane % c.expanded
            return Float(max(v * Double(n1.scale[o]) + Double(n1.shift[o]), 0))
        })
        let reference = naiveConv2d(expanded, w2, b2, c.depthwise)
        let expected = NetReference(shape: shape, data: reference.data.enumerated().map { k, v in
            let o = k / (d.outHeight * d.outWidth) % c.expanded, t = v * Double(n2.scale[o]) + Double(n2.shift[o])
            return t * min(max(t / 6 + 0.5, 0), 1)
        })
        for (set, (twoConvs, bands)) in zip(InstructionSet.supported, results) {
            let (asTwoConvs, asFirstSet) = (bands == twoConvs, bands == results[0].1)  // Bools: short reports
            #expect(asTwoConvs, "\(set)")
            #expect(asFirstSet, "\(set) differs from \(InstructionSet.supported[0])")
            netExpect(bands, expected)
        }
    }

    @Test("the cases take both depthwise kernels, and the bands' rows cover the output and read only the input")
    func bandsCoverTheOutput() {
        let pairs = expansionCases.map { ExpandedDepthwise(expand: $0.expand, depthwise: geometry($0.depthwiseCase),
                                                           bandFloats: $0.bandFloats) }
        #expect(Set(pairs.map { "\($0.depthwisePath)" }) == ["direct", "depthwiseVectors"])
        for pair in pairs {
            let bands = (0..<pair.bands).map(pair.band)
            #expect(bands.flatMap { Array($0.outputRows) } == Array(0..<pair.depthwise.outHeight))
            for band in bands {
                #expect(band.rows.lowerBound >= 0 && band.rows.upperBound <= pair.depthwise.height)
                #expect(band.depthwise.outHeight == band.outputRows.count && band.depthwise.height == band.rows.count)
                #expect(band.depthwise.conv.padding.0 >= 0 && band.depthwise.conv.padding.2 >= 0)
                #expect(band.expand.plane == band.rows.count * pair.expand.width && band.expand.channelStride == pair.expand.plane)
            }
        }
    }

    @Test("pairs run in bands where the rows two bands share cost few products, and their expansion outgrows a band")
    func whichPairsRunInBands() {
        /// `C -> E` channels on `size x size`, then a depthwise conv of `kernel` taps, `stride` and `dilation`.
        func suits(_ c: Int, _ e: Int, _ size: Int, kernel: Int, stride: Int = 1, dilation: Int = 1) -> Bool {
            let pad = kernel / 2 * dilation, out = (size + 2 * pad - dilation * (kernel - 1) - 1) / stride + 1
            let expand = ConvGeometry(input: [1, c, size, size], weight: [e, c, 1, 1], output: [1, e, size, size], Conv2d())
            let depthwise = ConvGeometry(input: [1, e, size, size], weight: [e, 1, kernel, kernel], output: [1, e, out, out],
                                         Conv2d(stride: (stride, stride), padding: (pad, pad, pad, pad),
                                                dilation: (dilation, dilation), groups: e))
            return ExpandedDepthwise.inBands(expand: expand, depthwise: depthwise) != nil
        }
        #expect(suits(16, 64, 112, kernel: 3, stride: 2))  // MobileNetV3-Large's first expansion
        #expect(suits(16, 64, 256, kernel: 3, stride: 2) && suits(24, 72, 128, kernel: 3))  // DeepLabV3's, at 512x512
        #expect(!suits(24, 72, 56, kernel: 3), "1 MB expanded: one band")
        #expect(!suits(24, 72, 128, kernel: 5, stride: 2) && !suits(40, 120, 64, kernel: 5), "taps of 5 rows")
        #expect(!suits(40, 240, 64, kernel: 3, stride: 2) && !suits(80, 480, 32, kernel: 3)
                && !suits(160, 960, 32, kernel: 5, dilation: 2), "more input channels")
        #expect(!suits(16, 16, 256, kernel: 3, stride: 2), "16 outputs: no pointwise kernel")
    }

    @Test("a batch of few bands has as many for each thread, and which pairs run in bands does not depend on the threads")
    func bandsForThreads() throws {
        // DeepLabV3's 24 -> 72, 3x3 on 128x128: 5 bands of 1 MB, 6 on 2 threads.
        let expand = ConvGeometry(input: [1, 24, 128, 128], weight: [72, 24, 1, 1], output: [1, 72, 128, 128], Conv2d())
        let depthwise = ConvGeometry(input: [1, 72, 128, 128], weight: [72, 1, 3, 3], output: [1, 72, 128, 128],
                                     Conv2d(padding: (1, 1, 1, 1), groups: 72))
        let (one, two) = try (withThreads(1) { ExpandedDepthwise(expand: expand, depthwise: depthwise) },
                              withThreads(2) { ExpandedDepthwise(expand: expand, depthwise: depthwise) })
        #expect((one.bands, two.bands) == (5, 6))
        let suited = try [1, 2, 3].map { n in
            try withThreads(n) { ExpandedDepthwise.inBands(expand: expand, depthwise: depthwise) != nil }
        }
        #expect(suited == [true, true, true])
    }
}
