/// Element-wise binary ops with NumPy broadcasting, forward and backward.
///
/// Operands have one rank (a constant parameter, shaped like one sample,
/// gains a leading 1) and each dimension equal to the output's or 1. The
/// loops walk the output in runs along its trailing dimensions, merged while
/// each operand either follows the output or stays on one element there.
func binaryForward(_ a: Tensor, _ b: Tensor, _ op: Binary, outputShape: [Int]) -> Tensor {
    let (left, right) = op.constantFirst ? (b, a) : (a, b)
    let layout = BroadcastLayout(output: outputShape, left.shape, right.shape)
    // Runs longer than a chunk (two same-shaped operands make one run) are shared out in chunks.
    let pieces = (layout.length + elementChunk - 1) / elementChunk
    return left.data.withUnsafeBufferPointer { ls in
        right.data.withUnsafeBufferPointer { rs in
            Tensor(shape: outputShape) { ys in
                parallelFor(layout.runs * pieces) { job in
                    let (run, first) = (job / pieces, job % pieces * elementChunk)
                    let length = min(elementChunk, layout.length - first)
                    let (l, r) = layout.offsets(run), (lstep, rstep) = layout.steps
                    let (lp, rp) = (ls.baseAddress! + l + first * lstep, rs.baseAddress! + r + first * rstep)
                    let yp = ys.baseAddress! + run * layout.length + first
                    switch op.kind {
                    case .add: combineRun(layout.steps, length, lp, rp, yp) { $0 + $1 }
                    case .sub: combineRun(layout.steps, length, lp, rp, yp) { $0 - $1 }
                    case .mul: combineRun(layout.steps, length, lp, rp, yp) { $0 * $1 }
                    case .div: combineRun(layout.steps, length, lp, rp, yp) { $0 / $1 }
                    }
                }
            }
        }
    }
}

/// `y[i] = f(l[i * steps.0], r[i * steps.1])` for `i < length` (part of one
/// run of a `BroadcastLayout`), a loop for each pair of steps, so the
/// compiler vectorises the ones that move (SE blocks' channel scales on
/// MobileNetV3's 960 x 32x32 features: 0.55 -> 0.1 ms).
@inline(__always)
private func combineRun(_ steps: (Int, Int), _ length: Int, _ l: UnsafePointer<Float>, _ r: UnsafePointer<Float>,
                        _ y: UnsafeMutablePointer<Float>, _ f: (Float, Float) -> Float)
{
    switch steps {
    case (1, 1): for i in 0..<length { y[i] = f(l[i], r[i]) }
    case (1, _): let c = r[0]; for i in 0..<length { y[i] = f(l[i], c) }
    case (_, 1): let c = l[0]; for i in 0..<length { y[i] = f(c, r[i]) }
    default: let c = f(l[0], r[0]); for i in 0..<length { y[i] = c }
    }
}

/// `(dL/da, dL/db)` of `binaryForward`, each summed over the dimensions its
/// operand broadcast along and shaped like it: for `y = l op r`,
/// `dl = g, g, g r, g / r` and `dr = g, -g, g l, -g l / r^2` (add, sub, mul, div).
func binaryBackward(_ a: Tensor, _ b: Tensor, _ op: Binary, gradient: Tensor) -> (a: Tensor, b: Tensor) {
    let (left, right) = op.constantFirst ? (b, a) : (a, b)
    if left.shape == gradient.shape && right.shape == gradient.shape {
        let (dl, dr) = elementGradients(left, right, op.kind, gradient: gradient)
        return op.constantFirst ? (dr, dl) : (dl, dr)
    }
    let layout = BroadcastLayout(output: gradient.shape, left.shape, right.shape)
    var dl = Tensor(zeros: left.shape), dr = Tensor(zeros: right.shape)
    left.data.withUnsafeBufferPointer { ls in
        right.data.withUnsafeBufferPointer { rs in
            gradient.data.withUnsafeBufferPointer { gs in
                dl.data.withUnsafeMutableBufferPointer { dls in
                    dr.data.withUnsafeMutableBufferPointer { drs in
                        for run in 0..<layout.runs {
                            let (l, r) = layout.offsets(run)
                            let (lp, rp, gp) = (ls.baseAddress! + l, rs.baseAddress! + r, gs.baseAddress! + run * layout.length)
                            let (dlp, drp) = (dls.baseAddress! + l, drs.baseAddress! + r)
                            let (lstep, rstep) = (layout.steps.0, layout.steps.1)
                            for i in 0..<layout.length {
                                let (g, x, y) = (gp[i], lp[i * lstep], rp[i * rstep])
                                switch op.kind {
                                case .add: dlp[i * lstep] += g; drp[i * rstep] += g
                                case .sub: dlp[i * lstep] += g; drp[i * rstep] -= g
                                case .mul: dlp[i * lstep] += g * y; drp[i * rstep] += g * x
                                case .div: dlp[i * lstep] += g / y; drp[i * rstep] -= g * x / (y * y)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return op.constantFirst ? (dr, dl) : (dl, dr)
}

/// `binaryBackward` where neither operand broadcasts: nothing to sum, so
/// each gradient is one element-wise pass (an add's both `g` itself, shared
/// rather than copied: the residual adds of a ResNet's backward pass), with
/// the float operations of the general loop.
private func elementGradients(_ l: Tensor, _ r: Tensor, _ kind: Binary.Kind, gradient g: Tensor) -> (Tensor, Tensor) {
    let (x, y, dy) = (l.data, r.data, g.data)
    func gradient(_ f: (Int) -> Float) -> Tensor { Tensor(shape: g.shape, data: dy.indices.map(f)) }
    switch kind {
    case .add: return (g, g)
    case .sub: return (g, gradient { 0 - dy[$0] })
    case .mul: return (gradient { 0 + dy[$0] * y[$0] }, gradient { 0 + dy[$0] * x[$0] })
    case .div: return (gradient { 0 + dy[$0] / y[$0] }, gradient { 0 - dy[$0] * x[$0] / (y[$0] * y[$0]) })
    }
}

/// How two operands map onto a broadcast output: the output is split into
/// `runs` contiguous runs of `length` elements; in a run operand `k` moves by
/// `steps.k` (1, or 0 where it broadcasts), and `offsets(run)` gives where
/// each starts.
private struct BroadcastLayout {
    var runs: Int
    var length: Int
    var steps: (Int, Int)
    /// Outer dimensions (slowest first), with each operand's stride in them.
    var outer: [(size: Int, strides: (Int, Int))]

    init(output: [Int], _ a: [Int], _ b: [Int]) {
        let rank = output.count
        let a = Array(repeating: 1, count: rank - a.count) + a, b = Array(repeating: 1, count: rank - b.count) + b
        func strides(_ shape: [Int]) -> [Int] {
            var result = [Int](repeating: 0, count: rank), stride = 1
            for d in (0..<rank).reversed() {
                result[d] = shape[d] == 1 ? 0 : stride
                stride *= shape[d]
            }
            return result
        }
        let (sa, sb) = (strides(a), strides(b))
        // Trailing dimensions merge into one run while each operand keeps one pattern (contiguous, or broadcast).
        var split = rank, length = 1
        let stepA = rank > 0 && sa[rank - 1] != 0 ? 1 : 0, stepB = rank > 0 && sb[rank - 1] != 0 ? 1 : 0
        while split > 0 {
            let d = split - 1
            if output[d] == 1 {
                split -= 1
                continue
            }
            let followsA = stepA == 0 ? sa[d] == 0 : sa[d] == length
            let followsB = stepB == 0 ? sb[d] == 0 : sb[d] == length
            if !(followsA && followsB) { break }
            length *= output[d]
            split -= 1
        }
        self.length = max(length, 1)
        steps = (stepA, stepB)
        outer = (0..<split).map { (output[$0], (sa[$0], sb[$0])) }
        runs = output.reduce(1, *) / self.length
    }

    func offsets(_ run: Int) -> (Int, Int) {
        var rest = run, a = 0, b = 0
        for (size, strides) in outer.reversed() {
            let index = rest % size
            rest /= size
            a += index * strides.0
            b += index * strides.1
        }
        return (a, b)
    }
}
