/// The convolution's inner loops on raw pointers, built once per instruction
/// set (see Package.swift): 16-float vectors are one zmm register with
/// AVX-512 and two ymm registers with AVX2, with the same float operations
/// in the same order, so both builds give bitwise the same results.

typealias Lanes = SIMD16<Float>

/// Output pixels and channels of a register tile of `directConvTile`.
public let directTilePixels = 16, directTileChannels = 6

/// One register tile of the direct convolution: `rows` (1 to 6) output
/// channels x 16 output pixels,
/// `tile[r * 16 + i] = sum_{c < channels, k < taps} kernels[(c * taps + k) * rows + r] * run[c * channelPitch + offsets[k] + i]`,
/// each tap one weight broadcast per row and one 16-pixel load. With
/// `blocks: 2`, the next 16 pixels too (`run + 16`, into the tile after it,
/// `tile + 6 * 16`), each broadcast then feeding two products: 12 zmm
/// accumulators hide the FMA's latency that 6 leave exposed (AVX-512 only;
/// AVX2's 16 ymm registers hold one block's 12). The code is specialised for
/// each `rows` and `blocks`.
public func directConvTile(rows: Int, blocks: Int, _ run: UnsafePointer<Float>, _ kernels: UnsafePointer<Float>,
                           offsets: UnsafePointer<Int>, taps: Int, channels: Int, channelPitch: Int,
                           into tile: UnsafeMutablePointer<Float>)
{
    let shape = (taps: taps, channels: channels, pitch: channelPitch)
    switch (rows, blocks) {
    case (6, 2): accumulatePair(rows: 6, run, kernels, offsets, shape, tile)
    case (5, 2): accumulatePair(rows: 5, run, kernels, offsets, shape, tile)
    case (4, 2): accumulatePair(rows: 4, run, kernels, offsets, shape, tile)
    case (3, 2): accumulatePair(rows: 3, run, kernels, offsets, shape, tile)
    case (2, 2): accumulatePair(rows: 2, run, kernels, offsets, shape, tile)
    case (_, 2): accumulatePair(rows: 1, run, kernels, offsets, shape, tile)
    case (6, _): accumulate(rows: 6, run, kernels, offsets, shape, tile)
    case (5, _): accumulate(rows: 5, run, kernels, offsets, shape, tile)
    case (4, _): accumulate(rows: 4, run, kernels, offsets, shape, tile)
    case (3, _): accumulate(rows: 3, run, kernels, offsets, shape, tile)
    case (2, _): accumulate(rows: 2, run, kernels, offsets, shape, tile)
    default: accumulate(rows: 1, run, kernels, offsets, shape, tile)
    }
}

/// `directConvTile` of one block for a constant `rows`: `rows` vector accumulators.
@inline(__always)
private func accumulate(rows: Int, _ run: UnsafePointer<Float>, _ kernels: UnsafePointer<Float>,
                        _ offsets: UnsafePointer<Int>, _ shape: (taps: Int, channels: Int, pitch: Int),
                        _ tile: UnsafeMutablePointer<Float>)
{
    var (a0, a1, a2, a3, a4, a5) = (Lanes(), Lanes(), Lanes(), Lanes(), Lanes(), Lanes())
    var w = kernels
    for c in 0..<shape.channels {
        let channel = run + c * shape.pitch
        for k in 0..<shape.taps {
            let x = UnsafeRawPointer(channel + offsets[k]).loadUnaligned(as: Lanes.self)
            a0.addProduct(x, Lanes(repeating: w[0]))
            if rows > 1 { a1.addProduct(x, Lanes(repeating: w[1])) }
            if rows > 2 { a2.addProduct(x, Lanes(repeating: w[2])) }
            if rows > 3 { a3.addProduct(x, Lanes(repeating: w[3])) }
            if rows > 4 { a4.addProduct(x, Lanes(repeating: w[4])) }
            if rows > 5 { a5.addProduct(x, Lanes(repeating: w[5])) }
            w += rows
        }
    }
    store(rows: rows, (a0, a1, a2, a3, a4, a5), into: tile)
}

/// `directConvTile` of two blocks for a constant `rows`: `2 * rows` vector accumulators, each broadcast
/// feeding one product per block.
@inline(__always)
private func accumulatePair(rows: Int, _ run: UnsafePointer<Float>, _ kernels: UnsafePointer<Float>,
                            _ offsets: UnsafePointer<Int>, _ shape: (taps: Int, channels: Int, pitch: Int),
                            _ tile: UnsafeMutablePointer<Float>)
{
    var (a0, a1, a2, a3, a4, a5) = (Lanes(), Lanes(), Lanes(), Lanes(), Lanes(), Lanes())
    var (b0, b1, b2, b3, b4, b5) = (Lanes(), Lanes(), Lanes(), Lanes(), Lanes(), Lanes())
    var w = kernels
    for c in 0..<shape.channels {
        let channel = run + c * shape.pitch
        for k in 0..<shape.taps {
            let pixels = UnsafeRawPointer(channel + offsets[k])
            let (x, y) = (pixels.loadUnaligned(as: Lanes.self),
                          pixels.loadUnaligned(fromByteOffset: MemoryLayout<Lanes>.size, as: Lanes.self))
            var v = Lanes(repeating: w[0])
            a0.addProduct(x, v); b0.addProduct(y, v)
            if rows > 1 { v = Lanes(repeating: w[1]); a1.addProduct(x, v); b1.addProduct(y, v) }
            if rows > 2 { v = Lanes(repeating: w[2]); a2.addProduct(x, v); b2.addProduct(y, v) }
            if rows > 3 { v = Lanes(repeating: w[3]); a3.addProduct(x, v); b3.addProduct(y, v) }
            if rows > 4 { v = Lanes(repeating: w[4]); a4.addProduct(x, v); b4.addProduct(y, v) }
            if rows > 5 { v = Lanes(repeating: w[5]); a5.addProduct(x, v); b5.addProduct(y, v) }
            w += rows
        }
    }
    store(rows: rows, (a0, a1, a2, a3, a4, a5), into: tile)
    store(rows: rows, (b0, b1, b2, b3, b4, b5), into: tile + directTileChannels * directTilePixels)
}

/// Stores the first `rows` of a register tile's accumulators `v`, 16 floats apart.
@inline(__always)
private func store(rows: Int, _ v: (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes), into tile: UnsafeMutablePointer<Float>) {
    let out = UnsafeMutableRawPointer(tile), size = MemoryLayout<Lanes>.size
    out.storeBytes(of: v.0, as: Lanes.self)
    if rows > 1 { out.storeBytes(of: v.1, toByteOffset: size, as: Lanes.self) }
    if rows > 2 { out.storeBytes(of: v.2, toByteOffset: 2 * size, as: Lanes.self) }
    if rows > 3 { out.storeBytes(of: v.3, toByteOffset: 3 * size, as: Lanes.self) }
    if rows > 4 { out.storeBytes(of: v.4, toByteOffset: 4 * size, as: Lanes.self) }
    if rows > 5 { out.storeBytes(of: v.5, toByteOffset: 5 * size, as: Lanes.self) }
}

/// A conv's epilogue on one line of `count` results `values` of one output
/// channel, written to `line` (which may be `values`):
/// `line[k] = f((values[k] + bias) * scale + shift + residual[k])`,
/// each step only where given, `f` the relu `max(v, 0)` (`relu`), the
/// hardswish `v * min(max(v / 6 + 1/2, 0), 1)` (`hardswish`) or none, with
/// the float operations of the separate ops (bias add, inference batchnorm,
/// add, activation).
public func convEpilogue(_ values: UnsafePointer<Float>, to line: UnsafeMutablePointer<Float>, count: Int,
                         bias: Float?, normalization: (scale: Float, shift: Float)?,
                         residual: UnsafePointer<Float>?, relu: Bool, hardswish: Bool)
{
    let (b, n) = (Lanes(repeating: bias ?? 0), normalization.map { (Lanes(repeating: $0.scale), Lanes(repeating: $0.shift)) })
    var k = 0
    while k + 16 <= count {
        var v = UnsafeRawPointer(values + k).loadUnaligned(as: Lanes.self)
        if bias != nil { v += b }
        if let n { v = v * n.0 + n.1 }
        if let residual { v += UnsafeRawPointer(residual + k).loadUnaligned(as: Lanes.self) }
        if relu { v.replace(with: 0, where: v .<= 0) }  // Swift.max(v, 0), NaN kept
        if hardswish {
            var gate = v / 6 + 0.5
            gate.replace(with: 0, where: gate .<= 0)  // Swift.max(gate, 0), NaN kept
            gate.replace(with: 1, where: gate .> 1)  // Swift.min(gate, 1), NaN kept
            v *= gate
        }
        UnsafeMutableRawPointer(line + k).storeBytes(of: v, as: Lanes.self)
        k += 16
    }
    while k < count {
        var v = values[k]
        if let bias { v += bias }
        if let n = normalization { v = v * n.scale + n.shift }
        if let residual { v += residual[k] }
        if relu { v = max(v, 0) }
        if hardswish { v *= min(max(v / 6 + 0.5, 0), 1) }
        line[k] = v
        k += 1
    }
}

/// One channel of a depthwise convolution over `rows` runs of `width`
/// output pixels, `pitch` floats apart in `run` and `out`,
/// `out[r * pitch + i] = sum_{k < taps} kernel[k] * run[r * pitch + offsets[k] + i]`,
/// with the float operations of `directConvTile(rows: 1, ...)` over one
/// channel. The 16-pixel blocks of all the runs are taken four at a time,
/// each with its own accumulator: a run of 32 pixels (MobileNetV3's 32x32
/// layers) summed in one accumulator waited on each multiply-add's latency,
/// 1.6x slower. Each run's last block computes all 16 lanes; the lanes past
/// `width` read on into the next run or the caller's overread.
public func depthwiseRows(_ run: UnsafePointer<Float>, _ kernel: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
                          taps: Int, rows: Int, width: Int, pitch: Int, into out: UnsafeMutablePointer<Float>)
{
    let blocksPerRow = (width + 15) / 16, blocks = rows * blocksPerRow
    var (row, column) = (0, 0)
    /// The position of the next block, moving past it.
    func next() -> Int {
        let position = row * pitch + column
        column += 16
        if column >= blocksPerRow * 16 { (row, column) = (row + 1, 0) }
        return position
    }
    var done = 0
    while done < blocks {
        let n = min(4, blocks - done)
        let p0 = next(), p1 = n > 1 ? next() : p0, p2 = n > 2 ? next() : p0, p3 = n > 3 ? next() : p0
        switch n {
        case 4: depthwiseBlocks(4, run, kernel, offsets, taps, (p0, p1, p2, p3), out)
        case 3: depthwiseBlocks(3, run, kernel, offsets, taps, (p0, p1, p2, p3), out)
        case 2: depthwiseBlocks(2, run, kernel, offsets, taps, (p0, p1, p2, p3), out)
        default: depthwiseBlocks(1, run, kernel, offsets, taps, (p0, p1, p2, p3), out)
        }
        done += n
    }
}

/// `depthwiseRows` for `n` (1 to 4, a constant once inlined) blocks at `p`.
@inline(__always)
private func depthwiseBlocks(_ n: Int, _ run: UnsafePointer<Float>, _ kernel: UnsafePointer<Float>,
                             _ offsets: UnsafePointer<Int>, _ taps: Int, _ p: (Int, Int, Int, Int),
                             _ out: UnsafeMutablePointer<Float>)
{
    var (a0, a1, a2, a3) = (Lanes(), Lanes(), Lanes(), Lanes())
    for k in 0..<taps {
        let x = UnsafeRawPointer(run + offsets[k]), w = Lanes(repeating: kernel[k]), size = MemoryLayout<Float>.size
        a0.addProduct(x.loadUnaligned(fromByteOffset: p.0 * size, as: Lanes.self), w)
        if n > 1 { a1.addProduct(x.loadUnaligned(fromByteOffset: p.1 * size, as: Lanes.self), w) }
        if n > 2 { a2.addProduct(x.loadUnaligned(fromByteOffset: p.2 * size, as: Lanes.self), w) }
        if n > 3 { a3.addProduct(x.loadUnaligned(fromByteOffset: p.3 * size, as: Lanes.self), w) }
    }
    let o = UnsafeMutableRawPointer(out), size = MemoryLayout<Float>.size
    o.storeBytes(of: a0, toByteOffset: p.0 * size, as: Lanes.self)
    if n > 1 { o.storeBytes(of: a1, toByteOffset: p.1 * size, as: Lanes.self) }
    if n > 2 { o.storeBytes(of: a2, toByteOffset: p.2 * size, as: Lanes.self) }
    if n > 3 { o.storeBytes(of: a3, toByteOffset: p.3 * size, as: Lanes.self) }
}
