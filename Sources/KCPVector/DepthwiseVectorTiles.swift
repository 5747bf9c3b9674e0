/// The inner loop of a depthwise convolution with its channels along the
/// vector lanes (`DepthwiseVectorConvolution`).

/// The most output pixels one `depthwiseVectorTile` call computes.
public let depthwiseVectorPixels = 8

/// One register tile of a depthwise convolution with 16 channels along the
/// lanes: `pixels` (1 to 8) output pixels,
/// `tile[16 * j + i] = sum_{k < taps} kernels[16 * k + i] * window[pixelOffsets[j] + offsets[k] + i]`,
/// summed tap by tap from zero, one multiply-add per term: for each
/// channel the float operations of the depthwise kernels that take one
/// channel at a time. Each tap is one 16-channel weight load and one
/// 16-channel load per pixel; the code is specialised for each `pixels`.
public func depthwiseVectorTile(pixels: Int, _ window: UnsafePointer<Float>, pixelOffsets: UnsafePointer<Int>,
                                _ kernels: UnsafePointer<Float>, offsets: UnsafePointer<Int>, taps: Int,
                                into tile: UnsafeMutablePointer<Float>)
{
    switch pixels {
    case 8: depthwiseVectorTile(Eight.self, window, pixelOffsets, kernels, offsets, taps, tile)
    case 7: depthwiseVectorTile(Seven.self, window, pixelOffsets, kernels, offsets, taps, tile)
    case 6: depthwiseVectorTile(Six.self, window, pixelOffsets, kernels, offsets, taps, tile)
    case 5: depthwiseVectorTile(Five.self, window, pixelOffsets, kernels, offsets, taps, tile)
    case 4: depthwiseVectorTile(Four.self, window, pixelOffsets, kernels, offsets, taps, tile)
    case 3: depthwiseVectorTile(Three.self, window, pixelOffsets, kernels, offsets, taps, tile)
    case 2: depthwiseVectorTile(Two.self, window, pixelOffsets, kernels, offsets, taps, tile)
    default: depthwiseVectorTile(One.self, window, pixelOffsets, kernels, offsets, taps, tile)
    }
}

/// `depthwiseVectorTile` for `P` pixels: `P` vector accumulators.
private func depthwiseVectorTile<P: Count>(_: P.Type, _ window: UnsafePointer<Float>, _ at: UnsafePointer<Int>,
                                           _ kernels: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>, _ taps: Int,
                                           _ tile: UnsafeMutablePointer<Float>)
{
    let pixels = P.value, size = MemoryLayout<Float>.stride
    /// Byte offset of pixel `j`'s window.
    @inline(__always)
    func offset(_ j: Int) -> Int { pixels > j ? at[j] * size : 0 }
    let (p0, p1, p2, p3, p4, p5, p6, p7) = (offset(0), offset(1), offset(2), offset(3), offset(4), offset(5),
                                            offset(6), offset(7))
    var (a0, a1, a2, a3) = (Lanes(), Lanes(), Lanes(), Lanes())
    var (a4, a5, a6, a7) = (Lanes(), Lanes(), Lanes(), Lanes())
    var w = UnsafeRawPointer(kernels)
    for k in 0..<taps {
        let x = UnsafeRawPointer(window + offsets[k]), v = w.loadUnaligned(as: Lanes.self)
        a0.addProduct(x.loadUnaligned(fromByteOffset: p0, as: Lanes.self), v)
        if pixels > 1 { a1.addProduct(x.loadUnaligned(fromByteOffset: p1, as: Lanes.self), v) }
        if pixels > 2 { a2.addProduct(x.loadUnaligned(fromByteOffset: p2, as: Lanes.self), v) }
        if pixels > 3 { a3.addProduct(x.loadUnaligned(fromByteOffset: p3, as: Lanes.self), v) }
        if pixels > 4 { a4.addProduct(x.loadUnaligned(fromByteOffset: p4, as: Lanes.self), v) }
        if pixels > 5 { a5.addProduct(x.loadUnaligned(fromByteOffset: p5, as: Lanes.self), v) }
        if pixels > 6 { a6.addProduct(x.loadUnaligned(fromByteOffset: p6, as: Lanes.self), v) }
        if pixels > 7 { a7.addProduct(x.loadUnaligned(fromByteOffset: p7, as: Lanes.self), v) }
        w += MemoryLayout<Lanes>.stride
    }
    let out = UnsafeMutableRawPointer(tile), next = MemoryLayout<Lanes>.stride
    out.storeBytes(of: a0, as: Lanes.self)
    if pixels > 1 { out.storeBytes(of: a1, toByteOffset: next, as: Lanes.self) }
    if pixels > 2 { out.storeBytes(of: a2, toByteOffset: 2 * next, as: Lanes.self) }
    if pixels > 3 { out.storeBytes(of: a3, toByteOffset: 3 * next, as: Lanes.self) }
    if pixels > 4 { out.storeBytes(of: a4, toByteOffset: 4 * next, as: Lanes.self) }
    if pixels > 5 { out.storeBytes(of: a5, toByteOffset: 5 * next, as: Lanes.self) }
    if pixels > 6 { out.storeBytes(of: a6, toByteOffset: 6 * next, as: Lanes.self) }
    if pixels > 7 { out.storeBytes(of: a7, toByteOffset: 7 * next, as: Lanes.self) }
}
