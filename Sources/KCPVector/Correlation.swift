/// One row of a group-wise correlation for up to four disparities `d0 + j`
/// (`j < count`), 16 pixels at a time: `y[j * planePitch + w] = scale *
/// sum_{c < channels} left[c * pitch + w] * right[c * pitch + w - d0 - j]`
/// for `w < width`, each sum over `c` in increasing order in its own
/// register, so a left vector loaded once serves the four disparities.
/// `right` must read as zero for the `d0 + 3` columns before each row and
/// both must be readable to `width` rounded up to 16.
public func correlationRow(_ left: UnsafePointer<Float>, _ right: UnsafePointer<Float>, channels: Int, pitch: Int,
                           width: Int, firstDisparity d0: Int, count: Int, scale: Float,
                           into y: UnsafeMutablePointer<Float>, planePitch: Int)
{
    func load(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
    let scales = Lanes(repeating: scale)
    var sums = InlineArray<4, Lanes>(repeating: Lanes())
    for w in Swift.stride(from: 0, to: width, by: 16) {
        var (s0, s1, s2, s3) = (Lanes(), Lanes(), Lanes(), Lanes())
        for c in 0..<channels {
            let l = load(left + c * pitch + w), r = right + c * pitch + w - d0
            s0.addProduct(l, load(r))
            if count > 1 { s1.addProduct(l, load(r - 1)) }
            if count > 2 { s2.addProduct(l, load(r - 2)) }
            if count > 3 { s3.addProduct(l, load(r - 3)) }
        }
        (sums[0], sums[1], sums[2], sums[3]) = (s0 * scales, s1 * scales, s2 * scales, s3 * scales)
        for j in 0..<count {
            let out = y + j * planePitch + w
            if w + 16 <= width { UnsafeMutableRawPointer(out).storeBytes(of: sums[j], as: Lanes.self); continue }
            for i in 0..<(width - w) { out[i] = sums[j][i] }
        }
    }
}
