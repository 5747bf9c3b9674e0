/// How the center of a kernel cluster group is placed.
public enum CenterKind: Int32, Sendable {
    /// The mean of the member vectors.
    case mean = 0
    /// The geometric median of the member vectors (Weiszfeld).
    case median = 1
}

/// Input channels of one layer grouped by their kernel clusters, and how well
/// each is represented by its center (KCP, Yu et al. 2021, arXiv 2101.06686).
public struct ChannelClusters: Sendable {
    /// `s_i = d_i / mean_j d_j`, `d_i = ||v_i - c(i)||_2` (all zero if the
    /// mean is 0). Smallest scores are the least representational channels.
    public var scores: [Double]
    /// Center index of each input channel.
    public var labels: [Int]
    /// `[m, (O/g) * kh * kw]` centers.
    public var centers: [Float]

    /// Clusters the input channels of `weight`.
    ///
    /// With one center, `c` is the mean (one fused pass over the weight) or
    /// the geometric median of all `v_i`. With `m > 1` centers the `v_i` are
    /// grouped by k-means (k-means++ seeded by `seed`); with the median,
    /// each group's center then moves to its members' geometric median and
    /// every channel joins its nearest center.
    /// - Parameters:
    ///   - weight: the layer's weight, row-major, described by `geometry`.
    ///   - center: where a group's center sits.
    ///   - clusters: the number of centers `m`, `1...I`.
    ///   - seed: seeds k-means++ (unused when `m == 1`).
    public init(weight: UnsafeBufferPointer<Float>, geometry: LayerGeometry, center: CenterKind = .mean,
                clusters: Int = 1, seed: UInt64 = 0) throws
    {
        let n = geometry.inChannels, length = geometry.clusterLength
        try require(clusters >= 1 && clusters <= n, "centers",
                    "must be between 1 and the \(n) input channels, got \(clusters)")
        let w = weight.baseAddress!
        var squared: [Double]
        if clusters == 1 && center == .mean {
            (centers, squared) = meanCenterSquaredDistances(w, geometry)
            labels = [Int](repeating: 0, count: n)
        } else {
            try requireFinite(weight, shape: geometry.shape, argument: "weight")
            let vectors = clusterVectors(w, geometry)
            (labels, centers, squared) = vectors.withUnsafeBufferPointer { v in
                let points = v.baseAddress!
                var labels = [Int](repeating: 0, count: n)
                var centers: [Float]
                if clusters > 1 {
                    let kmeans = KMeans(points: points, count: n, length: length, clusters: clusters, seed: seed)
                    (labels, centers) = (kmeans.labels, kmeans.centers)
                } else {
                    centers = [Float](repeating: 0, count: length)
                }
                if center == .median {
                    for cluster in 0..<clusters {
                        let members = (0..<n).filter { labels[$0] == cluster }
                        if members.isEmpty { continue }
                        let median = geometricMedian(points: points, length: length, members: members)
                        centers.replaceSubrange((cluster * length)..<((cluster + 1) * length), with: median)
                    }
                    labels = nearestCenters(points: points, count: n, length: length, centers: centers)
                }
                let squared = centers.withUnsafeBufferPointer { c in
                    (0..<n).map { i in
                        Double(squaredDistance(points + i * length, c.baseAddress! + labels[i] * length, length))
                    }
                }
                return (labels, centers, squared)
            }
        }
        if !squared.allSatisfy(\.isFinite) {
            try requireFinite(weight, shape: geometry.shape, argument: "weight")
            throw KCPError.overflow
        }
        scores = normalizedByMean(squared.map { $0.squareRoot() })
    }

    /// For each center, the member with the largest score (ties: lowest
    /// index). Selection never prunes these, so no cluster is emptied.
    public var representatives: [Bool] {
        var best = [Int: Int]()
        for (i, label) in labels.enumerated() where best[label].map({ scores[i] > scores[$0] }) ?? true {
            best[label] = i
        }
        var keep = [Bool](repeating: false, count: labels.count)
        for i in best.values { keep[i] = true }
        return keep
    }
}
