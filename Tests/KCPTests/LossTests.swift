import Glibc
import Testing
@testable import KCP

// Training losses: hand-computed values and gradients, a Double reference for
// per-pixel cross-entropy, ignore labels and masks, argument errors, and
// central finite differences of each loss value (helpers in BackwardPointwiseTests.swift).

/// Checks `loss(x).gradient` against central differences of `loss(x).value`.
func pwCheckLoss(_ x: Tensor, eps: Float = 1e-3, what: String, sourceLocation: SourceLocation = #_sourceLocation,
                 _ loss: (Tensor) throws -> Loss) throws
{
    let analytic = try loss(x).gradient
    #expect(analytic.shape == x.shape, "\(what): gradient shape", sourceLocation: sourceLocation)
    let numeric = try pwNumericGradient(x, eps: eps) { try loss($0).value }
    let error = pwRelativeError(analytic.data, numeric)
    #expect(error < 1e-3, "\(what): relative error \(error)", sourceLocation: sourceLocation)
}

/// Cross-entropy of `[N, C, inner...]` logits in Double: mean of `log sum exp - logit[label]`
/// over labels other than `ignore`, and its gradient `(softmax - onehot) / count`.
func pwNaiveCrossEntropy(_ logits: Tensor, _ labels: [Int32], ignore: Int32?) -> (value: Double, gradient: [Double]) {
    let (batch, classes) = (logits.shape[0], logits.shape[1]), inner = logits.count / (batch * classes)
    let x = logits.data.map(Double.init)
    let p = naiveSoftmax(x, batch: batch, channels: classes)
    let count = Double(labels.filter { $0 != ignore }.count)
    var (value, gradient) = (0.0, [Double](repeating: 0, count: x.count))
    for (i, label) in labels.enumerated() where label != ignore {
        let index = { (c: Int) in ((i / inner) * classes + c) * inner + i % inner }
        value -= log(p[index(Int(label))]) / count
        for c in 0..<classes { gradient[index(c)] = (p[index(c)] - (c == Int(label) ? 1 : 0)) / count }
    }
    return (value, gradient)
}

@Suite("Training losses")
struct LossTests {
    // MARK: Cross-entropy

    @Test("cross-entropy of (0, ln 3) with label 1 is ln(4/3); gradient (1/4, -1/4)")
    func crossEntropyLiteral() throws {
        let loss = try crossEntropy(logits: Tensor(shape: [1, 2], data: [0, logf(3)]), labels: [1])
        #expect(abs(loss.value - log(4.0 / 3)) < 1e-6)
        expectClose(loss.gradient.data, [0.25, -0.25], tolerance: 1e-6)
        // Label 0 of the same logits: -log(1/4).
        #expect(abs(try crossEntropy(logits: Tensor(shape: [1, 2], data: [0, logf(3)]), labels: [0]).value - log(4.0)) < 1e-6)
    }

    @Test("ignored positions add nothing to the mean or its count and get zero gradient")
    func crossEntropyIgnore() throws {
        let logits = Tensor(shape: [3, 2], data: [0, logf(3), 5, -5, 0, 0])
        let loss = try crossEntropy(logits: logits, labels: [1, 255, 0], ignoreLabel: 255)
        // (ln(4/3) + ln 2) / 2 over the two counted rows.
        #expect(abs(loss.value - (log(4.0 / 3) + log(2.0)) / 2) < 1e-6)
        expectClose(loss.gradient.data, [0.125, -0.125, 0, 0, -0.25, 0.25], tolerance: 1e-6)
        // An ignore label inside 0..<C is ignored too.
        let zero = try crossEntropy(logits: logits, labels: [1, 0, 0], ignoreLabel: 0)
        #expect(abs(zero.value - log(4.0 / 3)) < 1e-6)
        expectClose(zero.gradient.data, [0.25, -0.25, 0, 0, 0, 0], tolerance: 1e-6)
    }

    @Test("all positions ignored: value 0 and a zero gradient")
    func crossEntropyAllIgnored() throws {
        let loss = try crossEntropy(logits: pwTensor([2, 3, 2, 2], seed: 30), labels: [Int32](repeating: -1, count: 8),
                                    ignoreLabel: -1)
        #expect(loss.value == 0 && loss.gradient == Tensor(zeros: [2, 3, 2, 2]))
    }

    @Test("per-pixel cross-entropy matches a Double reference and finite differences")
    func crossEntropyPerPixel() throws {
        let logits = pwTensor([2, 4, 3, 2], seed: 31, in: -3...3)
        var rng = SplitMix64(seed: 32)
        let labels = (0..<12).map { _ in Int32(rng.next() % 5) }.map { $0 == 4 ? Int32(255) : $0 }
        #expect(labels.contains(255) && labels.contains(0))
        let loss = try crossEntropy(logits: logits, labels: labels, ignoreLabel: 255)
        let expected = pwNaiveCrossEntropy(logits, labels, ignore: 255)
        #expect(abs(loss.value - expected.value) < 1e-5 * max(1, expected.value))
        expectClose(loss.gradient.data, expected.gradient, tolerance: 1e-6)
        try pwCheckLoss(logits, eps: 1e-2, what: "per-pixel cross-entropy") {
            try crossEntropy(logits: $0, labels: labels, ignoreLabel: 255)
        }
        let flat = pwTensor([5, 3], seed: 33, in: -3...3)
        try pwCheckLoss(flat, eps: 1e-2, what: "[N, C] cross-entropy") { try crossEntropy(logits: $0, labels: [0, 2, 1, 1, 2]) }
    }

    @Test("cross-entropy is stable for large logits")
    func crossEntropyStable() throws {
        let logits = Tensor(shape: [1, 2], data: [1000, -1000])
        let wrong = try crossEntropy(logits: logits, labels: [1])
        #expect(wrong.value == 2000 && wrong.gradient.data == [1, -1])
        let right = try crossEntropy(logits: logits, labels: [0])
        #expect(right.value == 0 && right.gradient.data == [0, 0])
    }

    @Test("cross-entropy rejects bad labels and logits")
    func crossEntropyErrors() {
        let logits = pwTensor([2, 3], seed: 34)
        expectInvalidArgument("labels", "outside 0..<3") { _ = try crossEntropy(logits: logits, labels: [0, 3]) }
        expectInvalidArgument("labels", "-1") { _ = try crossEntropy(logits: logits, labels: [-1, 0]) }
        expectInvalidArgument("labels", "ignore label 255") {
            _ = try crossEntropy(logits: logits, labels: [7, 255], ignoreLabel: 255)
        }
        expectInvalidArgument("labels", "expected 2") { _ = try crossEntropy(logits: logits, labels: [0]) }
        expectInvalidArgument("labels", "expected 8") {
            _ = try crossEntropy(logits: pwTensor([2, 3, 2, 2], seed: 35), labels: [0, 1])
        }
        expectInvalidArgument("logits") { _ = try crossEntropy(logits: pwTensor([2, 3, 4], seed: 36), labels: [0, 1]) }
        expectInvalidArgument("logits") { _ = try crossEntropy(logits: Tensor(zeros: [2, 0]), labels: [0, 1]) }
    }

    // MARK: Regression

    @Test("smooth L1 by hand: quadratic below beta, linear above")
    func smoothL1Literal() throws {
        let zero = Tensor(zeros: [4])
        let loss = try smoothL1(prediction: Tensor(shape: [4], data: [0, 0.5, 3, -2]), target: zero)
        // (0 + 0.125 + 2.5 + 1.5) / 4; gradient (0, 0.5, 1, -1) / 4.
        #expect(loss.value == 1.03125)
        #expect(loss.gradient.data == [0, 0.125, 0.25, -0.25])
        let wide = try smoothL1(prediction: Tensor(shape: [2], data: [1, 3]), target: Tensor(shape: [2], data: [0, 0]), beta: 2)
        // (0.5 * 1 / 2 + (3 - 1)) / 2; gradient (1/2, 1) / 2.
        #expect(wide.value == 1.125 && wide.gradient.data == [0.25, 0.5])
    }

    @Test("L1 and MSE by hand, with a mask")
    func l1AndMeanSquaredLiteral() throws {
        let p = Tensor(shape: [4], data: [1, -2, 3, 0]), t = Tensor(shape: [4], data: [0, 0, 10, 0])
        let mask = [true, true, false, true]
        let absolute = try l1(prediction: p, target: t, mask: mask)
        #expect(absolute.value == 1 && absolute.gradient.data == [1.0 / 3, -1.0 / 3, 0, 0])
        let squared = try meanSquaredError(prediction: p, target: t, mask: mask)
        #expect(squared.value == 5.0 / 3 && squared.gradient.data == [2.0 / 3, -4.0 / 3, 0, 0])
        let all = try meanSquaredError(prediction: p, target: t)
        #expect(all.value == 54.0 / 4 && all.gradient.data == [0.5, -1, -3.5, 0])
    }

    @Test("L1 is smooth L1 with beta 0, bitwise")
    func l1IsSmoothL1() throws {
        let p = pwTensor([3, 4, 5], seed: 40), t = pwTensor([3, 4, 5], seed: 41)
        let mask = (0..<60).map { $0 % 7 != 3 }
        let a = try l1(prediction: p, target: t, mask: mask), b = try smoothL1(prediction: p, target: t, mask: mask, beta: 0)
        #expect(a.value == b.value && a.gradient == b.gradient)
        let valid = (0..<60).filter { mask[$0] }
        let expected = valid.reduce(0.0) { $0 + abs(Double(p.data[$1]) - Double(t.data[$1])) } / Double(valid.count)
        #expect(abs(a.value - expected) < 1e-12)
    }

    @Test("regression losses against finite differences, masked and not", arguments: [false, true])
    func regressionFiniteDifferences(masked: Bool) throws {
        let shape = [2, 3, 4, 5], count = 120
        let target = pwTensor(shape, seed: 42, in: -2...2)
        // Differences of magnitude 0.1...0.4 or 0.6...1.5: off the kinks of L1 (0) and smooth L1 with beta 0.5.
        var d = pwSigned(shape, seed: 43, magnitudes: 0.1...0.4)
        let far = pwSigned(shape, seed: 44, magnitudes: 0.6...1.5)
        for i in stride(from: 0, to: count, by: 2) { d.data[i] = far.data[i] }
        let prediction = binaryForward(target, d, .add, outputShape: shape)
        let mask = masked ? (0..<count).map { $0 % 3 != 1 } : nil
        try pwCheckLoss(prediction, what: "smooth L1") { try smoothL1(prediction: $0, target: target, mask: mask, beta: 0.5) }
        try pwCheckLoss(prediction, what: "L1") { try l1(prediction: $0, target: target, mask: mask) }
        try pwCheckLoss(prediction, what: "MSE") { try meanSquaredError(prediction: $0, target: target, mask: mask) }
        if let mask {
            let g = try smoothL1(prediction: prediction, target: target, mask: mask).gradient
            #expect((0..<count).allSatisfy { mask[$0] || g.data[$0] == 0 })
        }
    }

    @Test("an all-false mask gives value 0 and a zero gradient")
    func emptyMask() throws {
        let p = pwTensor([2, 3], seed: 45), t = pwTensor([2, 3], seed: 46), none = [Bool](repeating: false, count: 6)
        for loss in [try smoothL1(prediction: p, target: t, mask: none), try l1(prediction: p, target: t, mask: none),
                     try meanSquaredError(prediction: p, target: t, mask: none)]
        {
            #expect(loss.value == 0 && loss.gradient == Tensor(zeros: [2, 3]))
        }
    }

    @Test("regression losses reject mismatched targets and masks and a bad beta")
    func regressionErrors() {
        let p = pwTensor([2, 3], seed: 47)
        expectInvalidArgument("target", "[3, 2]") { _ = try meanSquaredError(prediction: p, target: pwTensor([3, 2], seed: 48)) }
        expectInvalidArgument("target") { _ = try l1(prediction: p, target: pwTensor([6], seed: 49)) }
        expectInvalidArgument("mask", "got 5") { _ = try smoothL1(prediction: p, target: p, mask: [Bool](repeating: true, count: 5)) }
        expectInvalidArgument("beta") { _ = try smoothL1(prediction: p, target: p, beta: -1) }
        expectInvalidArgument("beta") { _ = try smoothL1(prediction: p, target: p, beta: .nan) }
    }
}
