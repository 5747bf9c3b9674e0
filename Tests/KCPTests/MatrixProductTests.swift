import Testing
@testable import KCP

// The engine's OpenBLAS products against a naive product in double
// precision: every transpose of either operand, leading dimensions wider
// than the matrices, `beta` 0 (C's old values ignored) and 1 (added to),
// products of one column or one row (which SGEMV computes), a single entry,
// and no depth at all (C scaled by `beta` only).

struct ProductCase: CustomTestStringConvertible, Sendable {
    let m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, beta: Float
    var testDescription: String {
        "\(m)x\(k)\(transposeA ? " (stored transposed)" : "") times \(k)x\(n)\(transposeB ? " (stored transposed)" : ""), beta \(beta)"
    }
}

let productCases: [ProductCase] = [(7, 5, 9), (1, 6, 11), (9, 1, 13), (1, 1, 17), (5, 1, 0), (1, 4, 0), (3, 4, 0)]
    .flatMap { (m, n, k) in
        [false, true].flatMap { ta in
            [false, true].flatMap { tb in [Float(0), 1].map { ProductCase(m: m, n: n, k: k, transposeA: ta, transposeB: tb, beta: $0) } }
        }
    }

@Suite("Matrix products")
struct MatrixProductTests {
    @Test(arguments: productCases)
    func matchesTheNaiveProduct(_ c: ProductCase) {
        // Stored shapes, each row 3 floats wider than it needs.
        let (aRows, aColumns) = c.transposeA ? (c.k, c.m) : (c.m, c.k)
        let (bRows, bColumns) = c.transposeB ? (c.n, c.k) : (c.k, c.n)
        let (lda, ldb, ldc) = (aColumns + 3, bColumns + 3, c.n + 3)
        let a = randomWeights(max(1, aRows * lda), seed: 1), b = randomWeights(max(1, bRows * ldb), seed: 2)
        let before = randomWeights(c.m * ldc, seed: 3)
        var product = before
        product.withUnsafeMutableBufferPointer { out in
            serialMatrixProduct(m: c.m, n: c.n, k: c.k, a, lda: lda, transposeA: c.transposeA, b, ldb: ldb,
                                transposeB: c.transposeB, beta: c.beta, out.baseAddress!, ldc: ldc)
        }
        for i in 0..<c.m {
            let expected = (0..<c.n).map { j in
                (0..<c.k).reduce(Double(c.beta) * Double(before[i * ldc + j])) { sum, p in
                    let x = c.transposeA ? a[p * lda + i] : a[i * lda + p]
                    let y = c.transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    return sum + Double(x) * Double(y)
                }
            }
            expectClose(Array(product[(i * ldc)..<(i * ldc + c.n)]), expected, tolerance: 1e-5)
            // The padding between C's rows is left as it was.
            #expect(product[(i * ldc + c.n)..<((i + 1) * ldc)] == before[(i * ldc + c.n)..<((i + 1) * ldc)])
        }
    }
}
