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
    let s: ConvGeometry
    /// Rows and columns of 4x4 output tiles per sample, bands per chunk, and
    /// runs of 16 tiles per band.
    let tileRows: Int, tileColumns: Int, bandsPerChunk: Int, runs: Int

    /// Output tile side, input tile side, points of a transformed tile, tiles per transform call.
    static let m = 4, t = 6, points = 36, lanes = 16
    /// Floats of transformed inputs and products one chunk aims for (2 MB).
    private static let chunkFloats = 1 << 19

    init(_ s: ConvGeometry) {
        self.s = s
        (tileRows, tileColumns) = ((s.outHeight + Self.m - 1) / Self.m, (s.outWidth + Self.m - 1) / Self.m)
        bandsPerChunk = max(1, Self.chunkFloats / max(1, Self.points * (s.channels + s.outputs) * tileColumns))
        runs = (tileColumns + Self.lanes - 1) / Self.lanes
    }

    /// Whether a conv runs this way: 3x3, stride 1, dilation 1, at least 32 input and output channels
    /// per group and 32 tiles. Against the direct and unfolded paths at 1 thread (AMD EPYC, AVX-512):
    /// 0.50x the time for 64 -> 128 channels at 64x64, 0.5-0.6x for 64 to 128 channels at 28x28 to
    /// 56x56, 0.64x for 128 at 20x20 (25 tiles), 0.74x for 512 at 7x7 in a batch of 8 (32 tiles);
    /// 0.87x for 32 channels at 64x64, 1.16x for 24 at 128x128; 1.06x for 128 channels at 14x14
    /// (16 tiles), and 3.6x for 512 at 7x7 (4 tiles), where reading the transformed kernels (4x the
    /// kernels) outweighs the products.
    static func suits(_ s: ConvGeometry) -> Bool {
        s.kh == 3 && s.kw == 3 && s.conv.stride == (1, 1) && s.conv.dilation == (1, 1)
            && min(s.perGroup, s.outPerGroup) >= 32 && s.batch * ((s.outHeight + 3) / 4) * ((s.outWidth + 3) / 4) >= 32
    }

    var bands: Int { s.batch * tileRows }
    /// Floats of a phase line (a row's columns `4k + φ` for one `φ`; the runs read 17 floats), and of a
    /// row's four phase lines.
    private var phasePitch: Int { runs * Self.lanes + 1 }
    private var linePitch: Int { Self.m * phasePitch }

    /// `U [36, O * C/g]`: `U[ξ][κ] = (G g_κ G^T)[ξ]` for each kernel `κ = o * C/g + c`, in blocks
    /// of 16 kernels, each block's taps transposed to `[9, 16]` first.
    func transformedKernels(_ weight: [Float]) -> [Float] {
        let kernels = s.outputs * s.perGroup, lanes = Self.lanes
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
    func run(_ x: UnsafePointer<Float>, kernels u: UnsafePointer<Float>, epilogue: ConvEpilogue,
             into y: UnsafeMutablePointer<Float>)
    {
        let (points, groups) = (Self.points, s.groups)
        let (inputs, outputs) = (s.perGroup, s.outPerGroup), kernels = s.outputs * s.perGroup
        let widest = bandsPerChunk * tileColumns
        let v = UnsafeMutablePointer<Float>.allocate(capacity: groups * points * inputs * widest)
        // The last run of the last tiles reads 16 lanes.
        let products = UnsafeMutablePointer<Float>.allocate(capacity: groups * points * outputs * widest + Self.lanes)
        defer { v.deallocate(); products.deallocate() }
        for first in stride(from: 0, to: bands, by: bandsPerChunk) {
            let chunk = first..<min(bands, first + bandsPerChunk), width = chunk.count * tileColumns
            parallelFor(groups * inputs, scratch: Self.t * linePitch) { job, lines in
                let (g, c) = (job / inputs, job % inputs)
                transformInput(x, channel: g * inputs + c, bands: chunk, lines: lines,
                               into: v + (g * points * inputs + c) * width, pointPitch: inputs * width)
            }
            parallelFor(groups * points) { job in
                let (g, point) = (job / points, job % points)
                serialMatrixProduct(m: outputs, n: width, k: inputs, u + point * kernels + g * outputs * inputs,
                                    lda: inputs, v + (g * points + point) * inputs * width, ldb: width,
                                    products + (g * points + point) * outputs * width, ldc: width)
            }
            parallelFor(groups * outputs, scratch: Self.m * linePitch) { job, lines in
                let (g, o) = (job / outputs, job % outputs)
                transformOutput(products + (g * points * outputs + o) * width, pointPitch: outputs * width,
                                channel: g * outputs + o, bands: chunk, epilogue: epilogue, lines: lines, into: y)
            }
        }
    }

    /// `V[ξ][p] = (B^T d_p B)[ξ]` of input channel `channel` for each tile `p` of `bands`, at
    /// `into + ξ * pointPitch + p`: each band's six input rows split into zero-padded phase lines,
    /// then transformed 16 tiles at a time.
    private func transformInput(_ x: UnsafePointer<Float>, channel: Int, bands: Range<Int>,
                                lines: UnsafeMutablePointer<Float>, into: UnsafeMutablePointer<Float>, pointPitch: Int)
    {
        let (m, lanes) = (Self.m, Self.lanes), (top, left) = (s.conv.padding.0, s.conv.padding.1)
        for (index, band) in bands.enumerated() {
            let (n, row) = (band / tileRows, band % tileRows)
            let plane = x + (n * s.channels + channel) * s.plane
            lines.update(repeating: 0, count: Self.t * linePitch)
            for i in 0..<Self.t where (0..<s.height).contains(row * m + i - top) {
                let source = plane + (row * m + i - top) * s.width, line = lines + i * linePitch
                // Groups of four columns 4k..<4k+4 (column left + ix reads input ix): whole ones, then the edges.
                let whole = ((left + m - 1) / m)..<max((left + m - 1) / m, min(phasePitch, (left + s.width) / m))
                splitPhases(source + whole.lowerBound * m - left, count: whole.count, into: line + whole.lowerBound,
                            phasePitch: phasePitch)
                func copyEdge(_ groups: Range<Int>) {
                    for k in groups {
                        for phase in 0..<m where (0..<s.width).contains(k * m + phase - left) {
                            line[phase * phasePitch + k] = source[k * m + phase - left]
                        }
                    }
                }
                copyEdge(0..<whole.lowerBound)
                copyEdge(whole.upperBound..<min(phasePitch, (left + s.width + m - 1) / m))
            }
            for r in 0..<runs {
                winogradInputTiles(lines + r * lanes, linePitch: linePitch, phasePitch: phasePitch,
                                   count: min(lanes, tileColumns - r * lanes),
                                   into: into + index * tileColumns + r * lanes, pointPitch: pointPitch)
            }
        }
    }

    /// Output channel `channel`'s tiles of `bands` from its products `M[ξ][p]` (at
    /// `products + ξ * pointPitch + p`): `Y = A^T M A` 16 tiles at a time into phase `lines`,
    /// interleaved into `y`'s rows, then the epilogue.
    private func transformOutput(_ products: UnsafePointer<Float>, pointPitch: Int, channel: Int, bands: Range<Int>,
                                 epilogue: ConvEpilogue, lines: UnsafeMutablePointer<Float>,
                                 into y: UnsafeMutablePointer<Float>)
    {
        let (m, lanes) = (Self.m, Self.lanes)
        for (index, band) in bands.enumerated() {
            let (n, row) = (band / tileRows, band % tileRows)
            for r in 0..<runs {
                winogradOutputTiles(products + index * tileColumns + r * lanes, pointPitch: pointPitch,
                                    into: lines + r * lanes, linePitch: linePitch, phasePitch: phasePitch)
            }
            let rows = (row * m)..<min(s.outHeight, row * m + m)
            let first = y + (n * s.outputs + channel) * s.pixels + rows.lowerBound * s.outWidth
            for r in 0..<rows.count {
                let (out, source) = (first + r * s.outWidth, lines + r * linePitch)
                joinPhases(source, phasePitch: phasePitch, count: s.outWidth / m, into: out)
                for ox in (s.outWidth / m * m)..<s.outWidth { out[ox] = source[ox % m * phasePitch + ox / m] }
            }
            epilogue.store(first, channel: channel, to: first, count: rows.count * s.outWidth)
        }
    }
}

/// `conv2dForward`'s Winograd path: the kernels transformed once, then every chunk.
func winogradConv2d(_ x: UnsafePointer<Float>, weight: [Float], _ s: ConvGeometry, epilogue: ConvEpilogue,
                    into y: UnsafeMutablePointer<Float>)
{
    let winograd = WinogradConvolution(s)
    winograd.transformedKernels(weight).withUnsafeBufferPointer { u in
        winograd.run(x, kernels: u.baseAddress!, epilogue: epilogue, into: y)
    }
}
