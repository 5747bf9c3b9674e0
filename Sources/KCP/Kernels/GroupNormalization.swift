import Glibc

/// How a normalization's statistics tile an `[N, C, ...]` tensor: each
/// *unit* (sample `n`, group `g`) is the contiguous block of the group's
/// `perGroup` channels at all `positions`; its statistics are one pair
/// (`spatial`) or one pair per position.
private struct NormalizationLayout {
    let units: Int, perGroup: Int, positions: Int, statistics: Int

    init(_ shape: [Int], _ n: Normalization) {
        let batchChannels = shape[0] * shape[1]
        positions = shape.dropFirst(2).reduce(1, *)
        perGroup = shape[1] / n.groups
        units = batchChannels / max(perGroup, 1)
        statistics = n.spatial ? 1 : positions
    }

    /// The statistic position `s` of a unit belongs to.
    func statistic(_ s: Int) -> Int { statistics == 1 ? 0 : s }
}

/// Mean and `1 / sqrt(var + epsilon)` of one unit at `xs` (its first
/// element), per statistic, over the channels `j` whose `counts(j)` holds
/// (`Normalization`'s formulas; double-precision sums).
private func unitMoments(_ xs: UnsafePointer<Float>, _ layout: NormalizationLayout, epsilon: Float,
                         counts: (Int) -> Bool) -> (mean: [Float], reciprocal: [Float])
{
    let (positions, statistics) = (layout.positions, layout.statistics)
    let counted = (0..<layout.perGroup).filter(counts)
    let entries = Double(counted.count * positions / statistics)
    var sums = [Double](repeating: 0, count: statistics)
    for j in counted {
        for s in 0..<positions { sums[layout.statistic(s)] += Double(xs[j * positions + s]) }
    }
    let mean = sums.map { entries > 0 ? Float($0 / entries) : 0 }
    var squares = [Double](repeating: 0, count: statistics)
    for j in counted {
        for s in 0..<positions {
            let d = Double(xs[j * positions + s] - mean[layout.statistic(s)])
            squares[layout.statistic(s)] += d * d
        }
    }
    return (mean, squares.map { 1 / (Float(entries > 0 ? $0 / entries : 0) + epsilon).squareRoot() })
}

/// `Normalization` forward: `y = (x - mean) * reciprocal * weight_c + bias_c`.
func normalizationForward(_ x: Tensor, _ n: Normalization, weight: [Float], bias: [Float], mask: [Float]) -> Tensor {
    let layout = NormalizationLayout(x.shape, n)
    let (perGroup, positions) = (layout.perGroup, layout.positions)
    return x.data.withUnsafeBufferPointer { xs in
        Tensor(shape: x.shape) { ys in
            parallelFor(layout.units) { unit in
                let first = (unit % n.groups) * perGroup, offset = unit * perGroup * positions
                let (mean, reciprocal) = unitMoments(xs.baseAddress! + offset, layout, epsilon: n.epsilon) { mask[first + $0] != 0 }
                for j in 0..<perGroup {
                    let c = first + j
                    for s in 0..<positions {
                        let t = layout.statistic(s), i = offset + j * positions + s
                        ys[i] = (xs[i] - mean[t]) * reciprocal[t] * weight[c] + bias[c]
                    }
                }
            }
        }
    }
}

/// Gradients of `Normalization` given `gradient = dL/dy`. With
/// `r = 1 / sqrt(var + epsilon)`, `xhat = (x - mean) r`, `g = dL/dy * weight`
/// and sums over a statistic's entries (all channels of the group; `s_i`
/// the mask, `m` the entries it counts):
/// `dL/dx_i = r (g_i - s_i / m (sum g + xhat_i sum g xhat))`,
/// `dL/dweight_c = sum dL/dy xhat`, `dL/dbias_c = sum dL/dy` (over samples and positions).
func normalizationBackward(_ x: Tensor, _ n: Normalization, weight: [Float], mask: [Float],
                           gradient: Tensor) -> (input: Tensor, weight: [Float], bias: [Float])
{
    let layout = NormalizationLayout(x.shape, n)
    let (perGroup, positions, statistics, channels) = (layout.perGroup, layout.positions, layout.statistics, x.shape[1])
    // Per unit and channel of its group: partial sums of dL/dweight and dL/dbias, added up below.
    var partials = [Float](repeating: 0, count: 2 * layout.units * perGroup)
    var dx = Tensor(zeros: x.shape)
    x.data.withUnsafeBufferPointer { xs in
        gradient.data.withUnsafeBufferPointer { dys in
            dx.data.withUnsafeMutableBufferPointer { dxs in
                partials.withUnsafeMutableBufferPointer { partial in
                    parallelFor(layout.units) { unit in
                        let first = (unit % n.groups) * perGroup, offset = unit * perGroup * positions
                        let counts = { (j: Int) in mask[first + j] != 0 }
                        let (mean, reciprocal) = unitMoments(xs.baseAddress! + offset, layout, epsilon: n.epsilon,
                                                             counts: counts)
                        let entries = Float((0..<perGroup).filter(counts).count * positions / statistics)
                        var sumG = [Float](repeating: 0, count: statistics)
                        var sumGXhat = [Float](repeating: 0, count: statistics)
                        for j in 0..<perGroup {
                            let c = first + j
                            var dWeight: Float = 0, dBias: Float = 0
                            for s in 0..<positions {
                                let t = layout.statistic(s), i = offset + j * positions + s
                                let xhat = (xs[i] - mean[t]) * reciprocal[t]
                                sumG[t] += dys[i] * weight[c]
                                sumGXhat[t] += dys[i] * weight[c] * xhat
                                dWeight += dys[i] * xhat
                                dBias += dys[i]
                            }
                            partial[2 * (unit * perGroup + j)] = dWeight
                            partial[2 * (unit * perGroup + j) + 1] = dBias
                        }
                        for j in 0..<perGroup {
                            let c = first + j, counted: Float = counts(j) && entries > 0 ? 1 / entries : 0
                            for s in 0..<positions {
                                let t = layout.statistic(s), i = offset + j * positions + s
                                let xhat = (xs[i] - mean[t]) * reciprocal[t]
                                dxs[i] = reciprocal[t] * (dys[i] * weight[c] - counted * (sumG[t] + xhat * sumGXhat[t]))
                            }
                        }
                    }
                }
            }
        }
    }
    var dWeight = [Float](repeating: 0, count: channels), dBias = [Float](repeating: 0, count: channels)
    for unit in 0..<layout.units {
        for j in 0..<perGroup {
            let c = (unit % n.groups) * perGroup + j
            dWeight[c] += partials[2 * (unit * perGroup + j)]
            dBias[c] += partials[2 * (unit * perGroup + j) + 1]
        }
    }
    return (dx, dWeight, dBias)
}
