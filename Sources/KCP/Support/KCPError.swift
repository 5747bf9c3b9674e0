/// An error raised by the engine.
///
/// Engine code throws; the C ABI catches at the boundary and turns each case
/// into a status code and a message.
public enum KCPError: Error, Equatable, CustomStringConvertible {
    /// An argument the caller can fix; `argument` names it.
    case invalidArgument(argument: String, reason: String)
    /// A numeric failure inside the engine (overflow, no convergence, ...).
    case numeric(String)

    /// Finite weights whose float32 arithmetic overflows.
    static let overflow = KCPError.numeric(
        "weight: values too large for float32 arithmetic (squared distances overflow); rescale the weight")

    public var description: String {
        switch self {
        case let .invalidArgument(argument, reason): return "\(argument): \(reason)"
        case let .numeric(reason): return reason
        }
    }
}

/// Throws `invalidArgument` unless `condition` holds.
@inline(__always)
public func require(_ condition: Bool, _ argument: String, _ reason: @autoclosure () -> String) throws {
    if !condition { throw KCPError.invalidArgument(argument: argument, reason: reason()) }
}
