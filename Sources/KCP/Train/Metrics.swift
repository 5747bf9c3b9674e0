/// Task metrics on network outputs.

/// Fraction of samples whose largest logit is the label (`logits [N, C]`).
func accuracy(logits: Tensor, labels: [Int32]) -> Double {
    let (count, classes) = (logits.shape[0], logits.shape[1])
    var correct = 0
    for n in 0..<count {
        let row = logits.data[(n * classes)..<((n + 1) * classes)]
        if let best = row.indices.max(by: { row[$0] < row[$1] }), best - n * classes == Int(labels[n]) { correct += 1 }
    }
    return Double(correct) / Double(max(count, 1))
}

/// Segmentation quality from per-pixel logits `[N, C, H, W]` and labels
/// `[N * H * W]` (pixels labelled `ignoreLabel` skipped): pixel accuracy and
/// mean intersection over union over the classes that occur in prediction
/// or truth.
func segmentationScores(logits: Tensor, labels: [Int32], ignoreLabel: Int32?) -> (pixelAccuracy: Double, meanIoU: Double) {
    let (batch, classes) = (logits.shape[0], logits.shape[1]), plane = logits.shape[2] * logits.shape[3]
    var intersection = [Int](repeating: 0, count: classes), union = intersection
    var (correct, counted) = (0, 0)
    for n in 0..<batch {
        for p in 0..<plane {
            let label = labels[n * plane + p]
            if label == ignoreLabel { continue }
            var best = 0
            for c in 1..<classes where logits.data[(n * classes + c) * plane + p] > logits.data[(n * classes + best) * plane + p] {
                best = c
            }
            counted += 1
            if best == Int(label) {
                correct += 1
                intersection[best] += 1
                union[best] += 1
            } else {
                union[best] += 1
                union[Int(label)] += 1
            }
        }
    }
    let present = (0..<classes).filter { union[$0] > 0 }
    let iou = present.reduce(0.0) { $0 + Double(intersection[$1]) / Double(union[$1]) } / Double(max(present.count, 1))
    return (Double(correct) / Double(max(counted, 1)), iou)
}

/// Disparity quality over valid pixels: end-point error (mean absolute
/// difference) and the fraction of pixels off by more than `threshold`.
func disparityScores(prediction: Tensor, target: [Float], mask: [Bool]?, threshold: Float = 3)
    -> (endPointError: Double, badPixelRate: Double)
{
    var (total, bad, counted) = (0.0, 0, 0)
    for (k, value) in prediction.data.enumerated() where mask?[k] ?? true {
        let error = abs(value - target[k])
        total += Double(error)
        if error > threshold { bad += 1 }
        counted += 1
    }
    return (total / Double(max(counted, 1)), Double(bad) / Double(max(counted, 1)))
}
