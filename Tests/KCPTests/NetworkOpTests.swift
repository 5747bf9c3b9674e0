import Glibc
import Testing
@testable import KCP

// Every op's forward (through a one-node `Network`) against the slow
// references of NetworkReference.swift, plus small hand-computed cases.

// MARK: - Cases

let netConvCases: [ConvCase] = [
    ConvCase(label: "3x3 same, bias", input: [2, 3, 6, 7], weight: [4, 3, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "stride (2,3), asymmetric padding", input: [2, 3, 9, 8], weight: [5, 3, 3, 2],
             conv: Conv2d(stride: (2, 3), padding: (1, 0, 2, 1)), bias: false),
    ConvCase(label: "dilation (2,3)", input: [1, 2, 9, 10], weight: [3, 2, 3, 3],
             conv: Conv2d(stride: (1, 2), padding: (2, 3, 2, 3), dilation: (2, 3)), bias: true),
    ConvCase(label: "groups 2", input: [2, 4, 6, 6], weight: [6, 2, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1), groups: 2), bias: true),
    ConvCase(label: "groups 3, dilation 2, 5x5", input: [1, 6, 11, 12], weight: [9, 2, 5, 5],
             conv: Conv2d(stride: (2, 1), padding: (4, 3, 2, 1), dilation: (2, 2), groups: 3), bias: false),
    ConvCase(label: "depthwise multiplier 1, stride 2", input: [2, 3, 7, 7], weight: [3, 1, 3, 3],
             conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1), groups: 3), bias: true),
    ConvCase(label: "depthwise multiplier 2, asymmetric padding", input: [2, 3, 6, 5], weight: [6, 1, 3, 3],
             conv: Conv2d(padding: (0, 1, 2, 1), groups: 3), bias: true),
    ConvCase(label: "1x1 direct", input: [2, 5, 4, 3], weight: [4, 5, 1, 1], conv: Conv2d(), bias: true),
    ConvCase(label: "1x1 direct, groups 2", input: [2, 6, 3, 3], weight: [4, 3, 1, 1],
             conv: Conv2d(groups: 2), bias: false),
    ConvCase(label: "1x1 stride 2, padded", input: [1, 3, 5, 5], weight: [2, 3, 1, 1],
             conv: Conv2d(stride: (2, 2), padding: (1, 1, 0, 0)), bias: true),
    ConvCase(label: "kernel covers input", input: [1, 2, 3, 4], weight: [3, 2, 3, 4], conv: Conv2d(), bias: true),
    // Output channels per group above 4 and no multiple of 4 go through zero-padded rows and a staging tile.
    ConvCase(label: "11 outputs, staged, several tiles", input: [2, 6, 40, 40], weight: [11, 6, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "groups 2 of 7 outputs, staged", input: [1, 6, 9, 9], weight: [14, 3, 3, 3],
             conv: Conv2d(stride: (2, 2), padding: (1, 1, 1, 1), groups: 2), bias: false),
    ConvCase(label: "1x1 direct, 6 outputs, staged", input: [2, 5, 4, 3], weight: [6, 5, 1, 1], conv: Conv2d(),
             bias: true),
    // Large enough that the unfolded batch is split into chunks (about 1M floats each) with a partial last chunk.
    ConvCase(label: "batch 3 in chunks", input: [3, 4, 110, 110], weight: [2, 4, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1)), bias: true),
    ConvCase(label: "batch 5 in chunks, groups 2", input: [5, 4, 110, 110], weight: [4, 2, 3, 3],
             conv: Conv2d(padding: (1, 1, 1, 1), groups: 2), bias: false),
]

struct NetPoolCase: Sendable, CustomTestStringConvertible {
    var label: String
    var input: [Int]
    var pool: Pool2d
    var testDescription: String { label }
}

let netPoolCases: [NetPoolCase] = [
    NetPoolCase(label: "2x2 stride 2", input: [2, 3, 6, 8], pool: Pool2d(kernel: (2, 2), stride: (2, 2))),
    NetPoolCase(label: "3x2 stride (2,1), padding (1,0,1,1)", input: [2, 2, 7, 5],
                pool: Pool2d(kernel: (3, 2), stride: (2, 1), padding: (1, 0, 1, 1))),
    NetPoolCase(label: "3x3 stride 2 padding 1, include pad", input: [1, 3, 7, 6],
                pool: Pool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1), countIncludePad: true)),
    NetPoolCase(label: "3x3 stride 2 padding 1, exclude pad", input: [1, 3, 7, 6],
                pool: Pool2d(kernel: (3, 3), stride: (2, 2), padding: (1, 1, 1, 1), countIncludePad: false)),
    NetPoolCase(label: "2x3 stride (1,2) padding (0,1,1,1), include pad", input: [2, 2, 5, 6],
                pool: Pool2d(kernel: (2, 3), stride: (1, 2), padding: (0, 1, 1, 1), countIncludePad: true)),
    NetPoolCase(label: "2x3 stride (1,2) padding (0,1,1,1), exclude pad", input: [2, 2, 5, 6],
                pool: Pool2d(kernel: (2, 3), stride: (1, 2), padding: (0, 1, 1, 1), countIncludePad: false)),
]

// MARK: - Tests

@Suite("Network ops against naive references")
struct NetworkOpTests {
    @Test(arguments: netConvCases)
    func conv2d(_ c: ConvCase) throws {
        var rng = SplitMix64(seed: 11)
        let x = netTensor(c.input, &rng)
        let w = netTensor(c.weight, &rng)
        let b = c.bias ? netTensor([c.weight[0]], &rng) : nil
        let y = try netRunOp(.conv2d(c.conv), [x], parameters: [w] + (b.map { [$0] } ?? []))
        netExpect(y, naiveConv2d(x, w, b, c.conv))
    }

    @Test func conv2dLiteral() throws {
        // x = 0..15 as 4x4, a 2x2 all-ones kernel with stride 2: sums of 2x2 blocks.
        let y = try netRunOp(.conv2d(Conv2d(stride: (2, 2))), [netIota([1, 1, 4, 4])],
                             parameters: [Tensor(shape: [1, 1, 2, 2], data: [1, 1, 1, 1]), Tensor(shape: [1], data: [0.5])])
        netExpect(y, shape: [1, 1, 2, 2], [10.5, 18.5, 42.5, 50.5])
    }

    @Test(arguments: [[2, 3, 4, 5], [3, 4]])
    func batchNormInference(_ shape: [Int]) throws {
        var rng = SplitMix64(seed: 12)
        let x = netTensor(shape, &rng, scale: 2)
        let c = shape[1]
        let gamma = netTensor([c], &rng), beta = netTensor([c], &rng), mean = netTensor([c], &rng)
        let variance = Tensor(shape: [c], data: netUniform(c, &rng, in: 0.1...2))
        let epsilon: Float = 1e-3
        let y = try netRunOp(.batchNorm(epsilon: epsilon), [x], parameters: [gamma, beta, mean, variance])
        let inner = x.count / (shape[0] * c)
        let expected = x.data.indices.map { k -> Double in
            let ch = (k / inner) % c
            return Double(gamma.data[ch]) * (Double(x.data[k]) - Double(mean.data[ch]))
                / (Double(variance.data[ch]) + Double(epsilon)).squareRoot() + Double(beta.data[ch])
        }
        netExpect(y, NetReference(shape: shape, data: expected))
    }

    @Test func activations() throws {
        var rng = SplitMix64(seed: 13)
        let x = netTensor([2, 3, 4, 5], &rng, scale: 4)
        let xs = x.data.map(Double.init)
        netExpect(try netRunOp(.activation(.relu), [x]), NetReference(shape: x.shape, data: xs.map { max($0, 0) }))
        netExpect(try netRunOp(.activation(Activation(.leakyRelu, alpha: 0.1)), [x]),
                  NetReference(shape: x.shape, data: xs.map { $0 >= 0 ? $0 : 0.1 * $0 }))
        netExpect(try netRunOp(.activation(.sigmoid), [x]),
                  NetReference(shape: x.shape, data: xs.map { 1 / (1 + exp(-$0)) }))
        netExpect(try netRunOp(.identity, [x]), NetReference(shape: x.shape, data: xs), tolerance: 0)
        netExpect(try netRunOp(.activation(.sigmoid), [Tensor(shape: [1, 3], data: [0, 100, -100])]), shape: [1, 3], [0.5, 1, 0])
        netExpect(try netRunOp(.activation(Activation(.leakyRelu, alpha: 0.5)), [Tensor(shape: [1, 2], data: [-4, 3])]), shape: [1, 2], [-2, 3])
    }

    @Test func addAndMul() throws {
        var rng = SplitMix64(seed: 14)
        let a = netTensor([2, 3, 2, 3], &rng), b = netTensor([2, 3, 2, 3], &rng)
        netExpect(try netRunOp(.binary(.add), [a, b]),
                  NetReference(shape: a.shape, data: zip(a.data, b.data).map { Double($0) + Double($1) }))
        netExpect(try netRunOp(.binary(.mul), [a, b]),
                  NetReference(shape: a.shape, data: zip(a.data, b.data).map { Double($0) * Double($1) }))
    }

    @Test func concatAlongChannels() throws {
        var rng = SplitMix64(seed: 15)
        let parts = [netTensor([2, 1, 2, 3], &rng), netTensor([2, 2, 2, 3], &rng), netTensor([2, 3, 2, 3], &rng)]
        var expected = NetReference(zeros: [2, 6, 2, 3])
        for n in 0..<2 {
            var offset = 0
            for part in parts {
                for c in 0..<part.shape[1] {
                    for h in 0..<2 {
                        for w in 0..<3 { expected.data[((n * 6 + offset + c) * 2 + h) * 3 + w] = part[n, c, h, w] }
                    }
                }
                offset += part.shape[1]
            }
        }
        netExpect(try netRunOp(.concat, parts), expected, tolerance: 0)
        // One input is a copy.
        netExpect(try netRunOp(.concat, [parts[1]]), NetReference(shape: [2, 2, 2, 3], data: parts[1].data.map(Double.init)))
    }

    @Test(arguments: netPoolCases)
    func maxPool(_ c: NetPoolCase) throws {
        var rng = SplitMix64(seed: 16)
        let x = netTensor(c.input, &rng)
        netExpect(try netRunOp(.maxPool(c.pool), [x]), naivePool(x, c.pool, max: true))
    }

    @Test(arguments: netPoolCases)
    func avgPool(_ c: NetPoolCase) throws {
        var rng = SplitMix64(seed: 17)
        let x = netTensor(c.input, &rng)
        netExpect(try netRunOp(.avgPool(c.pool), [x]), naivePool(x, c.pool, max: false))
    }

    @Test func avgPoolPaddingLiteral() throws {
        // [[1, 2], [3, 4]], 2x2 windows, stride 1, one pixel of padding on each side.
        let x = Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4])
        let include = Pool2d(kernel: (2, 2), stride: (1, 1), padding: (1, 1, 1, 1), countIncludePad: true)
        netExpect(try netRunOp(.avgPool(include), [x]), shape: [1, 1, 3, 3],
                  [0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1])
        var exclude = include
        exclude.countIncludePad = false
        netExpect(try netRunOp(.avgPool(exclude), [x]), shape: [1, 1, 3, 3], [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4])
        netExpect(try netRunOp(.maxPool(include), [x]), shape: [1, 1, 3, 3], [1, 2, 2, 3, 4, 4, 3, 4, 4])
    }

    /// Padding above half the kernel (which PyTorch rejects too) would let a
    /// window lie wholly in the padding; shape inference refuses it.
    @Test func poolPaddingAboveHalfTheKernelIsRejected() throws {
        var net = Network()
        let x = try net.addInput(name: "x", shape: [1, 1, 2, 2])
        let pool = Pool2d(kernel: (1, 1), stride: (1, 1), padding: (1, 1, 1, 1))
        netExpectInvalidArgument("network", ["'pool'", "half the kernel"]) {
            _ = try net.addNode(name: "pool", op: .maxPool(pool), inputs: [x])
            _ = try net.inferShapes()
        }
    }

    @Test func globalAvgPool() throws {
        var rng = SplitMix64(seed: 18)
        let x = netTensor([2, 3, 5, 7], &rng)
        var expected = NetReference(zeros: [2, 3, 1, 1])
        for n in 0..<2 {
            for c in 0..<3 {
                var sum = 0.0
                for h in 0..<5 { for w in 0..<7 { sum += x[n, c, h, w] } }
                expected.data[n * 3 + c] = sum / 35
            }
        }
        netExpect(try netRunOp(.globalAvgPool, [x]), expected)
    }

    @Test func flatten() throws {
        let x = netIota([2, 3, 2, 2])
        netExpect(try netRunOp(.flatten, [x]), NetReference(shape: [2, 12], data: x.data.map(Double.init)), tolerance: 0)
        netExpect(try netRunOp(.flatten, [netIota([2, 5])]), NetReference(shape: [2, 5], data: (0..<10).map(Double.init)),
                  tolerance: 0)
    }

    @Test(arguments: [true, false])
    func linear(_ bias: Bool) throws {
        var rng = SplitMix64(seed: 19)
        let x = netTensor([3, 7], &rng), w = netTensor([5, 7], &rng), b = netTensor([5], &rng)
        var expected = NetReference(zeros: [3, 5])
        for n in 0..<3 {
            for o in 0..<5 {
                var sum = bias ? Double(b.data[o]) : 0
                for i in 0..<7 { sum += Double(w.data[o * 7 + i]) * Double(x.data[n * 7 + i]) }
                expected.data[n * 5 + o] = sum
            }
        }
        netExpect(try netRunOp(.linear, [x], parameters: bias ? [w, b] : [w]), expected)
    }

    @Test func resizeByIntegerFactorsLiterals() throws {
        let x = Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4])
        // PyTorch: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False).
        netExpect(try netRunOp(.resize(Resize(height: 4, width: 4, mode: .bilinear)), [x]), shape: [1, 1, 4, 4],
                  [1.0, 1.25, 1.75, 2.0,
                   1.5, 1.75, 2.25, 2.5,
                   2.5, 2.75, 3.25, 3.5,
                   3.0, 3.25, 3.75, 4.0])
        netExpect(try netRunOp(.resize(Resize(height: 4, width: 4, mode: .nearest)), [x]), shape: [1, 1, 4, 4],
                  [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        // Scale 3 along a row [0, 3]: sources -1/3 (clamped), 0, 1/3, 2/3, 1, 4/3 (clamped to the edge).
        netExpect(try netRunOp(.resize(Resize(height: 3, width: 6, mode: .bilinear)), [Tensor(shape: [1, 1, 1, 2], data: [0, 3])]),
                  shape: [1, 1, 3, 6], [0, 0, 1, 2, 3, 3, 0, 0, 1, 2, 3, 3, 0, 0, 1, 2, 3, 3], tolerance: 1e-6)
        netExpect(try netRunOp(.resize(Resize(height: 2, width: 2, mode: .bilinear)), [x]), shape: [1, 1, 2, 2], [1, 2, 3, 4])
    }

    @Test(arguments: [(UpsampleMode.nearest, 2), (.nearest, 3), (.bilinear, 2), (.bilinear, 3), (.bilinear, 4)])
    func resizeByIntegerFactors(_ mode: UpsampleMode, _ scale: Int) throws {
        var rng = SplitMix64(seed: 20)
        let x = netTensor([2, 3, 3, 5], &rng)
        let r = Resize(height: 3 * scale, width: 5 * scale, mode: mode)
        netExpect(try netRunOp(.resize(r), [x]), naiveResize(x, r))
    }

    @Test(arguments: [(3, Float(0.25)), (6, Float(1)), (1, Float(-0.5))])
    func correlation(_ maxDisparity: Int, _ scale: Float) throws {
        var rng = SplitMix64(seed: 21)
        let l = netTensor([2, 4, 3, 5], &rng), r = netTensor([2, 4, 3, 5], &rng)
        netExpect(try netRunOp(.correlation(maxDisparity: maxDisparity, scale: scale), [l, r]),
                  naiveCorrelation(l, r, maxDisparity: maxDisparity, scale: Double(scale)))
    }

    @Test func correlationLiteral() throws {
        // One channel, one row: left [1, 2, 3], right [4, 5, 6], scale 0.5.
        let l = Tensor(shape: [1, 1, 1, 3], data: [1, 2, 3]), r = Tensor(shape: [1, 1, 1, 3], data: [4, 5, 6])
        netExpect(try netRunOp(.correlation(maxDisparity: 2, scale: 0.5), [l, r]), shape: [1, 2, 1, 3],
                  [2, 5, 9, 0, 4, 7.5])
    }

    @Test(arguments: [[2, 4, 3, 2], [3, 5]])
    func softmaxOverChannels(_ shape: [Int]) throws {
        var rng = SplitMix64(seed: 22)
        let x = netTensor(shape, &rng, scale: 5)
        let expected = naiveSoftmax(x.data.map(Double.init), batch: shape[0], channels: shape[1])
        netExpect(try netRunOp(.softmax, [x]), NetReference(shape: shape, data: expected))
    }

    @Test func softmaxLiteral() throws {
        // Large equal logits must not overflow.
        netExpect(try netRunOp(.softmax, [Tensor(shape: [1, 2], data: [1000, 1000])]), shape: [1, 2], [0.5, 0.5])
    }

    @Test func softArgmin() throws {
        var rng = SplitMix64(seed: 23)
        let x = netTensor([2, 5, 3, 4], &rng, scale: 3)
        let p = naiveSoftmax(x.data.map { -Double($0) }, batch: 2, channels: 5)
        var expected = NetReference(zeros: [2, 1, 3, 4])
        for n in 0..<2 {
            for d in 0..<5 {
                for k in 0..<12 { expected.data[n * 12 + k] += Double(d) * p[(n * 5 + d) * 12 + k] }
            }
        }
        netExpect(try netRunOp(.softArgmin(sign: -1), [x]), expected)
        // Equal costs: the mean disparity (0 + 1 + 2) / 3; one much lower cost: its disparity.
        netExpect(try netRunOp(.softArgmin(sign: -1), [Tensor(shape: [1, 3, 1, 2], data: [0, 0, 0, 0, 0, -50])]),
                  shape: [1, 1, 1, 2], [1, 2], tolerance: 1e-5)
        netExpect(try netRunOp(.softArgmin(sign: -1), [Tensor(shape: [1, 1, 1, 1], data: [3])]), shape: [1, 1, 1, 1], [0])
    }

    @Test func batchSizeFollowsInputs() throws {
        // A network declared with batch 1 runs on batch 3.
        var rng = SplitMix64(seed: 24)
        let w = netTensor([2, 3, 3, 3], &rng)
        var net = Network()
        let x = try net.addInput(name: "x", shape: [1, 3, 5, 5])
        let p = net.addParameter(name: "w", tensor: w)
        let y = try net.addNode(name: "conv", op: .conv2d(Conv2d(padding: (1, 1, 1, 1))), inputs: [x], parameters: [p])
        try net.addOutput(y)
        let input = netTensor([3, 3, 5, 5], &rng)
        netExpect(try net.forward([input])[0], naiveConv2d(input, w, nil, Conv2d(padding: (1, 1, 1, 1))))
    }
}
