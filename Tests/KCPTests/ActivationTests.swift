import Glibc
import Testing
@testable import KCP

// The activation family (one op, a kind and two constants): literal values,
// every kind against a double reference through a network, finite
// differences away from each kind's kinks, and the `keepsZero` rule.

struct ActivationCase: Sendable, CustomTestStringConvertible {
    var activation: Activation
    /// Where the derivative jumps (or the function does): the checks keep off them.
    var kinks: [Float]
    var testDescription: String { "\(activation.kind) (\(activation.alpha), \(activation.beta))" }
}

/// One case per kind, with PyTorch's constants where it has defaults.
let activationCases: [ActivationCase] = [
    ActivationCase(activation: .relu, kinks: [0]),
    ActivationCase(activation: Activation(.clip, alpha: -1, beta: 2), kinks: [-1, 2]),
    ActivationCase(activation: Activation(.leakyRelu, alpha: 0.1), kinks: [0]),
    ActivationCase(activation: .sigmoid, kinks: []),
    ActivationCase(activation: Activation(.tanh), kinks: []),
    ActivationCase(activation: Activation(.silu), kinks: []),
    ActivationCase(activation: Activation(.gelu), kinks: []),
    ActivationCase(activation: Activation(.geluTanh), kinks: []),
    ActivationCase(activation: Activation(.hardswish), kinks: [-3, 3]),
    ActivationCase(activation: Activation(.hardsigmoid, alpha: 1.0 / 6, beta: 0.5), kinks: [-3, 3]),
    ActivationCase(activation: Activation(.elu, alpha: 0.7), kinks: [0]),
    ActivationCase(activation: Activation(.mish), kinks: []),
    // Threshold at alpha x = beta, x = 1.5: the function itself jumps there (as PyTorch's does).
    ActivationCase(activation: Activation(.softplus, alpha: 2, beta: 3), kinks: [1.5]),
    ActivationCase(activation: Activation(.affine, alpha: -1.5, beta: 0.25), kinks: []),
]

/// Uniform values in `-5...5`, each at least `margin` away from every kink.
func activationPoints(_ shape: [Int], seed: UInt64, kinks: [Float], margin: Float = 0.05) -> Tensor {
    var x = pwTensor(shape, seed: seed, in: -5...5)
    for i in x.data.indices {
        for kink in kinks where abs(x.data[i] - kink) < margin { x.data[i] = kink + (x.data[i] < kink ? -margin : margin) }
    }
    return x
}

@Suite("Activations")
struct ActivationTests {
    @Test func everyKindHasACase() {
        #expect(Set(activationCases.map(\.activation.kind)) == Set(Activation.Kind.allCases))
    }

    @Test func literalValues() {
        let values = { (a: Activation, x: [Float]) in activationForward(Tensor(shape: [x.count], data: x), a).data }
        // MobileNetV3: hardswish(x) = x relu6(x + 3) / 6, hardsigmoid(x) = relu6(x + 3) / 6.
        fdExpectEqual(values(Activation(.hardswish), [-4, -3, -1.5, 0, 1.5, 3, 4]), [0, 0, -0.375, 0, 1.125, 3, 4],
                      "hardswish")
        fdExpectEqual(values(Activation(.hardsigmoid, alpha: 1.0 / 6, beta: 0.5), [-4, -3, 0, 1.5, 3, 4]),
                      [0, 0, 0.5, 0.75, 1, 1], "hardsigmoid")
        fdExpectEqual(values(Activation(.clip, alpha: 0, beta: 6), [-1, 3, 7]), [0, 3, 6], "relu6")
        fdExpectEqual(values(Activation(.leakyRelu, alpha: 0.2), [-5, 2]), [-1, 2], "leaky relu")
        fdExpectEqual(values(Activation(.elu, alpha: 1), [-logf(2), 2]), [-0.5, 2], "elu")
        fdExpectEqual(values(Activation(.softplus, alpha: 1, beta: 20), [0, 30]), [log(2), 30], "softplus")
        fdExpectEqual(values(.sigmoid, [0, logf(3)]), [0.5, 0.75], "sigmoid")
        fdExpectEqual(values(Activation(.tanh), [0, logf(2)]), [0, 0.6], "tanh")
        fdExpectEqual(values(Activation(.silu), [0, logf(3)]), [0, 0.75 * log(3)], "silu")
        fdExpectEqual(values(Activation(.gelu), [0, 1, -1]), [0, 0.8413447460685429, -0.15865525393145707], "gelu")
        fdExpectEqual(values(Activation(.geluTanh), [0, 1, -1]), [0, 0.8411919906082768, -0.15880800939172324],
                      "gelu (tanh)")
        fdExpectEqual(values(Activation(.mish), [0, 1, -1]), [0, 0.8650983882673103, -0.30340146137410895], "mish")
        fdExpectEqual(values(Activation(.affine, alpha: 2, beta: 1), [3, -0.5]), [7, 0], "affine")
    }

    @Test(arguments: activationCases)
    func forwardMatchesTheReference(_ c: ActivationCase) throws {
        let x = activationPoints([2, 3, 4, 5], seed: 30, kinks: [])
        let expected = NetReference(shape: x.shape, data: x.data.map { naiveActivation(Double($0), c.activation) })
        netExpect(try netRunOp(.activation(c.activation), [x]), expected, tolerance: 1e-5)
    }

    @Test(arguments: activationCases)
    func finiteDifferences(_ c: ActivationCase) {
        let x = activationPoints([2, 3, 4, 5], seed: 31, kinks: c.kinks)
        pwCheckBackward([x], what: "\(c.activation.kind)", { activationForward($0[0], c.activation) }) {
            [pwActivationBackward(x, c.activation, $0)]
        }
        fdCheckOp(.activation(c.activation), [x], seed: 32)
    }

    @Test("sigmoid, SiLU and its backward by the vector exp: within 3 ulp of doubles over the normal range, the same bits on every set, glibc's results at the ends")
    func exponentialActivations() {
        // Every 1/64 from -90 to 90 with the ends of the range and the specials, not a multiple of 16.
        let values = (-5760...5760).map { Float($0) / 64 } + [88.72, 88.73, -87.33, -87.34, .infinity, -.infinity, .nan, -0.0]
        let x = Tensor(shape: [values.count], data: values), g = Tensor(shape: [values.count], data: values.map { $0 / 7 + 1 })
        let results = InstructionSet.supported.map { set in
            withInstructionSet(set) {
                [activationForward(x, .sigmoid), activationForward(x, Activation(.silu)),
                 activationBackward(x, Activation(.silu), output: x, gradient: g)]
            }
        }
        let bits = results.map { $0.map { $0.data.map(\.bitPattern) } }  // NaN included
        for (set, result) in zip(InstructionSet.supported, bits) {
            #expect(result == bits[0], "\(set) differs from \(InstructionSet.supported[0])")
        }
        let (sigmoid, silu, gradient) = (results[0][0].data, results[0][1].data, results[0][2].data)
        // Relative errors of the sigmoid and SiLU; the backward's `1 + x (1 - s)` cancels near x = -1.28,
        // so its error is taken relative to `|g| (1 + |x|)`.
        var worst = (0.0, 0.0)
        for (i, v) in values.enumerated() where v.isFinite && v > -87.3 && v < 88.7 {
            let x = Double(v), s = 1 / (1 + exp(-x)), d = Double(g.data[i])
            for (got, want) in [(sigmoid[i], s), (silu[i], x * s)] where abs(want) >= Double(Float.leastNormalMagnitude) {
                worst.0 = max(worst.0, abs(Double(got) - want) / abs(want))
            }
            worst.1 = max(worst.1, abs(Double(gradient[i]) - d * s * (1 + x * (1 - s))) / (abs(d) * (1 + abs(x))))
        }
        let ulp = Double(Float.ulpOfOne) / 2
        #expect(worst.0 <= 3 * ulp && worst.1 <= 4 * ulp, "largest relative errors \(worst)")
        // glibc's expf at the ends: exp(-x) overflows past 88.72 (sigmoid 0, SiLU -0 or NaN at -inf), NaN stays.
        let ends = values.suffix(8).map { Float($0) }, n = values.count - 8
        let glibc = ends.map { 1 / (1 + expf(-$0)) }
        #expect(Array(sigmoid[n...]).map(\.bitPattern).enumerated().allSatisfy { k, bits in
            ends[k].isNaN ? Float(bitPattern: bits).isNaN : abs(Float(bitPattern: bits) - glibc[k]) <= 1e-6 * max(1, glibc[k])
        })
        #expect(silu[n + 5].isNaN && silu[n + 6].isNaN && silu[n + 4] == .infinity && sigmoid[n + 5] == 0)
    }

    /// `keepsZero` says whether a pruned (zero) channel stays zero: it must be `f(0) == 0`.
    @Test(arguments: activationCases + [ActivationCase(activation: Activation(.clip, alpha: 0.5, beta: 2), kinks: []),
                                        ActivationCase(activation: Activation(.affine, alpha: 2, beta: 0), kinks: [])])
    func keepsZeroIsFOfZeroEqualsZero(_ c: ActivationCase) {
        let atZero = activationForward(Tensor(zeros: [1]), c.activation).data[0]
        #expect(c.activation.keepsZero == (atZero == 0), "f(0) = \(atZero)")
    }
}
