/// Max and average pooling over `kh x kw` windows, NCHW, with padding.
/// Max pooling ignores padded positions; average pooling divides by the
/// window size (`countIncludePad`) or by the number of real positions.
func pool2dForward(_ x: Tensor, _ pool: Pool2d, max useMax: Bool, outputShape: [Int]) -> Tensor {
    let (height, width) = (x.shape[2], x.shape[3])
    let (outHeight, outWidth) = (outputShape[2], outputShape[3])
    var y = Tensor(zeros: outputShape)
    x.data.withUnsafeBufferPointer { xs in
        y.data.withUnsafeMutableBufferPointer { ys in
            parallelFor(x.shape[0] * x.shape[1]) { plane in
                let input = xs.baseAddress! + plane * height * width
                let output = ys.baseAddress! + plane * outHeight * outWidth
                for oy in 0..<outHeight {
                    for ox in 0..<outWidth {
                        let y0 = oy * pool.stride.0 - pool.padding.0, x0 = ox * pool.stride.1 - pool.padding.1
                        var best = -Float.infinity, sum: Float = 0, count = 0
                        for iy in max(y0, 0)..<min(y0 + pool.kernel.0, height) {
                            for ix in max(x0, 0)..<min(x0 + pool.kernel.1, width) {
                                let v = input[iy * width + ix]
                                best = Swift.max(best, v)
                                sum += v
                                count += 1
                            }
                        }
                        let divisor = pool.countIncludePad ? pool.kernel.0 * pool.kernel.1 : Swift.max(count, 1)
                        output[oy * outWidth + ox] = useMax ? best : sum / Float(divisor)
                    }
                }
            }
        }
    }
    return y
}

/// `y[n, c] = mean_{h, w} x[n, c, h, w]`.
func globalAvgPoolForward(_ x: Tensor) -> Tensor {
    let planes = x.shape[0] * x.shape[1], inner = x.shape[2] * x.shape[3]
    var y = Tensor(zeros: [x.shape[0], x.shape[1], 1, 1])
    x.data.withUnsafeBufferPointer { xs in
        for plane in 0..<planes { y.data[plane] = Float(sum(xs.baseAddress! + plane * inner, inner) / Double(inner)) }
    }
    return y
}
