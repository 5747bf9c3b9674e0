import CPlatform

/// Direct convolution with the output channels along the vector lanes: a
/// register tile of 16-channel vectors x 6 output pixels
/// (`channelVectorTile`) accumulates
/// `y[o, oy, ox] = sum_{c, p, q} W[o, c, p, q] * padded[c, oy*sy + p*dy, ox*sx + q*dx]`
/// over every input channel and tap, each term one 16-channel weight load
/// per vector and one broadcast input pixel per output pixel. The pixels of
/// a tile may lie anywhere, so no lane idles on short rows (ResNet-50's 7x7
/// and 14x14 layers), strided convs need no subsampled copy, and a tile
/// may run on from one sample into the next; the
/// weights, packed once into `[groups, O/g / 64, C/g, kh*kw, 64]` blocks,
/// are read in order. A conv without padding reads its input as it is, the
/// others a zero-padded copy of it.
///
/// Pixel vectors (`DirectConvolution`) suit convs of few output channels on
/// long rows; this suits many output channels (ResNet-50's, past 64):
/// each broadcast pixel feeds a product for each of the 64 channels of a
/// block, against 6 in `directConvTile`.
struct ChannelVectorConvolution {
    /// Output channels per vector, per block (the most one call computes), and output pixels per call.
    static let vectorChannels = channelVectorTileShape.lanes, blockChannels = 64, tilePixels = channelVectorTileShape.pixels
    /// Output pixels per job (16 tiles): its results, `[pixels, 64]`, stay in the L1 cache.
    static let chunkPixels = 16 * tilePixels

    let s: ConvGeometry
    /// Whether the taps read a zero-padded copy of the input (else the input itself).
    let padded: Bool
    /// Columns and floats of each channel's plane that the taps read.
    let planeWidth: Int, planeSize: Int
    /// Output channels per group, rounded up to a vector; blocks of `blockChannels` per group.
    let paddedOutputs: Int, blocks: Int
    /// Output pixels per job and jobs per group and block: the pixels of all the samples in turn, so
    /// that a chunk of small samples spans several (ResNet-18's 4x4 layers at batch 16 read their
    /// 9.4 MB of weights once per chunk of 96 pixels, not once per sample of 16).
    let chunkSize: Int, chunks: Int

    init(_ s: ConvGeometry) {
        self.s = s
        let (top, left, bottom, right) = s.conv.padding
        padded = top + left + bottom + right > 0
        planeWidth = left + s.width + right
        planeSize = (top + s.height + bottom) * planeWidth
        paddedOutputs = (s.outPerGroup + Self.vectorChannels - 1) / Self.vectorChannels * Self.vectorChannels
        blocks = (paddedOutputs + Self.blockChannels - 1) / Self.blockChannels
        chunks = (s.batch * s.pixels + Self.chunkPixels - 1) / Self.chunkPixels
        chunkSize = (s.batch * s.pixels + chunks - 1) / chunks
    }

    /// Whether a worker's consecutive jobs take each block of output channels
    /// for one chunk of pixels (so the chunk's input stays in cache), rather
    /// than each chunk for one block (so the block's weights do): where a
    /// group's weights fit in `cachedWeightFloats` (1 MB, half the L2 cache
    /// of the Xeon measured): the input is read again for each block, the
    /// weights for each chunk.
    var blocksInner: Bool { s.outPerGroup * s.patch <= Self.cachedWeightFloats }
    static let cachedWeightFloats = 1 << 18

    /// Whether this kernel handles the convolution on the active instruction
    /// set. With AVX-512, whose 32 registers hold 4 vectors x 6 pixels of
    /// accumulators, wherever it pays. AVX2's 16 hold one vector's 6 pixels
    /// (a block's tile is 4 calls, each reading the pixels again): convs of
    /// several taps on rows shorter than a pixel vector, where the unfolded
    /// product is slower (AMD EPYC Zen 4, `KCP_ISA=avx2`, 1 thread, with
    /// batchnorm and relu, medians of runs in turn in one process: ResNet-20's
    /// 32 -> 64, stride 2, from 16x16 at batch 64 4.80 -> 3.18-3.34 ms;
    /// ResNet-50's 512 channels on 7x7 4.55 -> 3.97-3.98, 512, stride 2, from
    /// 14x14 4.31 -> 3.91-3.93, 256, stride 2, from 14x14 at batch 8 7.80 ->
    /// 6.41). On longer rows it is not ahead (128, stride 2, from 56x56 4.24
    /// against 4.23-4.32; 96 channels 5x5 on 64x64 26.1 against 28.7), and
    /// OpenBLAS's products run 1x1 convs faster (2048 -> 512 on 7x7 1.85
    /// against 2.42; so did they on a Xeon, 1.1-1.2x, for ResNet-50's 1x1
    /// convs on every plane).
    static func suits(_ s: ConvGeometry) -> Bool {
        switch InstructionSet.active {
        case .avx512: pays(s)
        case .avx2: pays(s) && s.kh * s.kw > 1 && DirectConvolution.shortRows(s)
        case .native: false
        }
    }

    /// Whether the geometry pays, measured against the unfolded product
    /// (1 thread, Xeon, AVX-512): more than 64 output channels per group
    /// (fewer take `DirectConvolution`), no cropping (negative padding), and
    /// a kernel of several taps (ResNet-50's 3x3 convs of 128 to 512
    /// channels on 7x7 to 28x28 ran in 0.68-0.76 of the time at batch 1,
    /// 0.7-0.87 at batch 8: no unfolded copy to make). 1x1 convs take
    /// `PointwiseConvolution`, whose results need no transpose and whose
    /// subsampled copy of a strided conv's input serves every output
    /// channel, where here each block of 64 would read the whole input
    /// again (256 -> 512, stride 2, on 56x56: 1.2x slower than OpenBLAS),
    /// but for those whose planes leave that kernel's lanes idle on a CPU
    /// with 256-bit units (`PointwiseConvolution.fillsLanes`; ResNet-50's on 7x7).
    /// Strided convs of 32 to 64 output channels from 16 or more input
    /// channels per group whose output rows are shorter than a pixel vector
    /// run here too, where the direct kernel's blocks would run through
    /// the rows or idle (ResNet-20 at batch 64: 32 -> 64, stride 2, from
    /// 16x16, 2.24-2.29 -> 1.46-1.50 ms, Xeon; 64 -> 64 from 28x28 at
    /// batch 8, 0.75-0.77 -> 0.59-0.61, AMD EPYC Zen 5). On longer rows the
    /// direct kernel's stride-phase windows are ahead of the padded copy
    /// and transposed stores here (Zen 5, 1 thread, with batchnorm and
    /// relu: 16 -> 32 from 32x32 at batch 64, 1.32-1.44 -> 1.03-1.04 ms,
    /// in ResNet-20 1.40 -> 1.16; 32 -> 32 from 256x256, 2.5-2.6 ->
    /// 1.9-2.2; 24 -> 48 from 64x64 at batch 8, 1.0-1.4 -> 0.87-0.91;
    /// 64 -> 64 from 56x56 at batch 64, 34 -> 26.5; even for 64 -> 64 from
    /// 112x112 and 32 -> 64 from 56x56 at batch 1, and 1.3x faster on 2
    /// threads). From fewer input channels, an image's 3, each output's
    /// few products do not pay for its transpose, and the direct kernel is
    /// ahead (AMD EPYC Zen 5, AVX-512, 1 thread, with batchnorm and relu:
    /// ResNet-50's 7x7 stem, 3 -> 64 on 224x224, 1.28-1.30 -> 1.02-1.06 ms,
    /// 11.5-12.8 -> 8.4-8.5 at batch 8; a 3x3 stem 3 -> 64, 0.54 -> 0.29).
    static func pays(_ s: ConvGeometry) -> Bool {
        let (top, left, bottom, right) = s.conv.padding
        let many = s.outPerGroup > 64
        let stridedShortRows = s.conv.stride != (1, 1) && s.outPerGroup >= 32 && s.perGroup >= 16
            && DirectConvolution.shortRows(s)
        let taken = s.kh * s.kw > 1 ? many || stridedShortRows
            : s.readsOnePixel && many && !PointwiseConvolution.fillsLanes(s) && InstructionSet.halfWidthUnits
        return taken && !s.isDepthwise && min(top, left, bottom, right) >= 0
    }

    /// Output channels `first..<first + count` (within its group) of block `block`.
    func channels(_ block: Int) -> (first: Int, count: Int) {
        let first = block * Self.blockChannels
        return (first, min(Self.blockChannels, s.outPerGroup - first))
    }

    /// The weights as `[groups, paddedOutputs / 64, C/g, kh*kw, 64]`, the
    /// last block of each group `[C/g, kh*kw, 16 * v]` for its `v` vectors,
    /// the channels past `O/g` zero.
    func packedWeights(_ weight: UnsafePointer<Float>) -> [Float] {
        let patch = s.patch
        return [Float](unsafeUninitializedCapacity: s.groups * paddedOutputs * patch) { packed, initialized in
            let packed = packed.baseAddress!
            parallelFor(s.groups * blocks) { job in
                let (g, block) = (job / blocks, job % blocks), (first, count) = channels(block)
                let width = min(Self.blockChannels, paddedOutputs - first)
                let out = packed + (g * paddedOutputs + first) * patch
                transposeTiles(weight + (g * s.outPerGroup + first) * patch, tilePitch: patch, pixels: count,
                               channels: patch, into: out, linePitch: width)
                for k in 0..<patch { clearFloats(out + k * width + count, count: width - count) }
            }
            initialized = s.groups * paddedOutputs * patch
        }
    }

    /// Input channels summed per pass over a job's tiles: a block's weights
    /// for them (`partFloats`, 32 KB) stay in the L1 cache while every tile
    /// reads them. Before each tile, a share of the next part's weights is
    /// prefetched: in a network, a block's weights come from memory on its
    /// first chunk, and the first tile of each part waited for them
    /// (ResNet-50's 3x3 conv of 512 channels on 7x7, 9.4 MB of weights, at
    /// batch 1: 1.72 -> 1.34-1.57 ms; the network's kxk convs 21.7-21.9 ->
    /// 20.2-21.3; Xeon, AVX-512, 1 thread, alternating builds).
    var channelsPerPart: Int { max(1, Self.partFloats / (s.kh * s.kw * Self.blockChannels)) }
    static let partFloats = 1 << 13

    /// Where in a channel's plane tap `(p, q)` (row-major `k`) of output `(0, 0)` reads.
    func tapOffsets() -> [Int] {
        let (dy, dx) = s.conv.dilation
        return (0..<(s.kh * s.kw)).map { k in (k / s.kw) * dy * planeWidth + (k % s.kw) * dx }
    }

    /// Where, from its group's first plane of the first sample, each of the output pixels `pixels` of
    /// all the samples (row-major, sample after sample) reads its first tap: stepped through rows and
    /// samples, where two divisions per pixel would cost a third of a 1x1 conv of 64 channels.
    func positions(_ pixels: Range<Int>) -> [Int] {
        let (sy, sx) = s.conv.stride
        var (n, pixel) = pixels.lowerBound.quotientAndRemainder(dividingBy: s.pixels)
        var (oy, ox) = pixel.quotientAndRemainder(dividingBy: s.outWidth)
        return pixels.map { _ in
            defer {
                ox += 1
                if ox == s.outWidth { (oy, ox) = (oy + 1, 0) }
                if oy == s.outHeight { (n, oy) = (n + 1, 0) }
            }
            return n * s.channels * planeSize + oy * sy * planeWidth + ox * sx
        }
    }

    /// Copies channel plane `plane` (`n * C + c`) of `x` into its zero-padded plane of `padded`.
    func pad(_ x: UnsafePointer<Float>, plane: Int, into padded: UnsafeMutablePointer<Float>) {
        let (top, left, bottom, _) = s.conv.padding
        let (source, target) = (x + plane * s.plane, padded + plane * planeSize)
        clearFloats(target, count: top * planeWidth + left)
        for row in 0..<s.height {
            let line = target + (top + row) * planeWidth + left
            copyFloats(source + row * s.width, to: line, count: s.width)
            clearFloats(line + s.width, count: row + 1 < s.height ? planeWidth - s.width : planeWidth - s.width - left)
        }
        clearFloats(target + (top + s.height) * planeWidth, count: bottom * planeWidth)
    }

    /// Output pixels `pixels` (of all the samples', in turn) of block `block`'s channels of group `g`,
    /// each channel's line of each sample through `epilogue` into `y`; `stage` holds `chunkSize * 64` floats.
    func compute(_ planes: UnsafePointer<Float>, weights: UnsafePointer<Float>, offsets: UnsafePointer<Int>,
                 group g: Int, block: Int, pixels: Range<Int>, epilogue: ConvEpilogue,
                 stage: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>)
    {
        let (first, count) = channels(block)
        let vectors = (count + Self.vectorChannels - 1) / Self.vectorChannels, width = Self.blockChannels
        let (taps, kernelPitch) = (s.kh * s.kw, vectors * Self.vectorChannels)
        let input = planes + g * s.perGroup * planeSize
        let kernels = weights + (g * paddedOutputs + first) * s.patch
        // Each tile's pixels: where the first reads, and the others from there.
        let positions = self.positions(pixels)
        let tiles = stride(from: 0, to: pixels.count, by: Self.tilePixels).map { i in
            let count = min(Self.tilePixels, pixels.count - i), base = positions[i]
            let at = { (k: Int) in k < count ? positions[i + k] - base : 0 }
            return (base: base, count: count, at: (0, at(1), at(2), at(3), at(4), at(5)))
        }
        let part = channelsPerPart
        for c in stride(from: 0, to: s.perGroup, by: part) {
            // The next part's weights, a share of their cache lines before each tile.
            let next = UnsafeRawPointer(kernels + (c + part) * taps * kernelPitch)
            let lines = max(0, min(part, s.perGroup - c - part)) * taps * kernelPitch / cacheLineFloats
            for (t, tile) in tiles.enumerated() {
                for line in (t * lines / tiles.count)..<((t + 1) * lines / tiles.count) {
                    kcp_prefetch(next + line * cacheLineFloats * MemoryLayout<Float>.stride)
                }
                channelVectorTile(vectors: vectors, pixels: tile.count, input + c * planeSize + tile.base,
                                  pixelOffsets: tile.at, kernels + c * taps * kernelPitch, kernelPitch: kernelPitch,
                                  offsets: offsets, taps: taps, channels: min(part, s.perGroup - c),
                                  channelPitch: planeSize, accumulating: c > 0,
                                  into: stage + t * Self.tilePixels * width, tilePitch: width)
            }
        }
        var j = pixels.lowerBound
        while j < pixels.upperBound {  // the chunk's run of each sample
            let (n, pixel) = j.quotientAndRemainder(dividingBy: s.pixels), run = min(pixels.upperBound - j, s.pixels - pixel)
            let o = g * s.outPerGroup + first
            epilogue.storeTransposed(stage + (j - pixels.lowerBound) * width, tilePitch: width, count: run,
                                     channels: o..<(o + count), to: y + (n * s.outputs + o) * s.pixels + pixel,
                                     linePitch: s.pixels)
            j += run
        }
    }
}

/// The channel-vector kernel over every group, block of output channels and chunk of output pixels.
func channelVectorConv2d(_ x: UnsafePointer<Float>, weight: Tensor, _ s: ConvGeometry, epilogue: ConvEpilogue,
                         into y: UnsafeMutablePointer<Float>)
{
    let conv = ChannelVectorConvolution(s)
    let packed = weight.derived("channel vectors", layout: [s.outputs, s.perGroup, s.kh, s.kw, s.groups]) {
        weight.data.withUnsafeBufferPointer { conv.packedWeights($0.baseAddress!) }
    }
    let offsets = conv.tapOffsets()
    let planes = conv.padded ? allocateAlignedFloats(s.batch * s.channels * conv.planeSize) : nil
    defer { planes?.deallocate() }
    if let planes { parallelFor(s.batch * s.channels) { conv.pad(x, plane: $0, into: planes) } }
    let jobsPerGroup = conv.blocks * conv.chunks, total = s.batch * s.pixels
    packed.withUnsafeBufferPointer { weights in
        offsets.withUnsafeBufferPointer { offsets in
            parallelFor(s.groups * jobsPerGroup, scratch: conv.chunkSize * ChannelVectorConvolution.blockChannels) {
                job, stage in
                let (g, inner) = job.quotientAndRemainder(dividingBy: jobsPerGroup)
                let (block, chunk) = conv.blocksInner ? (inner % conv.blocks, inner / conv.blocks)
                                                      : (inner / conv.chunks, inner % conv.chunks)
                let pixels = (chunk * conv.chunkSize)..<min(total, (chunk + 1) * conv.chunkSize)
                conv.compute(UnsafePointer(planes) ?? x, weights: weights.baseAddress!, offsets: offsets.baseAddress!,
                             group: g, block: block, pixels: pixels, epilogue: epilogue, stage: stage, into: y)
            }
        }
    }
}
