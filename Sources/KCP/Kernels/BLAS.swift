import COpenBLAS

/// Matrix products on OpenBLAS, split by the engine's own parallel loops.
///
/// OpenBLAS itself runs one thread per call: the engine's loops (each conv
/// tile's unfolding and product, element-wise ops) would otherwise compete
/// for the cores with OpenBLAS's spinning worker threads. Measured on 2 cores, ResNet-20
/// inference (batch 64) took 218 ms with OpenBLAS threads against 246 ms
/// single-threaded; products split here scale with the engine's threads.
private let blasRunsSingleThreaded: Void = openblas_set_num_threads(1)

/// `C = A B + beta C` (row-major; `A` transposed if `transposeA`, then
/// stored `[k, m]`; `B` transposed if `transposeB`, then stored `[n, k]`):
/// one OpenBLAS call on the calling thread.
///
/// A product with one column or one row is a matrix-vector product, and
/// goes to SGEMV: SGEMM packs the whole matrix into panels before it
/// multiplies, and with one column to share them that copy is most of the
/// time (1 thread, AMD EPYC, AVX2: the squeeze-and-excitation 1x1 convs of
/// MobileNetV3-Large on one pixel, 960 -> 240, 109 -> 49 us, all of them
/// 0.82 -> 0.40 ms; its classifier, 960 -> 1280 -> 1000 at batch 1,
/// 1.20 -> 0.51 ms).
func serialMatrixProduct(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                         _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false, beta: Float = 0,
                         _ c: UnsafeMutablePointer<Float>, ldc: Int)
{
    _ = blasRunsSingleThreaded
    if n == 1 && k > 0 {  // C's column = A (B's column)
        cblas_sgemv(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, Int32(transposeA ? k : m),
                    Int32(transposeA ? m : k), 1, a, Int32(lda), b, Int32(transposeB ? 1 : ldb), beta, c, Int32(ldc))
    } else if m == 1 && k > 0 {  // C's row = B^T (A's row)
        cblas_sgemv(CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans, Int32(transposeB ? n : k),
                    Int32(transposeB ? k : n), 1, b, Int32(ldb), a, Int32(transposeA ? lda : 1), beta, c, 1)
    } else {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

/// `C += A A^T` on the upper triangle of row-major `C [n, n]`, `A` `[n, k]`
/// row-major (the lower triangle is not written): one OpenBLAS SSYRK on
/// the calling thread, half the work of the full product.
func serialGramUpdate(n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    _ = blasRunsSingleThreaded
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(k), 1, a, Int32(lda), 1, c, Int32(ldc))
}

/// Columns per parallel block of a product: wide enough for OpenBLAS's kernels.
private let blockColumns = 256

/// `C[m, n] = A[m, k] B[k, n]` (transposes as in `serialMatrixProduct`),
/// with the columns of `C` split into fixed blocks computed in parallel.
/// Each entry comes from one call over the full `k`, so the result does not
/// depend on the thread count.
func matrixProduct(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                   _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                   _ c: UnsafeMutablePointer<Float>, ldc: Int)
{
    parallelFor((n + blockColumns - 1) / blockColumns) { block in
        let first = block * blockColumns, width = min(blockColumns, n - first)
        serialMatrixProduct(m: m, n: width, k: k, a, lda: lda, transposeA: transposeA,
                            transposeB ? b + first * ldb : b + first, ldb: ldb, transposeB: transposeB,
                            c + first, ldc: ldc)
    }
}

/// Depth per block of `addMatrixProduct`: deep enough for OpenBLAS's kernels.
private let blockDepth = 1024

/// `C[m, n] += A[m, k] B[k, n]` (transposes as in `matrixProduct`) for deep
/// products such as weight gradients, whose `k` (samples x pixels) dwarfs
/// `m` and `n`: `k` is split into fixed blocks of `blockDepth` (and the
/// columns into blocks of `blockColumns`), the partial products are computed
/// in parallel and then added to `C` in block order, so the result does not
/// depend on the thread count.
func addMatrixProduct(m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                      _ b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                      _ c: UnsafeMutablePointer<Float>, ldc: Int)
{
    let depthBlocks = (k + blockDepth - 1) / blockDepth, columnBlocks = (n + blockColumns - 1) / blockColumns
    guard depthBlocks > 0 && m > 0 && n > 0 else { return }
    var partial = [Float](unsafeUninitializedCapacity: depthBlocks * m * n) { $1 = depthBlocks * m * n }
    partial.withUnsafeMutableBufferPointer { partial in
        parallelFor(depthBlocks * columnBlocks) { job in
            let depth = job / columnBlocks, column = job % columnBlocks
            let start = depth * blockDepth, size = min(blockDepth, k - start)
            let first = column * blockColumns, width = min(blockColumns, n - first)
            serialMatrixProduct(m: m, n: width, k: size, transposeA ? a + start * lda : a + start, lda: lda,
                                transposeA: transposeA, transposeB ? b + first * ldb + start : b + start * ldb + first,
                                ldb: ldb, transposeB: transposeB, partial.baseAddress! + depth * m * n + first, ldc: n)
        }
        parallelFor(m) { i in
            let row = c + i * ldc
            for depth in 0..<depthBlocks {
                addScaled(row, partial.baseAddress! + (depth * m + i) * n, 1, n)
            }
        }
    }
}

/// `(R - mean) (R - mean)^T` in double precision for a row-major
/// `[rows, length]` float matrix, by OpenBLAS DGEMM in fixed row blocks
/// (the same result for any thread count).
func centeredGramMatrix(_ r: UnsafePointer<Float>, rows: Int, length: Int) -> [Double] {
    _ = blasRunsSingleThreaded
    var mean = [Double](repeating: 0, count: length)
    for i in 0..<rows {
        for k in 0..<length { mean[k] += Double(r[i * length + k]) }
    }
    let centered = (0..<(rows * length)).map { Double(r[$0]) - mean[$0 % length] / Double(rows) }
    let blockRows = 64
    return [Double](unsafeUninitializedCapacity: rows * rows) { out, count in
        let g = out.baseAddress!
        centered.withUnsafeBufferPointer { x in
            parallelFor((rows + blockRows - 1) / blockRows) { block in
                let first = block * blockRows, height = min(blockRows, rows - first)
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(height), Int32(rows), Int32(length),
                            1, x.baseAddress! + first * length, Int32(length), x.baseAddress!, Int32(length),
                            0, g + first * rows, Int32(rows))
            }
        }
        count = rows * rows
    }
}
