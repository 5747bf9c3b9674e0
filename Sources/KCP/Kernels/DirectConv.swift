/// Direct convolution: output pixels computed in registers straight from a
/// zero-padded copy of the input rows, without unfolding them.
///
/// Unfolding (`unfold`) copies every input pixel `kh*kw` times and OpenBLAS
/// packs that copy once more; with few output channels (the 11-, 22- and
/// 44-channel layers that pruning a 16-32-64 network leaves) each copied
/// float is used for only that many products, and the copies cost as much as
/// the products. Here a register tile of up to 6 output channels x 16 output
/// pixels (`directConvTile`, 6 zmm or 12 ymm registers) accumulates
/// `y[o, oy, ox] = sum_{c, p, q} W[o, c, p, q] * padded[c, oy*sy + p*dy, ox*sx + q*dx]`
/// over every tap, one weight broadcast per channel and one 16-pixel load;
/// with AVX-512, up to four 16-pixel blocks at once, each broadcast feeding
/// all (up to 24 zmm accumulators): consecutive blocks, or those of
/// consecutive output rows where rows are short (ResNet-20's 32 channels
/// on 16x16, one block per row: 40 -> 59 GMAC/s, 1 thread, Xeon).
///
/// The window holds the padded input rows one tile of output rows reads,
/// split into `sy x sx` phases, phase `(fy, fx)` holding the pixels
/// `(fy + i*sy, fx + t*sx)` at row `i`, column `t` of a plane of `pitch`
/// columns. Tap `(p, q)` of output `(oy, ox)` then reads phase
/// `(p*dy % sy, q*dx % sx)` at `(oy + p*dy / sy, ox + q*dx / sx)`: for every
/// stride, consecutive output pixels read consecutive floats, and so do
/// the pixels of consecutive output rows once a row's `pitch` is counted
/// in. Pixel blocks either stay inside one output row, or, where that
/// would leave more lanes idle, run through the tile's rows at that pitch,
/// computing the `pitch - Wout` columns between rows only to drop them.
struct DirectConvolution {
    static let channelsPerBlock = directTile.channels, pixelsPerBlock = directTile.pixels
    /// The most pixel blocks one `directConvTile` call computes, and the floats of the tile it stores.
    static let blocksPerCall = directTile.rowPitch / directTile.pixels, tileFloats = channelsPerBlock * directTile.rowPitch

    let s: ConvGeometry
    /// Output rows per tile (the last tile may have fewer) and tiles per sample.
    let tileRows: Int, tiles: Int
    /// Columns of a phase's rows: each output row's pixels and the columns its taps reach past them.
    let pitch: Int
    /// Rows of each phase in a full tile.
    let phaseRows: Int
    /// Whether pixel blocks run through the rows of a tile (else each stays in one row).
    let flat: Bool
    /// Columns each output row's pixel blocks take: the pitch where they run through the rows, else
    /// its `Wout` pixels rounded up to whole blocks (its pixels and the lanes they leave idle).
    let pixelColumns: Int
    /// The output channels of a group in the blocks each tile computes, and the weights packed for them.
    let channelBlocks: ChannelBlocks
    /// Pixel blocks per `depthwiseColumns` call (a stride-1 depthwise conv of 2 to 7 kernel rows, whose
    /// accumulators fit the registers), else 0. Such a conv keeps its blocks in rows even where
    /// running them through the rows would leave fewer lanes idle: MobileNetV2's 56x56 3x3 convs 1.14x
    /// and ConvNeXt's 56x56 7x7 convs 1.4x faster, its 28x28 3x3 convs 1.06x slower (Xeon, 1 thread).
    let columnBlocks: Int

    /// Floats per window that the tile size aims for (128 KB): it stays in
    /// the L2 cache while every channel block reads it.
    static let windowFloats = 1 << 15

    /// - Parameter windowFloats: the window size the tiles aim for (a volumetric conv's is larger).
    init(_ s: ConvGeometry, windowFloats: Int = Self.windowFloats) {
        self.s = s
        let ((sy, sx), (dy, dx)) = (s.conv.stride, s.conv.dilation)
        pitch = s.outWidth + (s.kw - 1) * dx / sx
        let rounded = (s.outWidth + Self.pixelsPerBlock - 1) / Self.pixelsPerBlock * Self.pixelsPerBlock
        columnBlocks = s.isDepthwise && sy == 1 && (2...7).contains(s.kh) ? depthwiseColumnBlocks(kernelRows: s.kh) : 0
        // The fewer idle lanes, except that depthwise columns keep to rows even where that leaves more.
        flat = pitch < rounded && columnBlocks == 0
        pixelColumns = flat ? pitch : rounded
        channelBlocks = ChannelBlocks(s)
        // Tiles small enough for the cache, and enough of them to keep every thread busy. Each output is
        // summed in the same order whatever the tiles, so the result does not depend on them.
        let most = max(1, windowFloats / max(s.perGroup * sy * sx * pitch, 1))
        let busy = (4 * Threads.count + s.batch * s.groups - 1) / (s.batch * s.groups)
        let count = min(s.outHeight, max((s.outHeight + most - 1) / most, busy))
        tileRows = (s.outHeight + count - 1) / count
        tiles = (s.outHeight + tileRows - 1) / tileRows
        phaseRows = tileRows + (s.kh - 1) * dy / sy
    }

    /// Whether the output rows are shorter than a pixel vector, so that this kernel's lanes idle or
    /// its blocks run through the rows: there the kernels with channels along the lanes
    /// (`DepthwiseVectorConvolution`, `ChannelVectorConvolution` for strided convs) are ahead, and
    /// Winograd pays from fewer channels.
    static func shortRows(_ s: ConvGeometry) -> Bool { s.outWidth < pixelsPerBlock }

    /// Whether the direct kernel handles this convolution, measured against
    /// the unfolded product (`unfoldedConv2d`): a kernel of several taps
    /// (a 1x1 conv reads each pixel once, so unfolding it is no loss: 1.9x
    /// faster unfolded with stride 2), 4 to 64 output channels per group
    /// (past that OpenBLAS reuses each unfolded pixel enough: 128 channels
    /// at 28x28 run 1.1x faster unfolded) or a depthwise conv (1.8-2.8x
    /// faster direct on 3x3 layers of 32 to 128 pixels, whose products of one
    /// row would leave OpenBLAS idle), and pixel blocks that leave at most a tenth
    /// of their lanes idle (with 8-pixel rows, 80% busy, the two are even), a
    /// quarter for a depthwise conv, whose other kernel transposes its input
    /// and output (`DepthwiseVectorConvolution.suits`; AMD EPYC Zen 5, 1
    /// thread, 96 channels, 3x3: rows of 36, 75% busy, 0.089 ms here against
    /// 0.12 there, of 50 0.14 against 0.24, of 20 even, of 17 0.035 against 0.032).
    static func suits(_ s: ConvGeometry) -> Bool {
        let columns = DirectConvolution(s).pixelColumns
        return s.kh * s.kw > 1 && ((4...64).contains(s.outPerGroup) || s.isDepthwise)
            && (s.isDepthwise ? 4 * s.outWidth >= 3 * columns : 10 * s.outWidth >= 9 * columns)
    }

    var phases: Int { s.conv.stride.0 * s.conv.stride.1 }
    var channelPitch: Int { phases * phaseRows * pitch }
    /// Floats past the window that the idle lanes of the last pixel block may read.
    static let overread = 2 * pixelsPerBlock
    /// Where one worker's register tile starts in its scratch, after the window and its overread, on a
    /// cache line.
    var tileOffset: Int {
        (s.perGroup * channelPitch + Self.overread + cacheLineFloats - 1) / cacheLineFloats * cacheLineFloats
    }
    /// Floats from one output row to the next in a depthwise conv's tile: the row's `pixelColumns`
    /// where pixel blocks run through the rows (the window's pitch) or for columns of rows `dy > 1`
    /// apart, which are not computed in order (`depthwiseColumns`); else the row itself, each row's
    /// last block spilling into the next row's first pixels, which that row writes later, so that
    /// the tile holds the output rows as they lie in the output plane (`compute`).
    var depthwisePitch: Int { flat || (columnBlocks > 0 && s.conv.dilation.0 > 1) ? pixelColumns : s.outWidth }
    /// Floats of one worker's scratch: the window, its overread, then one register tile (a depthwise
    /// conv's: a tile's rows, and a vector for the last row's last block).
    var scratchSize: Int {
        tileOffset + (s.isDepthwise ? tileRows * depthwisePitch + Self.pixelsPerBlock : Self.tileFloats)
    }

    /// Pixel blocks (`blocksPerCall`, 2 or 1) of one `directConvTile` call with `left` blocks still to
    /// compute: the most that each hold a pixel, so that none reads further than the last block alone would.
    static func blocks(left: Int) -> Int { left >= blocksPerCall ? blocksPerCall : left >= 2 ? 2 : 1 }

    /// Groups per job of one tile of one sample, whose window's padding is
    /// cleared once for all of them (`fillWindow(paddingCleared:)`), while the
    /// jobs still give every thread about 8.
    var groupsPerJob: Int { max(1, min(s.groups, s.batch * s.groups * tiles / (8 * Threads.count))) }

    /// The output rows of tile `tile`.
    func rows(_ tile: Int) -> Range<Int> { (tile * tileRows)..<min(s.outHeight, (tile + 1) * tileRows) }

    /// `body` given where each tap of output `(0, 0)` reads in a channel's
    /// window (`WindowTaps`).
    func withTaps<Result>(_ body: (WindowTaps) -> Result) -> Result {
        let ((sy, sx), (dy, dx)) = (s.conv.stride, s.conv.dilation)
        let lines = (0...((tileRows - 1) * sy + (s.kh - 1) * dy)).map { y in (y % sy * sx * phaseRows + y / sy) * pitch }
        let columns = (0..<s.kw).map { q in q * dx % sx * phaseRows * pitch + q * dx / sx }
        let offsets = (0..<(s.kh * s.kw)).map { k in lines[k / s.kw * dy] + columns[k % s.kw] }
        return offsets.withUnsafeBufferPointer { offsets in
            lines.withUnsafeBufferPointer { lines in
                columns.withUnsafeBufferPointer { columns in
                    body(WindowTaps(offsets: offsets.baseAddress!, lines: lines.baseAddress!, columns: columns.baseAddress!))
                }
            }
        }
    }

    /// Copies the padded input rows that output rows `rows` read from the
    /// `[C/g, H, W]` sample `input` (channels `channelStride` apart) into the
    /// phases of `window` (zero where they lie in the padding), and clears
    /// the overread after it. With `channels`, only those planes of the window
    /// are filled, plane `c` from channel `c - channels.lowerBound` of `input`.
    /// With `paddingCleared` (the window last filled for the same `rows`), only
    /// the input's pixels are copied: the padding and the overread are zero still
    /// (a row split into two column phases, `splitPaddedColumns`, writes its
    /// zeros in the same pass either way).
    /// The input rows are read in order, each into every column phase in
    /// turn while it is in the L1 cache, every row phase at once: with
    /// stride 2, reading every other row for one row phase and then the
    /// others copied 1.2x slower, and all the rows for one column phase and
    /// then again for the other made MobileNetV3's stride-2 depthwise convs
    /// (most of whose time is the copy) 1.04-1.08x slower.
    func fillWindow(_ input: UnsafePointer<Float>, rows: Range<Int>, channels: Range<Int>? = nil,
                    paddingCleared: Bool = false, into window: UnsafeMutablePointer<Float>)
    {
        let channels = channels ?? 0..<s.perGroup
        let (top, left) = (s.conv.padding.0, s.conv.padding.1)
        let planeSize = phaseRows * pitch
        /// The fill for strides `sy` and `sx`, called with constants for strides 1 and 2, so that
        /// its loops are compiled for them: the generic loops' steps for each row took 13% of a
        /// 32-channel 3x3 conv on 16x16 at batch 64, which ran 1.51-1.54 -> 1.41-1.47 ms, and
        /// MobileNetV3's stride-2 depthwise convs 0.100-0.103 -> 0.093 (72 channels of 56x56, 5x5)
        /// and 0.19 -> 0.175-0.178 (64 of 112x112, 3x3; AMD EPYC Zen 5, AVX-512, 1 thread, with
        /// batchnorm and an activation).
        @inline(__always)
        func fill(_ sy: Int, _ sx: Int) {
            withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: sx) { inside in
                for fx in 0..<sx {  // column t of phase fx holds input column t*sx + fx - left, inside for t in inside[fx]
                    let first = min(pitch, max(0, (left - fx + sx - 1) / sx))
                    inside[fx] = first..<max(first, min(pitch, (s.width + left - fx + sx - 1) / sx))
                }
                for c in channels {
                    let channel = input + (c - channels.lowerBound) * s.channelStride - left
                    var line = window + c * sy * sx * planeSize  // row i of phase (fy, fx): line + (fy*sx + fx)*planeSize + i*pitch
                    var iy = rows.lowerBound * sy - top  // the input row of row i of phase fy: iy + fy
                    for _ in 0..<phaseRows {
                        for fy in 0..<sy {
                            let rowInside = iy + fy >= 0 && iy + fy < s.height
                            if sx == 2 && rowInside {  // both column phases, and their padding, in one pass
                                splitPaddedColumns(channel + left + (iy + fy) * s.width, width: s.width, left: left,
                                                   even: line + fy * 2 * planeSize, odd: line + (fy * 2 + 1) * planeSize,
                                                   count: pitch)
                                continue
                            }
                            for fx in 0..<sx {
                                let (phaseLine, columns) = (line + (fy * sx + fx) * planeSize, inside[fx])
                                if rowInside {
                                    copyStridedFloats(channel + (iy + fy) * s.width + fx, step: sx, to: phaseLine, columns)
                                }
                                if paddingCleared { continue }
                                if rowInside {
                                    clearFloats(phaseLine, count: columns.lowerBound)
                                    clearFloats(phaseLine + columns.upperBound, count: pitch - columns.upperBound)
                                } else {
                                    clearFloats(phaseLine, count: pitch)
                                }
                            }
                        }
                        (line, iy) = (line + pitch, iy + sy)
                    }
                }
            }
        }
        switch s.conv.stride {
        case (1, 1): fill(1, 1)
        case (2, 2): fill(2, 2)
        case let (sy, sx): fill(sy, sx)
        }
        if !paddingCleared { clearFloats(window + s.perGroup * channelPitch, count: Self.overread) }
    }

    /// Output rows `rows` of group `g`'s channels from their `window`, each
    /// stored through its `epilogue`: `out + o * outputChannelStride + oy * Wout + ox` is
    /// output `(o, oy, ox)` of the group.
    func compute(window: UnsafePointer<Float>, weights: UnsafePointer<Float>, group g: Int, rows: Range<Int>,
                 taps windowTaps: WindowTaps, epilogue: ConvEpilogue, tile: UnsafeMutablePointer<Float>,
                 into out: UnsafeMutablePointer<Float>)
    {
        let taps = s.perGroup * s.kh * s.kw, n = Self.pixelsPerBlock
        if s.isDepthwise {  // one channel: all the tile's pixels in one call, then stored as one run
            let lines = out + rows.lowerBound * s.outWidth
            let (runs, width) = flat ? (1, (rows.count - 1) * pitch + s.outWidth) : (rows.count, s.outWidth)
            if columnBlocks > 0 {
                depthwiseColumns(window, weights + g * taps, kernelSize: (s.kh, s.kw), lines: windowTaps.lines,
                                 columns: windowTaps.columns, tapStep: s.conv.dilation.0, rows: runs, width: width,
                                 outPitch: depthwisePitch, blocksPerCall: columnBlocks, into: tile)
            } else {
                depthwiseRuns(window, weights + g * taps, kernelSize: (s.kh, s.kw), lines: windowTaps.lines,
                              columns: windowTaps.columns, tapStep: s.conv.dilation.0, rows: runs, width: width,
                              pitch: pitch, outPitch: depthwisePitch, into: tile)
            }
            // The tile's rows as one run, so that only its last vector is partial where each row's
            // was: the epilogue takes a partial vector lane by lane. Rows a pitch apart are moved
            // together first (each moves down; `copyFloats` reads a run before writing it): 72
            // channels of 56x56 with batchnorm and hardswish, 1 thread, 195 -> 135 us; MobileNetV3-
            // Large's depthwise convs 1.88 -> 1.76 ms (Xeon). Rows computed in place of the move
            // (`depthwisePitch`): its 56x56 and 28x28 ones, 0.126 -> 0.109 ms (72 channels, 3x3)
            // and 0.099-0.100 -> 0.085-0.087 (120, 5x5; AMD EPYC Zen 4, AVX-512, in the network).
            if depthwisePitch != s.outWidth {
                for r in 1..<rows.count { copyFloats(tile + r * depthwisePitch, to: tile + r * s.outWidth, count: s.outWidth) }
            }
            return epilogue.store(tile, channel: g, to: lines, count: rows.count * s.outWidth)
        }
        let offsets = windowTaps.offsets
        for block in 0..<channelBlocks.count {
            let (first, count) = channelBlocks.channels(block)
            let kernels = weights + (g * s.outPerGroup + first) * taps
            let lines = out + first * s.outputChannelStride + rows.lowerBound * s.outWidth
            /// Stores lanes `lanes` of the register tile (lane `i` of block `i / 16`) at output pixel `pixel`
            /// of the tile's rows.
            func store(_ lanes: Range<Int>, at pixel: Int) {
                epilogue.store(tile + lanes.lowerBound, channel: g * s.outPerGroup + first, to: lines + pixel,
                               count: lanes.count, rows: count, valuePitch: directTile.rowPitch,
                               linePitch: s.outputChannelStride)
            }
            if flat {
                // Flat pixel j is output (j / pitch, j % pitch), a column past Wout for the ones dropped.
                let end = (rows.count - 1) * pitch + s.outWidth
                var j = 0
                while j < end {
                    let span = Self.blocks(left: (end - j + n - 1) / n) * n
                    directConvTile(rows: count, blocks: span / n, window + j, blockOffsets: (0, n, 2 * n, 3 * n),
                                   kernels, offsets: offsets, taps: s.kh * s.kw, channels: s.perGroup,
                                   channelPitch: channelPitch, into: tile)
                    var k = j
                    while k < min(j + span, end) {
                        let (oy, ox) = (k / pitch, k % pitch), run = min(j + span - k, s.outWidth - ox)
                        if ox < s.outWidth { store((k - j)..<(k - j + run), at: oy * s.outWidth + ox) }
                        k += ox < s.outWidth ? run : pitch - ox
                    }
                    j += span
                }
            } else {
                // The pixel blocks of the tile's rows in order, those of a call on one row or several.
                let perRow = (s.outWidth + n - 1) / n, total = rows.count * perRow
                /// Where pixel block `i` starts in the window, and at which pixel of the tile's rows.
                func block(_ i: Int) -> (window: Int, pixel: Int) {
                    let (oy, ox) = (i / perRow, i % perRow * n)
                    return (oy * pitch + ox, oy * s.outWidth + ox)
                }
                var i = 0
                while i < total {
                    let inCall = Self.blocks(left: total - i)
                    let first = block(i).window
                    let at = (0, block(min(i + 1, total - 1)).window - first, block(min(i + 2, total - 1)).window - first,
                              block(min(i + 3, total - 1)).window - first)
                    directConvTile(rows: count, blocks: inCall, window + first, blockOffsets: at, kernels,
                                   offsets: offsets, taps: s.kh * s.kw, channels: s.perGroup,
                                   channelPitch: channelPitch, into: tile)
                    var b = 0
                    while b < inCall {  // each run of blocks on one row in one store
                        let pixel = block(i + b).pixel, row = (i + b) / perRow
                        var end = b + 1
                        while end < inCall && (i + end) / perRow == row { end += 1 }
                        store((b * n)..<(b * n + min((end - b) * n, s.outWidth - pixel % s.outWidth)), at: pixel)
                        b = end
                    }
                    i += inCall
                }
            }
        }
    }
}

/// Where the taps of a direct conv's output `(0, 0)` read in a channel's
/// window: tap `(p, q)` at `offsets[p * kw + q] = lines[p * dy] + columns[q]`,
/// `lines[y]` where padded input row `y` of a tile starts (row `y / sy` of
/// row phase `y % sy`: the rows of every output row of a tile, `sy` apart,
/// and of its taps), `columns[q]` how far past it column tap `q` reads.
struct WindowTaps {
    let offsets: UnsafePointer<Int>, lines: UnsafePointer<Int>, columns: UnsafePointer<Int>
}

/// A group's output channels in the blocks that one `directConvTile` call
/// computes as its rows (balanced sizes of at most `directTile.channels`, no
/// empty slots), and the weights packed for them block by block. The
/// pixel-vector and pointwise kernels share both.
struct ChannelBlocks {
    let s: ConvGeometry
    /// Blocks per group.
    let count: Int

    init(_ s: ConvGeometry) {
        self.s = s
        count = (s.outPerGroup + directTile.channels - 1) / directTile.channels
    }

    /// Output channels `first..<first + count` (within its group) of block `block`.
    func channels(_ block: Int) -> (first: Int, count: Int) {
        let range = channels(of: block..<block + 1)
        return (range.lowerBound, range.count)
    }

    /// The output channels (within their group) of the blocks `blocks`.
    func channels(of blocks: Range<Int>) -> Range<Int> {
        (blocks.lowerBound * s.outPerGroup / count)..<(blocks.upperBound * s.outPerGroup / count)
    }

    /// Parts to split a group's blocks into, each a job, so that `units`
    /// jobs of other kinds (samples, groups, chunks of pixels) times the
    /// parts give every thread one (a 7x7 plane or a batch of 1 leaves few
    /// units), and no more: each part copies its unit's input once more
    /// (the pointwise kernel's chunk, the tap products' unit). With 4 per
    /// thread, a single thread ran 4 parts of each 1x1 conv on 7x7 and
    /// 14x14; with one, MobileNetV3-Large's 1x1 convs took 2.88 ms against
    /// 3.17 and ResNet-50's 24.2 against 25.0; on 2 threads,
    /// MobileNetV3-Large's 2.25 against 2.56, DeepLabV3's tap products 17.2
    /// against 19.7, ResNet-50's 1x1 convs 14.8 against 14.7 (Xeon, AVX-512,
    /// medians of alternating rounds in one process). The jobs only
    /// schedule the work: every output is summed in the same order,
    /// whatever the thread count.
    func parts(units: Int) -> Int { min(count, max(1, (Threads.count + units - 1) / units)) }

    /// The blocks of part `part` of `parts`.
    func blocks(part: Int, of parts: Int) -> Range<Int> { (part * count / parts)..<((part + 1) * count / parts) }

    /// `packedWeights` of `weight`'s values (`arranged` from them; a plane
    /// conv's are those), packed once for those values (`Tensor.derived`).
    func packedWeights(of weight: Tensor, arranged: (Tensor) -> [Float] = { $0.data }) -> [Float] {
        weight.derived("channel blocks", layout: [s.groups]) { packedWeights(arranged(weight)) }
    }

    /// The weights as `[groups, blocks, C/g, kh*kw, count]`, `count` the
    /// block's channels: block `b` of group `g` starts at `(g * O/g + first) * C/g * kh*kw`.
    func packedWeights(_ weight: [Float]) -> [Float] {
        [Float](unsafeUninitializedCapacity: weight.count) { packed, initialized in
            weight.withUnsafeBufferPointer { weight in
                for g in 0..<s.groups {
                    let base = g * s.outPerGroup * s.patch
                    pack(weight.baseAddress! + base, patch: s.patch, into: packed.baseAddress! + base)
                }
            }
            initialized = weight.count
        }
    }

    /// One group's row-major `[O/g, patch]` weights in blocks: block `b` as
    /// `[patch, count]` from `first * patch` on.
    func pack(_ weights: UnsafePointer<Float>, patch: Int, into packed: UnsafeMutablePointer<Float>) {
        for block in 0..<count {
            let (first, rows) = channels(block)
            transposeTiles(weights + first * patch, tilePitch: patch, pixels: rows, channels: patch,
                           into: packed + first * patch, linePitch: rows)
        }
    }
}
