import Glibc

/// Batch normalization at inference (Ioffe & Szegedy 2015):
/// `y = gamma * (x - mean) / sqrt(var + epsilon) + beta` per channel,
/// computed as `x * scale + shift` (`batchNormScaleShift`).
func batchNormInference(_ x: Tensor, gamma: [Float], beta: [Float], mean: [Float], variance: [Float],
                        epsilon: Float) -> Tensor
{
    let channels = x.shape[1], inner = x.count / (x.shape[0] * channels)
    let (scale, shift) = batchNormScaleShift(gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: epsilon)
    return x.data.withUnsafeBufferPointer { xs in
        Tensor(shape: x.shape) { ys in
            parallelFor(x.shape[0] * channels) { plane in
                let (a, b) = (scale[plane % channels], shift[plane % channels])
                let (from, to) = (xs.baseAddress! + plane * inner, ys.baseAddress! + plane * inner)
                for k in 0..<inner { to[k] = from[k] * a + b }
            }
        }
    }
}

/// Batch normalization at inference as a per-channel affine map `x * scale + shift`:
/// `scale = gamma / sqrt(var + epsilon)`, `shift = beta - mean * scale`.
func batchNormScaleShift(gamma: [Float], beta: [Float], mean: [Float], variance: [Float],
                         epsilon: Float) -> (scale: [Float], shift: [Float])
{
    let scale = gamma.indices.map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
    return (scale, beta.indices.map { beta[$0] - mean[$0] * scale[$0] })
}

/// Batch normalization in training: the statistics are the batch's, per
/// channel over `N` and the spatial axes (`M` values each),
/// `mean = sum x / M`, `var = sum (x - mean)^2 / M` (biased, as PyTorch
/// normalises in train mode), then `batchNormInference` with them.
/// - Returns: `y`, and the batch `mean` and biased `variance` (`backward`
///   needs them; a running update takes `variance * M / (M - 1)`).
func batchNormTrainingForward(_ x: Tensor, gamma: [Float], beta: [Float],
                              epsilon: Float) -> (output: Tensor, mean: [Float], variance: [Float])
{
    let (mean, variance) = channelMoments(x)
    let y = batchNormInference(x, gamma: gamma, beta: beta, mean: mean, variance: variance, epsilon: epsilon)
    return (y, mean, variance)
}

/// Per-channel mean and biased variance of an `[N, C, ...]` tensor, accumulated in double precision.
func channelMoments(_ x: Tensor) -> (mean: [Float], variance: [Float]) {
    let (batch, channels) = (x.shape[0], x.shape[1]), inner = x.count / max(batch * channels, 1)
    let total = Double(max(batch * inner, 1))
    var mean = [Float](repeating: 0, count: channels), variance = [Float](repeating: 0, count: channels)
    x.data.withUnsafeBufferPointer { xs in
        mean.withUnsafeMutableBufferPointer { means in
            variance.withUnsafeMutableBufferPointer { variances in
                parallelFor(channels) { c in
                    var s = 0.0
                    for n in 0..<batch { s += sum(xs.baseAddress! + (n * channels + c) * inner, inner) }
                    let m = Float(s / total)
                    var squares = 0.0
                    for n in 0..<batch {
                        squares += Double(squaredDeviation(xs.baseAddress! + (n * channels + c) * inner, m, inner))
                    }
                    (means[c], variances[c]) = (m, Float(squares / total))
                }
            }
        }
    }
    return (mean, variance)
}

/// Gradients of batch normalization given `gradient = dL/dy`, with
/// `xhat = (x - mean) / sqrt(var + epsilon)` and sums per channel over its `M` values:
/// `dL/dgamma = sum g * xhat`, `dL/dbeta = sum g`, and
/// - `training` (batch statistics, so the gradient flows through them; Ioffe & Szegedy 2015, sec. 3):
///   `dL/dx = gamma / sqrt(var + epsilon) * (g - sum g / M - xhat * sum(g * xhat) / M)`;
/// - otherwise (running statistics, constants): `dL/dx = gamma / sqrt(var + epsilon) * g`.
func batchNormBackward(_ x: Tensor, gamma: [Float], mean: [Float], variance: [Float], epsilon: Float,
                       training: Bool, gradient: Tensor) -> (input: Tensor, gamma: [Float], beta: [Float])
{
    let (batch, channels) = (x.shape[0], x.shape[1]), inner = x.count / max(batch * channels, 1)
    let total = Double(max(batch * inner, 1))
    var dx = Tensor(zeros: x.shape)
    var dgamma = [Float](repeating: 0, count: channels), dbeta = [Float](repeating: 0, count: channels)
    x.data.withUnsafeBufferPointer { xs in
        gradient.data.withUnsafeBufferPointer { gs in
            dx.data.withUnsafeMutableBufferPointer { dxs in
                dgamma.withUnsafeMutableBufferPointer { dgammas in
                    dbeta.withUnsafeMutableBufferPointer { dbetas in
                        parallelFor(channels) { c in
                            let invStd = 1 / (Double(variance[c]) + Double(epsilon)).squareRoot(), m = mean[c]
                            var sumG = 0.0, sumGCentered = 0.0
                            for n in 0..<batch {
                                let offset = (n * channels + c) * inner
                                let (g, gc) = sumAndCenteredDot(gs.baseAddress! + offset, xs.baseAddress! + offset, m, inner)
                                sumG += Double(g)
                                sumGCentered += Double(gc)
                            }
                            let sumGXhat = sumGCentered * invStd
                            (dgammas[c], dbetas[c]) = (Float(sumGXhat), Float(sumG))
                            // dx = scale (g - meanG - xhat meanGXhat) = a g + b x + c0, xhat = (x - m) invStd.
                            let scale = Double(gamma[c]) * invStd
                            let (meanG, meanGXhat) = training ? (sumG / total, sumGXhat / total) : (0, 0)
                            let b = -scale * invStd * meanGXhat
                            let c0 = -scale * meanG - b * Double(m)
                            for n in 0..<batch {
                                let offset = (n * channels + c) * inner
                                affineCombination(dxs.baseAddress! + offset, gs.baseAddress! + offset, Float(scale),
                                                  xs.baseAddress! + offset, Float(b), Float(c0), inner)
                            }
                        }
                    }
                }
            }
        }
    }
    return (dx, dgamma, dbeta)
}

/// Softmax over channels: `y[n, c, p] = exp(x[n, c, p] - m) / sum_c' exp(x[n, c', p] - m)`,
/// `m = max_c x[n, c, p]`.
func softmaxForward(_ x: Tensor) -> Tensor {
    let channels = x.shape[1]
    var y = x
    forEachChannelColumn(&y) { column, _, stride in
        var peak = -Float.infinity
        for c in 0..<channels { peak = max(peak, column[c * stride]) }
        var total: Float = 0
        for c in 0..<channels {
            column[c * stride] = expf(column[c * stride] - peak)
            total += column[c * stride]
        }
        for c in 0..<channels { column[c * stride] /= total }
    }
    return y
}
