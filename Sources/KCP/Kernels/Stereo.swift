import Glibc

/// Stereo matching ops: cost volumes over disparities and disparity regression.
///
/// Every volume pairs left pixel `w` with right pixel `w - d` for `d < D`
/// and is zero where `w < d`. Row `h` of plane `d` reads the row's last
/// `W - d` entries of the left features and first `W - d` of the right ones,
/// so the inner loops run over contiguous runs.

/// GwcNet's group-wise correlation (Guo et al. 2019, `build_gwc_volume`),
/// `[N, C, H, W]` x2 -> `[N, G, D, H, W]`:
/// `y[n, g, d, h, w] = scale * sum_{c in group g} left[n, c, h, w] * right[n, c, h, w - d]`
/// over the `C / G` channels `g C/G ..< (g + 1) C/G`. Parallel over the `N G H`
/// rows: a row's group of channels is copied together (planes lie a power
/// of two apart and would share cache sets), the right rows behind `D + 3`
/// zeros that stand for `w < d`, and serves every disparity, four at a time
/// (`correlationRow`, each output summing its channels in increasing order
/// in a register).
func groupCorrelationForward(_ left: Tensor, _ right: Tensor, maxDisparity: Int, groups: Int, scale: Float) -> Tensor {
    let (batch, channels, height, width) = (left.shape[0], left.shape[1], left.shape[2], left.shape[3])
    let (perGroup, plane) = (channels / groups, height * width)
    let lead = (maxDisparity + 3 + 15) / 16 * 16, pitch = lead + (width + 15) / 16 * 16
    return Tensor(shape: [batch, groups, maxDisparity, height, width]) { ys in
        left.data.withUnsafeBufferPointer { ls in
            right.data.withUnsafeBufferPointer { rs in
                parallelFor(batch * groups * height, scratch: 2 * perGroup * pitch) { job, rows in
                    let (group, row) = (job / height, job % height * width)
                    let (lefts, rights) = (rows, rows + perGroup * pitch + lead)
                    // Channel c of sample n's group g is plane (n G + g) C/G + c of the features.
                    for c in 0..<perGroup {
                        let source = (group * perGroup + c) * plane + row
                        copyFloats(ls.baseAddress! + source, to: lefts + c * pitch, count: width)
                        clearFloats(rights + c * pitch - lead, count: lead)
                        copyFloats(rs.baseAddress! + source, to: rights + c * pitch, count: width)
                    }
                    for d in Swift.stride(from: 0, to: maxDisparity, by: 4) {
                        correlationRow(lefts, rights, channels: perGroup, pitch: pitch, width: width, firstDisparity: d,
                                       count: min(4, maxDisparity - d), scale: scale,
                                       into: ys.baseAddress! + (group * maxDisparity + d) * plane + row, planePitch: plane)
                    }
                }
            }
        }
    }
}

/// Backward of `groupCorrelationForward`, with `g(c)` the group of channel `c`:
/// `dL/dleft[n, c, h, w] = scale * sum_{d <= w} gradient[n, g(c), d, h, w] * right[n, c, h, w - d]`,
/// `dL/dright[n, c, h, v] = scale * sum_{d < W - v} gradient[n, g(c), d, h, v + d] * left[n, c, h, v + d]`.
/// Parallel over `(n, c)` planes; each element sums over `d` in increasing
/// order, so the result does not depend on the thread count.
func groupCorrelationBackward(_ left: Tensor, _ right: Tensor, maxDisparity: Int, groups: Int, scale: Float,
                              gradient: Tensor) -> (left: Tensor, right: Tensor)
{
    let (batch, channels, height, width) = (left.shape[0], left.shape[1], left.shape[2], left.shape[3])
    precondition(right.shape == left.shape && gradient.count == batch * groups * maxDisparity * height * width,
                 "left \(left.shape), right \(right.shape) and gradient \(gradient.shape) do not match")
    let (perGroup, plane) = (channels / groups, height * width)
    var dLeft = Tensor(zeros: left.shape), dRight = Tensor(zeros: right.shape)
    left.data.withUnsafeBufferPointer { ls in
        right.data.withUnsafeBufferPointer { rs in
            gradient.data.withUnsafeBufferPointer { gs in
                dLeft.data.withUnsafeMutableBufferPointer { dls in
                    dRight.data.withUnsafeMutableBufferPointer { drs in
                        parallelFor(batch * channels) { job in
                            let group = job / perGroup
                            let l = ls.baseAddress! + job * plane, r = rs.baseAddress! + job * plane
                            let dl = dls.baseAddress! + job * plane, dr = drs.baseAddress! + job * plane
                            for d in 0..<min(maxDisparity, width) {
                                let g = gs.baseAddress! + (group * maxDisparity + d) * plane
                                for row in stride(from: 0, to: plane, by: width) {
                                    addProduct(dl + row + d, g + row + d, r + row, width - d)
                                    addProduct(dr + row, g + row + d, l + row + d, width - d)
                                }
                            }
                            if scale != 1 {
                                for k in 0..<plane {
                                    dl[k] *= scale
                                    dr[k] *= scale
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return (dLeft, dRight)
}

/// DispNetC's correlation (Mayer et al. 2016), `[N, C, H, W]` x2 -> `[N, D, H, W]`:
/// the group correlation with one group, its volume's channel squeezed.
func correlationForward(_ left: Tensor, _ right: Tensor, maxDisparity: Int, scale: Float) -> Tensor {
    let volume = groupCorrelationForward(left, right, maxDisparity: maxDisparity, groups: 1, scale: scale)
    return Tensor(shape: [left.shape[0], maxDisparity, left.shape[2], left.shape[3]], data: volume.data)
}

/// Backward of `correlationForward`: the one-group correlation's.
func correlationBackward(_ left: Tensor, _ right: Tensor, maxDisparity: Int, scale: Float,
                         gradient: Tensor) -> (left: Tensor, right: Tensor)
{
    groupCorrelationBackward(left, right, maxDisparity: maxDisparity, groups: 1, scale: scale, gradient: gradient)
}

/// PSMNet's concatenation volume (Chang and Chen 2018; GwcNet's
/// `build_concat_volume`), `[N, C, H, W]` x2 -> `[N, 2C, D, H, W]`:
/// `y[n, c, d, h, w] = left[n, c, h, w]`, `y[n, C + c, d, h, w] = right[n, c, h, w - d]`
/// for `w >= d`, both halves zero where `w < d`. Parallel over the `N 2C`
/// output channels.
func concatenationVolumeForward(_ left: Tensor, _ right: Tensor, maxDisparity: Int) -> Tensor {
    let (batch, channels, height, width) = (left.shape[0], left.shape[1], left.shape[2], left.shape[3])
    let plane = height * width
    return left.data.withUnsafeBufferPointer { ls in
        right.data.withUnsafeBufferPointer { rs in
            // Every entry is written once: the copies, and zeros where w < d.
            Tensor(shape: [batch, 2 * channels, maxDisparity, height, width]) { ys in
                parallelFor(batch * 2 * channels) { job in
                    let (n, k) = (job / (2 * channels), job % (2 * channels))
                    let isLeft = k < channels
                    let source = (isLeft ? ls : rs).baseAddress! + (n * channels + k % channels) * plane
                    for d in 0..<maxDisparity {
                        let out = ys.baseAddress! + (job * maxDisparity + d) * plane, shift = min(d, width)
                        for row in stride(from: 0, to: plane, by: width) {
                            clearFloats(out + row, count: shift)
                            copyFloats(source + row + (isLeft ? shift : 0), to: out + row + shift, count: width - shift)
                        }
                    }
                }
            }
        }
    }
}

/// Backward of `concatenationVolumeForward`:
/// `dL/dleft[n, c, h, w] = sum_{d <= w} gradient[n, c, d, h, w]`,
/// `dL/dright[n, c, h, v] = sum_{d < W - v} gradient[n, C + c, d, h, v + d]`.
/// Parallel over `(n, c)` planes, summing over `d` in increasing order.
func concatenationVolumeBackward(inputShape: [Int], maxDisparity: Int, gradient: Tensor) -> (left: Tensor, right: Tensor) {
    let (batch, channels, height, width) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
    precondition(gradient.count == batch * 2 * channels * maxDisparity * height * width,
                 "gradient \(gradient.shape) does not match input \(inputShape)")
    let plane = height * width
    var dLeft = Tensor(zeros: inputShape), dRight = Tensor(zeros: inputShape)
    gradient.data.withUnsafeBufferPointer { gs in
        dLeft.data.withUnsafeMutableBufferPointer { dls in
            dRight.data.withUnsafeMutableBufferPointer { drs in
                parallelFor(batch * channels) { job in
                    let (n, c) = (job / channels, job % channels)
                    let dl = dls.baseAddress! + job * plane, dr = drs.baseAddress! + job * plane
                    for d in 0..<min(maxDisparity, width) {
                        let gl = gs.baseAddress! + ((n * 2 * channels + c) * maxDisparity + d) * plane
                        let gr = gs.baseAddress! + ((n * 2 * channels + channels + c) * maxDisparity + d) * plane
                        for row in stride(from: 0, to: plane, by: width) {
                            addScaled(dl + row + d, gl + row + d, 1, width - d)
                            addScaled(dr + row, gr + row + d, 1, width - d)
                        }
                    }
                }
            }
        }
    }
    return (dLeft, dRight)
}

/// Disparity regression over the channels of `[N, D, H, W]` (or `D` of a
/// one-channel volume `[N, 1, D, H, W]`, the same array):
/// `y[n, 0, h, w] = sum_d d * p_d` with `p = softmax_d(sign * x)`; `sign = -1`
/// is GC-Net's soft argmin (Kendall et al. 2017), `sign = 1` PSMNet's regression.
func softArgminForward(_ x: Tensor, sign: Float) -> Tensor {
    let (batch, disparities, height, width) = regressionShape(x)
    return Tensor(shape: [batch, 1, height, width]) { ys in
        x.data.withUnsafeBufferPointer { xs in
            forEachPixelBlock(batch: batch, plane: height * width) { n, pixels in
                softArgminPixels(xs.baseAddress! + n * disparities * height * width + pixels.lowerBound,
                                 disparities: disparities, stride: height * width, count: pixels.count, sign: sign,
                                 into: ys.baseAddress! + n * height * width + pixels.lowerBound)
            }
        }
    }
}

/// Backward of `softArgminForward`: with `y = sum_d d * p_d`,
/// `dL/dx[n, d] = sign * gradient[n, 0] * p_d * (d - y)` (at each pixel),
/// `p` and `y` recomputed from `x`.
func softArgminBackward(_ x: Tensor, sign: Float, gradient: Tensor) -> Tensor {
    let (batch, disparities, height, width) = regressionShape(x), plane = height * width
    precondition(gradient.shape == [batch, 1, height, width], "gradient \(gradient.shape) does not match input \(x.shape)")
    return Tensor(shape: x.shape) { dxs in
        x.data.withUnsafeBufferPointer { xs in
            gradient.data.withUnsafeBufferPointer { gs in
                forEachPixelBlock(batch: batch, plane: plane) { n, pixels in
                    let first = n * disparities * plane + pixels.lowerBound
                    softArgminGradientPixels(xs.baseAddress! + first, disparities: disparities, stride: plane,
                                             count: pixels.count, sign: sign,
                                             gradient: gs.baseAddress! + n * plane + pixels.lowerBound,
                                             into: dxs.baseAddress! + first)
                }
            }
        }
    }
}

/// `[N, D, H, W]` of a regression's input (`[N, D, H, W]` or `[N, 1, D, H, W]`).
private func regressionShape(_ x: Tensor) -> (batch: Int, disparities: Int, height: Int, width: Int) {
    let rank = x.shape.count
    return (x.shape[0], x.shape[rank - 3], x.shape[rank - 2], x.shape[rank - 1])
}

/// `body(n, pixels)` for blocks of 4096 pixels of each sample's plane, in parallel (each pixel's
/// result depends on its own values alone, so the blocks change nothing but the threads' shares).
private func forEachPixelBlock(batch: Int, plane: Int, _ body: (Int, Range<Int>) -> Void) {
    let block = 4096, blocks = (plane + block - 1) / block
    parallelFor(batch * blocks) { job in
        let (n, first) = (job / blocks, job % blocks * block)
        body(n, first..<min(plane, first + block))
    }
}
