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

/// Gradients of `conv2dForward` given `gradient = dL/dy` `[N, O, Hout, Wout]`:
/// with `X_g` the im2col matrix of group `g` (`[I/g*kh*kw, N*Hout*Wout]`),
/// `W_g` its weights `[O/g, I/g*kh*kw]` and `G_g` its rows of `dL/dy`
/// (`[O/g, N*Hout*Wout]`), `dL/dW_g = G_g X_g^T`, `dL/dX_g = W_g^T G_g`
/// folded back onto `x` (col2im: each unfolded entry adds to the input pixel
/// it was copied from), and `dL/db[o] = sum_{n, h, w} G[n, o, h, w]`.
///
/// Samples are processed in the forward's chunks; the weight gradient sums
/// the chunks in order (`addMatrixProduct`), so the result does not depend
/// on the thread count.
/// - Returns: `dL/dx` shaped like `x`, `dL/dW` like `weight`, `dL/db` `[O]` if `hasBias`.
func conv2dBackward(_ x: Tensor, weight: Tensor, hasBias: Bool, _ conv: Conv2d,
                    gradient: Tensor) -> (input: Tensor, weight: Tensor, bias: Tensor?)
{
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (outputs, perGroup, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
    let (outHeight, outWidth) = (gradient.shape[2], gradient.shape[3])
    let groups = conv.groups, outPerGroup = outputs / groups
    let patch = perGroup * kh * kw, pixels = outHeight * outWidth, plane = height * width
    let chunk = max(1, min(batch, (1 << 20) / max(patch * pixels, 1)))
    var dx = Tensor(zeros: x.shape), dw = Tensor(zeros: weight.shape)
    // The unfolded input, then (overwritten) the unfolded input gradient.
    var columns = [Float](unsafeUninitializedCapacity: patch * pixels * chunk) { $1 = patch * pixels * chunk }
    // dL/dy of one group, `[O/g, n * Hout * Wout]`.
    var rows = [Float](unsafeUninitializedCapacity: outPerGroup * pixels * chunk) { $1 = outPerGroup * pixels * chunk }
    x.data.withUnsafeBufferPointer { xs in
        weight.data.withUnsafeBufferPointer { ws in
            gradient.data.withUnsafeBufferPointer { gs in
                dx.data.withUnsafeMutableBufferPointer { dxs in
                    dw.data.withUnsafeMutableBufferPointer { dws in
                        columns.withUnsafeMutableBufferPointer { cols in
                            rows.withUnsafeMutableBufferPointer { g in
                                let (columnData, rowData) = (cols.baseAddress!, g.baseAddress!)
                                for first in stride(from: 0, to: batch, by: chunk) {
                                    let count = min(chunk, batch - first), span = count * pixels
                                    for group in 0..<groups {
                                        // Sample `first + n` of this group in x, dL/dx and dL/dy.
                                        let input = { (n: Int) in ((first + n) * channels + group * perGroup) * plane }
                                        let output = { (n: Int) in ((first + n) * outputs + group * outPerGroup) * pixels }
                                        parallelFor(count * patch) { job in
                                            let n = job / patch, row = job % patch
                                            im2colRow(xs.baseAddress! + input(n), row, height, width, kh, kw, conv,
                                                      outHeight, outWidth, columnData + row * span + n * pixels)
                                        }
                                        parallelFor(count * outPerGroup) { job in
                                            let n = job / outPerGroup, o = job % outPerGroup
                                            (rowData + o * span + n * pixels)
                                                .update(from: gs.baseAddress! + output(n) + o * pixels, count: pixels)
                                        }
                                        let w = group * outPerGroup * patch
                                        addMatrixProduct(m: outPerGroup, n: patch, k: span, rowData, lda: span,
                                                         columnData, ldb: span, transposeB: true,
                                                         dws.baseAddress! + w, ldc: patch)
                                        matrixProduct(m: patch, n: span, k: outPerGroup, ws.baseAddress! + w,
                                                      lda: patch, transposeA: true, rowData, ldb: span,
                                                      columnData, ldc: span)
                                        parallelFor(count * perGroup) { job in
                                            let n = job / perGroup, c = job % perGroup
                                            for row in (c * kh * kw)..<((c + 1) * kh * kw) {
                                                col2imRow(columnData + row * span + n * pixels, row, height, width,
                                                          kh, kw, conv, outHeight, outWidth, dxs.baseAddress! + input(n))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return (dx, dw, hasBias ? channelSums(gradient) : nil)
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

/// The adjoint of `im2colRow`: adds row `row = (c, p, q)` of an unfolded
/// gradient back onto the `[C, H, W]` sample gradient `input`:
/// `input[c, oy*s + p*d - pad, ox*s + q*d - pad] += row[oy * Wout + ox]` (skipping padding).
func col2imRow(_ row: UnsafePointer<Float>, _ index: Int, _ height: Int, _ width: Int, _ kh: Int, _ kw: Int,
               _ conv: Conv2d, _ outHeight: Int, _ outWidth: Int, _ input: UnsafeMutablePointer<Float>)
{
    let c = index / (kh * kw), p = (index / kw) % kh, q = index % kw
    let plane = input + c * height * width
    for oy in 0..<outHeight {
        let iy = oy * conv.stride.0 + p * conv.dilation.0 - conv.padding.0
        guard iy >= 0 && iy < height else { continue }
        let line = row + oy * outWidth, target = plane + iy * width
        let offset = q * conv.dilation.1 - conv.padding.1
        if conv.stride.1 == 1 && offset >= 0 && offset + outWidth <= width {
            addScaled(target + offset, line, 1, outWidth)
            continue
        }
        for ox in 0..<outWidth {
            let ix = ox * conv.stride.1 + offset
            if ix >= 0 && ix < width { target[ix] += line[ox] }
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

/// The adjoint of `addChannelBias`: `db[c] = sum_{n, ...} g[n, c, ...]` (in double precision).
func channelSums(_ g: Tensor) -> Tensor {
    let batch = g.shape[0], channels = g.shape[1], inner = g.count / max(batch * channels, 1)
    var db = Tensor(zeros: [channels])
    g.data.withUnsafeBufferPointer { gs in
        db.data.withUnsafeMutableBufferPointer { dbs in
            parallelFor(channels) { c in
                var total = 0.0
                for n in 0..<batch { total += sum(gs.baseAddress! + (n * channels + c) * inner, inner) }
                dbs[c] = Float(total)
            }
        }
    }
    return db
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

/// Gradients of `linearForward` given `gradient = dL/dy` `[N, O]`:
/// `dL/dx = G W` `[N, I]`, `dL/dW = G^T x` `[O, I]`, `dL/db = sum_n G[n]` `[O]`.
func linearBackward(_ x: Tensor, weight: Tensor, hasBias: Bool,
                    gradient: Tensor) -> (input: Tensor, weight: Tensor, bias: Tensor?)
{
    let (batch, inputs, outputs) = (x.shape[0], x.shape[1], weight.shape[0])
    var dx = Tensor(zeros: x.shape), dw = Tensor(zeros: weight.shape)
    x.data.withUnsafeBufferPointer { xs in
        weight.data.withUnsafeBufferPointer { ws in
            gradient.data.withUnsafeBufferPointer { gs in
                dx.data.withUnsafeMutableBufferPointer { dxs in
                    matrixProduct(m: batch, n: inputs, k: outputs, gs.baseAddress!, lda: outputs, ws.baseAddress!,
                                  ldb: inputs, dxs.baseAddress!, ldc: inputs)
                }
                dw.data.withUnsafeMutableBufferPointer { dws in
                    addMatrixProduct(m: outputs, n: inputs, k: batch, gs.baseAddress!, lda: outputs, transposeA: true,
                                     xs.baseAddress!, ldb: inputs, dws.baseAddress!, ldc: inputs)
                }
            }
        }
    }
    return (dx, dw, hasBias ? channelSums(gradient) : nil)
}
