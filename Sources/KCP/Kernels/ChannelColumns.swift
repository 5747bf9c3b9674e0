/// Ops that mix the channels at each position (softmax and its relatives)
/// work column by column: the `C` values of one sample and position, at a
/// stride of the spatial size.

/// Calls `body(column, other, stride)` for every sample and position of an
/// `[N, C, ...]` tensor, where `column[c * stride]` is channel `c` of `t` at
/// that position and `other` the same column of `alongside` (if given);
/// parallel over samples, each column visited once.
func forEachChannelColumn(_ t: inout Tensor, alongside other: Tensor? = nil,
                          _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>?, Int) -> Void)
{
    let (batch, channels) = (t.shape[0], t.shape[1])
    let inner = batch * channels == 0 ? 0 : t.count / (batch * channels)
    let otherData = other?.data ?? []
    otherData.withUnsafeBufferPointer { os in
        t.data.withUnsafeMutableBufferPointer { ts in
            parallelFor(batch) { n in
                for p in 0..<inner {
                    let offset = n * channels * inner + p
                    body(ts.baseAddress! + offset, other == nil ? nil : os.baseAddress! + offset, inner)
                }
            }
        }
    }
}
