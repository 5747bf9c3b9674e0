/// Max and average pooling over `kh x kw` windows, NCHW, with padding,
/// dilation and PyTorch's `ceil_mode`. Max pooling ignores padded positions;
/// average pooling divides by the number of real positions, or with
/// `countIncludePad` by the window's extent clipped to the padded input
/// (`kh * kw` except for a last `ceil_mode` window), as PyTorch does.
func pool2dForward(_ x: Tensor, _ pool: Pool2d, max useMax: Bool, outputShape: [Int]) -> Tensor {
    windowPoolForward(x, PoolWindows(pool, height: x.shape[2], width: x.shape[3], outHeight: outputShape[2],
                                     outWidth: outputShape[3]), max: useMax, outputShape: outputShape)
}

/// Gradient of `pool2dForward` given `gradient = dL/dy`: max pooling sends
/// each window's `g` to its first maximal element in row-major window order
/// (the element PyTorch's argmax picks; ties get nothing else); average
/// pooling adds `g / divisor` to every real element of the window, with the
/// forward's divisor.
func pool2dBackward(_ x: Tensor, _ pool: Pool2d, max useMax: Bool, gradient: Tensor) -> Tensor {
    windowPoolBackward(x, PoolWindows(pool, height: x.shape[2], width: x.shape[3], outHeight: gradient.shape[2],
                                      outWidth: gradient.shape[3]), max: useMax, gradient: gradient)
}

/// Adaptive pooling to the output's size: output `(i, j)` pools input rows
/// `floor(i H / oh) ..< ceil((i + 1) H / oh)` and the columns alike.
func adaptivePoolForward(_ x: Tensor, max useMax: Bool, outputShape: [Int]) -> Tensor {
    windowPoolForward(x, PoolWindows(adaptive: x.shape[2], x.shape[3], outHeight: outputShape[2],
                                     outWidth: outputShape[3]), max: useMax, outputShape: outputShape)
}

/// Gradient of `adaptivePoolForward`: as `pool2dBackward` over the adaptive bins.
func adaptivePoolBackward(_ x: Tensor, max useMax: Bool, gradient: Tensor) -> Tensor {
    windowPoolBackward(x, PoolWindows(adaptive: x.shape[2], x.shape[3], outHeight: gradient.shape[2],
                                      outWidth: gradient.shape[3]), max: useMax, gradient: gradient)
}

/// The max or average of each output's window.
private func windowPoolForward(_ x: Tensor, _ windows: PoolWindows, max useMax: Bool, outputShape: [Int]) -> Tensor {
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
                        var best = -Float.infinity, sum: Float = 0
                        for iy in windows.rows[oy] {
                            for ix in windows.cols[ox] {
                                let v = input[iy * width + ix]
                                best = Swift.max(best, v)
                                sum += v
                            }
                        }
                        output[oy * outWidth + ox] = useMax ? best : sum / windows.divisor(oy, ox)
                    }
                }
            }
        }
    }
    return y
}

/// The gradient of `windowPoolForward` (see `pool2dBackward`).
private func windowPoolBackward(_ x: Tensor, _ windows: PoolWindows, max useMax: Bool, gradient: Tensor) -> Tensor {
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
                            let g = output[oy * outWidth + ox]
                            if useMax {
                                var best = -Float.infinity, argmax = -1
                                for iy in windows.rows[oy] {
                                    for ix in windows.cols[ox] where argmax < 0 || input[iy * width + ix] > best {
                                        (best, argmax) = (input[iy * width + ix], iy * width + ix)
                                    }
                                }
                                if argmax >= 0 { target[argmax] += g }
                            } else {
                                let share = g / windows.divisor(oy, ox)
                                for iy in windows.rows[oy] {
                                    for ix in windows.cols[ox] { target[iy * width + ix] += share }
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

/// The input rows and columns each output position reads (dilated taps
/// inside the input), and the average's divisor.
private struct PoolWindows {
    var rows: [[Int]]
    var cols: [[Int]]
    /// Per output row (column): the window's extent clipped to the padded input.
    var rowExtent: [Int]
    var colExtent: [Int]
    var countIncludePad: Bool

    init(_ pool: Pool2d, height: Int, width: Int, outHeight: Int, outWidth: Int) {
        func taps(_ count: Int, kernel: Int, stride: Int, padding: Int, dilation: Int, size: Int) -> [[Int]] {
            (0..<count).map { o in
                (0..<kernel).map { o * stride - padding + $0 * dilation }.filter { (0..<size).contains($0) }
            }
        }
        // A window starts `padding` before the input and ends at most `end` padding after it.
        func extents(_ count: Int, kernel: Int, stride: Int, padding: Int, end: Int, size: Int) -> [Int] {
            (0..<count).map { o in Swift.min(o * stride - padding + kernel, size + end) - (o * stride - padding) }
        }
        rows = taps(outHeight, kernel: pool.kernel.0, stride: pool.stride.0, padding: pool.padding.0,
                    dilation: pool.dilation.0, size: height)
        cols = taps(outWidth, kernel: pool.kernel.1, stride: pool.stride.1, padding: pool.padding.1,
                    dilation: pool.dilation.1, size: width)
        rowExtent = extents(outHeight, kernel: pool.kernel.0, stride: pool.stride.0, padding: pool.padding.0,
                            end: pool.padding.2, size: height)
        colExtent = extents(outWidth, kernel: pool.kernel.1, stride: pool.stride.1, padding: pool.padding.1,
                            end: pool.padding.3, size: width)
        countIncludePad = pool.countIncludePad
    }

    /// PyTorch's adaptive bins, `floor(i size / count) ..< ceil((i + 1) size / count)`, averaged over their elements.
    init(adaptive height: Int, _ width: Int, outHeight: Int, outWidth: Int) {
        func bins(_ size: Int, _ count: Int) -> [[Int]] {
            (0..<count).map { i in Array((i * size / count)..<(((i + 1) * size + count - 1) / count)) }
        }
        (rows, cols) = (bins(height, outHeight), bins(width, outWidth))
        (rowExtent, colExtent, countIncludePad) = ([], [], false)
    }

    func divisor(_ oy: Int, _ ox: Int) -> Float {
        Float(Swift.max(countIncludePad ? rowExtent[oy] * colExtent[ox] : rows[oy].count * cols[ox].count, 1))
    }
}

/// Max and average pooling of `[N, C, D, H, W]` (see `Pool3d`): each
/// slice's plane pooled by `pool2dForward`, then each column of the pooled
/// slices over depth.
func pool3dForward(_ x: Tensor, _ pool: Pool3d, max useMax: Bool, outputShape: [Int]) -> Tensor {
    let planes = pool3dPlanes(x, pool, max: useMax, outputShape: outputShape)
    let (n, c, depth, columns) = (x.shape[0], x.shape[1], outputShape[2], outputShape[3] * outputShape[4])
    let y = pool2dForward(planes, pool.depthPool, max: useMax, outputShape: [n, c, depth, columns])
    return Tensor(shape: outputShape, data: y.data)
}

/// Gradient of `pool3dForward`: the depth pass's, then the plane pass's (`pool2dBackward`).
func pool3dBackward(_ x: Tensor, _ pool: Pool3d, max useMax: Bool, gradient: Tensor) -> Tensor {
    let planes = pool3dPlanes(x, pool, max: useMax, outputShape: gradient.shape)
    let (n, c, depth, columns) = (x.shape[0], x.shape[1], gradient.shape[2], gradient.shape[3] * gradient.shape[4])
    let dPlanes = pool2dBackward(planes, pool.depthPool, max: useMax,
                                 gradient: Tensor(shape: [n, c, depth, columns], data: gradient.data))
    let slices = [n, c * x.shape[2], x.shape[3], x.shape[4]]
    let dx = pool2dBackward(Tensor(shape: slices, data: x.data), pool.plane, max: useMax,
                            gradient: Tensor(shape: [n, c * x.shape[2], gradient.shape[3], gradient.shape[4]],
                                             data: dPlanes.data))
    return Tensor(shape: x.shape, data: dx.data)
}

/// The plane pass of `pool3dForward`: every slice pooled, as `[N, C, D, H'*W']`.
private func pool3dPlanes(_ x: Tensor, _ pool: Pool3d, max useMax: Bool, outputShape: [Int]) -> Tensor {
    let (n, c, depth) = (x.shape[0], x.shape[1], x.shape[2])
    let planes = pool2dForward(Tensor(shape: [n, c * depth, x.shape[3], x.shape[4]], data: x.data), pool.plane,
                               max: useMax, outputShape: [n, c * depth, outputShape[3], outputShape[4]])
    return Tensor(shape: [n, c, depth, outputShape[3] * outputShape[4]], data: planes.data)
}

/// `y[n, c] = mean_{h, w} x[n, c, h, w]` (over `d, h, w` for a 5-D input).
func globalAvgPoolForward(_ x: Tensor) -> Tensor {
    let planes = x.shape[0] * x.shape[1], inner = x.count / max(planes, 1)
    var y = Tensor(zeros: [x.shape[0], x.shape[1]] + Array(repeating: 1, count: x.shape.count - 2))
    x.data.withUnsafeBufferPointer { xs in
        for plane in 0..<planes { y.data[plane] = Float(sum(xs.baseAddress! + plane * inner, inner) / Double(inner)) }
    }
    return y
}

/// Gradient of `globalAvgPoolForward`: `dL/dx[n, c, h, w] = g[n, c] / (H * W)` (`/ (D * H * W)`).
func globalAvgPoolBackward(inputShape: [Int], gradient: Tensor) -> Tensor {
    let inner = inputShape.dropFirst(2).reduce(1, *)
    var dx = Tensor(zeros: inputShape)
    dx.data.withUnsafeMutableBufferPointer { dxs in
        parallelFor(gradient.count) { plane in
            (dxs.baseAddress! + plane * inner).update(repeating: gradient.data[plane] / Float(inner), count: inner)
        }
    }
    return dx
}
