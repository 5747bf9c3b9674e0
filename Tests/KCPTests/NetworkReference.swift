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

/// PyTorch's pooling: the window is `[start, min(start + k, size + padEnd))`
/// for the `count_include_pad` divisor, then clipped to the input.
func naivePool(_ x: Tensor, _ pool: Pool2d, max useMax: Bool) -> NetReference {
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (pt, pl, pb, pr) = pool.padding
    let outHeight = (height + pt + pb - pool.kernel.0) / pool.stride.0 + 1
    let outWidth = (width + pl + pr - pool.kernel.1) / pool.stride.1 + 1
    var y = NetReference(zeros: [batch, channels, outHeight, outWidth])
    for n in 0..<batch {
        for c in 0..<channels {
            for oh in 0..<outHeight {
                for ow in 0..<outWidth {
                    let h0 = oh * pool.stride.0 - pt, w0 = ow * pool.stride.1 - pl
                    let h1 = min(h0 + pool.kernel.0, height + pb), w1 = min(w0 + pool.kernel.1, width + pr)
                    let paddedSize = (h1 - h0) * (w1 - w0)
                    var best = -Double.infinity, sum = 0.0, count = 0
                    for ih in max(h0, 0)..<min(h1, height) {
                        for iw in max(w0, 0)..<min(w1, width) {
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
