import COpenBLAS

/// `(R - mean) (R - mean)^T` in double precision for a row-major
/// `[rows, length]` float matrix, by OpenBLAS DGEMM.
func centeredGramMatrix(_ r: UnsafePointer<Float>, rows: Int, length: Int) -> [Double] {
    var mean = [Double](repeating: 0, count: length)
    for i in 0..<rows {
        for k in 0..<length { mean[k] += Double(r[i * length + k]) }
    }
    let centered = (0..<(rows * length)).map { Double(r[$0]) - mean[$0 % length] / Double(rows) }
    return [Double](unsafeUninitializedCapacity: rows * rows) { out, count in
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(rows), Int32(length),
                    1, centered, Int32(length), centered, Int32(length), 0, out.baseAddress!, Int32(rows))
        count = rows * rows
    }
}
