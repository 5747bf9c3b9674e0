import KCP

/// Conversions from C arguments to engine values; each throws an
/// `invalidArgument` naming the parameter instead of trapping.
enum Arguments {
    static func shape(_ shape: UnsafePointer<Int64>?, _ ndim: Int32) throws -> [Int] {
        guard let shape else { throw KCPError.invalidArgument(argument: "shape", reason: "is NULL") }
        guard (1...8).contains(ndim) else {
            throw KCPError.invalidArgument(argument: "weight", reason: "has \(ndim) dimensions, expected 1 to 8")
        }
        return (0..<Int(ndim)).map { Int(shape[$0]) }
    }

    static func geometry(_ shape: UnsafePointer<Int64>?, _ ndim: Int32, _ groups: Int64) throws -> LayerGeometry {
        try LayerGeometry(shape: Arguments.shape(shape, ndim), groups: Int(groups))
    }

    static func buffer<T>(_ pointer: UnsafePointer<T>?, _ count: Int, _ name: String) throws -> UnsafeBufferPointer<T> {
        guard let pointer else { throw KCPError.invalidArgument(argument: name, reason: "is NULL") }
        return UnsafeBufferPointer(start: pointer, count: count)
    }

    static func output<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: String) throws -> UnsafeMutablePointer<T> {
        guard let pointer else { throw KCPError.invalidArgument(argument: name, reason: "is NULL") }
        return pointer
    }

    /// `pointer`, not NULL and with room (`capacity`, as the caller says) for the `count` entries the call writes.
    static func output<T>(_ pointer: UnsafeMutablePointer<T>?, _ name: String, capacity: Int64,
                          count: Int) throws -> UnsafeMutablePointer<T>
    {
        try require(capacity >= Int64(count), name, "has room for \(capacity) entries, the call writes \(count)")
        return try output(pointer, name)
    }

    static func mask(_ pointer: UnsafePointer<UInt8>?, _ count: Int) -> [Bool]? {
        guard let pointer else { return nil }
        return (0..<count).map { pointer[$0] != 0 }
    }

    static func center(_ code: Int32) throws -> CenterKind {
        guard let center = CenterKind(rawValue: code) else {
            throw KCPError.invalidArgument(argument: "center", reason: "unknown code \(code)")
        }
        return center
    }

    static func criterion(_ code: Int32, center: Int32, seed: UInt64) throws -> Criterion {
        switch code {
        case 0: return .kcp(center: try Arguments.center(center))
        case 1: return .filter(.l1)
        case 2: return .filter(.l2)
        case 3: return .filter(.fpgm)
        case 4: return .filter(.random(seed: seed))
        default: throw KCPError.invalidArgument(argument: "criterion", reason: "unknown code \(code)")
        }
    }
}

extension UnsafeMutablePointer {
    /// Writes `values` converted by `transform` to consecutive elements.
    func store<S: Sequence>(_ values: S, _ transform: (S.Element) -> Pointee) {
        for (i, value) in values.enumerated() { self[i] = transform(value) }
    }
}
