/// Samples held by the engine: one tensor per network input, each `[S, ...]`,
/// and the targets `[S, ...]` with an optional validity mask.
public struct Dataset: Sendable {
    public var inputs: [Tensor]
    public var targets: Tensor
    /// Where targets are valid (one entry per target element); nil: all.
    public var mask: [Bool]?

    public var count: Int { targets.shape[0] }

    public init(inputs: [Tensor], targets: Tensor, mask: [Bool]? = nil) throws {
        try require(!inputs.isEmpty, "inputs", "at least one input array is needed")
        try require(!targets.shape.isEmpty && targets.shape[0] > 0, "targets", "needs at least one sample")
        for (k, input) in inputs.enumerated() {
            try require(input.shape.first == targets.shape[0], "inputs",
                        "input \(k) has \(input.shape.first ?? 0) samples, the targets \(targets.shape[0])")
        }
        try require(mask == nil || mask!.count == targets.count, "mask",
                    "has \(mask?.count ?? 0) entries, the targets \(targets.count)")
        (self.inputs, self.targets, self.mask) = (inputs, targets, mask)
    }

    /// The samples at `indices`, in that order.
    func batch(_ indices: [Int]) -> (inputs: [Tensor], targets: Tensor, mask: [Bool]?) {
        func gather(_ t: Tensor) -> Tensor {
            let size = t.count / t.shape[0]
            var data = [Float]()
            data.reserveCapacity(indices.count * size)
            for i in indices { data.append(contentsOf: t.data[(i * size)..<((i + 1) * size)]) }
            return Tensor(shape: [indices.count] + t.shape.dropFirst(), data: data)
        }
        let size = targets.count / count
        let mask = self.mask.map { m in indices.flatMap { m[($0 * size)..<(($0 + 1) * size)] } }
        return (inputs.map(gather), gather(targets), mask)
    }
}
