/// A 1x1 conv without padding (`ConvGeometry.readsOnePixel`) in register
/// tiles of output channels x pixel vectors,
/// `y[n, o, oy, ox] = sum_c W[o, c] x[n, c, oy*sy, ox*sx]`, summed over `c`
/// in order, one multiply-add per term.
///
/// A chunk of output pixels of one sample and group is copied into a
/// `[C/g, chunk]` block in the L2 cache, the input pixels they read (every
/// `sx`-th of a row where strided): in the input, a channel's pixels lie a
/// plane after the one before's, and planes of 32x32 or 64x64 floats put
/// every channel's pixels in the same few cache sets. Each block of up to 6
/// output channels then reads the chunk 64 pixels at a time through
/// `directConvTile` (6 x 4 vectors of 16 pixels, 24 zmm accumulators: per
/// input channel, 4 pixel loads and 6 weight broadcasts feed 24
/// multiply-adds) and stores its rows through the conv epilogue while they
/// are in the cache. This is the product OpenBLAS would compute, without
/// its packing of the weights on every call or a second pass for the
/// epilogue; its results go straight to the output's rows, where the
/// channel-vector kernel's need a transpose.
///
/// Each block's last call of a chunk prefetches the next block's weights
/// (`directConvTile(prefetching:)`): in a network, a layer's weights come
/// from memory (ResNet-50's on 7x7 and 14x14 hold 1-4 MB), and a call,
/// which reads its block's 6 weights per input channel in order, waited
/// for each of their cache lines. ResNet-50 at batch 1: 2048 -> 512 on
/// 7x7 0.83-0.87 -> 0.68-0.71 ms, 1024 -> 256 on 14x14 0.60 -> 0.55-0.56,
/// the network's 1x1 convs 25.9-26.0 -> 23.9-24.3 (Xeon, AVX-512, 1
/// thread, per-layer medians, alternating builds).
struct PointwiseConvolution {
    /// Pixels of one `directConvTile` call (its 4 blocks of 16).
    static let callPixels = DirectConvolution.blocksPerCall * DirectConvolution.pixelsPerBlock
    /// Floats of a chunk's block that the chunk size aims for (256 KB, a
    /// quarter of the smallest L2 cache of the CPUs with AVX-512): 64 pixels
    /// from 1024 input channels up, more below (with 64 input channels, 1024
    /// pixels). Each output channel's results are written as one run of the
    /// chunk's pixels; with 16 KB chunks (in L1, 64 pixels from 64 input
    /// channels up), ResNet-50's 1x1 convs on 56x56 wrote 256 runs of 256
    /// bytes per chunk and, once the outputs outgrew the L2 cache, took
    /// 1.5-1.9x as long per sample at batch 8 as at batch 1 (Xeon, 1 thread;
    /// the network's 1x1 convs at batch 8: 468 -> 351 ms, batch 1: 56 -> 52,
    /// DeepLabV3's 46 -> 44).
    static let chunkFloats = 1 << 16

    let s: ConvGeometry
    /// Chunks per sample and group, the most output pixels one holds, and the parts of the output
    /// channel blocks that jobs split.
    let chunks: Int, chunkPixels: Int, parts: Int
    /// The output channels of a group in the blocks each tile computes, and the weights packed for them.
    let channelBlocks: ChannelBlocks

    /// The chunks share out a plane's calls (`callPixels`) evenly, the fewest that keep each block to
    /// `chunkFloats`; where their jobs are few (from one per thread to 4), as many more as make the
    /// jobs a multiple of the thread count (fewer than one per thread split the output channels:
    /// `parts`). Chunks of `chunkFloats` and a short last one left one thread of 2 with twice the
    /// other's work: 64 -> 256 channels on 56x56 (chunks of 1024, 1024, 1024 and 64 pixels) took 0.33
    /// ms on 2 threads, 0.25-0.26 in 4 of 768-832; 128 -> 512 on 28x28 (512 and 272) 0.30, 0.23-0.24
    /// in 2 of 384 and 400; 16 -> 64 on 112x112 0.137, 0.105 (AMD EPYC Zen 5, with batchnorm and relu;
    /// on 1 thread even). With 8 jobs per thread, 256 -> 64 on 56x56 in 14 chunks instead of 13 took
    /// 0.28 against 0.26. Where a few jobs differ in size (a plane's last call may hold a few of its
    /// pixels), so that whole chunks would keep the threads busy less than 90% of the time
    /// (`balance`), each chunk's output channels are split among the threads too: ResNet-50's 1x1
    /// convs on 14x14 at batch 1 (chunks of 64, 64, 64 and 4 pixels) on 2 threads, 1024 -> 512 0.565
    /// -> 0.48 ms, 1024 -> 256 0.29 -> 0.26, 512 -> 1024 of stride 2 from 28x28 0.58 -> 0.49 (each
    /// chunk is copied once per part; on 1 thread the split took 3-5% longer). Each output is summed
    /// in the same order whatever the chunks and parts, so the result does not depend on them.
    init(_ s: ConvGeometry) {
        self.s = s
        let most = max(1, Self.chunkFloats / s.perGroup / Self.callPixels) * Self.callPixels
        let (units, calls) = (s.batch * s.groups, (s.pixels + Self.callPixels - 1) / Self.callPixels)
        var chunks = (s.pixels + most - 1) / most
        if (Threads.count..<(4 * Threads.count)).contains(units * chunks) {
            while (units * chunks) % Threads.count != 0 && chunks < calls { chunks += 1 }
        }
        self.chunks = chunks
        chunkPixels = min(s.pixels, (calls + chunks - 1) / chunks * Self.callPixels)
        channelBlocks = ChannelBlocks(s)
        var parts = channelBlocks.parts(units: units * chunks)
        if parts == 1 && Threads.count > 1 && units * chunks < 4 * Threads.count {
            let sizes = (0..<units * chunks).map { Self.pixels($0 % chunks, of: chunks, in: s.pixels).count }
            if balance(sizes) < 0.9 { parts = min(channelBlocks.count, Threads.count) }
        }
        self.parts = parts
    }

    /// The output pixels of chunk `chunk` of a sample and group: whole calls, but for the last chunk's last.
    func pixels(_ chunk: Int) -> Range<Int> { Self.pixels(chunk, of: chunks, in: s.pixels) }

    /// The output pixels of chunk `chunk` of `chunks` of a plane of `pixels`: its share of the calls.
    private static func pixels(_ chunk: Int, of chunks: Int, in pixels: Int) -> Range<Int> {
        let calls = (pixels + callPixels - 1) / callPixels
        let bound = { (chunk: Int) in min(pixels, chunk * calls / chunks * callPixels) }
        return bound(chunk)..<bound(chunk + 1)
    }

    /// Floats from one input channel's pixels to the next in a chunk's block: whole calls.
    var blockPitch: Int { (chunkPixels + Self.callPixels - 1) / Self.callPixels * Self.callPixels }

    /// With AVX-512 (on the AVX2 path, whose 16 ymm registers hold 6 x 1
    /// vectors, OpenBLAS's Haswell products ran ResNet-50's and DeepLabV3's
    /// 1x1 convs 1.1-1.2x faster), where it pays.
    static func suits(_ s: ConvGeometry) -> Bool { InstructionSet.active == .avx512 && pays(s) }

    /// Whether the geometry pays, measured against the OpenBLAS product
    /// (`unfoldedConv2d`; 1 thread, Xeon, AVX-512, one conv at a time,
    /// alternating builds): a 1x1 conv of at least 32 output channels per
    /// group. ResNet-50's and DeepLabV3's 1x1 convs ran at 1.0-1.25x the
    /// GMAC/s on 7x7 to 56x56 (512 -> 128 on 28x28: 61 -> 77; 960 -> 160 on
    /// 32x32: 70 -> 82; 256 -> 1024 on 14x14: 71 -> 77; 512 -> 2048 on 7x7,
    /// against the channel-vector kernel that took it: 71 -> 74), pruned
    /// widths too (37 -> 150 on 56x56: 30 -> 36), and the ResNets'
    /// stride-2 shortcut convs at 1.1-1.3x (inputs 56x56 to 14x14; 256 ->
    /// 512 with its residual add: 59 -> 65; 1024 -> 2048: 51 -> 55; 64 ->
    /// 128: 43 -> 53; 128 -> 256: 49 -> 61). With 16 output channels, the
    /// copy of each chunk is shared by too few products (64 -> 16 on
    /// 256x256: 22 -> 18); with fewer than 16 output pixels, a vector's
    /// lanes mostly idle (the squeeze-and-excitation convs on 1x1 of
    /// MobileNetV3 and EfficientNet, 960 -> 240: 11.7-15 us in OpenBLAS's
    /// product against 104; 512 -> 512 on 2x2: 32-36 against 95-112).
    static func pays(_ s: ConvGeometry) -> Bool {
        s.readsOnePixel && !s.isDepthwise && s.outPerGroup >= 32 && s.pixels >= 16
            && (fillsLanes(s) || !ChannelVectorConvolution.pays(s))
    }

    /// Whether the pixel blocks of a plane hold a pixel in at least 90% of their lanes. A plane
    /// ends its last block (the chunks are a sample's), so a 7x7 plane fills 49 of 64 lanes. On a
    /// CPU that runs 512-bit vectors as two halves (`InstructionSet.halfWidthUnits`), the
    /// channel-vector kernel, whose tiles of 6 pixels run on from one sample into the next,
    /// takes such convs of more than 64 output channels (`ChannelVectorConvolution.pays`). AMD
    /// EPYC Zen 4, 1 thread, with batchnorm and relu, medians of runs in turn in one process, ms:
    /// ResNet-50's 2048 -> 512 on 7x7 1.36 -> 1.15 (8 samples 10.2 -> 8.9), 512 -> 2048 1.30 ->
    /// 1.24 (8 samples 10.3 -> 9.1), 1024 -> 2048 of stride 2 from 14x14 2.66 -> 2.40;
    /// MobileNetV3's 960 -> 160 on 7x7 0.217 -> 0.176. On 512-bit units the idle lanes cost less
    /// than the transposes: Zen 5, the same convs 0.69 -> 0.61 (8 samples 5.25 -> 5.06), 0.63 ->
    /// 0.60, 1.60 -> 1.25, in ResNet-50 its seven such convs 4.7-5.5 -> 3.9 (1 thread, per layer).
    static func fillsLanes(_ s: ConvGeometry) -> Bool {
        let lanes = (s.pixels + DirectConvolution.pixelsPerBlock - 1) / DirectConvolution.pixelsPerBlock
            * DirectConvolution.pixelsPerBlock
        return 10 * s.pixels >= 9 * lanes
    }

    /// Floats of one worker's scratch: a chunk's block, then one register tile.
    var scratchSize: Int { s.perGroup * blockPitch + DirectConvolution.tileFloats }

    /// Chunk `chunk` of sample `n` and group `g`, for the output channel
    /// blocks `blocks`, each output stored through `epilogue`.
    func compute(_ x: UnsafePointer<Float>, weights: UnsafePointer<Float>, sample n: Int, group g: Int, chunk: Int,
                 blocks: Range<Int>, epilogue: ConvEpilogue, scratch: UnsafeMutablePointer<Float>,
                 into y: UnsafeMutablePointer<Float>)
    {
        let pixels = pixels(chunk), first = pixels.lowerBound, count = pixels.count
        // The block's rows hold whole calls; the lanes past `count` read zeros and are not stored.
        let pitch = (count + Self.callPixels - 1) / Self.callPixels * Self.callPixels
        let source = x + (n * s.channels + g * s.perGroup) * s.channelStride
        for c in 0..<s.perGroup {
            copyPixels(source + c * s.channelStride, first..<first + count, to: scratch + c * pitch)
            clearFloats(scratch + c * pitch + count, count: pitch - count)
        }
        let tile = scratch + s.perGroup * blockPitch, lanes = DirectConvolution.pixelsPerBlock
        for block in blocks {
            let (o, rows) = channelBlocks.channels(block), channel = g * s.outPerGroup + o
            let kernels = weights + channel * s.perGroup, out = y + (n * s.outputs + channel) * s.outputChannelStride + first
            var done = 0
            while done < count {
                let calls = DirectConvolution.blocks(left: (count - done + lanes - 1) / lanes)
                let stored = min(calls * lanes, count - done)
                // The chunk's last call for these channels prefetches the next channels' weights.
                let last = done + stored == count && channel + rows < s.outputs
                let ahead = last ? UnsafeRawPointer(kernels + rows * s.perGroup) : nil
                Self.productTile(rows: rows, blocks: calls, scratch + done, pitch: pitch, kernels, channels: s.perGroup,
                                 prefetching: ahead, into: tile)
                epilogue.store(tile, channel: channel, to: out + done, count: stored, rows: rows,
                               valuePitch: directTile.rowPitch, linePitch: s.outputChannelStride)
                done += stored
            }
        }
    }

    /// One register tile of a 1x1 product (`directConvTile` with one tap):
    /// `rows` output channels x `blocks` consecutive 16-pixel blocks from
    /// `pixels` on, its input channels `pitch` floats apart, from weights
    /// packed `[channels, rows]`.
    @inline(__always)
    static func productTile(rows: Int, blocks: Int, _ pixels: UnsafePointer<Float>, pitch: Int,
                            _ kernels: UnsafePointer<Float>, channels: Int, prefetching ahead: UnsafeRawPointer? = nil,
                            into tile: UnsafeMutablePointer<Float>)
    {
        let lanes = DirectConvolution.pixelsPerBlock
        withUnsafePointer(to: 0) { offset in
            directConvTile(rows: rows, blocks: blocks, pixels, blockOffsets: (0, lanes, 2 * lanes, 3 * lanes), kernels,
                           offsets: offset, taps: 1, channels: channels, channelPitch: pitch, prefetching: ahead,
                           into: tile)
        }
    }

    /// `to[k] = plane[pixel first + k]` for the output pixels `first + k` in
    /// `pixels`: one copy with stride 1, else a row of every `sx`-th input
    /// pixel for each output row the range meets.
    @inline(__always)
    private func copyPixels(_ plane: UnsafePointer<Float>, _ pixels: Range<Int>, to: UnsafeMutablePointer<Float>) {
        let (sy, sx) = s.conv.stride
        guard (sy, sx) != (1, 1) else { return copyFloats(plane + pixels.lowerBound, to: to, count: pixels.count) }
        var pixel = pixels.lowerBound
        while pixel < pixels.upperBound {
            let (oy, ox) = pixel.quotientAndRemainder(dividingBy: s.outWidth)
            let count = min(s.outWidth - ox, pixels.upperBound - pixel)
            copyStridedFloats(plane + oy * sy * s.width + ox * sx, step: sx, to: to + (pixel - pixels.lowerBound),
                              0..<count)
            pixel += count
        }
    }
}

/// The pointwise kernel over every sample, group, chunk of output pixels
/// and part of the output channels.
func pointwiseConv2d(_ x: UnsafePointer<Float>, weight: Tensor, _ s: ConvGeometry, epilogue: ConvEpilogue,
                     into y: UnsafeMutablePointer<Float>)
{
    let conv = PointwiseConvolution(s)
    let packed = conv.channelBlocks.packedWeights(of: weight)
    let jobsPerUnit = conv.chunks * conv.parts
    packed.withUnsafeBufferPointer { weights in
        parallelFor(s.batch * s.groups * jobsPerUnit, scratch: conv.scratchSize) { job, scratch in
            let (unit, inner) = job.quotientAndRemainder(dividingBy: jobsPerUnit)
            let (chunk, part) = inner.quotientAndRemainder(dividingBy: conv.parts)
            conv.compute(x, weights: weights.baseAddress!, sample: unit / s.groups, group: unit % s.groups, chunk: chunk,
                         blocks: conv.channelBlocks.blocks(part: part, of: conv.parts), epilogue: epilogue,
                         scratch: scratch, into: y)
        }
    }
}
