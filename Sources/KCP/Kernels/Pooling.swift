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

/// Gradient of `pool2dForward` given `gradient = dL/dy`: max pooling sends
/// each window's `g` to its first maximal element in row-major window order
/// (the element PyTorch's argmax picks; ties get nothing else); average
/// pooling adds `g / divisor` to every real element of the window, with the
/// forward's divisor (`kh * kw` if `countIncludePad`, else the real count).
func pool2dBackward(_ x: Tensor, _ pool: Pool2d, max useMax: Bool, gradient: Tensor) -> Tensor {
    let (height, width) = (x.shape[2], x.shape[3])
    let (outHeight, outWidth) = (gradient.shape[2], gradient.shape[3])
    var dx = Tensor(zeros: x.shape)
    x.data.withUnsafeBufferPointer { xs in
        gradient.data.withUnsafeBufferPointer { gs in
            dx.data.withUnsafeMutableBufferPointer { dxs in
                parallelFor(x.shape[0] * x.shape[1]) { plane in
                    let input = xs.baseAddress! + plane * height * width
                    let output = gs.baseAddress! + plane * outHeight * outWidth
                    let target = dxs.baseAddress! + plane * height * width
                    for oy in 0..<outHeight {
                        for ox in 0..<outWidth {
                            let y0 = oy * pool.stride.0 - pool.padding.0, x0 = ox * pool.stride.1 - pool.padding.1
                            let rows = max(y0, 0)..<min(y0 + pool.kernel.0, height)
                            let cols = max(x0, 0)..<min(x0 + pool.kernel.1, width)
                            let g = output[oy * outWidth + ox]
                            if useMax {
                                var best = -Float.infinity, argmax = -1
                                for iy in rows {
                                    for ix in cols where argmax < 0 || input[iy * width + ix] > best {
                                        (best, argmax) = (input[iy * width + ix], iy * width + ix)
                                    }
                                }
                                if argmax >= 0 { target[argmax] += g }
                            } else {
                                let divisor = pool.countIncludePad ? pool.kernel.0 * pool.kernel.1
                                    : Swift.max(rows.count * cols.count, 1)
                                let share = g / Float(divisor)
                                for iy in rows {
                                    for ix in cols { target[iy * width + ix] += share }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return dx
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

/// Gradient of `globalAvgPoolForward`: `dL/dx[n, c, h, w] = g[n, c] / (H * W)`.
func globalAvgPoolBackward(inputShape: [Int], gradient: Tensor) -> Tensor {
    let inner = inputShape[2] * inputShape[3]
    var dx = Tensor(zeros: inputShape)
    dx.data.withUnsafeMutableBufferPointer { dxs in
        parallelFor(gradient.count) { plane in
            (dxs.baseAddress! + plane * inner).update(repeating: gradient.data[plane] / Float(inner), count: inner)
        }
    }
    return dx
}
