import KCP

/// The object behind a `kcp_network *`: a network, its channel spaces once
/// computed, and nothing else.
final class NetworkHandle {
    var network: Network { didSet { computedSpaces = nil } }
    private var computedSpaces: ChannelSpaces?

    init(_ network: Network) { self.network = network }

    /// The channel spaces of `network`, computed once per change of it (a
    /// plan and each of the space queries read them).
    var spaces: ChannelSpaces {
        if let computedSpaces { return computedSpaces }
        let found = ChannelSpaces(network: network, shapes: network.declaredShapes)
        computedSpaces = found
        return found
    }

    static func retained(_ network: Network) -> OpaquePointer {
        OpaquePointer(Unmanaged.passRetained(NetworkHandle(network)).toOpaque())
    }

    static func from(_ pointer: OpaquePointer?) throws -> NetworkHandle {
        guard let pointer else { throw KCPError.invalidArgument(argument: "network", reason: "is NULL") }
        return Unmanaged<NetworkHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}

extension Arguments {
    static func string(_ pointer: UnsafePointer<CChar>?, _ name: String) throws -> String {
        guard let pointer else { throw KCPError.invalidArgument(argument: name, reason: "is NULL") }
        return String(cString: pointer)
    }

    /// Writes `text` as UTF-8 into `buffer` (with a terminating 0) if
    /// `capacity` exceeds its length, which `length` always receives.
    static func text(_ text: String, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
                     _ length: UnsafeMutablePointer<Int64>?) throws
    {
        let bytes = Array(text.utf8)
        try output(length, "length").pointee = Int64(bytes.count)
        if let buffer, capacity > Int64(bytes.count) {
            for (i, byte) in bytes.enumerated() { buffer[i] = CChar(bitPattern: byte) }
            buffer[bytes.count] = 0
        }
    }

    static func indices(_ pointer: UnsafePointer<Int64>?, _ count: Int32, _ name: String) throws -> [Int] {
        guard count >= 0 else { throw KCPError.invalidArgument(argument: name, reason: "negative count \(count)") }
        if count == 0 { return [] }
        return try Array(buffer(pointer, Int(count), name)).map { Int($0) }
    }
}
