import Testing
@testable import KCP

@Suite("Kernel clusters: mean center")
struct MeanCenterTests {
    @Test("linear: v_i are the columns")
    func linearLiteral() throws {
        // W = [[1, 4, -2, 1, 1],
        //      [1, 5, -3, 2, 0]]      v_i = column i
        // v = (1,1) (4,5) (-2,-3) (1,2) (1,0), mean c = (5,5)/5 = (1,1)
        // d = 0, 5, 5, 1, 1, mean d = 12/5 = 2.4
        // s = d / 2.4 = 0, 25/12, 25/12, 5/12, 5/12
        let c = try clusters([1, 4, -2, 1, 1, 1, 5, -3, 2, 0], [2, 5])
        expectClose(c.scores, [0, 25.0 / 12, 25.0 / 12, 5.0 / 12, 5.0 / 12])
        expectClose(c.centers, [1, 1])
        #expect(c.labels == [0, 0, 0, 0, 0])
    }

    @Test("conv: v_i = (W[0, i, :], W[1, i, :], ...)")
    func convLiteral() throws {
        // W [2, 3, 1, 2] = (0..<12)^2 / 4, W[o, j, k] at (o*3 + j)*2 + k:
        //   W[0,0] = (0, .25)  W[0,1] = (1, 2.25)   W[0,2] = (4, 6.25)
        //   W[1,0] = (9, 12.25) W[1,1] = (16, 20.25) W[1,2] = (25, 30.25)
        // v_0 = (0, .25, 9, 12.25), v_1 = (1, 2.25, 16, 20.25), v_2 = (4, 6.25, 25, 30.25)
        // c = (5/3, 8.75/3, 50/3, 62.75/3)
        // v_0 - c = (-5, -8, -23, -26)/3 -> d_0^2 = (25 + 64 + 529 + 676)/9 = 1294/9
        // v_1 - c = (-2, -2, -2, -2)/3  -> d_1^2 = 16/9
        // v_2 - c = (7, 10, 25, 28)/3    -> d_2^2 = (49 + 100 + 625 + 784)/9 = 1558/9
        let w = (0..<12).map { Float($0 * $0) / 4 }
        let d = [1294.0, 16, 1558].map { ($0 / 9).squareRoot() }
        let mean = d.reduce(0, +) / 3
        let c = try clusters(w, [2, 3, 1, 2])
        expectClose(c.scores, d.map { $0 / mean })
        expectClose(c.centers, [5.0 / 3, 8.75 / 3, 50.0 / 3, 62.75 / 3])
    }

    @Test("grouped: clusters only span their group's outputs")
    func groupedLiteral() throws {
        // W [4, 1, 1, 1], g = 2: I = 2, O/g = 2; channel 0 reads outputs 0, 1, channel 1 outputs 2, 3.
        // W = (1, 3, 2, 10): v_0 = (1, 3), v_1 = (2, 10); c = (1.5, 6.5)
        // d_0 = ||(-.5, -3.5)|| = sqrt(12.5) = d_1, so s = (1, 1)
        let c = try clusters([1, 3, 2, 10], [4, 1, 1, 1], groups: 2)
        expectClose(c.scores, [1, 1])
        expectClose(c.centers, [1.5, 6.5])
    }

    @Test("all channels equal: every distance 0 gives all-zero scores")
    func allEqual() throws {
        let c = try clusters([2, 2, 2, -1, -1, -1], [2, 3])
        #expect(c.scores == [0, 0, 0])
        let zeros = try clusters([Float](repeating: 0, count: 36), [2, 2, 3, 3])
        #expect(zeros.scores == [0, 0])
    }

    @Test("random conv weights: scores match the double oracle and have mean 1", arguments: [
        ([16, 8, 3, 3], 1), ([7, 5], 1), ([12, 3, 1, 3], 4), ([9, 1, 3, 3], 9), ([40, 33, 1, 1], 1),
    ])
    func randomOracle(shape: [Int], groups: Int) throws {
        let g = try LayerGeometry(shape: shape, groups: groups)
        let w = randomWeights(g.elementCount, seed: UInt64(g.elementCount))
        let c = try clusters(w, shape, groups: groups)
        let oracle = naiveMeanDistances(w, g)
        expectClose(c.scores, normalised(oracle.squared.map { $0.squareRoot() }), tolerance: 1e-5)
        expectClose(c.centers, oracle.center, tolerance: 1e-6)
        #expect(abs(c.scores.reduce(0, +) / Double(c.scores.count) - 1) < 1e-12)
    }

    @Test("weights with a large common offset stay close to the double oracle", arguments: [[8, 4096], [64, 512, 3, 3]])
    func offsetWeights(shape: [Int]) throws {
        // 10 +- .01: the distances are 1e-3 of the values, so float32 sums of the center lose
        // digits. Measured worst score errors: 1.4e-4 and 9.4e-5 (float sums since 3e31a23;
        // 4.8e-5 and 5.3e-6 with the earlier double sums). The bound guards against worse.
        let g = try LayerGeometry(shape: shape, groups: 1)
        let w = randomWeights(g.elementCount, seed: 3, scale: 0.01).map { $0 + 10 }
        let oracle = normalised(naiveMeanDistances(w, g).squared.map { $0.squareRoot() })
        expectClose(try clusters(w, shape).scores, oracle, tolerance: 5e-4)
    }
}

@Suite("Kernel clusters: geometric median")
struct MedianCenterTests {
    @Test("isosceles triangle: the median is the Fermat point")
    func fermatPoint() throws {
        // v = (-1, 0), (1, 0), (0, 3): every angle < 120 degrees, so the median
        // is where the sides subtend 120 degrees: (0, y) with 1/y = tan 60, y = 1/sqrt 3.
        // d = 2/sqrt3, 2/sqrt3, 3 - 1/sqrt3; mean d = (3/sqrt3 + 3)/3 = (sqrt3 + 3)/3
        // s = sqrt3 - 1, sqrt3 - 1, 5 - 2 sqrt3
        let r3 = Double(3).squareRoot()
        let c = try clusters([-1, 1, 0, 0, 0, 3], [2, 3], center: .median)
        expectClose(c.centers, [0, 1 / r3], tolerance: 1e-5)
        expectClose(c.scores, [r3 - 1, r3 - 1, 5 - 2 * r3], tolerance: 1e-5)
    }

    @Test("collinear points with an outlier: the median is the middle point")
    func collinearOutlier() throws {
        // v_i = t_i * (1, 2, 2), t = 0, 1, 2, 3, 100 (columns of a [3, 5] weight).
        // Median: t = 2, i.e. (2, 4, 4); d = 3|t - 2| = 6, 3, 0, 3, 294; mean 61.2
        //   s = 6/61.2, 3/61.2, 0, 3/61.2, 294/61.2 = 5/51, 5/102, 0, 5/102, 245/51
        // Mean: t = 21.2; d = 3|t - 21.2| = 63.6, 60.6, 57.6, 54.6, 236.4; mean 94.56
        //   s = .672589, .640863, .609137, .577411, 2.5
        let t: [Float] = [0, 1, 2, 3, 100]
        let w = t + t.map { 2 * $0 } + t.map { 2 * $0 }
        let median = try clusters(w, [3, 5], center: .median)
        expectClose(median.centers, [2, 4, 4], tolerance: 1e-5)
        expectClose(median.scores, [5.0 / 51, 5.0 / 102, 0, 5.0 / 102, 245.0 / 51], tolerance: 1e-5)
        let mean = try clusters(w, [3, 5], center: .mean)
        expectClose(mean.centers, [21.2, 42.4, 42.4], tolerance: 1e-6)
        expectClose(mean.scores, [63.6, 60.6, 57.6, 54.6, 236.4].map { $0 / 94.56 }, tolerance: 1e-5)
        // Robustness: moving the outlier tenfold farther moves the mean, not the median.
        let far = t.map { $0 == 100 ? 1000 : $0 }
        let moved = try clusters(far + far.map { 2 * $0 } + far.map { 2 * $0 }, [3, 5], center: .median)
        expectClose(moved.centers, [2, 4, 4], tolerance: 1e-5)
    }

    @Test("symmetric set: median = mean, equal scores")
    func symmetric() throws {
        // Corners of a square centered at (1, 1): v = (0,0) (2,0) (0,2) (2,2).
        let c = try clusters([0, 2, 0, 2, 0, 0, 2, 2], [2, 4], center: .median)
        expectClose(c.centers, [1, 1])
        expectClose(c.scores, [1, 1, 1, 1])
    }

    @Test("median minimises the sum of distances on random points")
    func minimises() throws {
        let (o, n) = (6, 11)
        let w = randomWeights(o * n, seed: 5)
        let g = try LayerGeometry(shape: [o, n], groups: 1)
        let v = naiveClusterVectors(w, g)
        let c = try clusters(w, [o, n], center: .median)
        func cost(_ x: [Double]) -> Double {
            var total = 0.0
            for p in v {
                var d2 = 0.0
                for k in x.indices { d2 += (Double(p[k]) - x[k]) * (Double(p[k]) - x[k]) }
                total += d2.squareRoot()
            }
            return total
        }
        let best = cost(c.centers.map(Double.init))
        var rng = SplitMix64(seed: 9)
        for _ in 0..<50 {
            let probe = c.centers.map { Double($0) + (rng.nextUnit() - 0.5) * 1e-2 }
            #expect(cost(probe) >= best - 1e-6)
        }
        #expect(best <= cost(naiveMeanDistances(w, g).center))
    }
}

@Suite("Kernel clusters: k-means centers")
struct KMeansCenterTests {
    // Three blobs of three points each, interleaved over the channels:
    //   A = (-1, 0) (1, 0) (0, 3), B = A + (20, 0), C = A + (0, 20)
    //   channels 0..8 = A0 B0 C0 A1 B1 C1 A2 B2 C2 (columns of a [2, 9] weight).
    // Each blob's mean is its base + (0, 1): d = sqrt2, sqrt2, 2 in every blob,
    // mean d = (2 sqrt2 + 2)/3, so s = 3 sqrt2/(2 sqrt2 + 2) = .878680 for the
    // near points and 6/(2 sqrt2 + 2) = 3(sqrt2 - 1) = 1.242641 for the apexes.
    static let blobs: [Float] = [-1, 19, -1, 1, 21, 1, 0, 20, 0,
                                 0, 0, 20, 0, 0, 20, 3, 3, 23]

    @Test("three separated blobs are found, scores literal", arguments: [UInt64(0), 1, 2, 3, 4])
    func blobs(seed: UInt64) throws {
        let c = try clusters(Self.blobs, [2, 9], clusters: 3, seed: seed)
        for i in 0..<9 { #expect(c.labels[i] == c.labels[i % 3]) }
        #expect(Set(c.labels).count == 3)
        let near = 3 * Double(2).squareRoot() / (2 * Double(2).squareRoot() + 2), apex = 3 * (Double(2).squareRoot() - 1)
        expectClose(c.scores, [near, near, near, near, near, near, apex, apex, apex])
        for blob in 0..<3 {
            let base: [Double] = [[0, 1], [20, 1], [0, 21]][blob]
            let label = c.labels[blob]
            expectClose(Array(c.centers[(label * 2)..<(label * 2 + 2)]), base)
        }
    }

    @Test("median centers per cluster are each blob's Fermat point")
    func medianBlobs() throws {
        let c = try clusters(Self.blobs, [2, 9], center: .median, clusters: 3, seed: 0)
        let y = 1 / Double(3).squareRoot()
        for blob in 0..<3 {
            let base: [Double] = [[0, y], [20, y], [0, 20 + y]][blob]
            let label = c.labels[blob]
            expectClose(Array(c.centers[(label * 2)..<(label * 2 + 2)]), base, tolerance: 1e-5)
        }
    }

    @Test("every channel sits with its nearest center; scores are distances to it", arguments: [UInt64(1), 2, 3])
    func nearestCenter(seed: UInt64) throws {
        let (o, n, m) = (5, 40, 4)
        let w = randomWeights(o * n, seed: seed)
        let g = try LayerGeometry(shape: [o, n], groups: 1)
        let v = naiveClusterVectors(w, g)
        let c = try clusters(w, [o, n], clusters: m, seed: seed)
        var d: [Double] = []
        for i in 0..<n {
            let all = (0..<m).map { distance(v[i][...], c.centers[($0 * o)..<($0 * o + o)]) }
            #expect(all[c.labels[i]] <= all.min()! + 1e-6, "channel \(i): \(all), label \(c.labels[i])")
            d.append(all[c.labels[i]])
        }
        expectClose(c.scores, normalised(d), tolerance: 1e-5)
        #expect((0..<m).allSatisfy(c.labels.contains), "a k-means cluster came out empty: \(c.labels)")
    }

    @Test("deterministic under a seed; different seeds may differ")
    func seeds() throws {
        let (o, n, m) = (3, 30, 5)
        let w = randomWeights(o * n, seed: 77)
        let first = try clusters(w, [o, n], clusters: m, seed: 123)
        let again = try clusters(w, [o, n], clusters: m, seed: 123)
        #expect(first.labels == again.labels && first.centers == again.centers && first.scores == again.scores)
        let labelings = try Set((0..<8).map { try clusters(w, [o, n], clusters: m, seed: UInt64($0)).labels })
        #expect(labelings.count > 1, "the seed does not change k-means++ seeding")
    }

    @Test("centers = I: each channel is its own center, all scores 0")
    func oneCenterPerChannel() throws {
        let w = randomWeights(4 * 6, seed: 3)
        let c = try clusters(w, [4, 6], clusters: 6, seed: 0)
        #expect(Set(c.labels).count == 6)
        #expect(c.scores == [Double](repeating: 0, count: 6))
    }

    @Test("duplicate points: seeding falls back to unchosen rows")
    func duplicates() throws {
        // Four identical columns and one other, 3 centers: k-means++ runs out of
        // positive D^2 after two picks and takes the lowest unchosen row.
        let c = try clusters([1, 1, 1, 1, 5, 2, 2, 2, 2, 5], [2, 5], clusters: 3, seed: 0)
        #expect(c.labels[0] == c.labels[1] && c.labels[1] == c.labels[2] && c.labels[2] == c.labels[3])
        #expect(c.labels[4] != c.labels[0])
        #expect(c.scores == [0, 0, 0, 0, 0])
    }

    @Test("LayerPruning never empties a cluster: each cluster's best member is kept")
    func representativesKept() throws {
        // ratio .9 asks to prune floor(8.1) = 8 of 9, but the three apexes (the
        // largest score in each blob) are protected: exactly channels 6, 7, 8 stay.
        let g = try LayerGeometry(shape: [2, 9], groups: 1)
        let p = try withWeight(Self.blobs) {
            try LayerPruning(weight: $0, geometry: g, ratio: 0.9, clusters: 3, seed: 0)
        }
        #expect(p.keep == [false, false, false, false, false, false, true, true, true])
        #expect(p.labels.count == 9 && p.centers.count == 6)
    }

    @Test("representatives on random data: every cluster keeps its max-score member", arguments: [UInt64(0), 1, 2, 3])
    func representativesRandom(seed: UInt64) throws {
        let (o, n, m) = (4, 24, 5)
        let w = randomWeights(o * n, seed: 100 + seed)
        let g = try LayerGeometry(shape: [o, n], groups: 1)
        let p = try withWeight(w) {
            try LayerPruning(weight: $0, geometry: g, ratio: 0.95, clusters: m, seed: seed)
        }
        for label in Set(p.labels) {
            let members = (0..<n).filter { p.labels[$0] == label }
            let best = members.max { (p.scores[$0], -$0) < (p.scores[$1], -$1) }!
            #expect(p.keep[best], "cluster \(label) lost its representative \(best)")
        }
        // Besides the representatives, floor(.95 * 24) = 22 would go: keep = max(2, clusters).
        #expect(p.keep.filter { $0 }.count == max(2, Set(p.labels).count))
    }

    @Test("median centers with k-means: every channel sits with its nearest center")
    func medianNearest() throws {
        // v = (-1,-3) (-4,-1) (3,-3) (1,4) (0,3) (-2,3) (0,3) (-1,0), 2 centers, seed 0.
        // k-means: {v0, v2} (mean (1,-3)) and the rest (mean (-1, 2)); v1 is 4.24 from (-1, 2)
        // and 5.39 from (1, -3), so k-means puts it with the rest.
        // Medians: (1, -3) for {v0, v2} (the mean of a symmetric pair stays put) and the
        // doubled point (0, 3) for the rest (unit vectors from it sum to norm 1.62 <= 2).
        // v1 is then 5.66 from (0, 3) but 5.39 from (1, -3): it must move to (1, -3).
        let w: [Float] = [-1, -4, 3, 1, 0, -2, 0, -1,
                          -3, -1, -3, 4, 3, 3, 3, 0]
        let c = try clusters(w, [2, 8], center: .median, clusters: 2, seed: 0)
        let v = naiveClusterVectors(w, try LayerGeometry(shape: [2, 8], groups: 1))
        let a = c.labels[0]
        #expect(c.labels == [a, a, a, 1 - a, 1 - a, 1 - a, 1 - a, 1 - a])
        expectClose(Array(c.centers[(a * 2)..<(a * 2 + 2)]), [1, -3], tolerance: 1e-5)
        expectClose(Array(c.centers[((1 - a) * 2)..<((1 - a) * 2 + 2)]), [0, 3], tolerance: 1e-5)
        var d: [Double] = []
        for i in 0..<8 {
            let all = (0..<2).map { distance(v[i][...], c.centers[($0 * 2)..<($0 * 2 + 2)]) }
            #expect(all[c.labels[i]] <= all.min()! + 1e-6, "channel \(i): distances \(all), label \(c.labels[i])")
            d.append(all[c.labels[i]])
        }
        expectClose(c.scores, normalised(d), tolerance: 1e-5)
    }

    @Test("centers outside 1...I throw naming centers")
    func centersRange() {
        expectInvalidArgument("centers") { _ = try clusters([1, 2, 3, 4], [2, 2], clusters: 0) }
        expectInvalidArgument("centers") { _ = try clusters([1, 2, 3, 4], [2, 2], clusters: 3) }
    }
}
