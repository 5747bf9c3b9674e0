import Testing
@testable import KCP

/// `compact` into a new array of `count` elements.
func compacted(_ w: [Float], _ shape: [Int], keepOut: [Bool]?, keepIn: [Bool]?, count: Int) throws -> [Float] {
    var out = [Float](repeating: -1, count: count)
    try out.withUnsafeMutableBufferPointer { o in
        try w.withUnsafeBufferPointer { try compact($0.baseAddress!, shape: SliceShape(shape), keepOut: keepOut, keepIn: keepIn, into: o) }
    }
    return out
}

/// `zeroPruned` on a copy.
func masked(_ w: [Float], _ shape: [Int], keep: [Bool], axis: MaskAxis) throws -> [Float] {
    var w = w
    try w.withUnsafeMutableBufferPointer { try zeroPruned($0.baseAddress!, shape: SliceShape(shape), keep: keep, axis: axis) }
    return w
}

@Suite("Compaction and masking")
struct SlicingTests {
    // W [3, 2, 2] = 0..<12: W[o, j, :] = (4o + 2j, 4o + 2j + 1)
    static let w = (0..<12).map(Float.init)

    @Test("compact a 3-D weight on both axes")
    func compactBoth() throws {
        // rows 0, 2; column 1: W[0,1] = (2, 3), W[2,1] = (10, 11)
        #expect(try compacted(Self.w, [3, 2, 2], keepOut: [true, false, true], keepIn: [false, true], count: 4) == [2, 3, 10, 11])
        // outputs only: rows 1 -> 4..<8
        #expect(try compacted(Self.w, [3, 2, 2], keepOut: [false, true, false], keepIn: nil, count: 4) == [4, 5, 6, 7])
        // inputs only: column 0 of each row
        #expect(try compacted(Self.w, [3, 2, 2], keepOut: nil, keepIn: [true, false], count: 6) == [0, 1, 4, 5, 8, 9])
        // no mask: a copy
        #expect(try compacted(Self.w, [3, 2, 2], keepOut: nil, keepIn: nil, count: 12) == Self.w)
    }

    @Test("compact a 1-D bias and a 2-D linear weight")
    func compactBiasLinear() throws {
        #expect(try compacted([10, 11, 12, 13, 14], [5], keepOut: [true, false, false, true, true], keepIn: nil, count: 3) == [10, 13, 14])
        // [2, 3] = [[0, 1, 2], [3, 4, 5]], keep columns 0, 2 -> [[0, 2], [3, 5]]
        #expect(try compacted([0, 1, 2, 3, 4, 5], [2, 3], keepOut: nil, keepIn: [true, false, true], count: 4) == [0, 2, 3, 5])
        // 4-D conv [2, 2, 1, 2]: keep output 1, input 0 -> W[1, 0] = (4, 5)
        #expect(try compacted((0..<8).map(Float.init), [2, 2, 1, 2], keepOut: [false, true], keepIn: [true, false], count: 2) == [4, 5])
    }

    @Test("compact errors name keep_out, keep_in, out")
    func compactErrors() {
        expectInvalidArgument("keep_out") { _ = try compacted(Self.w, [3, 2, 2], keepOut: [true, true], keepIn: nil, count: 8) }
        expectInvalidArgument("keep_in") { _ = try compacted(Self.w, [3, 2, 2], keepOut: nil, keepIn: [true], count: 6) }
        expectInvalidArgument("out") { _ = try compacted(Self.w, [3, 2, 2], keepOut: [true, false, true], keepIn: nil, count: 9) }
        expectInvalidArgument("out") { _ = try compacted(Self.w, [3, 2, 2], keepOut: nil, keepIn: nil, count: 0) }
    }

    @Test("zeroPruned along the output, input and kernel axes")
    func mask() throws {
        // [2, 3, 2] = 1...12: W[a, b, :] at (a*3 + b)*2
        let w = (1...12).map(Float.init)
        #expect(try masked(w, [2, 3, 2], keep: [false, true], axis: .output) == [0, 0, 0, 0, 0, 0, 7, 8, 9, 10, 11, 12])
        // input column 1 in both rows: flat 2, 3 and 8, 9
        #expect(try masked(w, [2, 3, 2], keep: [true, false, true], axis: .input) == [1, 2, 0, 0, 5, 6, 7, 8, 0, 0, 11, 12])
        // kernels (0, 1) and (1, 0): flat 2, 3 and 6, 7
        #expect(try masked(w, [2, 3, 2], keep: [true, false, true, false, true, true], axis: .kernel)
            == [1, 2, 0, 0, 5, 6, 0, 0, 9, 10, 11, 12])
        // A 1-D bias: output axis only
        #expect(try masked([1, 2, 3, 4], [4], keep: [true, false, false, true], axis: .output) == [1, 0, 0, 4])
        // A linear [2, 2] weight, kernel mask over its two axes
        #expect(try masked([1, 2, 3, 4], [2, 2], keep: [false, true, true, false], axis: .kernel) == [0, 2, 3, 0])
    }

    @Test("masked then compacted equals compacted (random 4-D)")
    func maskCompactAgree() throws {
        let shape = [6, 5, 3, 3]
        let w = randomWeights(6 * 5 * 9, seed: 21)
        let keepOut = [true, false, true, true, false, true], keepIn = [false, true, true, false, true]
        let inOnly = try masked(w, shape, keep: keepIn, axis: .input)
        let both = try masked(inOnly, shape, keep: keepOut, axis: .output)
        let compact = try compacted(w, shape, keepOut: keepOut, keepIn: keepIn, count: 4 * 3 * 9)
        let fromMasked = try compacted(both, shape, keepOut: keepOut, keepIn: keepIn, count: 4 * 3 * 9)
        #expect(compact == fromMasked)
        // Zeroed entries are exactly the dropped ones.
        #expect(both.filter { $0 == 0 }.count == 6 * 5 * 9 - 4 * 3 * 9)
    }

    @Test("mask and shape errors name axis, keep, weight")
    func maskErrors() {
        expectInvalidArgument("axis") { _ = try masked([1, 2, 3], [3], keep: [true], axis: .input) }
        expectInvalidArgument("axis") { _ = try masked([1, 2, 3], [3], keep: [true, true, true], axis: .kernel) }
        expectInvalidArgument("keep") { _ = try masked(Self.w, [3, 2, 2], keep: [true, true], axis: .output) }
        expectInvalidArgument("keep") { _ = try masked(Self.w, [3, 2, 2], keep: [true, true, true], axis: .input) }
        expectInvalidArgument("keep") { _ = try masked(Self.w, [3, 2, 2], keep: [true, true, true], axis: .kernel) }
        expectInvalidArgument("weight") { _ = try SliceShape([]) }
        expectInvalidArgument("weight") { _ = try SliceShape([1, 1, 1, 1, 1, 1, 1, 1, 1]) }
        expectInvalidArgument("weight") { _ = try SliceShape([3, -1]) }
        expectInvalidArgument("weight") { _ = try SliceShape([Int.max, 4]) }
    }

    @Test("SliceShape reads [rows, columns, inner]")
    func sliceShape() throws {
        let s = try SliceShape([4, 3, 2, 5])
        #expect(s.rows == 4 && s.columns == 3 && s.inner == 10 && s.count == 120 && s.dimensions == 4)
        let b = try SliceShape([7])
        #expect(b.rows == 7 && b.columns == 1 && b.inner == 1 && b.dimensions == 1)
    }
}
