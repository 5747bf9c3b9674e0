import COpenBLAS

/// Retraining-free compensation of a pruned network.
///
/// Removing channels changes what every layer reading them computes. Each
/// such conv (2-D or 3-D, one group) or linear layer of the pruned network is refitted,
/// in network order, so that on calibration inputs its outputs match the
/// dense network's (He et al., "Channel Pruning for Accelerating Very Deep
/// Neural Networks", ICCV 2017, eq. 1 with the channels given; Luo et al.,
/// "ThiNet", ICCV 2017). With `X` the unfolded inputs of the layer in the
/// pruned network (the layers before it already refitted; a row of ones for
/// a bias) and `Y` the dense network's outputs of the layer on the kept
/// channels, the weights become the ridge least-squares solution
///
///     W = Y X^T (X X^T + lambda I)^-1,   lambda = ridge * mean_k (X X^T)[k, k],
///
/// (the bias not penalised), summed in double precision and solved by
/// Cholesky (LAPACK `dposv`). A parameter shared by several layers (a
/// Siamese branch) is fitted to all of them at once. A batchnorm after a
/// refitted layer keeps its statistics: its input is fitted to the dense one.
extension Network {
    /// The compact network for `keepClasses` (as `compacted`), with the
    /// layers reading pruned channels refitted on `calibration` (inputs of
    /// the network, any batch size), `chunk` samples at a time.
    /// `progress(step, steps)` is called before each chunk of each refitted
    /// layer and at the end; if it returns false the work stops and the
    /// result is nil.
    public func compensated(_ spaces: ChannelSpaces, keepClasses: [Bool], calibration: [Tensor], ridge: Double,
                            chunk: Int = 16, progress: (_ step: Int, _ steps: Int) -> Bool = { _, _ in true }) throws
        -> Network?
    {
        try require(ridge >= 0 && ridge.isFinite, "ridge", "must be a finite number >= 0, got \(ridge)")
        try require(chunk >= 1, "chunk", "must be positive, got \(chunk)")
        _ = try shapes(for: calibration)  // one batch size for all inputs, shapes that fit
        let samples = calibration.first?.shape[0] ?? 0
        let keep = channelKeep(spaces, keepClasses: keepClasses), dense = self
        var result = try compacted(spaces, keepClasses: keepClasses)
        let refits = refitsNeeded(keep: keep), chunks = (samples + chunk - 1) / chunk
        for (position, refit) in refits.enumerated() {
            let users = refit.users, last = users.max()!, node = nodes[users[0]]
            let hasBias = node.parameters.count > 1, weight = result.parameters[refit.parameter].tensor
            let kept = keep[node.output].indices.filter { keep[node.output][$0] }, patch = weight.count / kept.count
            var equations = NormalEquations(columns: patch + (hasBias ? 1 : 0), rows: kept.count)
            for (index, start) in stride(from: 0, to: samples, by: chunk).enumerated() {
                guard progress(position * chunks + index, refits.count * chunks) else { return nil }
                let inputs = calibration.map { $0.samples(start..<min(samples, start + chunk)) }
                let pruned = try result.trainingForward(inputs, training: false, through: last)
                let reference = try dense.trainingForward(inputs, training: false, through: last)
                for user in users {
                    let u = nodes[user]
                    equations.add(inputs: pruned.values[u.inputs[0]], op: u.op, weightShape: weight.shape,
                                  targets: reference.values[u.output], channels: kept, bias: hasBias)
                }
            }
            // nil: no input ever reached the layer (or the system is singular); it keeps its pruned weights.
            guard let solution = equations.solved(ridge: ridge, penalised: patch) else { continue }
            guard solution.allSatisfy({ Float($0).isFinite }) else {
                throw KCPError.numeric("calibration: refitting node '\(node.name)' gives weights beyond float32 "
                                       + "(the calibration data overflows float32 arithmetic); rescale it")
            }
            result.parameters[refit.parameter].tensor.data = kept.indices.flatMap { o in
                solution[(o * equations.columns)..<(o * equations.columns + patch)].map(Float.init)
            }
            if hasBias {
                result.parameters[node.parameters[1]].tensor.data = kept.indices.map {
                    Float(solution[$0 * equations.columns + patch])
                }
            }
        }
        return progress(refits.count * chunks, refits.count * chunks) ? result : nil
    }

    /// The weight parameters to refit, in network order, with the nodes
    /// using each: those of convs (2-D or 3-D) with one group and linear layers reading
    /// a value that lost channels.
    private func refitsNeeded(keep: [[Bool]]) -> [(parameter: Int, users: [Int])] {
        func refittable(_ node: Node) -> Bool {
            switch node.op {
            case let .conv2d(conv): return conv.groups == 1
            case let .conv3d(conv): return conv.groups == 1
            case .linear: return true
            default: return false
            }
        }
        var refits: [(parameter: Int, users: [Int])] = []
        for node in nodes where refittable(node) && keep[node.inputs[0]].contains(false) {
            let weight = node.parameters[0]
            guard !refits.contains(where: { $0.parameter == weight }) else { continue }
            let users = nodes.indices.filter { nodes[$0].parameters.first == weight }
            if users.allSatisfy({ refittable(nodes[$0]) }) { refits.append((weight, users)) }
        }
        return refits
    }
}

/// A refitted layer's calibration input, unfolded in units of output rows
/// (a linear layer is a 1x1 conv of a 1x1 image), rows `X` in the order of
/// its weight's columns, and where each unit's targets lie.
private enum CalibrationTiles {
    /// A conv2d or linear layer: the conv's own tiles of one sample.
    case plane(ConvGeometry, targetChannels: Int)
    /// A conv3d: tiles of output rows of one output slice of one sample,
    /// the stacked unfolding of its depth taps, rows `(t, c, p, q)`, reordered
    /// to the weight's `(c, t, p, q)` (taps in the depth padding are zero).
    case volume(Conv3dGeometry, targetChannels: Int)

    init(inputs: [Int], op: Op, weightShape: [Int], targets: [Int], channels: Int) {
        let batch = inputs[0]
        switch op {
        case let .conv2d(conv):
            self = .plane(ConvGeometry(input: inputs, weight: weightShape, output: [batch, channels, targets[2], targets[3]],
                                       conv), targetChannels: targets[1])
        case let .conv3d(conv):
            self = .volume(Conv3dGeometry(input: inputs, weight: weightShape, output: [batch, channels] + targets[2...],
                                          conv), targetChannels: targets[1])
        default:
            self = .plane(ConvGeometry(input: inputs + [1, 1], weight: weightShape + [1, 1], output: [batch, channels, 1, 1],
                                       Conv2d()), targetChannels: targets[1])
        }
    }

    /// Rows of `X` (without a bias row).
    var patch: Int {
        switch self {
        case let .plane(s, _): return s.patch
        case let .volume(s, _): return s.patch
        }
    }

    /// Columns of the widest unit.
    var span: Int {
        switch self {
        case let .plane(s, _): return s.blockRows * s.outWidth
        case let .volume(s, _): return s.blockRows * s.plane.outWidth
        }
    }

    var units: Int {
        switch self {
        case let .plane(s, _): return s.batch * s.blocks
        case let .volume(s, _): return s.batch * s.outDepth * s.blocks
        }
    }

    /// Floats of staging a unit's unfolding needs besides its tile.
    var staging: Int {
        switch self {
        case .plane: return 0
        case let .volume(s, _): return s.tileSize
        }
    }

    /// Fills `tile` with unit `unit` of `x`, unfolded (`patch` rows of the returned width).
    func fill(_ unit: Int, _ x: UnsafePointer<Float>, into tile: UnsafeMutablePointer<Float>,
                staging: UnsafeMutablePointer<Float>) -> Int
    {
        switch self {
        case let .plane(s, _):
            let (n, rows) = (unit / s.blocks, s.rows(unit % s.blocks)), width = rows.count * s.outWidth
            let sample = x + n * s.channels * s.plane
            if s.isPointwise {
                for c in 0..<s.channels {
                    copyFloats(sample + c * s.plane + rows.lowerBound * s.outWidth, to: tile + c * width, count: width)
                }
            } else {
                unfold(sample, s, rows: rows, into: tile)
            }
            return width
        case let .volume(s, _):
            let p = s.plane, (block, z, n) = (unit % s.blocks, unit / s.blocks % s.outDepth, unit / s.blocks / s.outDepth)
            let rows = s.rows(block), width = rows.count * p.outWidth, taps = s.taps(z), area = p.kh * p.kw
            let sample = x + n * p.channels * s.volume
            for t in 0..<s.kd {
                let stacked = staging + t * p.patch * width
                if taps.contains(t) {
                    unfold(sample + s.slice(z, tap: t) * p.plane, p, rows: rows, into: stacked)
                } else {
                    stacked.update(repeating: 0, count: p.patch * width)
                }
                for c in 0..<p.perGroup {
                    copyFloats(stacked + c * area * width, to: tile + (c * s.kd + t) * area * width, count: area * width)
                }
            }
            return width
        }
    }

    /// Where output channel `o`'s targets of unit `unit` start.
    func target(_ unit: Int, channel o: Int) -> Int {
        switch self {
        case let .plane(s, targetChannels):
            let (n, rows) = (unit / s.blocks, s.rows(unit % s.blocks))
            return (n * targetChannels + o) * s.pixels + rows.lowerBound * s.outWidth
        case let .volume(s, targetChannels):
            let (block, z, n) = (unit % s.blocks, unit / s.blocks % s.outDepth, unit / s.blocks / s.outDepth)
            return (n * targetChannels + o) * s.outVolume + z * s.plane.pixels + s.rows(block).lowerBound * s.plane.outWidth
        }
    }
}

/// `G = sum X X^T` (`columns x columns`, row-major, only its upper triangle
/// kept) and `C = sum Y X^T` (`rows x columns`) of a least-squares fit
/// `Y ~ W X`, in double precision.
struct NormalEquations {
    let columns: Int, rows: Int
    private(set) var gram: [Double], cross: [Double]

    init(columns: Int, rows: Int) {
        (self.columns, self.rows) = (columns, rows)
        (gram, cross) = ([Double](repeating: 0, count: columns * columns), [Double](repeating: 0, count: rows * columns))
    }

    /// Partial sums of one batch's products: at most this many, whatever the thread count.
    private static let partials = 8

    /// Adds the products of one layer on one batch: `inputs` the layer's
    /// input, `targets` the outputs to fit (only `channels` of them), each
    /// tile of output rows unfolded as the conv's forward pass does (a
    /// linear layer is a 1x1 conv of a 1x1 image), with a row of ones for a
    /// bias. The tiles are split into at most `partials` fixed runs, summed
    /// in parallel in float (`X X^T` by SSYRK, its upper triangle), then
    /// added to the double sums in run order: the result does not depend on
    /// the thread count.
    mutating func add(inputs: Tensor, op: Op, weightShape: [Int], targets: Tensor, channels: [Int], bias: Bool) {
        let tiles = CalibrationTiles(inputs: inputs.shape, op: op, weightShape: weightShape, targets: targets.shape,
                                     channels: channels.count)
        let (span, units) = (tiles.span, tiles.units), runs = min(units, Self.partials)
        let (columns, rows, patch) = (self.columns, self.rows, tiles.patch)
        var partialGram = [Float](repeating: 0, count: runs * columns * columns)
        var partialCross = [Float](repeating: 0, count: runs * rows * columns)
        inputs.data.withUnsafeBufferPointer { xs in
            targets.data.withUnsafeBufferPointer { ys in
                partialGram.withUnsafeMutableBufferPointer { grams in
                    partialCross.withUnsafeMutableBufferPointer { crosses in
                        parallelFor(runs, scratch: (columns + rows) * span + tiles.staging) { run, scratch in
                            let (tile, fitted) = (scratch, scratch + columns * span)
                            for unit in (units * run / runs)..<(units * (run + 1) / runs) {
                                let width = tiles.fill(unit, xs.baseAddress!, into: tile,
                                                         staging: fitted + rows * span)
                                if bias { (tile + patch * width).update(repeating: 1, count: width) }
                                for (r, o) in channels.enumerated() {
                                    copyFloats(ys.baseAddress! + tiles.target(unit, channel: o), to: fitted + r * width,
                                               count: width)
                                }
                                serialGramUpdate(n: columns, k: width, tile, lda: width,
                                                 grams.baseAddress! + run * columns * columns, ldc: columns)
                                serialMatrixProduct(m: rows, n: columns, k: width, fitted, lda: width, tile, ldb: width,
                                                    transposeB: true, beta: 1,
                                                    crosses.baseAddress! + run * rows * columns, ldc: columns)
                            }
                        }
                    }
                }
            }
        }
        for run in 0..<runs {
            for i in 0..<columns {
                for j in i..<columns { gram[i * columns + j] += Double(partialGram[(run * columns + i) * columns + j]) }
            }
            for k in 0..<(rows * columns) { cross[k] += Double(partialCross[run * rows * columns + k]) }
        }
    }

    /// The rows of `W` (`rows x columns`, row-major) solving
    /// `W (G + lambda D) = C`, `D` the identity on the first `penalised`
    /// columns, `lambda = max(ridge, 1e-9) * mean_{k < penalised} G[k, k]`
    /// (the floor keeps `G` positive definite when inputs are linearly
    /// dependent); nil if that mean is 0 (no input ever reached the layer) or
    /// Cholesky fails.
    func solved(ridge: Double, penalised: Int) -> [Double]? {
        let scale = (0..<penalised).reduce(0.0) { $0 + gram[$1 * columns + $1] } / Double(max(penalised, 1))
        guard scale > 0 else { return nil }
        var a = gram, b = cross
        let lambda = max(ridge, 1e-9) * scale
        for k in 0..<penalised { a[k * columns + k] += lambda }
        var (n, nrhs, info) = (Int32(columns), Int32(rows), Int32(0))
        var (lda, ldb) = (n, n)
        // Row-major C (rows x columns) is column-major B (columns x rows): the right-hand sides are its rows.
        // G's row-major upper triangle is the column-major lower one ("L").
        dposv_("L", &n, &nrhs, &a, &lda, &b, &ldb, &info, 1)
        return info == 0 ? b : nil
    }
}
