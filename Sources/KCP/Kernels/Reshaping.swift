/// Ops that move values without arithmetic: concatenation and upsampling.

/// Concatenates NCHW tensors along channels.
func concatForward(_ xs: [Tensor]) -> Tensor {
    let batch = xs[0].shape[0], inner = xs[0].shape[2] * xs[0].shape[3]
    let channels = xs.reduce(0) { $0 + $1.shape[1] }
    var y = Tensor(zeros: [batch, channels, xs[0].shape[2], xs[0].shape[3]])
    for n in 0..<batch {
        var offset = n * channels * inner
        for x in xs {
            let size = x.shape[1] * inner
            y.data.replaceSubrange(offset..<(offset + size), with: x.data[(n * size)..<((n + 1) * size)])
            offset += size
        }
    }
    return y
}

/// Upsampling by an integer `scale`. Nearest: `y[h, w] = x[h / s, w / s]`.
/// Bilinear: half-pixel centers, `src = (dst + 0.5) / s - 0.5` clamped to
/// the edges (PyTorch `align_corners=False`, ONNX Resize `half_pixel`).
func upsampleForward(_ x: Tensor, scale: Int, mode: UpsampleMode) -> Tensor {
    let (height, width) = (x.shape[2], x.shape[3])
    let (outHeight, outWidth) = (height * scale, width * scale)
    var y = Tensor(zeros: [x.shape[0], x.shape[1], outHeight, outWidth])
    let rows = (0..<outHeight).map { sourceCoordinate($0, scale: scale, size: height, mode: mode) }
    let cols = (0..<outWidth).map { sourceCoordinate($0, scale: scale, size: width, mode: mode) }
    x.data.withUnsafeBufferPointer { xs in
        y.data.withUnsafeMutableBufferPointer { ys in
            parallelFor(x.shape[0] * x.shape[1]) { plane in
                let input = xs.baseAddress! + plane * height * width
                let output = ys.baseAddress! + plane * outHeight * outWidth
                for oy in 0..<outHeight {
                    let (y0, y1, fy) = rows[oy]
                    for ox in 0..<outWidth {
                        let (x0, x1, fx) = cols[ox]
                        let top = input[y0 * width + x0] * (1 - fx) + input[y0 * width + x1] * fx
                        let bottom = input[y1 * width + x0] * (1 - fx) + input[y1 * width + x1] * fx
                        output[oy * outWidth + ox] = top * (1 - fy) + bottom * fy
                    }
                }
            }
        }
    }
    return y
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
