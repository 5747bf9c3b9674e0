/// Channel importance criteria of one layer, each normalised per layer as
/// `s / mean(s)` (all zero if the mean is 0).
public enum Criterion: Sendable, Equatable {
    /// KCP: distance of each input channel's kernel cluster to its center.
    case kcp(center: CenterKind)
    /// A baseline that scores output filters.
    case filter(FilterCriterion)

    /// Whether the criterion scores the channels a layer reads (KCP) rather
    /// than the filters it writes.
    public var scoresInputs: Bool {
        if case .kcp = self { return true }
        return false
    }
}

/// Baselines scoring each output filter `W[o]` (length `(I/g) * kh * kw`).
public enum FilterCriterion: Sendable, Equatable {
    /// L1 norm (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017).
    case l1
    /// L2 norm (He et al., "Soft Filter Pruning", IJCAI 2018).
    case l2
    /// Sum of Euclidean distances to every other filter of the layer
    /// (He et al., "Filter Pruning via Geometric Median", CVPR 2019).
    case fpgm
    /// Seeded uniform scores in [0, 1) from SplitMix64.
    case random(seed: UInt64)

    /// Unnormalised scores of the `rows` filters of length `length` at `w`.
    func rawScores(_ w: UnsafePointer<Float>, rows: Int, length: Int) -> [Double] {
        switch self {
        case .l1:
            return perRow(rows) { Double(absoluteSum(w + $0 * length, length)) }
        case .l2:
            return perRow(rows) { squaredNorm(w + $0 * length, length).squareRoot() }
        case .fpgm:
            return pairwiseDistanceSums(rows: w, count: rows, length: length)
        case let .random(seed):
            var rng = SplitMix64(seed: seed)
            return (0..<rows).map { _ in rng.nextUnit() }
        }
    }
}

/// Scores every channel of one layer: `I` input-channel scores for `kcp`,
/// `O` output-filter scores for the baselines.
public func layerScores(weight: UnsafeBufferPointer<Float>, geometry: LayerGeometry,
                        criterion: Criterion) throws -> [Double]
{
    switch criterion {
    case let .kcp(center):
        return try ChannelClusters(weight: weight, geometry: geometry, center: center).scores
    case let .filter(baseline):
        try requireFinite(weight, shape: geometry.shape, argument: "weight")
        let raw = baseline.rawScores(weight.baseAddress!, rows: geometry.outChannels, length: geometry.filterLength)
        if !raw.allSatisfy(\.isFinite) { throw KCPError.overflow }
        return normalizedByMean(raw)
    }
}

/// `body(i)` for `i` in `0..<count`, in parallel.
private func perRow(_ count: Int, _ body: (Int) -> Double) -> [Double] {
    [Double](unsafeUninitializedCapacity: count) { out, initialized in
        let base = out.baseAddress!
        parallelFor(count) { base[$0] = body($0) }
        initialized = count
    }
}

/// `s_i / mean_j s_j`, or all zeros when the mean is zero.
func normalizedByMean(_ values: [Double]) -> [Double] {
    let mean = values.reduce(0, +) / Double(values.count)
    return mean > 0 ? values.map { $0 / mean } : [Double](repeating: 0, count: values.count)
}

/// `sum_b ||r_a - r_b||_2` for every row `a`, from the double-precision Gram
/// matrix `G = R R^T` of the rows centered on their mean (one DGEMM):
/// `||r_a - r_b||^2 = G_aa + G_bb - 2 G_ab`. Centering leaves distances
/// unchanged and avoids cancellation when filters share a large common part.
func pairwiseDistanceSums(rows: UnsafePointer<Float>, count n: Int, length: Int) -> [Double] {
    let gram = centeredGramMatrix(rows, rows: n, length: length)
    return [Double](unsafeUninitializedCapacity: n) { out, count in
        let outBase = out.baseAddress!
        gram.withUnsafeBufferPointer { g in
            parallelFor(n) { a in
                var sum = 0.0
                for b in 0..<n where b != a {
                    let d2 = g[a * n + a] + g[b * n + b] - 2 * g[a * n + b]
                    sum += max(d2, 0).squareRoot()
                }
                outBase[a] = sum
            }
        }
        count = n
    }
}
