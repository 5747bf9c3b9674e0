import Dispatch
import Glibc
import Testing
import KCPC

/// The calling thread's last error message.
func lastError() -> String { String(cString: kcp_error_message()) }

/// Expects status 1 (invalid argument) and a message that starts with `argument: `.
func expectInvalid(_ argument: String, _ status: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
    let message = lastError()
    #expect(status == 1, "status \(status), message \(message)", sourceLocation: sourceLocation)
    #expect(message.hasPrefix(argument + ": "), "message \(message)", sourceLocation: sourceLocation)
}

// Codes of include/kcp.h.
let kcpCriterion = (kcp: Int32(0), l1: Int32(1), l2: Int32(2), fpgm: Int32(3), random: Int32(4))
let kcpCenter = (mean: Int32(0), median: Int32(1))

@Suite("C ABI")
struct CABITests {
    // The mean-center literal: W [2, 5], s = 0, 25/12, 25/12, 5/12, 5/12.
    static let w: [Float] = [1, 4, -2, 1, 1, 1, 5, -3, 2, 0]
    static let shape: [Int64] = [2, 5]

    @Test("kcp_abi_version equals KCP_ABI_VERSION in include/kcp.h")
    func version() throws {
        // Tests/KCPTests/CABITests.swift -> Sources/KCPC/include/kcp.h
        var path = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(3).joined(separator: "/")
        path += "/Sources/KCPC/include/kcp.h"
        let file = try #require(fopen(path, "r"), "cannot open \(path)")
        defer { fclose(file) }
        var declared: Int32?
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        while getline(&line, &capacity, file) > 0 {
            let text = String(cString: line!)
            if text.hasPrefix("#define KCP_ABI_VERSION ") { declared = Int32(text.dropFirst(24).trimmingSpaces) }
        }
        free(line)
        #expect(declared != nil && kcp_abi_version() == declared!, "header \(String(describing: declared)), engine \(kcp_abi_version())")
    }

    @Test("kcp_layer_geometry fills in_channels, out_channels, cluster_length, kernels")
    func geometry() {
        var g = [Int64](repeating: -1, count: 4)
        #expect(kcp_layer_geometry([6, 2, 3, 3], 4, 3, &g, 4) == 0)
        #expect(g == [6, 6, 18, 12])
        #expect(lastError() == "")
        #expect(kcp_layer_geometry([10, 4], 2, 1, &g, 4) == 0)
        #expect(g == [4, 10, 10, 40])
        expectInvalid("shape", kcp_layer_geometry(nil, 4, 1, &g, 4))
        expectInvalid("weight", kcp_layer_geometry([6, 2, 3], 3, 1, &g, 4))
        expectInvalid("weight", kcp_layer_geometry([6, 2, 3], 0, 1, &g, 4))
        expectInvalid("weight", kcp_layer_geometry([1, 1, 1, 1, 1, 1, 1, 1, 1], 9, 1, &g, 4))
        expectInvalid("weight", kcp_layer_geometry([6, 0, 3, 3], 4, 1, &g, 4))
        expectInvalid("groups", kcp_layer_geometry([6, 2, 3, 3], 4, 4, &g, 4))
        expectInvalid("groups", kcp_layer_geometry([6, 2, 3, 3], 4, 0, &g, 4))
        expectInvalid("geometry", kcp_layer_geometry([6, 2, 3, 3], 4, 3, nil, 4))
        expectInvalid("geometry", kcp_layer_geometry([6, 2, 3, 3], 4, 3, &g, 3))
    }

    @Test("kcp_layer_scores: every criterion on a literal weight")
    func scores() {
        var s = [Double](repeating: -1, count: 5)
        #expect(kcp_layer_scores(Self.w, Self.shape, 2, 1, kcpCriterion.kcp, kcpCenter.mean, 0, &s, 5) == 0)
        expectClose(s, [0, 25.0 / 12, 25.0 / 12, 5.0 / 12, 5.0 / 12])
        // Filters of [4, 2]: (0,0) (3,4) (6,8) (0,8), see CriteriaTests.
        let f: [Float] = [0, 0, 3, 4, 6, 8, 0, 8]
        var o = [Double](repeating: -1, count: 4)
        #expect(kcp_layer_scores(f, [4, 2], 2, 1, kcpCriterion.l1, 0, 0, &o, 4) == 0)
        expectClose(o, [0, 28.0 / 29, 56.0 / 29, 32.0 / 29])
        #expect(kcp_layer_scores(f, [4, 2], 2, 1, kcpCriterion.l2, 0, 0, &o, 4) == 0)
        expectClose(o, [0, 20.0 / 23, 40.0 / 23, 32.0 / 23])
        #expect(kcp_layer_scores(f, [4, 2], 2, 1, kcpCriterion.fpgm, 0, 0, &o, 4) == 0)
        expectClose(o, [46.0 / 39, 30.0 / 39, 42.0 / 39, 38.0 / 39])
        #expect(kcp_layer_scores(f, [4, 2], 2, 1, kcpCriterion.random, 0, 0, &o, 4) == 0)
        expectClose(o, normalised([0.8833108082136426, 0.43152799704850997, 0.026433771592597743, 0.9708819781538285]),
                    tolerance: 1e-12)
        // Median of the collinear set t = 0, 1, 2, 3, 100 along (1, 2, 2).
        let t: [Float] = [0, 1, 2, 3, 100]
        #expect(kcp_layer_scores(t + t.map { 2 * $0 } + t.map { 2 * $0 }, [3, 5], 2, 1, kcpCriterion.kcp, kcpCenter.median, 0, &s, 5) == 0)
        expectClose(s, [5.0 / 51, 5.0 / 102, 0, 5.0 / 102, 245.0 / 51], tolerance: 1e-5)
    }

    @Test("kcp_layer_scores errors")
    func scoresErrors() {
        var s = [Double](repeating: 0, count: 5)
        expectInvalid("criterion", kcp_layer_scores(Self.w, Self.shape, 2, 1, 5, 0, 0, &s, 5))
        expectInvalid("criterion", kcp_layer_scores(Self.w, Self.shape, 2, 1, -1, 0, 0, &s, 5))
        expectInvalid("center", kcp_layer_scores(Self.w, Self.shape, 2, 1, kcpCriterion.kcp, 2, 0, &s, 5))
        expectInvalid("weight", kcp_layer_scores(nil, Self.shape, 2, 1, kcpCriterion.kcp, 0, 0, &s, 5))
        expectInvalid("shape", kcp_layer_scores(Self.w, nil, 2, 1, kcpCriterion.kcp, 0, 0, &s, 5))
        expectInvalid("weight", kcp_layer_scores(Self.w, Self.shape, 3, 1, kcpCriterion.kcp, 0, 0, &s, 5))
        expectInvalid("groups", kcp_layer_scores(Self.w, Self.shape, 2, 2, kcpCriterion.kcp, 0, 0, &s, 5))
        expectInvalid("groups", kcp_layer_scores(Self.w, [2, 5, 1, 1], 4, 3, kcpCriterion.l1, 0, 0, &s, 5))
        expectInvalid("scores", kcp_layer_scores(Self.w, Self.shape, 2, 1, kcpCriterion.kcp, 0, 0, nil, 9))
        expectInvalid("scores", kcp_layer_scores(Self.w, Self.shape, 2, 1, kcpCriterion.kcp, 0, 0, &s, 4))
        expectInvalid("scores", kcp_layer_scores(Self.w, Self.shape, 2, 1, kcpCriterion.l1, 0, 0, &s, 1))
        var bad = Self.w
        bad[6] = .nan // W[1, 1]
        expectInvalid("weight", kcp_layer_scores(bad, Self.shape, 2, 1, kcpCriterion.kcp, 0, 0, &s, 5))
        #expect(lastError().contains("nan at index [1, 1]"))
        expectInvalid("weight", kcp_layer_scores(bad, Self.shape, 2, 1, kcpCriterion.l2, 0, 0, &s, 5))
        #expect(lastError().contains("nan at index [1, 1]"))
        // A numeric failure is status 2.
        #expect(kcp_layer_scores([3e38, -3e38, 3e38, -3e38], [2, 2], 2, 1, kcpCriterion.kcp, 0, 0, &s, 5) == 2)
        #expect(lastError().contains("overflow"))
        // Other criteria on weights near the float32 limit: status 2, or status 0 with finite scores.
        for (w, criterion, center): ([Float], Int32, Int32) in [([3e38, -3e38, 3e38, -3e38], kcpCriterion.kcp, kcpCenter.median),
                                                                ([3e38, 3e38, -3e38, -3e38], kcpCriterion.l1, 0),
                                                                ([3e38, 3e38, -3e38, -3e38], kcpCriterion.l2, 0),
                                                                ([3e38, 3e38, -3e38, -3e38], kcpCriterion.fpgm, 0)] {
            s = [.nan, .nan, 0, 0, 0]
            let status = kcp_layer_scores(w, [2, 2], 2, 1, criterion, center, 0, &s, 5)
            let finite = s[0].isFinite && s[1].isFinite
            #expect(status == 2 && lastError().hasPrefix("weight") || status == 0 && finite,
                    "criterion \(criterion): status \(status), scores \(s[0..<2])")
        }
    }

    @Test("kcp_layer_cluster: channel and kernel granularity")
    func cluster() {
        var s = [Double](repeating: -1, count: 9), labels = [Int32](repeating: -1, count: 9)
        var centers = [Float](repeating: -1, count: 6), keep = [UInt8](repeating: 9, count: 9)
        let room: [Int64] = [9, 9, 6, 9]  // the entries each of s, labels, centers and keep has
        // ratio .6 of 5 prunes #0, #3, #4 (see SelectionTests.layerPruning).
        #expect(kcp_layer_cluster(Self.w, Self.shape, 2, 1, 0.6, 0, 1, 0, 1, 0, &s, &labels, &centers, &keep, room) == 0)
        expectClose(Array(s[0..<5]), [0, 25.0 / 12, 25.0 / 12, 5.0 / 12, 5.0 / 12])
        #expect(Array(labels[0..<5]) == [0, 0, 0, 0, 0] && Array(centers[0..<2]) == [1, 1])
        #expect(Array(keep[0..<5]) == [0, 1, 1, 0, 0])
        // k-means with 3 centers on the blobs: only the apexes stay (see KMeansCenterTests).
        #expect(kcp_layer_cluster(KMeansCenterTests.blobs, [2, 9], 2, 1, 0.9, 0, 3, 0, 1, 0, &s, &labels, &centers, &keep, room) == 0)
        #expect(keep == [0, 0, 0, 0, 0, 0, 1, 1, 1])
        #expect(Set(labels).count == 3)
        // Kernel granularity: labels and centers may be NULL.
        var t = [Double](repeating: -1, count: 6), kernelKeep = [UInt8](repeating: 9, count: 6)
        #expect(kcp_layer_cluster(KernelGranularityTests.w, [3, 2, 1, 2], 4, 1, 0.5, 0, 1, 1, 1, 0, &t, nil, nil, &kernelKeep, [6, 0, 0, 6]) == 0)
        expectClose(t, KernelGranularityTests.t)
        #expect(kernelKeep == [0, 0, 1, 0, 1, 1])
    }

    @Test("kcp_layer_cluster errors")
    func clusterErrors() {
        var s = [Double](repeating: 0, count: 5), labels = [Int32](repeating: 0, count: 5)
        var centers = [Float](repeating: 0, count: 10), keep = [UInt8](repeating: 0, count: 5)
        let room: [Int64] = [5, 5, 10, 5]
        let (w, shape) = (Self.w, Self.shape)
        expectInvalid("granularity", kcp_layer_cluster(w, shape, 2, 1, 0.5, 0, 1, 2, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("granularity", kcp_layer_cluster(w, shape, 2, 1, 0.5, 1, 1, 1, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("center", kcp_layer_cluster(w, shape, 2, 1, 0.5, 7, 1, 0, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("centers", kcp_layer_cluster(w, shape, 2, 1, 0.5, 0, 0, 0, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("centers", kcp_layer_cluster(w, shape, 2, 1, 0.5, 0, 6, 0, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("ratio", kcp_layer_cluster(w, shape, 2, 1, 1.0, 0, 1, 0, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("ratio", kcp_layer_cluster(w, shape, 2, 1, .nan, 0, 1, 0, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("round_to", kcp_layer_cluster(w, shape, 2, 1, 0.5, 0, 1, 0, 0, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("groups", kcp_layer_cluster(w, [2, 5, 1, 1], 4, 3, 0.5, 0, 1, 0, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("weight", kcp_layer_cluster(w, shape, 1, 1, 0.5, 0, 1, 0, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("weight", kcp_layer_cluster(nil, shape, 2, 1, 0.5, 0, 1, 0, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("shape", kcp_layer_cluster(w, nil, 2, 1, 0.5, 0, 1, 0, 1, 0, &s, &labels, &centers, &keep, room))
        expectInvalid("scores", kcp_layer_cluster(w, shape, 2, 1, 0.5, 0, 1, 0, 1, 0, nil, &labels, &centers, &keep, room))
        expectInvalid("labels", kcp_layer_cluster(w, shape, 2, 1, 0.5, 0, 1, 0, 1, 0, &s, nil, &centers, &keep, room))
        expectInvalid("centers", kcp_layer_cluster(w, shape, 2, 1, 0.5, 0, 1, 0, 1, 0, &s, &labels, nil, &keep, room))
        expectInvalid("keep", kcp_layer_cluster(w, shape, 2, 1, 0.5, 0, 1, 0, 1, 0, &s, &labels, &centers, nil, room))
        var bad = w
        bad[3] = -.infinity
        expectInvalid("weight", kcp_layer_cluster(bad, shape, 2, 1, 0.5, 0, 1, 0, 1, 0, &s, &labels, &centers, &keep, room))
        #expect(lastError().contains("-inf at index [0, 3]"))
        // An output with room for one entry too few is refused by name, and nothing is written.
        for (index, (name, written)) in [("scores", 5), ("labels", 5), ("centers", 2), ("keep", 5)].enumerated() {
            var short = room
            short[index] = Int64(written - 1)
            s = [Double](repeating: 7, count: 5)
            expectInvalid(name, kcp_layer_cluster(w, shape, 2, 1, 0.5, 0, 1, 0, 1, 0, &s, &labels, &centers, &keep, short))
            #expect(s.allSatisfy { $0 == 7 })
        }
        expectInvalid("capacities", kcp_layer_cluster(w, shape, 2, 1, 0.5, 0, 1, 0, 1, 0, &s, &labels, &centers, &keep, nil))
    }

    @Test("kcp_scores_select")
    func select() {
        var keep = [UInt8](repeating: 9, count: 5)
        #expect(kcp_scores_select([1, 0, 1, 0, 1], 5, 0.6, 1, &keep) == 0)
        #expect(keep == [0, 0, 1, 0, 1])
        #expect(kcp_scores_select([5, 4, 3, 2, 1], 5, 0.6, 4, &keep) == 0)
        #expect(keep == [1, 1, 1, 1, 0])
        expectInvalid("scores", kcp_scores_select(nil, 5, 0.5, 1, &keep))
        expectInvalid("scores", kcp_scores_select([1, 2], 0, 0.5, 1, &keep))
        expectInvalid("scores", kcp_scores_select([1, 2], -3, 0.5, 1, &keep))
        expectInvalid("scores", kcp_scores_select([1, .nan], 2, 0.5, 1, &keep))
        expectInvalid("ratio", kcp_scores_select([1, 2], 2, -0.5, 1, &keep))
        expectInvalid("round_to", kcp_scores_select([1, 2], 2, 0.5, 0, &keep))
        expectInvalid("keep", kcp_scores_select([1, 2], 2, 0.5, 1, nil))
    }

    @Test("kcp_weight_compact")
    func compact() {
        let w = (0..<12).map(Float.init)
        var out = [Float](repeating: -1, count: 4)
        #expect(kcp_weight_compact(w, [3, 2, 2], 3, [1, 0, 7], [0, 1], &out, 4) == 0)
        #expect(out == [2, 3, 10, 11])
        var bias = [Float](repeating: -1, count: 2)
        #expect(kcp_weight_compact([10, 11, 12], [3], 1, [0, 1, 1], nil, &bias, 2) == 0)
        #expect(bias == [11, 12])
        var all = [Float](repeating: -1, count: 12)
        #expect(kcp_weight_compact(w, [3, 2, 2], 3, nil, nil, &all, 12) == 0)
        #expect(all == w)
        expectInvalid("keep_in", kcp_weight_compact([10, 11, 12], [3], 1, nil, [1], &bias, 3))
        expectInvalid("out", kcp_weight_compact(w, [3, 2, 2], 3, [1, 0, 1], nil, &all, 12))
        expectInvalid("weight", kcp_weight_compact(nil, [3, 2, 2], 3, nil, nil, &all, 12))
        expectInvalid("shape", kcp_weight_compact(w, nil, 3, nil, nil, &all, 12))
        expectInvalid("weight", kcp_weight_compact(w, [3, 2, 2], 0, nil, nil, &all, 12))
        expectInvalid("weight", kcp_weight_compact(w, [3, -2, 2], 3, nil, nil, &all, 12))
    }

    @Test("kcp_weight_compact with a NULL out reports out instead of trapping")
    func compactNullOut() async {
        // In a child process, so that a trap would fail the test rather than the run.
        await #expect(processExitsWith: .success) {
            let w: [Float] = [1, 2, 3, 4]
            let status = kcp_weight_compact(w, [2, 2], 2, nil, nil, nil, 4)
            exit(status == 1 && String(cString: kcp_error_message()).hasPrefix("out: ") ? 0 : 3)
        }
    }

    @Test("kcp_weight_mask")
    func mask() {
        var w = (1...12).map(Float.init)
        #expect(kcp_weight_mask(&w, [2, 3, 2], 3, [1, 0, 1], 3, 1) == 0)
        #expect(w == [1, 2, 0, 0, 5, 6, 7, 8, 0, 0, 11, 12])
        #expect(kcp_weight_mask(&w, [2, 3, 2], 3, [0, 1], 2, 0) == 0)
        #expect(w == [0, 0, 0, 0, 0, 0, 7, 8, 0, 0, 11, 12])
        var k = (1...6).map(Float.init)
        #expect(kcp_weight_mask(&k, [2, 3], 2, [1, 1, 0, 0, 1, 1], 6, 2) == 0)
        #expect(k == [1, 2, 0, 0, 5, 6])
        var b: [Float] = [1, 2, 3]
        #expect(kcp_weight_mask(&b, [3], 1, [1, 0, 1], 3, 0) == 0)
        #expect(b == [1, 0, 3])
        expectInvalid("axis", kcp_weight_mask(&w, [2, 3, 2], 3, [1, 0, 1], 3, 3))
        expectInvalid("axis", kcp_weight_mask(&w, [2, 3, 2], 3, [1, 0, 1], 3, -1))
        expectInvalid("axis", kcp_weight_mask(&b, [3], 1, [1], 1, 1))
        expectInvalid("keep", kcp_weight_mask(&w, [2, 3, 2], 3, nil, 3, 1))
        expectInvalid("keep", kcp_weight_mask(&w, [2, 3, 2], 3, [1, 0], 2, 1))
        expectInvalid("weight", kcp_weight_mask(nil, [2, 3, 2], 3, [1, 0, 1], 3, 1))
        expectInvalid("shape", kcp_weight_mask(&w, nil, 3, [1, 0, 1], 3, 1))
        expectInvalid("weight", kcp_weight_mask(&w, [2, 3, 2], 9, [1, 0, 1], 3, 1))
        #expect(w == [0, 0, 0, 0, 0, 0, 7, 8, 0, 0, 11, 12], "a failed call must not touch the weight")
    }

    @Test("kcp_threads_set rejects n < 1 naming n")
    func threadsInvalid() {
        let before = kcp_threads_get()
        expectInvalid("n", kcp_threads_set(0))
        expectInvalid("n", kcp_threads_set(-4))
        #expect(kcp_threads_get() == before)
    }

    @Test("a successful call clears the message")
    func clears() {
        var g = [Int64](repeating: 0, count: 4)
        expectInvalid("groups", kcp_layer_geometry([6, 2, 3, 3], 4, 4, &g, 4))
        #expect(lastError().hasPrefix("groups: 4 groups do not divide the 6 output channels"))
        var keep = [UInt8](repeating: 0, count: 2)
        #expect(kcp_scores_select([1, 2], 2, 0.5, 1, &keep) == 0)
        #expect(lastError() == "")
        expectInvalid("keep", kcp_scores_select([1, 2], 2, 0.5, 1, nil))
        #expect(kcp_layer_geometry([6, 2, 3, 3], 4, 3, &g, 4) == 0)
        #expect(lastError() == "")
    }

    @Test("calls from several threads at once give the serial results")
    func reentrant() {
        let shape: [Int64] = [48, 32, 3, 3]
        let w = randomWeights(48 * 32 * 9, seed: 61)
        let criteria: [(Int32, Int32)] = [(kcpCriterion.kcp, kcpCenter.mean), (kcpCriterion.kcp, kcpCenter.median),
                                          (kcpCriterion.l2, 0), (kcpCriterion.fpgm, 0)]
        func run(_ c: (Int32, Int32)) -> [Double] {
            var s = [Double](repeating: 0, count: 48)
            let status = kcp_layer_scores(w, shape, 4, 1, c.0, c.1, 0, &s, 48)
            return status == 0 ? Array(s[0..<(c.0 == kcpCriterion.kcp ? 32 : 48)]) : []
        }
        let serial = criteria.map(run)
        let jobs = 16
        var parallel = [[Double]](repeating: [], count: jobs)
        parallel.withUnsafeMutableBufferPointer { out in
            let base = out.baseAddress!
            DispatchQueue.concurrentPerform(iterations: jobs) { base[$0] = run(criteria[$0 % criteria.count]) }
        }
        for job in 0..<jobs {
            let c = job % criteria.count
            let count = serial[c].count
            // fpgm may differ in the last bits if OpenBLAS threads differently (see ThreadsTests).
            let close = parallel[job].count == count && zip(parallel[job], serial[c]).allSatisfy { abs($0 - $1) <= 1e-12 }
            #expect(count == (c < 2 ? 32 : 48))
            #expect(close, "job \(job), criterion \(criteria[c])")
        }
    }

    @Test("kcp_network_plan scores borrowed weights as if written, and checks their count")
    func planBorrowsWeights() throws {
        // x [1, 3, 2, 2] -> 1x1 conv a (4 channels, prunable) -> 1x1 conv b (2) -> output.
        var network: OpaquePointer?, x: Int64 = 0, a: Int64 = 0, b: Int64 = 0, pa: Int64 = 0, pb: Int64 = 0
        #expect(kcp_network_create(&network) == 0)
        defer { kcp_network_destroy(network) }
        let conv: [Double] = [1, 1, 0, 0, 0, 0, 1, 1, 1]
        #expect(kcp_network_add_input(network, "x", [1, 3, 2, 2], 4, &x) == 0)
        #expect(kcp_network_add_parameter(network, "a", [Float](repeating: 1, count: 12), [4, 3, 1, 1], 4, &pa) == 0)
        #expect(kcp_network_add_parameter(network, "b", [1, 2, 3, 4, 4, 3, 2, 1], [2, 4, 1, 1], 4, &pb) == 0)
        #expect(kcp_network_add_node(network, "a", 0, conv, 9, [x], 1, [pa], 1, &a) == 0)
        #expect(kcp_network_add_node(network, "b", 0, conv, 9, [a], 1, [pb], 1, &b) == 0)
        #expect(kcp_network_add_output(network, b) == 0)
        var counts = [Int64](repeating: 0, count: 3)
        #expect(kcp_network_spaces(network, &counts) == 0)
        func plan(_ weights: [UnsafePointer<Float>?]?, count: Int64, classes: Int? = nil) -> (status: Int32, keep: [UInt8]) {
            let classes = classes ?? Int(counts[0])
            var keep = [UInt8](repeating: 9, count: classes), scores = [Double](repeating: 0, count: classes)
            var ratio = 0.0, costs = [Int64](repeating: 0, count: 4)
            let status = kcp_network_plan(network, 0, 0.5, 0, 0.9, kcpCriterion.kcp, kcpCenter.mean, 1, 0, nil, nil, 0,
                                          weights, count, &keep, &scores, Int64(classes), &ratio, &costs)
            return (status, keep)
        }
        let lent: [Float] = [0, 9, -9, 0, 0, 9, -9, 0]  // keeps input channels 1 and 2 of b, the own weights 0 and 3
        let borrowed = lent.withUnsafeBufferPointer { plan([nil, $0.baseAddress], count: 2) }
        #expect(borrowed.status == 0 && borrowed.keep != plan(nil, count: 0).keep)
        #expect(kcp_network_parameter_write(network, pb, lent, 8) == 0)
        #expect(plan(nil, count: 0).keep == borrowed.keep)
        expectInvalid("weight_count", plan([nil], count: 1).status)
        // Arrays sized for another network (one changed since) are refused before they are written.
        expectInvalid("keep", plan(nil, count: 0, classes: Int(counts[0]) - 1).status)
    }

    @Test("the message is per thread")
    func perThread() {
        var g = [Int64](repeating: 0, count: 4)
        expectInvalid("groups", kcp_layer_geometry([6, 2, 3, 3], 4, 4, &g, 4))
        // Another thread fails differently, then succeeds: this thread's message stays.
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { _ in
            var keep = [UInt8](repeating: 0, count: 2)
            _ = kcp_scores_select([1, 2], 2, 0.5, 1, nil)
            let failed = String(cString: kcp_error_message()).hasPrefix("keep: ")
            _ = kcp_scores_select([1, 2], 2, 0.5, 1, &keep)
            let cleared = String(cString: kcp_error_message()).isEmpty
            return UnsafeMutableRawPointer(bitPattern: failed && cleared ? 1 : 2)
        }, nil)
        #expect(created == 0)
        var result: UnsafeMutableRawPointer?
        pthread_join(thread, &result)
        #expect(result == UnsafeMutableRawPointer(bitPattern: 1))
        #expect(lastError().hasPrefix("groups: "))
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var t = self
        while let c = t.first, c == " " || c == "\t" { t = t.dropFirst() }
        while let c = t.last, c == " " || c == "\t" || c == "\n" || c == "\r" { t = t.dropLast() }
        return t
    }
}
