import Glibc

/// Batch normalization at inference (Ioffe & Szegedy 2015):
/// `y = gamma * (x - mean) / sqrt(var + epsilon) + beta` per channel.
func batchNormInference(_ x: Tensor, gamma: [Float], beta: [Float], mean: [Float], variance: [Float],
                        epsilon: Float) -> Tensor
{
    let channels = x.shape[1], inner = x.count / (x.shape[0] * channels)
    var y = x
    y.data.withUnsafeMutableBufferPointer { ys in
        parallelFor(x.shape[0] * channels) { plane in
            let c = plane % channels
            let scale = gamma[c] / (variance[c] + epsilon).squareRoot(), shift = beta[c] - mean[c] * scale
            let base = ys.baseAddress! + plane * inner
            for k in 0..<inner { base[k] = base[k] * scale + shift }
        }
    }
    return y
}

/// Softmax over channels: `y[n, c, p] = exp(x[n, c, p] - m) / sum_c' exp(x[n, c', p] - m)`,
/// `m = max_c x[n, c, p]`.
func softmaxForward(_ x: Tensor) -> Tensor {
    let (batch, channels) = (x.shape[0], x.shape[1]), inner = x.count / (batch * channels)
    var y = x
    y.data.withUnsafeMutableBufferPointer { ys in
        parallelFor(batch) { n in
            let base = ys.baseAddress! + n * channels * inner
            for p in 0..<inner {
                var peak = -Float.infinity
                for c in 0..<channels { peak = max(peak, base[c * inner + p]) }
                var total: Float = 0
                for c in 0..<channels {
                    let e = expf(base[c * inner + p] - peak)
                    base[c * inner + p] = e
                    total += e
                }
                for c in 0..<channels { base[c * inner + p] /= total }
            }
        }
    }
    return y
}
