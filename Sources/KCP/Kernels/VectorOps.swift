/// Small vector kernels on contiguous float buffers, 8 lanes wide.

/// `sum_k (a[k] - b[k])^2`, accumulated in 8 float lanes.
@inline(__always)
func squaredDistance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = SIMD8<Float>()
    var k = 0
    while k + 8 <= count {
        let d = UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Float>.self)
            - UnsafeRawPointer(b + k).loadUnaligned(as: SIMD8<Float>.self)
        acc.addProduct(d, d)
        k += 8
    }
    var total = acc.sum()
    while k < count {
        let d = a[k] - b[k]
        total += d * d
        k += 1
    }
    return total
}

/// `(sum_k g[k], sum_k g[k] (x[k] - m))`, in 8 float lanes.
@inline(__always)
func sumAndCenteredDot(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ m: Float, _ count: Int) -> (Float, Float) {
    var sums = SIMD8<Float>(), dots = SIMD8<Float>()
    let center = SIMD8<Float>(repeating: m)
    var k = 0
    while k + 8 <= count {
        let gv = UnsafeRawPointer(g + k).loadUnaligned(as: SIMD8<Float>.self)
        sums += gv
        dots.addProduct(gv, UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self) - center)
        k += 8
    }
    var (sum, dot) = (sums.sum(), dots.sum())
    while k < count {
        sum += g[k]
        dot += g[k] * (x[k] - m)
        k += 1
    }
    return (sum, dot)
}

/// `sum_k (x[k] - m)^2`, in 8 float lanes.
@inline(__always)
func squaredDeviation(_ x: UnsafePointer<Float>, _ m: Float, _ count: Int) -> Float {
    var acc = SIMD8<Float>()
    let center = SIMD8<Float>(repeating: m)
    var k = 0
    while k + 8 <= count {
        let d = UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self) - center
        acc.addProduct(d, d)
        k += 8
    }
    var total = acc.sum()
    while k < count {
        total += (x[k] - m) * (x[k] - m)
        k += 1
    }
    return total
}

/// `out[k] = a g[k] + b x[k] + c`.
@inline(__always)
func affineCombination(_ out: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ a: Float,
                       _ x: UnsafePointer<Float>, _ b: Float, _ c: Float, _ count: Int)
{
    let (av, bv, cv) = (SIMD8<Float>(repeating: a), SIMD8<Float>(repeating: b), SIMD8<Float>(repeating: c))
    var k = 0
    while k + 8 <= count {
        let value = cv.addingProduct(av, UnsafeRawPointer(g + k).loadUnaligned(as: SIMD8<Float>.self))
            .addingProduct(bv, UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self))
        UnsafeMutableRawPointer(out + k).storeBytes(of: value, as: SIMD8<Float>.self)
        k += 8
    }
    while k < count {
        out[k] = a * g[k] + b * x[k] + c
        k += 1
    }
}

/// `out[k] = a[k] * wa + b[k] * wb`, two products and a sum per entry (no fused multiply-add).
@inline(__always)
func weightedSum(_ out: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ wa: Float,
                 _ b: UnsafePointer<Float>, _ wb: Float, _ count: Int)
{
    let (av, bv) = (SIMD8<Float>(repeating: wa), SIMD8<Float>(repeating: wb))
    var k = 0
    while k + 8 <= count {
        let value = UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Float>.self) * av
            + UnsafeRawPointer(b + k).loadUnaligned(as: SIMD8<Float>.self) * bv
        UnsafeMutableRawPointer(out + k).storeBytes(of: value, as: SIMD8<Float>.self)
        k += 8
    }
    while k < count {
        out[k] = a[k] * wa + b[k] * wb
        k += 1
    }
}

/// `y[k] += alpha * x[k]`.
@inline(__always)
func addScaled(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ alpha: Float, _ count: Int) {
    let a = SIMD8<Float>(repeating: alpha)
    var k = 0
    while k + 8 <= count {
        let sum = UnsafeRawPointer(y + k).loadUnaligned(as: SIMD8<Float>.self)
            .addingProduct(a, UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self))
        UnsafeMutableRawPointer(y + k).storeBytes(of: sum, as: SIMD8<Float>.self)
        k += 8
    }
    while k < count {
        y[k] += alpha * x[k]
        k += 1
    }
}

/// `y[k] += a[k] * b[k]`.
@inline(__always)
func addProduct(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) {
    var k = 0
    while k + 8 <= count {
        let sum = UnsafeRawPointer(y + k).loadUnaligned(as: SIMD8<Float>.self)
            .addingProduct(UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Float>.self),
                           UnsafeRawPointer(b + k).loadUnaligned(as: SIMD8<Float>.self))
        UnsafeMutableRawPointer(y + k).storeBytes(of: sum, as: SIMD8<Float>.self)
        k += 8
    }
    while k < count {
        y[k] += a[k] * b[k]
        k += 1
    }
}

/// `to[k] = from[k]` for `k < count` (`count` 0 is fine), inline: the short
/// runs of the conv kernels cost less than a call to `memmove`.
@inline(__always)
func copyFloats(_ from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, count: Int) {
    var k = 0
    while k + 8 <= count {
        UnsafeMutableRawPointer(to + k).storeBytes(of: UnsafeRawPointer(from + k).loadUnaligned(as: SIMD8<Float>.self),
                                                   as: SIMD8<Float>.self)
        k += 8
    }
    while k < count {
        to[k] = from[k]
        k += 1
    }
}

/// `to[t] = from[2 t]` for `t` in `range`, 8 at a time from 16-float loads,
/// the last 8 from a load one float earlier (overlapping the 8 before, which
/// it writes again) rather than one at a time: the stride-2 direct convs'
/// windows (MobileNetV3's phases of 57 columns) spent a quarter of their
/// copy on those last floats (64 channels of 112x112, 3x3 stride 2, 1
/// thread: 0.262 -> 0.251 ms). Reads no float past `from[2 (range.upperBound - 1)]`,
/// nor before `from[2 range.lowerBound]`.
@inline(__always)
func copyEvenFloats(_ from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
    /// `to[t..<t+8]` from the 16 floats at `from + 2 t + shift`, their even (`shift` 0) or odd (-1) ones.
    @inline(__always)
    func copy8(_ t: Int, shift: Int) {
        let pairs = UnsafeRawPointer(from + 2 * t + shift).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(to + t).storeBytes(of: shift == 0 ? pairs.evenHalf : pairs.oddHalf, as: SIMD8<Float>.self)
    }
    var t = range.lowerBound
    while t + 8 < range.upperBound {
        copy8(t, shift: 0)
        t += 8
    }
    if t > range.lowerBound && t < range.upperBound {
        return copy8(range.upperBound - 8, shift: -1)
    }
    while t < range.upperBound {
        to[t] = from[2 * t]
        t += 1
    }
}

/// A row of `width` floats after `left` zeros (and zeros past its end),
/// `padded[j] = from[j - left]`, split into its even and odd columns:
/// `even[t] = padded[2t]`, `odd[t] = padded[2t + 1]` for `t < count`. One
/// 16-float load gives 8 columns of both, and the zeros are written in the
/// same pass. Against the two halves copied one at a time (`copyEvenFloats`),
/// each between two clears of its padding (AMD EPYC Zen 5, AVX-512, 1
/// thread, with batchnorm and relu): a 16 -> 32-channel 3x3 conv of stride
/// 2 on 32x32 at batch 64 1.05-1.08 -> 0.93-0.99 ms, depthwise 3x3 on 64
/// channels of 112x112 0.168-0.176 -> 0.151-0.158, 5x5 on 72 of 56x56
/// 0.087-0.091 -> 0.080-0.082. The last 8 columns inside the row come from
/// a load that overlaps the one before. Reads only `from[0..<width]`. A
/// call of its own: inlined into the fill's loops, its loads and stores
/// were left as calls, and the depthwise conv took twice as long.
func splitPaddedColumns(_ from: UnsafePointer<Float>, width: Int, left: Int, even: UnsafeMutablePointer<Float>,
                        odd: UnsafeMutablePointer<Float>, count: Int)
{
    @inline(__always)
    func one(_ t: Int) {
        let j = 2 * t - left
        even[t] = j >= 0 && j < width ? from[j] : 0
        odd[t] = j + 1 >= 0 && j + 1 < width ? from[j + 1] : 0
    }
    @inline(__always)
    func eight(_ t: Int) {
        let pairs = UnsafeRawPointer(from + 2 * t - left).loadUnaligned(as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(even + t).storeBytes(of: pairs.evenHalf, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(odd + t).storeBytes(of: pairs.oddHalf, as: SIMD8<Float>.self)
    }
    // Columns t..<t+8 load from[2t - left ..< 2t - left + 16]: inside the row for t in first...last.
    let first = max(0, (left + 1) / 2), last = width + left >= 16 ? min(count - 8, (width + left - 16) / 2) : -1
    var t = 0
    while t < min(first, count) {
        one(t)
        t += 1
    }
    if first <= last {
        while t <= last {
            eight(t)
            t += 8
        }
        if t < last + 8 {
            eight(last)
            t = last + 8
        }
    }
    while t < count {
        one(t)
        t += 1
    }
}

/// `to[t] = from[step * t]` for `t` in `range`: the strided convs'
/// subsampled copies, one copy for step 1 and `copyEvenFloats` for step 2
/// (reading no float past `from[step (range.upperBound - 1)]`).
@inline(__always)
func copyStridedFloats(_ from: UnsafePointer<Float>, step: Int, to: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
    switch step {
    case 1: copyFloats(from + range.lowerBound, to: to + range.lowerBound, count: range.count)
    case 2: copyEvenFloats(from, to: to, range)
    default: for t in range { to[t] = from[t * step] }
    }
}

/// `to[k] = 0` for `k < count`, inline as `copyFloats`.
@inline(__always)
func clearFloats(_ to: UnsafeMutablePointer<Float>, count: Int) {
    var k = 0
    while k + 8 <= count {
        UnsafeMutableRawPointer(to + k).storeBytes(of: SIMD8<Float>(), as: SIMD8<Float>.self)
        k += 8
    }
    while k < count {
        to[k] = 0
        k += 1
    }
}

/// `sum_k a[k]`, in 8 double lanes.
@inline(__always)
func sum(_ a: UnsafePointer<Float>, _ count: Int) -> Double {
    var low = SIMD4<Double>(), high = SIMD4<Double>()
    var k = 0
    while k + 8 <= count {
        low += SIMD4<Double>(UnsafeRawPointer(a + k).loadUnaligned(as: SIMD4<Float>.self))
        high += SIMD4<Double>(UnsafeRawPointer(a + k + 4).loadUnaligned(as: SIMD4<Float>.self))
        k += 8
    }
    var total = (low + high).sum()
    while k < count {
        total += Double(a[k])
        k += 1
    }
    return total
}

/// `sum_k a[k]^2`, in double precision (cannot overflow for finite floats).
@inline(__always)
func squaredNorm(_ a: UnsafePointer<Float>, _ count: Int) -> Double {
    var acc = SIMD4<Double>()
    var k = 0
    while k + 4 <= count {
        let v = SIMD4<Double>(UnsafeRawPointer(a + k).loadUnaligned(as: SIMD4<Float>.self))
        acc = acc.addingProduct(v, v)
        k += 4
    }
    var total = acc.sum()
    while k < count {
        total += Double(a[k]) * Double(a[k])
        k += 1
    }
    return total
}

/// `sum_k |a[k]|`.
@inline(__always)
func absoluteSum(_ a: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = SIMD8<Float>()
    var k = 0
    while k + 8 <= count {
        let v = UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Float>.self)
        acc += v.replacing(with: -v, where: v .< 0)
        k += 8
    }
    var total = acc.sum()
    while k < count {
        total += abs(a[k])
        k += 1
    }
    return total
}

extension SIMD8 where Scalar == Float {
    @inline(__always) mutating func addProduct(_ a: Self, _ b: Self) {
        self = addingProduct(a, b) // fused self + a * b per lane
    }
}
