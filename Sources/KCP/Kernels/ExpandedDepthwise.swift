/// A 1x1 conv and the depthwise conv that alone reads its output, the
/// expansion and depthwise steps of an inverted residual block
/// (MobileNetV2 and V3, EfficientNet, MnasNet; Sandler et al. 2018,
/// arXiv 1801.04381), computed band by band of the depthwise conv's output
/// rows. A band's expanded rows, with the rows its taps reach above and
/// below, go to a buffer that stays in the caches while the depthwise conv
/// reads it: the expanded tensor, several times the block's input, is not
/// written to memory and read back. The rows two bands share are expanded
/// by both. Each output is the same sum of the same products as with the
/// two convs run in turn: the same kernels (the pointwise kernel, then the
/// direct or depthwise-vector kernel that the depthwise conv takes alone),
/// whose sums do not depend on the tiles. On the AVX2 path, where a 1x1
/// conv alone is an OpenBLAS product, the bands' 1x1 convs take the
/// pointwise kernel all the same, and the results differ from the two convs'
/// in rounding.
struct ExpandedDepthwise {
    /// Floats of expanded rows a band aims for (1 MB). Measured in DeepLabV3-MobileNetV3 at 512x512
    /// and MobileNetV3-Large at 224x224 with bands of 256 KB, 512 KB and 1 MB (AMD EPYC Zen 5, 1
    /// thread): 16 -> 64 channels, then 3x3 stride 2, on 256x256 took 4.0-4.4 ms as two convs,
    /// 3.2, 3.2 and 2.5 in bands; on 112x112, 0.75-0.78 against 0.57, 0.60 and 0.46; 24 -> 72, then
    /// 3x3, on 128x128 1.1-1.2 against 1.6, 1.07 and 0.98. Smaller bands expand more rows twice.
    static let bandFloats = 1 << 18

    let expand: ConvGeometry, depthwise: ConvGeometry
    /// The depthwise conv's path, run on each band.
    let depthwisePath: Conv2dPath
    /// Output rows per band (the last may have fewer), bands per sample, and the rows one output
    /// row's taps span.
    let bandRows: Int, bands: Int, kernelRows: Int
    /// Output rows per band of `bandFloats`, whatever the thread count (the rule reads these, so that
    /// where the two convs' results differ in rounding, AVX2, they do not depend on it).
    let sizedRows: Int

    /// - Parameter bandFloats: the expanded floats a band aims for.
    init(expand: ConvGeometry, depthwise: ConvGeometry, bandFloats: Int = Self.bandFloats) {
        (self.expand, self.depthwise, depthwisePath) = (expand, depthwise, Conv2dPath(depthwise))
        kernelRows = (depthwise.kh - 1) * depthwise.conv.dilation.0 + 1
        // Bands of `bandFloats`, then more where a batch has too few for every thread to take as many.
        let most = max(1, (bandFloats / (depthwise.channels * depthwise.width) - kernelRows) / depthwise.conv.stride.0 + 1)
        var count = (depthwise.outHeight + most - 1) / most
        sizedRows = (depthwise.outHeight + count - 1) / count
        let threads = Threads.count
        if depthwise.batch * count < 4 * threads { count = min(depthwise.outHeight, (count + threads - 1) / threads * threads) }
        bandRows = (depthwise.outHeight + count - 1) / count
        bands = (depthwise.outHeight + bandRows - 1) / bandRows
    }

    /// The pair of these convs, where it runs band by band; nil where the two run alone. The 1x1
    /// conv suits the pointwise kernel (stride 1, no padding, 32 or more outputs per group,
    /// `PointwiseConvolution.pays`), the depthwise conv takes the direct or
    /// depthwise-vector kernel with every tap reading the input somewhere, a
    /// sample's expanded tensor fills more than one band, and the rows two
    /// bands both expand cost few products: `C * (kernel rows - sy) <= 2 *
    /// band rows * sy`, `C` the 1x1 conv's input channels, the products per
    /// expanded float done again over those per float kept out of memory.
    /// Measured per pair in the networks (bands of 1 MB, 1 thread; 2 threads
    /// in brackets): where it is 1.1 and 1.8 (16 and 24 channels, above),
    /// the pairs gained; 40 -> 240, then 3x3 stride 2, on 64x64, at 2.5,
    /// 0.99-1.31 against 1.02-1.35 ms (0.52-0.75 against 0.48-0.76); 24 -> 72 with 5x5
    /// taps of stride 2 on 128x128, at 3, 0.99 against 0.92; 40 -> 120 with
    /// 5x5 taps on 64x64, at 5.3, 0.61 against 0.52; 80 -> 480 on 32x32, at
    /// 14, 1.06 against 0.70, and DeepLabV3's dilated 5x5 taps on 32x32 up to
    /// 8x the time. Planes of up to 1 MB stay in the caches between the two
    /// convs (none of MobileNetV3-Large's 56x56 and smaller planes gained).
    static func inBands(expand: ConvGeometry, depthwise: ConvGeometry) -> ExpandedDepthwise? {
        guard expand.isPointwise, PointwiseConvolution.pays(expand), depthwise.isDepthwise, !hasPaddingTaps(depthwise)
        else { return nil }
        let pair = ExpandedDepthwise(expand: expand, depthwise: depthwise), sy = depthwise.conv.stride.0
        guard [.direct, .depthwiseVectors].contains(pair.depthwisePath), pair.sizedRows < depthwise.outHeight,
              expand.channels * (pair.kernelRows - sy) <= 2 * pair.sizedRows * sy
        else { return nil }
        return pair
    }

    /// Floats of one worker's scratch: a full band's expanded rows.
    var scratchSize: Int {
        depthwise.channels * min((bandRows - 1) * depthwise.conv.stride.0 + kernelRows, depthwise.height) * depthwise.width
    }

    /// The expanded rows band `band` reads, and the 1x1 and depthwise convs of the band: the 1x1 conv
    /// over those rows of its input (channels a plane apart), the depthwise conv over the band's
    /// buffer into the band's output rows (channels an output plane apart), padded above and below
    /// where its taps reach past the rows.
    func band(_ band: Int) -> (rows: Range<Int>, outputRows: Range<Int>, expand: ConvGeometry, depthwise: ConvGeometry) {
        let s = depthwise, (sy, top) = (s.conv.stride.0, s.conv.padding.0)
        let outputRows = (band * bandRows)..<min(s.outHeight, (band + 1) * bandRows)
        let first = outputRows.lowerBound * sy - top, end = first + (outputRows.count - 1) * sy + kernelRows
        let rows = max(0, first)..<min(s.height, end)
        let e = expand
        let expandBand = ConvGeometry(input: [1, e.channels, rows.count, e.width], weight: [e.outputs, e.perGroup, 1, 1],
                                      output: [1, e.outputs, rows.count, e.width], e.conv, channelStride: e.plane)
        var conv = s.conv
        (conv.padding.0, conv.padding.2) = (rows.lowerBound - first, end - rows.upperBound)
        let depthwiseBand = ConvGeometry(input: [1, s.channels, rows.count, s.width], weight: [s.outputs, 1, s.kh, s.kw],
                                         output: [1, s.outputs, outputRows.count, s.outWidth], conv,
                                         outputChannelStride: s.pixels)
        return (rows, outputRows, expandBand, depthwiseBand)
    }
}

/// The pair `ExpandedDepthwise` describes on `x`, each conv with its
/// epilogue (neither adds a residual) and `activation` between them where
/// given, applied to each band's buffer, into `y`, the depthwise conv's output.
func expandedDepthwiseForward(_ x: UnsafePointer<Float>, _ pair: ExpandedDepthwise,
                              expandWeight: Tensor, expandEpilogue: ConvEpilogue, activation: Activation? = nil,
                              depthwiseWeight: Tensor, depthwiseEpilogue: ConvEpilogue,
                              into y: UnsafeMutablePointer<Float>)
{
    let (e, s) = (pair.expand, pair.depthwise)
    parallelFor(e.batch * pair.bands, scratch: pair.scratchSize) { job, buffer in
        let (n, band) = job.quotientAndRemainder(dividingBy: pair.bands)
        let part = pair.band(band)
        pointwiseConv2d(x + n * e.channels * e.plane + part.rows.lowerBound * e.width, weight: expandWeight,
                        part.expand, epilogue: expandEpilogue, into: buffer)
        if let activation { applyActivation(activation, buffer, into: buffer, count: part.expand.outputs * part.expand.pixels) }
        let out = y + n * s.outputs * s.pixels + part.outputRows.lowerBound * s.outWidth
        switch pair.depthwisePath {
        case .depthwiseVectors:
            depthwiseVectorConv2d(buffer, weight: depthwiseWeight, part.depthwise, epilogue: depthwiseEpilogue, into: out)
        default: directConv2d(buffer, weight: depthwiseWeight, part.depthwise, epilogue: depthwiseEpilogue, into: out)
        }
    }
}
