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
