/// Volumetric convolution, NCDHW (see `Conv3d`), on the plane conv's kernels.
///
/// Output slice `z` of a sample and group is a plane conv whose input
/// channels are the `kd * I/g` channels of the input slices
/// `z*sd + t*dd - front` of its depth taps `t`, stacked tap by tap, `(t, c)`,
/// with the weights `[O, kd * I/g, kh, kw]` (`depthTapsFirst`): the
/// `stacked` geometry. 3x3 plane taps of stride 1 with channels and tiles
/// enough run Winograd's F(4x4, 3x3) over the slices (`WinogradConvolution`
/// with `WinogradSlices`): each input slice is transformed once, and each
/// output slice's product takes its taps' slices as one block of rows.
/// Where the direct kernel suits it
/// (`DirectConvolution.suits`), each tile of output rows fills its window
/// from the `kd` slices (zero for taps in the depth padding) and sums every
/// tap in registers. Otherwise the output slice is `W_g X_z`, `X_z` the
/// unfolded (`unfold`) slices of the valid taps one under another, rows
/// `(t, c, p, q)`; taps in the depth padding are left out of the product (a
/// contiguous block of its rows and columns). Each job computes one tile of
/// output rows of one slice of one sample and group, so the result does not
/// depend on the thread count. On a `[1, 64, 48, 64, 128]` volume, 3x3x3,
/// 64 -> 64, one thread, the forward takes 1.01x PyTorch 2.13's time and the
/// forward with both gradients 1.05x (docs/results.md, benchmarks/volume_ops.py).

/// The sizes of a volumetric convolution, `x [N, C, D, H, W]`,
/// `W [O, C/g, kd, kh, kw]`, `y [N, O, Dout, Hout, Wout]`: the geometry of
/// one depth slice's plane conv (channels `D*H*W` apart, output channels
/// `Dout*Hout*Wout`), the depth axis, and tiles of output rows sized for the
/// `kd` stacked unfoldings.
struct Conv3dGeometry {
    let plane: ConvGeometry
    let depth: Int, outDepth: Int, kd: Int
    let axis: DepthAxis
    /// Output rows per tile (the last tile may have fewer), and tiles per slice.
    let blockRows: Int, blocks: Int

    /// Floats per stacked unfolded tile the block size aims for, and the fewest
    /// columns a tile has where the slice allows (as `ConvGeometry`'s).
    private static let tileFloats = 1 << 16, tileColumns = 128
    /// What `tileFloats` a weight gradient's geometry takes: its products sum over a tile's columns,
    /// and 4 output rows of 128 (1 << 20 over the stacked taps; one slice's tile of 1.2 MB) ran 2% faster
    /// than 1 row and 7% faster than 8 on `[1, 64, 48, 64, 128]`, 3x3x3, 64 -> 64 (measured).
    static let gradientTileFloats = 1 << 20
    /// Floats of the direct kernel's window (512 KB, in L2): its `kd * I/g` stacked channels would
    /// leave 2-D's 128 KB one row per tile, each input row filled thrice; 1.5% faster on
    /// `[1, 64, 48, 64, 128]`, 3x3x3, 64 -> 64 (measured).
    static let windowFloats = 1 << 17

    init(input: [Int], weight: [Int], output: [Int], _ conv: Conv3d, tileFloats: Int = Self.tileFloats) {
        (depth, outDepth, kd, axis) = (input[2], output[2], weight[2], conv.depth)
        plane = ConvGeometry(input: [input[0], input[1], input[3], input[4]],
                             weight: [weight[0], weight[1], weight[3], weight[4]],
                             output: [output[0], output[1], output[3], output[4]], conv.plane,
                             channelStride: input[2] * input[3] * input[4],
                             outputChannelStride: output[2] * output[3] * output[4])
        let (outHeight, outWidth) = (output[3], output[4])
        let most = max(1, (Self.tileColumns + outWidth - 1) / max(outWidth, 1),
                       tileFloats / max(weight[1] * weight[2] * weight[3] * weight[4] * outWidth, 1))
        blocks = max(1, (outHeight + most - 1) / most)
        blockRows = max(1, (outHeight + blocks - 1) / blocks)
    }

    var batch: Int { plane.batch }

    /// The plane conv of one output slice over the stacked input channels `(t, c)` of its depth taps.
    var stacked: ConvGeometry {
        ConvGeometry(input: [batch, kd * plane.channels, plane.height, plane.width],
                     weight: [plane.outputs, kd * plane.perGroup, plane.kh, plane.kw],
                     output: [batch, plane.outputs, plane.outHeight, plane.outWidth], plane.conv,
                     channelStride: volume, outputChannelStride: outVolume)
    }
    /// Input floats per channel.
    var volume: Int { depth * plane.plane }
    /// Output floats per channel.
    var outVolume: Int { outDepth * plane.pixels }
    /// Rows of the stacked unfolded matrix: `(t, c, p, q)`.
    var patch: Int { kd * plane.patch }
    /// Floats of the largest stacked tile.
    var tileSize: Int { patch * blockRows * plane.outWidth }

    /// The output rows of tile `block`.
    func rows(_ block: Int) -> Range<Int> { (block * blockRows)..<min(plane.outHeight, (block + 1) * blockRows) }

    /// The depth taps `t` whose input slice `slice(z, tap: t)` lies inside the input.
    func taps(_ z: Int) -> Range<Int> {
        ConvGeometry.inside(z * axis.stride - axis.front, step: axis.dilation, input: depth, output: kd)
    }

    /// The input slice depth tap `t` of output slice `z` reads.
    func slice(_ z: Int, tap t: Int) -> Int { z * axis.stride + t * axis.dilation - axis.front }

    /// The output slices `z` and taps `t` that read input slice `i` (`slice(z, tap: t) == i`), by tap.
    func readers(_ i: Int) -> [(z: Int, t: Int)] {
        (0..<kd).compactMap { t in
            let reach = i + axis.front - t * axis.dilation
            guard reach >= 0, reach % axis.stride == 0, reach / axis.stride < outDepth else { return nil }
            return (reach / axis.stride, t)
        }
    }

    /// The depth axis as Winograd's plane convs take it, where its stride and dilation are 1.
    var winogradSlices: WinogradSlices? {
        guard axis.stride == 1 && axis.dilation == 1 else { return nil }
        return WinogradSlices(count: depth, outputs: outDepth, taps: kd, front: axis.front)
    }

    /// Whether every stride is 1 and no padding reaches past the kernel's
    /// extent, so that the input gradient is a convolution too.
    var inputGradientIsConvolution: Bool {
        let (p, (dh, dw)) = (plane.conv.padding, plane.conv.dilation)
        let (rh, rw, rd) = (dh * (plane.kh - 1), dw * (plane.kw - 1), axis.dilation * (kd - 1))
        return axis.stride == 1 && plane.conv.stride == (1, 1) && max(axis.front, axis.back) <= rd
            && max(p.0, p.2) <= rh && max(p.1, p.3) <= rw
    }
}

/// `W [O, I/g, kd, kh, kw]` rearranged to `[O, kd, I/g, kh, kw]`, the row order of a stacked tile.
private func depthTapsFirst(_ weight: Tensor) -> [Float] {
    let shape = weight.shape
    return swappingAxes(weight.data, outer: shape[0], shape[1], shape[2], inner: shape[3] * shape[4])
}

/// Row-major `[outer, a, b, inner]` as `[outer, b, a, inner]` (swapped back with `a` and `b` exchanged).
private func swappingAxes(_ data: [Float], outer: Int, _ a: Int, _ b: Int, inner: Int) -> [Float] {
    var swapped = [Float](repeating: 0, count: data.count)
    for o in 0..<outer {
        for i in 0..<a {
            for j in 0..<b {
                let source = ((o * a + i) * b + j) * inner, target = ((o * b + j) * a + i) * inner
                for k in 0..<inner { swapped[target + k] = data[source + k] }
            }
        }
    }
    return swapped
}

/// `y = W * x + b` (see `Conv3d`), `y` shaped `outputShape`; an inference
/// batchnorm, a residual add and an activation that follow are applied to each tile
/// as it is written, as `conv2dForward` does (`ConvEpilogue`, `convOutput`).
func conv3dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, _ conv: Conv3d, outputShape: [Int],
                   normalization: (scale: [Float], shift: [Float])? = nil, residual: consuming Tensor? = nil,
                   residualReusable: Bool = false, activation: Activation.Kind? = nil) -> Tensor
{
    let s = Conv3dGeometry(input: x.shape, weight: weight.shape, output: outputShape, conv)
    let path = Conv3dPath(s), reusable = residualReusable && path.writesEachOutputOnce
    return convOutput(shape: outputShape, residual: consume residual, reusable: reusable) { y, r in
        x.data.withUnsafeBufferPointer { xs in
            withConvEpilogue(bias: bias, normalization: normalization, residual: r, activation: activation,
                             output: y) { epilogue in
                let x = xs.baseAddress!
                switch path {
                case let .winograd(slices):
                    winogradConvolution(x, weight: weight, arranged: depthTapsFirst, s.plane, slices: slices,
                                        epilogue: epilogue, into: y)
                case .direct: directConv3d(x, weight: weight, s, epilogue: epilogue, into: y)
                case .unfolded:
                    let arranged = weight.derived("depth taps first", layout: []) { depthTapsFirst(weight) }
                    unfoldedConv3d(x, weight: arranged, s, epilogue: epilogue, into: y)
                }
            }
        }
    }
}

/// The path `conv3dForward` takes for a geometry: the first, in this order, that suits it.
enum Conv3dPath {
    case winograd(WinogradSlices), direct, unfolded

    init(_ s: Conv3dGeometry) {
        if let slices = s.winogradSlices, WinogradConvolution.suits(s.plane, slices: slices) {
            self = .winograd(slices)
        } else if DirectConvolution.suits(s.stacked) {
            self = .direct
        } else {
            self = .unfolded
        }
    }

    /// Whether the path writes each output once, through the epilogue (`Conv2dPath.writesEachOutputOnce`).
    var writesEachOutputOnce: Bool {
        if case .direct = self { return true }
        return false
    }
}

/// Each tile of output rows of each output slice, sample and group as one
/// product of the stacked unfolded taps, then through the epilogue in place.
private func unfoldedConv3d(_ x: UnsafePointer<Float>, weight: [Float], _ s: Conv3dGeometry, epilogue: ConvEpilogue,
                            into y: UnsafeMutablePointer<Float>)
{
    let p = s.plane
    weight.withUnsafeBufferPointer { ws in
        parallelFor(s.batch * p.groups * s.outDepth * s.blocks, scratch: s.tileSize) { job, tile in
            let (block, z, sample) = (job % s.blocks, job / s.blocks % s.outDepth, job / s.blocks / s.outDepth)
            let (n, g) = (sample / p.groups, sample % p.groups), rows = s.rows(block)
            let span = rows.count * p.outWidth, taps = s.taps(z)
            let out = y + (n * p.outputs + g * p.outPerGroup) * s.outVolume + z * p.pixels + rows.lowerBound * p.outWidth
            if taps.isEmpty {
                for o in 0..<p.outPerGroup { (out + o * s.outVolume).update(repeating: 0, count: span) }
            } else {
                let input = x + (n * p.channels + g * p.perGroup) * s.volume
                for t in taps {
                    unfold(input + s.slice(z, tap: t) * p.plane, p, rows: rows, into: tile + t * p.patch * span)
                }
                serialMatrixProduct(m: p.outPerGroup, n: span, k: taps.count * p.patch,
                                    ws.baseAddress! + g * p.outPerGroup * s.patch + taps.lowerBound * p.patch,
                                    lda: s.patch, tile + taps.lowerBound * p.patch * span, ldb: span, out, ldc: s.outVolume)
            }
            epilogue.store(out, channel: g * p.outPerGroup, to: out, count: span, rows: p.outPerGroup,
                           valuePitch: s.outVolume, linePitch: s.outVolume)
        }
    }
}

/// The direct kernel over every tile of output rows of every output slice,
/// sample and group, its window filled tap by tap from the input slices.
private func directConv3d(_ x: UnsafePointer<Float>, weight: Tensor, _ s: Conv3dGeometry, epilogue: ConvEpilogue,
                          into y: UnsafeMutablePointer<Float>)
{
    let p = s.plane, direct = DirectConvolution(s.stacked, windowFloats: Conv3dGeometry.windowFloats)
    let packed = direct.channelBlocks.packedWeights(of: weight, arranged: depthTapsFirst)
    packed.withUnsafeBufferPointer { weights in
        direct.withTaps { windowTaps in
            parallelFor(s.batch * p.groups * s.outDepth * direct.tiles, scratch: direct.scratchSize) { job, window in
                let (tile, z, sample) = (job % direct.tiles, job / direct.tiles % s.outDepth, job / direct.tiles / s.outDepth)
                let (n, g) = (sample / p.groups, sample % p.groups), rows = direct.rows(tile), taps = s.taps(z)
                let input = x + (n * p.channels + g * p.perGroup) * s.volume
                for t in 0..<s.kd {
                    let planes = (t * p.perGroup)..<((t + 1) * p.perGroup)
                    if taps.contains(t) {
                        direct.fillWindow(input + s.slice(z, tap: t) * p.plane, rows: rows, channels: planes, into: window)
                    } else {
                        clearFloats(window + planes.lowerBound * direct.channelPitch, count: planes.count * direct.channelPitch)
                    }
                }
                direct.compute(window: window, weights: weights.baseAddress!, group: g, rows: rows,
                               taps: windowTaps, epilogue: epilogue, tile: window + direct.tileOffset,
                               into: y + (n * p.outputs + g * p.outPerGroup) * s.outVolume + z * p.pixels)
            }
        }
    }
}

/// Gradients of `conv3dForward` given `gradient = dL/dy`: `dL/dW_g = sum G_g X^T`
/// over the stacked tiles (`conv3dWeightGradient`), `dL/dx` the adjoint
/// (`conv3dInputGradient`), `dL/db[o] = sum_{n, z, h, w} G[n, o, z, h, w]`.
/// - Returns: `dL/dx` shaped like `x`, `dL/dW` like `weight`, `dL/db` `[O]` if `hasBias`.
func conv3dBackward(_ x: Tensor, weight: Tensor, hasBias: Bool, _ conv: Conv3d,
                    gradient: Tensor) -> (input: Tensor, weight: Tensor, bias: Tensor?)
{
    let s = Conv3dGeometry(input: x.shape, weight: weight.shape, output: gradient.shape, conv)
    let wide = Conv3dGeometry(input: x.shape, weight: weight.shape, output: gradient.shape, conv,
                              tileFloats: Conv3dGeometry.gradientTileFloats)
    return (conv3dInputGradient(weight: weight, s, gradient: gradient), conv3dWeightGradient(x, wide, gradient: gradient),
            hasBias ? channelSums(gradient) : nil)
}

/// `dL/dW_g = sum G_g X^T`, gathered by input slice: each tile of output
/// rows of each input slice `i` is unfolded once (`unfold`) and multiplied
/// with the gradient of every output slice `z` that reads it through a tap
/// `t` (`z*sd + t*dd - front = i`) into tap `t`'s columns of the weights with
/// the depth taps first, so no slice is unfolded once per tap. The units are
/// split into at most `weightGradientPartials` fixed runs whose partial sums
/// are added in run order, as `conv2dWeightGradient` does.
func conv3dWeightGradient(_ x: Tensor, _ s: Conv3dGeometry, gradient: Tensor) -> Tensor {
    let p = s.plane, units = s.batch * s.depth * s.blocks, runs = min(units, weightGradientPartials)
    let size = p.outputs * s.patch
    var partials = [Float](repeating: 0, count: runs * size)
    x.data.withUnsafeBufferPointer { xs in
        gradient.data.withUnsafeBufferPointer { gs in
            partials.withUnsafeMutableBufferPointer { partial in
                parallelFor(runs * p.groups, scratch: p.patch * s.blockRows * p.outWidth) { job, tile in
                    let (run, g) = (job / p.groups, job % p.groups)
                    let sum = partial.baseAddress! + run * size + g * p.outPerGroup * s.patch
                    for unit in (units * run / runs)..<(units * (run + 1) / runs) {
                        let (block, slice, n) = (unit % s.blocks, unit / s.blocks % s.depth, unit / s.blocks / s.depth)
                        let readers = s.readers(slice)
                        if readers.isEmpty { continue }
                        let rows = s.rows(block), span = rows.count * p.outWidth
                        let input = xs.baseAddress! + (n * p.channels + g * p.perGroup) * s.volume + slice * p.plane
                        unfold(input, p, rows: rows, into: tile)
                        for (z, t) in readers {
                            let rowGradient = gs.baseAddress! + (n * p.outputs + g * p.outPerGroup) * s.outVolume
                                + z * p.pixels + rows.lowerBound * p.outWidth
                            serialMatrixProduct(m: p.outPerGroup, n: p.patch, k: span, rowGradient, lda: s.outVolume,
                                                tile, ldb: span, transposeB: true, beta: 1, sum + t * p.patch, ldc: s.patch)
                        }
                    }
                }
            }
        }
    }
    var packed = [Float](repeating: 0, count: size)
    partials.withUnsafeBufferPointer { partial in
        packed.withUnsafeMutableBufferPointer { addPartialSums(partial, into: $0.baseAddress!, rows: p.outputs, columns: s.patch) }
    }
    return Tensor(shape: [p.outputs, p.perGroup, s.kd, p.kh, p.kw],
                  data: swappingAxes(packed, outer: p.outputs, s.kd, p.perGroup, inner: p.kh * p.kw))
}

/// `dL/dx`, the adjoint of `conv3dForward` in its input. With unit strides
/// (and padding within the kernel's reach) it is the convolution of `dL/dy`
/// with the transposed, flipped kernels (`transposedKernels`) and padding
/// `d*(k-1) - pad` on each side. Otherwise each input slice of each sample
/// and group gathers, for every output slice `z` and tap `t` that read it,
/// the unfolded gradient `W_t^T G_z` folded back onto it (`fold`): slices
/// are written by one job each, in a fixed order. As a linear map of
/// `gradient` this is the transposed convolution (`convTranspose3dForward`).
func conv3dInputGradient(weight: Tensor, _ s: Conv3dGeometry, gradient: Tensor) -> Tensor {
    let p = s.plane, inputShape = [s.batch, p.channels, s.depth, p.height, p.width]
    if s.inputGradientIsConvolution {
        let (pad, (dh, dw)) = (p.conv.padding, p.conv.dilation), rd = s.axis.dilation * (s.kd - 1)
        let (rh, rw) = (dh * (p.kh - 1), dw * (p.kw - 1))
        let transposed = Conv3d(depth: DepthAxis(front: rd - s.axis.front, back: rd - s.axis.back, dilation: s.axis.dilation),
                                plane: Conv2d(padding: (rh - pad.0, rw - pad.1, rh - pad.2, rw - pad.3),
                                              dilation: p.conv.dilation, groups: p.groups))
        return conv3dForward(gradient, weight: transposedKernels(weight, groups: p.groups), bias: nil, transposed,
                             outputShape: inputShape)
    }
    let packed = depthTapsFirst(weight)
    var dx = Tensor(zeros: inputShape)
    packed.withUnsafeBufferPointer { ws in
        gradient.data.withUnsafeBufferPointer { gs in
            dx.data.withUnsafeMutableBufferPointer { dxs in
                parallelFor(s.batch * p.groups * s.depth, scratch: p.patch * s.blockRows * p.outWidth) { job, tile in
                    let (slice, g, n) = (job % s.depth, job / s.depth % p.groups, job / s.depth / p.groups)
                    let target = dxs.baseAddress! + (n * p.channels + g * p.perGroup) * s.volume + slice * p.plane
                    for (z, t) in s.readers(slice) {
                        for block in 0..<s.blocks {
                            let rows = s.rows(block), span = rows.count * p.outWidth
                            let rowGradient = gs.baseAddress! + (n * p.outputs + g * p.outPerGroup) * s.outVolume
                                + z * p.pixels + rows.lowerBound * p.outWidth
                            serialMatrixProduct(m: p.patch, n: span, k: p.outPerGroup,
                                                ws.baseAddress! + g * p.outPerGroup * s.patch + t * p.patch, lda: s.patch,
                                                transposeA: true, rowGradient, ldb: s.outVolume, tile, ldc: span)
                            fold(tile, p, rows: rows, into: target)
                        }
                    }
                }
            }
        }
    }
    return dx
}

/// Volumetric transposed convolution as the adjoint of `conv3dForward` (see
/// `ConvTranspose3d` and, for the 2-D case, `convTranspose2dForward`):
/// `y = C^T x + b` with `C` the conv `t.conv` from `y`'s shape to `x`'s.
func convTranspose3dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, _ t: ConvTranspose3d,
                            outputShape: [Int]) -> Tensor
{
    let s = Conv3dGeometry(input: outputShape, weight: weight.shape, output: x.shape, t.conv)
    var y = conv3dInputGradient(weight: weight, s, gradient: x)
    if let bias { addChannelBias(&y, bias.data) }
    return y
}

/// Gradients of `convTranspose3dForward` given `gradient = dL/dy`:
/// `dL/dx = C dL/dy`, `dL/dW` the conv's weight gradient with `dL/dy` as its
/// input and `x` as its output gradient, `dL/db[o] = sum dL/dy[n, o, ...]`.
func convTranspose3dBackward(_ x: Tensor, weight: Tensor, hasBias: Bool, _ t: ConvTranspose3d,
                             gradient: Tensor) -> (input: Tensor, weight: Tensor, bias: Tensor?)
{
    let s = Conv3dGeometry(input: gradient.shape, weight: weight.shape, output: x.shape, t.conv)
    return (conv3dForward(gradient, weight: weight, bias: nil, t.conv, outputShape: x.shape),
            conv3dWeightGradient(gradient, s, gradient: x), hasBias ? channelSums(gradient) : nil)
}
