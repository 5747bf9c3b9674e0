import Testing
@testable import KCP

// Backward passes of the layer kernels (conv, linear, batchnorm, pooling,
// concat, upsample): hand-checkable literals first, then central finite
// differences of `L = sum r * f(x)` in every input and parameter element
// (BackwardSupport.swift).

// MARK: - Cases

let backConvCases: [ConvCase] = [
    ConvCase(label: "3x3 same, bias", input: [2, 3, 5, 4], weight: [4, 3, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "stride (2,3), asymmetric padding", input: [2, 2, 7, 8], weight: [3, 2, 3, 2],
             conv: Conv2d(stride: (2, 3), padding: (1, 0, 2, 1)), bias: false),
    ConvCase(label: "dilation (2,3), stride (1,2)", input: [1, 2, 7, 8], weight: [2, 2, 3, 3],
             conv: Conv2d(stride: (1, 2), padding: (2, 3, 2, 3), dilation: (2, 3)), bias: true),
    ConvCase(label: "groups 2", input: [2, 4, 5, 5], weight: [6, 2, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1), groups: 2), bias: true),
    ConvCase(label: "groups 3, dilation 2, stride (2,1), asymmetric padding", input: [1, 6, 9, 8],
             weight: [6, 2, 3, 3], conv: Conv2d(stride: (2, 1), padding: (2, 1, 0, 2), dilation: (2, 2), groups: 3),
             bias: false),
    ConvCase(label: "depthwise multiplier 1, stride 2", input: [2, 3, 6, 6], weight: [3, 1, 3, 3],
             conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1), groups: 3), bias: true),
    ConvCase(label: "depthwise multiplier 2, asymmetric padding", input: [2, 3, 5, 4], weight: [6, 1, 3, 3],
             conv: Conv2d(padding: (0, 1, 2, 1), groups: 3), bias: true),
    ConvCase(label: "1x1", input: [2, 5, 3, 3], weight: [4, 5, 1, 1], conv: Conv2d(), bias: true),
    ConvCase(label: "1x1 stride 2, padded, groups 2", input: [1, 4, 5, 5], weight: [2, 2, 1, 1],
             conv: Conv2d(stride: (2, 2), padding: (1, 1, 0, 0), groups: 2), bias: true),
    ConvCase(label: "kernel covers input", input: [1, 2, 3, 4], weight: [3, 2, 3, 4], conv: Conv2d(), bias: true),
]

struct BackPoolCase: Sendable, CustomTestStringConvertible {
    var label: String
    var input: [Int]
    var pool: Pool2d
    var testDescription: String { label }
}

let backPoolCases: [BackPoolCase] = [
    BackPoolCase(label: "2x2 stride 2", input: [2, 2, 4, 6], pool: Pool2d(kernel: (2, 2), stride: (2, 2))),
    BackPoolCase(label: "3x3 stride 1 overlapping, padding 1", input: [1, 2, 4, 5],
                 pool: Pool2d(kernel: (3, 3), stride: (1, 1), padding: (1, 1, 1, 1))),
    BackPoolCase(label: "3x2 stride (2,1), padding (1,0,1,1)", input: [2, 2, 7, 5],
                 pool: Pool2d(kernel: (3, 2), stride: (2, 1), padding: (1, 0, 1, 1))),
    BackPoolCase(label: "3x3 stride 2 padding 1, include pad", input: [1, 2, 7, 6],
                 pool: Pool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1), countIncludePad: true)),
    BackPoolCase(label: "2x3 stride (1,2) padding (0,1,1,1), include pad", input: [2, 1, 5, 6],
                 pool: Pool2d(kernel: (2, 3), stride: (1, 2), padding: (0, 1, 1, 1), countIncludePad: true)),
]

/// The output shape shape inference gives `op` (whose shapes are valid).
private func backOutputShape(_ op: Op, _ inputs: [[Int]], _ parameters: [[Int]] = []) -> [Int] {
    try! op.outputShape(inputs: inputs, parameters: parameters)
}

// MARK: - Convolution and linear

@Suite("Backward: conv and linear")
struct BackwardConvTests {
    @Test func convLiteral() {
        // 3x3 input 0..8, one 2x2 all-ones filter, dL/dy = 1 everywhere (2x2 outputs):
        // dx counts the windows covering each pixel, dW[p, q] sums the pixels
        // its tap reads, db counts the outputs.
        let x = Tensor(shape: [1, 1, 3, 3], data: (0..<9).map(Float.init))
        let w = Tensor(shape: [1, 1, 2, 2], data: [1, 1, 1, 1])
        let g = Tensor(shape: [1, 1, 2, 2], data: [1, 1, 1, 1])
        let d = conv2dBackward(x, weight: w, hasBias: true, Conv2d(), gradient: g)
        fdExpectEqual(d.input!.data, [1, 2, 1, 2, 4, 2, 1, 2, 1], "dx")
        fdExpectEqual(d.weight.data, [0 + 1 + 3 + 4, 1 + 2 + 4 + 5, 3 + 4 + 6 + 7, 4 + 5 + 7 + 8], "dW")
        fdExpectEqual(d.bias?.data ?? [], [4], "db")
        #expect(conv2dBackward(x, weight: w, hasBias: false, Conv2d(), gradient: g).bias == nil)
    }

    @Test func convLiteralStridePaddingGroups() {
        // Depthwise 1x1 with weights (2, 3), stride 2, top/left padding 1 on 2x2 planes:
        // outputs read x[-1, -1] (padding), x[-1, 1] (padding), x[1, -1] (padding), x[1, 1].
        let x = Tensor(shape: [1, 2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8])
        let w = Tensor(shape: [2, 1, 1, 1], data: [2, 3])
        let g = Tensor(shape: [1, 2, 2, 2], data: [1, 1, 1, 10, 1, 1, 1, 100])
        let d = conv2dBackward(x, weight: w, hasBias: false, Conv2d(stride: (2, 2), padding: (1, 1, 0, 0), groups: 2),
                               gradient: g)
        fdExpectEqual(d.input!.data, [0, 0, 0, 20, 0, 0, 0, 300], "dx")
        fdExpectEqual(d.weight.data, [40, 800], "dW")
    }

    @Test(arguments: backConvCases)
    func convFiniteDifferences(_ c: ConvCase) {
        var rng = SplitMix64(seed: 101)
        let x = fdTensor(c.input, &rng), w = fdTensor(c.weight, &rng)
        let b = c.bias ? fdTensor([c.weight[0]], &rng) : nil
        let outShape = backOutputShape(.conv2d(c.conv), [c.input], [c.weight])
        let args = [x.data, w.data] + (b.map { [$0.data] } ?? [])
        fdCheck(args, names: ["x", "weight", "bias"], seed: 102,
                forward: { a in
                    conv2dForward(Tensor(shape: c.input, data: a[0]), weight: Tensor(shape: c.weight, data: a[1]),
                                  bias: c.bias ? Tensor(shape: [c.weight[0]], data: a[2]) : nil, c.conv,
                                  outputShape: outShape)
                },
                backward: { r in
                    let d = conv2dBackward(x, weight: w, hasBias: c.bias, c.conv, gradient: r)
                    return [d.input!.data, d.weight.data] + (d.bias.map { [$0.data] } ?? [])
                })
    }

    @Test("samples unfolded in chunks: the batch gradient is the sum (weights) and stack (inputs) of per-sample ones")
    func convChunks() {
        // [3, 4, 110, 110] with a 3x3 kernel unfolds 2 samples per chunk (about 1M floats), then 1.
        var rng = SplitMix64(seed: 103)
        let conv = Conv2d(padding: (1, 1, 1, 1), groups: 2)
        let x = fdTensor([3, 4, 110, 110], &rng), w = fdTensor([4, 2, 3, 3], &rng)
        let g = fdTensor([3, 4, 110, 110], &rng)
        let whole = conv2dBackward(x, weight: w, hasBias: true, conv, gradient: g)
        let plane = 4 * 110 * 110
        var dw = [Double](repeating: 0, count: w.count), db = [Double](repeating: 0, count: 4)
        for n in 0..<3 {
            let xn = Tensor(shape: [1, 4, 110, 110], data: Array(x.data[(n * plane)..<((n + 1) * plane)]))
            let gn = Tensor(shape: [1, 4, 110, 110], data: Array(g.data[(n * plane)..<((n + 1) * plane)]))
            let one = conv2dBackward(xn, weight: w, hasBias: true, conv, gradient: gn)
            #expect(one.input!.data == Array(whole.input!.data[(n * plane)..<((n + 1) * plane)]), "sample \(n) dx")
            for k in dw.indices { dw[k] += Double(one.weight.data[k]) }
            for k in db.indices { db[k] += Double(one.bias!.data[k]) }
        }
        let scale = dw.reduce(0.0) { max($0, abs($1)) }
        fdExpectEqual(whole.weight.data, dw, tolerance: 1e-5 * scale, "dW")
        fdExpectEqual(whole.bias!.data, db, tolerance: 1e-5 * db.reduce(0.0) { max($0, abs($1)) }, "db")
        // Adjoint identities: <conv(x), g> = <x, dx> = <W, dW> (no bias).
        let y = conv2dForward(x, weight: w, bias: nil, conv, outputShape: g.shape)
        let (forward, inputSide, weightSide) = (fdDot(g, y), fdDot(x, whole.input!), fdDot(w, whole.weight))
        #expect(abs(forward - inputSide) <= 1e-4 * abs(forward) && abs(forward - weightSide) <= 1e-4 * abs(forward),
                "<y, g> = \(forward), <x, dx> = \(inputSide), <W, dW> = \(weightSide)")
    }

    @Test func linearLiteral() {
        // x = [1, 2], W = [[1, 0], [0, 1], [1, 1]], g = [1, 2, 3]:
        // dx = g W = [4, 5], dW = g^T x, db = g.
        let d = linearBackward(Tensor(shape: [1, 2], data: [1, 2]),
                               weight: Tensor(shape: [3, 2], data: [1, 0, 0, 1, 1, 1]), hasBias: true,
                               gradient: Tensor(shape: [1, 3], data: [1, 2, 3]))
        fdExpectEqual(d.input.data, [4, 5], "dx")
        fdExpectEqual(d.weight.data, [1, 2, 2, 4, 3, 6], "dW")
        fdExpectEqual(d.bias?.data ?? [], [1, 2, 3], "db")
    }

    @Test(arguments: [false, true])
    func linearFiniteDifferences(_ bias: Bool) {
        var rng = SplitMix64(seed: 104)
        let x = fdTensor([3, 7], &rng), w = fdTensor([5, 7], &rng), b = fdTensor([5], &rng)
        fdCheck([x.data, w.data] + (bias ? [b.data] : []), names: ["x", "weight", "bias"], seed: 105,
                forward: { a in
                    linearForward(Tensor(shape: [3, 7], data: a[0]), weight: Tensor(shape: [5, 7], data: a[1]),
                                  bias: bias ? Tensor(shape: [5], data: a[2]) : nil)
                },
                backward: { r in
                    let d = linearBackward(x, weight: w, hasBias: bias, gradient: r)
                    return [d.input.data, d.weight.data] + (d.bias.map { [$0.data] } ?? [])
                })
    }

    @Test("a deep weight product (batch 2500) sums its depth blocks")
    func linearDeepBatch() {
        var rng = SplitMix64(seed: 106)
        let x = fdTensor([2500, 3], &rng), w = fdTensor([2, 3], &rng), g = fdTensor([2500, 2], &rng)
        let d = linearBackward(x, weight: w, hasBias: false, gradient: g)
        var expected = [Double](repeating: 0, count: 6)
        for n in 0..<2500 {
            for k in 0..<6 { expected[k] += Double(g.data[n * 2 + k / 3]) * Double(x.data[n * 3 + k % 3]) }
        }
        fdExpectEqual(d.weight.data, expected, tolerance: 1e-3, "dW")
    }
}

// MARK: - Batch normalization

@Suite("Backward: batch normalization")
struct BackwardBatchNormTests {
    @Test func trainingLiteral() {
        // One channel x = [-1, 0, 1]: mean 0, biased variance 2/3; epsilon 1/3
        // makes the standard deviation 1, so xhat = x. gamma 2, beta 0.5.
        let x = Tensor(shape: [1, 1, 1, 3], data: [-1, 0, 1])
        let f = batchNormTrainingForward(x, gamma: [2], beta: [0.5], epsilon: 1.0 / 3)
        fdExpectEqual(f.mean, [0], "mean")
        fdExpectEqual(f.variance, [2.0 / 3], "variance")
        fdExpectEqual(f.output.data, [-1.5, 0.5, 2.5], "y")
        // g = [1, 0, 0]: sum g = 1, sum g xhat = -1,
        // dx = gamma / M (M g - sum g - xhat sum(g xhat)) = 2/3 ([3, 0, 0] - 1 + [-1, 0, 1]).
        let g = Tensor(shape: [1, 1, 1, 3], data: [1, 0, 0])
        let d = batchNormBackward(x, gamma: [2], mean: f.mean, variance: f.variance, epsilon: 1.0 / 3, training: true,
                                  gradient: g)
        fdExpectEqual(d.input.data, [2.0 / 3, -2.0 / 3, 0], "dx")
        fdExpectEqual(d.gamma, [-1], "dgamma")
        fdExpectEqual(d.beta, [1], "dbeta")
    }

    @Test func inferenceLiteral() {
        // Running mean 1, variance 4, epsilon 0: dx = gamma / 2 * g, xhat = (x - 1) / 2.
        let x = Tensor(shape: [2, 1], data: [3, -1])
        let d = batchNormBackward(x, gamma: [3], mean: [1], variance: [4], epsilon: 0, training: false,
                                  gradient: Tensor(shape: [2, 1], data: [1, 2]))
        fdExpectEqual(d.input.data, [1.5, 3], "dx")
        fdExpectEqual(d.gamma, [1 * 1 + 2 * -1], "dgamma")
        fdExpectEqual(d.beta, [3], "dbeta")
    }

    @Test("training: batch statistics over N, H, W, gradient through them", arguments: [[3, 2, 2, 3], [6, 3]])
    func trainingFiniteDifferences(_ shape: [Int]) {
        var rng = SplitMix64(seed: 107)
        let c = shape[1]
        let x = fdTensor(shape, &rng, scale: 2), gamma = fdUniform(c, &rng), beta = fdUniform(c, &rng)
        let epsilon: Float = 1e-3
        let stats = batchNormTrainingForward(x, gamma: gamma, beta: beta, epsilon: epsilon)
        // The statistics against a double reference.
        let inner = x.count / (shape[0] * c)
        for ch in 0..<c {
            let values = x.data.indices.filter { ($0 / inner) % c == ch }.map { Double(x.data[$0]) }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            fdExpectEqual([stats.mean[ch], stats.variance[ch]], [mean, variance], "channel \(ch) statistics")
        }
        fdCheck([x.data, gamma, beta], names: ["x", "gamma", "beta"], seed: 108, step: 4e-3,
                forward: { a in
                    batchNormTrainingForward(Tensor(shape: shape, data: a[0]), gamma: a[1], beta: a[2],
                                             epsilon: epsilon).output
                },
                backward: { r in
                    let d = batchNormBackward(x, gamma: gamma, mean: stats.mean, variance: stats.variance,
                                              epsilon: epsilon, training: true, gradient: r)
                    return [d.input.data, d.gamma, d.beta]
                })
    }

    @Test("inference: running statistics are constants", arguments: [[2, 3, 2, 2], [4, 3]])
    func inferenceFiniteDifferences(_ shape: [Int]) {
        var rng = SplitMix64(seed: 109)
        let c = shape[1]
        let x = fdTensor(shape, &rng, scale: 2), gamma = fdUniform(c, &rng), beta = fdUniform(c, &rng)
        let mean = fdUniform(c, &rng), variance = fdUniform(c, &rng).map { 0.5 + abs($0) }
        fdCheck([x.data, gamma, beta], names: ["x", "gamma", "beta"], seed: 110,
                forward: { a in
                    batchNormInference(Tensor(shape: shape, data: a[0]), gamma: a[1], beta: a[2], mean: mean,
                                       variance: variance, epsilon: 1e-3)
                },
                backward: { r in
                    let d = batchNormBackward(x, gamma: gamma, mean: mean, variance: variance, epsilon: 1e-3,
                                              training: false, gradient: r)
                    return [d.input.data, d.gamma, d.beta]
                })
    }
}

// MARK: - Pooling, concat, upsample

@Suite("Backward: pooling, concat, upsample")
struct BackwardReshapeTests {
    @Test func maxPoolTies() {
        // 2x3 input [[3, 3, 3], [1, 3, 0]], 2x2 windows with stride 1: both windows
        // hold several 3s; each sends its gradient to its first in row-major order.
        let x = Tensor(shape: [1, 1, 2, 3], data: [3, 3, 3, 1, 3, 0])
        let dx = pool2dBackward(x, Pool2d(kernel: (2, 2), stride: (1, 1)), max: true,
                                gradient: Tensor(shape: [1, 1, 1, 2], data: [1, 10]))
        fdExpectEqual(dx.data, [1, 10, 0, 0, 0, 0], "dx")
        // All equal, 2x2 stride 2: the top-left of each window.
        let flat = pool2dBackward(Tensor(shape: [1, 1, 2, 4], data: [Float](repeating: 7, count: 8)),
                                  Pool2d(kernel: (2, 2), stride: (2, 2)), max: true,
                                  gradient: Tensor(shape: [1, 1, 1, 2], data: [2, 5]))
        fdExpectEqual(flat.data, [2, 0, 5, 0, 0, 0, 0, 0], "dx, all equal")
    }

    @Test func avgPoolLiteral() {
        // 2x2 input, 2x2 windows, stride 2, padding 1 all round: each window holds one real pixel.
        let x = Tensor(zeros: [1, 1, 2, 2]), g = Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4])
        let include = Pool2d(kernel: (2, 2), stride: (2, 2), padding: (1, 1, 1, 1), countIncludePad: true)
        var exclude = include
        exclude.countIncludePad = false
        fdExpectEqual(pool2dBackward(x, include, max: false, gradient: g).data, [0.25, 0.5, 0.75, 1], "include pad")
        fdExpectEqual(pool2dBackward(x, exclude, max: false, gradient: g).data, [1, 2, 3, 4], "exclude pad")
        // 1x2 input, 3x3 windows, padding 1: two windows, each over both pixels.
        let wide = Pool2d(kernel: (3, 3), stride: (1, 1), padding: (1, 1, 1, 1), countIncludePad: false)
        let g2 = Tensor(shape: [1, 1, 1, 2], data: [2, 4])
        let dx = pool2dBackward(Tensor(zeros: [1, 1, 1, 2]), wide, max: false, gradient: g2)
        fdExpectEqual(dx.data, [3, 3], "real count")
    }

    @Test(arguments: backPoolCases)
    func poolFiniteDifferences(_ c: BackPoolCase) {
        for useMax in [true, false] {
            var rng = SplitMix64(seed: 111)
            // Values 0.05 apart: a step of 0.01 never changes a window's maximum.
            let x = fdDistinct(c.input, &rng)
            let outShape = backOutputShape(useMax ? .maxPool(c.pool) : .avgPool(c.pool), [c.input])
            fdCheck([x.data], names: [useMax ? "x (max)" : "x (avg)"], seed: 112,
                    forward: { a in
                        pool2dForward(Tensor(shape: c.input, data: a[0]), c.pool, max: useMax, outputShape: outShape)
                    },
                    backward: { [pool2dBackward(x, c.pool, max: useMax, gradient: $0).data] })
        }
    }

    @Test func globalAvgPool() {
        let g = Tensor(shape: [1, 2, 1, 1], data: [4, 8])
        fdExpectEqual(globalAvgPoolBackward(inputShape: [1, 2, 2, 2], gradient: g).data, [1, 1, 1, 1, 2, 2, 2, 2], "dx")
        var rng = SplitMix64(seed: 113)
        let x = fdTensor([2, 3, 3, 2], &rng)
        fdCheck([x.data], names: ["x"], seed: 114,
                forward: { globalAvgPoolForward(Tensor(shape: x.shape, data: $0[0])) },
                backward: { [globalAvgPoolBackward(inputShape: x.shape, gradient: $0).data] })
    }

    @Test func concat() {
        // Channels [1, 2] of a [2, 3, 1, 1] gradient 0..5.
        let parts = concatBackward(Tensor(shape: [2, 3, 1, 1], data: [0, 1, 2, 3, 4, 5]), channels: [1, 2])
        #expect(parts.map(\.shape) == [[2, 1, 1, 1], [2, 2, 1, 1]])
        fdExpectEqual(parts[0].data, [0, 3], "first")
        fdExpectEqual(parts[1].data, [1, 2, 4, 5], "second")
        var rng = SplitMix64(seed: 115)
        let shapes = [[2, 1, 2, 3], [2, 3, 2, 3], [2, 2, 2, 3]]
        let xs = shapes.map { fdTensor($0, &rng) }
        fdCheck(xs.map(\.data), names: ["a", "b", "c"], seed: 116,
                forward: { a in concatForward(zip(shapes, a).map { Tensor(shape: $0, data: $1) }) },
                backward: { concatBackward($0, channels: shapes.map { $0[1] }).map(\.data) })
    }

    @Test func upsampleLiteral() {
        // [1, 1, 1, 2] by 2, gradient 0..7 over the [2, 4] output.
        let g = Tensor(shape: [1, 1, 2, 4], data: (0..<8).map(Float.init))
        // Nearest: each input collects its 2x2 block.
        fdExpectEqual(resizeBackward(g, inputShape: [1, 1, 1, 2], Resize(height: 2, width: 4, mode: .nearest)).data,
                      [0 + 1 + 4 + 5, 2 + 3 + 6 + 7], "nearest")
        // Bilinear: output columns read x0 with weights (1, 0.75, 0.25, 0), x1 with (0, 0.25, 0.75, 1);
        // both output rows read the single input row.
        let row = { (w: [Double]) in (0..<4).reduce(0.0) { $0 + w[$1] * (Double($1) + Double($1 + 4)) } }
        fdExpectEqual(resizeBackward(g, inputShape: [1, 1, 1, 2], Resize(height: 2, width: 4, mode: .bilinear)).data,
                      [row([1, 0.75, 0.25, 0]), row([0, 0.25, 0.75, 1])], "bilinear")
    }

    @Test(arguments: [(2, UpsampleMode.nearest), (3, .nearest), (2, .bilinear), (3, .bilinear)])
    func upsampleFiniteDifferences(_ scale: Int, _ mode: UpsampleMode) {
        var rng = SplitMix64(seed: 117)
        let x = fdTensor([2, 2, 3, 4], &rng)
        let r = Resize(height: 3 * scale, width: 4 * scale, mode: mode)
        fdCheck([x.data], names: ["x"], seed: 118,
                forward: { resizeForward(Tensor(shape: x.shape, data: $0[0]), r) },
                backward: { [resizeBackward($0, inputShape: x.shape, r).data] })
    }
}
