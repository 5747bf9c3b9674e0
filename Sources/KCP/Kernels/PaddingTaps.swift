/// The conv without the kernel rows and columns whose taps read only
/// padding, for every output: their terms are `0 * w`, so the sums are the
/// same without them (for finite weights), in fewer products. DeepLabV3's
/// 3x3 convs of dilation 36 on 32x32 features are 1x1 convs this way, as
/// onnxruntime and oneDNN also run them.
///
/// The taps kept, rows `p0..<p1` (a range: the rows a tap reaches move
/// with `p`), read as before with padding `top - p0*dy` and
/// `bottom - (kh - p1)*dy`, which leaves `Hout` unchanged (and the same for
/// columns).
/// The cropped weights are a form of `weight` (`Tensor.derived`), made once
/// per weight values, and keep their own packed forms.
/// - Returns: the conv and its `[O, C/g, p1 - p0, q1 - q0]` weights, or nil
///   where every row and column reads the input somewhere (or none does).
func withoutPaddingTaps(_ s: ConvGeometry, weight: Tensor) -> (conv: Conv2d, weight: Tensor)? {
    let (rows, columns) = tapsReadingInput(s)
    guard rows.count < s.kh || columns.count < s.kw, let p0 = rows.first, let q0 = columns.first else { return nil }
    let (p1, q1, (dy, dx), pad) = (rows.last! + 1, columns.last! + 1, s.conv.dilation, s.conv.padding)
    var conv = s.conv
    conv.padding = (pad.0 - p0 * dy, pad.1 - q0 * dx, pad.2 - (s.kh - p1) * dy, pad.3 - (s.kw - q1) * dx)
    let (kernels, height, width) = (s.outputs * s.perGroup, p1 - p0, q1 - q0)
    let cropped = weight.derived("taps reading the input", layout: [p0, p1, q0, q1]) {
        Tensor(shape: [s.outputs, s.perGroup, height, width]) { out in
            weight.data.withUnsafeBufferPointer { w in
                for kernel in 0..<kernels {
                    for p in p0..<p1 {
                        copyFloats(w.baseAddress! + (kernel * s.kh + p) * s.kw + q0,
                                   to: out.baseAddress! + (kernel * height + p - p0) * width, count: width)
                    }
                }
            }
        }
    }
    return (conv, cropped)
}

/// Whether some kernel row or column of the conv reads only padding, for every output.
func hasPaddingTaps(_ s: ConvGeometry) -> Bool {
    let (rows, columns) = tapsReadingInput(s)
    return rows.count < s.kh || columns.count < s.kw
}

/// The kernel rows and the kernel columns whose taps read the input for some output.
private func tapsReadingInput(_ s: ConvGeometry) -> (rows: [Int], columns: [Int]) {
    ((0..<s.kh).filter { !s.rows(tap: $0).valid.isEmpty }, (0..<s.kw).filter { !s.columns(tap: $0).valid.isEmpty })
}
