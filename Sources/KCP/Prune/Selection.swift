/// Which channels to keep given their scores.
///
/// Prunes `floor(ratio * n)` channels, ascending by `(score, index)`, and
/// always keeps at least one; with `roundTo = q` the kept count is rounded up
/// to a multiple of `q` (capped at `n`). Channels marked in `protected` are
/// never pruned (then fewer may be pruned than the count asks).
/// - Returns: `keep[i]` for every channel.
public func selectKeep(scores: [Double], ratio: Double, roundTo: Int = 1,
                       protected: [Bool]? = nil) throws -> [Bool]
{
    let n = scores.count
    try require(n > 0, "scores", "must not be empty")
    try require(ratio >= 0 && ratio < 1, "ratio", "must be in [0, 1), got \(ratio)")
    try require(roundTo >= 1, "round_to", "must be at least 1, got \(roundTo)")
    try require(scores.allSatisfy(\.isFinite), "scores", "must be finite")
    let pruneCount = n - keptCount(channels: n, ratio: ratio, roundTo: roundTo)
    let candidates = (0..<n).filter { !(protected?[$0] ?? false) }
        .sorted { (scores[$0], $0) < (scores[$1], $1) }
    var keep = [Bool](repeating: true, count: n)
    for i in candidates.prefix(pruneCount) { keep[i] = false }
    return keep
}

/// `min(n, roundUp(max(1, n - floor(ratio * n)), roundTo))`.
public func keptCount(channels n: Int, ratio: Double, roundTo: Int) -> Int {
    let kept = max(1, n - Int((ratio * Double(n)).rounded(.down)))
    let multiple = min(roundTo, n) // any multiple >= n is capped at n
    return min(n, (kept + multiple - 1) / multiple * multiple)
}
