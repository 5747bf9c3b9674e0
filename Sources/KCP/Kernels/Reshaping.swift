/// Ops that move values without arithmetic: concatenation, resizing, channel shuffles and slices.

/// Concatenates NCHW tensors along channels.
func concatForward(_ xs: [Tensor]) -> Tensor {
    concatForward(xs.map { .tensor($0) })
}

/// One input of `concatForward(_ parts:)`: a tensor, or a tensor resized as
/// it is written into its channels of the result (`resizeForward`'s float
/// operations), which saves writing the resized tensor and copying it.
enum ConcatPart {
    case tensor(Tensor)
    case resized(Tensor, Resize)

    /// Its `[N, C, H, W]` shape in the result.
    var shape: [Int] {
        switch self {
        case let .tensor(x): return x.shape
        case let .resized(x, r): return [x.shape[0], x.shape[1], r.height, r.width]
        }
    }
}

/// Concatenates NCHW parts along channels, each resized part resized into its channels.
func concatForward(_ parts: [ConcatPart]) -> Tensor {
    let shape = parts[0].shape, batch = shape[0], positions = Array(shape.dropFirst(2)), inner = positions.reduce(1, *)
    let sizes = parts.map { $0.shape[1] * inner }
    let offsets = sizes.indices.map { sizes[..<$0].reduce(0, +) }, sampleSize = sizes.reduce(0, +)
    return Tensor(shape: [batch, sampleSize / inner] + positions) { y in
        for (k, part) in parts.enumerated() {
            if case let .resized(x, r) = part { resize(x, r, into: y.baseAddress! + offsets[k], sampleStride: sampleSize) }
        }
        parallelFor(batch * parts.count) { job in
            let (n, k) = (job / parts.count, job % parts.count)
            guard sizes[k] > 0, case let .tensor(x) = parts[k] else { return }
            x.data.withUnsafeBufferPointer { x in
                (y.baseAddress! + n * sampleSize + offsets[k]).update(from: x.baseAddress! + n * sizes[k], count: sizes[k])
            }
        }
    }
}

/// Gradient of `concatForward`: `gradient` split along channels into
/// tensors of `channels[i]` channels each, in order.
func concatBackward(_ gradient: Tensor, channels: [Int]) -> [Tensor] {
    let (batch, total) = (gradient.shape[0], gradient.shape[1]), positions = Array(gradient.shape.dropFirst(2))
    let inner = positions.reduce(1, *)
    var offset = 0
    return channels.map { count in
        var part = Tensor(zeros: [batch, count] + positions)
        let size = count * inner
        for n in 0..<batch {
            let start = (n * total + offset) * inner
            part.data.replaceSubrange((n * size)..<((n + 1) * size), with: gradient.data[start..<(start + size)])
        }
        offset += count
        return part
    }
}

/// Resizing H and W to `r.height x r.width` (see `Resize`): each output
/// reads up to four inputs, `y = (1 - fy) ((1 - fx) x[y0, x0] + fx x[y0, x1])
/// + fy ((1 - fx) x[y1, x0] + fx x[y1, x1])` (nearest: `fy = fx = 0`).
///
/// The horizontal blend of each input row a plane reads is computed once,
/// into a line of `Wout` floats (two lines per worker, the rows `y0` and
/// `y1` of the current output row), and each output row is then the vector
/// blend of its two lines: the same float operations as the formula, 4.5x
/// faster on DeepLabV3's 21 x 32x32 -> 512x512 (4.97 -> 1.1 ms, 1 thread),
/// whose output rows share their input rows 16 at a time.
func resizeForward(_ x: Tensor, _ r: Resize) -> Tensor {
    Tensor(shape: [x.shape[0], x.shape[1], r.height, r.width]) { ys in
        resize(x, r, into: ys.baseAddress!, sampleStride: x.shape[1] * r.height * r.width)
    }
}

/// `resizeForward` written to `out`, sample `n`'s resized channels from
/// `out + n * sampleStride` on (a concat's channels of its result).
private func resize(_ x: Tensor, _ r: Resize, into out: UnsafeMutablePointer<Float>, sampleStride: Int) {
    let (channels, height, width, outHeight, outWidth) = (x.shape[1], x.shape[2], x.shape[3], r.height, r.width)
    let rows = sourceCoordinates(outHeight, from: height, r), cols = sourceCoordinates(outWidth, from: width, r)
    x.data.withUnsafeBufferPointer { xs in
        cols.withUnsafeBufferPointer { cols in
            rows.withUnsafeBufferPointer { rows in
                parallelFor(x.shape[0] * channels, scratch: 2 * outWidth) { plane, lines in
                    let input = xs.baseAddress! + plane * height * width
                    let output = out + plane / channels * sampleStride + plane % channels * outHeight * outWidth
                    /// Input row `y` blended horizontally into `line`.
                    func blendRow(_ y: Int, into line: UnsafeMutablePointer<Float>) {
                        let source = input + y * width
                        for ox in 0..<outWidth {
                            let (x0, x1, fx) = cols[ox]
                            line[ox] = source[x0] * (1 - fx) + source[x1] * fx
                        }
                    }
                    var (upper, lower) = (lines, lines + outWidth)
                    var held = (-1, -1)  // the input rows in `upper` and `lower`
                    for oy in 0..<outHeight {
                        let (y0, y1, fy) = rows[oy]
                        if held.0 != y0 {
                            if held.1 == y0 { swap(&upper, &lower); held.1 = -1 } else { blendRow(y0, into: upper) }
                        }
                        if held.1 != y1 { blendRow(y1, into: lower) }
                        held = (y0, y1)
                        weightedSum(output + oy * outWidth, upper, 1 - fy, lower, fy, outWidth)
                    }
                }
            }
        }
    }
}

/// Resizing `[N, C, D, H, W]` (see `Resize3d`): every slice's plane by
/// `resizeForward`, then every column of the resized slices over depth.
func resize3dForward(_ x: Tensor, _ r: Resize3d) -> Tensor {
    let (n, c, depth) = (x.shape[0], x.shape[1], x.shape[2]), columns = r.plane.height * r.plane.width
    let planes = resizeForward(Tensor(shape: [n, c * depth, x.shape[3], x.shape[4]], data: x.data), r.plane)
    let y = resizeForward(Tensor(shape: [n, c, depth, columns], data: planes.data), r.depthResize(columns: columns))
    return Tensor(shape: [n, c, r.depth, r.plane.height, r.plane.width], data: y.data)
}

/// The adjoint of `resize3dForward`: the depth pass's adjoint, then the planes'.
func resize3dBackward(_ gradient: Tensor, inputShape: [Int], _ r: Resize3d) -> Tensor {
    let (n, c, depth) = (inputShape[0], inputShape[1], inputShape[2]), columns = r.plane.height * r.plane.width
    let planes = resizeBackward(Tensor(shape: [n, c, r.depth, columns], data: gradient.data),
                                inputShape: [n, c, depth, columns], r.depthResize(columns: columns))
    let dx = resizeBackward(Tensor(shape: [n, c * depth, r.plane.height, r.plane.width], data: planes.data),
                            inputShape: [n, c * depth, inputShape[3], inputShape[4]], r.plane)
    return Tensor(shape: inputShape, data: dx.data)
}

/// The adjoint of `resizeForward` (given `gradient = dL/dy`): each output
/// adds its `g` to the (up to) four inputs it read, with its weights.
func resizeBackward(_ gradient: Tensor, inputShape: [Int], _ r: Resize) -> Tensor {
    let (height, width, outHeight, outWidth) = (inputShape[2], inputShape[3], r.height, r.width)
    let rows = sourceCoordinates(outHeight, from: height, r), cols = sourceCoordinates(outWidth, from: width, r)
    var dx = Tensor(zeros: inputShape)
    gradient.data.withUnsafeBufferPointer { gs in
        dx.data.withUnsafeMutableBufferPointer { dxs in
            parallelFor(inputShape[0] * inputShape[1]) { plane in
                let output = gs.baseAddress! + plane * outHeight * outWidth
                let target = dxs.baseAddress! + plane * height * width
                for oy in 0..<outHeight {
                    let (y0, y1, fy) = rows[oy]
                    for ox in 0..<outWidth {
                        let (x0, x1, fx) = cols[ox]
                        let g = output[oy * outWidth + ox], top = g * (1 - fy), bottom = g * fy
                        target[y0 * width + x0] += top * (1 - fx)
                        target[y0 * width + x1] += top * fx
                        target[y1 * width + x0] += bottom * (1 - fx)
                        target[y1 * width + x1] += bottom * fx
                    }
                }
            }
        }
    }
    return dx
}

/// For each of `count` output indices, the two source indices of an input
/// of `size` and the weight of the second (PyTorch's float arithmetic, so
/// the same indices as `F.interpolate`).
func sourceCoordinates(_ count: Int, from size: Int, _ r: Resize) -> [(Int, Int, Float)] {
    (0..<count).map { i in
        switch r.mode {
        case .nearest:
            let index = Swift.min(Int((Float(i) * (Float(size) / Float(count))).rounded(.down)), size - 1)
            return (index, index, 0)
        case .bilinear:
            let source: Float
            if r.alignCorners {
                source = count > 1 ? Float(i) * (Float(size - 1) / Float(count - 1)) : 0
            } else {
                source = Swift.max((Float(i) + 0.5) * (Float(size) / Float(count)) - 0.5, 0)
            }
            let low = Swift.min(Int(source), size - 1)
            return (low, Swift.min(low + 1, size - 1), source - Float(low))
        }
    }
}

/// ShuffleNet's channel shuffle with `groups` groups: output channel
/// `j g + i` is input channel `i k + j` (`k = C / g`); a shuffle with `k`
/// groups undoes it, so it is its own backward's form.
func shuffleChannels(_ x: Tensor, groups: Int) -> Tensor {
    let (batch, channels) = (x.shape[0], x.shape[1]), inner = x.count / max(batch * channels, 1)
    let perGroup = channels / groups
    return x.data.withUnsafeBufferPointer { xs in
        Tensor(shape: x.shape) { ys in
            parallelFor(batch * channels) { job in
                let (n, o) = (job / channels, job % channels)
                let source = (o % groups) * perGroup + o / groups
                (ys.baseAddress! + (n * channels + o) * inner).update(from: xs.baseAddress! + (n * channels + source) * inner,
                                                                     count: inner)
            }
        }
    }
}

/// Channels `start ..< start + count` of `x`.
func channelSlice(_ x: Tensor, start: Int, count: Int) -> Tensor {
    let (batch, channels) = (x.shape[0], x.shape[1]), inner = x.count / max(batch * channels, 1)
    var shape = x.shape
    shape[1] = count
    return x.data.withUnsafeBufferPointer { xs in
        Tensor(shape: shape) { ys in
            for n in 0..<batch {
                (ys.baseAddress! + n * count * inner).update(from: xs.baseAddress! + (n * channels + start) * inner,
                                                             count: count * inner)
            }
        }
    }
}

/// Gradient of `channelSlice`: `gradient` placed at channels `start...` of zeros shaped like the input.
func channelSliceBackward(_ gradient: Tensor, start: Int, inputShape: [Int]) -> Tensor {
    let (batch, channels, count) = (inputShape[0], inputShape[1], gradient.shape[1])
    let inner = gradient.count / max(batch * count, 1)
    var dx = Tensor(zeros: inputShape)
    gradient.data.withUnsafeBufferPointer { gs in
        dx.data.withUnsafeMutableBufferPointer { dxs in
            for n in 0..<batch {
                (dxs.baseAddress! + (n * channels + start) * inner).update(from: gs.baseAddress! + n * count * inner,
                                                                         count: count * inner)
            }
        }
    }
    return dx
}
