/// Max and average pooling over `kh x kw` windows, NCHW, with padding,
/// dilation and PyTorch's `ceil_mode`. Max pooling ignores padded positions;
/// average pooling divides by the number of real positions, or with
/// `countIncludePad` by the window's extent clipped to the padded input
/// (`kh * kw` except for a last `ceil_mode` window), as PyTorch does.
func pool2dForward(_ x: Tensor, _ pool: Pool2d, max useMax: Bool, outputShape: [Int]) -> Tensor {
    windowPoolForward(x, PoolWindows(pool, height: x.shape[2], width: x.shape[3], outHeight: outputShape[2],
                                     outWidth: outputShape[3]), max: useMax, outputShape: outputShape)
}

/// Gradient of `pool2dForward` given `gradient = dL/dy`: max pooling sends
/// each window's `g` to its first maximal element in row-major window order
/// (the element PyTorch's argmax picks; ties get nothing else), or its first
/// NaN, which the forward passes on as PyTorch does; average
/// pooling adds `g / divisor` to every real element of the window, with the
/// forward's divisor.
func pool2dBackward(_ x: Tensor, _ pool: Pool2d, max useMax: Bool, gradient: Tensor) -> Tensor {
    windowPoolBackward(x, PoolWindows(pool, height: x.shape[2], width: x.shape[3], outHeight: gradient.shape[2],
                                      outWidth: gradient.shape[3]), max: useMax, gradient: gradient)
}

/// Adaptive pooling to the output's size: output `(i, j)` pools input rows
/// `floor(i H / oh) ..< ceil((i + 1) H / oh)` and the columns alike.
func adaptivePoolForward(_ x: Tensor, max useMax: Bool, outputShape: [Int]) -> Tensor {
    windowPoolForward(x, PoolWindows(adaptive: x.shape[2], x.shape[3], outHeight: outputShape[2],
                                     outWidth: outputShape[3]), max: useMax, outputShape: outputShape)
}

/// Gradient of `adaptivePoolForward`: as `pool2dBackward` over the adaptive bins.
func adaptivePoolBackward(_ x: Tensor, max useMax: Bool, gradient: Tensor) -> Tensor {
    windowPoolBackward(x, PoolWindows(adaptive: x.shape[2], x.shape[3], outHeight: gradient.shape[2],
                                      outWidth: gradient.shape[3]), max: useMax, gradient: gradient)
}

/// The max or average of each output's window, separably: for each output
/// row, its window's input rows are reduced column by column into a line
/// (`reduceRows`), then each output reduces its window's columns of that
/// line (`reduceColumns`), 8 columns or outputs per vector. The average sums
/// each column's rows in window order, then the columns, and divides.
private func windowPoolForward(_ x: Tensor, _ windows: PoolWindows, max useMax: Bool, outputShape: [Int]) -> Tensor {
    let (height, width) = (x.shape[2], x.shape[3])
    let (outHeight, outWidth) = (outputShape[2], outputShape[3])
    let lines = PoolLines(windows, width: width, outWidth: outWidth)
    return Tensor(shape: outputShape) { ys in  // every output written below
        x.data.withUnsafeBufferPointer { xs in
            /// Plane `plane`, called with `useMax` a constant, so that the loops are compiled for
            /// it: testing it for every vector, and zeroing the output first, took a fifth of
            /// ResNet-50's 3x3 stride-2 max pool (64 channels of 112x112: 0.194-0.201 ->
            /// 0.161-0.164 ms; AMD EPYC Zen 5, AVX-512, 1 thread).
            @inline(__always)
            func pool(_ plane: Int, _ scratch: UnsafeMutablePointer<Float>, max useMax: Bool) {
                let input = xs.baseAddress! + plane * height * width
                let output = ys.baseAddress! + plane * outHeight * outWidth
                lines.clearPadding(scratch, max: useMax)
                for oy in 0..<outHeight {
                    reduceRows(input, windows.rows[oy], width: width, max: useMax, into: scratch + lines.left)
                    lines.reduceColumns(scratch, row: oy, max: useMax, into: output + oy * outWidth)
                }
            }
            parallelFor(x.shape[0] * x.shape[1], scratch: lines.scratchSize) { plane, scratch in
                if useMax { pool(plane, scratch, max: true) } else { pool(plane, scratch, max: false) }
            }
        }
    }
}

private typealias PoolLanes = SIMD8<Float>

/// The larger of `a` and `v`, or `v` where it is NaN: a window holding a NaN pools to NaN, as in PyTorch.
@inline(__always)
private func poolMax(_ a: PoolLanes, _ v: PoolLanes) -> PoolLanes { a.replacing(with: v, where: v .> a .| v .!= v) }

@inline(__always)
private func poolMax(_ a: Float, _ v: Float) -> Float { v > a || v.isNaN ? v : a }

/// The column pass of `windowPoolForward` over one output row's line,
/// laid out in a worker's scratch as `[left pad | line of W | right pad]`,
/// then the line's `stride` phases and the row's divisors. With a regular
/// window (`kernel` taps `dilation` apart, outputs `stride` apart), output
/// `ox` reads phase `j * dilation % stride` of the padded line at
/// `ox + j * dilation / stride` for tap `j`: consecutive outputs read
/// consecutive floats, and the pads (-inf for the max, 0 for the sum)
/// stand for the taps outside the input. Adaptive windows are reduced one
/// output at a time.
private struct PoolLines {
    let windows: PoolWindows, width: Int, outWidth: Int
    let left: Int, padded: Int, phaseLength: Int

    typealias Lanes = PoolLanes

    init(_ windows: PoolWindows, width: Int, outWidth: Int) {
        (self.windows, self.width, self.outWidth) = (windows, width, outWidth)
        let vectors = (outWidth + Lanes.scalarCount - 1) / Lanes.scalarCount * Lanes.scalarCount
        if let r = windows.regular {
            left = r.padding
            // Every lane of the last vector reads inside the padded line.
            padded = Swift.max(left + width, (vectors - 1) * r.stride + (r.kernel - 1) * r.dilation + 1)
            phaseLength = r.stride == 1 ? 0 : (padded + r.stride - 1) / r.stride
        } else {
            (left, padded, phaseLength) = (0, width, 0)
        }
    }

    var phases: Int { windows.regular?.stride ?? 1 }
    var scratchSize: Int { padded + (phaseLength > 0 ? phases * phaseLength : 0) + outWidth + Lanes.scalarCount }

    /// Fills the pads on either side of the line with the reduction's identity.
    func clearPadding(_ scratch: UnsafeMutablePointer<Float>, max useMax: Bool) {
        let identity: Float = useMax ? -.infinity : 0
        scratch.update(repeating: identity, count: left)
        (scratch + left + width).update(repeating: identity, count: padded - left - width)
    }

    /// Output row `oy` from the reduced line in `scratch` (see `PoolLines`).
    @inline(__always)
    func reduceColumns(_ scratch: UnsafeMutablePointer<Float>, row oy: Int, max useMax: Bool,
                       into out: UnsafeMutablePointer<Float>)
    {
        let divisors = scratch + padded + (phaseLength > 0 ? phases * phaseLength : 0)
        if !useMax { for ox in 0..<outWidth { divisors[ox] = windows.divisor(oy, ox) } }
        guard let r = windows.regular else {
            return windows.columns.withUnsafeBufferPointer { columns in
                for (ox, taps) in columns.enumerated() {
                    var a: Float = useMax ? -.infinity : 0
                    for t in 0..<taps.count {
                        let v = scratch[taps.first + t * taps.step]
                        a = useMax ? poolMax(a, v) : a + v
                    }
                    out[ox] = useMax ? a : a / divisors[ox]
                }
            }
        }
        let phase = splitPhases(scratch)
        /// Where tap `j` of output 0 reads.
        func tap(_ j: Int) -> UnsafePointer<Float> { self.tap(j, of: phase) }
        var ox = 0
        while ox < outWidth {
            var a = UnsafeRawPointer(tap(0) + ox).loadUnaligned(as: Lanes.self)
            for j in 1..<r.kernel {
                let v = UnsafeRawPointer(tap(j) + ox).loadUnaligned(as: Lanes.self)
                a = useMax ? poolMax(a, v) : a + v
            }
            if !useMax { a /= UnsafeRawPointer(divisors + ox).loadUnaligned(as: Lanes.self) }
            if ox + Lanes.scalarCount <= outWidth {
                UnsafeMutableRawPointer(out + ox).storeBytes(of: a, as: Lanes.self)
            } else {
                for lane in 0..<(outWidth - ox) { out[ox + lane] = a[lane] }
            }
            ox += Lanes.scalarCount
        }
    }

    /// The padded line in `scratch` split into its `stride` phases (after it in the scratch), or the line
    /// itself with stride 1; a regular window's only.
    private func splitPhases(_ scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        let stride = windows.regular!.stride
        guard phaseLength > 0 else { return UnsafePointer(scratch) }
        let phase = scratch + padded
        for f in 0..<stride {
            let (target, count) = (phase + f * phaseLength, (padded - f + stride - 1) / stride)
            if stride == 2 {
                copyEvenFloats(scratch + f, to: target, 0..<count)
            } else {
                for t in 0..<count { target[t] = scratch[f + t * stride] }
            }
        }
        return UnsafePointer(phase)
    }

    /// Where tap `j` of output 0 reads in the phases `phase` of a regular window's padded line.
    private func tap(_ j: Int, of phase: UnsafePointer<Float>) -> UnsafePointer<Float> {
        let r = windows.regular!, offset = j * r.dilation
        return phase + offset % r.stride * phaseLength + offset / r.stride
    }

    /// For one input row's padded line in `scratch` (row tap `i` of a regular window): `winner[ox]`
    /// becomes `i * kernel + j` for the first column tap `j` whose value equals `best[ox]`, or is NaN,
    /// where no earlier tap has (`winner[ox] < 0`). `best` and `winner` are read a vector at a time.
    func firstMatches(_ scratch: UnsafeMutablePointer<Float>, rowTap i: Int, best: UnsafePointer<Float>,
                      winner: UnsafeMutablePointer<Float>)
    {
        let kernel = windows.regular!.kernel, phase = splitPhases(scratch)
        var ox = 0
        while ox < outWidth {
            let b = UnsafeRawPointer(best + ox).loadUnaligned(as: Lanes.self)
            var w = UnsafeRawPointer(winner + ox).loadUnaligned(as: Lanes.self)
            for j in 0..<kernel {
                let v = UnsafeRawPointer(tap(j, of: phase) + ox).loadUnaligned(as: Lanes.self)
                w.replace(with: Float(i * kernel + j), where: (v .== b .| v .!= v) .& w .< 0)
            }
            UnsafeMutableRawPointer(winner + ox).storeBytes(of: w, as: Lanes.self)
            ox += Lanes.scalarCount
        }
    }
}

/// `line[ix]` = the max (or the sum, in tap order) over the taps `rows` of
/// the `[H, width]` plane's `input[iy, ix]`, for every `ix < width`:
/// `-inf` (or 0) where `rows` is empty.
@inline(__always)
private func reduceRows(_ input: UnsafePointer<Float>, _ rows: PoolTaps, width: Int, max useMax: Bool,
                        into line: UnsafeMutablePointer<Float>)
{
    typealias Lanes = PoolLanes
    guard rows.count > 0 else { return line.update(repeating: useMax ? -.infinity : 0, count: width) }
    let first = input + rows.first * width, rowStep = rows.step * width
    var ix = 0
    while ix + Lanes.scalarCount <= width {
        var a = UnsafeRawPointer(first + ix).loadUnaligned(as: Lanes.self)
        for t in 1..<rows.count {
            let v = UnsafeRawPointer(first + t * rowStep + ix).loadUnaligned(as: Lanes.self)
            a = useMax ? poolMax(a, v) : a + v
        }
        UnsafeMutableRawPointer(line + ix).storeBytes(of: a, as: Lanes.self)
        ix += Lanes.scalarCount
    }
    while ix < width {
        var a = first[ix]
        for t in 1..<rows.count {
            let v = first[t * rowStep + ix]
            a = useMax ? poolMax(a, v) : a + v
        }
        line[ix] = a
        ix += 1
    }
}

/// The gradient of `windowPoolForward` (see `pool2dBackward`). Max pooling
/// over regular windows finds each output's element a vector of outputs at
/// a time (`maxPoolWinners`); adaptive windows and the average go one output at a time.
private func windowPoolBackward(_ x: Tensor, _ windows: PoolWindows, max useMax: Bool, gradient: Tensor) -> Tensor {
    let (height, width) = (x.shape[2], x.shape[3])
    let (outHeight, outWidth) = (gradient.shape[2], gradient.shape[3])
    let lines = PoolLines(windows, width: width, outWidth: outWidth), outputLine = outWidth + PoolLanes.scalarCount
    var dx = Tensor(zeros: x.shape)
    x.data.withUnsafeBufferPointer { xs in
        gradient.data.withUnsafeBufferPointer { gs in
            dx.data.withUnsafeMutableBufferPointer { dxs in
                parallelFor(x.shape[0] * x.shape[1], scratch: lines.scratchSize + 2 * outputLine) { plane, scratch in
                    let input = xs.baseAddress! + plane * height * width
                    let output = gs.baseAddress! + plane * outHeight * outWidth
                    let target = dxs.baseAddress! + plane * height * width
                    if useMax, let r = windows.regular {
                        let (best, winner) = (scratch + lines.scratchSize, scratch + lines.scratchSize + outputLine)
                        lines.clearPadding(scratch, max: true)
                        for oy in 0..<outHeight {
                            let rows = windows.rows[oy]
                            maxPoolWinners(input, rows, lines, row: oy, scratch: scratch, best: best, winner: winner)
                            for ox in 0..<outWidth {
                                let (w, g, columns) = (Int(winner[ox]), output[oy * outWidth + ox], windows.columns[ox])
                                if w >= 0 && (best[ox] > -.infinity || best[ox].isNaN) {
                                    let ix = ox * r.stride - r.padding + w % r.kernel * r.dilation
                                    target[rows[w / r.kernel] * width + ix] += g
                                } else if rows.count > 0 && columns.count > 0 {  // every element -inf: the first
                                    target[rows.first * width + columns.first] += g
                                }
                            }
                        }
                        return
                    }
                    for oy in 0..<outHeight {
                        let rows = windows.rows[oy]
                        for ox in 0..<outWidth {
                            let (g, columns) = (output[oy * outWidth + ox], windows.columns[ox])
                            if useMax {
                                var best = -Float.infinity, argmax = -1
                                for i in 0..<rows.count {
                                    for j in 0..<columns.count {
                                        let k = rows[i] * width + columns[j]
                                        let v = input[k]  // the first maximal element, or the first NaN
                                        if argmax < 0 || v > best || v.isNaN && !best.isNaN { (best, argmax) = (v, k) }
                                    }
                                }
                                if argmax >= 0 { target[argmax] += g }
                            } else {
                                let share = g / windows.divisor(oy, ox)
                                for i in 0..<rows.count {
                                    for j in 0..<columns.count { target[rows[i] * width + columns[j]] += share }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return dx
}

/// For output row `oy` of max pooling over regular windows: each output's
/// max into `best` (as `windowPoolForward`), then the index `i * kernel + j`
/// of the first element of its window (row taps `i` in order, then column
/// taps `j`) equal to it, or NaN, into `winner` (as floats; -1 for none),
/// each of the window's input rows padded and split into phases in turn.
private func maxPoolWinners(_ input: UnsafePointer<Float>, _ rows: PoolTaps, _ lines: PoolLines, row oy: Int,
                            scratch: UnsafeMutablePointer<Float>, best: UnsafeMutablePointer<Float>,
                            winner: UnsafeMutablePointer<Float>)
{
    let width = lines.width
    reduceRows(input, rows, width: width, max: true, into: scratch + lines.left)
    lines.reduceColumns(scratch, row: oy, max: true, into: best)
    winner.update(repeating: -1, count: lines.outWidth + PoolLanes.scalarCount)
    for i in 0..<rows.count {
        copyFloats(input + rows[i] * width, to: scratch + lines.left, count: width)
        lines.firstMatches(scratch, rowTap: i, best: best, winner: winner)
    }
}

/// The input positions of one output's window along one axis, inside the
/// input: `first + t * step` for `t < count`.
private struct PoolTaps {
    let first: Int, step: Int, count: Int

    subscript(t: Int) -> Int { first + t * step }
}

/// The input rows and columns each output position reads (dilated taps
/// inside the input), and the average's divisor.
private struct PoolWindows {
    var rows: [PoolTaps]
    var columns: [PoolTaps]
    /// Per output row (column): the window's extent clipped to the padded input.
    var rowExtent: [Int]
    var columnExtent: [Int]
    var countIncludePad: Bool
    /// The columns' window where it is the same at every output (not adaptive): `kernel` taps
    /// `dilation` apart from `ox * stride - padding`.
    var regular: (kernel: Int, stride: Int, dilation: Int, padding: Int)?

    init(_ pool: Pool2d, height: Int, width: Int, outHeight: Int, outWidth: Int) {
        /// Taps `j < kernel` at `o * stride - padding + j * dilation` of each output `o`, those in `0..<size`.
        func taps(_ count: Int, kernel: Int, stride: Int, padding: Int, dilation: Int, size: Int) -> [PoolTaps] {
            (0..<count).map { o in
                let start = o * stride - padding
                let low = start >= 0 ? 0 : (-start + dilation - 1) / dilation
                let high = start >= size ? 0 : Swift.min(kernel, (size - 1 - start) / dilation + 1)
                return PoolTaps(first: start + low * dilation, step: dilation, count: Swift.max(0, high - low))
            }
        }
        // A window starts `padding` before the input and ends at most `end` padding after it.
        func extents(_ count: Int, kernel: Int, stride: Int, padding: Int, end: Int, size: Int) -> [Int] {
            (0..<count).map { o in Swift.min(o * stride - padding + kernel, size + end) - (o * stride - padding) }
        }
        rows = taps(outHeight, kernel: pool.kernel.0, stride: pool.stride.0, padding: pool.padding.0,
                    dilation: pool.dilation.0, size: height)
        columns = taps(outWidth, kernel: pool.kernel.1, stride: pool.stride.1, padding: pool.padding.1,
                       dilation: pool.dilation.1, size: width)
        rowExtent = extents(outHeight, kernel: pool.kernel.0, stride: pool.stride.0, padding: pool.padding.0,
                            end: pool.padding.2, size: height)
        columnExtent = extents(outWidth, kernel: pool.kernel.1, stride: pool.stride.1, padding: pool.padding.1,
                               end: pool.padding.3, size: width)
        countIncludePad = pool.countIncludePad
        regular = (pool.kernel.1, pool.stride.1, pool.dilation.1, pool.padding.1)
    }

    /// PyTorch's adaptive bins, `floor(i size / count) ..< ceil((i + 1) size / count)`, averaged over their elements.
    init(adaptive height: Int, _ width: Int, outHeight: Int, outWidth: Int) {
        func bins(_ size: Int, _ count: Int) -> [PoolTaps] {
            (0..<count).map { i in
                let first = i * size / count
                return PoolTaps(first: first, step: 1, count: ((i + 1) * size + count - 1) / count - first)
            }
        }
        (rows, columns) = (bins(height, outHeight), bins(width, outWidth))
        (rowExtent, columnExtent, countIncludePad) = ([], [], false)
    }

    func divisor(_ oy: Int, _ ox: Int) -> Float {
        Float(Swift.max(countIncludePad ? rowExtent[oy] * columnExtent[ox] : rows[oy].count * columns[ox].count, 1))
    }
}

/// Max and average pooling of `[N, C, D, H, W]` (see `Pool3d`): each
/// slice's plane pooled by `pool2dForward`, then each column of the pooled
/// slices over depth.
func pool3dForward(_ x: Tensor, _ pool: Pool3d, max useMax: Bool, outputShape: [Int]) -> Tensor {
    let planes = pool3dPlanes(x, pool, max: useMax, outputShape: outputShape)
    let (n, c, depth, columns) = (x.shape[0], x.shape[1], outputShape[2], outputShape[3] * outputShape[4])
    let y = pool2dForward(planes, pool.depthPool, max: useMax, outputShape: [n, c, depth, columns])
    return Tensor(shape: outputShape, data: y.data)
}

/// Gradient of `pool3dForward`: the depth pass's, then the plane pass's (`pool2dBackward`).
func pool3dBackward(_ x: Tensor, _ pool: Pool3d, max useMax: Bool, gradient: Tensor) -> Tensor {
    let planes = pool3dPlanes(x, pool, max: useMax, outputShape: gradient.shape)
    let (n, c, depth, columns) = (x.shape[0], x.shape[1], gradient.shape[2], gradient.shape[3] * gradient.shape[4])
    let dPlanes = pool2dBackward(planes, pool.depthPool, max: useMax,
                                 gradient: Tensor(shape: [n, c, depth, columns], data: gradient.data))
    let slices = [n, c * x.shape[2], x.shape[3], x.shape[4]]
    let dx = pool2dBackward(Tensor(shape: slices, data: x.data), pool.plane, max: useMax,
                            gradient: Tensor(shape: [n, c * x.shape[2], gradient.shape[3], gradient.shape[4]],
                                             data: dPlanes.data))
    return Tensor(shape: x.shape, data: dx.data)
}

/// The plane pass of `pool3dForward`: every slice pooled, as `[N, C, D, H'*W']`.
private func pool3dPlanes(_ x: Tensor, _ pool: Pool3d, max useMax: Bool, outputShape: [Int]) -> Tensor {
    let (n, c, depth) = (x.shape[0], x.shape[1], x.shape[2])
    let planes = pool2dForward(Tensor(shape: [n, c * depth, x.shape[3], x.shape[4]], data: x.data), pool.plane,
                               max: useMax, outputShape: [n, c * depth, outputShape[3], outputShape[4]])
    return Tensor(shape: [n, c, depth, outputShape[3] * outputShape[4]], data: planes.data)
}

/// `y[n, c] = mean_{h, w} x[n, c, h, w]` (over `d, h, w` for a 5-D input).
func globalAvgPoolForward(_ x: Tensor) -> Tensor {
    let planes = x.shape[0] * x.shape[1], inner = x.count / max(planes, 1)
    var y = Tensor(zeros: [x.shape[0], x.shape[1]] + Array(repeating: 1, count: x.shape.count - 2))
    x.data.withUnsafeBufferPointer { xs in
        for plane in 0..<planes { y.data[plane] = Float(sum(xs.baseAddress! + plane * inner, inner) / Double(inner)) }
    }
    return y
}

/// Gradient of `globalAvgPoolForward`: `dL/dx[n, c, h, w] = g[n, c] / (H * W)` (`/ (D * H * W)`).
func globalAvgPoolBackward(inputShape: [Int], gradient: Tensor) -> Tensor {
    let inner = inputShape.dropFirst(2).reduce(1, *)
    var dx = Tensor(zeros: inputShape)
    dx.data.withUnsafeMutableBufferPointer { dxs in
        parallelFor(gradient.count) { plane in
            (dxs.baseAddress! + plane * inner).update(repeating: gradient.data[plane] / Float(inner), count: inner)
        }
    }
    return dx
}
