import Glibc
import Testing
@testable import KCP

// Slow, obviously correct references for every op: plain nested loops over
// doubles, following PyTorch's definitions where the engine promises them.

func naiveConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ conv: Conv2d) -> NetReference {
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (outputs, perGroup, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
    let outPerGroup = outputs / conv.groups
    let (pt, pl, pb, pr) = conv.padding
    let outHeight = (height + pt + pb - conv.dilation.0 * (kh - 1) - 1) / conv.stride.0 + 1
    let outWidth = (width + pl + pr - conv.dilation.1 * (kw - 1) - 1) / conv.stride.1 + 1
    precondition(channels == perGroup * conv.groups)
    var y = NetReference(zeros: [batch, outputs, outHeight, outWidth])
    for n in 0..<batch {
        for o in 0..<outputs {
            let group = o / outPerGroup
            for oh in 0..<outHeight {
                for ow in 0..<outWidth {
                    var sum = b.map { Double($0.data[o]) } ?? 0
                    for j in 0..<perGroup {
                        let c = group * perGroup + j
                        for p in 0..<kh {
                            for q in 0..<kw {
                                let ih = oh * conv.stride.0 + p * conv.dilation.0 - pt
                                let iw = ow * conv.stride.1 + q * conv.dilation.1 - pl
                                if ih < 0 || ih >= height || iw < 0 || iw >= width { continue }
                                sum += Double(w.data[((o * perGroup + j) * kh + p) * kw + q]) * x[n, c, ih, iw]
                            }
                        }
                    }
                    y.data[((n * outputs + o) * outHeight + oh) * outWidth + ow] = sum
                }
            }
        }
    }
    return y
}

/// PyTorch's pooled size (`pooling_output_shape`): floor, or with `ceilMode`
/// ceil, of `(size + padding - dilation (kernel - 1) - 1) / stride`, plus 1,
/// less a last `ceilMode` window that would start in the end padding.
func naivePooledSize(_ size: Int, kernel: Int, stride: Int, padding: (Int, Int), dilation: Int, ceilMode: Bool) -> Int {
    let span = size + padding.0 + padding.1 - dilation * (kernel - 1) - 1
    var count = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
    if ceilMode && (count - 1) * stride >= size + padding.0 { count -= 1 }
    return count
}

/// PyTorch's pooling: the window is `[start, min(start + k, size + padEnd))`
/// for the `count_include_pad` divisor, then clipped to the input; max
/// pooling reads every `dilation`-th tap (average pooling has no dilation).
func naivePool(_ x: Tensor, _ pool: Pool2d, max useMax: Bool) -> NetReference {
    precondition(useMax || pool.dilation == (1, 1), "average pooling has no dilation")
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (pt, pl, pb, pr) = pool.padding
    let outHeight = naivePooledSize(height, kernel: pool.kernel.0, stride: pool.stride.0, padding: (pt, pb),
                                    dilation: pool.dilation.0, ceilMode: pool.ceilMode)
    let outWidth = naivePooledSize(width, kernel: pool.kernel.1, stride: pool.stride.1, padding: (pl, pr),
                                   dilation: pool.dilation.1, ceilMode: pool.ceilMode)
    var y = NetReference(zeros: [batch, channels, outHeight, outWidth])
    for n in 0..<batch {
        for c in 0..<channels {
            for oh in 0..<outHeight {
                for ow in 0..<outWidth {
                    let h0 = oh * pool.stride.0 - pt, w0 = ow * pool.stride.1 - pl
                    let h1 = min(h0 + pool.kernel.0, height + pb), w1 = min(w0 + pool.kernel.1, width + pr)
                    let paddedSize = (h1 - h0) * (w1 - w0)
                    var best = -Double.infinity, sum = 0.0, count = 0
                    for p in 0..<pool.kernel.0 {
                        let ih = h0 + p * pool.dilation.0
                        guard ih >= 0 && ih < height else { continue }
                        for q in 0..<pool.kernel.1 {
                            let iw = w0 + q * pool.dilation.1
                            guard iw >= 0 && iw < width else { continue }
                            best = max(best, x[n, c, ih, iw])
                            sum += x[n, c, ih, iw]
                            count += 1
                        }
                    }
                    let value = useMax ? best : sum / Double(pool.countIncludePad ? paddedSize : count)
                    y.data[((n * channels + c) * outHeight + oh) * outWidth + ow] = value
                }
            }
        }
    }
    return y
}

/// PyTorch's `adaptive_{avg,max}_pool2d`: output `i` of `out` pools inputs
/// `floor(i * in / out) ..< ceil((i + 1) * in / out)`.
func naiveAdaptivePool(_ x: Tensor, height outHeight: Int, width outWidth: Int, max useMax: Bool) -> NetReference {
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    func bin(_ i: Int, _ size: Int, _ count: Int) -> Range<Int> {
        Int((Double(i * size) / Double(count)).rounded(.down))..<Int((Double((i + 1) * size) / Double(count)).rounded(.up))
    }
    var y = NetReference(zeros: [batch, channels, outHeight, outWidth])
    for n in 0..<batch {
        for c in 0..<channels {
            for oh in 0..<outHeight {
                for ow in 0..<outWidth {
                    let (rows, cols) = (bin(oh, height, outHeight), bin(ow, width, outWidth))
                    var best = -Double.infinity, sum = 0.0
                    for ih in rows {
                        for iw in cols {
                            best = max(best, x[n, c, ih, iw])
                            sum += x[n, c, ih, iw]
                        }
                    }
                    y.data[((n * channels + c) * outHeight + oh) * outWidth + ow] = useMax ? best : sum / Double(rows.count * cols.count)
                }
            }
        }
    }
    return y
}

/// Each activation kind in doubles, as PyTorch defines it.
func naiveActivation(_ x: Double, _ a: Activation) -> Double {
    let (alpha, beta) = (Double(a.alpha), Double(a.beta))
    switch a.kind {
    case .relu: return max(x, 0)
    case .clip: return min(max(x, alpha), beta)
    case .leakyRelu: return x >= 0 ? x : alpha * x
    case .sigmoid: return 1 / (1 + exp(-x))
    case .tanh: return tanh(x)
    case .silu: return x / (1 + exp(-x))
    case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
    case .geluTanh: return 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    case .hardswish: return x * min(max(x + 3, 0), 6) / 6
    case .hardsigmoid: return min(max(alpha * x + beta, 0), 1)
    case .elu: return x > 0 ? x : alpha * (exp(x) - 1)
    case .mish: return x * tanh(log1p(exp(x)))
    case .softplus: return alpha * x > beta ? x : log1p(exp(alpha * x)) / alpha
    case .affine: return alpha * x + beta
    }
}

/// `a op b` with NumPy broadcasting (equal ranks; each dimension equal or 1).
func naiveBinary(_ a: Tensor, _ b: Tensor, _ kind: Binary.Kind) -> NetReference {
    let shape = zip(a.shape, b.shape).map { max($0, $1) }
    func offset(_ index: [Int], _ operand: [Int]) -> Int {
        zip(index, operand).reduce(0) { $0 * $1.1 + ($1.1 == 1 ? 0 : $1.0) }
    }
    var y = NetReference(zeros: shape)
    for k in 0..<y.data.count {
        var index = [Int](repeating: 0, count: shape.count), rest = k
        for d in shape.indices.reversed() {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        let (l, r) = (Double(a.data[offset(index, a.shape)]), Double(b.data[offset(index, b.shape)]))
        switch kind {
        case .add: y.data[k] = l + r
        case .sub: y.data[k] = l - r
        case .mul: y.data[k] = l * r
        case .div: y.data[k] = l / r
        }
    }
    return y
}

/// PyTorch `interpolate(size=..., mode="nearest")` and `mode="bilinear"`
/// (`align_corners` either way), with exact ratios `in / out`.
func naiveResize(_ x: Tensor, _ r: Resize) -> NetReference {
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (outHeight, outWidth) = (r.height, r.width)
    /// Low index, high index and the high index's weight.
    func source(_ i: Int, _ size: Int, _ count: Int) -> (Int, Int, Double) {
        if r.mode == .nearest {
            let index = min(i * size / count, size - 1)
            return (index, index, 0)
        }
        let real = r.alignCorners ? (count > 1 ? Double(i * (size - 1)) / Double(count - 1) : 0)
            : max((Double(i) + 0.5) * Double(size) / Double(count) - 0.5, 0)
        let low = min(Int(real.rounded(.down)), size - 1)
        let high = low < size - 1 ? low + 1 : low
        return (low, high, real - Double(low))
    }
    var y = NetReference(zeros: [batch, channels, outHeight, outWidth])
    for n in 0..<batch {
        for c in 0..<channels {
            for oh in 0..<outHeight {
                let (h0, h1, fh) = source(oh, height, outHeight)
                for ow in 0..<outWidth {
                    let (w0, w1, fw) = source(ow, width, outWidth)
                    let value = (1 - fh) * ((1 - fw) * x[n, c, h0, w0] + fw * x[n, c, h0, w1])
                        + fh * ((1 - fw) * x[n, c, h1, w0] + fw * x[n, c, h1, w1])
                    y.data[((n * channels + c) * outHeight + oh) * outWidth + ow] = value
                }
            }
        }
    }
    return y
}

func naiveCorrelation(_ l: Tensor, _ r: Tensor, maxDisparity: Int, scale: Double) -> NetReference {
    let (batch, channels, height, width) = (l.shape[0], l.shape[1], l.shape[2], l.shape[3])
    var y = NetReference(zeros: [batch, maxDisparity, height, width])
    for n in 0..<batch {
        for d in 0..<maxDisparity {
            for h in 0..<height {
                for w in 0..<width where w - d >= 0 {
                    var sum = 0.0
                    for c in 0..<channels { sum += l[n, c, h, w] * r[n, c, h, w - d] }
                    y.data[((n * maxDisparity + d) * height + h) * width + w] = scale * sum
                }
            }
        }
    }
    return y
}

/// Softmax over axis 1 of `[N, C, inner...]`, in doubles.
func naiveSoftmax(_ x: [Double], batch: Int, channels: Int) -> [Double] {
    let inner = x.count / (batch * channels)
    var y = x
    for n in 0..<batch {
        for p in 0..<inner {
            let index = { (c: Int) in (n * channels + c) * inner + p }
            let peak = (0..<channels).map { x[index($0)] }.max()!
            let total = (0..<channels).reduce(0.0) { $0 + exp(x[index($1)] - peak) }
            for c in 0..<channels { y[index(c)] = exp(x[index(c)] - peak) / total }
        }
    }
    return y
}
