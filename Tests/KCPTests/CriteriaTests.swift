import Testing
@testable import KCP

@Suite("Baseline criteria")
struct CriteriaTests {
    // Filters (rows) of a linear [4, 2] weight: f0 = (0,0), f1 = (3,4), f2 = (6,8), f3 = (0,8).
    static let w: [Float] = [0, 0, 3, 4, 6, 8, 0, 8]

    @Test("l1: |f|_1 = 0, 7, 14, 8; mean 29/4")
    func l1() throws {
        expectClose(try scores(Self.w, [4, 2], .filter(.l1)), [0, 28.0 / 29, 56.0 / 29, 32.0 / 29])
    }

    @Test("l2: |f|_2 = 0, 5, 10, 8; mean 23/4")
    func l2() throws {
        expectClose(try scores(Self.w, [4, 2], .filter(.l2)), [0, 20.0 / 23, 40.0 / 23, 32.0 / 23])
    }

    @Test("fpgm: sums of pairwise distances")
    func fpgm() throws {
        // d01 = 5, d02 = 10, d03 = 8, d12 = 5, d13 = |(3,-4)| = 5, d23 = 6
        // sums: 23, 15, 21, 19; mean 78/4 = 19.5 -> 46/39, 30/39, 42/39, 38/39
        expectClose(try scores(Self.w, [4, 2], .filter(.fpgm)), [46.0 / 39, 30.0 / 39, 42.0 / 39, 38.0 / 39])
    }

    @Test("conv filters are W[o] flattened; groups do not change filter scores")
    func convFilters() throws {
        // [4, 2, 1, 1] holds the same four filters as the linear [4, 2].
        expectClose(try scores(Self.w, [4, 2, 1, 1], .filter(.l2)), [0, 20.0 / 23, 40.0 / 23, 32.0 / 23])
        // [4, 1, 1, 2], g = 2: still four filters of length 2.
        expectClose(try scores(Self.w, [4, 1, 1, 2], groups: 2, .filter(.fpgm)), [46.0 / 39, 30.0 / 39, 42.0 / 39, 38.0 / 39])
        // Filter criteria give O scores, KCP gives I.
        #expect(try scores(randomWeights(30, seed: 1), [5, 3, 1, 2], .filter(.l1)).count == 5)
        #expect(try scores(randomWeights(30, seed: 1), [5, 3, 1, 2], .kcp(center: .mean)).count == 3)
    }

    @Test("random: normalised SplitMix64 units, deterministic under a seed")
    func random() throws {
        // SplitMix64(seed 0) outputs 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f
        // (the published reference sequence); (x >> 11) * 2^-53 gives these units:
        let u = [0.8833108082136426, 0.43152799704850997, 0.026433771592597743]
        var rng = SplitMix64(seed: 0)
        #expect([rng.next(), rng.next(), rng.next()] == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
        let w = randomWeights(3 * 4, seed: 8)
        let s = try scores(w, [3, 4], .filter(.random(seed: 0)))
        expectClose(s, normalised(u), tolerance: 1e-12)
        #expect(try scores(w, [3, 4], .filter(.random(seed: 0))) == s)
        #expect(try scores(w, [3, 4], .filter(.random(seed: 1))) != s)
        // The weights do not matter, only the seed and the filter count.
        #expect(try scores([Float](repeating: 1, count: 12), [3, 2, 1, 2], .filter(.random(seed: 0))) == s)
    }

    @Test("all-zero weights give all-zero scores for every criterion")
    func zeros() throws {
        let zero = [Float](repeating: 0, count: 24)
        for criterion: Criterion in [.kcp(center: .mean), .kcp(center: .median), .filter(.l1), .filter(.l2), .filter(.fpgm)] {
            #expect(try scores(zero, [4, 2, 3, 1], criterion).allSatisfy { $0 == 0 }, "\(criterion)")
        }
        // Identical filters: fpgm distances are all 0.
        #expect(try scores([1, 2, 1, 2, 1, 2], [3, 2], .filter(.fpgm)) == [0, 0, 0])
    }

    @Test("random weights: every criterion matches its slow oracle and has mean 1",
          arguments: [([12, 5, 3, 3], 1), ([9, 17], 1), ([8, 2, 3, 3], 4), ([6, 1, 3, 3], 6)])
    func oracle(shape: [Int], groups: Int) throws {
        let g = try LayerGeometry(shape: shape, groups: groups)
        let w = randomWeights(g.elementCount, seed: 31 + UInt64(g.elementCount))
        let filters = (0..<g.outChannels).map { w[($0 * g.filterLength)..<(($0 + 1) * g.filterLength)] }
        let zero = ArraySlice([Float](repeating: 0, count: g.filterLength))
        let l1 = filters.map { $0.reduce(0.0) { $0 + Double(abs($1)) } }
        let l2 = filters.map { distance($0, zero) }
        let fpgm = filters.map { a in filters.reduce(0.0) { $0 + distance(a, $1) } }
        expectClose(try scores(w, shape, groups: groups, .filter(.l1)), normalised(l1), tolerance: 1e-5)
        expectClose(try scores(w, shape, groups: groups, .filter(.l2)), normalised(l2), tolerance: 1e-5)
        expectClose(try scores(w, shape, groups: groups, .filter(.fpgm)), normalised(fpgm), tolerance: 1e-4)
        for criterion: Criterion in [.filter(.l1), .filter(.l2), .filter(.fpgm), .filter(.random(seed: 4)),
                                     .kcp(center: .mean), .kcp(center: .median)] {
            let s = try scores(w, shape, groups: groups, criterion)
            #expect(abs(s.reduce(0, +) / Double(s.count) - 1) < 1e-12, "\(criterion)")
        }
    }

    @Test("fpgm on near-identical filters of large norm matches direct distances")
    func fpgmCancellation() throws {
        // f0 = (100, 100, 100, 100), f1 = f0 + (.01, 0, 0, 0), f2 = f0 + (0, .02, 0, 0)
        // d01 = .01, d02 = .02, d12 = sqrt(.0005) = .02236 (up to the float32 rounding of
        // 100.01 and 100.02): sums .03, .03236, .04236 -> normalised .859, .927, 1.213.
        let w: [Float] = [100, 100, 100, 100, 100.01, 100, 100, 100, 100, 100.02, 100, 100]
        let f = (0..<3).map { w[($0 * 4)..<($0 * 4 + 4)] }
        let expected = normalised(f.map { a in f.reduce(0.0) { $0 + distance(a, $1) } })
        expectClose(expected, [0.8594, 0.9271, 1.2134], tolerance: 1e-3)
        // (A float32 Gram matrix G_aa + G_bb - 2 G_ab cancels to 0 here: every score 0.)
        expectClose(try scores(w, [3, 4], .filter(.fpgm)), expected, tolerance: 1e-3)
    }

    @Test("finite weights near the float32 limit: a numeric error or finite scores, never NaN")
    func overflowElsewhere() throws {
        // Filters of [2, 2]: (3e38, 3e38), (-3e38, -3e38): |f|_1 = 6e38 and |f|_2^2 = 1.8e77
        // do not fit in float32. Columns of the second weight: (3e38, 3e38), (-3e38, -3e38),
        // whose mean and median (0, 0) is 4.2e38 away from each. By symmetry every
        // criterion's exact normalised scores are (1, 1).
        let filters: [Float] = [3e38, 3e38, -3e38, -3e38]
        let columns: [Float] = [3e38, -3e38, 3e38, -3e38]
        let cases: [([Float], Criterion)] = [(columns, .kcp(center: .mean)), (columns, .kcp(center: .median)),
                                             (filters, .filter(.l1)), (filters, .filter(.l2)), (filters, .filter(.fpgm))]
        for (w, criterion) in cases {
            do {
                expectClose(try scores(w, [2, 2], criterion), [1, 1], tolerance: 1e-6)
            } catch KCPError.numeric(let message) {
                #expect(message.hasPrefix("weight"), "\(criterion): \(message)")
            }
        }
        // LayerPruning reports the same, not an error about `scores` (which the caller never passed).
        let g = try LayerGeometry(shape: [2, 2], groups: 1)
        for center in [CenterKind.mean, .median] {
            do {
                let p = try withWeight(columns) { try LayerPruning(weight: $0, geometry: g, ratio: 0.5, center: center) }
                expectClose(p.scores, [1, 1], tolerance: 1e-6)
            } catch KCPError.numeric {
            }
        }
    }

    @Test("NaN and Inf weights throw naming weight and the index")
    func nonFinite() {
        var w = [Float](repeating: 1, count: 24)
        w[13] = .infinity // [4, 2, 3, 1]: 13 = ((2 * 2) + 0) * 3 + 1 -> [2, 0, 1, 0]
        for criterion: Criterion in [.kcp(center: .mean), .kcp(center: .median), .filter(.l1), .filter(.l2),
                                     .filter(.fpgm), .filter(.random(seed: 0))] {
            expectInvalidArgument("weight", "index [2, 0, 1, 0]") { _ = try scores(w, [4, 2, 3, 1], criterion) }
        }
        w[13] = 1
        w[5] = .nan // [1, 0, 2, 0]
        w[20] = -.infinity
        for criterion: Criterion in [.kcp(center: .mean), .kcp(center: .median), .filter(.l1), .filter(.fpgm)] {
            expectInvalidArgument("weight", "nan at index [0, 1, 2, 0]") { _ = try scores(w, [4, 2, 3, 1], criterion) }
        }
        // k-means and kernel granularity check too.
        let g = try! LayerGeometry(shape: [4, 2, 3, 1], groups: 1)
        w.withUnsafeBufferPointer { b in
            expectInvalidArgument("weight", "index [0, 1, 2, 0]") {
                _ = try ChannelClusters(weight: b, geometry: g, clusters: 2)
            }
            expectInvalidArgument("weight", "index [0, 1, 2, 0]") {
                _ = try LayerPruning(weight: b, geometry: g, ratio: 0.5, granularity: .kernel)
            }
        }
    }

    @Test("finite weights whose mean-center distances overflow float32 are a numeric error")
    func overflow() throws {
        // v_0 = (3e38, 3e38), v_1 = (-3e38, -3e38), c = 0: d^2 = 1.8e77 > float32 max.
        let w: [Float] = [3e38, -3e38, 3e38, -3e38]
        do {
            let s = try scores(w, [2, 2], .kcp(center: .mean))
            Issue.record("expected KCPError.numeric, got scores \(s)")
        } catch KCPError.numeric(let message) {
            #expect(message.hasPrefix("weight") && message.contains("overflow"), "\(message)")
        }
    }
}
