import COpenBLAS

/// `R R^T` for a row-major `[rows, length]` matrix, by OpenBLAS SGEMM.
func gramMatrix(_ r: UnsafePointer<Float>, rows: Int, length: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: rows * rows) { out, count in
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(rows), Int32(length),
                    1, r, Int32(length), r, Int32(length), 0, out.baseAddress!, Int32(rows))
        count = rows * rows
    }
}
