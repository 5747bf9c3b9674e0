/// A conv whose taps read mostly padding, as a sum over its taps of 1x1
/// products, each only over the outputs where that tap reads the input:
/// `y[o, R_p x C_q] += W[o, :, p, q] x[:, R_p*sy + p*dy - top, C_q*sx + q*dx - left]`
/// for every tap `(p, q)`, `R_p` and `C_q` its valid output rows and
/// columns (`ConvGeometry.rows(tap:)`, `columns(tap:)`).
///
/// Tap `(p, q)` reads the input at `|R_p| * |C_q|` of the `Hout * Wout`
/// outputs; the unfolded product multiplies zeros at the rest. A tap's
/// shifted input rectangle is gathered into a `[C/g, |R_p| |C_q|]` block,
/// its product with the tap's `[O/g, C/g]` weights added into those
/// outputs, and the epilogue applied once all taps are in.
///
/// Each product runs in the pointwise kernel's register tiles
/// (`directConvTile`, 6 output channels x 64 pixels of a block, one loop
/// over the input channels), from weights packed once per weight values,
/// where OpenBLAS packed each tap's weights and block again on every call
/// (1 thread, Xeon, AVX-512, alternating builds: 960 -> 256 on 32x32 with
/// dilation 12, DeepLabV3's ASPP, 26-27 -> 21-23 ms, dilation 24 12.2 ->
/// 10.0-10.3 ms; on the AVX2 path as fast as OpenBLAS's Haswell products).
struct TapProducts {
    let s: ConvGeometry
    /// The taps, the one covering every output first where there is one (it writes the output, the others add).
    let taps: [(p: Int, q: Int, rows: Tap, columns: Tap)]
    /// Whether the first tap covers every output.
    let firstCoversOutput: Bool
    /// Where each tap's gathered block starts among a sample's and group's blocks, and the floats of all of them.
    let offsets: [Int], unitSize: Int

    /// Convs whose effective MACs (each tap counted where it reads the
    /// input) are below `effectiveShare` of the nominal ones and that have
    /// at least `fewestPixels` outputs per channel take the tap products.
    /// Measured with OpenBLAS's products, 3x3 convs, 1 thread, ms unfolded
    /// -> by taps (share):
    /// 960 -> 256 on 32x32 with dilation 6, 12, 18, 24 (0.77, 0.56, 0.39,
    /// 0.25): 64 -> 52, 65 -> 38, 64 -> 29, 64 -> 19; 256 -> 256 on 32x32:
    /// 16.0 -> 13.3, 16.2 -> 10.0, 16.1 -> 7.0, 15.0 -> 5.0. Slower by taps:
    /// dilation 1 on 16x16 (0.84; 256 -> 256: 3.9 -> 4.3, 512 -> 512: 15.7 ->
    /// 17.2) and 128 -> 128 on 56x56 (0.98: 12.7 -> 13.9); small planes,
    /// whose 9 thin products and weights copied per tap cost more than the
    /// zeros saved: 512 -> 512 on 4x4 (0.69: 1.2 -> 2.7), 256 -> 256 on
    /// 14x14 with dilation 4 (0.66: 2.9 -> 3.3).
    static let effectiveShare = 0.8, fewestPixels = 256

    init(_ s: ConvGeometry) {
        self.s = s
        let all = (0..<s.kh).flatMap { p in (0..<s.kw).map { q in (p: p, q: q, rows: s.rows(tap: p), columns: s.columns(tap: q)) } }
            .filter { !$0.rows.valid.isEmpty && !$0.columns.valid.isEmpty }
        let covering = all.firstIndex { $0.rows.valid == 0..<s.outHeight && $0.columns.valid == 0..<s.outWidth }
        taps = covering.map { [all[$0]] + Array(all[..<$0]) + Array(all[($0 + 1)...]) } ?? all
        firstCoversOutput = covering != nil
        let sizes = taps.map { s.perGroup * Self.segmentsPitch($0.rows.valid.count * $0.columns.valid.count) }
        offsets = sizes.reduce(into: [0]) { $0.append($0.last! + $1) }.dropLast()
        unitSize = sizes.reduce(0, +)
    }

    /// Whether the conv reads the input at less than `effectiveShare` of its
    /// nominal MACs, over at least `fewestPixels` outputs per channel.
    static func suits(_ s: ConvGeometry) -> Bool {
        guard s.pixels >= fewestPixels else { return false }
        let rows = (0..<s.kh).reduce(0) { $0 + s.rows(tap: $1).valid.count }
        let columns = (0..<s.kw).reduce(0) { $0 + s.columns(tap: $1).valid.count }
        return Double(rows * columns) < effectiveShare * Double(s.kh * s.kw * s.pixels)
    }

    /// The `[O, C/g, kh, kw]` weights as `[g, taps, O/g, C/g]`, each tap's
    /// `[O/g, C/g]` matrix of each group in the blocks of output channels
    /// that the tiles compute (`ChannelBlocks.pack`): a form of `weight`
    /// made once per weight values and taps.
    func tapWeights(_ weight: Tensor, blocks: ChannelBlocks) -> [Float] {
        let (perGroup, outPerGroup, kernel) = (s.perGroup, s.outPerGroup, s.kh * s.kw)
        let sources = taps.map { $0.p * s.kw + $0.q }
        return weight.derived("tap blocks", layout: [s.groups] + sources) {
            var matrix = [Float](repeating: 0, count: outPerGroup * perGroup)
            return [Float](unsafeUninitializedCapacity: s.outputs * perGroup * taps.count) { out, count in
                weight.data.withUnsafeBufferPointer { w in
                    for g in 0..<s.groups {
                        for (t, from) in sources.enumerated() {
                            for o in 0..<outPerGroup {
                                let source = w.baseAddress! + (g * outPerGroup + o) * perGroup * kernel
                                for c in 0..<perGroup { matrix[o * perGroup + c] = source[c * kernel + from] }
                            }
                            blocks.pack(matrix, patch: perGroup,
                                        into: out.baseAddress! + (g * taps.count + t) * outPerGroup * perGroup)
                        }
                    }
                }
                count = s.outputs * perGroup * taps.count
            }
        }
    }

    /// Pixels of a segment: those of one `directConvTile` call.
    static let segmentPixels = PointwiseConvolution.callPixels

    /// `span` pixels rounded up to whole segments.
    static func segmentsPitch(_ span: Int) -> Int { (span + segmentPixels - 1) / segmentPixels * segmentPixels }

    /// Tap `t`'s shifted input rectangle of the `[C/g, H, W]` sample `input`
    /// (channels `channelStride` apart) as a `[C/g, |R_p| |C_q|]` block in
    /// segments of 64 pixels, each `[C/g, 64]` (the tiles read a segment's
    /// channels 256 bytes apart, where rows of 1024 pixels would put them
    /// all in the same cache sets; the last segment's pixels past the
    /// rectangle are zero): pixel `k = i |C_q| + j` of channel `c` at
    /// `(k / 64 * C/g + c) * 64 + k % 64` is
    /// `input[c, (R_p[i])*sy + p*dy - top, (C_q[j])*sx + q*dx - left]`.
    func gather(_ input: UnsafePointer<Float>, tap t: Int, into block: UnsafeMutablePointer<Float>) {
        let (rows, columns, (sy, sx)) = (taps[t].rows, taps[t].columns, s.conv.stride)
        let width = columns.valid.count, span = rows.valid.count * width, pixels = Self.segmentPixels
        for c in 0..<s.perGroup {
            let source = input + c * s.channelStride + rows.offset * s.width + columns.offset
            for (i, oy) in rows.valid.enumerated() {
                let from = source + oy * sy * s.width + columns.valid.lowerBound * sx
                var j = 0
                while j < width {  // the row's pixels, split where segments end
                    let (segment, lane) = (i * width + j).quotientAndRemainder(dividingBy: pixels)
                    let count = min(width - j, pixels - lane), to = block + (segment * s.perGroup + c) * pixels + lane
                    copyStridedFloats(from + j * sx, step: sx, to: to, 0..<count)
                    j += count
                }
            }
            let (last, used) = span.quotientAndRemainder(dividingBy: pixels)
            if used > 0 { clearFloats(block + (last * s.perGroup + c) * pixels + used, count: pixels - used) }
        }
    }

    /// Adds tap `t`'s product with the block-packed tap weights `weights`,
    /// over the channel blocks `blocks`, into the outputs the tap covers
    /// (`out`: the group's first output channel; writes them instead where
    /// `writes`). The tap's gathered `block` is read a segment at a time;
    /// each register tile lands in `tile`, then its rows go to their outputs.
    func addProduct(tap t: Int, _ block: UnsafePointer<Float>, _ weights: UnsafePointer<Float>, blocks: Range<Int>,
                    channelBlocks: ChannelBlocks, writes: Bool, tile: UnsafeMutablePointer<Float>,
                    into out: UnsafeMutablePointer<Float>)
    {
        let (rows, columns) = (taps[t].rows.valid, taps[t].columns.valid), span = rows.count * columns.count
        let lanes = DirectConvolution.pixelsPerBlock
        var done = 0
        while done < span {
            let calls = DirectConvolution.blocks(left: (span - done + lanes - 1) / lanes)
            let stored = min(calls * lanes, span - done)
            let (segment, lane) = done.quotientAndRemainder(dividingBy: Self.segmentPixels)
            let pixels = block + segment * s.perGroup * Self.segmentPixels + lane
            for b in blocks {
                let (first, count) = channelBlocks.channels(b)
                PointwiseConvolution.productTile(rows: count, blocks: calls, pixels, pitch: Self.segmentPixels,
                                                 weights + first * s.perGroup, channels: s.perGroup, into: tile)
                for r in 0..<count {
                    place(tile + r * directTile.rowPitch, at: done..<done + stored, of: rows, columns, writes: writes,
                          into: out + (first + r) * s.pixels)
                }
            }
            done += stored
        }
    }

    /// Writes or adds `values`, the tap's products at positions `positions` of
    /// its `[|rows|, |columns|]` rectangle, to their entries of the output plane `plane`.
    @inline(__always)
    private func place(_ values: UnsafePointer<Float>, at positions: Range<Int>, of rows: Range<Int>,
                       _ columns: Range<Int>, writes: Bool, into plane: UnsafeMutablePointer<Float>)
    {
        var position = positions.lowerBound
        while position < positions.upperBound {
            let (i, j) = position.quotientAndRemainder(dividingBy: columns.count)
            let count = min(columns.count - j, positions.upperBound - position)
            let from = values + (position - positions.lowerBound)
            let to = plane + (rows.lowerBound + i) * s.outWidth + columns.lowerBound + j
            if writes { copyFloats(from, to: to, count: count) } else { addScaled(to, from, 1, count) }
            position += count
        }
    }
}

/// The tap products (`TapProducts`) of every sample and group, in chunks of
/// samples and groups whose gathered blocks take at most
/// `ConvSplit.unfoldedFloats`: the chunk's blocks are gathered in parallel
/// by tap, then the products run in parallel by parts of each sample's and
/// group's output channel blocks, each adding its taps in their fixed order
/// into its rows of `y`, so the result does not depend on the thread count.
func tapProductConv2d(_ x: UnsafePointer<Float>, weight: Tensor, _ s: ConvGeometry, epilogue: ConvEpilogue,
                      into y: UnsafeMutablePointer<Float>)
{
    let t = TapProducts(s), channelBlocks = ChannelBlocks(s), units = s.batch * s.groups
    let weights = t.tapWeights(weight, blocks: channelBlocks)
    let chunk = min(units, max(1, ConvSplit.unfoldedFloats / max(1, t.unitSize)))
    let parts = channelBlocks.parts(units: chunk)
    let buffer = allocateAlignedFloats(chunk * t.unitSize)
    defer { buffer.deallocate() }
    weights.withUnsafeBufferPointer { ws in
        for first in stride(from: 0, to: units, by: chunk) {
            let count = min(chunk, units - first)
            parallelFor(count * t.taps.count) { job in
                let (unit, tap) = (first + job / t.taps.count, job % t.taps.count)
                t.gather(x + (unit / s.groups * s.channels + unit % s.groups * s.perGroup) * s.plane, tap: tap,
                         into: buffer + (unit - first) * t.unitSize + t.offsets[tap])
            }
            parallelFor(count * parts, scratch: DirectConvolution.tileFloats) { job, tile in
                let (unit, part) = (first + job / parts, job % parts), (n, g) = (unit / s.groups, unit % s.groups)
                let blocks = channelBlocks.blocks(part: part, of: parts), channels = channelBlocks.channels(of: blocks)
                let out = y + (n * s.outputs + g * s.outPerGroup) * s.pixels
                if !t.firstCoversOutput {
                    (out + channels.lowerBound * s.pixels).update(repeating: 0, count: channels.count * s.pixels)
                }
                for k in t.taps.indices {
                    t.addProduct(tap: k, buffer + (unit - first) * t.unitSize + t.offsets[k],
                                 ws.baseAddress! + (g * t.taps.count + k) * s.outPerGroup * s.perGroup, blocks: blocks,
                                 channelBlocks: channelBlocks, writes: k == 0 && t.firstCoversOutput, tile: tile,
                                 into: out)
                }
                let lines = out + channels.lowerBound * s.pixels
                epilogue.store(lines, channel: g * s.outPerGroup + channels.lowerBound, to: lines, count: s.pixels,
                               rows: channels.count, valuePitch: s.pixels, linePitch: s.pixels)
            }
        }
    }
}
