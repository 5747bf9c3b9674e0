import Testing
@testable import KCP

/// Linear, conv, grouped and depthwise shapes the fused kernels must gather right.
let layerShapes: [([Int], Int)] = [
    ([5, 3], 1), ([33, 70], 1), ([8, 3, 3, 3], 1), ([6, 2, 3, 3], 3), ([12, 4, 1, 1], 3),
    ([4, 1, 3, 3], 4), ([64, 1, 3, 3], 64), ([96, 16, 1, 1], 1), ([70, 5, 2, 3], 2),
]

@Suite("Grouped and depthwise shapes")
struct GroupedShapeTests {
    @Test("clusterVectors gathers W[g*O/g + o', j, :] like the naive loop", arguments: layerShapes)
    func gather(shape: [Int], groups: Int) throws {
        let g = try LayerGeometry(shape: shape, groups: groups)
        let w = randomWeights(g.elementCount, seed: 11)
        let fast = w.withUnsafeBufferPointer { clusterVectors($0.baseAddress!, g) }
        #expect(fast == naiveClusterVectors(w, g).flatMap { $0 })
    }

    @Test("clusterVectors literal: grouped [4, 2, 1, 1], g = 2")
    func gatherLiteral() throws {
        // W[o, j] = 10 o + j; group 0 = outputs 0, 1 (channels 0, 1), group 1 = outputs 2, 3 (channels 2, 3).
        // v_0 = (W[0,0], W[1,0]) = (0, 10), v_1 = (1, 11), v_2 = (W[2,0], W[3,0]) = (20, 30), v_3 = (21, 31)
        let g = try LayerGeometry(shape: [4, 2, 1, 1], groups: 2)
        let w: [Float] = [0, 1, 10, 11, 20, 21, 30, 31]
        #expect(w.withUnsafeBufferPointer { clusterVectors($0.baseAddress!, g) } == [0, 10, 1, 11, 20, 30, 21, 31])
    }

    @Test("meanCenterSquaredDistances equals the naive double computation", arguments: layerShapes)
    func fusedMeanDistances(shape: [Int], groups: Int) throws {
        let g = try LayerGeometry(shape: shape, groups: groups)
        let w = randomWeights(g.elementCount, seed: 12)
        let (center, squared) = w.withUnsafeBufferPointer { meanCenterSquaredDistances($0.baseAddress!, g) }
        let oracle = naiveMeanDistances(w, g)
        expectClose(center, oracle.center, tolerance: 1e-6)
        expectClose(squared, oracle.squared, tolerance: 1e-5)
    }

    @Test("mean center: the k-means path with one center gives the same scores")
    func fusedAgreesWithGather() throws {
        // The fused pass and clusterVectors + squaredDistance must agree on grouped layers.
        let g = try LayerGeometry(shape: [12, 2, 3, 3], groups: 6)
        let w = randomWeights(g.elementCount, seed: 13)
        let fused = try clusters(w, [12, 2, 3, 3], groups: 6)
        let v = naiveClusterVectors(w, g)
        let d = v.map { distance($0[...], fused.centers[...]) }
        expectClose(fused.scores, normalised(d), tolerance: 1e-5)
    }
}

@Suite("Kernel granularity")
struct KernelGranularityTests {
    // W [3, 2, 1, 2]: kernels W[o, j] (kh = 1, kw = 2)
    //   j = 0: (0,0) (3,0) (0,3), mean (1,1): t = sqrt2, sqrt5, sqrt5
    //   j = 1: (1,1) (1,1) (4,1), mean (2,1): t = 1, 1, 2
    // t row-major [O, I] = [sqrt2, 1, sqrt5, 1, sqrt5, 2]
    static let w: [Float] = [0, 0, 1, 1, 3, 0, 1, 1, 0, 3, 4, 1]
    static let t = [Double(2).squareRoot(), 1, Double(5).squareRoot(), 1, Double(5).squareRoot(), 2]

    @Test("t[o, j] = ||W[o, j] - mean_o W[o, j]||")
    func literal() throws {
        let g = try LayerGeometry(shape: [3, 2, 1, 2], groups: 1)
        expectClose(Self.w.withUnsafeBufferPointer { kernelDistances($0.baseAddress!, g) }, Self.t)
    }

    @Test("LayerPruning prunes floor(r * kernels) smallest t, ties by index")
    func prune() throws {
        // ratio .5 of 6 kernels: 3 go, ascending (t, index): (1, #1), (1, #3), (sqrt2, #0)
        let g = try LayerGeometry(shape: [3, 2, 1, 2], groups: 1)
        let p = try withWeight(Self.w) { try LayerPruning(weight: $0, geometry: g, ratio: 0.5, granularity: .kernel) }
        expectClose(p.scores, Self.t)
        #expect(p.keep == [false, false, true, false, true, true])
        #expect(p.labels == [0, 0] && p.centers.isEmpty)
    }

    @Test("grouped and depthwise: means run over the group's outputs only", arguments: layerShapes)
    func oracle(shape: [Int], groups: Int) throws {
        let g = try LayerGeometry(shape: shape, groups: groups)
        let w = randomWeights(g.elementCount, seed: 14)
        let v = naiveClusterVectors(w, g)
        let area = g.kernelArea
        var expected = [Double](repeating: 0, count: g.kernelCount)
        for i in 0..<g.inChannels {
            let group = i / g.inPerGroup, j = i % g.inPerGroup
            let mu = (0..<area).map { k in (0..<g.outPerGroup).reduce(0.0) { $0 + Double(v[i][$1 * area + k]) } / Double(g.outPerGroup) }
            for oLocal in 0..<g.outPerGroup {
                let kernel = v[i][(oLocal * area)..<((oLocal + 1) * area)]
                let d = zip(kernel, mu).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }
                expected[(group * g.outPerGroup + oLocal) * g.inPerGroup + j] = d.squareRoot()
            }
        }
        expectClose(w.withUnsafeBufferPointer { kernelDistances($0.baseAddress!, g) }, expected, tolerance: 1e-5)
    }

    @Test("depthwise with one output per group: every t is 0")
    func depthwiseZero() throws {
        let g = try LayerGeometry(shape: [4, 1, 3, 3], groups: 4)
        let w = randomWeights(g.elementCount, seed: 15)
        #expect(w.withUnsafeBufferPointer { kernelDistances($0.baseAddress!, g) } == [0, 0, 0, 0])
    }

    @Test("kernel granularity needs the mean center and one cluster")
    func needsMean() throws {
        let g = try LayerGeometry(shape: [3, 2, 1, 2], groups: 1)
        try withWeight(Self.w) { b in
            expectInvalidArgument("granularity") { _ = try LayerPruning(weight: b, geometry: g, ratio: 0.5, center: .median, granularity: .kernel) }
            expectInvalidArgument("granularity") { _ = try LayerPruning(weight: b, geometry: g, ratio: 0.5, clusters: 2, granularity: .kernel) }
            expectInvalidArgument("ratio") { _ = try LayerPruning(weight: b, geometry: g, ratio: 1, granularity: .kernel) }
            _ = try LayerPruning(weight: b, geometry: g, ratio: 0, granularity: .kernel)
        }
    }
}
