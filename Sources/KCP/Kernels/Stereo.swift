import Glibc

/// Stereo matching ops: the correlation cost volume and disparity regression.

/// `y[n, d, h, w] = scale * sum_c left[n, c, h, w] * right[n, c, h, w - d]`
/// for `d < maxDisparity`, zero where `w - d < 0` (DispNetC-style
/// correlation, Mayer et al. 2016).
func correlationForward(_ left: Tensor, _ right: Tensor, maxDisparity: Int, scale: Float) -> Tensor {
    let (batch, channels, height, width) = (left.shape[0], left.shape[1], left.shape[2], left.shape[3])
    let plane = height * width
    var y = Tensor(zeros: [batch, maxDisparity, height, width])
    left.data.withUnsafeBufferPointer { ls in
        right.data.withUnsafeBufferPointer { rs in
            y.data.withUnsafeMutableBufferPointer { ys in
                parallelFor(batch * maxDisparity) { job in
                    let n = job / maxDisparity, d = job % maxDisparity
                    let out = ys.baseAddress! + job * plane
                    for c in 0..<channels {
                        let l = ls.baseAddress! + (n * channels + c) * plane, r = rs.baseAddress! + (n * channels + c) * plane
                        for h in 0..<height where d < width {
                            for w in d..<width { out[h * width + w] += l[h * width + w] * r[h * width + w - d] }
                        }
                    }
                    for k in 0..<plane { out[k] *= scale }
                }
            }
        }
    }
    return y
}

/// Backward of `correlationForward`, for `d < maxDisparity`:
/// `dL/dleft[n, c, h, w] = scale * sum_{d <= w} gradient[n, d, h, w] * right[n, c, h, w - d]`,
/// `dL/dright[n, c, h, v] = scale * sum_{d < width - v} gradient[n, d, h, v + d] * left[n, c, h, v + d]`.
/// Parallel over `(n, c)` planes; each element sums over `d` in increasing
/// order, so the result does not depend on the thread count.
func correlationBackward(_ left: Tensor, _ right: Tensor, maxDisparity: Int, scale: Float,
                         gradient: Tensor) -> (left: Tensor, right: Tensor)
{
    let (batch, channels, height, width) = (left.shape[0], left.shape[1], left.shape[2], left.shape[3])
    precondition(right.shape == left.shape && gradient.shape == [batch, maxDisparity, height, width],
                 "left \(left.shape), right \(right.shape) and gradient \(gradient.shape) do not match")
    let plane = height * width
    var dLeft = Tensor(zeros: left.shape), dRight = Tensor(zeros: right.shape)
    left.data.withUnsafeBufferPointer { ls in
        right.data.withUnsafeBufferPointer { rs in
            gradient.data.withUnsafeBufferPointer { gs in
                dLeft.data.withUnsafeMutableBufferPointer { dls in
                    dRight.data.withUnsafeMutableBufferPointer { drs in
                        parallelFor(batch * channels) { job in
                            let n = job / channels
                            let l = ls.baseAddress! + job * plane, r = rs.baseAddress! + job * plane
                            let dl = dls.baseAddress! + job * plane, dr = drs.baseAddress! + job * plane
                            for d in 0..<min(maxDisparity, width) {
                                let g = gs.baseAddress! + (n * maxDisparity + d) * plane
                                for h in 0..<height {
                                    let row = h * width
                                    for w in d..<width {
                                        dl[row + w] += g[row + w] * r[row + w - d]
                                        dr[row + w - d] += g[row + w] * l[row + w]
                                    }
                                }
                            }
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
    return (dLeft, dRight)
}

/// Soft-argmin disparity regression (Kendall et al., GC-Net, 2017):
/// `y[n, 0, h, w] = sum_d d * softmax_d(-x[n, d, h, w])`.
func softArgminForward(_ x: Tensor) -> Tensor {
    let negated = Tensor(shape: x.shape, data: x.data.map { -$0 })
    let p = softmaxForward(negated)
    let (batch, disparities, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    var y = Tensor(zeros: [batch, 1, x.shape[2], x.shape[3]])
    for n in 0..<batch {
        for d in 1..<max(disparities, 1) {
            for k in 0..<plane { y.data[n * plane + k] += Float(d) * p.data[(n * disparities + d) * plane + k] }
        }
    }
    return y
}

/// Backward of `softArgminForward`: with `p = softmax_d(-x)` and
/// `y = sum_d d * p_d`, `dL/dx[n, d] = gradient[n, 0] * p_d * (y - d)`
/// (at each pixel), computed as the negated `softmaxBackward` of `p` for the
/// spread gradient `gradient[n, 0] * d`. Recomputes `p` from `x`.
func softArgminBackward(_ x: Tensor, gradient: Tensor) -> Tensor {
    let (batch, disparities, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    precondition(gradient.shape == [batch, 1, x.shape[2], x.shape[3]],
                 "gradient \(gradient.shape) does not match input \(x.shape)")
    let p = softmaxForward(Tensor(shape: x.shape, data: x.data.map { -$0 }))
    var spread = Tensor(zeros: x.shape)
    for n in 0..<batch {
        for d in 1..<max(disparities, 1) {
            for k in 0..<plane { spread.data[(n * disparities + d) * plane + k] = Float(d) * gradient.data[n * plane + k] }
        }
    }
    var dx = softmaxBackward(output: p, gradient: spread)
    dx.data = dx.data.map { -$0 }
    return dx
}
