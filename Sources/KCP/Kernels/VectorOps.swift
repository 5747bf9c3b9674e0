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
