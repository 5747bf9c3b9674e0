import Testing
@testable import KCP

/// 3-D pooling and resizing: finite differences of the separable passes,
/// and the values of small hand-checkable cases.
@Suite("Volume pooling and resizing")
struct VolumeOpsTests {
    static let pools: [Pool3d] = [
        Pool3d(kernel: 2, stride: 2, plane: Pool2d(kernel: (2, 2), stride: (2, 2))),
        Pool3d(kernel: 3, stride: 2, front: 1, back: 1,
               plane: Pool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1), countIncludePad: true, ceilMode: true)),
        Pool3d(kernel: 2, stride: 1, dilation: 2, plane: Pool2d(kernel: (1, 3), stride: (1, 2), padding: (0, 1, 0, 1))),
    ]

    @Test(arguments: pools)
    func poolFiniteDifferences(_ pool: Pool3d) {
        var rng = SplitMix64(seed: 95)
        let x = fdDistinct([2, 2, 5, 4, 5], &rng)  // distinct values: every window has one maximum
        fdCheckOp(.maxPool3d(pool), [x], seed: 96)
        fdCheckOp(.avgPool3d(pool), [x], seed: 97)
    }

    /// `[1, 1, 2, 2, 2]` holding 0..7: a 2x2x2 max pool is 7, the average 3.5.
    @Test func wholeVolumeWindows() throws {
        let x = netIota([1, 1, 2, 2, 2])
        let pool = Pool3d(kernel: 2, stride: 2, plane: Pool2d(kernel: (2, 2), stride: (2, 2)))
        netExpect(try netRunOp(.maxPool3d(pool), [x]), shape: [1, 1, 1, 1, 1], [7])
        netExpect(try netRunOp(.avgPool3d(pool), [x]), shape: [1, 1, 1, 1, 1], [3.5])
        netExpect(try netRunOp(.globalAvgPool, [x]), shape: [1, 1, 1, 1, 1], [3.5])
    }

    @Test(arguments: [(UpsampleMode.bilinear, false), (.bilinear, true), (.nearest, false)])
    func resizeFiniteDifferences(_ mode: UpsampleMode, _ alignCorners: Bool) {
        var rng = SplitMix64(seed: 98)
        let x = fdTensor([1, 2, 3, 4, 3], &rng)
        let r = Resize3d(depth: 5, plane: Resize(height: 3, width: 7, mode: mode, alignCorners: alignCorners))
        fdCheckOp(.resize3d(r), [x], seed: 99)
    }

    /// Trilinear with aligned corners from 2 to 3 slices of constant planes: the middle slice is their mean.
    @Test func trilinearMiddleSlice() throws {
        let x = Tensor(shape: [1, 1, 2, 1, 2], data: [1, 1, 5, 5])
        let r = Resize3d(depth: 3, plane: Resize(height: 1, width: 2, mode: .bilinear, alignCorners: true))
        netExpect(try netRunOp(.resize3d(r), [x]), shape: [1, 1, 3, 1, 2], [1, 1, 3, 3, 5, 5])
    }
}
