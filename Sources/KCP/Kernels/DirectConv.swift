import Glibc // TEMP
/// Direct convolution: output pixels computed in registers straight from a
/// zero-padded copy of the input rows, without unfolding them.
///
/// Unfolding (`unfold`) copies every input pixel `kh*kw` times and OpenBLAS
/// packs that copy once more; with few output channels (the 11-, 22- and
/// 44-channel layers that pruning a 16-32-64 network leaves) each copied
/// float is used for only that many products, and the copies cost as much as
/// the products. Here a register tile of 6 output channels x 16 output pixels
/// (12 vectors of 8 floats) accumulates
/// `y[o, oy, ox] = sum_{c, p, q} W[o, c, p, q] * window[c, oy*sy + p*dy, ox*sx + q*dx]`
/// over every tap, one weight broadcast and two pixel loads for 12 FMAs.
///
/// The window holds the input rows one tile of output rows reads, padding
/// included, each row split into `sx` column phases (phase `f` holds the
/// padded columns `f, f + sx, f + 2 sx, ...`), so that for every stride the
/// pixels `ox` of tap `q` are the contiguous run of phase `(q*dx) % sx` from
/// `ox + (q*dx) / sx`.
struct DirectConvolution {
    static let channelsPerBlock = 6, pixelsPerBlock = 16

    let s: ConvGeometry
    /// Output rows per tile (the last tile may have fewer) and tiles per sample.
    let tileRows: Int, tiles: Int
    /// Floats per column phase of a window row: every pixel block reads whole vectors.
    let phaseWidth: Int
    /// Output channel blocks per group (balanced sizes, at most `channelsPerBlock`).
    let blocks: Int

    /// Floats per window that the tile size aims for (128 KB): it stays in
    /// the L2 cache while every channel block reads it.
    private static let windowFloats = 1 << 15

    init(_ s: ConvGeometry) {
        self.s = s
        let (sy, sx) = s.conv.stride
        let pixelBlocks = (s.outWidth + Self.pixelsPerBlock - 1) / Self.pixelsPerBlock
        phaseWidth = pixelBlocks * Self.pixelsPerBlock + (s.kw - 1) * s.conv.dilation.1 / sx
        blocks = (s.outPerGroup + Self.channelsPerBlock - 1) / Self.channelsPerBlock
        let most = max(1, Self.windowFloats / max(s.perGroup * sy * sx * phaseWidth, 1))
        tiles = (s.outHeight + most - 1) / most
        tileRows = (s.outHeight + tiles - 1) / tiles
    }

    /// Whether the direct kernel handles this convolution: not a 1x1 conv
    /// reading its input as it lies (a plain product), and several output
    /// channels per group to share each pixel load.
    static func suits(_ s: ConvGeometry) -> Bool {
        getenv("KCP_NO_DIRECT") == nil && !s.isPointwise && s.outPerGroup >= 4 // TEMP
    }

    var rowPitch: Int { s.conv.stride.1 * phaseWidth }
    /// Window rows of a full tile.
    var windowRows: Int { (tileRows - 1) * s.conv.stride.0 + (s.kh - 1) * s.conv.dilation.0 + 1 }
    var channelPitch: Int { windowRows * rowPitch }
    /// Floats of one worker's scratch: the window, then one register tile.
    var scratchSize: Int { s.perGroup * channelPitch + Self.channelsPerBlock * Self.pixelsPerBlock }

    /// The output rows of tile `tile`.
    func rows(_ tile: Int) -> Range<Int> { (tile * tileRows)..<min(s.outHeight, (tile + 1) * tileRows) }

    /// Output channels `first..<first + count` (within its group) of block `block`.
    func channels(_ block: Int) -> (first: Int, count: Int) {
        let first = block * s.outPerGroup / blocks
        return (first, (block + 1) * s.outPerGroup / blocks - first)
    }

    /// The weights as `[groups, blocks, C/g, kh*kw, channelsPerBlock]`,
    /// zero in the slots past a block's channels.
    func packedWeights(_ weight: [Float]) -> [Float] {
        let taps = s.kh * s.kw, width = Self.channelsPerBlock
        var packed = [Float](repeating: 0, count: s.groups * blocks * s.perGroup * taps * width)
        for g in 0..<s.groups {
            for block in 0..<blocks {
                let (first, count) = channels(block), base = (g * blocks + block) * s.perGroup * taps * width
                for r in 0..<count {
                    let o = g * s.outPerGroup + first + r
                    for k in 0..<(s.perGroup * taps) { packed[base + k * width + r] = weight[o * s.perGroup * taps + k] }
                }
            }
        }
        return packed
    }

    /// Offsets in a channel's window of the taps `(p, q)`, row-major, from
    /// the run read by tap `(0, 0)`.
    func tapOffsets() -> [Int] {
        let (sx, (dy, dx)) = (s.conv.stride.1, s.conv.dilation)
        return (0..<(s.kh * s.kw)).map { k in
            let (p, q) = (k / s.kw, k % s.kw)
            return p * dy * rowPitch + (q * dx) % sx * phaseWidth + (q * dx) / sx
        }
    }

    /// Copies the input rows that output rows `rows` read from the `[C/g, H, W]`
    /// sample `input` into `window`, zero where they lie in the padding.
    func fillWindow(_ input: UnsafePointer<Float>, rows: Range<Int>, into window: UnsafeMutablePointer<Float>) {
        let ((sy, sx), top, left) = (s.conv.stride, s.conv.padding.0, s.conv.padding.1)
        let count = (rows.count - 1) * sy + (s.kh - 1) * s.conv.dilation.0 + 1
        for c in 0..<s.perGroup {
            for r in 0..<count {
                let line = window + c * channelPitch + r * rowPitch, iy = rows.lowerBound * sy - top + r
                guard 0 <= iy && iy < s.height else {
                    line.update(repeating: 0, count: rowPitch)
                    continue
                }
                let source = input + (c * s.height + iy) * s.width
                if sx == 1 {
                    let copied = min(s.width, phaseWidth - left)
                    line.update(repeating: 0, count: left)
                    (line + left).update(from: source, count: copied)
                    (line + left + copied).update(repeating: 0, count: phaseWidth - left - copied)
                } else {
                    for f in 0..<sx {
                        for t in 0..<phaseWidth {
                            let ix = f + t * sx - left
                            line[f * phaseWidth + t] = 0 <= ix && ix < s.width ? source[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// Output rows `rows` of group `g`'s channels from their `window`:
    /// `out + o * pixels + oy * Wout + ox` is output `(o, oy, ox)` of the group.
    func compute(window: UnsafePointer<Float>, weights: UnsafePointer<Float>, group g: Int, rows: Range<Int>,
                 offsets: UnsafePointer<Int>, tile: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>)
    {
        let taps = s.kh * s.kw, rowStep = s.conv.stride.0 * rowPitch, width = Self.channelsPerBlock
        for block in 0..<blocks {
            let (first, count) = channels(block)
            let kernels = weights + (g * blocks + block) * s.perGroup * taps * width
            for oy in rows {
                let rowWindow = window + (oy - rows.lowerBound) * rowStep
                for ox in stride(from: 0, to: s.outWidth, by: Self.pixelsPerBlock) {
                    accumulate(rowWindow + ox, kernels, taps: taps, offsets: offsets, into: tile)
                    let valid = min(Self.pixelsPerBlock, s.outWidth - ox)
                    for r in 0..<count {
                        (out + (first + r) * s.pixels + oy * s.outWidth + ox)
                            .update(from: tile + r * Self.pixelsPerBlock, count: valid)
                    }
                }
            }
        }
    }

    /// One register tile: `tile[r * 16 + i] = sum_{c, k} kernels[(c * taps + k) * 6 + r] * run[c * channelPitch + offsets[k] + i]`.
    @inline(__always)
    private func accumulate(_ run: UnsafePointer<Float>, _ kernels: UnsafePointer<Float>, taps: Int,
                            offsets: UnsafePointer<Int>, into tile: UnsafeMutablePointer<Float>)
    {
        typealias V = SIMD8<Float>
        var (a0, b0, a1, b1, a2, b2) = (V(), V(), V(), V(), V(), V())
        var (a3, b3, a4, b4, a5, b5) = (V(), V(), V(), V(), V(), V())
        var w = kernels
        for c in 0..<s.perGroup {
            let channel = run + c * channelPitch
            for k in 0..<taps {
                let pixels = UnsafeRawPointer(channel + offsets[k])
                let x0 = pixels.loadUnaligned(as: V.self), x1 = pixels.loadUnaligned(fromByteOffset: 32, as: V.self)
                var v = V(repeating: w[0]); a0.addProduct(x0, v); b0.addProduct(x1, v)
                v = V(repeating: w[1]); a1.addProduct(x0, v); b1.addProduct(x1, v)
                v = V(repeating: w[2]); a2.addProduct(x0, v); b2.addProduct(x1, v)
                v = V(repeating: w[3]); a3.addProduct(x0, v); b3.addProduct(x1, v)
                v = V(repeating: w[4]); a4.addProduct(x0, v); b4.addProduct(x1, v)
                v = V(repeating: w[5]); a5.addProduct(x0, v); b5.addProduct(x1, v)
                w += Self.channelsPerBlock
            }
        }
        let out = UnsafeMutableRawPointer(tile)
        out.storeBytes(of: a0, toByteOffset: 0, as: V.self); out.storeBytes(of: b0, toByteOffset: 32, as: V.self)
        out.storeBytes(of: a1, toByteOffset: 64, as: V.self); out.storeBytes(of: b1, toByteOffset: 96, as: V.self)
        out.storeBytes(of: a2, toByteOffset: 128, as: V.self); out.storeBytes(of: b2, toByteOffset: 160, as: V.self)
        out.storeBytes(of: a3, toByteOffset: 192, as: V.self); out.storeBytes(of: b3, toByteOffset: 224, as: V.self)
        out.storeBytes(of: a4, toByteOffset: 256, as: V.self); out.storeBytes(of: b4, toByteOffset: 288, as: V.self)
        out.storeBytes(of: a5, toByteOffset: 320, as: V.self); out.storeBytes(of: b5, toByteOffset: 352, as: V.self)
    }
}
