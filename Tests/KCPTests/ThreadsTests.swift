import Dispatch
import Glibc
import Synchronization
import Testing
@testable import KCP
import KCPC

/// Held while a test sets the thread count: tests run in parallel, and one that reads what the
/// count decides (a kernel's chunks and parts) would otherwise see another test's count.
private let threadCountSwitch = Mutex(())

/// Runs `body` with `Threads.count == n`, while no other test sets the count, then restores it.
func withThreads<R>(_ n: Int, _ body: () throws -> R) throws -> R {
    try threadCountSwitch.withLock { _ in
        let previous = Threads.count
        try Threads.set(n)
        defer { try? Threads.set(previous) }
        return try body()
    }
}

/// Counts of the visits to each index of `0..<count`, shared by threads.
struct Visits {
    let hits: UnsafeMutablePointer<Atomic<Int>>
    func visit(_ i: Int) { hits[i].add(1, ordering: .relaxed) }
    /// Visits row `row` of `width` indices in a parallel loop of its own.
    func visitRow(_ row: Int, of width: Int) { parallelFor(width) { visit(row * width + $0) } }

    /// How many times `loop` visits each index.
    static func of(_ count: Int, _ loop: (Visits) -> Void) -> [Int] {
        let visits = Visits(hits: .allocate(capacity: max(count, 1)))
        for i in 0..<count { (visits.hits + i).initialize(to: Atomic(0)) }
        defer { visits.hits.deallocate() }
        loop(visits)
        return (0..<count).map { visits.hits[$0].load(ordering: .relaxed) }
    }
}

/// Every test that changes the process-wide thread count lives here, one at a time.
@Suite("Thread count", .serialized)
struct ThreadsTests {
    @Test("meanCenterSquaredDistances is bitwise the same for 1, 2 and 5 threads", arguments: layerShapes)
    func fusedMeanDistances(shape: [Int], groups: Int) throws {
        let g = try LayerGeometry(shape: shape, groups: groups)
        let w = randomWeights(g.elementCount, seed: 41)
        let run = { w.withUnsafeBufferPointer { meanCenterSquaredDistances($0.baseAddress!, g) } }
        let one = try withThreads(1, run), two = try withThreads(2, run), five = try withThreads(5, run)
        #expect(one.center == two.center && one.squaredDistances == two.squaredDistances)
        #expect(one.center == five.center && one.squaredDistances == five.squaredDistances)
    }

    @Test("scores, clusters and kernel distances do not depend on the thread count")
    func layerResults() throws {
        let shape = [48, 16, 3, 3]
        let g = try LayerGeometry(shape: shape, groups: 4)
        let w = randomWeights(g.elementCount, seed: 42)
        func run() throws -> [[Double]] {
            try withWeight(w) { b in
                let median = try ChannelClusters(weight: b, geometry: g, center: .median)
                let kmeans = try ChannelClusters(weight: b, geometry: g, clusters: 5, seed: 3)
                return [
                    try layerScores(weight: b, geometry: g, criterion: .kcp(center: .mean)),
                    median.scores, median.centers.map(Double.init),
                    kmeans.scores, kmeans.labels.map(Double.init),
                    try layerScores(weight: b, geometry: g, criterion: .filter(.l1)),
                    try layerScores(weight: b, geometry: g, criterion: .filter(.l2)),
                    kernelDistances(b.baseAddress!, g),
                    clusterVectors(b.baseAddress!, g).map(Double.init),
                ]
            }
        }
        let one = try withThreads(1, run), two = try withThreads(2, run), three = try withThreads(3, run)
        let names = ["kcp mean", "median scores", "median center", "k-means scores", "k-means labels",
                     "l1", "l2", "kernel distances", "cluster vectors"]
        for (k, name) in names.enumerated() {
            let same = one[k] == two[k] && one[k] == three[k]
            #expect(same, "\(name) changes with the thread count")
        }
    }

    @Test("fpgm agrees across thread counts to float rounding")
    func fpgm() throws {
        let g = try LayerGeometry(shape: [40, 8, 3, 3], groups: 1)
        let w = randomWeights(g.elementCount, seed: 43)
        let run = { try withWeight(w) { try layerScores(weight: $0, geometry: g, criterion: .filter(.fpgm)) } }
        expectClose(try withThreads(1, run), try withThreads(2, run), tolerance: 1e-6)
    }

    @Test("fpgm agrees to 1e-12 for 1, 2 and 4 threads (its OpenBLAS Gram matrix may change in the last bits)",
          arguments: [[512, 64, 3, 3], [300, 700], [1024, 32, 1, 1]])
    func fpgmBitwise(shape: [Int]) throws {
        let g = try LayerGeometry(shape: shape, groups: 1)
        let w = randomWeights(g.elementCount, seed: 44)
        let run = { try withWeight(w) { try layerScores(weight: $0, geometry: g, criterion: .filter(.fpgm)) } }
        let one = try withThreads(1, run), two = try withThreads(2, run), four = try withThreads(4, run)
        let differences = zip(one, two).map { abs($0 - $1) } + zip(one, four).map { abs($0 - $1) }
        let worst = differences.max()!
        #expect(worst < 1e-12, "scores move by \(worst)")
    }

    @Test("conv forward (fused epilogue too) and backward are bitwise the same for 1, 2 and 3 threads",
          arguments: (unfoldCases + directCases + depthwiseVectorCases + winogradCases + tapCases + pointwiseKernelCases).filter { $0.conv.padding.0 >= 0 && $0.conv.padding.1 >= 0 })
    func convBitwise(_ c: ConvCase) throws {
        var rng = SplitMix64(seed: 45)
        let x = fdTensor(c.input, &rng), w = fdTensor(c.weight, &rng)
        let shape = try Op.conv2d(c.conv).outputShape(inputs: [c.input], parameters: [c.weight])
        let g = fdTensor(shape, &rng), affine = (scale: fdTensor([shape[1]], &rng).data, shift: fdTensor([shape[1]], &rng).data)
        let run = {
            let d = conv2dBackward(x, weight: w, hasBias: true, c.conv, gradient: g)
            return [conv2dForward(x, weight: w, bias: nil, c.conv, outputShape: shape, normalization: affine, activation: .relu),
                    d.input!, d.weight]
        }
        try withSteadyInstructionSet {
            let one = try withThreads(1, run), two = try withThreads(2, run), three = try withThreads(3, run)
            #expect(one == two && one == three)
        }
    }

    @Test("the pointwise kernel's chunks share out whole calls evenly within the cache bound, and few jobs come in a multiple of the thread count",
          arguments: [1, 2, 3])
    func pointwiseChunks(threads: Int) throws {
        let call = PointwiseConvolution.callPixels
        func kernel(_ channels: Int, _ side: Int, batch: Int) throws -> PointwiseConvolution {
            let c = ConvCase(label: "", input: [batch, channels, side, side], weight: [64, channels, 1, 1],
                             conv: Conv2d(), bias: false)
            return try withThreads(threads) { PointwiseConvolution(geometry(c)) }
        }
        for (channels, side, batch) in [(64, 56, 1), (128, 28, 1), (1024, 14, 1), (16, 112, 1), (256, 14, 1),
                                        (256, 56, 1), (512, 7, 8), (2048, 7, 2)] {
            let k = try kernel(channels, side, batch: batch), pixels = side * side
            let spans = (0..<k.chunks).map(k.pixels), label = "\(channels) channels on \(side)x\(side), batch \(batch)"
            #expect(spans.first?.lowerBound == 0 && spans.last?.upperBound == pixels, "\(label)")
            #expect(zip(spans, spans.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, "\(label)")
            #expect(spans.dropLast().allSatisfy { $0.count % call == 0 && $0.count >= k.chunkPixels - call }, "\(label)")
            #expect(spans.allSatisfy { !$0.isEmpty && $0.count <= k.chunkPixels }, "\(label)")
            #expect(channels * k.blockPitch <= max(PointwiseConvolution.chunkFloats, channels * call), "\(label)")
            let jobs = batch * k.chunks, calls = (pixels + call - 1) / call
            if (threads..<(4 * threads)).contains(jobs) {
                #expect(jobs % threads == 0 || k.chunks == calls, "\(label): \(k.chunks) chunks")
            }
        }
        // 64 channels on 56x56: chunks of at most 1024 pixels, so 4 of them; on 3 threads, 6.
        #expect(try kernel(64, 56, batch: 1).chunks == [1: 4, 2: 4, 3: 6][threads]!)
    }

    @Test("Threads.set and kcp_threads_set change the count and validate n")
    func setAndGet() throws {
        try withThreads(3) {
            #expect(Threads.count == 3 && kcp_threads_get() == 3)
            #expect(kcp_threads_set(1) == 0 && lastError() == "")
            #expect(Threads.count == 1 && kcp_threads_get() == 1)
            expectInvalidArgument("n") { try Threads.set(0) }
            #expect(Threads.count == 1)
            expectInvalid("n", kcp_threads_set(0))
            #expect(Threads.count == 1)
        }
        #expect(Threads.available >= 1)
    }

    @Test("parallelFor visits every index once for any thread count")
    func parallelForCoverage() throws {
        for n in [1, 2, 3, 7] {
            try withThreads(n) {
                for count in [0, 1, 5, 64] {
                    var hits = [Int](repeating: 0, count: count)
                    hits.withUnsafeMutableBufferPointer { h in
                        let base = h.baseAddress!
                        parallelFor(count) { base[$0] += 1 }
                    }
                    #expect(hits == [Int](repeating: 1, count: count), "threads \(n), count \(count)")
                }
            }
        }
    }

    @Test("parallel loops in quick succession, after the helpers sleep, nested and from two threads at once visit every index once, with spinning helpers and with more threads than processors",
          arguments: [max(2, Threads.available), Threads.available + 1])
    func workerPoolLoops(threads: Int) throws {
        try withThreads(threads) {
            let once = { (count: Int) in [Int](repeating: 1, count: count) }
            for round in 0..<2000 {  // loops one after another, each helper spinning for the next where it may
                let count = round % 37
                #expect(Visits.of(count) { v in parallelFor(count, v.visit) } == once(count), "round \(round)")
            }
            for round in 0..<5 {  // after each pause the helpers have gone to sleep
                usleep(UInt32(2e6 * WorkerPool.spinSeconds))
                #expect(Visits.of(64) { v in parallelFor(64, v.visit) } == once(64), "after a pause, round \(round)")
            }
            let nested: [Int] = Visits.of(8 * 16) { (v: Visits) -> Void in
                parallelFor(8) { (outer: Int) -> Void in v.visitRow(outer, of: 16) }
            }
            #expect(nested == once(8 * 16))
            let concurrent: [Int] = Visits.of(2 * 500 * 24) { (v: Visits) -> Void in
                DispatchQueue.concurrentPerform(iterations: 2) { (caller: Int) -> Void in
                    for round in 0..<500 { v.visitRow(caller * 500 + round, of: 24) }
                }
            }
            #expect(concurrent == once(2 * 500 * 24))
        }
    }

    @Test("a parallel loop of several threads runs on the pool's helpers as well as the caller")
    func workerPoolHelpersTakePart() throws {
        try withThreads(2) {
            let caller = pthread_self()
            let elsewhere = Atomic<Int>(0)
            // A loop started while another suite's holds the pool runs on its caller alone: tried
            // again until one finds the pool free.
            for _ in 0..<100 where elsewhere.load(ordering: .relaxed) == 0 {
                parallelFor(16) { _ in
                    // The caller lingers over each of its iterations, so that the helper takes some of them.
                    if pthread_equal(pthread_self(), caller) != 0 { usleep(2000) } else { elsewhere.add(1, ordering: .relaxed) }
                }
            }
            #expect(elsewhere.load(ordering: .relaxed) > 0)
        }
    }

    @Test("inference at 2 threads gives the 1-thread bytes on every pass")
    func inferenceKeepsResults() throws {
        let b = try NetZoo.resnet.build()
        let inputs = b.inputs(batch: 2)
        let one = try withThreads(1) { try b.net.forward(inputs) }
        let passes = try withThreads(2) { try (0..<5).map { _ in try b.net.forward(inputs) } }
        for (pass, outputs) in passes.enumerated() { #expect(outputs == one, "pass \(pass)") }
    }
}
