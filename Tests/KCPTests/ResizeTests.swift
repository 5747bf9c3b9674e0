import Testing
@testable import KCP

// Resizing to a fixed size (PyTorch's `interpolate(size=...)`): nearest and
// bilinear, with and without align_corners, up and down, by ratios that are
// not integers. Literals, the slow reference, and finite differences.

struct ResizeCase: Sendable, CustomTestStringConvertible {
    var input: [Int]
    var resize: Resize
    var testDescription: String {
        "\(input[2])x\(input[3]) -> \(resize.height)x\(resize.width) \(resize.mode)\(resize.alignCorners ? ", align corners" : "")"
    }
}

let resizeCases: [ResizeCase] = [(5, 7), (2, 3), (7, 4), (1, 1), (3, 10)].flatMap { size in
    [Resize(height: size.0, width: size.1, mode: .nearest),
     Resize(height: size.0, width: size.1, mode: .bilinear),
     Resize(height: size.0, width: size.1, mode: .bilinear, alignCorners: true)].map { ResizeCase(input: [2, 2, 3, 5], resize: $0) }
} + [ResizeCase(input: [1, 2, 1, 1], resize: Resize(height: 3, width: 2, mode: .bilinear, alignCorners: true)),
     ResizeCase(input: [1, 2, 6, 9], resize: Resize(height: 4, width: 6, mode: .bilinear)),
     ResizeCase(input: [1, 2, 6, 9], resize: Resize(height: 4, width: 6, mode: .nearest))]
    // Rows wider than a vector, each input row read by several output rows (and skipped when shrinking).
    + [Resize(height: 19, width: 37, mode: .bilinear), Resize(height: 19, width: 37, mode: .bilinear, alignCorners: true),
       Resize(height: 19, width: 37, mode: .nearest), Resize(height: 2, width: 20, mode: .bilinear)]
        .map { ResizeCase(input: [1, 2, 5, 11], resize: $0) }

@Suite("Resize")
struct ResizeTests {
    @Test func literals() throws {
        let row = { (data: [Float]) in Tensor(shape: [1, 1, 1, data.count], data: data) }
        // Align corners, 2 -> 4: sources 0, 1/3, 2/3, 1.
        netExpect(try netRunOp(.resize(Resize(height: 1, width: 4, mode: .bilinear, alignCorners: true)), [row([0, 3])]),
                  shape: [1, 1, 1, 4], [0, 1, 2, 3], tolerance: 1e-6)
        // Half-pixel, 2 -> 3 (ratio 2/3): sources -1/6 (clamped to 0), 1/2, 7/6 (past the last pixel).
        netExpect(try netRunOp(.resize(Resize(height: 1, width: 3, mode: .bilinear)), [row([0, 3])]),
                  shape: [1, 1, 1, 3], [0, 1.5, 3], tolerance: 1e-6)
        // Half-pixel, 4 -> 2: sources 1/2 and 5/2, the means of neighbours.
        netExpect(try netRunOp(.resize(Resize(height: 1, width: 2, mode: .bilinear)), [row([0, 1, 2, 3])]),
                  shape: [1, 1, 1, 2], [0.5, 2.5], tolerance: 1e-6)
        // Nearest, 6 -> 4: floor(i * 6 / 4) = 0, 1, 3, 4; 2 -> 5: floor(i * 2 / 5) = 0, 0, 0, 1, 1.
        netExpect(try netRunOp(.resize(Resize(height: 1, width: 4, mode: .nearest)), [row([0, 1, 2, 3, 4, 5])]),
                  shape: [1, 1, 1, 4], [0, 1, 3, 4])
        netExpect(try netRunOp(.resize(Resize(height: 1, width: 5, mode: .nearest)), [row([7, 9])]),
                  shape: [1, 1, 1, 5], [7, 7, 7, 9, 9])
        // Both axes: 2x2 -> 3x3 with align corners gives the midpoints.
        netExpect(try netRunOp(.resize(Resize(height: 3, width: 3, mode: .bilinear, alignCorners: true)),
                               [Tensor(shape: [1, 1, 2, 2], data: [0, 2, 4, 6])]),
                  shape: [1, 1, 3, 3], [0, 1, 2, 2, 3, 4, 4, 5, 6], tolerance: 1e-6)
    }

    @Test(arguments: resizeCases)
    func forward(_ c: ResizeCase) throws {
        var rng = SplitMix64(seed: 60)
        let x = netTensor(c.input, &rng)
        netExpect(try netRunOp(.resize(c.resize), [x]), naiveResize(x, c.resize))
    }

    @Test(arguments: resizeCases)
    func finiteDifferences(_ c: ResizeCase) {
        var rng = SplitMix64(seed: 61)
        fdCheckOp(.resize(c.resize), [fdTensor(c.input, &rng)], seed: 62)
    }

    /// Resizing to the input's own size is the identity for every mode.
    @Test func sameSizeIsTheIdentity() throws {
        var rng = SplitMix64(seed: 63)
        let x = netTensor([1, 2, 3, 5], &rng)
        for mode in [UpsampleMode.nearest, .bilinear] {
            for alignCorners in [false, true] {
                let y = try netRunOp(.resize(Resize(height: 3, width: 5, mode: mode, alignCorners: alignCorners)), [x])
                #expect(zip(y.data, x.data).allSatisfy { abs($0 - $1) <= 1e-6 }, "\(mode), align corners \(alignCorners)")
            }
        }
    }
}
