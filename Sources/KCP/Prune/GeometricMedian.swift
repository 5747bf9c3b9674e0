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
    var sum = [Double](repeating: 0, count: length)
    for i in members {
        for k in 0..<length { sum[k] += Double(points[i * length + k]) }
    }
    var center = sum.map { Float($0 / Double(members.count)) }
    var next = [Float](repeating: 0, count: length)
    var weights = [Float](repeating: 0, count: members.count)
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
        // Each block of coordinates sums the members in order: deterministic
        // for any thread count.
        let chunk = 256
        next.withUnsafeMutableBufferPointer { nextBuffer in
            let out = nextBuffer.baseAddress!
            parallelFor((length + chunk - 1) / chunk) { block in
                let start = block * chunk, count = min(length, start + chunk) - start
                (out + start).update(repeating: 0, count: count)
                for (m, i) in members.enumerated() where weights[m] > 0 {
                    addScaled(out + start, points + i * length + start, weights[m] / totalWeight, count)
                }
            }
        }
        var step = 0.0, norm = 0.0
        for k in 0..<length {
            step += Double(next[k] - center[k]) * Double(next[k] - center[k])
            norm += Double(next[k]) * Double(next[k])
        }
        swap(&center, &next)
        if step.squareRoot() < 1e-7 * (1 + norm.squareRoot()) { break }
    }
    return center
}
