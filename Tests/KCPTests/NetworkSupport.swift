import Testing
@testable import KCP

// Helpers for the whole-network tests: seeded tensors, a small graph
// builder, and tensor comparisons. Names carry a `net` prefix so they never
// collide with the single-layer helpers in Support.swift.

/// Uniform floats in `[-scale, scale)` drawn from `rng`.
func netUniform(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
    (0..<count).map { _ in Float(rng.nextUnit() * 2 - 1) * scale }
}

/// Uniform floats in `[low, high)` drawn from `rng`.
func netUniform(_ count: Int, _ rng: inout SplitMix64, in range: ClosedRange<Float>) -> [Float] {
    (0..<count).map { _ in range.lowerBound + Float(rng.nextUnit()) * (range.upperBound - range.lowerBound) }
}

func netTensor(_ shape: [Int], _ rng: inout SplitMix64, scale: Float = 1) -> Tensor {
    Tensor(shape: shape, data: netUniform(shape.reduce(1, *), &rng, scale: scale))
}

/// `0, 1, 2, ...` as a tensor (hand-checkable data).
func netIota(_ shape: [Int]) -> Tensor {
    Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map(Float.init))
}

/// Runs a one-node network `op(inputs)` through `Network.forward`.
func netRunOp(_ op: Op, _ inputs: [Tensor], parameters: [Tensor] = []) throws -> Tensor {
    var net = Network()
    var values: [Int] = []
    for (k, x) in inputs.enumerated() { values.append(try net.addInput(name: "x\(k)", shape: x.shape)) }
    let ps = parameters.enumerated().map { net.addParameter(name: "p\($0)", tensor: $1) }
    let y = try net.addNode(name: "op", op: op, inputs: values, parameters: ps)
    try net.addOutput(y)
    let outputs = try net.forward(inputs)
    #expect(outputs.count == 1)
    return outputs[0]
}

/// A naive result: a shape and row-major double values.
struct NetReference {
    var shape: [Int]
    var data: [Double]

    init(shape: [Int], data: [Double]) {
        precondition(shape.reduce(1, *) == data.count)
        (self.shape, self.data) = (shape, data)
    }

    init(zeros shape: [Int]) { self.init(shape: shape, data: [Double](repeating: 0, count: shape.reduce(1, *))) }
}

extension Tensor {
    /// Element at a 4-D index, as a double.
    subscript(n: Int, c: Int, h: Int, w: Int) -> Double {
        Double(data[((n * shape[1] + c) * shape[2] + h) * shape[3] + w])
    }
}

func netMaxAbs<S: Sequence>(_ values: S) -> Double where S.Element: BinaryFloatingPoint {
    values.reduce(0.0) { Swift.max($0, abs(Double($1))) }
}

/// Shapes equal and `max |actual - expected| <= tolerance * max(1, max |expected|)`.
func netExpect(_ actual: Tensor, _ expected: NetReference, tolerance: Double = 1e-4,
               sourceLocation: SourceLocation = #_sourceLocation)
{
    #expect(actual.shape == expected.shape, sourceLocation: sourceLocation)
    guard actual.shape == expected.shape else { return }
    let worst = zip(actual.data, expected.data).reduce(0.0) { Swift.max($0, abs(Double($1.0) - $1.1)) }
    let bound = tolerance * Swift.max(1, netMaxAbs(expected.data))
    #expect(worst <= bound, "max abs error \(worst) > \(bound); got \(actual.data.prefix(12)), expected \(expected.data.prefix(12))",
            sourceLocation: sourceLocation)
}

/// A literal expectation.
func netExpect(_ actual: Tensor, shape: [Int], _ expected: [Double], tolerance: Double = 1e-6,
               sourceLocation: SourceLocation = #_sourceLocation)
{
    netExpect(actual, NetReference(shape: shape, data: expected), tolerance: tolerance, sourceLocation: sourceLocation)
}

/// Expects `body` to throw `invalidArgument(argument, reason)` with every
/// fragment in `reason`.
func netExpectInvalidArgument(_ argument: String, _ fragments: [String] = [],
                              sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void)
{
    expectInvalidArgument(argument, containing: fragments, sourceLocation: sourceLocation, body)
}

/// Shape inference's errors: argument "network", the node named in the reason.
func netExpectNetworkError(_ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                           _ body: () throws -> Void)
{
    netExpectInvalidArgument("network", fragments, sourceLocation: sourceLocation, body)
}

// MARK: - Builder

/// Builds small networks with seeded random weights (uniform with variance
/// about `1 / fan_in`) and random batchnorm statistics (positive variance).
/// A class, so that calls nest: `b.op("r", .activation(.relu), try b.conv("c", x, out: 4))`.
final class NetBuilder {
    var net = Network()
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    func channels(_ value: Int) throws -> Int { net.declaredShapes[value][1] }

    /// The shape of `value` at the declared batch.
    func shape(_ value: Int) -> [Int] { net.declaredShapes[value] }

    func input(_ name: String, _ shape: [Int]) throws -> Int { try net.addInput(name: name, shape: shape) }

    func parameter(_ name: String, _ shape: [Int], scale: Float) -> Int {
        net.addParameter(name: name, tensor: netTensor(shape, &rng, scale: scale))
    }

    /// Weight (and bias) parameters of a conv, for sharing between nodes.
    func convParameters(_ name: String, in inputs: Int, out outputs: Int, kernel: (Int, Int) = (3, 3),
                                 groups: Int = 1, bias: Bool = true) -> [Int]
    {
        let fanIn = inputs / groups * kernel.0 * kernel.1
        let scale = Float(3.0 / Double(fanIn)).squareRoot()
        let weight = parameter("\(name).weight", [outputs, inputs / groups, kernel.0, kernel.1], scale: scale)
        return bias ? [weight, parameter("\(name).bias", [outputs], scale: 0.1)] : [weight]
    }

    /// A conv with `same`-style padding `kernel / 2` unless `padding` is given.
    func conv(_ name: String, _ x: Int, out outputs: Int, kernel: Int = 3, stride: Int = 1,
                       padding: Int? = nil, dilation: Int = 1, groups: Int = 1, bias: Bool = true,
                       shared: [Int]? = nil) throws -> Int
    {
        let pad = padding ?? (kernel / 2) * dilation
        let parameters = try shared ?? convParameters(name, in: channels(x), out: outputs, kernel: (kernel, kernel),
                                                      groups: groups, bias: bias)
        let op = Op.conv2d(Conv2d(stride: (stride, stride), padding: (pad, pad, pad, pad), dilation: (dilation, dilation),
                                  groups: groups))
        return try net.addNode(name: name, op: op, inputs: [x], parameters: parameters)
    }

    /// A transposed conv: weight `[I, O/g, kernel, kernel]`, bias `[O]`.
    func convTranspose(_ name: String, _ x: Int, out outputs: Int, kernel: Int = 3, stride: Int = 1, padding: Int = 0,
                       outputPadding: Int = 0, groups: Int = 1) throws -> Int
    {
        let inputs = try channels(x)
        let scale = Float(3.0 / Double(inputs / groups * kernel * kernel)).squareRoot()
        let parameters = [parameter("\(name).weight", [inputs, outputs / groups, kernel, kernel], scale: scale),
                          parameter("\(name).bias", [outputs], scale: 0.1)]
        let op = Op.convTranspose2d(ConvTranspose2d(stride: (stride, stride), padding: (padding, padding, padding, padding),
                                                    outputPadding: (outputPadding, outputPadding), groups: groups))
        return try net.addNode(name: name, op: op, inputs: [x], parameters: parameters)
    }

    func batchNormParameters(_ name: String, _ channels: Int) -> [Int] {
        [net.addParameter(name: "\(name).gamma", tensor: Tensor(shape: [channels], data: netUniform(channels, &rng, in: 0.5...1.5))),
         net.addParameter(name: "\(name).beta", tensor: Tensor(shape: [channels], data: netUniform(channels, &rng, in: -0.2...0.2))),
         net.addParameter(name: "\(name).mean", tensor: Tensor(shape: [channels], data: netUniform(channels, &rng, in: -0.2...0.2))),
         net.addParameter(name: "\(name).var", tensor: Tensor(shape: [channels], data: netUniform(channels, &rng, in: 0.5...1.5)))]
    }

    func batchNorm(_ name: String, _ x: Int, shared: [Int]? = nil) throws -> Int {
        let parameters = try shared ?? batchNormParameters(name, channels(x))
        return try net.addNode(name: name, op: .batchNorm(epsilon: 1e-5), inputs: [x], parameters: parameters)
    }

    func linear(_ name: String, _ x: Int, out outputs: Int, bias: Bool = true) throws -> Int {
        let inputs = shape(x)[1]
        let weight = parameter("\(name).weight", [outputs, inputs], scale: Float(3.0 / Double(inputs)).squareRoot())
        let parameters = bias ? [weight, parameter("\(name).bias", [outputs], scale: 0.1)] : [weight]
        return try net.addNode(name: name, op: .linear, inputs: [x], parameters: parameters)
    }

    func op(_ name: String, _ op: Op, _ inputs: Int...) throws -> Int {
        try net.addNode(name: name, op: op, inputs: inputs)
    }

    /// Resizing by an integer `scale`, the output size written out.
    func upsample(_ name: String, _ x: Int, scale: Int, mode: UpsampleMode) throws -> Int {
        try op(name, .resize(Resize(height: shape(x)[2] * scale, width: shape(x)[3] * scale, mode: mode)), x)
    }

    /// `x op c` (or `c op x`) for a constant parameter `c` of `shape` (one
    /// sample's shape, dimensions equal or 1) with entries uniform in `range`.
    func binary(_ name: String, _ op: Binary, _ x: Int, constant shape: [Int], in range: ClosedRange<Float>) throws -> Int {
        let count = shape.reduce(1, *)
        let c = net.addParameter(name: "\(name).constant", tensor: Tensor(shape: shape, data: netUniform(count, &rng, in: range)))
        return try net.addNode(name: name, op: .binary(op), inputs: [x], parameters: [c])
    }

    func output(_ value: Int) throws { try net.addOutput(value) }

    /// Random inputs of batch `batch` for every graph input.
    func inputs(batch: Int) -> [Tensor] {
        net.inputs.map { netTensor([batch] + $0.shape.dropFirst(), &rng) }
    }
}

/// `layerScores` of a weight tensor.
func netLayerScores(_ w: Tensor, groups: Int = 1, _ criterion: Criterion) throws -> [Double] {
    let geometry = try LayerGeometry(shape: w.shape, groups: groups)
    return try w.data.withUnsafeBufferPointer { try layerScores(weight: $0, geometry: geometry, criterion: criterion) }
}

/// A convolution configuration for parameterised op tests.
struct ConvCase: Sendable, CustomTestStringConvertible {
    var label: String
    var input: [Int]
    var weight: [Int]
    var conv: Conv2d
    var bias: Bool
    var testDescription: String { label }
}
