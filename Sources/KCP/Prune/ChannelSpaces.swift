/// Which channels of a network must be pruned together.
///
/// Every channel of every value (axis 1) is a node of a union-find; ops tie
/// channels: element-wise ops (binary ops, channelwise ops) tie every input
/// of the output's width to the output channel by channel (an input of one
/// channel broadcasts and stays apart), channel-preserving ops (batchnorm,
/// activations, pooling, resizing, identity) their input and output, a
/// depthwise conv (or transposed conv) with multiplier `m` each output `o`
/// to input `o / m`, a grouped one (`1 < g < C`) channel `j` of every group of its input, and
/// of its output, so that groups shrink alike and `g` stays, a channel
/// shuffle or chunk likewise the `j`-th channel of every group or part of
/// its input (and each output channel to the input channel it moves), a
/// concat each output segment to its input, a flatten of spatial size `S`
/// columns `[c*S, (c+1)*S)` to channel `c`, a stereo correlation or cost
/// volume its left and right inputs, and nodes sharing a parameter their inputs and outputs. A *channel
/// class* is one set of tied channels, pruned as a unit; a *space* is the
/// set of values tied by any of these ops but concat, and its classes are its
/// channels. A concat's output is a view: its channels are the ordered union
/// of its inputs' spaces.
///
/// A class is *frozen* (never pruned) if it touches a network input or
/// output, or an op that mixes channels (softmax, soft-argmin, a
/// correlation's disparity output, a group correlation volume's groups), or
/// is a divisor (`a / b`, `c / x`: a masked channel would divide by 0), or if
/// an activation with `f(0) != 0` reaches a correlation (DispNetC's or a
/// group-wise volume): a masked channel there would be `sigmoid(0) = 0.5`,
/// not 0, and the correlation sums over channels.
///
/// Cost volumes tie their left and right features (a Siamese extractor's
/// shared weights tie them too). A concatenation volume `[N, 2C, D, H, W]` is
/// a view, as a concat of the two is: feature channel `c` is its channels `c`
/// and `C + c`, so pruning `c` removes both. A group correlation's features
/// keep the same positions in every group (as a grouped conv's), so that `G`
/// and the volume's channels stay, and its fixed `scale` (the original
/// `G / C`) keeps the compact volume equal to the masked one; whole groups
/// would change `G`, which models written with a constant `G` cannot follow.
public struct ChannelSpaces: Sendable {
    public struct Space: Sendable {
        /// Values of the space, ascending.
        public var values: [Int]
        /// Its channel classes, ascending; a class's channel index in the
        /// space is its position here.
        public var classes: [Int]
        /// Why classes of this space are frozen, one line per cause.
        public var frozenReasons: [String]
    }

    /// `classOf[v][c]`: class of channel `c` of value `v`.
    public let classOf: [[Int]]
    /// Space of each class.
    public let spaceOf: [Int]
    /// Whether each class is frozen.
    public let frozen: [Bool]
    public let spaces: [Space]

    public var classCount: Int { spaceOf.count }

    public init(network: Network, shapes: [[Int]]) {
        let channels = shapes.map { $0.count >= 2 ? $0[1] : 0 }
        var offsets = [0]
        for count in channels { offsets.append(offsets.last! + count) }
        var channelSets = UnionFind(count: offsets.last!)
        var valueSets = UnionFind(count: network.valueCount)
        var reasons = [[String]](repeating: [], count: network.valueCount)

        /// Ties channel `c` of `a` to channel `map(c)` of `b` for every channel
        /// of `a`; `sameSpace` also puts `a` and `b` in one space.
        func tie(_ a: Int, _ b: Int, sameSpace: Bool = true, _ map: (Int) -> Int = { $0 }) {
            if sameSpace { valueSets.union(a, b) }
            for c in 0..<channels[a] { channelSets.union(offsets[a] + c, offsets[b] + map(c)) }
        }
        /// Ties channel `j` of every one of `groups` equal groups of `value`'s
        /// channels, so that every group keeps the same positions.
        func alignGroups(_ value: Int, _ groups: Int) {
            let perGroup = channels[value] / groups
            for group in 1..<max(groups, 1) {
                for j in 0..<perGroup { channelSets.union(offsets[value] + j, offsets[value] + group * perGroup + j) }
            }
        }
        /// A conv (or transposed conv) of `groups` groups from `x` to `y`:
        /// depthwise (`groups` = `x`'s width, multiplier `m`) ties output `o`
        /// to input `o / m`; other grouped ones align the groups of both.
        func tieGroups(_ x: Int, _ y: Int, _ groups: Int) {
            if groups == 1 { return }
            if groups == channels[x] {
                let multiplier = channels[y] / channels[x]
                tie(y, x) { $0 / multiplier }
            } else {
                alignGroups(x, groups)
                alignGroups(y, groups)
            }
        }
        func freeze(_ values: [Int], _ reason: String) {
            for value in values { reasons[value].append(reason) }
        }

        for (value, _) in network.inputs { freeze([value], "network input '\(network.valueNames[value])'") }
        for value in network.outputs { freeze([value], "network output '\(network.valueNames[value])'") }
        var users = [Int: [Int]]()
        var isView = [Bool](repeating: false, count: network.valueCount)
        for (index, node) in network.nodes.enumerated() {
            for p in node.parameters { users[p, default: []].append(index) }
            let x = node.inputs[0], y = node.output
            switch node.op {
            case let .conv2d(conv): tieGroups(x, y, conv.groups)
            case let .convTranspose2d(t): tieGroups(x, y, t.groups)
            case let .conv3d(conv): tieGroups(x, y, conv.groups)
            case let .convTranspose3d(t): tieGroups(x, y, t.groups)
            case let .normalization(n):
                tie(x, y)
                // GroupNorm loses whole groups: a group's channels share statistics over its positions.
                if n.groups > 1 && n.groups < channels[x] {
                    let perGroup = channels[x] / n.groups
                    for c in 0..<channels[x] where c % perGroup > 0 { channelSets.union(offsets[x] + c, offsets[x] + c - 1) }
                }
            case .batchNorm, .activation, .maxPool, .avgPool, .maxPool3d, .avgPool3d, .adaptivePool, .globalAvgPool, .resize,
                 .resize3d, .identity:
                tie(x, y)
            case let .binary(binary):
                for input in node.inputs where channels[input] == channels[y] { tie(input, y) }
                // A masked (zero) channel of a divisor would give x / 0 and poison the network.
                if binary.kind == .div, node.parameters.isEmpty || binary.constantFirst {
                    freeze([node.inputs.count > 1 ? node.inputs[1] : x], "divisor of \(node.op.name) '\(node.name)'")
                }
            case .channelwise:
                for input in node.inputs where channels[input] == channels[y] { tie(input, y) }
            case .concat:
                isView[y] = true
                var offset = 0
                for input in node.inputs {
                    let start = offset
                    tie(input, y, sameSpace: false) { start + $0 }
                    offset += channels[input]
                }
            case .flatten:
                let spatial = channels[y] / max(channels[x], 1)
                tie(y, x) { $0 / spatial }
            case let .channelShuffle(groups):
                let perGroup = channels[x] / groups
                alignGroups(x, groups)
                tie(y, x) { ($0 % groups) * perGroup + $0 / groups }
            case let .channelChunk(index, parts):
                alignGroups(x, parts)
                tie(y, x) { index * channels[y] + $0 }
            case .correlation:
                tie(x, node.inputs[1])
                freeze([y], "disparity channels of correlation '\(node.name)'")
            case let .costVolume(volume):
                tie(x, node.inputs[1])
                switch volume.kind {
                case .concatenation:
                    // Feature channel c appears twice: the left's at c, the right's at C + c.
                    isView[y] = true
                    tie(x, y, sameSpace: false)
                    tie(node.inputs[1], y, sameSpace: false) { channels[x] + $0 }
                case .groupCorrelation:
                    // Every group keeps the same positions; the volume's G channels stay.
                    alignGroups(x, volume.groups)
                    freeze([y], "group channels of cost volume '\(node.name)'")
                }
            case .softmax, .softArgmin:
                freeze([x, y], "\(node.op.name) '\(node.name)' mixes channels")
            case .linear:
                break
            }
        }
        for (parameter, sharing) in users where sharing.count > 1 {
            let first = network.nodes[sharing[0]]
            for index in sharing.dropFirst() {
                let node = network.nodes[index]
                let (a, b) = (first.inputs[0], node.inputs[0])
                if channels[a] == channels[b] && channels[first.output] == channels[node.output] {
                    tie(first.output, node.output)
                    tie(a, b)
                } else {
                    freeze([a, b, first.output, node.output],
                           "parameter '\(network.parameters[parameter].name)' shared by layers of different widths")
                }
            }
        }

        let labels = channelSets.labels()
        classOf = (0..<network.valueCount).map { Array(labels[offsets[$0]..<offsets[$0 + 1]]) }
        for correlation in network.nodes where correlation.op.multipliesFeatures {
            let read = Set(classOf[correlation.inputs[0]])
            for node in network.nodes where !read.isDisjoint(with: classOf[node.output]) {
                guard case let .activation(activation) = node.op, !activation.keepsZero else { continue }
                freeze(correlation.inputs, "\(node.op.name) '\(node.name)' (nonzero at 0) feeds correlation '\(correlation.name)'")
            }
        }
        let classCount = (labels.max() ?? -1) + 1
        var frozen = [Bool](repeating: false, count: classCount)
        for value in 0..<network.valueCount where !reasons[value].isEmpty {
            for label in classOf[value] { frozen[label] = true }
        }
        self.frozen = frozen

        let groups = valueSets.labels()
        var spaceOf = [Int](repeating: -1, count: classCount)
        for value in 0..<network.valueCount where !isView[value] {
            for label in classOf[value] where spaceOf[label] < 0 { spaceOf[label] = groups[value] }
        }
        var spaces = [Space](repeating: Space(values: [], classes: [], frozenReasons: []),
                             count: (groups.max() ?? -1) + 1)
        for value in 0..<network.valueCount where !isView[value] && channels[value] > 0 {
            spaces[groups[value]].values.append(value)
        }
        for label in 0..<classCount { spaces[spaceOf[label]].classes.append(label) }
        for value in 0..<network.valueCount {
            for label in Set(classOf[value]) {
                for reason in reasons[value] where !spaces[spaceOf[label]].frozenReasons.contains(reason) {
                    spaces[spaceOf[label]].frozenReasons.append(reason)
                }
            }
        }
        let kept = spaces.indices.filter { !spaces[$0].classes.isEmpty }
        let renumber = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1, $0) })
        self.spaces = kept.map { spaces[$0] }
        self.spaceOf = spaceOf.map { renumber[$0]! }
    }
}
