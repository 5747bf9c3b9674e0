import Testing
@testable import KCP

@Suite("LayerGeometry")
struct LayerGeometryTests {
    @Test("conv [O, I, kh, kw]")
    func conv() throws {
        // [8, 3, 3, 5]: I = 3, K = 15, v_i has 8 * 15 = 120 entries, W[o] 3 * 15 = 45.
        let g = try LayerGeometry(shape: [8, 3, 3, 5], groups: 1)
        #expect(g.outChannels == 8 && g.inPerGroup == 3 && g.groups == 1 && g.kernelArea == 15)
        #expect(g.inChannels == 3 && g.outPerGroup == 8)
        #expect(g.clusterLength == 120 && g.filterLength == 45)
        #expect(g.kernelCount == 24 && g.elementCount == 360)
    }

    @Test("linear [O, I] is kh = kw = 1, g = 1")
    func linear() throws {
        let g = try LayerGeometry(shape: [10, 4], groups: 1)
        #expect(g.kernelArea == 1 && g.inChannels == 4 && g.outChannels == 10)
        #expect(g.clusterLength == 10 && g.filterLength == 4 && g.kernelCount == 40 && g.elementCount == 40)
    }

    @Test("grouped conv")
    func grouped() throws {
        // [6, 2, 3, 3] with g = 3: I = 6, O/g = 2, v_i = 2 * 9 = 18 entries.
        let g = try LayerGeometry(shape: [6, 2, 3, 3], groups: 3)
        #expect(g.inChannels == 6 && g.outPerGroup == 2 && g.clusterLength == 18)
        #expect(g.filterLength == 18 && g.kernelCount == 12 && g.elementCount == 108)
        // Input channel 5 is the second channel (j = 1) of group 2.
        #expect(g.groupOf(inChannel: 5) == (group: 2, j: 1))
        #expect(g.groupOf(inChannel: 2) == (group: 1, j: 0))
    }

    @Test("depthwise conv [C, 1, kh, kw], g = C")
    func depthwise() throws {
        let g = try LayerGeometry(shape: [4, 1, 3, 3], groups: 4)
        #expect(g.inChannels == 4 && g.outPerGroup == 1 && g.clusterLength == 9)
        #expect(g.filterLength == 9 && g.kernelCount == 4)
        #expect(g.groupOf(inChannel: 3) == (group: 3, j: 0))
    }

    /// A volumetric conv's kernel is its `kd x kh x kw` slice.
    @Test func volumetric() throws {
        let g = try LayerGeometry(shape: [6, 2, 3, 3, 2], groups: 2)
        #expect(g.kernelArea == 18 && g.inChannels == 4 && g.clusterLength == 54 && g.filterLength == 36)
    }

    @Test("invalid shapes and groups name their argument")
    func errors() {
        expectInvalidArgument("weight", "3-D") { _ = try LayerGeometry(shape: [2, 3, 4], groups: 1) }
        expectInvalidArgument("weight", "1-D") { _ = try LayerGeometry(shape: [5], groups: 1) }
        expectInvalidArgument("weight", "0-D") { _ = try LayerGeometry(shape: [], groups: 1) }
        expectInvalidArgument("weight", "6-D") { _ = try LayerGeometry(shape: [1, 1, 1, 1, 1, 1], groups: 1) }
        expectInvalidArgument("weight", "positive") { _ = try LayerGeometry(shape: [4, 0, 3, 3], groups: 1) }
        expectInvalidArgument("weight", "positive") { _ = try LayerGeometry(shape: [0, 4], groups: 1) }
        expectInvalidArgument("weight", "positive") { _ = try LayerGeometry(shape: [4, -2], groups: 1) }
        expectInvalidArgument("weight", "too large") { _ = try LayerGeometry(shape: [Int.max, 2, 2, 2], groups: 1) }
        expectInvalidArgument("groups", "do not divide") { _ = try LayerGeometry(shape: [6, 2, 3, 3], groups: 4) }
        expectInvalidArgument("groups", "at least 1") { _ = try LayerGeometry(shape: [6, 2, 3, 3], groups: 0) }
        expectInvalidArgument("groups", "at least 1") { _ = try LayerGeometry(shape: [6, 2, 3, 3], groups: -3) }
        expectInvalidArgument("groups", "linear") { _ = try LayerGeometry(shape: [6, 2], groups: 2) }
    }

    @Test("requireFinite names the argument and the first bad index")
    func finite() throws {
        // Flat index 7 of [2, 2, 1, 2] is W[1, 1, 0, 1].
        var w = [Float](repeating: 0, count: 8)
        w[7] = .nan
        w.withUnsafeBufferPointer { buffer in
            expectInvalidArgument("weight", "[1, 1, 0, 1]") {
                try requireFinite(buffer, shape: [2, 2, 1, 2], argument: "weight")
            }
        }
    }
}
