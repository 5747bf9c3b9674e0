import Glibc

/// Element-wise activations and binary ops, in parallel chunks.

func reluForward(_ x: Tensor) -> Tensor { map(x) { Swift.max($0, 0) } }

func leakyReluForward(_ x: Tensor, alpha: Float) -> Tensor { map(x) { $0 >= 0 ? $0 : alpha * $0 } }

/// `1 / (1 + exp(-x))`.
func sigmoidForward(_ x: Tensor) -> Tensor { map(x) { 1 / (1 + expf(-$0)) } }

func addForward(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, +) }

func mulForward(_ a: Tensor, _ b: Tensor) -> Tensor { combine(a, b, *) }

/// Elements per parallel chunk: large enough to amortise dispatch.
private let chunk = 1 << 14

private func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    var y = x
    y.data.withUnsafeMutableBufferPointer { ys in
        let count = ys.count
        parallelFor((count + chunk - 1) / chunk) { block in
            for i in (block * chunk)..<min(count, (block + 1) * chunk) { ys[i] = f(ys[i]) }
        }
    }
    return y
}

private func combine(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    var y = a
    b.data.withUnsafeBufferPointer { bs in
        y.data.withUnsafeMutableBufferPointer { ys in
            let count = ys.count
            parallelFor((count + chunk - 1) / chunk) { block in
                for i in (block * chunk)..<min(count, (block + 1) * chunk) { ys[i] = f(ys[i], bs[i]) }
            }
        }
    }
    return y
}
