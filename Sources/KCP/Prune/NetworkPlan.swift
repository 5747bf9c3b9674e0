/// Which channel classes of a network to prune, and how much.
public struct PruningTarget: Sendable {
    public enum Amount: Sendable {
        /// Prune `floor(ratio * n)` of every space's prunable channels.
        case ratio(Double)
        /// The smallest uniform ratio whose compact network has at least this
        /// fraction fewer MACs (bisection).
        case macsReduction(Double)
    }

    public var amount: Amount
    /// Rank normalised scores across all spaces instead of within each.
    public var global: Bool = false
    /// Global ranking never prunes more than this fraction of one space.
    public var maxRatio: Double = 0.9
    public var criterion: Criterion = .kcp(center: .mean)
    public var roundTo: Int = 1
    public var seed: UInt64 = 0
    /// Fixed ratios for some spaces (by index), outside the uniform or global choice.
    public var overrides: [Int: Double] = [:]

    public init(amount: Amount, global: Bool = false, maxRatio: Double = 0.9, criterion: Criterion = .kcp(center: .mean),
                roundTo: Int = 1, seed: UInt64 = 0, overrides: [Int: Double] = [:])
    {
        (self.amount, self.global, self.maxRatio, self.criterion) = (amount, global, maxRatio, criterion)
        (self.roundTo, self.seed, self.overrides) = (roundTo, seed, overrides)
    }
}

/// A pruning decision for a whole network: which channel classes stay.
public struct NetworkPlan: Sendable {
    public let spaces: ChannelSpaces
    /// Score of every class (sum over its consumers, or producers for the baselines).
    public let scores: [Double]
    /// Whether each class is kept.
    public let keep: [Bool]
    /// The uniform (or global) ratio that was applied.
    public let ratio: Double
    public let before: Cost
    public let after: Cost

    /// Scores every channel class of `network` and selects what to prune.
    /// - Parameters:
    ///   - network: the network to plan for.
    ///   - target: which classes to prune, and how much.
    ///   - weights: caller-owned weights scored in place of the network's own,
    ///     by parameter index; each holds as many elements as its parameter
    ///     and is read only during the call.
    ///   - spaces: `network`'s channel spaces, where the caller keeps them.
    public init(network: Network, target: PruningTarget, weights: [Int: UnsafeBufferPointer<Float>] = [:],
                spaces: ChannelSpaces? = nil) throws
    {
        for (index, weight) in weights {
            try require(network.parameters.indices.contains(index), "weights", "no parameter \(index)")
            let parameter = network.parameters[index]
            try require(weight.count == parameter.tensor.count, "weights",
                        "parameter '\(parameter.name)' has \(parameter.tensor.count) elements, got \(weight.count)")
        }
        try require(target.roundTo >= 1, "round_to", "must be at least 1, got \(target.roundTo)")
        try require(target.maxRatio >= 0 && target.maxRatio < 1, "max_ratio", "must be in [0, 1), got \(target.maxRatio)")
        let shapes = try network.inferShapes()
        let spaces = spaces ?? ChannelSpaces(network: network, shapes: shapes)
        for (space, ratio) in target.overrides {
            try require(spaces.spaces.indices.contains(space), "overrides", "no space \(space)")
            try require(ratio >= 0 && ratio < 1, "overrides", "ratio of space \(space) must be in [0, 1), got \(ratio)")
        }
        let scores = try classScores(network, spaces, criterion: target.criterion, weights: weights)
        let before = try network.cost()
        func select(_ ratio: Double) throws -> [Bool] {
            var keep = try uniformSelection(spaces, scores, ratio: ratio, roundTo: target.roundTo,
                                            overrides: target.overrides)
            if target.global {
                let ranked = globalSelection(spaces, scores, ratio: ratio, maxRatio: target.maxRatio,
                                             excluding: Set(target.overrides.keys))
                for label in keep.indices where target.overrides[spaces.spaceOf[label]] == nil { keep[label] = ranked[label] }
            }
            return keep
        }
        func costAfter(_ keep: [Bool]) throws -> Cost {
            try network.cost(shapes: shapes, keep: network.channelKeep(spaces, keepClasses: keep))
        }
        var ratio: Double
        switch target.amount {
        case let .ratio(r):
            try require(r >= 0 && r < 1, "ratio", "must be in [0, 1), got \(r)")
            ratio = r
        case let .macsReduction(goal):
            try require(goal > 0 && goal < 1, "macs_reduction", "must be in (0, 1), got \(goal)")
            try require(before.macs > 0, "macs_reduction", "the network has no MACs to reduce (no conv2d or linear layer)")
            func reduction(_ r: Double) throws -> Double {
                1 - Double(try costAfter(try select(r)).macs) / Double(before.macs)
            }
            var (low, high) = (0.0, 0.999)
            let best = try reduction(high)
            try require(best >= goal, "macs_reduction",
                        "a \(Int(goal * 100))% reduction is out of reach: pruning all prunable channels saves \(Int(best * 100))%")
            for _ in 0..<40 {
                let middle = (low + high) / 2
                if try reduction(middle) >= goal { high = middle } else { low = middle }
            }
            ratio = high
        }
        let keep = try select(ratio)
        (self.spaces, self.scores, self.keep, self.ratio) = (spaces, scores, keep, ratio)
        (self.before, self.after) = (before, try costAfter(keep))
    }
}

extension NetworkPlan {
    /// A plan keeping the classes `keep` (as saved in a checkpoint); scores
    /// are not kept.
    init(network: Network, keep: [Bool], ratio: Double) throws {
        let shapes = try network.inferShapes()
        spaces = ChannelSpaces(network: network, shapes: shapes)
        try network.validate(spaces, keepClasses: keep)
        (scores, self.keep, self.ratio) = ([], keep, ratio)
        before = try network.cost()
        after = try network.cost(shapes: shapes, keep: network.channelKeep(spaces, keepClasses: keep))
    }
}

/// Per class: the sum of KCP scores `s_i` over every consumer layer reading
/// it, or of a baseline's filter scores over every producer writing it.
///
/// A class that no conv or linear layer reads (features that only reach a
/// stereo correlation) has no kernel clusters to score; KCP then scores it
/// from its producers, by the distance of each filter `W[o]` to the layer's
/// mean filter, normalised per layer like `s_i`.
func classScores(_ network: Network, _ spaces: ChannelSpaces, criterion: Criterion,
                 weights: [Int: UnsafeBufferPointer<Float>]) throws -> [Double]
{
    var scores = [Double](repeating: 0, count: spaces.classCount)
    if case let .filter(.random(seed)) = criterion {
        var rng = SplitMix64(seed: seed)
        return scores.map { _ in rng.nextUnit() }
    }
    var scored = [Bool](repeating: false, count: spaces.classCount)
    try forEachWeightedLayer(network, weights) { node, weight, geometry in
        let layerChannels = criterion.scoresInputs ? spaces.classOf[node.inputs[0]] : spaces.classOf[node.output]
        if layerChannels.allSatisfy({ spaces.frozen[$0] }) { return }
        let layer = try layerScores(weight: weight, geometry: geometry, criterion: criterion)
        for (channel, score) in layer.enumerated() {
            scores[layerChannels[channel]] += score
            scored[layerChannels[channel]] = true
        }
    }
    guard criterion.scoresInputs, scored.contains(false) else { return scores }
    try forEachWeightedLayer(network, weights) { node, weight, geometry in
        let outputs = spaces.classOf[node.output]
        if outputs.allSatisfy({ scored[$0] || spaces.frozen[$0] }) { return }
        try requireFinite(weight, shape: geometry.shape, argument: "weight")
        let distances = distancesToMeanRow(weight.baseAddress!, rows: geometry.outChannels,
                                           length: geometry.filterLength)
        for (o, score) in normalizedByMean(distances).enumerated() where !scored[outputs[o]] {
            scores[outputs[o]] += score
        }
    }
    return scores
}

/// Calls `body` with every conv, transposed conv and linear node, its
/// weight (from `weights` by parameter index, else the network's own) and
/// the weight's geometry. A transposed conv is scored as the conv it equals
/// with stride 1: its weight `[I, O/g, kh, kw]` (or `[I, O/g, kd, kh, kw]`)
/// becomes `transposedKernels`' `[O, I/g, kh, kw]`, so the kernel cluster of input `i` is `W[i]` and a
/// filter gathers every kernel writing one output (the taps' flip changes no
/// distance).
private func forEachWeightedLayer(_ network: Network, _ weights: [Int: UnsafeBufferPointer<Float>],
                                  _ body: (Node, UnsafeBufferPointer<Float>, LayerGeometry) throws -> Void) throws
{
    for node in network.nodes {
        let groups: Int
        switch node.op {
        case .conv2d, .convTranspose2d, .conv3d, .convTranspose3d: groups = node.op.convolutionGroups!
        case .linear: groups = 1
        default: continue
        }
        let own = network.parameters[node.parameters[0]].tensor, borrowed = weights[node.parameters[0]]
        if node.op.isTransposedConvolution {
            let conv = transposedKernels(Tensor(shape: own.shape, data: borrowed.map(Array.init) ?? own.data), groups: groups)
            let geometry = try LayerGeometry(shape: conv.shape, groups: groups)
            try conv.data.withUnsafeBufferPointer { try body(node, $0, geometry) }
            continue
        }
        let geometry = try LayerGeometry(shape: own.shape, groups: groups)
        if let borrowed {
            try body(node, borrowed, geometry)
        } else {
            try own.data.withUnsafeBufferPointer { try body(node, $0, geometry) }
        }
    }
}

/// `||r_o - mean_o' r_o'||_2` for each row of a `[rows, length]` matrix.
private func distancesToMeanRow(_ r: UnsafePointer<Float>, rows: Int, length: Int) -> [Double] {
    var mean = [Double](repeating: 0, count: length)
    for o in 0..<rows {
        for k in 0..<length { mean[k] += Double(r[o * length + k]) / Double(rows) }
    }
    return (0..<rows).map { o in
        (0..<length).reduce(0.0) { sum, k in
            let d = Double(r[o * length + k]) - mean[k]
            return sum + d * d
        }.squareRoot()
    }
}

/// In every space, prune `floor(r * n)` of its `n` prunable classes, with
/// `r` its override or `ratio`.
func uniformSelection(_ spaces: ChannelSpaces, _ scores: [Double], ratio: Double, roundTo: Int,
                      overrides: [Int: Double] = [:]) throws -> [Bool]
{
    var keep = [Bool](repeating: true, count: spaces.classCount)
    for (index, space) in spaces.spaces.enumerated() {
        let prunable = space.classes.filter { !spaces.frozen[$0] }
        if prunable.isEmpty { continue }
        let selected = try selectKeep(scores: prunable.map { scores[$0] }, ratio: overrides[index] ?? ratio,
                                      roundTo: roundTo)
        for (position, label) in prunable.enumerated() { keep[label] = selected[position] }
    }
    return keep
}

/// Prune the `floor(ratio * total)` lowest-scored prunable classes across
/// all spaces but `excluding`, never more than `maxRatio` of one space and
/// never its last.
func globalSelection(_ spaces: ChannelSpaces, _ scores: [Double], ratio: Double, maxRatio: Double,
                     excluding: Set<Int> = []) -> [Bool]
{
    var keep = [Bool](repeating: true, count: spaces.classCount)
    let prunable = (0..<spaces.classCount).filter { !spaces.frozen[$0] && !excluding.contains(spaces.spaceOf[$0]) }
    var budget = [Int](repeating: 0, count: spaces.spaces.count)
    for label in prunable { budget[spaces.spaceOf[label]] += 1 }
    budget = budget.map { n in min(Int((maxRatio * Double(n)).rounded(.down)), max(n - 1, 0)) }
    var remaining = Int((ratio * Double(prunable.count)).rounded(.down))
    for label in prunable.sorted(by: { (scores[$0], $0) < (scores[$1], $1) }) where remaining > 0 {
        let space = spaces.spaceOf[label]
        if budget[space] == 0 { continue }
        keep[label] = false
        budget[space] -= 1
        remaining -= 1
    }
    return keep
}
