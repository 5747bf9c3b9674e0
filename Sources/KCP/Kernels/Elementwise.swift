import Glibc

/// Element-wise helpers: parallel maps, the softmax backward, in-place sums.
/// The activations are in Activations.swift, the binary ops in Broadcasting.swift.

/// Backward of `softmaxForward` (Normalization.swift; it lives here beside the
/// other activations' backwards): with `y = softmax(x)` over channels of
/// `[N, C, ...]`, `dL/dx_c = y_c * (gradient_c - sum_k gradient_k * y_k)` at
/// each position. Parallel over samples, like the forward.
func softmaxBackward(output: Tensor, gradient: Tensor) -> Tensor {
    precondition(output.shape == gradient.shape, "output \(output.shape) and gradient \(gradient.shape) differ")
    let channels = output.shape[1]
    var dx = gradient
    forEachChannelColumn(&dx, alongside: output) { g, y, stride in
        var dot: Float = 0
        for c in 0..<channels { dot += g[c * stride] * y![c * stride] }
        for c in 0..<channels { g[c * stride] = y![c * stride] * (g[c * stride] - dot) }
    }
    return dx
}

/// `x += y` element-wise, in place (gradients of a value's several users).
func addAssign(_ x: inout Tensor, _ y: Tensor) {
    precondition(x.shape == y.shape, "shapes \(x.shape) and \(y.shape) differ")
    y.data.withUnsafeBufferPointer { ys in
        x.data.withUnsafeMutableBufferPointer { xs in
            let count = xs.count
            parallelFor((count + chunk - 1) / chunk) { block in
                let first = block * chunk
                addScaled(xs.baseAddress! + first, ys.baseAddress! + first, 1, min(chunk, count - first))
            }
        }
    }
}

/// Elements per parallel chunk: large enough to amortise dispatch.
private let chunk = 1 << 14

/// `y[i] = f(x[i])` in parallel chunks.
@inline(__always)
func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    x.data.withUnsafeBufferPointer { xs in
        Tensor(shape: x.shape) { ys in
            let count = ys.count
            parallelFor((count + chunk - 1) / chunk) { block in
                for i in (block * chunk)..<min(count, (block + 1) * chunk) { ys[i] = f(xs[i]) }
            }
        }
    }
}

/// `y[i] = f(a[i], b[i])` for equally shaped `a` and `b`, in parallel chunks.
@inline(__always)
func combine(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    precondition(a.shape == b.shape, "shapes \(a.shape) and \(b.shape) differ")
    return a.data.withUnsafeBufferPointer { xs in
        b.data.withUnsafeBufferPointer { bs in
            Tensor(shape: a.shape) { ys in
                let count = ys.count
                parallelFor((count + chunk - 1) / chunk) { block in
                    for i in (block * chunk)..<min(count, (block + 1) * chunk) { ys[i] = f(xs[i], bs[i]) }
                }
            }
        }
    }
}
