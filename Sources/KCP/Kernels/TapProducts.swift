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
    /// Measured, 3x3 convs, 1 thread, ms unfolded -> by taps (share):
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
        let sizes = taps.map { s.perGroup * $0.rows.valid.count * $0.columns.valid.count }
        offsets = sizes.reduce(into: [0]) { $0.append($0.last! + $1) }.dropLast()
        unitSize = sizes.reduce(0, +)
    }

    /// The most product columns of a tap that covers part of each output row
    /// (its product is staged, then added row by row), 0 where none does.
    var stagedColumns: Int {
        taps.map { $0.columns.valid.count < s.outWidth ? $0.rows.valid.count * $0.columns.valid.count : 0 }.max() ?? 0
    }

    /// Whether the conv reads the input at less than `effectiveShare` of its
    /// nominal MACs, over at least `fewestPixels` outputs per channel.
    static func suits(_ s: ConvGeometry) -> Bool {
        guard s.pixels >= fewestPixels else { return false }
        let rows = (0..<s.kh).reduce(0) { $0 + s.rows(tap: $1).valid.count }
        let columns = (0..<s.kw).reduce(0) { $0 + s.columns(tap: $1).valid.count }
        return Double(rows * columns) < effectiveShare * Double(s.kh * s.kw * s.pixels)
    }

    /// The `[O, C/g, kh, kw]` weights as `[g, taps, O/g, C/g]`: each tap's
    /// `[O/g, C/g]` matrix of each group, a form of `weight` made once per
    /// weight values and taps.
    func tapWeights(_ weight: Tensor) -> [Float] {
        let (perGroup, outPerGroup, kernel) = (s.perGroup, s.outPerGroup, s.kh * s.kw)
        let sources = taps.map { $0.p * s.kw + $0.q }
        return weight.derived("tap matrices", layout: [s.groups] + sources) {
            [Float](unsafeUninitializedCapacity: s.outputs * perGroup * taps.count) { out, count in
                weight.data.withUnsafeBufferPointer { w in
                    for o in 0..<s.outputs {  // a row of weights stays in L1 while each tap reads it
                        let (g, row) = (o / outPerGroup, o % outPerGroup), source = w.baseAddress! + o * perGroup * kernel
                        for (t, from) in sources.enumerated() {
                            let target = out.baseAddress! + ((g * taps.count + t) * outPerGroup + row) * perGroup
                            for c in 0..<perGroup { target[c] = source[c * kernel + from] }
                        }
                    }
                }
                count = s.outputs * perGroup * taps.count
            }
        }
    }

    /// Tap `t`'s shifted input rectangle of the `[C/g, H, W]` sample `input`
    /// (channels `channelStride` apart) as a row-major `[C/g, |R_p| |C_q|]` block:
    /// `block[c, i |C_q| + j] = input[c, (R_p[i])*sy + p*dy - top, (C_q[j])*sx + q*dx - left]`.
    func gather(_ input: UnsafePointer<Float>, tap t: Int, into block: UnsafeMutablePointer<Float>) {
        let (rows, columns, (sy, sx)) = (taps[t].rows, taps[t].columns, s.conv.stride)
        let width = columns.valid.count, span = rows.valid.count * width
        for c in 0..<s.perGroup {
            let source = input + c * s.channelStride + rows.offset * s.width + columns.offset
            for (i, oy) in rows.valid.enumerated() {
                let from = source + oy * sy * s.width, to = block + c * span + i * width
                if sx == 1 {
                    to.update(from: from + columns.valid.lowerBound, count: width)
                } else {
                    for (j, ox) in columns.valid.enumerated() { to[j] = from[ox * sx] }
                }
            }
        }
    }
}

/// The tap products (`TapProducts`) of every sample and group, in chunks of
/// samples and groups whose gathered blocks take at most
/// `ConvSplit.unfoldedFloats`: the chunk's blocks are gathered in parallel
/// by tap, then the products run in parallel by blocks of output channels
/// (`ConvSplit.rowsPerBlock`), each adding its taps in their fixed order into
/// its rows of `y` (through a per-worker staging tile where a tap covers
/// part of each row), so the result does not depend on the thread count.
func tapProductConv2d(_ x: UnsafePointer<Float>, weight: Tensor, _ s: ConvGeometry, epilogue: ConvEpilogue,
                      into y: UnsafeMutablePointer<Float>)
{
    let t = TapProducts(s), weights = t.tapWeights(weight), units = s.batch * s.groups
    let blockRows = ConvSplit.rowsPerBlock(s.outPerGroup, tiles: units)
    let blocks = (s.outPerGroup + blockRows - 1) / blockRows
    let chunk = min(units, max(1, ConvSplit.unfoldedFloats / max(1, t.unitSize)))
    let staging = blockRows * t.stagedColumns
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, chunk * t.unitSize))
    defer { buffer.deallocate() }
    weights.withUnsafeBufferPointer { ws in
        for first in stride(from: 0, to: units, by: chunk) {
            let count = min(chunk, units - first)
            parallelFor(count * t.taps.count) { job in
                let (unit, tap) = (first + job / t.taps.count, job % t.taps.count)
                t.gather(x + (unit / s.groups * s.channels + unit % s.groups * s.perGroup) * s.plane, tap: tap,
                         into: buffer + (unit - first) * t.unitSize + t.offsets[tap])
            }
            parallelFor(count * blocks, scratch: staging) { job, scratch in
                let (unit, block) = (first + job / blocks, job % blocks), (n, g) = (unit / s.groups, unit % s.groups)
                let channels = (block * blockRows)..<min(s.outPerGroup, (block + 1) * blockRows)
                let out = y + (n * s.outputs + g * s.outPerGroup + channels.lowerBound) * s.pixels
                if !t.firstCoversOutput { out.update(repeating: 0, count: channels.count * s.pixels) }
                for (k, tap) in t.taps.enumerated() {
                    let (rows, columns) = (tap.rows.valid, tap.columns.valid), span = rows.count * columns.count
                    let a = ws.baseAddress! + ((g * t.taps.count + k) * s.outPerGroup + channels.lowerBound) * s.perGroup
                    let b = buffer + (unit - first) * t.unitSize + t.offsets[k]
                    if columns.count == s.outWidth {  // whole rows: added in place
                        serialMatrixProduct(m: channels.count, n: span, k: s.perGroup, a, lda: s.perGroup, b, ldb: span,
                                            beta: k == 0 && t.firstCoversOutput ? 0 : 1,
                                            out + rows.lowerBound * s.outWidth, ldc: s.pixels)
                        continue
                    }
                    serialMatrixProduct(m: channels.count, n: span, k: s.perGroup, a, lda: s.perGroup, b, ldb: span,
                                        scratch, ldc: span)
                    for o in 0..<channels.count {
                        for (i, oy) in rows.enumerated() {
                            addScaled(out + o * s.pixels + oy * s.outWidth + columns.lowerBound,
                                      scratch + o * span + i * columns.count, 1, columns.count)
                        }
                    }
                }
                for o in 0..<channels.count {
                    epilogue.store(out + o * s.pixels, channel: g * s.outPerGroup + channels.lowerBound + o,
                                   to: out + o * s.pixels, count: s.pixels)
                }
            }
        }
    }
}
