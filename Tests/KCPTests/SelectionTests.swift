import Glibc
import Testing
@testable import KCP

@Suite("Selection")
struct SelectionTests {
    @Test("prunes floor(ratio * n) smallest scores")
    func floorCount() throws {
        // n = 5, ratio .5: floor(2.5) = 2 pruned -> the two smallest, 0.1 (#3) and 0.2 (#1)
        #expect(try selectKeep(scores: [0.5, 0.2, 0.9, 0.1, 0.7], ratio: 0.5) == [true, false, true, false, true])
        // ratio .39 of 5: floor(1.95) = 1
        #expect(try selectKeep(scores: [0.5, 0.2, 0.9, 0.1, 0.7], ratio: 0.39) == [true, true, true, false, true])
        // ratio 0 prunes nothing
        #expect(try selectKeep(scores: [3, 2, 1], ratio: 0) == [true, true, true])
    }

    @Test("ties are broken by index")
    func ties() throws {
        // ratio .6 of 5 prunes 3: scores 0 (#1, #3), then the first 1 (#0)
        #expect(try selectKeep(scores: [1, 0, 1, 0, 1], ratio: 0.6) == [false, false, true, false, true])
        #expect(try selectKeep(scores: [7, 7, 7, 7], ratio: 0.5) == [false, false, true, true])
    }

    @Test("at least one channel is kept")
    func keepsOne() throws {
        #expect(try selectKeep(scores: [1, 2, 3], ratio: 0.99) == [false, false, true])
        #expect(try selectKeep(scores: [4], ratio: 0.9) == [true])
        #expect(try selectKeep(scores: [0, 0], ratio: 0.9999999999999999) == [false, true])
        #expect(keptCount(channels: 1000, ratio: 0.9999999999999999, roundTo: 1) == 1)
    }

    @Test("round_to rounds the kept count up, capped at n")
    func roundTo() throws {
        // n = 10, ratio .5 keeps 5; q = 4 -> 8, q = 3 -> 6, q = 5 -> 5, q = 16 -> 10 (cap)
        #expect(keptCount(channels: 10, ratio: 0.5, roundTo: 1) == 5)
        #expect(keptCount(channels: 10, ratio: 0.5, roundTo: 4) == 8)
        #expect(keptCount(channels: 10, ratio: 0.5, roundTo: 3) == 6)
        #expect(keptCount(channels: 10, ratio: 0.5, roundTo: 5) == 5)
        #expect(keptCount(channels: 10, ratio: 0.5, roundTo: 16) == 10)
        // ratio .95 of 10 keeps max(1, 10 - 9) = 1, q = 8 -> 8
        #expect(keptCount(channels: 10, ratio: 0.95, roundTo: 8) == 8)
        let s: [Double] = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
        #expect(try selectKeep(scores: s, ratio: 0.5, roundTo: 4) == [true, true, true, true, true, true, true, true, false, false])
        #expect(try selectKeep(scores: s, ratio: 0.5, roundTo: 16) == [Bool](repeating: true, count: 10))
    }

    @Test("protected entries are never pruned")
    func protected() throws {
        // Without protection #0 and #1 go; #1 is protected, so #0 and the next smallest #3 go.
        #expect(try selectKeep(scores: [0, 1, 5, 2, 9], ratio: 0.4, protected: [false, true, false, false, false])
            == [false, true, true, false, true])
        // Everything protected: nothing pruned, even though 4 are asked.
        #expect(try selectKeep(scores: [1, 2, 3, 4, 5], ratio: 0.8, protected: [Bool](repeating: true, count: 5))
            == [Bool](repeating: true, count: 5))
    }

    @Test("random scores: exactly n - keptCount pruned, all pruned <= all kept", arguments: 0..<20)
    func property(seed: Int) throws {
        var rng = SplitMix64(seed: UInt64(seed))
        let n = 1 + Int(rng.nextUnit() * 60)
        let ratio = rng.nextUnit() * 0.999
        let q = 1 + Int(rng.nextUnit() * 9)
        // Coarse scores so that ties happen.
        let s = (0..<n).map { _ in (rng.nextUnit() * 8).rounded(.down) }
        let keep = try selectKeep(scores: s, ratio: ratio, roundTo: q)
        let kept = keep.filter { $0 }.count
        let expectedKept = min(n, (max(1, n - Int((ratio * Double(n)).rounded(.down))) + q - 1) / q * q)
        #expect(kept == expectedKept)
        #expect(kept >= 1)
        for a in 0..<n where !keep[a] {
            for b in 0..<n where keep[b] {
                #expect((s[a], a) < (s[b], b), "pruned #\(a) ranks above kept #\(b)")
            }
        }
    }

    @Test("invalid ratio, round_to, scores throw naming the argument")
    func errors() {
        expectInvalidArgument("ratio") { _ = try selectKeep(scores: [1, 2], ratio: 1) }
        expectInvalidArgument("ratio") { _ = try selectKeep(scores: [1, 2], ratio: -0.1) }
        expectInvalidArgument("ratio") { _ = try selectKeep(scores: [1, 2], ratio: .nan) }
        expectInvalidArgument("ratio") { _ = try selectKeep(scores: [1, 2], ratio: .infinity) }
        expectInvalidArgument("round_to") { _ = try selectKeep(scores: [1, 2], ratio: 0.5, roundTo: 0) }
        expectInvalidArgument("round_to") { _ = try selectKeep(scores: [1, 2], ratio: 0.5, roundTo: -4) }
        expectInvalidArgument("scores") { _ = try selectKeep(scores: [1, .nan], ratio: 0.5) }
        expectInvalidArgument("scores") { _ = try selectKeep(scores: [.infinity, 1], ratio: 0.5) }
        expectInvalidArgument("scores") { _ = try selectKeep(scores: [], ratio: 0.5) }
    }

    @Test("LayerPruning channel granularity: literal keep mask")
    func layerPruning() throws {
        // Same weight as the mean-center literal: s = 0, 25/12, 25/12, 5/12, 5/12.
        // ratio .6 of 5 prunes 3: #0, then the 5/12 pair #3, #4.
        let g = try LayerGeometry(shape: [2, 5], groups: 1)
        let p = try withWeight([1, 4, -2, 1, 1, 1, 5, -3, 2, 0]) {
            try LayerPruning(weight: $0, geometry: g, ratio: 0.6)
        }
        #expect(p.keep == [false, true, true, false, false])
        #expect(p.labels == [0, 0, 0, 0, 0])
        // round_to 2: kept 2 stays 2; round_to 4: kept rounds to 4 and only #0 goes.
        let q4 = try withWeight([1, 4, -2, 1, 1, 1, 5, -3, 2, 0]) {
            try LayerPruning(weight: $0, geometry: g, ratio: 0.6, roundTo: 4)
        }
        #expect(q4.keep == [false, true, true, true, true])
    }

    @Test("round_to near Int.max keeps everything")
    func roundToHuge() async {
        // In a child process, so that an overflow trap would fail the test rather than the run.
        await #expect(processExitsWith: .success) {
            let keep = try? selectKeep(scores: [1, 2, 3], ratio: 0.5, roundTo: .max)
            exit(keep == [true, true, true] ? 0 : 3)
        }
    }
}
