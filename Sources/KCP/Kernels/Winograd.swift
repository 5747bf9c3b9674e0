/// 3x3 convolutions of stride 1 and dilation 1 by Winograd's minimal
/// filtering F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional
/// Neural Networks", CVPR 2016). Each 4x4 tile of a channel's output is
/// `Y = A^T [sum_c (G g_c G^T) ⊙ (B^T d_c B)] A`, with `d_c` the 6x6 input
/// tile of channel c and `g_c` its 3x3 kernel. At each of the 36 points
/// `ξ` of the transformed tile, the sum over a group's channels for `P`
/// tiles is one product `M_ξ [O/g, P] = U_ξ [O/g, C/g] V_ξ [C/g, P]`:
/// 36 multiply-adds per tile and channel pair where the unfolded product
/// does 144, 4x fewer, for transforms of a few dozen adds per tile and
/// channel (`KCPVector.winogradInputTiles` and the others, 16 tiles at a
/// time). With the points 0, 1, -1, 2, -1/2 and ∞, in float the result is
/// off by about 2e-6 of the output's scale over 256 channels, where a
/// plain float sum is off by 1e-7 and the usual points 0, ±1, ±2 by 5e-6.
///
/// The work is done in chunks of bands (a band is one row of tiles of one
/// sample), in three passes per chunk: the input transform by input
/// channel, the 36 products by point, and the output transform (with the
/// conv's epilogue) by output channel. Every product and every transform is
/// the same call whatever the thread count, so the result does not depend
/// on it.
struct WinogradConvolution {
    let s: ConvGeometry, slices: WinogradSlices
    /// Rows and columns of 4x4 output tiles per sample, and bands per chunk.
    let tileRows: Int, tileColumns: Int, bandsPerChunk: Int

    /// Output tile side, input tile side, points of a transformed tile, tiles per transform call.
    static let m = 4, t = 6, points = 36, lanes = 16
    /// Floats of transformed inputs and products one chunk aims for (2 MB).
    private static let chunkFloats = 1 << 19

    /// The conv of geometry `s` (one slice's, for a volumetric conv of depth `slices`), its chunks
    /// shared out to `workers` threads (`run`).
    ///
    /// At least 8 chunks where each keeps 64 tiles or more, so that whole chunks can be shared out
    /// (ResNet-20's 64 channels on 8x8 and the 64-pixel U-Net 4-6% faster on 2 threads); narrower
    /// chunks make the products too narrow (ResNet-50's 28x28 at batch 1: 5% slower). Where that
    /// leaves a few chunks that the workers cannot share evenly, they are fewer and wider, if they
    /// fit, as many as a multiple of the workers: ResNet-50's 64 channels on 56x56 at batch 1 in 2
    /// chunks of 7 bands, not 3 of 5, 5 and 4, one of which a thread of 2 ran alone, 0.41 -> 0.30 ms
    /// on 2 threads, 0.61 -> 0.58 on 1 (AMD EPYC Zen 5, AVX-512, with batchnorm and relu); the
    /// network's kxk convs of 64 channels or fewer 2.4-2.6 -> 1.9-2.2 ms on 2 threads. The chunks
    /// decide the products' widths, and OpenBLAS's results depend on them in the last bits: the
    /// workers are the machine's processors (`Threads.available`), not the threads a caller sets,
    /// so that the result does not depend on those.
    init(_ s: ConvGeometry, slices: WinogradSlices = .plane, workers: Int = 1) {
        (self.s, self.slices) = (s, slices)
        (tileRows, tileColumns) = ((s.outHeight + Self.m - 1) / Self.m, (s.outWidth + Self.m - 1) / Self.m)
        let floatsPerBand = Self.points * (slices.count * s.channels + slices.outputs * s.outputs) * tileColumns
        let (bands, most) = (s.batch * tileRows, max(1, Self.chunkFloats / max(1, floatsPerBand)))
        let spread = max((bands + 7) / 8, (64 + tileColumns - 1) / tileColumns)
        var perChunk = max(1, min(most, spread))
        /// Chunks of `width` bands.
        func count(_ width: Int) -> Int { (bands + width - 1) / width }
        if workers > 1 && (workers + 1..<4 * workers).contains(count(perChunk)) {
            var target = count(perChunk) / workers * workers
            while target >= workers && count(perChunk) % workers != 0 {
                let wider = (bands + target - 1) / target
                if wider > most { break }
                if count(wider) % workers == 0 { perChunk = wider }
                target -= workers
            }
        }
        bandsPerChunk = perChunk
    }

    /// Whether a conv runs this way: 3x3, stride 1, dilation 1; input and output channels per group
    /// of harmonic mean `channelBound` or more; and 16 or more tiles, and one for every
    /// `kernelsPerTile` kernels, which the products read transformed (4x their size; transformed once
    /// for the weights' values, `winogradConvolution`). Against the direct and unfolded paths, one
    /// conv at 1 thread (AMD EPYC Zen 4, AVX-512, kernels transformed per call): 0.42-0.62x the time
    /// for 64 or 128 channels from 8x8 (batch 64) to 64x128 (batch 1); 0.64-0.84x for 32 channels on
    /// 32x32 (batch 16), 64x128 and 256x256, 40 on 64x64, 48 on 16x16 (batch 64), and 96 -> 32 on
    /// 256x256; 0.83x for 128 channels on 14x14 (16 tiles), 0.74x for 256 on 14x14 (batch 8), 0.96x
    /// with batch 2 (32 tiles), 0.77x on 7x7 (batch 16). Left out: 1.0-1.3x for 32 channels on 16x16
    /// in batches of 8 and 64, 0.92-1.08x for 24 channels, 1.33x for 16. A volumetric conv counts the
    /// input channels of all its depth taps, and the tiles of all its output slices.
    static func suits(_ s: ConvGeometry, slices: WinogradSlices = .plane) -> Bool {
        let tiles = s.batch * slices.outputs * ((s.outHeight + 3) / 4) * ((s.outWidth + 3) / 4)
        let inputs = slices.taps * s.perGroup
        return s.kh == 3 && s.kw == 3 && s.conv.stride == (1, 1) && s.conv.dilation == (1, 1)
            && 2 * inputs * s.outPerGroup >= channelBound(s) * (inputs + s.outPerGroup)
            && tiles >= max(16, inputs * s.outPerGroup / kernelsPerTile(s, slices: slices))
    }

    /// The harmonic mean of the input and output channels per group, `2IO / (I + O)`, from which
    /// Winograd pays on the active instruction set, by the length of the output rows:
    ///
    /// | rows | AVX-512 | AVX2 |
    /// |---|---:|---:|
    /// | 32 pixels or more | 28 | 20 |
    /// | 16 to 31 | 48 | 28 |
    /// | shorter than a pixel vector | 20 | 20 |
    ///
    /// Its products take `2.25 I O` MACs per output pixel against the direct kernel's `9 I O`; its
    /// input transforms are shared by the `O` outputs, its output transforms by the `I` inputs, so each
    /// costs per product as the inverse of the other count, and Winograd pays where `1/I + 1/O` is
    /// small. On longer rows the per-row work is spread over more tiles; on rows shorter than a pixel
    /// vector the direct kernel's lanes idle or its blocks run through the rows; the AVX2 path's
    /// direct kernel holds a quarter of the AVX-512 one's pixels (6 x 16 in 12 ymm registers). AMD EPYC
    /// Zen 5, 1 thread (and 2 where said), with batchnorm and relu, direct (or the channel-vector
    /// kernel past 64 outputs) -> Winograd, ms:
    /// - Rows of 32 or more, AVX-512, on 256x256: 20 -> 64 channels 6.9-7.4 -> 5.7-5.9, 66 -> 22 (the
    ///   512-pixel U-Net's decoder, pruned) 9.5-10.2 -> 7.7-8.6; even for 64 -> 20, 96 -> 16, 40 -> 24
    ///   and 16 -> 48, and 24 -> 32 on 64x64; the direct kernel ahead for 16 -> 32 (2.8-2.9 against
    ///   3.9-4.1), 12 -> 64, 24 -> 24, 22 -> 22 and 128 -> 11, and on 512x512 for 48 -> 16 (22.3-22.6
    ///   against 25.5) and 33 -> 11. AVX2: 66 -> 22 16.7-17.0 -> 12.2-12.9, 20 -> 64 13.0-13.1 ->
    ///   8.2-8.6, 64 -> 20 15.5-15.8 -> 11.5-12.1, 40 -> 24 10.0 -> 7.4-7.7, 24 -> 24 5.8-6.3 ->
    ///   4.7-5.0, 16 -> 32 5.7 -> 4.5-4.9, 48 -> 16 on 512x512 40-41 -> 30; even at 16 and below for
    ///   12 -> 24, 8 -> 64 and 16 -> 16 on 512x512 (12.6-12.9 -> 12.0); the direct kernel ahead for
    ///   16 -> 16 on 32x32 at batch 64 (3.0 against 3.5-3.8) and 12 -> 12 on 512x512 (6.5-6.8 against
    ///   8.5-8.8).
    /// - Rows of 16 to 31, at batch 16 unless said, AVX-512: 32 -> 128 on 28x28 at batch 1 0.28 ->
    ///   0.17-0.21 (2 threads 0.15-0.17 -> 0.10); even for 128 -> 32 there (2 threads 0.17-0.21 ->
    ///   0.14) and 24 -> 24; for 32 -> 32 Winograd ahead on 28x28 (1.14 -> 1.01-1.03), the direct
    ///   kernel on 16x16 (0.34 against 0.38). AVX2: 32 -> 32 on 28x28 2.15-2.20 -> 1.35-1.39, on 16x16
    ///   0.66 -> 0.52, 24 -> 24 on 28x28 1.16 -> 0.93-0.96; even for 24 -> 24 on 16x16 and 20 -> 20 on
    ///   28x28 (1 thread 0.92-0.95 -> 0.75, 2 threads 0.49-0.50 -> 0.51-0.54); the direct kernel
    ///   ahead for 16 -> 16 and, on 2 threads, 16 -> 32 on 16x16 (0.20-0.22 against 0.47-0.50).
    /// - Rows shorter than a pixel vector, both sets, at batch 64 on 8x8: 0.86x the time for 22 -> 44
    ///   channels, 0.8x for 32, 0.69x for 44, 0.94x for 24, even for 16; 0.75x for 40 on 14x14 at batch
    ///   8, 0.71x for 32 on 4x4; the AVX2 path 0.58-0.78x for the same convs; 64 -> 16 on 8x8 0.97-1.28
    ///   -> 0.73 (2 threads 1.16-1.36 -> 0.35-0.52), 16 -> 64 0.45-0.61 -> 0.47-0.50 (2 threads
    ///   0.60-0.69 -> 0.24).
    ///
    /// Both counts had to reach the bound before (32 on rows of 32 or more), on both sets, which left
    /// the convs of unequal counts that pay to the other paths.
    static func channelBound(_ s: ConvGeometry) -> Int {
        let avx512 = InstructionSet.active == .avx512
        if DirectConvolution.shortRows(s) { return 20 }
        return s.outWidth >= 32 ? (avx512 ? 28 : 20) : (avx512 ? 48 : 28)
    }

    /// The kernels that one tile may pay the reading of, which depends on the path that would run the
    /// conv otherwise. The channel-vector kernel (AVX-512; `ChannelVectorConvolution.pays`) reads each
    /// kernel's 9 taps once for many pixels, and stays ahead where the transformed kernels outgrow the
    /// caches: one tile per 2048 kernels (AMD EPYC Zen 5, AVX-512, 1 thread, with batchnorm and relu:
    /// 256 channels on 14x14, 16 tiles, 1.5-1.6 ms against Winograd's 2.0-3.5; 512 on 7x7 in a batch
    /// of 16, 64 tiles, 20-24 against 35-39; even for 256 channels on 14x14 in batches of 2 and 8;
    /// Winograd 0.4-0.8x for 128 channels on 28x28 and 64 on 56x56). The direct and unfolded paths, one
    /// tile per 8192 (AMD EPYC Zen 3, AVX2): 0.62-0.66x for 256 channels on 14x14 (16 tiles), even for
    /// 512 on 7x7 in a batch of 8 (32 tiles); left out, 1.17x in a batch of 4 and 1.6x alone (4
    /// tiles), where reading the transformed kernels outweighs the products. So does the AVX2
    /// path's channel-vector kernel, whose tiles of one vector read each pixel four times (Zen 4:
    /// 256 channels on 14x14 3.04-3.05 ms in Winograd against 3.93).
    static func kernelsPerTile(_ s: ConvGeometry, slices: WinogradSlices) -> Int {
        slices.taps == 1 && slices.outputs == 1 && InstructionSet.active == .avx512 && ChannelVectorConvolution.pays(s)
            ? 2048 : 8192
    }

    var bands: Int { s.batch * tileRows }
    /// Chunks of `bandsPerChunk` bands (the last may have fewer).
    var chunks: Int { (bands + bandsPerChunk - 1) / bandsPerChunk }
    /// Floats of a line of a chunk's tiles (one value per tile, the last 16 read past the tiles).
    private var tilePitch: Int { bandsPerChunk * tileColumns + Self.lanes }

    /// Kernels of the conv: `O * kd * C/g` (`kd` depth taps).
    var kernels: Int { s.outputs * slices.taps * s.perGroup }

    /// `U [36, kernels]`: `U[ξ][κ] = (G g_κ G^T)[ξ]` for each kernel `κ = (o * kd + t) * C/g + c` of
    /// `weight [O, kd, C/g, 3, 3]`, in blocks of 16 kernels, each block's taps transposed to `[9, 16]` first.
    func transformedKernels(_ weight: [Float]) -> [Float] {
        let (kernels, lanes) = (kernels, Self.lanes)
        return [Float](unsafeUninitializedCapacity: Self.points * kernels) { us, initialized in
            weight.withUnsafeBufferPointer { ws in
                parallelFor((kernels + lanes - 1) / lanes, scratch: 9 * lanes) { job, taps in
                    let first = job * lanes, count = min(lanes, kernels - first)
                    for k in 0..<count {
                        for tap in 0..<9 { taps[tap * lanes + k] = ws[(first + k) * 9 + tap] }
                    }
                    winogradKernelTiles(taps, tapPitch: lanes, count: count, into: us.baseAddress! + first,
                                        pointPitch: kernels)
                }
            }
            initialized = Self.points * kernels
        }
    }

    /// The conv of `x` with kernels transformed by `transformedKernels`, through `epilogue`, into `y`.
    /// Transformed inputs are laid out `[g][ξ][slice][C/g][tiles]`, so that the input slices an output
    /// slice reads are one block of rows `(t, c)`, as its stacked kernels' columns are.
    ///
    /// With a chunk or more per thread, each worker runs whole chunks, their three passes in its own
    /// scratch, so that a chunk's transformed inputs and products stay in its core's cache (U-Net
    /// 512's 32-channel convs on 256x256, one band per chunk, ran 1.24-1.3x faster on 2 threads than
    /// on 1 with the passes shared, 1.7-1.8x so). Even where the chunks do not share out evenly this
    /// is ahead: with passes shared, each moved its results to the other core, and 2 threads ran
    /// slower than 1 (AMD EPYC Zen 5, AVX-512, with batchnorm and relu, 1 -> 2 threads: 64 channels
    /// on 56x56 at batch 1, 3 chunks, 0.62 -> 0.73-0.76 ms shared, 0.48-0.60 whole; 128 on 14x14 at
    /// batch 8, 2 chunks, 1.6-1.7 -> 1.35-1.54 shared, 0.95-1.03 whole; ResNet-50 at batch 1, its kxk
    /// convs of 64 channels or fewer, 3.20 -> 2.71 ms at 2 threads). With fewer chunks than threads,
    /// the chunks run in turn, each pass shared.
    func run(_ x: UnsafePointer<Float>, kernels u: UnsafePointer<Float>, epilogue: ConvEpilogue,
             into y: UnsafeMutablePointer<Float>)
    {
        let (points, groups, kernels, depth) = (Self.points, s.groups, kernels, slices)
        let (inputs, outputs) = (s.perGroup, s.outPerGroup), stacked = depth.taps * s.perGroup
        // The last run of the last tiles reads 16 lanes.
        let productFloats = groups * points * depth.outputs * outputs * bandsPerChunk * tileColumns + Self.lanes
        /// Chunk `index`: its inputs transformed into `v`, its products into `products`, its outputs
        /// transformed into `y`; each pass in parallel, or all in turn on this thread in `lines` where given.
        func compute(chunk index: Int, v: UnsafeMutablePointer<Float>, products: UnsafeMutablePointer<Float>,
                     lines: UnsafeMutablePointer<Float>?)
        {
            let chunk = (index * bandsPerChunk)..<min(bands, (index + 1) * bandsPerChunk)
            let width = chunk.count * tileColumns
            transformInputs(x, bands: chunk, into: v, lines: lines)
            each(groups * points * depth.outputs, lines: lines) { job, _ in
                let (g, point, z) = (job / depth.outputs / points, job / depth.outputs % points, job % depth.outputs)
                let taps = depth.taps(z), out = products + ((g * points + point) * depth.outputs + z) * outputs * width
                guard !taps.isEmpty else { return out.update(repeating: 0, count: outputs * width) }
                let firstSlice = z - depth.front + taps.lowerBound
                serialMatrixProduct(m: outputs, n: width, k: taps.count * inputs,
                                    u + point * kernels + g * outputs * stacked + taps.lowerBound * inputs, lda: stacked,
                                    v + ((g * points + point) * depth.count + firstSlice) * inputs * width, ldb: width,
                                    out, ldc: width)
            }
            each(groups * depth.outputs * outputs, lines: lines) { job, lines in
                let (g, z, o) = (job / outputs / depth.outputs, job / outputs % depth.outputs, job % outputs)
                transformOutput(products + ((g * points * depth.outputs + z) * outputs + o) * width,
                                pointPitch: depth.outputs * outputs * width, channel: g * outputs + o, slice: z,
                                bands: chunk, epilogue: epilogue, lines: lines, into: y)
            }
        }
        if Threads.count > 1 && chunks >= Threads.count {
            parallelFor(chunks, scratch: transformedInputFloats + productFloats + lineFloats) { index, scratch in
                compute(chunk: index, v: scratch, products: scratch + transformedInputFloats,
                        lines: scratch + transformedInputFloats + productFloats)
            }
            return
        }
        let v = allocateAlignedFloats(transformedInputFloats)
        let products = allocateAlignedFloats(productFloats)
        defer { v.deallocate(); products.deallocate() }
        for index in 0..<chunks { compute(chunk: index, v: v, products: products, lines: nil) }
    }

    /// Floats of the lines a transform gathers its tiles into (the input's `6 x 6` per tile, the larger).
    private var lineFloats: Int { Self.t * Self.t * tilePitch }

    /// `body(i, lines)` for `i` in `0..<count`: in parallel, each worker with `lineFloats` of its own
    /// `lines`, or in turn on this thread in `lines` where given.
    private func each(_ count: Int, lines: UnsafeMutablePointer<Float>?, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
        guard let lines else { return parallelFor(count, scratch: lineFloats, body) }
        for i in 0..<count { body(i, lines) }
    }

    /// The plane conv's weight gradient `[O, C/g, 3, 3]` given its output's gradient `dy`, the adjoint
    /// of `run`: `dL/dg_κ = G^T [sum_p (A dY_p A^T) ⊙ V_p] G`, where the sum over a group's tiles at
    /// each point is one product `[O/g, P] x [P, C/g]` per chunk, added in chunk order.
    func weightGradient(_ x: UnsafePointer<Float>, gradient dy: UnsafePointer<Float>) -> [Float] {
        precondition(slices.taps == 1 && slices.count == 1, "the weight gradient is a plane conv's")
        let (points, groups, lanes, kernels) = (Self.points, s.groups, Self.lanes, kernels)
        let (inputs, outputs) = (s.perGroup, s.outPerGroup), widest = bandsPerChunk * tileColumns
        let v = allocateAlignedFloats(transformedInputFloats)
        let transformed = allocateAlignedFloats(groups * points * outputs * widest)
        let sums = allocateAlignedFloats(points * kernels + lanes)  // M[ξ][κ]; 16 lanes read
        defer { v.deallocate(); transformed.deallocate(); sums.deallocate() }
        for first in stride(from: 0, to: bands, by: bandsPerChunk) {
            let chunk = first..<min(bands, first + bandsPerChunk), width = chunk.count * tileColumns
            transformInputs(x, bands: chunk, into: v)
            parallelFor(groups * outputs, scratch: Self.m * Self.m * tilePitch) { job, lines in
                let (g, o) = (job / outputs, job % outputs)
                transformGradient(dy, channel: g * outputs + o, bands: chunk, lines: lines,
                                  into: transformed + (g * points * outputs + o) * width, pointPitch: outputs * width)
            }
            parallelFor(groups * points) { job in
                let (g, point) = (job / points, job % points)
                serialMatrixProduct(m: outputs, n: inputs, k: width,
                                    transformed + (g * points + point) * outputs * width, lda: width,
                                    v + (g * points + point) * inputs * width, ldb: width, transposeB: true,
                                    beta: first == 0 ? 0 : 1, sums + point * kernels + g * outputs * inputs, ldc: inputs)
            }
        }
        return [Float](unsafeUninitializedCapacity: 9 * kernels) { dw, initialized in
            parallelFor((kernels + lanes - 1) / lanes, scratch: 9 * lanes) { job, taps in
                let first = job * lanes
                winogradKernelGradients(sums + first, pointPitch: kernels, into: taps)
                for k in 0..<min(lanes, kernels - first) {
                    for tap in 0..<9 { dw[(first + k) * 9 + tap] = taps[tap * lanes + k] }
                }
            }
            initialized = 9 * kernels
        }
    }

    /// Floats of a chunk's transformed inputs.
    private var transformedInputFloats: Int { s.groups * Self.points * slices.count * s.perGroup * bandsPerChunk * tileColumns }

    /// `V` of every input channel and depth slice of `x` for the tiles of `bands`, laid out
    /// `[g][ξ][slice][C/g][tiles]` in `v`, in parallel by channel and slice (in turn in `lines` where given).
    private func transformInputs(_ x: UnsafePointer<Float>, bands: Range<Int>, into v: UnsafeMutablePointer<Float>,
                                 lines: UnsafeMutablePointer<Float>? = nil)
    {
        let (points, inputs, depth, width) = (Self.points, s.perGroup, slices.count, bands.count * tileColumns)
        each(s.groups * depth * inputs, lines: lines) { job, lines in
            let (g, slice, c) = (job / inputs / depth, job / inputs % depth, job % inputs)
            transformInput(x, channel: g * inputs + c, slice: slice, bands: bands, lines: lines,
                           into: v + ((g * points * depth + slice) * inputs + c) * width, pointPitch: depth * inputs * width)
        }
    }

    /// `V[ξ][p] = (B^T d_p B)[ξ]` of input channel `channel`, depth slice `slice`, for each tile `p` of `bands`, at
    /// `into + ξ * pointPitch + p`: the tiles' input `d[i][j][p]` gathered into zero-padded `lines`
    /// (the columns `4k + j - left` of input row `4 * row + i - top` for tile `k` of a band's row),
    /// then transformed 16 tiles at a time, across bands.
    private func transformInput(_ x: UnsafePointer<Float>, channel: Int, slice: Int, bands: Range<Int>,
                                lines: UnsafeMutablePointer<Float>, into: UnsafeMutablePointer<Float>, pointPitch: Int)
    {
        let (m, t, lanes, pitch) = (Self.m, Self.t, Self.lanes, tilePitch), (top, left) = (s.conv.padding.0, s.conv.padding.1)
        let width = bands.count * tileColumns
        lines.update(repeating: 0, count: t * t * pitch)
        for (index, band) in bands.enumerated() {
            let (n, row) = (band / tileRows, band % tileRows)
            let plane = x + (n * s.channels + channel) * s.channelStride + slice * s.plane
            for i in 0..<t where (0..<s.height).contains(row * m + i - top) {
                let source = plane + (row * m + i - top) * s.width, line = lines + i * t * pitch + index * tileColumns
                /// Tap `j`'s value for tile `k`, or 0 in the padding.
                func value(_ k: Int, _ j: Int) -> Float {
                    (0..<s.width).contains(k * m + j - left) ? source[k * m + j - left] : 0
                }
                // Taps 0 to 3 of the tiles whose four columns are all inside, by splitting the row by column mod 4,
                // then the edges; taps 4 and 5 are taps 0 and 1 of the next tile.
                let whole = ((left + m - 1) / m)..<max((left + m - 1) / m, min(tileColumns, (left + s.width) / m))
                splitPhases(source + whole.lowerBound * m - left, count: whole.count, into: line + whole.lowerBound,
                            phasePitch: pitch)
                for k in 0..<tileColumns where !whole.contains(k) {
                    for j in 0..<m { line[j * pitch + k] = value(k, j) }
                }
                for j in m..<t {
                    (line + j * pitch).update(from: line + (j - m) * pitch + 1, count: tileColumns - 1)
                    line[j * pitch + tileColumns - 1] = value(tileColumns - 1, j)
                }
            }
        }
        for first in stride(from: 0, to: width, by: lanes) {
            winogradInputTiles(lines + first, linePitch: t * pitch, tapPitch: pitch, count: min(lanes, width - first),
                               into: into + first, pointPitch: pointPitch)
        }
    }

    /// `(A dY_p A^T)[ξ]` of output channel `channel` for each tile `p` of `bands`, at
    /// `into + ξ * pointPitch + p`: the tiles' rows of `dy` split by column mod 4 into zero-padded
    /// `lines` (nothing past the output's edge), then transformed 16 tiles at a time, across bands.
    private func transformGradient(_ dy: UnsafePointer<Float>, channel: Int, bands: Range<Int>,
                                   lines: UnsafeMutablePointer<Float>, into: UnsafeMutablePointer<Float>, pointPitch: Int)
    {
        let (m, lanes, pitch) = (Self.m, Self.lanes, tilePitch), width = bands.count * tileColumns
        lines.update(repeating: 0, count: m * m * pitch)
        for (index, band) in bands.enumerated() {
            let (n, row) = (band / tileRows, band % tileRows)
            for r in 0..<min(m, s.outHeight - row * m) {
                let source = dy + (n * s.outputs + channel) * s.outputChannelStride + (row * m + r) * s.outWidth
                let line = lines + r * m * pitch + index * tileColumns
                splitPhases(source, count: s.outWidth / m, into: line, phasePitch: pitch)
                for ox in (s.outWidth / m * m)..<s.outWidth { line[ox % m * pitch + ox / m] = source[ox] }
            }
        }
        for first in stride(from: 0, to: width, by: lanes) {
            winogradGradientTiles(lines + first, linePitch: m * pitch, phasePitch: pitch, count: min(lanes, width - first),
                                  into: into + first, pointPitch: pointPitch)
        }
    }

    /// Output channel `channel`'s tiles of `bands` in depth slice `slice` from its products `M[ξ][p]` (at
    /// `products + ξ * pointPitch + p`): `Y = A^T M A` 16 tiles at a time, across bands, into
    /// `lines` (`Y[r][c][p]`), interleaved into `y`'s rows, then the epilogue.
    private func transformOutput(_ products: UnsafePointer<Float>, pointPitch: Int, channel: Int, slice: Int,
                                 bands: Range<Int>,
                                 epilogue: ConvEpilogue, lines: UnsafeMutablePointer<Float>,
                                 into y: UnsafeMutablePointer<Float>)
    {
        let (m, lanes, pitch) = (Self.m, Self.lanes, tilePitch), width = bands.count * tileColumns
        for first in stride(from: 0, to: width, by: lanes) {
            winogradOutputTiles(products + first, pointPitch: pointPitch, into: lines + first, linePitch: m * pitch,
                                phasePitch: pitch)
        }
        for (index, band) in bands.enumerated() {
            let (n, row) = (band / tileRows, band % tileRows)
            let rows = (row * m)..<min(s.outHeight, row * m + m)
            let first = y + (n * s.outputs + channel) * s.outputChannelStride + slice * s.pixels
                + rows.lowerBound * s.outWidth
            for r in 0..<rows.count {
                let (out, source) = (first + r * s.outWidth, lines + r * m * pitch + index * tileColumns)
                joinPhases(source, phasePitch: pitch, count: s.outWidth / m, into: out)
                for ox in (s.outWidth / m * m)..<s.outWidth { out[ox] = source[ox % m * pitch + ox / m] }
            }
            epilogue.store(first, channel: channel, to: first, count: rows.count * s.outWidth)
        }
    }
}

/// The depth axis of a volumetric conv run as plane convs, of stride and
/// dilation 1: input slices `count`, output slices `outputs`, depth taps
/// `taps`, and `front` padding; output slice `z` reads input slices
/// `z - front + t`. A plane conv is one slice of one tap.
struct WinogradSlices {
    let count: Int, outputs: Int, taps: Int, front: Int

    static let plane = WinogradSlices(count: 1, outputs: 1, taps: 1, front: 0)

    /// The taps of output slice `z` that read an input slice (the others read the depth padding).
    func taps(_ z: Int) -> Range<Int> { ConvGeometry.inside(z - front, step: 1, input: count, output: taps) }
}

/// `conv2dForward`'s and `conv3dForward`'s Winograd path: the kernels
/// `[O, kd, C/g, 3, 3]` (`arranged` from `weight`'s values; a plane conv's
/// are those) transformed once for the weight's values (`Tensor.derived`),
/// then every chunk. Transformed on every call, the kernels of 256
/// channels took 29% of a conv on 14x14 (AMD EPYC, AVX2, 1 thread).
func winogradConvolution(_ x: UnsafePointer<Float>, weight: Tensor, arranged: (Tensor) -> [Float] = { $0.data },
                         _ s: ConvGeometry, slices: WinogradSlices = .plane, epilogue: ConvEpilogue,
                         into y: UnsafeMutablePointer<Float>)
{
    let winograd = WinogradConvolution(s, slices: slices, workers: Threads.available)
    let kernels = weight.derived("winograd kernels", layout: [s.groups]) { winograd.transformedKernels(arranged(weight)) }
    kernels.withUnsafeBufferPointer { u in
        winograd.run(x, kernels: u.baseAddress!, epilogue: epilogue, into: y)
    }
}
