/// The shape of one layer's weight, read as a convolution.
///
/// A conv weight is `[O, I/g, kh, kw]` with `g` groups; a linear weight
/// `[O, I]` is the case `kh = kw = 1, g = 1`, a volumetric one `[O, I/g, kd, kh, kw]`
/// the case of a `kd x kh x kw` kernel. A *kernel* is one `kh x kw` (or `kd x kh x kw`)
/// slice `W[o, j]`; the *kernel cluster* of input channel `i` is every kernel
/// that reads `i`, `W[o, j(i)]` for the outputs `o` of `i`'s group.
public struct LayerGeometry: Equatable, Sendable {
    /// The weight's shape, 2-D, 4-D or 5-D.
    public let shape: [Int]
    public let outChannels: Int
    public let inPerGroup: Int
    public let groups: Int
    /// `kh * kw` (`kd * kh * kw` for a volumetric conv, 1 for a linear layer).
    public let kernelArea: Int

    public var inChannels: Int { inPerGroup * groups }
    public var outPerGroup: Int { outChannels / groups }
    /// Length of a kernel cluster vector `v_i`: `(O/g) * kh * kw`.
    public var clusterLength: Int { outPerGroup * kernelArea }
    /// Length of one output filter `W[o]`: `(I/g) * kh * kw`.
    public var filterLength: Int { inPerGroup * kernelArea }
    /// Number of kernels `O * (I/g)`.
    public var kernelCount: Int { outChannels * inPerGroup }
    public var elementCount: Int { outChannels * filterLength }

    /// Validates `shape` (2-D linear or 4-D conv) and `groups`.
    public init(shape: [Int], groups: Int) throws {
        try require(shape.count == 2 || shape.count == 4 || shape.count == 5, "weight",
                    "expected a 2-D linear weight [O, I], a 4-D conv weight [O, I/g, kh, kw] or a 5-D one [O, I/g, kd, kh, kw], got \(shape.count)-D shape \(shape)")
        try require(shape.allSatisfy { $0 > 0 }, "weight", "every dimension must be positive, got shape \(shape)")
        try require(groups >= 1, "groups", "must be at least 1, got \(groups)")
        try require(shape.count > 2 || groups == 1, "groups", "a linear weight has one group, got \(groups)")
        try require(shape[0] % groups == 0, "groups",
                    "\(groups) groups do not divide the \(shape[0]) output channels")
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            try require(!overflow && product <= Int(Int32.max) * 64, "weight", "shape \(shape) is too large")
            count = product
        }
        self.shape = shape
        outChannels = shape[0]
        inPerGroup = shape[1]
        self.groups = groups
        kernelArea = shape.dropFirst(2).reduce(1, *)
    }

    /// The group of input channel `i` and its index `j` inside the group.
    @inline(__always) public func groupOf(inChannel i: Int) -> (group: Int, j: Int) {
        (i / inPerGroup, i % inPerGroup)
    }
}

/// Throws unless every value is finite, naming the first offending index.
func requireFinite(_ values: UnsafeBufferPointer<Float>, shape: [Int], argument: String) throws {
    guard let bad = values.firstIndex(where: { !$0.isFinite }) else { return }
    var index = [Int](repeating: 0, count: shape.count)
    var rest = bad
    for axis in shape.indices.reversed() {
        index[axis] = rest % shape[axis]
        rest /= shape[axis]
    }
    throw KCPError.invalidArgument(argument: argument,
                                   reason: "contains \(values[bad]) at index \(index); weights must be finite")
}
