import Glibc
import Testing
@testable import KCP

// Backward of the element-wise, softmax and stereo ops: central finite
// differences of `L(x) = sum(r * f(x))` (in Double, fixed random `r`) plus
// hand-computed cases. Helpers carry a `pw` prefix (shared with LossTests.swift).

// MARK: - Helpers

/// Uniform floats in `range`, seeded.
func pwTensor(_ shape: [Int], seed: UInt64, in range: ClosedRange<Float> = -1...1) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let width = range.upperBound - range.lowerBound
    return Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in range.lowerBound + Float(rng.nextUnit()) * width })
}

/// Floats with magnitude in `magnitudes` and a random sign: keeps inputs off a kink at 0.
func pwSigned(_ shape: [Int], seed: UInt64, magnitudes: ClosedRange<Float>) -> Tensor {
    var rng = SplitMix64(seed: seed ^ 0x5EED)
    var x = pwTensor(shape, seed: seed, in: magnitudes)
    for i in x.data.indices where rng.next() & 1 == 0 { x.data[i] = -x.data[i] }
    return x
}

/// `max_i |analytic_i - numeric_i| / max_i |numeric_i|`: the error relative to the gradient's scale.
func pwRelativeError(_ analytic: [Float], _ numeric: [Double]) -> Double {
    let worst = zip(analytic, numeric).map { abs(Double($0) - $1) }.max() ?? 0
    return worst / max(numeric.map(abs).max() ?? 0, 1e-6)
}

/// Central differences of `value` with respect to every element of `x`, in Double.
/// The step is the float32 difference actually taken, `Float(x + eps) - Float(x - eps)`.
func pwNumericGradient(_ x: Tensor, eps: Float, _ value: (Tensor) throws -> Double) rethrows -> [Double] {
    var numeric = [Double](repeating: 0, count: x.count)
    for i in 0..<x.count {
        var plus = x, minus = x
        plus.data[i] += eps
        minus.data[i] -= eps
        numeric[i] = (try value(plus) - value(minus)) / (Double(plus.data[i]) - Double(minus.data[i]))
    }
    return numeric
}

/// Checks `backward(r)` (one gradient per input) against central differences
/// of `L = sum(r * f(inputs))` for a fixed random `r`: relative error below 1e-3
/// (float32 forwards give about 5e-5 here).
func pwCheckBackward(_ inputs: [Tensor], eps: Float = 1e-2, what: String,
                     sourceLocation: SourceLocation = #_sourceLocation,
                     _ f: ([Tensor]) -> Tensor, backward: (Tensor) -> [Tensor])
{
    let y = f(inputs)
    let r = pwTensor(y.shape, seed: 1234)
    let analytic = backward(r)
    #expect(analytic.count == inputs.count, sourceLocation: sourceLocation)
    for (k, x) in inputs.enumerated() {
        #expect(analytic[k].shape == x.shape, "\(what): gradient \(k) shape", sourceLocation: sourceLocation)
        let numeric = pwNumericGradient(x, eps: eps) { xk in
            var moved = inputs
            moved[k] = xk
            return zip(f(moved).data, r.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        let error = pwRelativeError(analytic[k].data, numeric)
        #expect(error < 1e-3, "\(what): input \(k) relative error \(error)", sourceLocation: sourceLocation)
    }
}

/// `activationBackward` given only the forward's input: the output is computed here.
func pwActivationBackward(_ x: Tensor, _ a: Activation, _ gradient: Tensor) -> Tensor {
    activationBackward(x, a, output: activationForward(x, a), gradient: gradient)
}

// MARK: - Tests

@Suite("Backward of element-wise, softmax and stereo ops")
struct BackwardPointwiseTests {
    @Test("relu: finite differences away from 0; derivative 0 at x == 0")
    func relu() {
        let x = pwSigned([2, 3, 4, 5], seed: 1, magnitudes: 0.1...1)
        pwCheckBackward([x], what: "relu", { activationForward($0[0], .relu) }) { [pwActivationBackward(x, .relu, $0)] }
        let literal = pwActivationBackward(Tensor(shape: [4], data: [-1, 0, 2, 1e-30]), .relu, Tensor(shape: [4], data: [5, 6, 7, 8]))
        #expect(literal.data == [0, 0, 7, 8])
    }

    @Test("leaky relu: finite differences away from 0; slope alpha at x == 0", arguments: [Float(0.01), 0.2, 1.5])
    func leakyRelu(alpha: Float) {
        let x = pwSigned([2, 3, 4, 5], seed: 2, magnitudes: 0.1...1)
        let leaky = Activation(.leakyRelu, alpha: alpha)
        pwCheckBackward([x], what: "leaky relu \(alpha)", { activationForward($0[0], leaky) }) {
            [pwActivationBackward(x, leaky, $0)]
        }
        let literal = pwActivationBackward(Tensor(shape: [3], data: [-2, 0, 3]), leaky, Tensor(shape: [3], data: [1, 2, 3]))
        #expect(literal.data == [alpha, 2 * alpha, 3])
    }

    @Test("sigmoid: finite differences; y (1 - y) at y = 1/2 and 3/4")
    func sigmoid() {
        let x = pwTensor([2, 3, 4, 5], seed: 3, in: -4...4)
        pwCheckBackward([x], what: "sigmoid", { activationForward($0[0], .sigmoid) }) { [pwActivationBackward(x, .sigmoid, $0)] }
        // The sigmoid backward reads only the forward's output y.
        let literal = activationBackward(Tensor(zeros: [2]), .sigmoid, output: Tensor(shape: [2], data: [0.5, 0.75]),
                                         gradient: Tensor(shape: [2], data: [2, 16]))
        #expect(literal.data == [0.5, 3])
    }

    @Test("add passes the gradient to both inputs; mul multiplies it by the other input; sub, div: finite differences",
          arguments: Binary.Kind.allCases)
    func sameShapeBinary(_ kind: Binary.Kind) {
        let a = pwTensor([2, 3, 4, 5], seed: 4), b = pwTensor([2, 3, 4, 5], seed: 5, in: kind == .div ? 0.5...2 : -2...2)
        pwCheckBackward([a, b], what: "\(kind)", { binaryForward($0[0], $0[1], Binary(kind), outputShape: a.shape) }) {
            let (da, db) = binaryBackward(a, b, Binary(kind), gradient: $0)
            return [da, db]
        }
    }

    @Test("mul by hand")
    func mulLiteral() {
        let (da, db) = binaryBackward(Tensor(shape: [2], data: [2, 3]), Tensor(shape: [2], data: [5, 7]), .mul,
                                      gradient: Tensor(shape: [2], data: [1, -2]))
        #expect(da.data == [5, -14] && db.data == [2, -6])
    }

    @Test("element-wise backwards over several parallel chunks match the scalar formulas")
    func manyChunks() {
        let x = pwTensor([3, 5, 70, 41], seed: 6, in: -3...3), g = pwTensor([3, 5, 70, 41], seed: 7)
        let y = activationForward(x, .sigmoid)
        #expect(pwActivationBackward(x, .relu, g).data == zip(x.data, g.data).map { $0 > 0 ? $1 : 0 })
        #expect(pwActivationBackward(x, Activation(.leakyRelu, alpha: 0.1), g).data
                == zip(x.data, g.data).map { $0 > 0 ? $1 : 0.1 * $1 })
        #expect(activationBackward(x, .sigmoid, output: y, gradient: g).data == zip(y.data, g.data).map { $1 * $0 * (1 - $0) })
        #expect(binaryBackward(x, y, .mul, gradient: g).b.data == zip(x.data, g.data).map { $1 * $0 })
    }

    @Test("softmax over channels: finite differences", arguments: [[3, 5], [2, 4, 3, 2], [1, 1, 2, 2]])
    func softmax(shape: [Int]) {
        let x = pwTensor(shape, seed: 8, in: -2...2)
        let y = softmaxForward(x)
        pwCheckBackward([x], what: "softmax \(shape)", { softmaxForward($0[0]) }) {
            [softmaxBackward(output: y, gradient: $0)]
        }
    }

    @Test("softmax: y_c (g_c - sum_k g_k y_k) by hand")
    func softmaxLiteral() {
        // Two samples of [N, 2]: y = (1/2, 1/2) with g = (1, 0); y = (1/4, 3/4) with g = (4, 0).
        let dx = softmaxBackward(output: Tensor(shape: [2, 2], data: [0.5, 0.5, 0.25, 0.75]),
                                 gradient: Tensor(shape: [2, 2], data: [1, 0, 4, 0]))
        #expect(dx.data == [0.25, -0.25, 0.75, -0.75])
        // A constant gradient does not move a softmax.
        let flat = softmaxBackward(output: softmaxForward(pwTensor([2, 3, 2, 2], seed: 9)), gradient: Tensor(
            shape: [2, 3, 2, 2], data: [Float](repeating: 3, count: 24)))
        #expect(flat.data.allSatisfy { abs($0) < 1e-6 })
    }

    @Test("correlation: finite differences for left and right",
          arguments: [([2, 3, 4, 6], 4, Float(1) / 3), ([1, 2, 3, 3], 5, 1), ([1, 2, 2, 5], 1, 0.5)])
    func correlation(shape: [Int], maxDisparity: Int, scale: Float) {
        let left = pwTensor(shape, seed: 10), right = pwTensor(shape, seed: 11)
        pwCheckBackward([left, right], what: "correlation \(shape) D \(maxDisparity)", {
            correlationForward($0[0], $0[1], maxDisparity: maxDisparity, scale: scale)
        }) {
            let d = correlationBackward(left, right, maxDisparity: maxDisparity, scale: scale, gradient: $0)
            return [d.left, d.right]
        }
    }

    @Test("correlation: hand-computed gradients; gradient where w < d is ignored")
    func correlationLiteral() {
        let left = Tensor(shape: [1, 1, 1, 3], data: [1, 2, 3]), right = Tensor(shape: [1, 1, 1, 3], data: [4, 5, 6])
        // d = 0: (1, 0, 2); d = 1: (5, 1, 1), whose first entry (w = 0 < d) has no input.
        let g = Tensor(shape: [1, 2, 1, 3], data: [1, 0, 2, 5, 1, 1])
        let d = correlationBackward(left, right, maxDisparity: 2, scale: 0.5, gradient: g)
        // dleft[w] = 0.5 (g0[w] r[w] + g1[w] r[w - 1]); dright[v] = 0.5 (g0[v] l[v] + g1[v + 1] l[v + 1]).
        #expect(d.left.data == [2, 2, 8.5])
        #expect(d.right.data == [1.5, 1.5, 3])
    }

    @Test("soft-argmin: finite differences", arguments: [[2, 4, 2, 3], [1, 1, 2, 2], [1, 7, 1, 1]])
    func softArgmin(shape: [Int]) {
        let x = pwTensor(shape, seed: 12, in: -2...2)
        pwCheckBackward([x], what: "soft-argmin \(shape)", { softArgminForward($0[0], sign: -1) }) {
            [softArgminBackward(x, sign: -1, gradient: $0)]
        }
    }

    @Test("soft-argmin: g p_d (y - d) by hand")
    func softArgminLiteral() {
        // Equal costs over two disparities: p = (1/2, 1/2), y = 1/2.
        let dx = softArgminBackward(Tensor(shape: [1, 2, 1, 1], data: [0, 0]), sign: -1,
                                    gradient: Tensor(shape: [1, 1, 1, 1], data: [2]))
        #expect(dx.data == [0.5, -0.5])
        // Costs (0, ln 3): p = (3/4, 1/4), y = 1/4; dx = g (3/4 * 1/4, 1/4 * (1/4 - 1)) = g (3/16, -3/16).
        let skewed = softArgminBackward(Tensor(shape: [1, 2, 1, 1], data: [0, logf(3)]), sign: -1,
                                        gradient: Tensor(shape: [1, 1, 1, 1], data: [16]))
        expectClose(skewed.data, [3, -3], tolerance: 1e-5)
    }
}

extension ThreadsTests {
    // In the serialized thread-count suite, so no other test sees the count change.
    @Test("correlation, cost volume, softmax and soft-argmin backward are bitwise the same for 1, 2 and 3 threads")
    func backwardThreads() throws {
        let left = pwTensor([2, 5, 6, 9], seed: 20), right = pwTensor([2, 5, 6, 9], seed: 21)
        let g = pwTensor([2, 7, 6, 9], seed: 22), x = pwTensor([3, 7, 6, 9], seed: 23)
        let gx = pwTensor([3, 7, 6, 9], seed: 24), gs = pwTensor([3, 1, 6, 9], seed: 25)
        let run = {
            let d = correlationBackward(left, right, maxDisparity: 7, scale: 0.2, gradient: g)
            let v = groupCorrelationBackward(left, right, maxDisparity: 7, groups: 5, scale: 0.2,
                                             gradient: Tensor(shape: [2, 5, 7, 6, 9], data: (0..<3780).map { Float($0 % 13) }))
            let gc = Tensor(shape: [2, 10, 7, 6, 9], data: (0..<7560).map { Float($0 % 11) })
            let c = concatenationVolumeBackward(inputShape: left.shape, maxDisparity: 7, gradient: gc)
            return [d.left, d.right, v.left, v.right, c.left, c.right,
                    softmaxBackward(output: softmaxForward(x), gradient: gx), softArgminBackward(x, sign: -1, gradient: gs)]
        }
        try withSteadyInstructionSet {
            let one = try withThreads(1, run), two = try withThreads(2, run), three = try withThreads(3, run)
            #expect(one == two && one == three)
        }
    }
}
