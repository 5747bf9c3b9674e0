import CPlatform
import KCPVector
#if arch(x86_64)
import KCPVectorAVX512
#endif

/// The instruction set of the engine's own vector kernels (`KCPVector`),
/// chosen once, at load time, from the CPU's features: AVX-512 where the CPU
/// and the OS support it, AVX2 + FMA otherwise, as OpenBLAS and onnxruntime
/// choose theirs. `KCP_ISA=avx2` in the environment forces the narrower
/// path (a name the CPU cannot run is ignored). This file is the only place
/// that names a build of the kernels; the others call through it.
public enum InstructionSet: String, CaseIterable, Sendable {
    /// `KCPVectorAVX512`: AVX-512 F/BW/DQ/VL (`-target-cpu skylake-avx512`).
    case avx512
    /// `KCPVector` on x86-64: AVX2 + FMA (`-target-cpu haswell`).
    case avx2
    /// `KCPVector` on other architectures, built for the compiler's default CPU.
    case native

    /// The sets this CPU can run, widest first.
    public static let supported: [InstructionSet] = {
        #if arch(x86_64)
        return kcp_cpu_has_avx512() != 0 ? [.avx512, .avx2] : [.avx2]
        #else
        return [.native]
        #endif
    }()

    /// Whether the CPU runs each 512-bit vector operation as two halves on 256-bit units: AMD's
    /// Zen 4 (cpuid family 25, the only one of that family with AVX-512). Where a kernel choice
    /// was measured to differ between such units and 512-bit ones, the rule reads this.
    public static let halfWidthUnits: Bool = {
        var (family, model): (Int32, Int32) = (0, 0)
        return kcp_cpu_family_model(&family, &model) != 0 && family == 25 && kcp_cpu_has_avx512() != 0
    }()

    /// The set in use: `KCP_ISA=avx2` if set, else the widest (`kcp_cpu_isa`).
    public private(set) nonisolated(unsafe) static var active = InstructionSet(rawValue: String(cString: kcp_cpu_isa()))!

    /// Runs `body` with `set` active (tests run every supported path this way); not thread-safe.
    static func with<R>(_ set: InstructionSet, _ body: () throws -> R) rethrows -> R {
        precondition(supported.contains(set), "\(set) is not supported by this CPU")
        let saved = active
        active = set
        defer { active = saved }
        return try body()
    }
}

// MARK: - Dispatch

/// `KCPVector.directConvTile` of the active set for `blocks` (1, 2 or 4)
/// 16-pixel blocks at `run + blockOffsets.b`, each block's results 16
/// floats after the one before's: AVX-512 computes them at once, AVX2
/// (whose registers hold one) in turn.
@inline(__always)
func directConvTile(rows: Int, blocks: Int, _ run: UnsafePointer<Float>, blockOffsets: KCPVector.BlockOffsets,
                    _ kernels: UnsafePointer<Float>, offsets: UnsafePointer<Int>, taps: Int, channels: Int,
                    channelPitch: Int, prefetching ahead: UnsafeRawPointer? = nil,
                    into tile: UnsafeMutablePointer<Float>)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.directConvTile(rows: rows, blocks: blocks, run, blockOffsets: blockOffsets, kernels,
                                              offsets: offsets, taps: taps, channels: channels,
                                              channelPitch: channelPitch, prefetching: ahead, into: tile)
    }
    #endif
    for block in 0..<blocks {
        let start = block == 0 ? 0 : block == 1 ? blockOffsets.1 : block == 2 ? blockOffsets.2 : blockOffsets.3
        KCPVector.directConvTile(rows: rows, blocks: 1, run + start, blockOffsets: (0, 0, 0, 0), kernels,
                                 offsets: offsets, taps: taps, channels: channels, channelPitch: channelPitch,
                                 prefetching: block == 0 ? ahead : nil, into: tile + block * directTile.pixels)
    }
}

/// `KCPVector.channelVectorTile` of the active set for `vectors` (1 to 4)
/// 16-channel vectors: AVX-512 computes them at once, AVX2 (whose registers
/// hold one vector's 6 pixels) in turn.
@inline(__always)
func channelVectorTile(vectors: Int, pixels: Int, _ run: UnsafePointer<Float>, pixelOffsets: PixelOffsets,
                       _ kernels: UnsafePointer<Float>, kernelPitch: Int, offsets: UnsafePointer<Int>, taps: Int,
                       channels: Int, channelPitch: Int, accumulating: Bool, into tile: UnsafeMutablePointer<Float>,
                       tilePitch: Int)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.channelVectorTile(vectors: vectors, pixels: pixels, run, pixelOffsets: pixelOffsets,
                                                 kernels, kernelPitch: kernelPitch, offsets: offsets, taps: taps,
                                                 channels: channels, channelPitch: channelPitch,
                                                 accumulating: accumulating, into: tile, tilePitch: tilePitch)
    }
    #endif
    let lanes = channelVectorTileShape.lanes
    for vector in 0..<vectors {
        KCPVector.channelVectorTile(vectors: 1, pixels: pixels, run, pixelOffsets: pixelOffsets, kernels + vector * lanes,
                                    kernelPitch: kernelPitch, offsets: offsets, taps: taps, channels: channels,
                                    channelPitch: channelPitch, accumulating: accumulating,
                                    into: tile + vector * lanes, tilePitch: tilePitch)
    }
}

/// `KCPVector.transposeTiles` of the active set.
@inline(__always)
func transposeTiles(_ tiles: UnsafePointer<Float>, tilePitch: Int, pixels: Int, channels: Int, wholeRows: Bool = false,
                    into lines: UnsafeMutablePointer<Float>, linePitch: Int)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.transposeTiles(tiles, tilePitch: tilePitch, pixels: pixels, channels: channels,
                                              wholeRows: wholeRows, into: lines, linePitch: linePitch)
    }
    #endif
    KCPVector.transposeTiles(tiles, tilePitch: tilePitch, pixels: pixels, channels: channels, wholeRows: wholeRows,
                             into: lines, linePitch: linePitch)
}

/// `KCPVector.exponentialActivation` of the active set.
@inline(__always)
func exponentialActivation(_ f: KCPVector.ExponentialActivation, _ x: UnsafePointer<Float>, gradient: UnsafePointer<Float>?,
                           into y: UnsafeMutablePointer<Float>, count: Int)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        let g: KCPVectorAVX512.ExponentialActivation = switch f {
        case .sigmoid: .sigmoid
        case .silu: .silu
        case .siluGradient: .siluGradient
        }
        return KCPVectorAVX512.exponentialActivation(g, x, gradient: gradient, into: y, count: count)
    }
    #endif
    KCPVector.exponentialActivation(f, x, gradient: gradient, into: y, count: count)
}

/// `KCPVector.storeTransposedTiles` of the active set.
@inline(__always)
func storeTransposedTiles(_ tiles: UnsafePointer<Float>, tilePitch: Int, pixels: Int, channels: Int,
                          wholeRows: Bool = false, bias: UnsafePointer<Float>?, scale: UnsafePointer<Float>?,
                          shift: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, relu: Bool, hardswish: Bool,
                          into lines: UnsafeMutablePointer<Float>, linePitch: Int)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.storeTransposedTiles(tiles, tilePitch: tilePitch, pixels: pixels, channels: channels,
                                                    wholeRows: wholeRows, bias: bias, scale: scale, shift: shift,
                                                    residual: residual, relu: relu, hardswish: hardswish, into: lines,
                                                    linePitch: linePitch)
    }
    #endif
    KCPVector.storeTransposedTiles(tiles, tilePitch: tilePitch, pixels: pixels, channels: channels, wholeRows: wholeRows,
                                   bias: bias, scale: scale, shift: shift, residual: residual, relu: relu,
                                   hardswish: hardswish, into: lines, linePitch: linePitch)
}

/// Blocks per `depthwiseColumns` call of the active set for `kernelRows`
/// kernel rows, 0 where one block's accumulators do not fit the registers:
/// AVX-512's 32 zmm registers hold 24 accumulators besides the loads,
/// AVX2's 16 ymm registers 5 (two ymm each).
func depthwiseColumnBlocks(kernelRows: Int) -> Int {
    #if arch(x86_64)
    if InstructionSet.active == .avx512 { return min(4, 24 / kernelRows) }
    #endif
    return min(4, 5 / kernelRows)
}

/// `KCPVector.depthwiseColumns` of the active set.
@inline(__always)
func depthwiseColumns(_ run: UnsafePointer<Float>, _ kernel: UnsafePointer<Float>, kernelSize: (Int, Int),
                      lines: UnsafePointer<Int>, columns: UnsafePointer<Int>, tapStep: Int, rows: Int, width: Int,
                      outPitch: Int, blocksPerCall: Int, into out: UnsafeMutablePointer<Float>)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.depthwiseColumns(run, kernel, kernelSize: kernelSize, lines: lines, columns: columns,
                                                tapStep: tapStep, rows: rows, width: width, outPitch: outPitch,
                                                blocksPerCall: blocksPerCall, into: out)
    }
    #endif
    KCPVector.depthwiseColumns(run, kernel, kernelSize: kernelSize, lines: lines, columns: columns, tapStep: tapStep,
                               rows: rows, width: width, outPitch: outPitch, blocksPerCall: blocksPerCall, into: out)
}

/// `KCPVector.depthwiseRuns` of the active set.
@inline(__always)
func depthwiseRuns(_ run: UnsafePointer<Float>, _ kernel: UnsafePointer<Float>, kernelSize: (Int, Int),
                   lines: UnsafePointer<Int>, columns: UnsafePointer<Int>, tapStep: Int, rows: Int, width: Int,
                   pitch: Int, outPitch: Int, into out: UnsafeMutablePointer<Float>)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.depthwiseRuns(run, kernel, kernelSize: kernelSize, lines: lines, columns: columns,
                                             tapStep: tapStep, rows: rows, width: width, pitch: pitch,
                                             outPitch: outPitch, into: out)
    }
    #endif
    KCPVector.depthwiseRuns(run, kernel, kernelSize: kernelSize, lines: lines, columns: columns, tapStep: tapStep,
                            rows: rows, width: width, pitch: pitch, outPitch: outPitch, into: out)
}

/// `KCPVector.depthwiseVectorTile` of the active set for `pixels` (1 to 8)
/// pixels: AVX-512 computes them at once, AVX2 (whose 16 ymm registers
/// hold 4 pixels' accumulators) 4 at a time.
@inline(__always)
func depthwiseVectorTile(pixels: Int, _ window: UnsafePointer<Float>, pixelOffsets: UnsafePointer<Int>,
                         _ kernels: UnsafePointer<Float>, offsets: UnsafePointer<Int>, taps: Int,
                         into tile: UnsafeMutablePointer<Float>)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.depthwiseVectorTile(pixels: pixels, window, pixelOffsets: pixelOffsets, kernels,
                                                   offsets: offsets, taps: taps, into: tile)
    }
    #endif
    var done = 0
    while done < pixels {
        let count = min(4, pixels - done)
        KCPVector.depthwiseVectorTile(pixels: count, window, pixelOffsets: pixelOffsets + done, kernels, offsets: offsets,
                                      taps: taps, into: tile + done * KCPVector.channelVectorLanes)
        done += count
    }
}

/// `KCPVector.convEpilogue` of the active set.
@inline(__always)
func convEpilogue(_ values: UnsafePointer<Float>, valuePitch: Int, to lines: UnsafeMutablePointer<Float>, linePitch: Int,
                  rows: Int, count: Int, bias: UnsafePointer<Float>?, scale: UnsafePointer<Float>?,
                  shift: UnsafePointer<Float>?, channelStep: Int, residual: UnsafePointer<Float>?, relu: Bool,
                  hardswish: Bool)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.convEpilogue(values, valuePitch: valuePitch, to: lines, linePitch: linePitch, rows: rows,
                                            count: count, bias: bias, scale: scale, shift: shift,
                                            channelStep: channelStep, residual: residual, relu: relu,
                                            hardswish: hardswish)
    }
    #endif
    KCPVector.convEpilogue(values, valuePitch: valuePitch, to: lines, linePitch: linePitch, rows: rows, count: count,
                           bias: bias, scale: scale, shift: shift, channelStep: channelStep, residual: residual,
                           relu: relu, hardswish: hardswish)
}

/// `KCPVector.winogradInputTiles` of the active set.
@inline(__always)
func winogradInputTiles(_ lines: UnsafePointer<Float>, linePitch: Int, tapPitch: Int, count: Int,
                        into: UnsafeMutablePointer<Float>, pointPitch: Int)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.winogradInputTiles(lines, linePitch: linePitch, tapPitch: tapPitch, count: count,
                                                  into: into, pointPitch: pointPitch)
    }
    #endif
    KCPVector.winogradInputTiles(lines, linePitch: linePitch, tapPitch: tapPitch, count: count, into: into,
                                 pointPitch: pointPitch)
}

/// `KCPVector.winogradOutputTiles` of the active set.
@inline(__always)
func winogradOutputTiles(_ products: UnsafePointer<Float>, pointPitch: Int, into lines: UnsafeMutablePointer<Float>,
                         linePitch: Int, phasePitch: Int)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.winogradOutputTiles(products, pointPitch: pointPitch, into: lines, linePitch: linePitch,
                                                   phasePitch: phasePitch)
    }
    #endif
    KCPVector.winogradOutputTiles(products, pointPitch: pointPitch, into: lines, linePitch: linePitch,
                                  phasePitch: phasePitch)
}

/// `KCPVector.winogradKernelTiles` of the active set.
@inline(__always)
func winogradKernelTiles(_ taps: UnsafePointer<Float>, tapPitch: Int, count: Int, into: UnsafeMutablePointer<Float>,
                         pointPitch: Int)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.winogradKernelTiles(taps, tapPitch: tapPitch, count: count, into: into,
                                                   pointPitch: pointPitch)
    }
    #endif
    KCPVector.winogradKernelTiles(taps, tapPitch: tapPitch, count: count, into: into, pointPitch: pointPitch)
}

/// `KCPVector.winogradGradientTiles` of the active set.
@inline(__always)
func winogradGradientTiles(_ lines: UnsafePointer<Float>, linePitch: Int, phasePitch: Int, count: Int,
                           into: UnsafeMutablePointer<Float>, pointPitch: Int)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.winogradGradientTiles(lines, linePitch: linePitch, phasePitch: phasePitch, count: count,
                                                     into: into, pointPitch: pointPitch)
    }
    #endif
    KCPVector.winogradGradientTiles(lines, linePitch: linePitch, phasePitch: phasePitch, count: count, into: into,
                                    pointPitch: pointPitch)
}

/// `KCPVector.winogradKernelGradients` of the active set.
@inline(__always)
func winogradKernelGradients(_ products: UnsafePointer<Float>, pointPitch: Int, into taps: UnsafeMutablePointer<Float>) {
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.winogradKernelGradients(products, pointPitch: pointPitch, into: taps)
    }
    #endif
    KCPVector.winogradKernelGradients(products, pointPitch: pointPitch, into: taps)
}

/// `KCPVector.correlationRow` of the active set.
@inline(__always)
func correlationRow(_ left: UnsafePointer<Float>, _ right: UnsafePointer<Float>, channels: Int, pitch: Int, width: Int,
                    firstDisparity: Int, count: Int, scale: Float, into y: UnsafeMutablePointer<Float>, planePitch: Int)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.correlationRow(left, right, channels: channels, pitch: pitch, width: width,
                                              firstDisparity: firstDisparity, count: count, scale: scale, into: y,
                                              planePitch: planePitch)
    }
    #endif
    KCPVector.correlationRow(left, right, channels: channels, pitch: pitch, width: width, firstDisparity: firstDisparity,
                             count: count, scale: scale, into: y, planePitch: planePitch)
}

/// `KCPVector.softArgminPixels` of the active set.
@inline(__always)
func softArgminPixels(_ x: UnsafePointer<Float>, disparities: Int, stride: Int, count: Int, sign: Float,
                      into y: UnsafeMutablePointer<Float>)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.softArgminPixels(x, disparities: disparities, stride: stride, count: count, sign: sign,
                                                into: y)
    }
    #endif
    KCPVector.softArgminPixels(x, disparities: disparities, stride: stride, count: count, sign: sign, into: y)
}

/// `KCPVector.softArgminGradientPixels` of the active set.
@inline(__always)
func softArgminGradientPixels(_ x: UnsafePointer<Float>, disparities: Int, stride: Int, count: Int, sign: Float,
                              gradient g: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>)
{
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.softArgminGradientPixels(x, disparities: disparities, stride: stride, count: count,
                                                        sign: sign, gradient: g, into: dx)
    }
    #endif
    KCPVector.softArgminGradientPixels(x, disparities: disparities, stride: stride, count: count, sign: sign,
                                       gradient: g, into: dx)
}

/// `KCPVector.splitPhases` of the active set.
@inline(__always)
func splitPhases(_ line: UnsafePointer<Float>, count: Int, into phases: UnsafeMutablePointer<Float>, phasePitch: Int) {
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.splitPhases(line, count: count, into: phases, phasePitch: phasePitch)
    }
    #endif
    KCPVector.splitPhases(line, count: count, into: phases, phasePitch: phasePitch)
}

/// `KCPVector.joinPhases` of the active set.
@inline(__always)
func joinPhases(_ phases: UnsafePointer<Float>, phasePitch: Int, count: Int, into line: UnsafeMutablePointer<Float>) {
    #if arch(x86_64)
    if InstructionSet.active == .avx512 {
        return KCPVectorAVX512.joinPhases(phases, phasePitch: phasePitch, count: count, into: line)
    }
    #endif
    KCPVector.joinPhases(phases, phasePitch: phasePitch, count: count, into: line)
}

/// Where each pixel of a `channelVectorTile` reads, in floats from the run's start.
typealias PixelOffsets = KCPVector.PixelOffsets

/// Output pixels and channels of one `directConvTile` (the same in every build).
let directTile = (pixels: KCPVector.directTilePixels, channels: KCPVector.directTileChannels,
                  rowPitch: KCPVector.directTileRowPitch)

/// The most output pixels of one `depthwiseVectorTile` call (the same in every build).
let depthwiseVectorPixels = KCPVector.depthwiseVectorPixels

/// Output channels per vector and output pixels of one `channelVectorTile` (the same in every build).
let channelVectorTileShape = (lanes: KCPVector.channelVectorLanes, pixels: KCPVector.channelVectorPixels)
