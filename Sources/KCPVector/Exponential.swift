/// The activations built on `exp`, 16 floats at a time: glibc's `expf`
/// per float kept their loops scalar (EfficientNet-B0's SiLUs took 18 of
/// its 24 ms, 1 thread, AMD EPYC Zen 5).

/// An activation computed through `exponential`.
public enum ExponentialActivation: Sendable {
    /// `sigmoid(x) = 1 / (1 + exp(-x))`.
    case sigmoid
    /// `silu(x) = x * sigmoid(x)`.
    case silu
    /// SiLU's backward, `g * s * (1 + x * (1 - s))` with `s = sigmoid(x)`.
    case siluGradient
}

/// `y[i] = f(x[i])` (`f(x[i], gradient[i])` for `siluGradient`) for `i <
/// count`, in runs of 16 floats, the last few in a vector of their own: every
/// element gets the same float operations wherever it lies.
public func exponentialActivation(_ f: ExponentialActivation, _ x: UnsafePointer<Float>,
                                  gradient: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, count: Int)
{
    @inline(__always)
    func apply(_ x: Lanes, _ g: Lanes) -> Lanes {
        let s = 1 / (1 + exponential(-x))
        switch f {
        case .sigmoid: return s
        case .silu: return x * s
        case .siluGradient: return g * s * (1 + x * (1 - s))
        }
    }
    var i = 0
    while i + 16 <= count {
        let g = gradient.map { UnsafeRawPointer($0 + i).loadUnaligned(as: Lanes.self) } ?? Lanes()
        UnsafeMutableRawPointer(y + i).storeBytes(of: apply(UnsafeRawPointer(x + i).loadUnaligned(as: Lanes.self), g),
                                                  as: Lanes.self)
        i += 16
    }
    guard i < count else { return }
    var (xs, gs) = (Lanes(), Lanes())
    for k in 0..<(count - i) { (xs[k], gs[k]) = (x[i + k], gradient?[i + k] ?? 0) }
    let ys = apply(xs, gs)
    for k in 0..<(count - i) { y[i + k] = ys[k] }
}

/// `exp(x)` of 16 floats at once, as Cephes's `expf` computes it (S. L.
/// Moshier, Cephes Math Library, `expf.c`): `x = n ln 2 + r` with `n` the
/// nearest integer to `x / ln 2` (adding `1.5 * 2^23` leaves it in the low
/// bits) and `ln 2` in two parts so that `r` is exact, `exp(r) = 1 + r +
/// r^2 p(r)` with a degree-5 polynomial `p` on `|r| <= ln 2 / 2`, then
/// times `2^n`, built in the exponent bits as `2^h * 2^(n - h)`, `h = n / 2`,
/// so that each factor is a normal float. Within 3 ulp of `exp` over the
/// normal results (the tests measure it against `Double` exp); `+inf` past
/// `ln(Float.greatestFiniteMagnitude)`, `0` below
/// `ln(Float.leastNormalMagnitude)`, NaN for NaN, as glibc's `expf` but
/// for its subnormal results. The disparity regression's softmax
/// (SoftArgmin.swift) calls it too.
@inline(__always)
func exponential(_ x: Lanes) -> Lanes {
    func c(_ value: Float) -> Lanes { Lanes(repeating: value) }
    let (largest, smallest) = (c(88.72283935546875), c(-87.3365478515625))
    let v = smaller(larger(x, smallest), largest), magic = c(12_582_912)  // NaN kept
    let shifted = v * c(1.44269504088896341) + magic, n = shifted - magic  // n in -126...128
    let r = v.addingProduct(n, c(-0.693359375)).addingProduct(n, c(2.12194440e-4))
    var p = c(1.9875691500e-4)  // Horner's steps, one fused multiply-add each
    p = c(1.3981999507e-3).addingProduct(p, r)
    p = c(8.3334519073e-3).addingProduct(p, r)
    p = c(4.1665795894e-2).addingProduct(p, r)
    p = c(1.6666665459e-1).addingProduct(p, r)
    p = c(5.0000001201e-1).addingProduct(p, r)
    let whole = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
    let half = whole &>> 1
    let y = r.addingProduct(p, r * r) + 1
    let result = y * unsafeBitCast((half &+ 127) &<< 23, to: Lanes.self)
        * unsafeBitCast((whole &- half &+ 127) &<< 23, to: Lanes.self)
    return result.replacing(with: .infinity, where: x .> largest).replacing(with: 0, where: x .< smallest)
}
