import Glibc

/// Element-wise activations and binary ops.

func reluForward(_ x: Tensor) -> Tensor { map(x) { Swift.max($0, 0) } }

func leakyReluForward(_ x: Tensor, alpha: Float) -> Tensor { map(x) { $0 >= 0 ? $0 : alpha * $0 } }

/// `1 / (1 + exp(-x))`.
func sigmoidForward(_ x: Tensor) -> Tensor { map(x) { 1 / (1 + expf(-$0)) } }

func addForward(_ a: Tensor, _ b: Tensor) -> Tensor { zip(a, b, +) }

func mulForward(_ a: Tensor, _ b: Tensor) -> Tensor { zip(a, b, *) }

private func map(_ x: Tensor, _ f: (Float) -> Float) -> Tensor {
    Tensor(shape: x.shape, data: x.data.map(f))
}

private func zip(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    Tensor(shape: a.shape, data: (0..<a.count).map { f(a.data[$0], b.data[$0]) })
}
