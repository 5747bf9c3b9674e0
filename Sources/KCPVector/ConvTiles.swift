import CPlatform

/// The convolution's inner loops on raw pointers, built once per instruction
/// set (see Package.swift): 16-float vectors are one zmm register with
/// AVX-512 and two ymm registers with AVX2, with the same float operations
/// in the same order, so both builds give bitwise the same results.

/// A 16-float vector. Scratch of vectors is an `InlineArray` on the stack:
/// `withUnsafeTemporaryAllocation(of: Lanes.self, ...)` asks for the
/// vector's 64-byte alignment, more than Swift's stack allocation gives
/// (16), and takes the heap, a `posix_memalign` and a `free` per call (the
/// Winograd transforms made one for every 16 tiles; a 64-channel 3x3 conv
/// on 56x56 ran 0.650-0.715 -> 0.623-0.644 ms on the stack, AMD EPYC Zen 5,
/// 1 thread).
typealias Lanes = SIMD16<Float>

/// Output pixels and channels of a register tile of `directConvTile`, and
/// the floats from one channel's results to the next in the tile written:
/// room for the 4 blocks of a call, so that a channel's blocks lie side by side.
public let directTilePixels = 16, directTileChannels = 6, directTileRowPitch = 4 * directTilePixels

/// One register tile of the direct convolution: `rows` (1 to 6) output
/// channels x 16 output pixels,
/// `tile[r * 64 + i] = sum_{c < channels, k < taps} kernels[(c * taps + k) * rows + r] * run[c * channelPitch + offsets[k] + i]`,
/// each tap one weight broadcast per row and one 16-pixel load. With
/// `blocks` 2 or 4, more 16-pixel blocks too (block `b` at
/// `run + blockOffsets.b`, which may lie on other output rows; its results
/// at `tile + r * 64 + b * 16`), each broadcast feeding one product per block:
/// AVX-512's 32 zmm registers hold 12 or 24 accumulators, which hide the
/// FMA's latency and spread each broadcast over more products (AVX2's 16
/// ymm registers hold one block's 12). The code is specialised for each
/// `rows` and `blocks`.
///
/// A 1x1 call (`taps` 1) given `ahead` prefetches the weights of the next
/// call from there on, `rows` floats per channel as it reads its own: the
/// pointwise kernel reads each block's weights once per chunk, and a layer
/// whose weights outgrow the L2 cache would otherwise wait on memory at
/// every block (`PointwiseConvolution`).
public func directConvTile(rows: Int, blocks: Int, _ run: UnsafePointer<Float>, blockOffsets: BlockOffsets,
                           _ kernels: UnsafePointer<Float>, offsets: UnsafePointer<Int>, taps: Int, channels: Int,
                           channelPitch: Int, prefetching ahead: UnsafeRawPointer? = nil,
                           into tile: UnsafeMutablePointer<Float>)
{
    let shape = (taps: taps, channels: channels, pitch: channelPitch, ahead: ahead)
    let bytes = MemoryLayout<Float>.stride
    let at = (blockOffsets.1 * bytes, blockOffsets.2 * bytes, blockOffsets.3 * bytes)
    switch blocks {
    case 4: directConvTile(Four.self, rows: rows, run, at, kernels, offsets, shape, tile)
    case 2: directConvTile(Two.self, rows: rows, run, at, kernels, offsets, shape, tile)
    default: directConvTile(One.self, rows: rows, run, at, kernels, offsets, shape, tile)
    }
}

/// Where each of a `directConvTile`'s pixel blocks starts, in floats from its first block's start
/// (`.0` is 0); `(0, 16, 32, 48)` for consecutive blocks.
public typealias BlockOffsets = (Int, Int, Int, Int)

/// A count fixed at compile time, so that the generic code specialised for it has its loops unrolled.
protocol Count { static var value: Int { get } }
enum One: Count { static var value: Int { 1 } }
enum Two: Count { static var value: Int { 2 } }
enum Three: Count { static var value: Int { 3 } }
enum Four: Count { static var value: Int { 4 } }
enum Five: Count { static var value: Int { 5 } }
enum Six: Count { static var value: Int { 6 } }
enum Seven: Count { static var value: Int { 7 } }
enum Eight: Count { static var value: Int { 8 } }

/// `directConvTile` for `B` blocks, specialised for each `rows`.
private func directConvTile<B: Count>(_ blocks: B.Type, rows: Int, _ run: UnsafePointer<Float>, _ at: ByteOffsets,
                                      _ kernels: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>,
                                      _ shape: Shape, _ tile: UnsafeMutablePointer<Float>)
{
    switch rows {
    case 6: accumulate(Six.self, B.self, run, at, kernels, offsets, shape, tile)
    case 5: accumulate(Five.self, B.self, run, at, kernels, offsets, shape, tile)
    case 4: accumulate(Four.self, B.self, run, at, kernels, offsets, shape, tile)
    case 3: accumulate(Three.self, B.self, run, at, kernels, offsets, shape, tile)
    case 2: accumulate(Two.self, B.self, run, at, kernels, offsets, shape, tile)
    default: accumulate(One.self, B.self, run, at, kernels, offsets, shape, tile)
    }
}

/// Byte offsets of the second, third and fourth pixel blocks from the first.
private typealias ByteOffsets = (Int, Int, Int)

/// The loops of one `directConvTile` call: taps and channels, the floats from one channel to the
/// next, and where the weights of the next call start, to prefetch, if given.
private typealias Shape = (taps: Int, channels: Int, pitch: Int, ahead: UnsafeRawPointer?)

/// Up to four vectors of a register tile: one output channel's accumulators, one per 16-pixel block,
/// here; one pixel's, one per 16-channel vector, in `channelVectorTile`.
typealias Blocks = (Lanes, Lanes, Lanes, Lanes)

/// `a += x * w` for the first `count` vectors.
@inline(__always)
func addProducts(_ a: inout Blocks, _ x: Blocks, _ w: Float, count: Int) {
    let v = Lanes(repeating: w)
    a.0.addProduct(x.0, v)
    if count > 1 { a.1.addProduct(x.1, v) }
    if count > 2 { a.2.addProduct(x.2, v) }
    if count > 3 { a.3.addProduct(x.3, v) }
}

/// `directConvTile` for `R` rows and `B` blocks: `R * B` vector accumulators.
private func accumulate<R: Count, B: Count>(_: R.Type, _: B.Type, _ run: UnsafePointer<Float>, _ at: ByteOffsets,
                                            _ kernels: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>,
                                            _ shape: Shape, _ tile: UnsafeMutablePointer<Float>)
{
    let (rows, blocks) = (R.value, B.value)
    let zero: Blocks = (Lanes(), Lanes(), Lanes(), Lanes())
    var (a0, a1, a2, a3, a4, a5) = (zero, zero, zero, zero, zero, zero)
    var w = kernels
    /// The products of one tap of one channel, reading its pixel blocks at `pixels`.
    @inline(__always)
    func add(_ pixels: UnsafeRawPointer) {
        let x: Blocks = (pixels.loadUnaligned(as: Lanes.self),
                         blocks > 1 ? pixels.loadUnaligned(fromByteOffset: at.0, as: Lanes.self) : Lanes(),
                         blocks > 2 ? pixels.loadUnaligned(fromByteOffset: at.1, as: Lanes.self) : Lanes(),
                         blocks > 2 ? pixels.loadUnaligned(fromByteOffset: at.2, as: Lanes.self) : Lanes())
        addProducts(&a0, x, w[0], count: blocks)
        if rows > 1 { addProducts(&a1, x, w[1], count: blocks) }
        if rows > 2 { addProducts(&a2, x, w[2], count: blocks) }
        if rows > 3 { addProducts(&a3, x, w[3], count: blocks) }
        if rows > 4 { addProducts(&a4, x, w[4], count: blocks) }
        if rows > 5 { addProducts(&a5, x, w[5], count: blocks) }
        w += rows
    }
    if shape.taps == 1 {  // a 1x1 conv: one loop over the channels, without a loop over taps in each
        var pixels = UnsafeRawPointer(run + offsets[0])
        let step = shape.pitch * MemoryLayout<Float>.stride
        if var ahead = shape.ahead {
            for _ in 0..<shape.channels {
                kcp_prefetch(ahead)
                add(pixels)
                pixels += step
                ahead += rows * MemoryLayout<Float>.stride
            }
        } else {
            for _ in 0..<shape.channels {
                add(pixels)
                pixels += step
            }
        }
    } else {
        for c in 0..<shape.channels {
            let channel = run + c * shape.pitch
            for k in 0..<shape.taps { add(UnsafeRawPointer(channel + offsets[k])) }
        }
    }
    let next = directTilePixels  // floats from one block's results to the next's
    store(rows: rows, (a0.0, a1.0, a2.0, a3.0, a4.0, a5.0), into: tile)
    if blocks > 1 { store(rows: rows, (a0.1, a1.1, a2.1, a3.1, a4.1, a5.1), into: tile + next) }
    if blocks > 2 {
        store(rows: rows, (a0.2, a1.2, a2.2, a3.2, a4.2, a5.2), into: tile + 2 * next)
        store(rows: rows, (a0.3, a1.3, a2.3, a3.3, a4.3, a5.3), into: tile + 3 * next)
    }
}

/// Stores the first `rows` of one block's accumulators `v`, `directTileRowPitch` floats apart.
@inline(__always)
private func store(rows: Int, _ v: (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes), into tile: UnsafeMutablePointer<Float>) {
    let out = UnsafeMutableRawPointer(tile), pitch = directTileRowPitch * MemoryLayout<Float>.stride
    out.storeBytes(of: v.0, as: Lanes.self)
    if rows > 1 { out.storeBytes(of: v.1, toByteOffset: pitch, as: Lanes.self) }
    if rows > 2 { out.storeBytes(of: v.2, toByteOffset: 2 * pitch, as: Lanes.self) }
    if rows > 3 { out.storeBytes(of: v.3, toByteOffset: 3 * pitch, as: Lanes.self) }
    if rows > 4 { out.storeBytes(of: v.4, toByteOffset: 4 * pitch, as: Lanes.self) }
    if rows > 5 { out.storeBytes(of: v.5, toByteOffset: 5 * pitch, as: Lanes.self) }
}

/// A conv's epilogue on `rows` lines of `count` results: row `r` of
/// `values` (rows `valuePitch` floats apart) is written to
/// `lines + r * linePitch` (which may be the values),
/// `lines[r * linePitch + k] = f((values[r * valuePitch + k] + bias[c]) * scale[c] + shift[c] + residual[r * linePitch + k])`
/// for the channel `c = r * channelStep` (0: rows of one output channel,
/// 1: of consecutive ones), each step only where given (a shift only with
/// a scale), `f` the relu `max(v, 0)` (`relu`), the hardswish
/// `v * min(max(v / 6 + 1/2, 0), 1)` (`hardswish`) or none, with the float
/// operations of the separate ops (bias add, inference batchnorm, add,
/// activation). One call per register tile or plane: with one call per
/// row, ResNet-50's 1x1 convs took 2.5% longer and DeepLabV3's depthwise
/// convs 5% (Xeon, 1 thread, `Network.profile` medians).
///
/// The chains networks fuse most (a batchnorm, with or without a residual
/// add, then a relu, a hardswish or none; a bias, then a relu or none)
/// each have their loop compiled with their steps as constants: one loop
/// for all of them tested each step's switches for every vector, and took
/// 10% of a 1x1 conv of 64 -> 256 channels on 56x56 (0.51-0.52 -> 0.48-0.49
/// ms; ResNet-50's 1x1 convs at batch 1 20.3-21.3 -> 19.8-20.0; AMD EPYC
/// Zen 5, AVX-512, 1 thread).
public func convEpilogue(_ values: UnsafePointer<Float>, valuePitch: Int, to lines: UnsafeMutablePointer<Float>,
                         linePitch: Int, rows: Int, count: Int, bias: UnsafePointer<Float>?,
                         scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, channelStep: Int,
                         residual: UnsafePointer<Float>?, relu: Bool, hardswish: Bool)
{
    /// The rows through the steps that are switched on.
    @inline(__always)
    func run(bias hasBias: Bool, scale hasScale: Bool, residual hasResidual: Bool, relu: Bool, hardswish: Bool) {
        for r in 0..<rows {
            let c = r * channelStep
            epilogueLine(values + r * valuePitch, to: lines + r * linePitch, count: count,
                         bias: hasBias ? bias![c] : nil, normalization: hasScale ? (scale![c], shift?[c] ?? 0) : nil,
                         residual: hasResidual ? residual! + r * linePitch : nil, relu: relu, hardswish: hardswish)
        }
    }
    switch (bias != nil, scale != nil, residual != nil, relu, hardswish) {
    case (false, true, false, true, false): run(bias: false, scale: true, residual: false, relu: true, hardswish: false)
    case (false, true, true, true, false): run(bias: false, scale: true, residual: true, relu: true, hardswish: false)
    case (false, true, false, false, true): run(bias: false, scale: true, residual: false, relu: false, hardswish: true)
    case (false, true, false, false, false): run(bias: false, scale: true, residual: false, relu: false, hardswish: false)
    case (false, true, true, false, false): run(bias: false, scale: true, residual: true, relu: false, hardswish: false)
    case (true, false, false, true, false): run(bias: true, scale: false, residual: false, relu: true, hardswish: false)
    case (true, false, false, false, false): run(bias: true, scale: false, residual: false, relu: false, hardswish: false)
    case let (hasBias, hasScale, hasResidual, relu, hardswish):
        run(bias: hasBias, scale: hasScale, residual: hasResidual, relu: relu, hardswish: hardswish)
    }
}

/// `convEpilogue` on one line, its channel's parameters given.
@inline(__always)
func epilogueLine(_ values: UnsafePointer<Float>, to line: UnsafeMutablePointer<Float>, count: Int, bias: Float?,
                  normalization: (scale: Float, shift: Float)?, residual: UnsafePointer<Float>?, relu: Bool,
                  hardswish: Bool)
{
    // Plain vectors, the optionals made at each use: a residual's vector made by `map` was
    // gathered a float at a time (ResNet-20's 16-channel 3x3 conv on 32x32 at batch 64, with its
    // residual add: 1.81-1.86 -> 1.59-1.64 ms, 1.57-1.61 without; AMD EPYC Zen 5, 1 thread).
    let b = Lanes(repeating: bias ?? 0)
    let n = (Lanes(repeating: normalization?.scale ?? 0), Lanes(repeating: normalization?.shift ?? 0))
    var k = 0
    while k + 16 <= count {
        let v = UnsafeRawPointer(values + k).loadUnaligned(as: Lanes.self)
        var r = Lanes()
        if let residual { r = UnsafeRawPointer(residual + k).loadUnaligned(as: Lanes.self) }
        let y = epilogue(v, bias: bias == nil ? nil : b, normalization: normalization == nil ? nil : n,
                         residual: residual == nil ? nil : r, relu: relu, hardswish: hardswish)
        UnsafeMutableRawPointer(line + k).storeBytes(of: y, as: Lanes.self)
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

/// `convEpilogue` on one vector of results `v`, each lane's parameters in
/// the same lane of `bias`, `normalization` and `residual`. Always inlined
/// (`@_transparent`): with `@inline(__always)` the channel-vector kernel's
/// transposed stores called it, its optional vectors passed through the
/// stack, and a strided 128-channel conv ran 8-10% slower.
@_transparent
func epilogue(_ v: Lanes, bias: Lanes?, normalization: (scale: Lanes, shift: Lanes)?, residual: Lanes?, relu: Bool,
              hardswish: Bool) -> Lanes
{
    var v = v
    if let bias { v += bias }
    if let normalization { v = v * normalization.scale + normalization.shift }
    if let residual { v += residual }
    if relu { v.replace(with: 0, where: v .<= 0) }  // Swift.max(v, 0), NaN kept
    if hardswish {
        var gate = v / 6 + 0.5
        gate.replace(with: 0, where: gate .<= 0)  // Swift.max(gate, 0), NaN kept
        gate.replace(with: 1, where: gate .> 1)  // Swift.min(gate, 1), NaN kept
        v *= gate
    }
    return v
}

/// One channel of a depthwise convolution with stride 1 over `rows` rows
/// of `width` output pixels and 2 to 7 kernel rows,
/// `out[r * outPitch + i] = sum_{p < kh, q < kw} kernel[p * kw + q] * run[lines[r + p * tapStep] + columns[q] + i]`,
/// summed tap by tap in row-major order: the float operations of
/// `directConvTile(rows: 1, ...)` over one channel. `lines[y]` is where
/// the window's line `y` starts (`rows + (kh - 1) * tapStep` lines),
/// `columns[q]` how far past it column tap `q` reads. Each row is computed
/// in 16-pixel blocks; the lanes past `width` read on into the row's
/// padding, the next line or the caller's overread, and are stored past
/// `width`. The blocks go from a row's last to its first, each down the
/// rows in order, so that with `tapStep` 1 `outPitch` may be the width
/// itself: a row's last block spills into the next row's first pixels,
/// which that row's first block writes later (with a larger `tapStep`,
/// `outPitch` is at least the width rounded up to 16).
///
/// The rows that read the same lines (`tapStep` apart) are computed
/// together, `blocksPerCall` (1 to 4) blocks of each at once
/// (`depthwiseColumn`): each block of each line is loaded once per column
/// tap and multiplied into all the rows that read it (three for a 3x3
/// kernel), where one load per product (`depthwiseRuns`) left the
/// multiply-adds waiting on the loads: MobileNetV3's 5x5 conv on 120
/// channels of 64x64 1.4x faster (Xeon, 1 thread).
public func depthwiseColumns(_ run: UnsafePointer<Float>, _ kernel: UnsafePointer<Float>, kernelSize: (Int, Int),
                             lines: UnsafePointer<Int>, columns: UnsafePointer<Int>, tapStep: Int, rows: Int,
                             width: Int, outPitch: Int, blocksPerCall: Int, into out: UnsafeMutablePointer<Float>)
{
    let (kh, kw) = kernelSize, blocksPerRow = (width + 15) / 16
    for first in 0..<min(tapStep, rows) {  // the rows reading the lines first, first + tapStep, ...
        let shape = DepthwiseColumn(kernel: kernel, columns: columns, kw: kw, lines: lines + first, lineStep: tapStep,
                                    rows: (rows - first + tapStep - 1) / tapStep, out: out + first * outPitch,
                                    outStep: tapStep * outPitch)
        var end = blocksPerRow  // the blocks before it are still to compute
        while end > 0 {
            let blocks = min(blocksPerCall, end), column = end - blocks
            switch blocks {
            case 4: depthwiseColumn(kernelRows: kh, Four.self, run + column * 16, shape, column * 16)
            case 3: depthwiseColumn(kernelRows: kh, Three.self, run + column * 16, shape, column * 16)
            case 2: depthwiseColumn(kernelRows: kh, Two.self, run + column * 16, shape, column * 16)
            default: depthwiseColumn(kernelRows: kh, One.self, run + column * 16, shape, column * 16)
            }
            end = column
        }
    }
}

/// `depthwiseColumn`'s rows: output row `i` (`i < rows`) reads lines
/// `lines[(i + p) * lineStep]` for `p < kh`, and is stored at `out + i * outStep`.
private struct DepthwiseColumn {
    let kernel: UnsafePointer<Float>, columns: UnsafePointer<Int>, kw: Int, lines: UnsafePointer<Int>, lineStep: Int
    let rows: Int, out: UnsafeMutablePointer<Float>, outStep: Int
}

/// `depthwiseColumn` specialised for `kernelRows`.
@inline(__always)
private func depthwiseColumn<B: Count>(kernelRows: Int, _: B.Type, _ run: UnsafePointer<Float>, _ s: DepthwiseColumn,
                                       _ column: Int)
{
    switch kernelRows {
    case 7: depthwiseColumn(Seven.self, B.self, run, s, column)
    case 6: depthwiseColumn(Six.self, B.self, run, s, column)
    case 5: depthwiseColumn(Five.self, B.self, run, s, column)
    case 4: depthwiseColumn(Four.self, B.self, run, s, column)
    case 3: depthwiseColumn(Three.self, B.self, run, s, column)
    default: depthwiseColumn(Two.self, B.self, run, s, column)
    }
}

/// `B` blocks of `K` kernel rows down a column of output rows. Line `m`
/// adds its products into the rows `m - p` that read it with kernel row
/// `p < K`, whose accumulators are `a_p`; the last, row `m - K + 1`, is
/// then complete and stored, and the accumulators move on a row
/// (`a_{p+1} = a_p`, `a_0 = 0` for row `m + 1`). The first `K - 1` lines
/// also add into rows before the first, which are never stored.
private func depthwiseColumn<K: Count, B: Count>(_: K.Type, _: B.Type, _ run: UnsafePointer<Float>,
                                                 _ s: DepthwiseColumn, _ column: Int)
{
    let (kh, blocks) = (K.value, B.value), size = MemoryLayout<Float>.stride
    let zero: Blocks = (Lanes(), Lanes(), Lanes(), Lanes())
    var (a0, a1, a2, a3, a4, a5, a6) = (zero, zero, zero, zero, zero, zero, zero)
    for m in 0..<(s.rows + kh - 1) {
        let line = UnsafeRawPointer(run + s.lines[m * s.lineStep])
        for q in 0..<s.kw {
            let pixels = line + s.columns[q] * size
            let x: Blocks = (pixels.loadUnaligned(as: Lanes.self),
                             blocks > 1 ? pixels.loadUnaligned(fromByteOffset: 16 * size, as: Lanes.self) : Lanes(),
                             blocks > 2 ? pixels.loadUnaligned(fromByteOffset: 32 * size, as: Lanes.self) : Lanes(),
                             blocks > 3 ? pixels.loadUnaligned(fromByteOffset: 48 * size, as: Lanes.self) : Lanes())
            let w = s.kernel + q
            addProducts(&a0, x, w[0], count: blocks)
            addProducts(&a1, x, w[s.kw], count: blocks)
            if kh > 2 { addProducts(&a2, x, w[2 * s.kw], count: blocks) }
            if kh > 3 { addProducts(&a3, x, w[3 * s.kw], count: blocks) }
            if kh > 4 { addProducts(&a4, x, w[4 * s.kw], count: blocks) }
            if kh > 5 { addProducts(&a5, x, w[5 * s.kw], count: blocks) }
            if kh > 6 { addProducts(&a6, x, w[6 * s.kw], count: blocks) }
        }
        if m >= kh - 1 {
            let a = kh == 2 ? a1 : kh == 3 ? a2 : kh == 4 ? a3 : kh == 5 ? a4 : kh == 6 ? a5 : a6
            let o = UnsafeMutableRawPointer(s.out + (m - kh + 1) * s.outStep + column)
            o.storeBytes(of: a.0, as: Lanes.self)
            if blocks > 1 { o.storeBytes(of: a.1, toByteOffset: 16 * size, as: Lanes.self) }
            if blocks > 2 { o.storeBytes(of: a.2, toByteOffset: 32 * size, as: Lanes.self) }
            if blocks > 3 { o.storeBytes(of: a.3, toByteOffset: 48 * size, as: Lanes.self) }
        }
        (a6, a5, a4, a3, a2, a1, a0) = (a5, a4, a3, a2, a1, a0, zero)
    }
}

/// One channel of a depthwise convolution over `rows` runs of `width`
/// output pixels, `out[r * outPitch + i] = sum_{p < kh, q < kw} kernel[p * kw + q] * run[r * pitch + lines[p * tapStep] + columns[q] + i]`,
/// with the float operations of `depthwiseColumns`, one load per product:
/// the 16-pixel blocks of all the runs four at a time, each with its own
/// accumulator (a run of 32 pixels, MobileNetV3's 32x32 layers, summed in
/// one accumulator waited on each multiply-add's latency, 1.6x slower).
/// Each run's last block computes all 16 lanes: its lanes past `width`
/// read on into the next run or the caller's overread, and are stored
/// past `width`, into the next run where `outPitch` is less than the width
/// rounded up to 16 (the runs are stored in order).
public func depthwiseRuns(_ run: UnsafePointer<Float>, _ kernel: UnsafePointer<Float>, kernelSize: (Int, Int),
                          lines: UnsafePointer<Int>, columns: UnsafePointer<Int>, tapStep: Int, rows: Int, width: Int,
                          pitch: Int, outPitch: Int, into out: UnsafeMutablePointer<Float>)
{
    let blocksPerRow = (width + 15) / 16, blocks = rows * blocksPerRow
    var (row, column) = (0, 0)
    /// Where the next block reads and is stored, moving past it.
    func next() -> (read: Int, store: Int) {
        let position = (row * pitch + column, row * outPitch + column)
        column += 16
        if column >= blocksPerRow * 16 { (row, column) = (row + 1, 0) }
        return position
    }
    var done = 0
    while done < blocks {
        let n = min(4, blocks - done)
        let p0 = next(), p1 = n > 1 ? next() : p0, p2 = n > 2 ? next() : p0, p3 = n > 3 ? next() : p0
        let at = ((p0.read, p1.read, p2.read, p3.read), (p0.store, p1.store, p2.store, p3.store))
        switch n {
        case 4: depthwiseBlocks(4, run, kernel, kernelSize, lines, columns, tapStep, at, out)
        case 3: depthwiseBlocks(3, run, kernel, kernelSize, lines, columns, tapStep, at, out)
        case 2: depthwiseBlocks(2, run, kernel, kernelSize, lines, columns, tapStep, at, out)
        default: depthwiseBlocks(1, run, kernel, kernelSize, lines, columns, tapStep, at, out)
        }
        done += n
    }
}

/// `depthwiseRuns` for `n` (1 to 4, a constant once inlined) blocks read at `at.read`, stored at `at.store`.
@inline(__always)
private func depthwiseBlocks(_ n: Int, _ run: UnsafePointer<Float>, _ kernel: UnsafePointer<Float>,
                             _ kernelSize: (Int, Int), _ lines: UnsafePointer<Int>, _ columns: UnsafePointer<Int>,
                             _ tapStep: Int, _ at: (read: BlockOffsets, store: BlockOffsets),
                             _ out: UnsafeMutablePointer<Float>)
{
    let p = at.read, size = MemoryLayout<Float>.size
    var (a0, a1, a2, a3) = (Lanes(), Lanes(), Lanes(), Lanes())
    var w = kernel
    for row in 0..<kernelSize.0 {
        let line = run + lines[row * tapStep]
        for q in 0..<kernelSize.1 {
            let x = UnsafeRawPointer(line + columns[q]), v = Lanes(repeating: w[q])
            a0.addProduct(x.loadUnaligned(fromByteOffset: p.0 * size, as: Lanes.self), v)
            if n > 1 { a1.addProduct(x.loadUnaligned(fromByteOffset: p.1 * size, as: Lanes.self), v) }
            if n > 2 { a2.addProduct(x.loadUnaligned(fromByteOffset: p.2 * size, as: Lanes.self), v) }
            if n > 3 { a3.addProduct(x.loadUnaligned(fromByteOffset: p.3 * size, as: Lanes.self), v) }
        }
        w += kernelSize.1
    }
    let o = UnsafeMutableRawPointer(out), q = at.store
    o.storeBytes(of: a0, toByteOffset: q.0 * size, as: Lanes.self)
    if n > 1 { o.storeBytes(of: a1, toByteOffset: q.1 * size, as: Lanes.self) }
    if n > 2 { o.storeBytes(of: a2, toByteOffset: q.2 * size, as: Lanes.self) }
    if n > 3 { o.storeBytes(of: a3, toByteOffset: q.3 * size, as: Lanes.self) }
}

