/// What one pruning decision removes inside a layer.
public enum Granularity: Int32, Sendable {
    /// Whole input channels (kernel clusters).
    case channel = 0
    /// Single kernels `W[o, j]`.
    case kernel = 1
}

/// KCP on a single layer: scores, clusters and the keep mask.
public struct LayerPruning: Sendable {
    /// Channel granularity: `I` scores `s_i`. Kernel granularity: `[O, I/g]`
    /// distances `t[o, j]` to the cluster's mean kernel.
    public var scores: [Double]
    /// Center index of each input channel (all 0 for kernel granularity).
    public var labels: [Int]
    /// `[m, (O/g) * kh * kw]` centers (empty for kernel granularity).
    public var centers: [Float]
    /// Same shape as `scores`; `false` where pruned.
    public var keep: [Bool]

    /// Scores the layer and selects what to keep.
    ///
    /// Channel granularity prunes `floor(ratio * I)` input channels with the
    /// smallest `s_i`, never the best-scored member of a cluster; kernel
    /// granularity prunes `floor(ratio * O * I/g)` kernels with the smallest
    /// `t[o, j] = ||W[o, j] - mean_o' W[o', j]||_2` (only the mean center).
    public init(weight: UnsafeBufferPointer<Float>, geometry: LayerGeometry, ratio: Double,
                center: CenterKind = .mean, clusters: Int = 1, granularity: Granularity = .channel,
                roundTo: Int = 1, seed: UInt64 = 0) throws
    {
        try require(ratio >= 0 && ratio < 1, "ratio", "must be in [0, 1), got \(ratio)")
        switch granularity {
        case .channel:
            let clustered = try ChannelClusters(weight: weight, geometry: geometry, center: center,
                                                clusters: clusters, seed: seed)
            (scores, labels, centers) = (clustered.scores, clustered.labels, clustered.centers)
            keep = try selectKeep(scores: scores, ratio: ratio, roundTo: roundTo,
                                  protected: clusters > 1 ? clustered.representatives : nil)
        case .kernel:
            try require(center == .mean && clusters == 1, "granularity",
                        "kernel granularity scores kernels against their cluster's mean kernel; use center='mean' and centers=1")
            try requireFinite(weight, shape: geometry.shape, argument: "weight")
            scores = kernelDistances(weight.baseAddress!, geometry)
            if !scores.allSatisfy(\.isFinite) { throw KCPError.overflow }
            labels = [Int](repeating: 0, count: geometry.inChannels)
            centers = []
            keep = try selectKeep(scores: scores, ratio: ratio, roundTo: roundTo)
        }
    }
}
