import Glibc

/// Element-wise activations and binary ops, in parallel chunks, each forward
/// followed by its backward. A backward takes what its forward saw or returned
/// and `gradient = dL/dy`, and returns `dL/dx`.

func reluForward(_ x: Tensor) -> Tensor { map(x) { Swift.max($0, 0) } }

/// `dL/dx = gradient * [x > 0]`: the derivative at `x == 0` is taken as 0,
/// as PyTorch's `threshold_backward` does.
func reluBackward(_ x: Tensor, gradient: Tensor) -> Tensor { combine(x, gradient) { $0 > 0 ? $1 : 0 } }

func leakyReluForward(_ x: Tensor, alpha: Float) -> Tensor { map(x) { $0 >= 0 ? $0 : alpha * $0 } }

/// `dL/dx = gradient` where `x > 0`, `alpha * gradient` elsewhere (at `x == 0`
/// too, as PyTorch's `leaky_relu_backward`).
func leakyReluBackward(_ x: Tensor, alpha: Float, gradient: Tensor) -> Tensor {
    combine(x, gradient) { $0 > 0 ? $1 : alpha * $1 }
}

/// `1 / (1 + exp(-x))`.
func sigmoidForward(_ x: Tensor) -> Tensor { map(x) { 1 / (1 + expf(-$0)) } }

/// `dL/dx = gradient * y * (1 - y)` from the forward's output `y = sigmoid(x)`.
func sigmoidBackward(output: Tensor, gradient: Tensor) -> Tensor { combine(output, gradient) { $1 * $0 * (1 - $0) } }

/// Backward: the identity for both inputs (`dL/da = dL/db = gradient`), so
/// there is no `addBackward`.
func addForward(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, +) }

func mulForward(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, *) }

/// `(dL/da, dL/db) = (gradient * b, gradient * a)`.
func mulBackward(_ a: Tensor, _ b: Tensor, gradient: Tensor) -> (Tensor, Tensor) {
    (combine(gradient, b, *), combine(gradient, a, *))
}

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

@inline(__always)
private func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    x.data.withUnsafeBufferPointer { xs in
        Tensor(shape: x.shape) { ys in
            let count = ys.count
            parallelFor((count + chunk - 1) / chunk) { block in
                for i in (block * chunk)..<min(count, (block + 1) * chunk) { ys[i] = f(xs[i]) }
            }
        }
    }
}

@inline(__always)
private func combine(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
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
