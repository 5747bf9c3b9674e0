import COpenBLAS

/// 2-D convolution, NCHW: `y[n, o] = b[o] + sum_{j, p, q} W[o, j, p, q] * x[n, g*I/g + j, h*s + p*d - pad, ...]`.
///
/// Each sample and group is one SGEMM, `[O/g, I/g*kh*kw] x [I/g*kh*kw, Hout*Wout]`,
/// over an im2col buffer (skipped for 1x1, stride-1, unpadded convs, whose input
/// already is that matrix).
func conv2dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, _ conv: Conv2d, outputShape: [Int]) -> Tensor {
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (outputs, perGroup, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
    let (outHeight, outWidth) = (outputShape[2], outputShape[3])
    let groups = conv.groups, outPerGroup = outputs / groups
    let patch = perGroup * kh * kw, pixels = outHeight * outWidth
    let direct = kh == 1 && kw == 1 && conv.stride == (1, 1) && conv.padding == (0, 0, 0, 0)
    var y = Tensor(zeros: outputShape)
    var columns = [Float](repeating: 0, count: direct ? 0 : patch * pixels)
    x.data.withUnsafeBufferPointer { xs in
        weight.data.withUnsafeBufferPointer { ws in
            y.data.withUnsafeMutableBufferPointer { ys in
                columns.withUnsafeMutableBufferPointer { cols in
                    for n in 0..<batch {
                        for g in 0..<groups {
                            let input = xs.baseAddress! + (n * channels + g * perGroup) * height * width
                            if !direct {
                                im2col(input, perGroup, height, width, kh, kw, conv, outHeight, outWidth, cols.baseAddress!)
                            }
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outPerGroup), Int32(pixels),
                                        Int32(patch), 1, ws.baseAddress! + g * outPerGroup * patch, Int32(patch),
                                        direct ? input : UnsafePointer(cols.baseAddress!), Int32(pixels),
                                        0, ys.baseAddress! + (n * outputs + g * outPerGroup) * pixels, Int32(pixels))
                        }
                    }
                }
            }
        }
    }
    if let bias { addChannelBias(&y, bias.data) }
    return y
}

/// Unfolds `[C, H, W]` into `[C * kh * kw, Hout * Wout]` patch columns (zero padding).
func im2col(_ input: UnsafePointer<Float>, _ channels: Int, _ height: Int, _ width: Int, _ kh: Int, _ kw: Int,
            _ conv: Conv2d, _ outHeight: Int, _ outWidth: Int, _ columns: UnsafeMutablePointer<Float>)
{
    let pixels = outHeight * outWidth
    parallelFor(channels * kh * kw) { row in
        let c = row / (kh * kw), p = (row / kw) % kh, q = row % kw
        let out = columns + row * pixels
        let plane = input + c * height * width
        for oy in 0..<outHeight {
            let iy = oy * conv.stride.0 + p * conv.dilation.0 - conv.padding.0
            let line = out + oy * outWidth
            guard iy >= 0 && iy < height else {
                line.update(repeating: 0, count: outWidth)
                continue
            }
            for ox in 0..<outWidth {
                let ix = ox * conv.stride.1 + q * conv.dilation.1 - conv.padding.1
                line[ox] = ix >= 0 && ix < width ? plane[iy * width + ix] : 0
            }
        }
    }
}

/// `y[n, c, ...] += bias[c]` for NCHW (or `[N, C]`) tensors.
func addChannelBias(_ y: inout Tensor, _ bias: [Float]) {
    let batch = y.shape[0], channels = y.shape[1], inner = y.count / max(batch * channels, 1)
    y.data.withUnsafeMutableBufferPointer { ys in
        parallelFor(batch * channels) { plane in
            let b = bias[plane % channels], base = ys.baseAddress! + plane * inner
            for k in 0..<inner { base[k] += b }
        }
    }
}

/// `y = x W^T + b` for `x [N, I]`, `W [O, I]`.
func linearForward(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    let (batch, inputs, outputs) = (x.shape[0], x.shape[1], weight.shape[0])
    var y = Tensor(zeros: [batch, outputs])
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(batch), Int32(outputs), Int32(inputs),
                1, x.data, Int32(inputs), weight.data, Int32(inputs), 0, &y.data, Int32(outputs))
    if let bias { addChannelBias(&y, bias.data) }
    return y
}
