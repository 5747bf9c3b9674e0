import Testing
@testable import KCP

// A reusable finite-difference gradient checker. A backward pass is checked
// on the scalar loss `L = sum_k r[k] * f(x)[k]` for fixed random `r`: its
// analytic gradient is the backward given `gradient = r`, and its numeric
// gradient is the central difference of `L` (accumulated in double) in
// every element of every argument. Names carry an `fd` prefix so they never
// collide with other test helpers.

/// Uniform floats in `[-scale, scale)` drawn from `rng`.
func fdUniform(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
    (0..<count).map { _ in Float(rng.nextUnit() * 2 - 1) * scale }
}

func fdTensor(_ shape: [Int], _ rng: inout SplitMix64, scale: Float = 1) -> Tensor {
    Tensor(shape: shape, data: fdUniform(shape.reduce(1, *), &rng, scale: scale))
}

/// Distinct values `spacing * (a random permutation of 0..<count)`, centered
/// on zero: no two within `spacing` (max pooling's argmax then stays put
/// under perturbations smaller than `spacing / 2`).
func fdDistinct(_ shape: [Int], _ rng: inout SplitMix64, spacing: Float = 0.05) -> Tensor {
    let count = shape.reduce(1, *)
    var order = Array(0..<count)
    order.shuffle(using: &rng)
    return Tensor(shape: shape, data: order.map { (Float($0) - Float(count) / 2) * spacing })
}

/// `L = sum_k r[k] * y[k]` in double precision.
func fdDot(_ r: Tensor, _ y: Tensor) -> Double {
    precondition(r.shape == y.shape, "loss weights \(r.shape) do not match output \(y.shape)")
    return zip(r.data, y.data).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}

/// Central differences of `loss` with respect to every element of every
/// array in `arguments`: `(L(a + h e_i) - L(a - h e_i)) / (2 h)`, where the
/// step `2 h` is the float difference actually applied.
func fdGradients(_ arguments: [[Float]], step: Float, _ loss: ([[Float]]) -> Double) -> [[Double]] {
    arguments.indices.map { a in
        var args = arguments
        return arguments[a].indices.map { i in
            let value = arguments[a][i]
            let (up, down) = (value + step, value - step)
            args[a][i] = up
            let high = loss(args)
            args[a][i] = down
            let low = loss(args)
            args[a][i] = value
            return (high - low) / (Double(up) - Double(down))
        }
    }
}

/// Expects `max_i |analytic_i - numeric_i| <= tolerance * max(max_i |numeric_i|, floor)`
/// (relative to the largest gradient entry, so that float noise in
/// near-zero entries does not count), for each named argument.
func fdExpectClose(_ analytic: [[Float]], _ numeric: [[Double]], names: [String], tolerance: Double = 1e-2,
                   floor: Double = 1e-3, sourceLocation: SourceLocation = #_sourceLocation)
{
    #expect(analytic.count == numeric.count, sourceLocation: sourceLocation)
    for (k, (a, n)) in zip(analytic, numeric).enumerated() {
        let name = k < names.count ? names[k] : "argument \(k)"
        #expect(a.count == n.count, "\(name): \(a.count) analytic against \(n.count) numeric entries",
                sourceLocation: sourceLocation)
        guard a.count == n.count else { continue }
        let scale = Swift.max(n.reduce(0.0) { Swift.max($0, abs($1)) }, floor)
        let (worst, at) = zip(a, n).enumerated().reduce((0.0, -1)) { best, item in
            let error = abs(Double(item.element.0) - item.element.1)
            return error > best.0 ? (error, item.offset) : best
        }
        let detail = at >= 0 ? "analytic \(a[at]), numeric \(n[at])" : ""
        #expect(worst <= tolerance * scale, "\(name): relative error \(worst / scale) at \(at) (\(detail))",
                sourceLocation: sourceLocation)
    }
}

/// The whole check: `forward(arguments)` gives the output, `backward(r)` the
/// analytic gradients of `L = sum r * forward(arguments)` in the order of
/// `arguments`; every element of every argument is perturbed by `step`.
/// Float32 forwards leave the numeric gradient about 1e-5 (relative) off for
/// a step of 1e-2, so the default tolerance of 1e-3 still catches a 1% error.
func fdCheck(_ arguments: [[Float]], names: [String], seed: UInt64, step: Float = 1e-2, tolerance: Double = 1e-3,
             forward: ([[Float]]) -> Tensor, backward: (Tensor) -> [[Float]],
             sourceLocation: SourceLocation = #_sourceLocation)
{
    var rng = SplitMix64(seed: seed)
    let shape = forward(arguments).shape
    let r = fdTensor(shape, &rng)
    let numeric = fdGradients(arguments, step: step) { fdDot(r, forward($0)) }
    fdExpectClose(backward(r), numeric, names: names, tolerance: tolerance, sourceLocation: sourceLocation)
}

/// Expects `actual` equal to the literal `expected` within `tolerance`.
func fdExpectEqual(_ actual: [Float], _ expected: [Double], tolerance: Double = 1e-5, _ what: String = "",
                   sourceLocation: SourceLocation = #_sourceLocation)
{
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)",
            sourceLocation: sourceLocation)
    let worst = zip(actual, expected).reduce(0.0) { Swift.max($0, abs(Double($1.0) - $1.1)) }
    #expect(worst <= tolerance, "\(what): got \(actual), expected \(expected)", sourceLocation: sourceLocation)
}

/// `fdCheck` of an op's own `forward` and `backward` (the ones the network
/// runs): every input, then every parameter, is an argument.
func fdCheckOp(_ op: Op, _ inputs: [Tensor], parameters: [Tensor] = [], seed: UInt64, step: Float = 1e-2,
               tolerance: Double = 1e-3, sourceLocation: SourceLocation = #_sourceLocation)
{
    let shapes = (inputs + parameters).map(\.shape)
    let outputShape = try! op.outputShape(inputs: inputs.map(\.shape), parameters: parameters.map(\.shape))
    func run(_ arguments: [[Float]]) -> Tensor {
        let all = zip(shapes, arguments).map { Tensor(shape: $0, data: $1) }
        return op.forward(Array(all.prefix(inputs.count)), parameters: Array(all.dropFirst(inputs.count)),
                          outputShape: outputShape)
    }
    let names = inputs.indices.map { "\(op.name) input \($0)" } + parameters.indices.map { "\(op.name) parameter \($0)" }
    fdCheck((inputs + parameters).map(\.data), names: names, seed: seed, step: step, tolerance: tolerance,
            forward: run,
            backward: { r in
                let y = run((inputs + parameters).map(\.data))
                let g = op.backward(inputs, parameters: parameters, output: y, statistics: nil, gradient: r)
                return (g.inputs + g.parameters).map(\.data)
            }, sourceLocation: sourceLocation)
}
