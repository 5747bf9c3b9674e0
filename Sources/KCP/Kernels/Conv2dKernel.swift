/// 2-D convolution, NCHW: `y[n, o] = b[o] + sum_{j, p, q} W[o, j, p, q] * x[n, g*I/g + j, h*s + p*d - pad, ...]`.
///
/// 3x3 stride-1 convs with channels and tiles enough run Winograd's
/// F(4x4, 3x3) (`WinogradConvolution`, which says when it suits);
/// depthwise convs of short rows, 16 channels along the vector lanes
/// (`DepthwiseVectorConvolution`); convs with a few output channels per
/// group and a kernel of several taps, the direct kernel
/// (`DirectConvolution`); those whose taps read mostly
/// padding, a matrix product per tap (`TapProducts`); with AVX-512, 1x1
/// convs, register tiles over pixel vectors (`PointwiseConvolution`), and
/// those of many output channels (1x1 ones where the pixel vectors would
/// idle) or strided ones of 32 or more on short rows, the channel-vector
/// kernel (`ChannelVectorConvolution`, ahead of the direct kernel; with
/// AVX2, on short rows); the others, matrix products of the unfolded input
/// (`unfoldedConv2d`). Every path computes
/// each output in a job that depends on the geometry (and the machine's
/// processor count) alone, so the result does not depend on the thread
/// count, and applies the epilogue to its outputs while they are hot.
///
/// An inference batchnorm, a residual add and a relu or hardswish that
/// follow the conv can be applied in the same pass,
/// `y = f(scale[o] * (Wx + b)[o] + shift[o] + r)`, with the same float
/// operations as `batchNormInference`, `addForward` and `activationForward`
/// after it.
/// - Parameters:
///   - normalization: per output channel `(scale, shift)` (`batchNormScaleShift`), or nil.
///   - residual: a tensor shaped like the output, added after the normalization, or nil.
///   - residualReusable: whether the caller reads `residual` no more, so that the output may take
///     its memory (`convOutput`).
///   - activation: the activation `f` that follows (one of `ConvEpilogue.activations`), or nil.
func conv2dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, _ conv: Conv2d, outputShape: [Int],
                   normalization: (scale: [Float], shift: [Float])? = nil, residual: consuming Tensor? = nil,
                   residualReusable: Bool = false, activation: Activation.Kind? = nil) -> Tensor
{
    let s = ConvGeometry(input: x.shape, weight: weight.shape, output: outputShape, conv)
    if let cropped = withoutPaddingTaps(s, weight: weight) {
        return conv2dForward(x, weight: cropped.weight, bias: bias, cropped.conv, outputShape: outputShape,
                             normalization: normalization, residual: consume residual,
                             residualReusable: residualReusable, activation: activation)
    }
    let path = Conv2dPath(s), reusable = residualReusable && path.writesEachOutputOnce
    return convOutput(shape: outputShape, residual: consume residual, reusable: reusable) { y, r in
        x.data.withUnsafeBufferPointer { xs in
            withConvEpilogue(bias: bias, normalization: normalization, residual: r, activation: activation,
                             output: y) { epilogue in
                let x = xs.baseAddress!
                switch path {
                case .winograd: winogradConvolution(x, weight: weight, s, epilogue: epilogue, into: y)
                case .depthwiseVectors: depthwiseVectorConv2d(x, weight: weight, s, epilogue: epilogue, into: y)
                case .direct: directConv2d(x, weight: weight, s, epilogue: epilogue, into: y)
                case .tapProducts: tapProductConv2d(x, weight: weight, s, epilogue: epilogue, into: y)
                case .pointwise: pointwiseConv2d(x, weight: weight, s, epilogue: epilogue, into: y)
                case .channelVectors: channelVectorConv2d(x, weight: weight, s, epilogue: epilogue, into: y)
                case .unfolded: unfoldedConv2d(x, weight: weight.data, s, epilogue: epilogue, into: y)
                }
            }
        }
    }
}

/// The path `conv2dForward` takes for a geometry: the first, in this order, that suits it.
enum Conv2dPath {
    case winograd, depthwiseVectors, direct, tapProducts, pointwise, channelVectors, unfolded

    init(_ s: ConvGeometry) {
        if WinogradConvolution.suits(s) {
            self = .winograd
        } else if DepthwiseVectorConvolution.suits(s) {
            self = .depthwiseVectors
        } else if DirectConvolution.suits(s) && !ChannelVectorConvolution.suits(s) {
            self = .direct
        } else if TapProducts.suits(s) {
            self = .tapProducts
        } else if PointwiseConvolution.suits(s) {
            self = .pointwise
        } else if ChannelVectorConvolution.suits(s) {
            self = .channelVectors
        } else {
            self = .unfolded
        }
    }

    /// Whether the path computes its outputs elsewhere (register tiles, a window) and writes each one
    /// once, through the epilogue. Winograd's inverse transform, the tap products and the unfolded
    /// product write the output first and apply the epilogue to it in place.
    var writesEachOutputOnce: Bool {
        switch self {
        case .depthwiseVectors, .direct, .pointwise, .channelVectors: true
        case .winograd, .tapProducts, .unfolded: false
        }
    }
}

/// The output of a conv whose epilogue adds `residual`, made by `body(y, r)` (`y` the output, `r`
/// the residual's entries, or nil). Where the residual is `reusable` (its owner reads it no more)
/// and the path writes each output once through the epilogue, which reads an entry of the residual
/// before it writes that entry of the output, the output is the residual's own memory, `y == r`:
/// the sum accumulates in place, as onnxruntime's convs with a fused sum do, and the output is
/// written to memory the residual has just brought into the cache, not to new memory that must be
/// read in first. ResNet-50 at batch 8 (AMD EPYC Zen 5, AVX-512, 1 thread, per-layer medians): the
/// blocks' last convs, 1x1 with the residual, 7.2-7.4 -> 5.9 ms on 56x56, 5.6-5.7 -> 5.0-5.2 on
/// 28x28, 4.9-5.0 -> 4.6 on 14x14; the network's 1x1 convs 203 -> 196. Memory another value
/// shares is copied before it is written (the array's copy on write), so a residual read elsewhere
/// is never changed.
func convOutput(shape: [Int], residual: consuming Tensor?, reusable: Bool,
                _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>?) -> Void) -> Tensor
{
    if reusable && residual != nil {
        var output = (consume residual)!
        precondition(output.shape == shape, "the residual \(output.shape) is not shaped like the output \(shape)")
        output.data.withUnsafeMutableBufferPointer { ys in body(ys.baseAddress!, UnsafePointer(ys.baseAddress!)) }
        return output
    }
    return Tensor(shape: shape) { ys in
        withOptionalBuffer(residual?.data) { r in body(ys.baseAddress!, r) }
    }
}

/// `body` with the `ConvEpilogue` of these settings over the output `output`
/// (the arrays it points into stay alive for the call).
func withConvEpilogue(bias: Tensor?, normalization: (scale: [Float], shift: [Float])?, residual: UnsafePointer<Float>?,
                      activation: Activation.Kind?, output: UnsafeMutablePointer<Float>, _ body: (ConvEpilogue) -> Void)
{
    withOptionalBuffer(bias?.data) { bias in
        withOptionalBuffer(normalization?.scale) { scale in
            withOptionalBuffer(normalization?.shift) { shift in
                body(ConvEpilogue(bias: bias, scale: scale, shift: shift, residual: residual,
                                  activation: activation, output: UnsafePointer(output)))
            }
        }
    }
}

/// `body` with a pointer to `array`'s elements, or nil.
private func withOptionalBuffer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// What follows a conv in the same pass over each tile of its output `y`:
/// bias, inference batchnorm (`scale`, `shift` per channel), residual add
/// and activation, in that order. Pointers, not arrays: the kernels call `store`
/// for every few pixels, and an array's reference count would be touched each time.
struct ConvEpilogue {
    let bias: UnsafePointer<Float>?, scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?
    /// Shaped like the output; entry `k` of the output reads entry `k` here.
    let residual: UnsafePointer<Float>?
    let relu: Bool, hardswish: Bool
    let output: UnsafePointer<Float>

    /// The activations an epilogue applies: a relu (ResNets) or a hardswish
    /// (DeepLabV3-MobileNetV3, where it follows 20 of the 70 convs; applied
    /// on its own it took 1.8 of the network's 227 ms, 1 thread).
    static let activations: Set<Activation.Kind> = [.relu, .hardswish]

    init(bias: UnsafePointer<Float>?, scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?,
         residual: UnsafePointer<Float>?, activation: Activation.Kind?, output: UnsafePointer<Float>)
    {
        precondition(activation.map(Self.activations.contains) ?? true, "no epilogue for \(activation!)")
        (self.bias, self.scale, self.shift, self.residual, self.output) = (bias, scale, shift, residual, output)
        (relu, hardswish) = (activation == .relu, activation == .hardswish)
    }

    /// Writes `rows` lines of `count` conv results, row `r` at
    /// `values + r * valuePitch` of output channel `o + r * channelStep`,
    /// through the epilogue to `line + r * linePitch` (which may be the
    /// values), with the float operations of the ops it stands for
    /// (`convEpilogue`).
    @inline(__always)
    func store(_ values: UnsafePointer<Float>, channel o: Int, to line: UnsafeMutablePointer<Float>, count: Int,
               rows: Int = 1, valuePitch: Int = 0, linePitch: Int = 0, channelStep: Int = 1)
    {
        convEpilogue(values, valuePitch: valuePitch, to: line, linePitch: linePitch, rows: rows, count: count,
                     bias: bias.map { $0 + o }, scale: scale.map { $0 + o }, shift: shift.map { $0 + o },
                     channelStep: channelStep, residual: residual(at: line), relu: relu, hardswish: hardswish)
    }

    /// The residual's entry that output entry `line` adds, or nil.
    @inline(__always)
    private func residual(at line: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>? {
        residual.map { $0 + (UnsafePointer(line) - output) }
    }

    /// Writes the `[count, channels]` conv results `tiles` (`tilePitch` floats from one pixel's to the
    /// next) of output channels `o..<o + channels`, transposed, through the epilogue to their lines
    /// (`linePitch` floats apart) from `line` on (`storeTransposedTiles`; `wholeRows` where each pixel's
    /// `tilePitch` floats may be read).
    func storeTransposed(_ tiles: UnsafePointer<Float>, tilePitch: Int, count: Int, channels: Range<Int>,
                         wholeRows: Bool = false, to line: UnsafeMutablePointer<Float>, linePitch: Int)
    {
        let o = channels.lowerBound
        storeTransposedTiles(tiles, tilePitch: tilePitch, pixels: count, channels: channels.count, wholeRows: wholeRows,
                             bias: bias.map { $0 + o }, scale: scale.map { $0 + o }, shift: shift.map { $0 + o },
                             residual: residual(at: line), relu: relu, hardswish: hardswish, into: line,
                             linePitch: linePitch)
    }
}

/// The direct kernel over every tile of output rows of every sample and
/// group, the groups of a job (`groupsPerJob`) in turn through one window.
func directConv2d(_ x: UnsafePointer<Float>, weight: Tensor, _ s: ConvGeometry, epilogue: ConvEpilogue,
                          into y: UnsafeMutablePointer<Float>)
{
    let direct = DirectConvolution(s)
    let packed = direct.channelBlocks.packedWeights(of: weight)
    let perJob = direct.groupsPerJob, parts = (s.groups + perJob - 1) / perJob
    packed.withUnsafeBufferPointer { weights in
        direct.withTaps { taps in
            parallelFor(s.batch * parts * direct.tiles, scratch: direct.scratchSize) { job, scratch in
                let (tile, part, n) = (job % direct.tiles, job / direct.tiles % parts, job / direct.tiles / parts)
                let rows = direct.rows(tile)
                for g in (part * perJob)..<min(s.groups, (part + 1) * perJob) {
                    direct.fillWindow(x + (n * s.channels + g * s.perGroup) * s.channelStride, rows: rows,
                                      paddingCleared: g > part * perJob, into: scratch)
                    let out = y + (n * s.outputs + g * s.outPerGroup) * s.outputChannelStride
                    direct.compute(window: scratch, weights: weights.baseAddress!, group: g, rows: rows, taps: taps,
                                   epilogue: epilogue, tile: scratch + direct.tileOffset, into: out)
                }
            }
        }
    }
}

/// Each tile of output rows of each sample and group is unfolded (`unfold`)
/// into a `[I/g*kh*kw, rows*Wout]` matrix `X`, and `W_g X` (`W_g` the
/// group's `[O/g, I/g*kh*kw]` weights) is added by SGEMM straight into those
/// rows of the zeroed `y` (adding, OpenBLAS skips its pass that clears `C`).
/// A 1x1 stride-1 unpadded conv multiplies the input itself, in tiles of
/// as many rows as OpenBLAS's small-matrix kernels take where those are
/// wide enough (`smallProductRows`); those products write their rows of `y` (`beta` 0)
/// instead of adding into it, so `y` is not cleared first. OpenBLAS's
/// kernels take rows in fours and slow down on the rest (11 output channels
/// cost more than 12), so more than 4 output channels per group that are no
/// multiple of 4 are computed with zero-padded weight rows into a per-worker
/// staging tile, then stored into `y`. Where each sample is one small tile
/// (`samplesPerProduct`), a chunk of samples is one product: their tiles
/// unfolded side by side, the product staged, then stored sample by sample.
///
/// Where the products alone give every thread several jobs, each job unfolds
/// one tile into its own scratch, where it stays in cache for the product.
/// Otherwise (batch 1, deep layers: ResNet-50's 7x7 layers have one tile per
/// sample) each tile's product is also split into blocks of output channels
/// (`ConvSplit`), and the tiles are unfolded first, in parallel by input
/// channels, into a shared buffer that each block then reads.
func unfoldedConv2d(_ x: UnsafePointer<Float>, weight: [Float], _ s: ConvGeometry, epilogue: ConvEpilogue,
                            into y: UnsafeMutablePointer<Float>)
{
    let m = s.outPerGroup > 4 ? (s.outPerGroup + 3) / 4 * 4 : s.outPerGroup
    let smallRows = s.smallProductRows(m)
    let s = smallRows.map { s.tiled(rows: $0) } ?? s
    let chunk = s.samplesPerProduct
    let staged = chunk > 1 || s.outPerGroup > 4 && s.outPerGroup % 4 != 0
    let adds = !staged && smallRows == nil  // else each product writes its rows (beta 0)
    let weights = m > s.outPerGroup ? paddedRows(weight, groups: s.groups, rows: s.outPerGroup, to: m, columns: s.patch) : weight
    let split = ConvSplit(s, rows: m), tileSize = split.tileSize
    let staging = staged ? m * chunk * s.blockRows * s.outWidth : 0
    if adds { y.update(repeating: 0, count: s.batch * s.outputs * s.pixels) }  // the product adds into y
    weights.withUnsafeBufferPointer { ws in
        /// The samples, group and output rows of tile `tile` (of a chunk of samples).
        func parts(_ tile: Int) -> (samples: Range<Int>, group: Int, rows: Range<Int>) {
            let first = tile / s.blocks / s.groups * chunk
            return (first..<min(s.batch, first + chunk), tile / s.blocks % s.groups, s.rows(tile % s.blocks))
        }
        /// The `[C/g, H, W]` input of sample `n` and group `g`.
        func input(_ n: Int, _ g: Int) -> UnsafePointer<Float> { x + (n * s.channels + g * s.perGroup) * s.plane }
        /// Tile `tile`'s channels `channels` unfolded into `b`, its samples side by side.
        func unfoldTile(_ tile: Int, channels: Range<Int>? = nil, into b: UnsafeMutablePointer<Float>) {
            let (samples, g, rows) = parts(tile), span = rows.count * s.outWidth
            for (i, n) in samples.enumerated() {
                unfold(input(n, g), s, rows: rows, channels: channels, rowStride: samples.count * span, into: b + i * span)
            }
        }
        /// Rows `block` of the padded `m` rows of tile `tile`'s product with its unfolded matrix `b`, through the epilogue.
        func product(tile: Int, rows block: Range<Int>, _ b: UnsafePointer<Float>?, staging: UnsafeMutablePointer<Float>) {
            let (samples, g, rows) = parts(tile), span = rows.count * s.outWidth, width = samples.count * span
            /// Sample `n`'s output rows of the tile.
            func out(_ n: Int) -> UnsafeMutablePointer<Float> {
                y + (n * s.outputs + g * s.outPerGroup) * s.pixels + rows.lowerBound * s.outWidth
            }
            let (c, ldc) = staged ? (staging, width) : (out(samples.lowerBound) + block.lowerBound * s.pixels, s.pixels)
            let (b, ldb) = s.isPointwise ? (input(samples.lowerBound, g) + rows.lowerBound * s.outWidth, s.plane)
                                         : (b!, width)
            serialMatrixProduct(m: block.count, n: width, k: s.patch, ws.baseAddress! + (g * m + block.lowerBound) * s.patch,
                                lda: s.patch, b, ldb: ldb, beta: adds ? 1 : 0, c, ldc: ldc)
            let channels = block.clamped(to: 0..<s.outPerGroup)
            for (i, n) in samples.enumerated() {  // staged rows are stored from their tile, the others in place
                let line = out(n) + channels.lowerBound * s.pixels
                let (source, pitch) = staged ? (staging + (channels.lowerBound - block.lowerBound) * width + i * span, width)
                                             : (line, s.pixels)
                epilogue.store(source, channel: g * s.outPerGroup + channels.lowerBound, to: line, count: span,
                               rows: channels.count, valuePitch: pitch, linePitch: s.pixels)
            }
        }
        if split.blocks == 1 {
            parallelFor(split.tiles, scratch: (s.isPointwise ? 0 : tileSize) + staging) { tile, scratch in
                if !s.isPointwise { unfoldTile(tile, into: scratch) }
                product(tile: tile, rows: 0..<m, scratch, staging: scratch + (s.isPointwise ? 0 : tileSize))
            }
            return
        }
        let unfolded = s.isPointwise ? 0 : split.unfoldedTiles
        let buffer = allocateAlignedFloats(unfolded * tileSize)
        defer { buffer.deallocate() }
        for first in stride(from: 0, to: split.tiles, by: s.isPointwise ? split.tiles : unfolded) {
            let count = min(split.tiles - first, s.isPointwise ? split.tiles : unfolded)
            if !s.isPointwise {
                parallelFor(count * split.channelParts) { job in
                    let (t, part) = (job / split.channelParts, job % split.channelParts)
                    unfoldTile(first + t, channels: split.channels(part), into: buffer + t * tileSize)
                }
            }
            parallelFor(count * split.blocks, scratch: staging) { job, scratch in
                let (t, block) = (job / split.blocks, job % split.blocks)
                product(tile: first + t, rows: split.rows(block), buffer + t * tileSize, staging: scratch)
            }
        }
    }
}

extension ConvGeometry {
    /// Output rows per tile of a pointwise conv's forward product with `m`
    /// (padded) weight rows: the most whole rows whose product stays within
    /// `smallProductMACs`, or nil where those are fewer than `tileColumns`
    /// columns and not the whole sample. MobileNetV3's 1x1 convs of few
    /// channels at high resolution run 1.4-1.6x faster so (72 -> 24 at
    /// 128x128: 1.4 -> 0.85 ms, 16 -> 16 at 256x256: 1.6 -> 1.0 ms, 1 thread,
    /// with their input and output copies); 16 -> 64 at 256x256 is even.
    /// Narrower small products ran slower than the packed ones: ResNet-50's
    /// 276 -> 69 at 28x28 (70% fewer MACs), one 28-pixel row each, 1.4x.
    func smallProductRows(_ m: Int) -> Int? {
        guard isPointwise else { return nil }
        let rows = min(outHeight, smallProductMACs / max(1, m * patch * outWidth))
        return rows >= 1 && (rows == outHeight || rows * outWidth >= Self.tileColumns) ? rows : nil
    }

    /// Samples whose tiles are unfolded side by side into one product of the
    /// forward pass and the strided input gradient: where a sample is one
    /// tile (`blocks == 1`) of fewer than `chunkColumns` pixels, enough for
    /// that many columns (at most `chunkFloats` unfolded floats), else 1
    /// (and 1 for 1x1 convs that multiply the input itself). OpenBLAS runs
    /// `[512, 4608] x [4608, 256]` about twice as fast as sixteen
    /// `[512, 4608] x [4608, 16]` products (measured).
    var samplesPerProduct: Int {
        guard blocks == 1, !isPointwise, pixels < chunkColumns else { return 1 }
        return max(1, min(batch, (chunkColumns + pixels - 1) / max(1, pixels), chunkFloats / max(1, patch * pixels)))
    }
}

/// How `unfoldedConv2d` shares a conv's `tiles` (of output rows of each
/// chunk of `samplesPerProduct` samples and group) among the threads: the (padded) output channels `rows`
/// of each tile's product in `blocks` blocks, one where the tiles alone make
/// `jobs` jobs, else blocks of a multiple of 64 rows, enough for that where
/// there are rows enough. Each product costs OpenBLAS a pass packing its
/// whole `[K, columns]` input, so products of few rows run slower: ResNet-50's
/// 512 -> 2048 1x1 conv on 7x7 ran at 34 GMAC/s in 64-row products, 42 in
/// 128-row ones and 53 whole; DeepLabV3's 960 -> 256 on 32x32 at 56 in 64-row
/// products of 128 columns and 79 in 256 x 512 ones (1 thread, Xeon,
/// AVX-512). The jobs follow the machine's processors, not the thread count:
/// OpenBLAS rounds a product differently by its size (small products take
/// other kernels), so each output is computed by the same call whatever
/// the threads. When split, the tiles are unfolded first, about
/// `unfoldedFloats` at a time, in `channelParts` parts by input channel.
struct ConvSplit {
    /// Products (tiles of a chunk of `samplesPerProduct` samples), and the unfolded floats of each.
    let tiles: Int, tileSize: Int
    let blocks: Int, channelParts: Int, unfoldedTiles: Int
    private let rowCount: Int, blockRows: Int, perGroup: Int

    /// Jobs per conv the split aims for: 4 for each processor of the machine. Against 32 on the
    /// 2-core Xeon (batch 1, ms of the network): DeepLabV3-MobileNetV3 at 512 72-75 -> 63-69 on 2
    /// threads (its 1x1 convs 50-51 -> 43-44 on 1), ResNet-50 at 224 45.6-47.3 -> 42.6-44.8 on 2.
    private static let jobs = 4 * Threads.available
    /// Floats of unfolded tiles shared by the blocks at once (16 MB): more than L2, what L3 holds.
    static let unfoldedFloats = 1 << 22

    init(_ s: ConvGeometry, rows: Int) {
        let chunk = s.samplesPerProduct
        (tiles, tileSize, rowCount, perGroup) = ((s.batch + chunk - 1) / chunk * s.groups * s.blocks, chunk * s.tileSize,
                                                  rows, s.perGroup)
        blockRows = Self.rowsPerBlock(rows, tiles: tiles)
        blocks = (rows + blockRows - 1) / blockRows
        unfoldedTiles = min(tiles, max(1, Self.unfoldedFloats / max(1, tileSize)))
        channelParts = min(s.perGroup, (Self.jobs + unfoldedTiles - 1) / unfoldedTiles)
    }

    /// Rows per block of `rows` output channels of each of `tiles` products:
    /// all of them where the tiles alone make `jobs` jobs, else a multiple of 64.
    static func rowsPerBlock(_ rows: Int, tiles: Int) -> Int {
        let wanted = (jobs + tiles - 1) / tiles
        return tiles >= jobs ? rows : max(64, (rows / wanted + 63) / 64 * 64)
    }

    /// The padded output channels of block `block`.
    func rows(_ block: Int) -> Range<Int> { (block * blockRows)..<min(rowCount, (block + 1) * blockRows) }

    /// The input channels part `part` unfolds.
    func channels(_ part: Int) -> Range<Int> { (part * perGroup / channelParts)..<((part + 1) * perGroup / channelParts) }
}

/// `rows` of each of `groups` row-major `[rows, columns]` blocks of `matrix`,
/// each followed by zero rows up to `padded`.
private func paddedRows(_ matrix: [Float], groups: Int, rows: Int, to padded: Int, columns: Int) -> [Float] {
    var result = [Float](repeating: 0, count: groups * padded * columns)
    for g in 0..<groups {
        result.replaceSubrange((g * padded * columns)..<((g * padded + rows) * columns),
                               with: matrix[(g * rows * columns)..<((g + 1) * rows * columns)])
    }
    return result
}

/// Gradients of `conv2dForward` given `gradient = dL/dy` `[N, O, Hout, Wout]`:
/// with `X_g` the unfolded input of group `g` and `G_g` its rows of `dL/dy`,
/// `dL/dW_g = sum_tiles G_g X_g^T` (`conv2dWeightGradient`),
/// `dL/dX_g = W_g^T G_g` folded back onto `x` (`conv2dInputGradient`), and
/// `dL/db[o] = sum_{n, h, w} G[n, o, h, w]`.
/// - Returns: `dL/dx` shaped like `x` (nil unless `inputGradient`: a network input needs none),
///   `dL/dW` like `weight`, `dL/db` `[O]` if `hasBias`.
func conv2dBackward(_ x: Tensor, weight: Tensor, hasBias: Bool, _ conv: Conv2d, gradient: Tensor,
                    inputGradient: Bool = true) -> (input: Tensor?, weight: Tensor, bias: Tensor?)
{
    let s = ConvGeometry(input: x.shape, weight: weight.shape, output: gradient.shape, conv)
    return (inputGradient ? conv2dInputGradient(weight: weight, s, gradient: gradient) : nil,
            conv2dWeightGradient(x, s, gradient: gradient), hasBias ? channelSums(gradient) : nil)
}

/// `dL/dW_g = sum over tiles of G_g X_g^T`, a product per chunk of tiles
/// (`WeightGradientSplit`): a chunk's tiles are unfolded side by side into
/// one `[I/g*kh*kw, columns]` matrix and their rows of `dL/dy` copied side by
/// side, so each SGEMM sums over many pixels (ResNet-18's deepest layers at
/// 112x112 have 16 per sample) and adds into its `[O/g, I/g*kh*kw]` result
/// once per chunk rather than once per tile. The chunks are split into fixed
/// runs, each accumulated into its own partial sum (the first into `dL/dW`
/// itself), the partials added in run order; the columns of `dL/dW` are
/// computed in blocks of input channels, each unfolding only its channels.
/// The split depends on the geometry alone, so the result does not depend on
/// the thread count.
func conv2dWeightGradient(_ x: Tensor, _ s: ConvGeometry, gradient: Tensor) -> Tensor {
    if WinogradConvolution.suits(s) {
        let dw = x.data.withUnsafeBufferPointer { xs in
            gradient.data.withUnsafeBufferPointer { WinogradConvolution(s).weightGradient(xs.baseAddress!, gradient: $0.baseAddress!) }
        }
        return Tensor(shape: [s.outputs, s.perGroup, s.kh, s.kw], data: dw)
    }
    let split = WeightGradientSplit(s), size = s.outputs * s.patch, taps = s.kh * s.kw
    var dw = Tensor(zeros: [s.outputs, s.perGroup, s.kh, s.kw])
    var partials = [Float](repeating: 0, count: (split.runs - 1) * size)
    x.data.withUnsafeBufferPointer { xs in
        gradient.data.withUnsafeBufferPointer { gs in
            dw.data.withUnsafeMutableBufferPointer { dws in
                partials.withUnsafeMutableBufferPointer { partial in
                    parallelFor(split.runs * s.groups * split.parts, scratch: split.scratchSize) { job, scratch in
                        let (run, g, part) = (job / split.parts / s.groups, job / split.parts % s.groups, job % split.parts)
                        let channels = split.channels(part)
                        let sum = (run == 0 ? dws.baseAddress! : partial.baseAddress! + (run - 1) * size)
                            + g * s.outPerGroup * s.patch + channels.lowerBound * taps
                        for chunk in split.chunks(run) {
                            let units = split.units(chunk)
                            let columns = units.reduce(0) { $0 + s.rows($1 % s.blocks).count * s.outWidth }
                            let rowGradients = scratch + channels.count * taps * columns
                            var (a, lda, b, ldb) = (UnsafePointer(rowGradients), columns, UnsafePointer(scratch), columns)
                            var column = 0
                            for unit in units {
                                let (n, rows) = (unit / s.blocks, s.rows(unit % s.blocks)), span = rows.count * s.outWidth
                                let input = xs.baseAddress! + (n * s.channels + g * s.perGroup) * s.plane
                                    + channels.lowerBound * s.channelStride
                                let rowGradient = gs.baseAddress! + (n * s.outputs + g * s.outPerGroup) * s.pixels
                                    + rows.lowerBound * s.outWidth
                                if units.count == 1 {  // the tile's rows of dL/dy, and of x if pointwise, are read in place
                                    (a, lda) = (rowGradient, s.pixels)
                                    if s.isPointwise { (b, ldb) = (input + rows.lowerBound * s.outWidth, s.plane); break }
                                } else {
                                    for o in 0..<s.outPerGroup {
                                        (rowGradients + o * columns + column).update(from: rowGradient + o * s.pixels, count: span)
                                    }
                                }
                                unfold(input, s, rows: rows, channels: 0..<channels.count, rowStride: columns,
                                       into: scratch + column)
                                column += span
                            }
                            serialMatrixProduct(m: s.outPerGroup, n: channels.count * taps, k: columns, a, lda: lda,
                                                b, ldb: ldb, transposeB: true, beta: 1, sum, ldc: s.patch)
                        }
                    }
                }
                partials.withUnsafeBufferPointer { addPartialSums($0, into: dws.baseAddress!, rows: s.outputs, columns: s.patch) }
            }
        }
    }
    return dw
}

/// Partial sums of a weight gradient: at most this many, whatever the thread count.
let weightGradientPartials = 16

/// Adds the partial sums in `partials` (each `rows x columns`, one after
/// another) onto `total` in their order, parallel over rows: the same sums
/// for any thread count.
func addPartialSums(_ partials: UnsafeBufferPointer<Float>, into total: UnsafeMutablePointer<Float>, rows: Int,
                    columns: Int)
{
    let size = rows * columns
    guard size > 0, let base = partials.baseAddress else { return }
    parallelFor(rows) { r in
        for k in 0..<(partials.count / size) { addScaled(total + r * columns, base + k * size + r * columns, 1, columns) }
    }
}

/// How `conv2dWeightGradient` shares out a conv's `batch * blocks` tiles
/// (its units): chunks of `unitsPerChunk` consecutive tiles, each one
/// product over at least `chunkColumns` pixels where the batch has them and
/// at most `chunkFloats` unfolded floats; at most `weightGradientPartials` runs of consecutive
/// chunks, each with its own partial sum; and `parts` blocks of input
/// channels, enough for about `jobs` jobs where each keeps at least
/// `partColumns` columns of `dL/dW`. OpenBLAS runs `[512, 256] x [256, 4608]`
/// at twice the speed of sixteen `[512, 16] x [16, 4608]` products adding
/// into one result (measured). Depends on the geometry alone.
struct WeightGradientSplit {
    let units: Int, unitsPerChunk: Int, chunkCount: Int, runs: Int, parts: Int
    /// Floats of a job's scratch: its channels' unfolded chunk and the chunk's rows of `dL/dy`.
    let scratchSize: Int
    private let perGroup: Int

    private static let jobs = 8, partColumns = 512

    init(_ s: ConvGeometry) {
        let tileColumns = s.blockRows * s.outWidth
        (units, perGroup) = (s.batch * s.blocks, s.perGroup)
        unitsPerChunk = max(1, min(units, (chunkColumns + tileColumns - 1) / max(1, tileColumns),
                                   chunkFloats / max(1, s.patch * tileColumns)))
        chunkCount = (units + unitsPerChunk - 1) / unitsPerChunk
        runs = max(1, min(chunkCount, weightGradientPartials))
        let wanted = (Self.jobs + runs * s.groups - 1) / (runs * s.groups)
        parts = max(1, min(s.perGroup, wanted, s.patch / Self.partColumns))
        scratchSize = ((s.perGroup + parts - 1) / parts * s.kh * s.kw + s.outPerGroup) * unitsPerChunk * tileColumns
    }

    /// The chunks of run `run`.
    func chunks(_ run: Int) -> Range<Int> { (chunkCount * run / runs)..<(chunkCount * (run + 1) / runs) }

    /// The tiles of chunk `chunk`.
    func units(_ chunk: Int) -> Range<Int> { (chunk * unitsPerChunk)..<min(units, (chunk + 1) * unitsPerChunk) }

    /// The input channels of part `part`.
    func channels(_ part: Int) -> Range<Int> { (part * perGroup / parts)..<((part + 1) * perGroup / parts) }
}

/// `dL/dx`: the unfolded gradient `W_g^T G_g` of each tile, folded back
/// onto its sample (`fold`), parallel over chunks of samples and groups.
/// Where a sample is one tile of fewer than `chunkColumns` pixels (deep
/// layers), a chunk's samples are one product: their rows of `dL/dy` copied
/// side by side, their unfolded gradients computed side by side. With
/// stride 1 this is itself a convolution, of `dL/dy` with the kernels
/// transposed (`transposedKernels`) and padding `d*(k-1) - pad` on each
/// side, which `conv2dForward` computes without the unfolded gradient. As a
/// linear map of `gradient` this is the transposed convolution (`convTranspose2dForward`).
func conv2dInputGradient(weight: Tensor, _ s: ConvGeometry, gradient: Tensor) -> Tensor {
    let inputShape = [s.batch, s.channels, s.height, s.width]
    if s.conv.stride == (1, 1) {
        let (dy, dx) = (s.conv.dilation.0 * (s.kh - 1), s.conv.dilation.1 * (s.kw - 1)), p = s.conv.padding
        let transposed = Conv2d(padding: (dy - p.0, dx - p.1, dy - p.2, dx - p.3), dilation: s.conv.dilation,
                                groups: s.groups)
        return conv2dForward(gradient, weight: transposedKernels(weight, groups: s.groups), bias: nil, transposed,
                             outputShape: inputShape)
    }
    let chunk = s.samplesPerProduct
    let chunks = (s.batch + chunk - 1) / chunk, widest = chunk * s.blockRows * s.outWidth
    var dx = Tensor(zeros: inputShape)
    weight.data.withUnsafeBufferPointer { ws in
        gradient.data.withUnsafeBufferPointer { gs in
            dx.data.withUnsafeMutableBufferPointer { dxs in
                parallelFor(chunks * s.groups, scratch: (s.patch + (chunk > 1 ? s.outPerGroup : 0)) * widest) { job, tile in
                    let (samples, g) = ((job / s.groups * chunk)..<min(s.batch, (job / s.groups + 1) * chunk), job % s.groups)
                    let weights = ws.baseAddress! + g * s.outPerGroup * s.patch
                    /// Sample `n`'s rows of `dL/dy` of group `g`.
                    func rowGradient(_ n: Int) -> UnsafePointer<Float> {
                        gs.baseAddress! + (n * s.outputs + g * s.outPerGroup) * s.pixels
                    }
                    func input(_ n: Int) -> UnsafeMutablePointer<Float> {
                        dxs.baseAddress! + (n * s.channels + g * s.perGroup) * s.plane
                    }
                    if chunk == 1 {
                        for n in samples {
                            for block in 0..<s.blocks {
                                let rows = s.rows(block), span = rows.count * s.outWidth
                                serialMatrixProduct(m: s.patch, n: span, k: s.outPerGroup, weights, lda: s.patch,
                                                    transposeA: true, rowGradient(n) + rows.lowerBound * s.outWidth,
                                                    ldb: s.pixels, tile, ldc: span)
                                fold(tile, s, rows: rows, into: input(n))
                            }
                        }
                        return
                    }
                    let columns = samples.count * s.pixels, rowGradients = tile + s.patch * columns
                    for (i, n) in samples.enumerated() {
                        for o in 0..<s.outPerGroup {
                            (rowGradients + o * columns + i * s.pixels).update(from: rowGradient(n) + o * s.pixels,
                                                                               count: s.pixels)
                        }
                    }
                    serialMatrixProduct(m: s.patch, n: columns, k: s.outPerGroup, weights, lda: s.patch, transposeA: true,
                                        rowGradients, ldb: columns, tile, ldc: columns)
                    for (i, n) in samples.enumerated() {
                        fold(tile + i * s.pixels, s, rows: 0..<s.outHeight, rowStride: columns, into: input(n))
                    }
                }
            }
        }
    }
    return dx
}

/// Multiply-adds up to which OpenBLAS (0.3.21, Skylake-X and Cooper Lake
/// kernels) runs a product with its small-matrix kernels, which read both
/// matrices in place and write `C` directly (with `beta` 0 without first
/// clearing it), instead of packing them: `sgemm_small_kernel_permit`'s bound.
private let smallProductMACs = 1_000_000

/// Pixels a backward product over a chunk of tiles aims for, and the most
/// floats it unfolds (`WeightGradientSplit`, `conv2dInputGradient`).
private let chunkColumns = 512, chunkFloats = 1 << 21

/// The kernels of the transposed convolution, `[I, O/g, kh, kw]`:
/// `W'[g*I/g + j, o, p, q] = W[g*O/g + o, j, kh-1-p, kw-1-q]` (every kernel
/// axis flipped alike for a `[O, I/g, kd, kh, kw]` weight).
func transposedKernels(_ weight: Tensor, groups: Int) -> Tensor {
    let (outputs, perGroup, kernel) = (weight.shape[0], weight.shape[1], Array(weight.shape.dropFirst(2)))
    let outPerGroup = outputs / groups, taps = kernel.reduce(1, *)
    return Tensor(shape: [perGroup * groups, outPerGroup] + kernel) { t in
        weight.data.withUnsafeBufferPointer { w in
            for g in 0..<groups {
                for o in 0..<outPerGroup {
                    for j in 0..<perGroup {
                        let source = w.baseAddress! + ((g * outPerGroup + o) * perGroup + j) * taps + taps - 1
                        let target = t.baseAddress! + ((g * perGroup + j) * outPerGroup + o) * taps
                        for k in 0..<taps { target[k] = source[-k] }
                    }
                }
            }
        }
    }
}

/// `y[n, c, ...] += bias[c]` for NCHW (or `[N, C]`) tensors.
func addChannelBias(_ y: inout Tensor, _ bias: [Float]) {
    let batch = y.shape[0], channels = y.shape[1], inner = y.count / max(batch * channels, 1)
    y.data.withUnsafeMutableBufferPointer { ys in
        parallelFor(batch * channels) { plane in
            let b = bias[plane % channels], base = ys.baseAddress! + plane * inner
            for k in 0..<inner { base[k] += b }
        }
    }
}

/// The adjoint of `addChannelBias`: `db[c] = sum_{n, ...} g[n, c, ...]` (in double precision).
func channelSums(_ g: Tensor) -> Tensor {
    let batch = g.shape[0], channels = g.shape[1], inner = g.count / max(batch * channels, 1)
    var db = Tensor(zeros: [channels])
    g.data.withUnsafeBufferPointer { gs in
        db.data.withUnsafeMutableBufferPointer { dbs in
            parallelFor(channels) { c in
                var total = 0.0
                for n in 0..<batch { total += sum(gs.baseAddress! + (n * channels + c) * inner, inner) }
                dbs[c] = Float(total)
            }
        }
    }
    return db
}

/// `y = x W^T + b` for `x [N, I]`, `W [O, I]`.
func linearForward(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    let (batch, inputs, outputs) = (x.shape[0], x.shape[1], weight.shape[0])
    var y = Tensor(zeros: [batch, outputs])
    x.data.withUnsafeBufferPointer { xs in
        weight.data.withUnsafeBufferPointer { ws in
            y.data.withUnsafeMutableBufferPointer { ys in
                matrixProduct(m: batch, n: outputs, k: inputs, xs.baseAddress!, lda: inputs, ws.baseAddress!, ldb: inputs,
                              transposeB: true, ys.baseAddress!, ldc: outputs)
            }
        }
    }
    if let bias { addChannelBias(&y, bias.data) }
    return y
}

/// Gradients of `linearForward` given `gradient = dL/dy` `[N, O]`:
/// `dL/dx = G W` `[N, I]`, `dL/dW = G^T x` `[O, I]`, `dL/db = sum_n G[n]` `[O]`.
func linearBackward(_ x: Tensor, weight: Tensor, hasBias: Bool,
                    gradient: Tensor) -> (input: Tensor, weight: Tensor, bias: Tensor?)
{
    let (batch, inputs, outputs) = (x.shape[0], x.shape[1], weight.shape[0])
    var dx = Tensor(zeros: x.shape), dw = Tensor(zeros: weight.shape)
    x.data.withUnsafeBufferPointer { xs in
        weight.data.withUnsafeBufferPointer { ws in
            gradient.data.withUnsafeBufferPointer { gs in
                dx.data.withUnsafeMutableBufferPointer { dxs in
                    matrixProduct(m: batch, n: inputs, k: outputs, gs.baseAddress!, lda: outputs, ws.baseAddress!,
                                  ldb: inputs, dxs.baseAddress!, ldc: inputs)
                }
                dw.data.withUnsafeMutableBufferPointer { dws in
                    addMatrixProduct(m: outputs, n: inputs, k: batch, gs.baseAddress!, lda: outputs, transposeA: true,
                                     xs.baseAddress!, ldb: inputs, dws.baseAddress!, ldc: inputs)
                }
            }
        }
    }
    return (dx, dw, hasBias ? channelSums(gradient) : nil)
}
