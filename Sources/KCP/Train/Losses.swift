import Glibc

/// Training losses. Each returns its value (a mean, in Double) and the
/// gradient of that value with respect to the prediction, to be fed to the
/// network's backward pass.

/// A loss value and `gradient = dLoss/d(prediction)`, shaped like the prediction.
public struct Loss: Sendable {
    public var value: Double
    public var gradient: Tensor

    public init(value: Double, gradient: Tensor) { (self.value, self.gradient) = (value, gradient) }
}

// MARK: - Classification

/// Mean cross-entropy `-log softmax(logits)[label]` over the positions whose
/// label is not `ignoreLabel`: log-softmax followed by the negative log
/// likelihood (PyTorch `F.cross_entropy(logits, labels, ignore_index=...)`,
/// reduction `mean`). Its gradient is `(softmax(logits) - onehot(label)) / count`
/// at counted positions, zero at ignored ones.
///
/// - Parameters:
///   - logits: `[N, C]`, or `[N, C, H, W]` for one prediction per pixel.
///   - labels: one class in `0..<C` per sample (`N`) or per pixel (`N * H * W`,
///     row-major), or `ignoreLabel`.
///   - ignoreLabel: positions with this label add nothing to the loss or the count.
/// - Returns: the mean over counted positions; 0 with a zero gradient if none counts.
/// - Throws: `KCPError.invalidArgument` naming `logits` or `labels`.
public func crossEntropy(logits: Tensor, labels: [Int32], ignoreLabel: Int32? = nil) throws -> Loss {
    try require(logits.shape.count == 2 || logits.shape.count == 4, "logits",
                "must be [N, C] or [N, C, H, W], got \(logits.shape)")
    try require(logits.shape[1] >= 1, "logits", "must have at least one class, got \(logits.shape)")
    let logProbabilities = logSoftmaxForward(logits)
    let nll = try negativeLogLikelihood(logProbabilities: logProbabilities, labels: labels, ignoreLabel: ignoreLabel)
    return Loss(value: nll.value, gradient: logSoftmaxBackward(output: logProbabilities, gradient: nll.gradient))
}

/// Mean `-logProbabilities[n, label, ...]` over positions not labelled
/// `ignoreLabel` (PyTorch `F.nll_loss`, reduction `mean`); the gradient is
/// `-1 / count` at each counted position's label, zero elsewhere.
func negativeLogLikelihood(logProbabilities: Tensor, labels: [Int32], ignoreLabel: Int32?) throws -> Loss {
    let (batch, classes) = (logProbabilities.shape[0], logProbabilities.shape[1])
    let inner = logProbabilities.shape.dropFirst(2).reduce(1, *)
    try require(labels.count == batch * inner, "labels",
                "expected \(batch * inner) labels for logits \(logProbabilities.shape), got \(labels.count)")
    var count = 0
    for (i, label) in labels.enumerated() where label != ignoreLabel {
        try require(label >= 0 && Int(label) < classes, "labels",
                    "label \(label) at position \(i) is outside 0..<\(classes)"
                        + (ignoreLabel.map { " and is not the ignore label \($0)" } ?? ""))
        count += 1
    }
    var gradient = Tensor(zeros: logProbabilities.shape)
    guard count > 0 else { return Loss(value: 0, gradient: gradient) }
    var total = 0.0
    let weight = -1 / Float(count)
    for (i, label) in labels.enumerated() where label != ignoreLabel {
        let index = ((i / inner) * classes + Int(label)) * inner + i % inner
        total -= Double(logProbabilities.data[index])
        gradient.data[index] = weight
    }
    return Loss(value: total / Double(count), gradient: gradient)
}

/// `log softmax(x)_c = x_c - m - log sum_k exp(x_k - m)` over channels of
/// `[N, C, ...]`, with `m = max_k x_k` so no `exp` overflows. Parallel over samples.
func logSoftmaxForward(_ x: Tensor) -> Tensor {
    let channels = x.shape[1]
    var y = x
    forEachChannelColumn(&y) { column, _, stride in
        var peak = -Float.infinity
        for c in 0..<channels { peak = max(peak, column[c * stride]) }
        var total = 0.0
        for c in 0..<channels { total += Double(expf(column[c * stride] - peak)) }
        let shift = peak + Float(log(total))
        for c in 0..<channels { column[c * stride] -= shift }
    }
    return y
}

/// Backward of `logSoftmaxForward` from its output `y`:
/// `dL/dx_c = gradient_c - exp(y_c) * sum_k gradient_k`.
func logSoftmaxBackward(output: Tensor, gradient: Tensor) -> Tensor {
    precondition(output.shape == gradient.shape, "output \(output.shape) and gradient \(gradient.shape) differ")
    let channels = output.shape[1]
    var dx = gradient
    forEachChannelColumn(&dx, alongside: output) { g, y, stride in
        var total: Float = 0
        for c in 0..<channels { total += g[c * stride] }
        for c in 0..<channels { g[c * stride] -= expf(y![c * stride]) * total }
    }
    return dx
}

// MARK: - Regression

/// Mean smooth L1 (Huber) loss over valid elements, with `d = prediction - target`:
/// `0.5 * d^2 / beta` where `|d| < beta`, `|d| - 0.5 * beta` elsewhere
/// (Girshick, Fast R-CNN, 2015; PyTorch `F.smooth_l1_loss`, reduction `mean`).
/// Its gradient is `d / beta` or `sign(d)`, over the valid count.
///
/// - Parameters:
///   - prediction: any shape.
///   - target: the same shape as `prediction`.
///   - mask: one flag per element, `true` where the element counts (all count if nil).
///   - beta: where the quadratic turns linear, at least 0; 0 is the L1 loss.
/// - Returns: the mean over valid elements; 0 with a zero gradient if none is valid.
/// - Throws: `KCPError.invalidArgument` naming `target`, `mask` or `beta`.
public func smoothL1(prediction: Tensor, target: Tensor, mask: [Bool]? = nil, beta: Float = 1) throws -> Loss {
    try require(beta >= 0, "beta", "must be at least 0, got \(beta)")
    let b = Double(beta)
    return try meanElementwise(prediction: prediction, target: target, mask: mask) { d in
        abs(d) < b ? (0.5 * d * d / b, d / b) : (abs(d) - 0.5 * b, d > 0 ? 1 : d < 0 ? -1 : 0)
    }
}

/// Mean absolute error `|prediction - target|` over valid elements (PyTorch
/// `F.l1_loss`); the gradient is `sign(d)` over the valid count (0 at `d == 0`).
/// It is `smoothL1` with `beta = 0`, exactly: the quadratic branch is never taken.
/// - Parameters: as `smoothL1`.
/// - Throws: `KCPError.invalidArgument` naming `target` or `mask`.
public func l1(prediction: Tensor, target: Tensor, mask: [Bool]? = nil) throws -> Loss {
    try smoothL1(prediction: prediction, target: target, mask: mask, beta: 0)
}

/// Mean squared error `(prediction - target)^2` over valid elements (PyTorch
/// `F.mse_loss`); the gradient is `2 d` over the valid count.
/// - Parameters: as `smoothL1`.
/// - Throws: `KCPError.invalidArgument` naming `target` or `mask`.
public func meanSquaredError(prediction: Tensor, target: Tensor, mask: [Bool]? = nil) throws -> Loss {
    try meanElementwise(prediction: prediction, target: target, mask: mask) { d in (d * d, 2 * d) }
}

/// `mean_i f(d_i)` over valid elements, with `d = prediction - target` and
/// `loss(d) = (f(d), f'(d))`; the gradient is `f'(d_i) / count` at valid
/// elements, zero elsewhere. Sums in Double, in element order.
private func meanElementwise(prediction: Tensor, target: Tensor, mask: [Bool]?,
                             _ loss: (Double) -> (value: Double, slope: Double)) throws -> Loss
{
    try require(target.shape == prediction.shape, "target",
                "shape \(target.shape) does not match the prediction \(prediction.shape)")
    try require(mask == nil || mask!.count == prediction.count, "mask",
                "expected \(prediction.count) flags (one per prediction element), got \(mask!.count)")
    let count = mask.map { $0.reduce(0) { $0 + ($1 ? 1 : 0) } } ?? prediction.count
    var gradient = Tensor(zeros: prediction.shape)
    guard count > 0 else { return Loss(value: 0, gradient: gradient) }
    var total = 0.0
    for i in 0..<prediction.count where mask?[i] ?? true {
        let (value, slope) = loss(Double(prediction.data[i]) - Double(target.data[i]))
        total += value
        gradient.data[i] = Float(slope / Double(count))
    }
    return Loss(value: total / Double(count), gradient: gradient)
}
