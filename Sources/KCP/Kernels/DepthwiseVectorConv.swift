/// A depthwise convolution with 16 channels along the vector lanes, for
/// planes whose rows would leave a pixel vector's lanes idle (MobileNet's
/// and ConvNeXt's 7x7 and 14x14 layers):
/// `y[c, oy, ox] = sum_{p, q} W[c, p, q] * padded[c, oy*sy + p*dy, ox*sx + q*dx]`.
/// Each job transposes a tile of 16 channels' padded input rows into a
/// window of `[rows, columns, 16]` (16 x 16 blocks in registers,
/// `transposeTiles`), computes up to 8 output pixels per call with one
/// 16-channel weight load and one 16-channel load per pixel and tap
/// (`depthwiseVectorTile`), and stores the results transposed back into
/// the channels' rows through the epilogue (`storeTransposedTiles`). With
/// one channel per vector, a 7x7 plane's rows filled 7 of 16 lanes, and
/// unfolding copied each pixel once per tap for products of one output
/// row each.
struct DepthwiseVectorConvolution {
    static let lanes = 16
    /// Floats per window that the tile size aims for (128 KB, in the L2 cache).
    static let windowFloats = 1 << 15

    let s: ConvGeometry
    /// Columns of the window: the padded input columns the output rows read.
    let columns: Int
    /// Output rows per tile (the last may have fewer), tiles per sample, and window rows of a full tile.
    let tileRows: Int, tiles: Int, windowRows: Int

    init(_ s: ConvGeometry) {
        self.s = s
        let ((sy, sx), (dy, dx)) = (s.conv.stride, s.conv.dilation)
        columns = (s.outWidth - 1) * sx + (s.kw - 1) * dx + 1
        let rows = Self.windowFloats / (Self.lanes * columns)  // window rows that fit, at least one tile row's
        let most = max(1, (rows - (s.kh - 1) * dy - 1) / sy + 1)
        let count = (s.outHeight + most - 1) / most
        tileRows = (s.outHeight + count - 1) / count
        tiles = (s.outHeight + tileRows - 1) / tileRows
        windowRows = (tileRows - 1) * sy + (s.kh - 1) * dy + 1
    }

    /// Whether this kernel handles the convolution: a depthwise conv without
    /// cropping whose output rows are shorter than a pixel vector, or that
    /// the pixel-vector kernel leaves (`DirectConvolution.suits`) and would
    /// be unfolded. Measured against those (1 thread, Xeon, with batchnorm
    /// and hardswish): 672 channels 14x14 -> 7x7 with 5x5 taps, stride 2,
    /// unfolded 0.87 -> 0.10 ms; 960 of 7x7 with 3x3 taps 0.26 -> 0.13. On
    /// rows of 16 to 31 pixels the two differed by CPU: on the Xeon this
    /// kernel was ahead (240 of 28x28 -> 14x14, stride 2, 0.28 -> 0.11; 192
    /// of 28x28 with 7x7 taps 0.40 -> 0.31, 3x3 0.33 -> 0.27), on the AMD
    /// EPYC Zen 5 the direct kernel is, for 28-pixel rows (192 of 28x28: 7x7
    /// taps 0.21 -> 0.175, 3x3 0.147 -> 0.115; 120 with 5x5 taps 0.117 ->
    /// 0.087; 72 of 56x56 -> 28x28, 5x5 stride 2, 0.15 -> 0.12;
    /// MobileNetV3-Large's three such layers in the network 0.35 -> 0.23),
    /// and this one for 14-pixel rows (672 of 14x14, 3x3: 0.13 against
    /// 0.16; 5x5, stride 2, 0.09 against 0.15). From rows of 32 pixels on,
    /// the direct kernel is ahead on both: its window copies each float
    /// once, the transposes here read and write each about three times (672
    /// channels of 32x32, 3x3: 0.62 against 0.96; 56x56, 3x3 on 144
    /// channels 0.59 against 0.54, 7x7 on 96 0.49 against 0.55; 64x64 and
    /// up 1.4-2.3x; Xeon).
    static func suits(_ s: ConvGeometry) -> Bool {
        let (top, left, bottom, right) = s.conv.padding
        return s.isDepthwise && min(top, left, bottom, right) >= 0
            && (DirectConvolution.shortRows(s) || !DirectConvolution.suits(s))
    }

    /// Blocks of 16 channels per sample (the last may have fewer).
    var blocks: Int { (s.groups + Self.lanes - 1) / Self.lanes }
    /// Floats of a window; of the input rows it holds, transposed (`fillWindow`); of a tile's results
    /// `[pixels, 16]`, which take the transposed rows' place once the window is filled.
    var windowSize: Int { windowRows * columns * Self.lanes }
    var stagingSize: Int { max(min(windowRows, s.height) * s.width, tileRows * s.outWidth) * Self.lanes }
    var scratchSize: Int { windowSize + stagingSize }

    /// The weights as `[blocks, kh*kw, 16]`, zero past the last channel.
    func packedWeights(_ weight: [Float]) -> [Float] {
        let taps = s.kh * s.kw
        var packed = [Float](repeating: 0, count: blocks * taps * Self.lanes)
        for c in 0..<s.groups {
            for k in 0..<taps { packed[((c / Self.lanes) * taps + k) * Self.lanes + c % Self.lanes] = weight[c * taps + k] }
        }
        return packed
    }

    /// Where tap `(p, q)` (row-major `k`) of output `(0, 0)` reads in the window.
    func tapOffsets() -> [Int] {
        let (dy, dx) = s.conv.dilation
        return (0..<(s.kh * s.kw)).map { k in ((k / s.kw) * dy * columns + (k % s.kw) * dx) * Self.lanes }
    }

    /// Fills `window` with channels `channels` of the `[C, H, W]` sample
    /// `input`, `[windowRows, columns, 16]`: the padded input rows that
    /// output rows `rows` read, zero in the padding (and in the lanes of
    /// missing channels, which no output stores). The rows are transposed
    /// at once into `staging` (in 16 x 16 blocks; row by row, rows of 14
    /// pixels took a gather per pixel), then copied into the window's rows;
    /// only the padding around them is cleared.
    func fillWindow(_ input: UnsafePointer<Float>, channels: Range<Int>, rows: Range<Int>,
                    staging: UnsafeMutablePointer<Float>, into window: UnsafeMutablePointer<Float>)
    {
        let (top, left) = (s.conv.padding.0, s.conv.padding.1), top0 = rows.lowerBound * s.conv.stride.0 - top
        let height = (rows.count - 1) * s.conv.stride.0 + (s.kh - 1) * s.conv.dilation.0 + 1
        let (first, end) = (max(0, top0), min(s.height, top0 + height))  // the input rows the window holds
        let width = max(0, min(s.width, columns - left))  // and their columns
        guard first < end && width > 0 else { return clearFloats(window, count: windowSize) }
        if channels.count < Self.lanes { clearFloats(staging, count: stagingSize) }  // lanes the transpose leaves
        transposeTiles(input + channels.lowerBound * s.channelStride + first * s.width, tilePitch: s.channelStride,
                       pixels: channels.count, channels: (end - first) * s.width, into: staging, linePitch: Self.lanes)
        let line = columns * Self.lanes, right = columns - left - width
        clearFloats(window, count: (first - top0) * line)  // the padding rows above, then each row's padding
        for y in first..<end {
            let row = window + (y - top0) * line
            clearFloats(row, count: left * Self.lanes)
            copyFloats(staging + (y - first) * s.width * Self.lanes, to: row + left * Self.lanes, count: width * Self.lanes)
            clearFloats(row + (left + width) * Self.lanes, count: right * Self.lanes)
        }
        clearFloats(window + (end - top0) * line, count: windowSize - (end - top0) * line)  // and below
    }

    /// Output rows `rows` of channels `channels` from their `window`, up to
    /// `depthwiseVectorPixels` pixels per call, into `tile` (`[pixels, 16]`),
    /// then stored through `epilogue`: `out + c * outputChannelStride + oy * Wout + ox`
    /// is output `(channels.lowerBound + c, oy, ox)`.
    func compute(window: UnsafePointer<Float>, weights: UnsafePointer<Float>, channels: Range<Int>, rows: Range<Int>,
                 offsets: UnsafePointer<Int>, epilogue: ConvEpilogue, tile: UnsafeMutablePointer<Float>,
                 into out: UnsafeMutablePointer<Float>)
    {
        let (sy, sx) = s.conv.stride, count = rows.count * s.outWidth
        withUnsafeTemporaryAllocation(of: Int.self, capacity: depthwiseVectorPixels) { at in
            var (j, oy, ox) = (0, 0, 0)  // the next pixel, and its row and column
            while j < count {
                let pixels = min(depthwiseVectorPixels, count - j)
                for i in 0..<pixels {
                    at[i] = (oy * sy * columns + ox * sx) * Self.lanes
                    (oy, ox) = ox + 1 < s.outWidth ? (oy, ox + 1) : (oy + 1, 0)
                }
                depthwiseVectorTile(pixels: pixels, window, pixelOffsets: at.baseAddress!, weights, offsets: offsets,
                                    taps: s.kh * s.kw, into: tile + j * Self.lanes)
                j += pixels
            }
        }
        epilogue.storeTransposed(tile, tilePitch: Self.lanes, count: count, channels: channels, wholeRows: true,
                                 to: out + rows.lowerBound * s.outWidth, linePitch: s.outputChannelStride)
    }
}

/// The depthwise conv over every tile of output rows of every block of 16
/// channels of every sample.
func depthwiseVectorConv2d(_ x: UnsafePointer<Float>, weight: Tensor, _ s: ConvGeometry, epilogue: ConvEpilogue,
                           into y: UnsafeMutablePointer<Float>)
{
    let conv = DepthwiseVectorConvolution(s), lanes = DepthwiseVectorConvolution.lanes
    let packed = weight.derived("depthwise vectors", layout: []) { conv.packedWeights(weight.data) }
    let offsets = conv.tapOffsets()
    packed.withUnsafeBufferPointer { weights in
        offsets.withUnsafeBufferPointer { offsets in
            parallelFor(s.batch * conv.blocks * conv.tiles, scratch: conv.scratchSize) { job, scratch in
                let (tile, block, n) = (job % conv.tiles, job / conv.tiles % conv.blocks, job / conv.tiles / conv.blocks)
                let channels = (block * lanes)..<min(s.groups, (block + 1) * lanes)
                let rows = (tile * conv.tileRows)..<min(s.outHeight, (tile + 1) * conv.tileRows)
                conv.fillWindow(x + n * s.channels * s.channelStride, channels: channels, rows: rows,
                                staging: scratch + conv.windowSize, into: scratch)
                conv.compute(window: scratch, weights: weights.baseAddress! + block * s.kh * s.kw * lanes,
                             channels: channels, rows: rows, offsets: offsets.baseAddress!, epilogue: epilogue,
                             tile: scratch + conv.windowSize,
                             into: y + (n * s.outputs + channels.lowerBound) * s.outputChannelStride)
            }
        }
    }
}
