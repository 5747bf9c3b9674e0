/// Arithmetic on sizes derived from caller input (shapes, attributes,
/// settings, labels, checkpoint counts): each result fits or the operation
/// throws `invalidArgument(argument:)` saying what overflowed, where plain
/// `*`, `+` or `Int32(x)` would trap and kill the calling process.
public enum Checked {
    /// `a * b`.
    public static func multiply(_ a: Int, _ b: Int, _ what: @autoclosure () -> String,
                                argument: String = "network") throws -> Int
    {
        let (result, overflow) = a.multipliedReportingOverflow(by: b)
        if overflow { throw KCPError.invalidArgument(argument: argument, reason: "\(what()): \(a) * \(b) overflows") }
        return result
    }

    /// `a + b`.
    public static func add(_ a: Int, _ b: Int, _ what: @autoclosure () -> String,
                           argument: String = "network") throws -> Int
    {
        let (result, overflow) = a.addingReportingOverflow(b)
        if overflow { throw KCPError.invalidArgument(argument: argument, reason: "\(what()): \(a) + \(b) overflows") }
        return result
    }

    /// The product of `factors` (1 for none).
    public static func product<S: Sequence>(_ factors: S, _ what: @autoclosure () -> String,
                                            argument: String = "network") throws -> Int where S.Element == Int
    {
        try factors.reduce(1) { try multiply($0, $1, what(), argument: argument) }
    }

    /// The sum of `terms` (0 for none).
    public static func sum<S: Sequence>(_ terms: S, _ what: @autoclosure () -> String,
                                        argument: String = "network") throws -> Int where S.Element == Int
    {
        try terms.reduce(0) { try add($0, $1, what(), argument: argument) }
    }

    /// `value` as a `T` if it is one exactly (an integer in `T`'s range; a
    /// `Double` with no fraction).
    public static func narrow<T: FixedWidthInteger, V: BinaryInteger>(_ value: V, to _: T.Type, _ what: @autoclosure () -> String,
                                                                    argument: String) throws -> T
    {
        guard let result = T(exactly: value) else {
            throw KCPError.invalidArgument(argument: argument, reason: "\(what()) \(value) is out of range for \(T.self)")
        }
        return result
    }

    /// `value` as a `T` if it is an integer in `T`'s range.
    public static func integer<T: FixedWidthInteger>(_ value: Double, as _: T.Type, _ what: @autoclosure () -> String,
                                                     argument: String) throws -> T
    {
        guard let result = T(exactly: value) else {
            throw KCPError.invalidArgument(argument: argument,
                                           reason: "\(what()) must be an integer in [\(T.min), \(T.max)], got \(value)")
        }
        return result
    }
}
