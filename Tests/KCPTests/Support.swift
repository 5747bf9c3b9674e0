import Testing
@testable import KCP

// Shared helpers: seeded data, slow oracles and error matchers.

/// Uniform floats in [-scale, scale) from SplitMix64, so every test's data is
/// reproducible without Foundation.
func randomWeights(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in Float(rng.nextUnit() * 2 - 1) * scale }
}

/// Calls `body` with the weight as the engine's buffer type.
func withWeight<R>(_ weight: [Float], _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
    try weight.withUnsafeBufferPointer(body)
}

/// `layerScores` on an array.
func scores(_ weight: [Float], _ shape: [Int], groups: Int = 1, _ criterion: Criterion) throws -> [Double] {
    let geometry = try LayerGeometry(shape: shape, groups: groups)
    return try withWeight(weight) { try layerScores(weight: $0, geometry: geometry, criterion: criterion) }
}

/// `ChannelClusters` on an array.
func clusters(_ weight: [Float], _ shape: [Int], groups: Int = 1, center: CenterKind = .mean,
              clusters m: Int = 1, seed: UInt64 = 0) throws -> ChannelClusters
{
    let geometry = try LayerGeometry(shape: shape, groups: groups)
    return try withWeight(weight) {
        try ChannelClusters(weight: $0, geometry: geometry, center: center, clusters: m, seed: seed)
    }
}

// MARK: - Slow oracles

/// `v_i[o' * K + k] = W[g(i) * O/g + o', j(i), k]`, one index at a time.
func naiveClusterVectors(_ w: [Float], _ g: LayerGeometry) -> [[Float]] {
    (0..<g.inChannels).map { i in
        let group = i / g.inPerGroup, j = i % g.inPerGroup
        var v: [Float] = []
        for oLocal in 0..<g.outPerGroup {
            for k in 0..<g.kernelArea {
                let o = group * g.outPerGroup + oLocal
                v.append(w[(o * g.inPerGroup + j) * g.kernelArea + k])
            }
        }
        return v
    }
}

/// Mean center and `||v_i - c||^2`, all in double.
func naiveMeanDistances(_ w: [Float], _ g: LayerGeometry) -> (center: [Double], squared: [Double]) {
    let v = naiveClusterVectors(w, g)
    var c = [Double](repeating: 0, count: g.clusterLength)
    for row in v { for k in row.indices { c[k] += Double(row[k]) } }
    c = c.map { $0 / Double(v.count) }
    let squared = v.map { row in row.indices.reduce(0.0) { $0 + (Double(row[$1]) - c[$1]) * (Double(row[$1]) - c[$1]) } }
    return (c, squared)
}

/// `||a - b||_2` in double.
func distance(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    zip(a, b).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }.squareRoot()
}

/// `s / mean(s)`, or zeros.
func normalised(_ s: [Double]) -> [Double] {
    let mean = s.reduce(0, +) / Double(s.count)
    return mean > 0 ? s.map { $0 / mean } : s.map { _ in 0 }
}

// MARK: - Comparisons

/// `|a - b| <= tolerance * max(1, |b|)` elementwise, with one issue per call.
func expectClose(_ actual: [Double], _ expected: [Double], tolerance: Double = 1e-6,
                 sourceLocation: SourceLocation = #_sourceLocation)
{
    let close = actual.count == expected.count
        && zip(actual, expected).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    #expect(close, "\(actual) != \(expected) (tolerance \(tolerance))", sourceLocation: sourceLocation)
}

func expectClose(_ actual: [Float], _ expected: [Double], tolerance: Double = 1e-6,
                 sourceLocation: SourceLocation = #_sourceLocation)
{
    expectClose(actual.map(Double.init), expected, tolerance: tolerance, sourceLocation: sourceLocation)
}

/// Expects `body` to throw `KCPError.invalidArgument` naming `argument`
/// (and, if given, with `fragment` in its reason).
func expectInvalidArgument(_ argument: String, _ fragment: String? = nil,
                           sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void)
{
    expectInvalidArgument(argument, containing: fragment.map { [$0] } ?? [], sourceLocation: sourceLocation, body)
}

/// Expects `body` to throw `KCPError.invalidArgument` naming `argument`,
/// with every one of `fragments` in its reason.
func expectInvalidArgument(_ argument: String, containing fragments: [String],
                           sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void)
{
    do {
        try body()
        Issue.record("expected invalidArgument(\(argument)), nothing was thrown", sourceLocation: sourceLocation)
    } catch let KCPError.invalidArgument(name, reason) {
        #expect(name == argument, "reason: \(reason)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(reason.contains(fragment), "'\(reason)' lacks '\(fragment)'", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected invalidArgument(\(argument)), got \(error)", sourceLocation: sourceLocation)
    }
}
