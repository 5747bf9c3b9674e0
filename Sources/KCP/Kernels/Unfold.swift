/// The sizes of one convolution, `x [N, C, H, W]`, `W [O, C/g, kh, kw]`,
/// `y [N, O, Hout, Wout]`, and the unfolding (im2col) of a sample's input
/// into the matrix whose product with `W` is its output.
///
/// A sample is unfolded in tiles of whole output rows, each a
/// `[C/g*kh*kw, rows*Wout]` matrix small enough to stay in the L2 cache
/// between being written and being read by the matrix product, unless that
/// would leave it fewer than `tileColumns` columns.
struct ConvGeometry {
    let batch: Int, channels: Int, height: Int, width: Int
    let outputs: Int, perGroup: Int, kh: Int, kw: Int
    let outHeight: Int, outWidth: Int
    let conv: Conv2d
    /// Output rows per tile (the last tile may have fewer), and tiles per sample.
    private(set) var blockRows: Int, blocks: Int
    /// Floats from one input channel to the next in `unfold`, `fold` and the
    /// direct kernel's window, and from one output channel to the next in the
    /// direct kernel: `H * W` and `Hout * Wout`, or `D * H * W` and
    /// `Dout * Hout * Wout` for the depth slices of a volumetric conv.
    let channelStride: Int, outputChannelStride: Int

    /// Floats per unfolded tile that the block size aims for (256 KB), and the
    /// fewest columns a tile has where the sample allows: OpenBLAS runs
    /// `[512, 4608] x [4608, 14]` at half its speed on `[4608, 49]` (measured).
    private static let tileFloats = 1 << 16
    static let tileColumns = 128

    init(input: [Int], weight: [Int], output: [Int], _ conv: Conv2d, channelStride: Int? = nil,
         outputChannelStride: Int? = nil)
    {
        (batch, channels, height, width) = (input[0], input[1], input[2], input[3])
        self.channelStride = channelStride ?? height * width
        self.outputChannelStride = outputChannelStride ?? output[2] * output[3]
        (outputs, perGroup, kh, kw) = (weight[0], weight[1], weight[2], weight[3])
        (outHeight, outWidth, self.conv) = (output[2], output[3], conv)
        let most = max(1, (Self.tileColumns + outWidth - 1) / max(outWidth, 1),
                       Self.tileFloats / max(perGroup * kh * kw * outWidth, 1))
        (blocks, blockRows) = Self.tiles(outHeight, most: most)
    }

    /// This geometry with tiles of at most `rows` output rows.
    func tiled(rows: Int) -> ConvGeometry {
        var s = self
        (s.blocks, s.blockRows) = Self.tiles(outHeight, most: rows)
        return s
    }

    /// `height` output rows in the fewest tiles of at most `most` rows, of balanced sizes.
    private static func tiles(_ height: Int, most: Int) -> (count: Int, rows: Int) {
        let count = max(1, (height + most - 1) / most)
        return (count, max(1, (height + count - 1) / count))
    }

    var groups: Int { conv.groups }
    var outPerGroup: Int { outputs / conv.groups }
    /// Rows of the unfolded matrix: `(c, p, q)` for `c < C/g`, `p < kh`, `q < kw`.
    var patch: Int { perGroup * kh * kw }
    var plane: Int { height * width }
    var pixels: Int { outHeight * outWidth }
    /// Floats of the largest tile.
    var tileSize: Int { patch * blockRows * outWidth }
    /// One input and one output channel per group.
    var isDepthwise: Bool { perGroup == 1 && outPerGroup == 1 }
    /// A 1x1 conv with stride 1 and no padding reads each input pixel once,
    /// in order: a sample's `[C/g, H*W]` channels are already its unfolded matrix.
    var isPointwise: Bool { readsOnePixel && conv.stride == (1, 1) }
    /// A 1x1 conv without padding: output pixel `(oy, ox)` reads input
    /// pixel `(oy*sy, ox*sx)` of each channel, a product with a subsampled
    /// input.
    var readsOnePixel: Bool { kh == 1 && kw == 1 && conv.padding == (0, 0, 0, 0) }

    /// The output rows of tile `block`.
    func rows(_ block: Int) -> Range<Int> { (block * blockRows)..<min(outHeight, (block + 1) * blockRows) }

    /// For kernel row `p`: the input row read by output row `oy` is
    /// `iy = oy * sy + offset`, `offset = p * dy - top`; `valid` are the
    /// output rows with `0 <= iy < H`.
    func rows(tap p: Int) -> Tap {
        let offset = p * conv.dilation.0 - conv.padding.0
        return Tap(offset: offset, valid: Self.inside(offset, step: conv.stride.0, input: height, output: outHeight))
    }

    /// For kernel column `q`: as `rows(tap:)`, `ix = ox * sx + offset`, `offset = q * dx - left`.
    func columns(tap q: Int) -> Tap {
        let offset = q * conv.dilation.1 - conv.padding.1
        return Tap(offset: offset, valid: Self.inside(offset, step: conv.stride.1, input: width, output: outWidth))
    }

    /// The outputs `i < output` with `0 <= i * step + offset < input`.
    static func inside(_ offset: Int, step: Int, input: Int, output: Int) -> Range<Int> {
        let first = offset < 0 ? (-offset + step - 1) / step : 0
        let end = min(output, input - offset <= 0 ? 0 : (input - offset + step - 1) / step)
        return first..<max(first, end)
    }

    /// With stride 1 and `Wout == W`, consecutive output rows of one tile
    /// row read consecutive input rows at one fixed shift, so a run of them
    /// is a single copy (whose entries in padding columns are then cleared).
    var copiesRuns: Bool { conv.stride == (1, 1) && outWidth == width }
}

/// Where one kernel row (or column) reads: input index `i * stride + offset`
/// for output index `i`, inside the input for `i` in `valid`.
struct Tap {
    let offset: Int, valid: Range<Int>
}

/// Tile of output rows `rows` of the unfolded `[C/g, H, W]` sample `input` (channels `channelStride` apart),
/// a row-major `[C/g*kh*kw, rows.count*Wout]` matrix:
/// `tile[(c, p, q), (oy - rows.lowerBound) * Wout + ox] = input[c, oy*sy + p*dy - top, ox*sx + q*dx - left]`,
/// zero where that pixel lies outside the input; only the rows of `channels` (all if nil) are written,
/// `rowStride` floats apart (`rows.count*Wout` if nil; more to place tiles side by side in a wider matrix).
func unfold(_ input: UnsafePointer<Float>, _ s: ConvGeometry, rows: Range<Int>, channels: Range<Int>? = nil,
            rowStride: Int? = nil, into tile: UnsafeMutablePointer<Float>)
{
    let (rowTaps, columnTaps) = ((0..<s.kh).map(s.rows(tap:)), (0..<s.kw).map(s.columns(tap:)))
    let (width, outWidth, (sy, sx)) = (s.width, s.outWidth, s.conv.stride)
    let channels = channels ?? 0..<s.perGroup, rowStride = rowStride ?? rows.count * outWidth
    // out + oy * Wout: output row oy of the current tile row
    var out = tile + channels.lowerBound * s.kh * s.kw * rowStride - rows.lowerBound * outWidth
    for c in channels {
        for vertical in rowTaps {
            let reading = vertical.valid.clamped(to: rows)
            for horizontal in columnTaps {
                let lines = horizontal.valid.isEmpty ? rows.lowerBound..<rows.lowerBound : reading
                (out + rows.lowerBound * outWidth).update(repeating: 0, count: (lines.lowerBound - rows.lowerBound) * outWidth)
                (out + lines.upperBound * outWidth).update(repeating: 0, count: (rows.upperBound - lines.upperBound) * outWidth)
                // Output pixel (oy, ox) reads source[oy * sy * W + ox * sx].
                let source = input + c * s.channelStride + vertical.offset * width + horizontal.offset
                let (first, end) = (horizontal.valid.lowerBound, horizontal.valid.upperBound)
                if s.copiesRuns && !lines.isEmpty {
                    let start = lines.lowerBound * outWidth + first
                    (out + start).update(from: source + start, count: (lines.count - 1) * outWidth + end - first)
                    for ox in 0..<first { for oy in lines { out[oy * outWidth + ox] = 0 } }
                    for ox in end..<outWidth { for oy in lines { out[oy * outWidth + ox] = 0 } }
                } else {
                    for oy in lines {
                        let line = out + oy * outWidth, from = source + oy * sy * width
                        clearFloats(line, count: first)
                        copyStridedFloats(from, step: sx, to: line, first..<end)
                        clearFloats(line + end, count: outWidth - end)
                    }
                }
                out += rowStride
            }
        }
    }
}

/// The adjoint of `unfold`: adds each entry of a tile back onto the input
/// pixel it was copied from,
/// `input[c, oy*sy + p*dy - top, ox*sx + q*dx - left] += tile[(c, p, q), (oy - rows.lowerBound) * Wout + ox]`
/// (entries that were padding are dropped); the tile's rows lie `rowStride` floats apart (`rows.count*Wout` if nil).
func fold(_ tile: UnsafePointer<Float>, _ s: ConvGeometry, rows: Range<Int>, rowStride: Int? = nil,
          into input: UnsafeMutablePointer<Float>)
{
    let (rowTaps, columnTaps) = ((0..<s.kh).map(s.rows(tap:)), (0..<s.kw).map(s.columns(tap:)))
    let (width, outWidth, (sy, sx)) = (s.width, s.outWidth, s.conv.stride), rowStride = rowStride ?? rows.count * outWidth
    var line = tile - rows.lowerBound * outWidth  // line + oy * Wout: output row oy of the current tile row
    for c in 0..<s.perGroup {
        for vertical in rowTaps {
            for horizontal in columnTaps {
                let target = input + c * s.channelStride + vertical.offset * width + horizontal.offset
                for oy in vertical.valid.clamped(to: rows) {
                    let from = line + oy * outWidth, to = target + oy * sy * width
                    for ox in horizontal.valid { to[ox * sx] += from[ox] }
                }
                line += rowStride
            }
        }
    }
}
