/// The inner loop of the channel-vector convolution: output channels along
/// the vector lanes, input pixels broadcast (the transpose of
/// `directConvTile`'s register tile).

/// Output pixels of one `channelVectorTile` call, and output channels per vector.
public let channelVectorPixels = 6, channelVectorLanes = 16

/// Where each of a `channelVectorTile`'s pixels reads, in floats from the run's start.
public typealias PixelOffsets = (Int, Int, Int, Int, Int, Int)

/// One register tile of the channel-vector convolution: `vectors` (1 to
/// 4) x 16 output channels x `pixels` (1 to 6) output pixels,
/// `tile[p * tilePitch + 16 * v + i] (+)= sum_{c < channels, k < taps} kernels[(c * taps + k) * kernelPitch + 16 * v + i] * run[c * channelPitch + offsets[k] + pixelOffsets.p]`,
/// summed in that order, one multiply-add per term, onto the tile's values
/// where `accumulating` (so a sum over many channels can be taken a few
/// channels at a time, with the same float operations). Each tap is one 16-lane
/// weight load per vector and one broadcast per pixel, feeding
/// `vectors * pixels` products: with AVX-512's 32 zmm registers, 4 x 6 = 24
/// accumulators; AVX2's 16 ymm registers hold 1 x 6 (12 ymm). The code is
/// specialised for each `vectors` and `pixels`.
public func channelVectorTile(vectors: Int, pixels: Int, _ run: UnsafePointer<Float>, pixelOffsets: PixelOffsets,
                              _ kernels: UnsafePointer<Float>, kernelPitch: Int, offsets: UnsafePointer<Int>,
                              taps: Int, channels: Int, channelPitch: Int, accumulating: Bool,
                              into tile: UnsafeMutablePointer<Float>, tilePitch: Int)
{
    let shape = ChannelVectorShape(taps: taps, channels: channels, channelPitch: channelPitch,
                                   kernelPitch: kernelPitch, tilePitch: tilePitch, accumulating: accumulating)
    switch vectors {
    case 4: channelVectorTile(Four.self, pixels: pixels, run, pixelOffsets, kernels, offsets, shape, tile)
    case 3: channelVectorTile(Three.self, pixels: pixels, run, pixelOffsets, kernels, offsets, shape, tile)
    case 2: channelVectorTile(Two.self, pixels: pixels, run, pixelOffsets, kernels, offsets, shape, tile)
    default: channelVectorTile(One.self, pixels: pixels, run, pixelOffsets, kernels, offsets, shape, tile)
    }
}

/// The strides of one `channelVectorTile` call.
private struct ChannelVectorShape {
    let taps: Int, channels: Int, channelPitch: Int, kernelPitch: Int, tilePitch: Int, accumulating: Bool
}

/// `channelVectorTile` for `V` vectors, specialised for each `pixels`.
private func channelVectorTile<V: Count>(_: V.Type, pixels: Int, _ run: UnsafePointer<Float>, _ at: PixelOffsets,
                                         _ kernels: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>,
                                         _ shape: ChannelVectorShape, _ tile: UnsafeMutablePointer<Float>)
{
    switch pixels {
    case 6: accumulate(V.self, Six.self, run, at, kernels, offsets, shape, tile)
    case 5: accumulate(V.self, Five.self, run, at, kernels, offsets, shape, tile)
    case 4: accumulate(V.self, Four.self, run, at, kernels, offsets, shape, tile)
    case 3: accumulate(V.self, Three.self, run, at, kernels, offsets, shape, tile)
    case 2: accumulate(V.self, Two.self, run, at, kernels, offsets, shape, tile)
    default: accumulate(V.self, One.self, run, at, kernels, offsets, shape, tile)
    }
}

/// `channelVectorTile` for `V` vectors and `P` pixels: `V * P` vector accumulators.
private func accumulate<V: Count, P: Count>(_: V.Type, _: P.Type, _ run: UnsafePointer<Float>, _ at: PixelOffsets,
                                            _ kernels: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>,
                                            _ shape: ChannelVectorShape, _ tile: UnsafeMutablePointer<Float>)
{
    let (vectors, pixels, pitch) = (V.value, P.value, shape.tilePitch)
    let zero: Blocks = (Lanes(), Lanes(), Lanes(), Lanes())
    var (a0, a1, a2, a3, a4, a5) = (zero, zero, zero, zero, zero, zero)
    if shape.accumulating {
        a0 = load(vectors: vectors, from: tile)
        if pixels > 1 { a1 = load(vectors: vectors, from: tile + pitch) }
        if pixels > 2 { a2 = load(vectors: vectors, from: tile + 2 * pitch) }
        if pixels > 3 { a3 = load(vectors: vectors, from: tile + 3 * pitch) }
        if pixels > 4 { a4 = load(vectors: vectors, from: tile + 4 * pitch) }
        if pixels > 5 { a5 = load(vectors: vectors, from: tile + 5 * pitch) }
    }
    var w = UnsafeRawPointer(kernels)
    let next = MemoryLayout<Lanes>.size, kernelStride = shape.kernelPitch * MemoryLayout<Float>.stride
    for c in 0..<shape.channels {
        let channel = run + c * shape.channelPitch
        for k in 0..<shape.taps {
            let x = channel + offsets[k]
            let weights: Blocks = (w.loadUnaligned(as: Lanes.self),
                                    vectors > 1 ? w.loadUnaligned(fromByteOffset: next, as: Lanes.self) : Lanes(),
                                    vectors > 2 ? w.loadUnaligned(fromByteOffset: 2 * next, as: Lanes.self) : Lanes(),
                                    vectors > 3 ? w.loadUnaligned(fromByteOffset: 3 * next, as: Lanes.self) : Lanes())
            addProducts(&a0, weights, x[at.0], count: vectors)
            if pixels > 1 { addProducts(&a1, weights, x[at.1], count: vectors) }
            if pixels > 2 { addProducts(&a2, weights, x[at.2], count: vectors) }
            if pixels > 3 { addProducts(&a3, weights, x[at.3], count: vectors) }
            if pixels > 4 { addProducts(&a4, weights, x[at.4], count: vectors) }
            if pixels > 5 { addProducts(&a5, weights, x[at.5], count: vectors) }
            w += kernelStride
        }
    }
    store(vectors: vectors, a0, into: tile)
    if pixels > 1 { store(vectors: vectors, a1, into: tile + pitch) }
    if pixels > 2 { store(vectors: vectors, a2, into: tile + 2 * pitch) }
    if pixels > 3 { store(vectors: vectors, a3, into: tile + 3 * pitch) }
    if pixels > 4 { store(vectors: vectors, a4, into: tile + 4 * pitch) }
    if pixels > 5 { store(vectors: vectors, a5, into: tile + 5 * pitch) }
}

/// Stores the first `vectors` of one pixel's accumulators `a`, side by side.
@inline(__always)
private func store(vectors: Int, _ a: Blocks, into tile: UnsafeMutablePointer<Float>) {
    let out = UnsafeMutableRawPointer(tile), next = MemoryLayout<Lanes>.size
    out.storeBytes(of: a.0, as: Lanes.self)
    if vectors > 1 { out.storeBytes(of: a.1, toByteOffset: next, as: Lanes.self) }
    if vectors > 2 { out.storeBytes(of: a.2, toByteOffset: 2 * next, as: Lanes.self) }
    if vectors > 3 { out.storeBytes(of: a.3, toByteOffset: 3 * next, as: Lanes.self) }
}

/// The first `vectors` of one pixel's accumulators, side by side at `tile` (the others zero).
@inline(__always)
private func load(vectors: Int, from tile: UnsafeMutablePointer<Float>) -> Blocks {
    let values = UnsafeRawPointer(tile), next = MemoryLayout<Lanes>.size
    return (values.loadUnaligned(as: Lanes.self),
            vectors > 1 ? values.loadUnaligned(fromByteOffset: next, as: Lanes.self) : Lanes(),
            vectors > 2 ? values.loadUnaligned(fromByteOffset: 2 * next, as: Lanes.self) : Lanes(),
            vectors > 3 ? values.loadUnaligned(fromByteOffset: 3 * next, as: Lanes.self) : Lanes())
}

/// The `[pixels, channels]` results `tiles` (`tilePitch` floats from one
/// pixel's to the next) as `[channels, pixels]` lines (`linePitch` floats
/// apart): `lines[r * linePitch + p] = tiles[p * tilePitch + r]` (and so
/// the weights `[O, K]` as the packed `[K, O]`). With `wholeRows`, each
/// pixel's `tilePitch` floats may be read (a tile in scratch, not a
/// tensor's last plane), so that channels past the last 16 are transposed
/// as a block too.
public func transposeTiles(_ tiles: UnsafePointer<Float>, tilePitch: Int, pixels: Int, channels: Int,
                           wholeRows: Bool = false, into lines: UnsafeMutablePointer<Float>, linePitch: Int)
{
    transposing(tiles, tilePitch: tilePitch, pixels: pixels, channels: channels, wholeRows: wholeRows, through: .none) {
        values, r, p, count, _ in
        copyLine(values, to: lines + r * linePitch + p, count: count)
    }
}

/// `line[i] = values[i]` for `i < count` (at most 16).
@inline(__always)
private func copyLine(_ values: UnsafePointer<Float>, to line: UnsafeMutablePointer<Float>, count: Int) {
    if count == 16 {
        UnsafeMutableRawPointer(line).storeBytes(of: UnsafeRawPointer(values).loadUnaligned(as: Lanes.self), as: Lanes.self)
    } else {
        for i in 0..<count { line[i] = values[i] }
    }
}

/// `transposeTiles` with each line written through the conv epilogue:
/// `lines[r * linePitch + p] = f((tiles[p * tilePitch + r] + bias[r]) * scale[r] + shift[r] + residual[r * linePitch + p])`
/// with the float operations of `convEpilogue` (each step only where
/// given), so that a conv computed with its output channels along the
/// vector lanes stores them, transposed, in one pass. The channels' steps
/// run in the lanes as each block is loaded (`LaneSteps`), and so does `f`
/// where no residual follows; the residual, then `f`, on the transposed
/// lines. Each line through the whole epilogue, its channel's parameters
/// loaded for every 16 pixels, took longer: a 128-channel 3x3 conv,
/// stride 2, on 56x56 1.13-1.14 -> 1.04 ms (AMD EPYC Zen 5,
/// AVX-512, 1 thread, with batchnorm and relu).
public func storeTransposedTiles(_ tiles: UnsafePointer<Float>, tilePitch: Int, pixels: Int, channels: Int,
                                 wholeRows: Bool = false, bias: UnsafePointer<Float>?, scale: UnsafePointer<Float>?,
                                 shift: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, relu: Bool,
                                 hardswish: Bool, into lines: UnsafeMutablePointer<Float>, linePitch: Int)
{
    let steps = LaneSteps(bias: bias, scale: scale, shift: shift, relu: relu && residual == nil,
                          hardswish: hardswish && residual == nil)
    transposing(tiles, tilePitch: tilePitch, pixels: pixels, channels: channels, wholeRows: wholeRows, through: steps) {
        values, r, p, count, inLanes in
        let (line, residual) = (lines + r * linePitch + p, residual.map { $0 + r * linePitch + p })
        guard !inLanes else {
            guard let residual else { return copyLine(values, to: line, count: count) }
            return epilogueLine(values, to: line, count: count, bias: nil, normalization: nil, residual: residual,
                                relu: relu, hardswish: hardswish)
        }
        epilogueLine(values, to: line, count: count, bias: bias.map { $0[r] },
                     normalization: scale.map { ($0[r], shift?[r] ?? 0) }, residual: residual, relu: relu,
                     hardswish: hardswish)
    }
}

/// The steps of the conv epilogue that `transposing` runs in the lanes of
/// a block, channel `r + i` in lane `i`: its bias, scale and shift (each
/// where given), and the activation where set.
private struct LaneSteps {
    let bias: UnsafePointer<Float>?, scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?
    let relu: Bool, hardswish: Bool
    static let none = LaneSteps(bias: nil, scale: nil, shift: nil, relu: false, hardswish: false)

    /// The bias, scale and shift of channels `r..<r + width` in lanes, zero past them and where not given.
    @inline(__always)
    func parameters(_ r: Int, width: Int) -> (bias: Lanes, scale: Lanes, shift: Lanes) {
        func lanes(_ values: UnsafePointer<Float>?) -> Lanes {
            guard let values else { return Lanes() }
            if width == 16 { return UnsafeRawPointer(values + r).loadUnaligned(as: Lanes.self) }
            var v = Lanes()
            for i in 0..<width { v[i] = values[r + i] }
            return v
        }
        return (lanes(bias), lanes(scale), lanes(shift))
    }

    /// `v` through the steps, with the block's `parameters` (plain vectors, held across a block's
    /// loop: an optional pair held across it had its case read through a call for every pixel).
    @_transparent
    func apply(_ v: Lanes, _ p: (bias: Lanes, scale: Lanes, shift: Lanes)) -> Lanes {
        epilogue(v, bias: bias == nil ? nil : p.bias, normalization: scale == nil ? nil : (p.scale, p.shift),
                 residual: nil, relu: relu, hardswish: hardswish)
    }
}

/// Calls `emit(values, r, p, count, inLanes)` with the `count` values of
/// channel `r` at pixels `p..<p + count` of the `[pixels, channels]`
/// `tiles`, side by side, for every channel and pixel, the values of a
/// block through `steps` as they are loaded (`inLanes`). Blocks of 16 x 16
/// are transposed in registers: each of 4 rounds takes, for rows `2i` and
/// `2i + 1`, their even lanes into row `i` and their odd lanes into row
/// `8 + i`, which moves element `(i, j)` by rotating the 8 bits of
/// `16 i + j` right by one, so four rounds swap `i` and `j`. The last
/// pixels (fewer than 16) are a block of their rows, the lanes past them
/// emitted for none, and so are the last channels with `wholeRows`; else
/// those are gathered a channel at a time.
@inline(__always)
private func transposing(_ tiles: UnsafePointer<Float>, tilePitch: Int, pixels: Int, channels: Int, wholeRows: Bool,
                         through steps: LaneSteps, emit: (UnsafePointer<Float>, Int, Int, Int, Bool) -> Void)
{
    let source = UnsafeRawPointer(tiles), size = MemoryLayout<Float>.stride, vector = MemoryLayout<Lanes>.stride
    var vectors = InlineArray<33, Lanes>(repeating: Lanes())  // two blocks of 16 rows, then one line
    withUnsafeMutableBytes(of: &vectors) { bytes in
        let (a, b) = (bytes.baseAddress!, bytes.baseAddress! + 16 * vector)
        let rows = bytes.bindMemory(to: Float.self).baseAddress!, line = rows + 512
        var p = 0
        while p < pixels {
            let count = min(16, pixels - p)
            var r = 0
            while r + 16 <= channels || (r < channels && wholeRows && r + 16 <= tilePitch) {
                let parameters = steps.parameters(r, width: min(16, channels - r))
                for i in 0..<count {
                    let v = source.loadUnaligned(fromByteOffset: ((p + i) * tilePitch + r) * size, as: Lanes.self)
                    a.storeBytes(of: steps.apply(v, parameters), toByteOffset: i * vector, as: Lanes.self)
                }
                interleave(a, into: b)
                interleave(b, into: a)
                interleave(a, into: b)
                interleave(b, into: a)
                for i in 0..<min(16, channels - r) { emit(rows + 16 * i, r + i, p, count, true) }
                r += 16
            }
            for c in min(r, channels)..<channels {
                for i in 0..<count { line[i] = tiles[(p + i) * tilePitch + c] }
                emit(line, c, p, count, false)
            }
            p += 16
        }
    }
}

/// One round of `transposing`: rows `2i` and `2i + 1` of the 16 vectors at `from` to rows `i` (their
/// even lanes) and `8 + i` (their odd lanes) at `to`.
@inline(__always)
private func interleave(_ from: UnsafeMutableRawPointer, into to: UnsafeMutableRawPointer) {
    let lanes = MemoryLayout<Lanes>.stride
    for i in 0..<8 {
        let (even, odd) = (from.loadUnaligned(fromByteOffset: 2 * i * lanes, as: Lanes.self),
                           from.loadUnaligned(fromByteOffset: (2 * i + 1) * lanes, as: Lanes.self))
        to.storeBytes(of: Lanes(lowHalf: even.evenHalf, highHalf: odd.evenHalf), toByteOffset: i * lanes, as: Lanes.self)
        to.storeBytes(of: Lanes(lowHalf: even.oddHalf, highHalf: odd.oddHalf), toByteOffset: (8 + i) * lanes, as: Lanes.self)
    }
}
