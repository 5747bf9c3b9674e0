/// Ops that move values without arithmetic: concatenation and upsampling.

/// Concatenates NCHW tensors along channels.
func concatForward(_ xs: [Tensor]) -> Tensor {
    let batch = xs[0].shape[0], inner = xs[0].shape[2] * xs[0].shape[3]
    let sizes = xs.map { $0.shape[1] * inner }
    let offsets = sizes.indices.map { sizes[..<$0].reduce(0, +) }, sampleSize = sizes.reduce(0, +)
    return Tensor(shape: [batch, sampleSize / inner, xs[0].shape[2], xs[0].shape[3]]) { y in
        parallelFor(batch * xs.count) { job in
            let (n, k) = (job / xs.count, job % xs.count)
            guard sizes[k] > 0 else { return }
            xs[k].data.withUnsafeBufferPointer { x in
                (y.baseAddress! + n * sampleSize + offsets[k]).update(from: x.baseAddress! + n * sizes[k], count: sizes[k])
            }
        }
    }
}

/// Gradient of `concatForward`: `gradient` split along channels into
/// tensors of `channels[i]` channels each, in order.
func concatBackward(_ gradient: Tensor, channels: [Int]) -> [Tensor] {
    let (batch, total) = (gradient.shape[0], gradient.shape[1]), inner = gradient.shape[2] * gradient.shape[3]
    var offset = 0
    return channels.map { count in
        var part = Tensor(zeros: [batch, count, gradient.shape[2], gradient.shape[3]])
        let size = count * inner
        for n in 0..<batch {
            let start = (n * total + offset) * inner
            part.data.replaceSubrange((n * size)..<((n + 1) * size), with: gradient.data[start..<(start + size)])
        }
        offset += count
        return part
    }
}

/// Upsampling by an integer `scale`. Nearest: `y[h, w] = x[h / s, w / s]`.
/// Bilinear: half-pixel centers, `src = (dst + 0.5) / s - 0.5` clamped to
/// the edges (PyTorch `align_corners=False`, ONNX Resize `half_pixel`).
func upsampleForward(_ x: Tensor, scale: Int, mode: UpsampleMode) -> Tensor {
    let (height, width) = (x.shape[2], x.shape[3])
    let (outHeight, outWidth) = (height * scale, width * scale)
    let rows = (0..<outHeight).map { sourceCoordinate($0, scale: scale, size: height, mode: mode) }
    let cols = (0..<outWidth).map { sourceCoordinate($0, scale: scale, size: width, mode: mode) }
    return Tensor(shape: [x.shape[0], x.shape[1], outHeight, outWidth]) { ys in
        x.data.withUnsafeBufferPointer { xs in
            cols.withUnsafeBufferPointer { cols in
                parallelFor(x.shape[0] * x.shape[1]) { plane in
                    let input = xs.baseAddress! + plane * height * width
                    let output = ys.baseAddress! + plane * outHeight * outWidth
                    for oy in 0..<outHeight {
                        let (y0, y1, fy) = rows[oy]
                        let (upper, lower, line) = (input + y0 * width, input + y1 * width, output + oy * outWidth)
                        for ox in 0..<outWidth {
                            let (x0, x1, fx) = cols[ox]
                            let top = upper[x0] * (1 - fx) + upper[x1] * fx
                            let bottom = lower[x0] * (1 - fx) + lower[x1] * fx
                            line[ox] = top * (1 - fy) + bottom * fy
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `upsampleForward` (given `gradient = dL/dy`): each output
/// adds its `g` to the (up to) four inputs it read, with its weights,
/// `dL/dx[y0, x0] += (1 - fy) (1 - fx) g`, `dL/dx[y0, x1] += (1 - fy) fx g`,
/// `dL/dx[y1, x0] += fy (1 - fx) g`, `dL/dx[y1, x1] += fy fx g`
/// (nearest: `fy = fx = 0`, so each input collects its `scale x scale` block).
func upsampleBackward(_ gradient: Tensor, inputShape: [Int], scale: Int, mode: UpsampleMode) -> Tensor {
    let (height, width) = (inputShape[2], inputShape[3])
    let (outHeight, outWidth) = (height * scale, width * scale)
    var dx = Tensor(zeros: inputShape)
    let rows = (0..<outHeight).map { sourceCoordinate($0, scale: scale, size: height, mode: mode) }
    let cols = (0..<outWidth).map { sourceCoordinate($0, scale: scale, size: width, mode: mode) }
    gradient.data.withUnsafeBufferPointer { gs in
        dx.data.withUnsafeMutableBufferPointer { dxs in
            parallelFor(inputShape[0] * inputShape[1]) { plane in
                let output = gs.baseAddress! + plane * outHeight * outWidth
                let target = dxs.baseAddress! + plane * height * width
                for oy in 0..<outHeight {
                    let (y0, y1, fy) = rows[oy]
                    for ox in 0..<outWidth {
                        let (x0, x1, fx) = cols[ox]
                        let g = output[oy * outWidth + ox], top = g * (1 - fy), bottom = g * fy
                        target[y0 * width + x0] += top * (1 - fx)
                        target[y0 * width + x1] += top * fx
                        target[y1 * width + x0] += bottom * (1 - fx)
                        target[y1 * width + x1] += bottom * fx
                    }
                }
            }
        }
    }
    return dx
}

/// The two source indices and the weight of the second for output index `i`.
func sourceCoordinate(_ i: Int, scale: Int, size: Int, mode: UpsampleMode) -> (Int, Int, Float) {
    switch mode {
    case .nearest:
        return (i / scale, i / scale, 0)
    case .bilinear:
        let source = max((Float(i) + 0.5) / Float(scale) - 0.5, 0)
        let low = min(Int(source), size - 1)
        return (low, min(low + 1, size - 1), source - Float(low))
    }
}
