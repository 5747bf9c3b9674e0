/// Kernel cluster vectors of one layer (see `LayerGeometry`).
///
/// `v_i` is the kernel cluster of input channel `i` flattened output-major:
/// `v_i[o' * K + k] = W[g(i) * O/g + o', j(i), k]`, length `(O/g) * K`.

/// Gathers every `v_i` into the rows of an `[I, (O/g) * K]` matrix.
func clusterVectors(_ weight: UnsafePointer<Float>, _ geometry: LayerGeometry) -> [Float] {
    let n = geometry.inChannels, length = geometry.clusterLength
    let area = geometry.kernelArea, filter = geometry.filterLength
    return [Float](unsafeUninitializedCapacity: n * length) { out, count in
        let base = out.baseAddress!
        parallelFor(n) { i in
            let (group, j) = geometry.groupOf(inChannel: i)
            for oLocal in 0..<geometry.outPerGroup {
                let source = weight + (group * geometry.outPerGroup + oLocal) * filter + j * area
                (base + i * length + oLocal * area).update(from: source, count: area)
            }
        }
        count = n * length
    }
}

/// The mean center `c = mean_i v_i` and `d_i^2 = ||v_i - c||^2`, in one pass
/// over the weight.
///
/// Rows `o' = 0..<O/g` are taken in fixed blocks; each block reads the `g`
/// rows `W[gr * O/g + o']`, forms its part of `c` and adds its part of every
/// `d_i^2` while the rows are in cache. Block partial sums are added in block
/// order, so the result does not depend on the thread count.
func meanCenterSquaredDistances(_ weight: UnsafePointer<Float>, _ geometry: LayerGeometry)
    -> (center: [Float], squaredDistances: [Double])
{
    let n = geometry.inChannels, area = geometry.kernelArea
    let rowsPerGroup = geometry.outPerGroup, perGroup = geometry.inPerGroup
    let blocks = min(rowsPerGroup, 32)
    var center = [Float](repeating: 0, count: geometry.clusterLength)
    var partial = [Float](repeating: 0, count: blocks * n)
    center.withUnsafeMutableBufferPointer { centerBuffer in
        partial.withUnsafeMutableBufferPointer { partialBuffer in
            let centerBase = centerBuffer.baseAddress!, partialBase = partialBuffer.baseAddress!
            parallelFor(blocks) { block in
                let d2 = partialBase + block * n
                var c = [Double](repeating: 0, count: area)
                var cf = [Float](repeating: 0, count: area)
                for oLocal in (rowsPerGroup * block / blocks)..<(rowsPerGroup * (block + 1) / blocks) {
                    for k in 0..<area { c[k] = 0 }
                    for group in 0..<geometry.groups {
                        let row = weight + (group * rowsPerGroup + oLocal) * geometry.filterLength
                        if area == 1 {
                            c[0] += sum(row, perGroup)
                        } else {
                            for j in 0..<perGroup {
                                for k in 0..<area { c[k] += Double(row[j * area + k]) }
                            }
                        }
                    }
                    for k in 0..<area {
                        cf[k] = Float(c[k] / Double(n))
                        centerBase[oLocal * area + k] = cf[k]
                    }
                    for group in 0..<geometry.groups {
                        let row = weight + (group * rowsPerGroup + oLocal) * geometry.filterLength
                        let out = d2 + group * perGroup
                        if area == 1 {
                            let c0 = cf[0]
                            for j in 0..<perGroup {
                                let e = row[j] - c0
                                out[j] += e * e
                            }
                        } else {
                            cf.withUnsafeBufferPointer { cb in
                                for j in 0..<perGroup {
                                    out[j] += squaredDistance(row + j * area, cb.baseAddress!, area)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    var squaredDistances = [Double](repeating: 0, count: n)
    for block in 0..<blocks {
        for i in 0..<n { squaredDistances[i] += Double(partial[block * n + i]) }
    }
    return (center, squaredDistances)
}

/// Per-kernel scores for `granularity = kernel`:
/// `t[o, j] = ||W[o, j] - mu_i||_2`, with `mu_i = mean_o W[o, j(i)]` over the
/// outputs `o` of the group of `i`. Returned row-major as `[O, I/g]`.
func kernelDistances(_ weight: UnsafePointer<Float>, _ geometry: LayerGeometry) -> [Double] {
    let area = geometry.kernelArea, filter = geometry.filterLength, perGroup = geometry.inPerGroup
    var means = [Float](repeating: 0, count: geometry.inChannels * area)
    means.withUnsafeMutableBufferPointer { meanBuffer in
        let meanBase = meanBuffer.baseAddress!
        parallelFor(geometry.inChannels) { i in
            let (group, j) = geometry.groupOf(inChannel: i)
            for k in 0..<area {
                var sum = 0.0
                for oLocal in 0..<geometry.outPerGroup {
                    sum += Double(weight[(group * geometry.outPerGroup + oLocal) * filter + j * area + k])
                }
                meanBase[i * area + k] = Float(sum / Double(geometry.outPerGroup))
            }
        }
    }
    return [Double](unsafeUninitializedCapacity: geometry.kernelCount) { out, count in
        let outBase = out.baseAddress!
        means.withUnsafeBufferPointer { meanBuffer in
            parallelFor(geometry.outChannels) { o in
                let group = o / geometry.outPerGroup
                for j in 0..<perGroup {
                    let mu = meanBuffer.baseAddress! + (group * perGroup + j) * area
                    let d2 = squaredDistance(weight + o * filter + j * area, mu, area)
                    outBase[o * perGroup + j] = Double(d2).squareRoot()
                }
            }
        }
        count = geometry.kernelCount
    }
}
