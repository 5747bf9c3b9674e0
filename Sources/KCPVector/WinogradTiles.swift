/// The transforms of Winograd's F(4x4, 3x3) for 16 tiles of a row of
/// tiles at once, a tile per lane (Lavin & Gray, CVPR 2016): `V = B^T d B`,
/// `U = G g G^T` and `Y = A^T M A`, each as 1-D transforms over rows, then
/// over columns, with the adds and multiplies of the matrices' rows written
/// out. The interpolation points are 0, 1, -1, 2, -1/2 and ∞, which round
/// about half as much in float as the usual 0, ±1, ±2 (Barabasz et al.,
/// "Error Analysis and Improving the Accuracy of Winograd Convolution for
/// Deep Neural Networks", ACM TOMS 2020); rows 0 to 3 of `B^T` are scaled
/// by 2 and those of `G` by 1/2, which changes no product.

/// `B^T x` for one column `x` of six vectors:
/// `B^T = [[2, 3, -4, -3, 2, 0], [0, -2, -5, -1, 2, 0], [0, 2, 1, -5, 2, 0],
///         [0, -1, -2, 1, 2, 0], [0, 2, -1, -2, 1, 0], [0, 1, 1.5, -2, -1.5, 1]]`.
@inline(__always)
private func inputRows(_ x: (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes)) -> (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes) {
    func c(_ value: Float) -> Lanes { Lanes(repeating: value) }
    let twice4 = x.4 * c(2)
    return (x.0 * c(2) + x.1 * c(3) - x.2 * c(4) - x.3 * c(3) + twice4,
            twice4 - x.1 * c(2) - x.2 * c(5) - x.3,
            twice4 + x.1 * c(2) + x.2 - x.3 * c(5),
            twice4 - x.1 - x.2 * c(2) + x.3,
            x.4 + x.1 * c(2) - x.2 - x.3 * c(2),
            x.5 + x.1 + x.2 * c(1.5) - x.3 * c(2) - x.4 * c(1.5))
}

/// `A^T m` for one column `m` of six vectors:
/// `A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -1/2, 0], [0, 1, 1, 4, 1/4, 0], [0, 1, -1, 8, -1/8, 1]]`.
@inline(__always)
private func outputRows(_ m: (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes)) -> (Lanes, Lanes, Lanes, Lanes) {
    func c(_ value: Float) -> Lanes { Lanes(repeating: value) }
    let (plus, minus) = (m.1 + m.2, m.1 - m.2)
    return (m.0 + plus + m.3 + m.4, minus + m.3 * c(2) - m.4 * c(0.5), plus + m.3 * c(4) + m.4 * c(0.25),
            minus + m.3 * c(8) - m.4 * c(0.125) + m.5)
}

/// `V = B^T d B` for `count` (1 to 16) tiles side by side: tile `k`'s 6x6
/// input `d[i][j]` is `lines[i * linePitch + j * tapPitch + k]` (each input
/// row of the tiles as six lines, the columns each tap of a row reads), and
/// point `ξ = a * 6 + b` of its `V` goes to `into[ξ * pointPitch + k]`.
/// Reads 16 floats of each line, whatever `count`.
public func winogradInputTiles(_ lines: UnsafePointer<Float>, linePitch: Int, tapPitch: Int, count: Int,
                               into: UnsafeMutablePointer<Float>, pointPitch: Int)
{
    func d(_ line: UnsafePointer<Float>, _ j: Int) -> Lanes {
        UnsafeRawPointer(line + j * tapPitch).loadUnaligned(as: Lanes.self)
    }
    var rows = InlineArray<36, Lanes>(repeating: Lanes())  // (d B)[i][b] at i * 6 + b
    for i in 0..<6 {
        let line = lines + i * linePitch
        let u = inputRows((d(line, 0), d(line, 1), d(line, 2), d(line, 3), d(line, 4), d(line, 5)))
        (rows[i * 6], rows[i * 6 + 1], rows[i * 6 + 2]) = (u.0, u.1, u.2)
        (rows[i * 6 + 3], rows[i * 6 + 4], rows[i * 6 + 5]) = (u.3, u.4, u.5)
    }
    for b in 0..<6 {
        let v = inputRows((rows[b], rows[6 + b], rows[12 + b], rows[18 + b], rows[24 + b], rows[30 + b]))
        store(v, point: { a in a * 6 + b }, count, into, pointPitch)  // (B^T d B)[a][b] over a
    }
}

/// Six vectors `v.i` to points `point(i)` (at `into + point * pitch`), their first `count` lanes.
@inline(__always)
private func store(_ v: (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes), point: (Int) -> Int, _ count: Int,
                   _ into: UnsafeMutablePointer<Float>, _ pitch: Int)
{
    func put(_ x: Lanes, _ i: Int) {
        let out = into + point(i) * pitch
        if count == 16 { return UnsafeMutableRawPointer(out).storeBytes(of: x, as: Lanes.self) }
        for k in 0..<count { out[k] = x[k] }
    }
    put(v.0, 0); put(v.1, 1); put(v.2, 2); put(v.3, 3); put(v.4, 4); put(v.5, 5)
}

/// `Y = A^T M A` for 16 tiles side by side: point `ξ = a * 6 + b` of tile
/// `k`'s `M` is `products[ξ * pointPitch + k]`, and its 4x4 output `Y[r][c]`
/// goes to `lines[r * linePitch + c * phasePitch + k]` (each output row as
/// four phase lines, by column mod 4). Reads and writes all 16 lanes.
public func winogradOutputTiles(_ products: UnsafePointer<Float>, pointPitch: Int,
                                into lines: UnsafeMutablePointer<Float>, linePitch: Int, phasePitch: Int)
{
    func put(_ x: Lanes, _ r: Int, _ c: Int) {
        UnsafeMutableRawPointer(lines + r * linePitch + c * phasePitch).storeBytes(of: x, as: Lanes.self)
    }
    var half = InlineArray<24, Lanes>(repeating: Lanes())  // (A^T M)[r][b] at r * 6 + b
    for b in 0..<6 {
        func m(_ a: Int) -> Lanes { UnsafeRawPointer(products + (a * 6 + b) * pointPitch).loadUnaligned(as: Lanes.self) }
        let z = outputRows((m(0), m(1), m(2), m(3), m(4), m(5)))
        (half[b], half[6 + b], half[12 + b], half[18 + b]) = (z.0, z.1, z.2, z.3)
    }
    for r in 0..<4 {
        let y = outputRows((half[r * 6], half[r * 6 + 1], half[r * 6 + 2], half[r * 6 + 3], half[r * 6 + 4],
                            half[r * 6 + 5]))
        put(y.0, r, 0); put(y.1, r, 1); put(y.2, r, 2); put(y.3, r, 3)
    }
}

/// `G x` for one column `x` of three vectors:
/// `G = [[1/2, 0, 0], [-1/6, -1/6, -1/6], [1/6, -1/6, 1/6], [1/30, 1/15, 2/15], [-16/15, 8/15, -4/15], [0, 0, 1]]`.
@inline(__always)
private func kernelRows(_ x: (Lanes, Lanes, Lanes)) -> (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes) {
    func c(_ value: Float) -> Lanes { Lanes(repeating: value) }
    let ends = x.0 + x.2
    return (x.0 * c(0.5), (ends + x.1) * c(-1.0 / 6), (ends - x.1) * c(1.0 / 6),
            x.0 * c(1.0 / 30) + x.1 * c(1.0 / 15) + x.2 * c(2.0 / 15),
            x.1 * c(8.0 / 15) - x.0 * c(16.0 / 15) - x.2 * c(4.0 / 15), x.2)
}

/// `U = G g G^T` for `count` (1 to 16) 3x3 kernels side by side: kernel
/// `k`'s tap `(p, q)` is `taps[(p * 3 + q) * tapPitch + k]`, and point
/// `ξ = a * 6 + b` of its `U` goes to `into[ξ * pointPitch + k]`. Reads 16
/// lanes of each tap row, whatever `count`.
public func winogradKernelTiles(_ taps: UnsafePointer<Float>, tapPitch: Int, count: Int,
                                into: UnsafeMutablePointer<Float>, pointPitch: Int)
{
    func tap(_ p: Int, _ q: Int) -> Lanes { UnsafeRawPointer(taps + (p * 3 + q) * tapPitch).loadUnaligned(as: Lanes.self) }
    var half = InlineArray<18, Lanes>(repeating: Lanes())  // (G g)[a][q] at a * 3 + q
    for q in 0..<3 {
        let h = kernelRows((tap(0, q), tap(1, q), tap(2, q)))
        (half[q], half[3 + q], half[6 + q], half[9 + q], half[12 + q], half[15 + q]) = h
    }
    for a in 0..<6 {
        let u = kernelRows((half[a * 3], half[a * 3 + 1], half[a * 3 + 2]))  // (G g G^T)[a][b] over b
        store(u, point: { b in a * 6 + b }, count, into, pointPitch)
    }
}

/// `phases[φ * phasePitch + k] = line[4k + φ]` for `k < count`: a line split by column mod 4 (the
/// loop reads whole groups of four, which the compiler turns into vector loads and shuffles).
public func splitPhases(_ line: UnsafePointer<Float>, count: Int, into phases: UnsafeMutablePointer<Float>,
                        phasePitch: Int)
{
    let (p1, p2, p3) = (phases + phasePitch, phases + 2 * phasePitch, phases + 3 * phasePitch)
    for k in 0..<count {
        let column = line + (k &<< 2)
        (phases[k], p1[k], p2[k], p3[k]) = (column[0], column[1], column[2], column[3])
    }
}

/// `line[4k + φ] = phases[φ * phasePitch + k]` for `k < count`: the inverse of `splitPhases`.
public func joinPhases(_ phases: UnsafePointer<Float>, phasePitch: Int, count: Int, into line: UnsafeMutablePointer<Float>) {
    let (p1, p2, p3) = (phases + phasePitch, phases + 2 * phasePitch, phases + 3 * phasePitch)
    for k in 0..<count {
        let column = line + (k &<< 2)
        (column[0], column[1], column[2], column[3]) = (phases[k], p1[k], p2[k], p3[k])
    }
}

/// `A x` for one column `x` of four vectors (`A` the transpose of `outputRows`'s `A^T`).
@inline(__always)
private func gradientRows(_ x: (Lanes, Lanes, Lanes, Lanes)) -> (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes) {
    func c(_ value: Float) -> Lanes { Lanes(repeating: value) }
    let (even, odd) = (x.0 + x.2, x.1 + x.3)
    return (x.0, even + odd, even - odd, x.0 + x.1 * c(2) + x.2 * c(4) + x.3 * c(8),
            x.0 - x.1 * c(0.5) + x.2 * c(0.25) - x.3 * c(0.125), x.3)
}

/// `A dY A^T` for `count` (1 to 16) 4x4 tiles of an output's gradient side
/// by side, the adjoint of `winogradOutputTiles`: tile `k`'s `dY[r][c]` is
/// `lines[r * linePitch + c * phasePitch + k]`, and point `ξ = a * 6 + b` of
/// the result goes to `into[ξ * pointPitch + k]`. Reads 16 floats of each line.
public func winogradGradientTiles(_ lines: UnsafePointer<Float>, linePitch: Int, phasePitch: Int, count: Int,
                                  into: UnsafeMutablePointer<Float>, pointPitch: Int)
{
    func g(_ r: Int, _ c: Int) -> Lanes {
        UnsafeRawPointer(lines + r * linePitch + c * phasePitch).loadUnaligned(as: Lanes.self)
    }
    var half = InlineArray<24, Lanes>(repeating: Lanes())  // (dY A^T)[r][b] at r * 6 + b
    for r in 0..<4 {
        let h = gradientRows((g(r, 0), g(r, 1), g(r, 2), g(r, 3)))
        (half[r * 6], half[r * 6 + 1], half[r * 6 + 2], half[r * 6 + 3], half[r * 6 + 4], half[r * 6 + 5]) = h
    }
    for b in 0..<6 {
        let v = gradientRows((half[b], half[6 + b], half[12 + b], half[18 + b]))
        store(v, point: { a in a * 6 + b }, count, into, pointPitch)  // (A dY A^T)[a][b] over a
    }
}

/// `G^T x` for one column `x` of six vectors (the transpose of `kernelRows`'s `G`).
@inline(__always)
private func kernelGradientRows(_ x: (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes)) -> (Lanes, Lanes, Lanes) {
    func c(_ value: Float) -> Lanes { Lanes(repeating: value) }
    let (sum, difference) = ((x.1 + x.2) * c(-1.0 / 6), (x.2 - x.1) * c(1.0 / 6))
    return (x.0 * c(0.5) + difference + x.3 * c(1.0 / 30) - x.4 * c(16.0 / 15),
            sum + x.3 * c(1.0 / 15) + x.4 * c(8.0 / 15),
            difference + x.3 * c(2.0 / 15) - x.4 * c(4.0 / 15) + x.5)
}

/// `dL/dg = G^T M G` for 16 kernels side by side, the adjoint of
/// `winogradKernelTiles`: point `ξ = a * 6 + b` of kernel `k`'s `M` is
/// `products[ξ * pointPitch + k]`, and its tap `(p, q)` goes to
/// `taps[(p * 3 + q) * 16 + k]`. Reads and writes all 16 lanes.
public func winogradKernelGradients(_ products: UnsafePointer<Float>, pointPitch: Int,
                                    into taps: UnsafeMutablePointer<Float>)
{
    func m(_ a: Int, _ b: Int) -> Lanes {
        UnsafeRawPointer(products + (a * 6 + b) * pointPitch).loadUnaligned(as: Lanes.self)
    }
    var half = InlineArray<18, Lanes>(repeating: Lanes())  // (G^T M)[p][b] at p * 6 + b
    for b in 0..<6 {
        let h = kernelGradientRows((m(0, b), m(1, b), m(2, b), m(3, b), m(4, b), m(5, b)))
        (half[b], half[6 + b], half[12 + b]) = h
    }
    for p in 0..<3 {
        let w = kernelGradientRows((half[p * 6], half[p * 6 + 1], half[p * 6 + 2], half[p * 6 + 3],
                                    half[p * 6 + 4], half[p * 6 + 5]))
        let out = UnsafeMutableRawPointer(taps + p * 3 * 16), size = MemoryLayout<Lanes>.size
        out.storeBytes(of: w.0, as: Lanes.self)
        out.storeBytes(of: w.1, toByteOffset: size, as: Lanes.self)
        out.storeBytes(of: w.2, toByteOffset: 2 * size, as: Lanes.self)
    }
}
