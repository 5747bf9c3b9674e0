/// 2-D convolution, NCHW: `y[n, o] = b[o] + sum_{j, p, q} W[o, j, p, q] * x[n, g*I/g + j, h*s + p*d - pad, ...]`.
///
/// Samples are unfolded side by side (im2col) into a `[I/g*kh*kw, n*Hout*Wout]`
/// matrix per group, so each group of a chunk of samples is one large SGEMM
/// `[O/g, I/g*kh*kw] x [I/g*kh*kw, n*Hout*Wout]`; the result is then moved
/// into NCHW order. Chunks keep the unfolded matrix near 1M floats (4 MB),
/// large enough for an efficient SGEMM, small enough to stay in cache.
func conv2dForward(_ x: Tensor, weight: Tensor, bias: Tensor?, _ conv: Conv2d, outputShape: [Int]) -> Tensor {
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (outputs, perGroup, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
    let (outHeight, outWidth) = (outputShape[2], outputShape[3])
    let groups = conv.groups, outPerGroup = outputs / groups
    let patch = perGroup * kh * kw, pixels = outHeight * outWidth
    let chunk = max(1, min(batch, (1 << 20) / max(patch * pixels, 1)))
    var y = Tensor(zeros: outputShape)
    var columns = [Float](unsafeUninitializedCapacity: patch * pixels * chunk) { $1 = patch * pixels * chunk }
    var product = [Float](unsafeUninitializedCapacity: outPerGroup * pixels * chunk) { $1 = outPerGroup * pixels * chunk }
    x.data.withUnsafeBufferPointer { xs in
        weight.data.withUnsafeBufferPointer { ws in
            y.data.withUnsafeMutableBufferPointer { ys in
                columns.withUnsafeMutableBufferPointer { cols in
                    product.withUnsafeMutableBufferPointer { prod in
                        for first in stride(from: 0, to: batch, by: chunk) {
                            let count = min(chunk, batch - first), span = count * pixels
                            for g in 0..<groups {
                                parallelFor(count * patch) { job in
                                    let n = job / patch, row = job % patch
                                    let input = xs.baseAddress! + ((first + n) * channels + g * perGroup) * height * width
                                    im2colRow(input, row, height, width, kh, kw, conv, outHeight, outWidth,
                                              cols.baseAddress! + row * span + n * pixels)
                                }
                                matrixProduct(m: outPerGroup, n: span, k: patch, ws.baseAddress! + g * outPerGroup * patch,
                                              lda: patch, cols.baseAddress!, ldb: span, prod.baseAddress!, ldc: span)
                                parallelFor(count * outPerGroup) { job in
                                    let n = job / outPerGroup, o = job % outPerGroup
                                    (ys.baseAddress! + ((first + n) * outputs + g * outPerGroup + o) * pixels)
                                        .update(from: prod.baseAddress! + o * span + n * pixels, count: pixels)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if let bias { addChannelBias(&y, bias.data) }
    return y
}

/// Row `row = (c, p, q)` of the im2col matrix of one `[C, H, W]` sample:
/// `out[oy * Wout + ox] = input[c, oy*s + p*d - pad, ox*s + q*d - pad]` (zero outside).
func im2colRow(_ input: UnsafePointer<Float>, _ row: Int, _ height: Int, _ width: Int, _ kh: Int, _ kw: Int,
               _ conv: Conv2d, _ outHeight: Int, _ outWidth: Int, _ out: UnsafeMutablePointer<Float>)
{
    let c = row / (kh * kw), p = (row / kw) % kh, q = row % kw
    let plane = input + c * height * width
    for oy in 0..<outHeight {
        let iy = oy * conv.stride.0 + p * conv.dilation.0 - conv.padding.0
        let line = out + oy * outWidth
        guard iy >= 0 && iy < height else {
            line.update(repeating: 0, count: outWidth)
            continue
        }
        let source = plane + iy * width
        let offset = q * conv.dilation.1 - conv.padding.1
        if conv.stride.1 == 1 && offset >= 0 && offset + outWidth <= width {
            line.update(from: source + offset, count: outWidth)
            continue
        }
        for ox in 0..<outWidth {
            let ix = ox * conv.stride.1 + offset
            line[ox] = ix >= 0 && ix < width ? source[ix] : 0
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
    x.data.withUnsafeBufferPointer { xs in
        weight.data.withUnsafeBufferPointer { ws in
            y.data.withUnsafeMutableBufferPointer { ys in
                matrixProduct(m: batch, n: outputs, k: inputs, xs.baseAddress!, lda: inputs, ws.baseAddress!, ldb: inputs,
                              transposeB: true, ys.baseAddress!, ldc: outputs)
            }
        }
    }
    if let bias { addChannelBias(&y, bias.data) }
    return y
}
