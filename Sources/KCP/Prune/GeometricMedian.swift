/// The geometric median `argmin_c sum_i ||v_i - c||_2` by Weiszfeld's
/// iteration (Weiszfeld 1937; as used for filter pruning by FPGM, He et al.
/// 2019): `c <- sum_i v_i / d_i / sum_i 1 / d_i`, `d_i = ||v_i - c||`.
///
/// Starts at the mean of `members`, skips points closer than `1e-12`, and
/// stops when a step is shorter than `1e-7 * (1 + ||c||)` (the new `c`) or
/// after `maxIterations`.
func geometricMedian(points: UnsafePointer<Float>, length: Int, members: [Int],
                     maxIterations: Int = 200) -> [Float]
{
    var center = [Double](repeating: 0, count: length)
    for i in members {
        for k in 0..<length { center[k] += Double(points[i * length + k]) }
    }
    for k in 0..<length { center[k] /= Double(members.count) }

    var weights = [Double](repeating: 0, count: members.count)
    var next = [Double](repeating: 0, count: length)
    for _ in 0..<maxIterations {
        center.withUnsafeBufferPointer { c in
            weights.withUnsafeMutableBufferPointer { w in
                let cBase = c.baseAddress!, wBase = w.baseAddress!
                parallelFor(members.count) { m in
                    let d = squaredDistance(points + members[m] * length, cBase, length).squareRoot()
                    wBase[m] = d < 1e-12 ? 0 : 1 / d
                }
            }
        }
        let totalWeight = weights.reduce(0, +)
        if totalWeight == 0 { break }
        // Each thread owns a contiguous range of coordinates and sums the
        // members in order: deterministic for any thread count.
        let chunk = 64
        next.withUnsafeMutableBufferPointer { nextBuffer in
            let out = nextBuffer.baseAddress!
            parallelFor((length + chunk - 1) / chunk) { block in
                let range = (block * chunk)..<min(length, (block + 1) * chunk)
                for k in range { out[k] = 0 }
                for (m, i) in members.enumerated() where weights[m] > 0 {
                    let row = points + i * length
                    for k in range { out[k] += weights[m] * Double(row[k]) }
                }
                for k in range { out[k] /= totalWeight }
            }
        }
        var step = 0.0, norm = 0.0
        for k in 0..<length {
            step += (next[k] - center[k]) * (next[k] - center[k])
            norm += next[k] * next[k]
        }
        swap(&center, &next)
        if step.squareRoot() < 1e-7 * (1 + norm.squareRoot()) { break }
    }
    return center.map { Float($0) }
}
