import Testing
@testable import KCP

// The zoo of small topologies and the checks every pruned network must pass.

/// The small networks of the zoo.
enum NetZoo: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case chain, resnet, concatSkip, unet, stereo, depthwiseSeparable, grouped, twoOutputs, gated, denseBlock, concatViews
    case mobileNetV3, resNeXt, shuffleNet, layerScale, decoder

    var testDescription: String { rawValue }

    func build(seed: UInt64 = 42) throws -> NetBuilder {
        let b = NetBuilder(seed: seed)
        switch self {
        case .chain:
            // conv-bn-relu, max pool, conv-bn-leaky relu, avg pool, strided conv, GAP -> flatten -> linear.
            let x = try b.input("x", [1, 3, 8, 8])
            let c1 = try b.conv("c1", x, out: 6)
            let r1 = try b.op("r1", .activation(.relu), try b.batchNorm("bn1", c1))
            let p1 = try b.op("p1", .maxPool(Pool2d(kernel: (2, 2), stride: (2, 2))), r1)
            let c2 = try b.conv("c2", p1, out: 8)
            let r2 = try b.op("r2", .activation(Activation(.leakyRelu, alpha: 0.1)), try b.batchNorm("bn2", c2))
            let p2 = try b.op("p2", .avgPool(Pool2d(kernel: (3, 3), stride: (1, 1), padding: (1, 1, 1, 1))), r2)
            let c3 = try b.conv("c3", p2, out: 10, stride: 2)
            let r3 = try b.op("r3", .activation(.relu), c3)
            let flat = try b.op("flat", .flatten, try b.op("gap", .globalAvgPool, r3))
            try b.output(try b.linear("fc", flat, out: 4))
        case .resnet:
            let x = try b.input("x", [1, 3, 8, 8])
            let stem = try b.op("stem.relu", .activation(.relu), try b.batchNorm("stem.bn", try b.conv("stem", x, out: 8, bias: false)))
            // Basic block, identity shortcut.
            let a1 = try b.op("b1.relu1", .activation(.relu), try b.batchNorm("b1.bn1", try b.conv("b1.conv1", stem, out: 8, bias: false)))
            let a2 = try b.batchNorm("b1.bn2", try b.conv("b1.conv2", a1, out: 8, bias: false))
            let out1 = try b.op("b1.relu", .activation(.relu), try b.op("b1.add", .binary(.add), a2, stem))
            // Basic block, strided 1x1 projection shortcut.
            let b1 = try b.op("b2.relu1", .activation(.relu),
                              try b.batchNorm("b2.bn1", try b.conv("b2.conv1", out1, out: 12, stride: 2, bias: false)))
            let b2 = try b.batchNorm("b2.bn2", try b.conv("b2.conv2", b1, out: 12, bias: false))
            let proj = try b.batchNorm("b2.proj.bn", try b.conv("b2.proj", out1, out: 12, kernel: 1, stride: 2, bias: false))
            let out2 = try b.op("b2.relu", .activation(.relu), try b.op("b2.add", .binary(.add), b2, proj))
            let flat = try b.op("flat", .flatten, try b.op("gap", .globalAvgPool, out2))
            try b.output(try b.linear("fc", flat, out: 5))
        case .concatSkip:
            let x = try b.input("x", [1, 3, 8, 8])
            let ra = try b.op("ra", .activation(.relu), try b.conv("a", x, out: 6))
            let rb = try b.op("rb", .activation(.relu), try b.conv("b", ra, out: 4))
            let cat1 = try b.op("cat1", .concat, ra, rb)
            let rc = try b.op("rc", .activation(.relu), try b.conv("c", cat1, out: 5))
            let cat2 = try b.op("cat2", .concat, rc, rb, ra)
            try b.output(try b.conv("head", cat2, out: 3))
        case .unet:
            let x = try b.input("x", [1, 3, 16, 16])
            let e1 = try b.op("e1.relu", .activation(.relu), try b.conv("e1", x, out: 4))
            let e2 = try b.op("e2.relu", .activation(.relu), try b.batchNorm("e2.bn", try b.conv("e2", e1, out: 8, stride: 2)))
            let e3 = try b.op("e3.relu", .activation(.relu), try b.conv("e3", e2, out: 8, stride: 2))
            let u1 = try b.upsample("up1", e3, scale: 2, mode: .bilinear)
            let d1 = try b.op("d1.relu", .activation(.relu), try b.conv("d1", try b.op("cat1", .concat, u1, e2), out: 8))
            let u2 = try b.upsample("up2", d1, scale: 2, mode: .bilinear)
            let d2 = try b.op("d2.relu", .activation(.relu), try b.conv("d2", try b.op("cat2", .concat, u2, e1), out: 4))
            try b.output(try b.conv("head", d2, out: 2, kernel: 1))
        case .stereo:
            let left = try b.input("left", [1, 3, 8, 12])
            let right = try b.input("right", [1, 3, 8, 12])
            let conv1 = b.convParameters("f1", in: 3, out: 8)
            let bn1 = b.batchNormParameters("f1.bn", 8)
            let conv2 = b.convParameters("f2", in: 8, out: 6)
            var features: [Int] = []
            for (side, image) in [("l", left), ("r", right)] {
                let c1 = try b.conv("f1.\(side)", image, out: 8, shared: conv1)
                let r1 = try b.op("f1.relu.\(side)", .activation(.relu), try b.batchNorm("f1.bn.\(side)", c1, shared: bn1))
                features.append(try b.conv("f2.\(side)", r1, out: 6, shared: conv2))
            }
            let cost = try b.op("corr", .correlation(maxDisparity: 4, scale: 1.0 / 6), features[0], features[1])
            let a1 = try b.op("agg1.relu", .activation(.relu), try b.batchNorm("agg1.bn", try b.conv("agg1", cost, out: 8)))
            let a2 = try b.conv("agg2", a1, out: 4)
            try b.output(try b.op("disparity", .softArgmin(sign: -1), a2))
        case .depthwiseSeparable:
            let x = try b.input("x", [1, 3, 8, 8])
            let c1 = try b.op("c1.relu", .activation(.relu), try b.batchNorm("c1.bn", try b.conv("c1", x, out: 8)))
            let dw1 = try b.op("dw1.relu", .activation(.relu), try b.batchNorm("dw1.bn", try b.conv("dw1", c1, out: 8, groups: 8)))
            let pw1 = try b.op("pw1.relu", .activation(.relu), try b.batchNorm("pw1.bn", try b.conv("pw1", dw1, out: 12, kernel: 1)))
            let dw2 = try b.op("dw2.relu", .activation(.relu), try b.conv("dw2", pw1, out: 24, stride: 2, groups: 12))
            try b.output(try b.conv("pw2", dw2, out: 6, kernel: 1))
        case .grouped:
            let x = try b.input("x", [1, 3, 8, 8])
            let r1 = try b.op("c1.relu", .activation(.relu), try b.conv("c1", x, out: 8))
            let g = try b.op("gconv.relu", .activation(.relu), try b.conv("gconv", r1, out: 8, groups: 2))
            let r3 = try b.op("c3.relu", .activation(.relu), try b.conv("c3", g, out: 6))
            try b.output(try b.conv("c4", r3, out: 4))
        case .twoOutputs:
            let x = try b.input("x", [1, 3, 8, 8])
            let trunk = try b.op("trunk.relu", .activation(.relu), try b.batchNorm("trunk.bn", try b.conv("trunk", x, out: 8)))
            try b.output(try b.conv("seg", trunk, out: 4))
            let c2 = try b.op("c2.relu", .activation(.relu), try b.conv("c2", trunk, out: 6, stride: 2))
            let pooled = try b.op("pool", .maxPool(Pool2d(kernel: (2, 2), stride: (2, 2))), c2)
            try b.output(try b.linear("fc", try b.op("flat", .flatten, pooled), out: 3))
        case .gated:
            // Squeeze-and-excitation style gate: sigmoid, nearest upsampling back to full size, mul.
            let x = try b.input("x", [1, 3, 8, 8])
            let f = try b.op("f.relu", .activation(.relu), try b.conv("f", x, out: 8))
            let squeezed = try b.op("se.relu", .activation(.relu), try b.conv("se.reduce", try b.op("se.gap", .globalAvgPool, f), out: 4, kernel: 1))
            let gate = try b.op("se.sigmoid", .activation(.sigmoid), try b.conv("se.expand", squeezed, out: 8, kernel: 1))
            let gated = try b.op("se.mul", .binary(.mul), f, try b.upsample("se.up", gate, scale: 8, mode: .nearest))
            try b.output(try b.conv("head", gated, out: 4))
        case .denseBlock:
            // DenseNet-style: pre-activation batchnorm and relu on concat views.
            let x = try b.input("x", [1, 3, 8, 8])
            let a = try b.op("a.relu", .activation(.relu), try b.conv("a", x, out: 4))
            let c1 = try b.conv("l1", try b.op("l1.relu", .activation(.relu), try b.batchNorm("l1.bn", a)), out: 3)
            let cat1 = try b.op("cat1", .concat, a, c1)
            let c2 = try b.conv("l2", try b.op("l2.relu", .activation(.relu), try b.batchNorm("l2.bn", cat1)), out: 3)
            let cat2 = try b.op("cat2", .concat, a, c1, c2)
            let t = try b.op("t.relu", .activation(.relu), try b.batchNorm("t.bn", cat2))
            try b.output(try b.conv("transition", t, out: 5, kernel: 1))
        case .concatViews:
            // A concat view read by a depthwise conv, added to a conv spanning both segments, flattened into a linear layer.
            let x = try b.input("x", [1, 3, 8, 8])
            let a = try b.op("a.relu", .activation(.relu), try b.conv("a", x, out: 4))
            let c = try b.op("b.relu", .activation(.relu), try b.conv("b", x, out: 3))
            let dw = try b.conv("dw", try b.op("cat", .concat, a, c), out: 7, groups: 7)
            let sum = try b.op("sum", .binary(.add), dw, try b.conv("wide", x, out: 7))
            let pooled = try b.op("pool", .maxPool(Pool2d(kernel: (4, 4), stride: (4, 4))), try b.op("sum.relu", .activation(.relu), sum))
            try b.output(try b.linear("fc", try b.op("flat", .flatten, pooled), out: 3))
        case .mobileNetV3:
            // Inverted residual with squeeze-excitation (Howard et al. 2019): hardswish, a depthwise conv, and a
            // gate adaptive pool -> conv -> relu -> conv -> hardsigmoid, broadcast over the [N, C, H, W] map.
            let x = try b.input("x", [1, 3, 8, 8])
            let hardswish = Op.activation(Activation(.hardswish))
            let stem = try b.op("stem.hs", hardswish, try b.batchNorm("stem.bn", try b.conv("stem", x, out: 8, bias: false)))
            let e = try b.op("expand.hs", hardswish, try b.batchNorm("expand.bn", try b.conv("expand", stem, out: 16, kernel: 1)))
            let dw = try b.op("dw.hs", hardswish, try b.batchNorm("dw.bn", try b.conv("dw", e, out: 16, groups: 16)))
            let pooled = try b.op("se.pool", .adaptivePool(height: 1, width: 1, max: false), dw)
            let squeezed = try b.op("se.relu", .activation(.relu), try b.conv("se.reduce", pooled, out: 4, kernel: 1))
            let gate = try b.op("se.hsig", .activation(Activation(.hardsigmoid, alpha: 1.0 / 6, beta: 0.5)),
                                try b.conv("se.expand", squeezed, out: 16, kernel: 1))
            let scaled = try b.op("se.mul", .binary(.mul), dw, gate)
            let project = try b.batchNorm("project.bn", try b.conv("project", scaled, out: 8, kernel: 1, bias: false))
            try b.output(try b.conv("head", try b.op("add", .binary(.add), project, stem), out: 4, kernel: 1))
        case .resNeXt:
            // ResNeXt bottleneck: 1x1, a grouped 3x3 (4 groups, 4 inputs and 6 outputs each), 1x1, identity shortcut.
            let x = try b.input("x", [1, 3, 8, 8])
            let stem = try b.op("stem.relu", .activation(.relu), try b.batchNorm("stem.bn", try b.conv("stem", x, out: 8)))
            let a = try b.op("a.relu", .activation(.relu), try b.batchNorm("a.bn", try b.conv("a", stem, out: 16, kernel: 1)))
            let g = try b.op("g.relu", .activation(.relu), try b.batchNorm("g.bn", try b.conv("g", a, out: 24, groups: 4)))
            let c = try b.batchNorm("c.bn", try b.conv("c", g, out: 8, kernel: 1))
            let out = try b.op("relu", .activation(.relu), try b.op("add", .binary(.add), c, stem))
            try b.output(try b.conv("head", out, out: 4, kernel: 1))
        case .shuffleNet:
            // ShuffleNetV2 unit: split the channels in two, one half through 1x1, depthwise 3x3, 1x1; concat, shuffle.
            let x = try b.input("x", [1, 3, 8, 8])
            let stem = try b.op("stem.relu", .activation(.relu), try b.batchNorm("stem.bn", try b.conv("stem", x, out: 8)))
            let left = try b.op("split.0", .channelChunk(index: 0, parts: 2), stem)
            let right = try b.op("split.1", .channelChunk(index: 1, parts: 2), stem)
            let b1 = try b.op("b1.relu", .activation(.relu), try b.batchNorm("b1.bn", try b.conv("b1", right, out: 4, kernel: 1)))
            let b2 = try b.batchNorm("b2.bn", try b.conv("b2", b1, out: 4, groups: 4))
            let b3 = try b.op("b3.relu", .activation(.relu), try b.batchNorm("b3.bn", try b.conv("b3", b2, out: 4, kernel: 1)))
            let shuffled = try b.op("shuffle", .channelShuffle(groups: 2), try b.op("cat", .concat, left, b3))
            try b.output(try b.conv("head", shuffled, out: 4, kernel: 1))
        case .layerScale:
            // A branch scaled per channel by a constant [C, 1, 1] (ConvNeXt's layer scale), added back, then
            // subtracted from a constant (c - x) and divided by a constant [C, 1, W] before the head.
            let x = try b.input("x", [1, 3, 8, 8])
            let trunk = try b.op("trunk.relu", .activation(.relu), try b.conv("trunk", x, out: 6))
            let scaled = try b.binary("scale", .mul, try b.conv("branch", trunk, out: 6), constant: [6, 1, 1], in: 0.5...1.5)
            let sum = try b.op("add", .binary(.add), trunk, scaled)
            let shifted = try b.binary("shift", Binary(.sub, constantFirst: true), sum, constant: [6, 1, 1], in: -0.2...0.2)
            let divided = try b.binary("norm", Binary(.div), shifted, constant: [6, 1, 8], in: 0.5...2)
            try b.output(try b.conv("head", divided, out: 4))
        case .decoder:
            // Upsampling by transposed convs: stride 2 with output padding, then after a concat skip a grouped
            // one (2 groups) and a depthwise one (multiplier 2), before a 1x1 head.
            let x = try b.input("x", [1, 3, 8, 8])
            let e1 = try b.op("e1.relu", .activation(.relu), try b.conv("e1", x, out: 6))
            let e2 = try b.op("e2.relu", .activation(.relu), try b.batchNorm("e2.bn", try b.conv("e2", e1, out: 8, stride: 2)))
            let u1 = try b.op("up1.relu", .activation(.relu),
                              try b.convTranspose("up1", e2, out: 6, stride: 2, padding: 1, outputPadding: 1))
            let g = try b.op("gup.relu", .activation(.relu),
                             try b.convTranspose("gup", try b.op("cat", .concat, u1, e1), out: 8, padding: 1, groups: 2))
            let dw = try b.op("dwup.relu", .activation(.relu), try b.convTranspose("dwup", g, out: 16, kernel: 2, stride: 2, groups: 8))
            try b.output(try b.conv("head", dw, out: 2, kernel: 1))
        }
        return b
    }
}

struct NetTargetCase: Sendable, CustomTestStringConvertible {
    var label: String
    var target: PruningTarget
    var testDescription: String { label }
}

let netCriteria: [(String, Criterion)] = [
    ("kcp", .kcp(center: .mean)), ("l1", .filter(.l1)), ("fpgm", .filter(.fpgm)), ("random", .filter(.random(seed: 5))),
]

let netTargetCases: [NetTargetCase] = {
    var cases: [NetTargetCase] = []
    for (name, criterion) in netCriteria {
        for ratio in [0.3, 0.5, 0.7] {
            cases.append(NetTargetCase(label: "\(name) ratio \(ratio)", target: PruningTarget(amount: .ratio(ratio), criterion: criterion)))
        }
        cases.append(NetTargetCase(label: "\(name) macs -30%", target: PruningTarget(amount: .macsReduction(0.3), criterion: criterion)))
    }
    for ratio in [0.3, 0.5, 0.7] {
        cases.append(NetTargetCase(label: "global kcp ratio \(ratio)",
                                   target: PruningTarget(amount: .ratio(ratio), global: true, maxRatio: 0.8)))
    }
    cases.append(NetTargetCase(label: "global kcp macs -30%", target: PruningTarget(amount: .macsReduction(0.3), global: true)))
    cases.append(NetTargetCase(label: "kcp median ratio 0.5", target: PruningTarget(amount: .ratio(0.5), criterion: .kcp(center: .median))))
    cases.append(NetTargetCase(label: "l2 ratio 0.5 round to 2", target: PruningTarget(amount: .ratio(0.5), criterion: .filter(.l2), roundTo: 2)))
    return cases
}()

// MARK: - Checks

/// Per value, whether each channel is kept.
func netKeepMasks(_ plan: NetworkPlan) -> [[Bool]] {
    plan.spaces.classOf.map { $0.map { plan.keep[$0] } }
}

/// Checks the plan's selection against the target: frozen classes kept,
/// counts per space (uniform) or in total (global), lowest scores pruned.
func netCheckSelection(_ plan: NetworkPlan, _ target: PruningTarget, sourceLocation: SourceLocation = #_sourceLocation) {
    let spaces = plan.spaces
    #expect(plan.keep.count == spaces.classCount && plan.scores.count == spaces.classCount, sourceLocation: sourceLocation)
    #expect(plan.scores.allSatisfy { $0.isFinite }, sourceLocation: sourceLocation)
    for label in 0..<spaces.classCount where spaces.frozen[label] {
        #expect(plan.keep[label], "frozen class \(label) pruned", sourceLocation: sourceLocation)
    }
    let before = { (a: Int, b: Int) in (plan.scores[a], a) < (plan.scores[b], b) }
    var totalPrunable = 0, totalPruned = 0, totalBudget = 0
    var open: [Int] = [] // kept prunable classes of spaces whose global budget is not used up
    var pruned: [Int] = []
    for space in spaces.spaces {
        let prunable = space.classes.filter { !spaces.frozen[$0] }
        let gone = prunable.filter { !plan.keep[$0] }
        let kept = prunable.filter { plan.keep[$0] }
        if prunable.isEmpty { continue }
        #expect(!kept.isEmpty, "space \(space.values) lost every channel", sourceLocation: sourceLocation)
        totalPrunable += prunable.count
        totalPruned += gone.count
        pruned += gone
        if target.global {
            let budget = min(Int((target.maxRatio * Double(prunable.count)).rounded(.down)), prunable.count - 1)
            totalBudget += budget
            #expect(gone.count <= budget, sourceLocation: sourceLocation)
            if gone.count < budget { open += kept }
        } else {
            let expected = prunable.count - keptCount(channels: prunable.count, ratio: plan.ratio, roundTo: target.roundTo)
            #expect(gone.count == expected, "space \(space.values): pruned \(gone.count) of \(prunable.count), expected \(expected)",
                    sourceLocation: sourceLocation)
            for p in gone {
                for k in kept { #expect(before(p, k), "pruned \(p) ranks above kept \(k)", sourceLocation: sourceLocation) }
            }
        }
    }
    if target.global {
        let asked = Int((plan.ratio * Double(totalPrunable)).rounded(.down))
        #expect(totalPruned == min(asked, totalBudget), sourceLocation: sourceLocation)
        for p in pruned {
            for k in open { #expect(before(p, k), "pruned \(p) ranks above kept \(k)", sourceLocation: sourceLocation) }
        }
    }
}

/// Checks the shapes and entries of every parameter of the compact and the
/// masked networks against a slow slicing of the original's.
func netCheckParameters(_ net: Network, compact: Network, masked: Network, keep: [[Bool]],
                        sourceLocation: SourceLocation = #_sourceLocation) throws
{
    let shapes = try net.inferShapes(), compactShapes = try compact.inferShapes()
    for value in 0..<net.valueCount {
        var expected = shapes[value]
        expected[1] = keep[value].filter { $0 }.count
        #expect(compactShapes[value] == expected, "value '\(net.valueNames[value])'", sourceLocation: sourceLocation)
    }
    #expect(compact.nodes.count == net.nodes.count && masked.nodes.count == net.nodes.count, sourceLocation: sourceLocation)
    for (index, node) in net.nodes.enumerated() {
        let x = node.inputs[0], y = node.output
        // keepOut / keepIn of each parameter of this node (nil: the whole axis).
        var slices: [(parameter: Int, out: [Bool], in: [Bool]?, masksToOne: Bool)] = []
        switch node.op {
        case let .conv2d(conv):
            // 1 < g < C: every group keeps the same positions, of its input and of its output, and g stays.
            let depthwise = conv.groups > 1 && conv.groups == shapes[x][1]
            let perGroup = shapes[x][1] / conv.groups
            if conv.groups > 1 && !depthwise {
                for (value, width) in [(x, perGroup), (y, shapes[y][1] / conv.groups)] {
                    let groups = (0..<conv.groups).map { Array(keep[value][($0 * width)..<(($0 + 1) * width)]) }
                    #expect(groups.allSatisfy { $0 == groups[0] }, "'\(node.name)': groups of '\(net.valueNames[value])' prune apart",
                            sourceLocation: sourceLocation)
                }
            }
            let keepIn = conv.groups == 1 ? keep[x] : depthwise ? nil : Array(keep[x].prefix(perGroup))
            slices.append((node.parameters[0], keep[y], keepIn, false))
            if node.parameters.count > 1 { slices.append((node.parameters[1], keep[y], nil, false)) }
            var expectedOp = conv
            if depthwise { expectedOp.groups = keep[x].filter { $0 }.count }
            #expect(compact.nodes[index].op == .conv2d(expectedOp), "node '\(node.name)'", sourceLocation: sourceLocation)
        case let .convTranspose2d(t):
            // The weight [I, O/g, kh, kw]: axis 0 follows the input, axis 1 the output (group 0's, 1 < g < C).
            let depthwise = t.groups > 1 && t.groups == shapes[x][1]
            let keepIn = t.groups == 1 ? keep[y] : depthwise ? nil : Array(keep[y].prefix(shapes[y][1] / t.groups))
            slices.append((node.parameters[0], keep[x], keepIn, false))
            if node.parameters.count > 1 { slices.append((node.parameters[1], keep[y], nil, false)) }
            var expectedOp = t
            if depthwise { expectedOp.groups = keep[x].filter { $0 }.count }
            #expect(compact.nodes[index].op == .convTranspose2d(expectedOp), "node '\(node.name)'", sourceLocation: sourceLocation)
        case .linear:
            slices.append((node.parameters[0], keep[y], keep[x], false))
            if node.parameters.count > 1 { slices.append((node.parameters[1], keep[y], nil, false)) }
        case .batchNorm:
            for (position, p) in node.parameters.enumerated() { slices.append((p, keep[x], nil, position == 3)) }
        case let .binary(binary):
            // A constant with one row per channel follows them; a divisor is masked to 1 (0 / 1 stays 0).
            if let p = node.parameters.first, net.parameters[p].tensor.shape[0] == shapes[y][1], shapes[y][1] > 1 {
                slices.append((p, keep[y], nil, binary.kind == .div && !binary.constantFirst))
            }
            #expect(compact.nodes[index].op == node.op, sourceLocation: sourceLocation)
        default:
            #expect(compact.nodes[index].op == node.op, sourceLocation: sourceLocation)
        }
        for slice in slices {
            let original = net.parameters[slice.parameter].tensor
            let shape = original.shape
            let rows = shape[0], columns = shape.count > 1 ? shape[1] : 1, inner = shape.dropFirst(2).reduce(1, *)
            let outs = (0..<rows).filter { slice.out[$0] }
            let ins = (0..<columns).filter { slice.in?[$0] ?? true }
            var expectedShape = shape
            expectedShape[0] = outs.count
            if shape.count > 1 { expectedShape[1] = ins.count }
            let small = compact.parameters[slice.parameter].tensor
            let name = "parameter '\(net.parameters[slice.parameter].name)' of '\(node.name)'"
            #expect(small.shape == expectedShape, "\(name)", sourceLocation: sourceLocation)
            var expectedData: [Float] = []
            for o in outs { for j in ins { expectedData += original.data[((o * columns + j) * inner)..<((o * columns + j + 1) * inner)] } }
            #expect(small.data == expectedData, "\(name): compact entries", sourceLocation: sourceLocation)
            // Masked: same shape, pruned rows (and columns) zeroed, running var (and a constant divisor) 1.
            let zeroed = masked.parameters[slice.parameter].tensor
            #expect(zeroed.shape == shape, "\(name)", sourceLocation: sourceLocation)
            var expectedMasked = original.data
            for o in 0..<rows {
                for j in 0..<columns where !slice.out[o] || !(slice.in?[j] ?? true) {
                    for k in 0..<inner { expectedMasked[(o * columns + j) * inner + k] = slice.masksToOne ? 1 : 0 }
                }
            }
            #expect(zeroed.data == expectedMasked, "\(name): masked entries", sourceLocation: sourceLocation)
        }
    }
}

/// `max |a - b| <= 1e-4 * max |b|` over every output.
func netCheckSameOutputs(_ actual: [Tensor], _ expected: [Tensor], what: String,
                         sourceLocation: SourceLocation = #_sourceLocation)
{
    #expect(actual.count == expected.count, sourceLocation: sourceLocation)
    for (a, b) in zip(actual, expected) {
        #expect(a.shape == b.shape, sourceLocation: sourceLocation)
        guard a.shape == b.shape else { continue }
        // Both finite first: a NaN would drop out of the maxima below.
        #expect(a.data.allSatisfy { $0.isFinite } && b.data.allSatisfy { $0.isFinite }, "\(what): not finite",
                sourceLocation: sourceLocation)
        let scale = netMaxAbs(b.data)
        let worst = zip(a.data, b.data).reduce(0.0) { max($0, abs(Double($1.0) - Double($1.1))) }
        #expect(worst <= 1e-4 * scale + 1e-7, "\(what): max abs difference \(worst), output scale \(scale)",
                sourceLocation: sourceLocation)
    }
}

/// Plans, compacts and masks `net`, and checks everything the plan promises.
@discardableResult
func netCheckPruning(_ net: Network, inputs: [Tensor], target: PruningTarget,
                     sourceLocation: SourceLocation = #_sourceLocation) throws -> NetworkPlan
{
    let plan = try NetworkPlan(network: net, target: target)
    let before = try net.cost()
    #expect(plan.before == before, sourceLocation: sourceLocation)
    netCheckSelection(plan, target, sourceLocation: sourceLocation)
    switch target.amount {
    case let .ratio(r):
        #expect(plan.ratio == r, sourceLocation: sourceLocation)
        #expect(plan.keep.contains(false), "nothing pruned", sourceLocation: sourceLocation)
        #expect(plan.after.macs < before.macs && plan.after.parameters < before.parameters, sourceLocation: sourceLocation)
    case let .macsReduction(goal):
        #expect(Double(plan.after.macs) <= (1 - goal) * Double(before.macs),
                "MACs \(before.macs) -> \(plan.after.macs) misses a \(goal) reduction", sourceLocation: sourceLocation)
        // The smallest such ratio: a hair less misses the goal.
        var less = target
        less.amount = .ratio(max(plan.ratio - 1e-9, 0))
        let smaller = try NetworkPlan(network: net, target: less)
        #expect(Double(smaller.after.macs) > (1 - goal) * Double(before.macs), "ratio \(plan.ratio) is not the smallest",
                sourceLocation: sourceLocation)
    }

    let keep = netKeepMasks(plan)
    let emptied = (0..<net.valueCount).filter { !keep[$0].contains(true) }
    #expect(emptied.isEmpty, "values losing every channel: \(emptied.map { net.valueNames[$0] })", sourceLocation: sourceLocation)
    let compact = try net.compacted(plan.spaces, keepClasses: plan.keep)
    let masked = try net.masked(plan.spaces, keepClasses: plan.keep)
    #expect(try compact.cost() == plan.after, sourceLocation: sourceLocation)
    #expect(try masked.cost() == before, sourceLocation: sourceLocation)
    try netCheckParameters(net, compact: compact, masked: masked, keep: keep, sourceLocation: sourceLocation)

    netCheckSameOutputs(try compact.forward(inputs), try masked.forward(inputs), what: "compact vs masked",
                        sourceLocation: sourceLocation)
    return plan
}

/// `|a - b| <= 1e-9 * max(1, |b|)` elementwise.
func netExpectClose(_ actual: [Double], _ expected: [Double], sourceLocation: SourceLocation = #_sourceLocation) {
    let close = actual.count == expected.count && zip(actual, expected).allSatisfy { abs($0 - $1) <= 1e-9 * max(1, abs($1)) }
    #expect(close, "\(actual) != \(expected)", sourceLocation: sourceLocation)
}
