import Testing
@testable import KCP

// Binary ops with NumPy broadcasting: two inputs, or one input and a constant
// parameter shaped like one sample (`x op c`, or `c op x` with
// `constantFirst`). Literals, the double reference, and finite differences
// of both operands (the constant's gradient sums over what it broadcast along).

struct BroadcastCase: Sendable, CustomTestStringConvertible {
    var a: [Int]
    var b: [Int]
    var testDescription: String { "\(a) with \(b)" }
}

let broadcastCases: [BroadcastCase] = [
    BroadcastCase(a: [2, 3, 4, 5], b: [2, 3, 1, 1]),
    BroadcastCase(a: [2, 3, 4, 5], b: [1, 3, 4, 5]),
    BroadcastCase(a: [2, 3, 4, 5], b: [2, 1, 4, 1]),
    BroadcastCase(a: [2, 1, 4, 1], b: [2, 3, 4, 5]),
    BroadcastCase(a: [2, 1, 4, 5], b: [1, 3, 1, 5]),
    BroadcastCase(a: [2, 3, 4, 5], b: [2, 3, 4, 5]),
    BroadcastCase(a: [3, 7], b: [1, 7]),
]

/// Constant shapes (one sample of a `[2, 3, 4, 5]` input).
let constantShapes: [[Int]] = [[3, 1, 1], [1, 4, 5], [3, 4, 1], [3, 4, 5], [1, 1, 1]]

/// Operands for `kind`: divisors have magnitudes in 0.5...2, away from 0.
func broadcastOperand(_ shape: [Int], seed: UInt64, divisor: Bool) -> Tensor {
    divisor ? pwSigned(shape, seed: seed, magnitudes: 0.5...2) : pwTensor(shape, seed: seed, in: -2...2)
}

@Suite("Broadcasting binary ops")
struct BroadcastingTests {
    @Test func literals() throws {
        // [1, 2, 1, 1] (1, 2) against [1, 1, 1, 3] (10, 20, 30): a [1, 2, 1, 3] grid.
        let a = Tensor(shape: [1, 2, 1, 1], data: [1, 2]), b = Tensor(shape: [1, 1, 1, 3], data: [10, 20, 30])
        netExpect(try netRunOp(.binary(.add), [a, b]), shape: [1, 2, 1, 3], [11, 21, 31, 12, 22, 32])
        netExpect(try netRunOp(.binary(Binary(.sub)), [a, b]), shape: [1, 2, 1, 3], [-9, -19, -29, -8, -18, -28])
        netExpect(try netRunOp(.binary(.mul), [b, a]), shape: [1, 2, 1, 3], [10, 20, 30, 20, 40, 60])
        netExpect(try netRunOp(.binary(Binary(.div)), [b, a]), shape: [1, 2, 1, 3], [10, 20, 30, 5, 10, 15])
        // A constant per channel, after and before the input.
        let x = Tensor(shape: [1, 2, 1, 2], data: [1, 2, 3, 4]), c = Tensor(shape: [2, 1, 1], data: [2, 4])
        netExpect(try netRunOp(.binary(Binary(.sub)), [x], parameters: [c]), shape: [1, 2, 1, 2], [-1, 0, -1, 0])
        netExpect(try netRunOp(.binary(Binary(.sub, constantFirst: true)), [x], parameters: [c]), shape: [1, 2, 1, 2],
                  [1, 0, 1, 0])
        netExpect(try netRunOp(.binary(Binary(.div, constantFirst: true)), [x], parameters: [c]), shape: [1, 2, 1, 2],
                  [2, 1, 4 / 3, 1])
        // The constant's gradient sums over the batch and the positions it broadcast along.
        let g = binaryBackward(Tensor(shape: [2, 2, 1, 2], data: [1, 2, 3, 4, 5, 6, 7, 8]), c, .mul,
                               gradient: Tensor(shape: [2, 2, 1, 2], data: [Float](repeating: 1, count: 8)))
        #expect(g.a.data == [2, 2, 4, 4, 2, 2, 4, 4] && g.b.shape == [2, 1, 1] && g.b.data == [1 + 2 + 5 + 6, 3 + 4 + 7 + 8])
    }

    @Test(arguments: Binary.Kind.allCases, broadcastCases)
    func twoInputs(_ kind: Binary.Kind, _ c: BroadcastCase) throws {
        let a = broadcastOperand(c.a, seed: 40, divisor: false), b = broadcastOperand(c.b, seed: 41, divisor: kind == .div)
        let op = Op.binary(Binary(kind))
        let shape = try op.outputShape(inputs: [c.a, c.b], parameters: [])
        #expect(shape == zip(c.a, c.b).map { max($0, $1) })
        netExpect(op.forward([a, b], parameters: [], outputShape: shape), naiveBinary(a, b, kind))
        // A network's inputs share one batch size; inside it, the other dimensions broadcast.
        if c.a[0] == c.b[0] { netExpect(try netRunOp(op, [a, b]), naiveBinary(a, b, kind)) }
        fdCheckOp(op, [a, b], seed: 42)
    }

    @Test(arguments: Binary.Kind.allCases, constantShapes)
    func constantOperand(_ kind: Binary.Kind, _ shape: [Int]) throws {
        for constantFirst in [false, true] {
            let op = Binary(kind, constantFirst: constantFirst)
            let x = broadcastOperand([2, 3, 4, 5], seed: 43, divisor: kind == .div && constantFirst)
            let c = broadcastOperand(shape, seed: 44, divisor: kind == .div && !constantFirst)
            let sample = Tensor(shape: [1] + shape, data: c.data)
            let expected = constantFirst ? naiveBinary(sample, x, kind) : naiveBinary(x, sample, kind)
            netExpect(try netRunOp(.binary(op), [x], parameters: [c]), expected)
            fdCheckOp(.binary(op), [x], parameters: [c], seed: 45)
        }
    }

    @Test("long runs: broadcast loops over several parallel chunks match the reference")
    func manyRuns() throws {
        let a = pwTensor([3, 16, 40, 41], seed: 46), b = pwTensor([3, 16, 1, 41], seed: 47)
        for kind in Binary.Kind.allCases where kind != .div {
            netExpect(try netRunOp(.binary(Binary(kind)), [a, b]), naiveBinary(a, b, kind))
        }
    }
}
