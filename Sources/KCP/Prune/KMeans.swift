/// k-means on the rows of an `[n, length]` matrix (Lloyd 1982), seeded by
/// k-means++ (Arthur & Vassilvitskii 2007).
struct KMeans {
    /// Cluster of each row.
    var labels: [Int]
    /// `[m, length]` centers; each is the mean of its members (an emptied
    /// cluster keeps its previous center).
    var centers: [Float]

    static let maxIterations = 100

    /// Seeds `m` centers with k-means++ and runs Lloyd iterations until no
    /// assignment changes (at most `maxIterations`). Ends on an assignment
    /// step, so every row sits with its nearest center (ties: lowest index).
    init(points: UnsafePointer<Float>, count n: Int, length: Int, clusters m: Int, seed: UInt64) {
        centers = KMeans.plusPlusSeeds(points: points, count: n, length: length, clusters: m, seed: seed)
        labels = [Int](repeating: 0, count: n)
        assign(points: points, count: n, length: length)
        for _ in 0..<KMeans.maxIterations {
            updateCenters(points: points, count: n, length: length)
            if !assign(points: points, count: n, length: length) { break }
        }
    }

    /// k-means++: the first center is row `floor(u * n)`; each next one is
    /// row `i` with probability `D(i)^2 / sum D^2`, found as the first row
    /// whose cumulative `D^2` exceeds `u * sum D^2`. If every row already
    /// coincides with a center, the lowest unchosen row is taken.
    static func plusPlusSeeds(points: UnsafePointer<Float>, count n: Int, length: Int, clusters m: Int,
                              seed: UInt64) -> [Float]
    {
        var rng = SplitMix64(seed: seed)
        var chosen = [min(Int(rng.nextUnit() * Double(n)), n - 1)]
        var nearest = [Double](repeating: .infinity, count: n)
        while true {
            let newest = points + chosen.last! * length
            for i in 0..<n {
                nearest[i] = min(nearest[i], Double(squaredDistance(points + i * length, newest, length)))
            }
            if chosen.count == m { break }
            let total = nearest.reduce(0, +)
            var next: Int?
            if total > 0 {
                let target = rng.nextUnit() * total
                var cumulative = 0.0
                for i in 0..<n where nearest[i] > 0 {
                    cumulative += nearest[i]
                    next = i
                    if cumulative > target { break }
                }
            } else {
                next = (0..<n).first { !chosen.contains($0) }
            }
            chosen.append(next!)
        }
        var centers = [Float](repeating: 0, count: m * length)
        for (c, row) in chosen.enumerated() {
            for k in 0..<length { centers[c * length + k] = points[row * length + k] }
        }
        return centers
    }

    /// Moves each row to its nearest center; returns whether any moved.
    @discardableResult
    mutating func assign(points: UnsafePointer<Float>, count n: Int, length: Int) -> Bool {
        let previous = labels
        labels = nearestCenters(points: points, count: n, length: length, centers: centers)
        return labels != previous
    }

    /// Sets each center to the mean of its members.
    mutating func updateCenters(points: UnsafePointer<Float>, count n: Int, length: Int) {
        let m = centers.count / length
        var sums = [Double](repeating: 0, count: m * length)
        var sizes = [Int](repeating: 0, count: m)
        for i in 0..<n {
            let cluster = labels[i]
            sizes[cluster] += 1
            for k in 0..<length { sums[cluster * length + k] += Double(points[i * length + k]) }
        }
        for cluster in 0..<m where sizes[cluster] > 0 {
            for k in 0..<length {
                centers[cluster * length + k] = Float(sums[cluster * length + k] / Double(sizes[cluster]))
            }
        }
    }
}

/// The nearest of the `[m, length]` centers to each row (ties: lowest index).
func nearestCenters(points: UnsafePointer<Float>, count n: Int, length: Int, centers: [Float]) -> [Int] {
    let m = centers.count / length
    return [Int](unsafeUninitializedCapacity: n) { out, initialized in
        let labels = out.baseAddress!
        centers.withUnsafeBufferPointer { centerBuffer in
            let c = centerBuffer.baseAddress!
            parallelFor(n) { i in
                var best = 0
                var bestDistance = Float.infinity
                for cluster in 0..<m {
                    let d = squaredDistance(points + i * length, c + cluster * length, length)
                    if d < bestDistance { (best, bestDistance) = (cluster, d) }
                }
                labels[i] = best
            }
        }
        initialized = n
    }
}
