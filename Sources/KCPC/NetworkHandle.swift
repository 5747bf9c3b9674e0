import Glibc
import KCP

/// A pthread mutex owned by a handle.
final class HandleLock {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(mutex, nil) }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` holding the lock, waiting for it.
    func holding<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Runs `body` holding the lock, or throws `invalidArgument(argument:)`
    /// at once if another call holds it (another thread, or a callback of
    /// the call that holds it).
    func exclusive<R>(_ argument: String, _ body: () throws -> R) throws -> R {
        guard pthread_mutex_trylock(mutex) == 0 else {
            throw KCPError.invalidArgument(argument: argument, reason:
                "is in use by another call (another thread, or a progress callback of the running call); "
                    + "use it when that call has returned")
        }
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// The object behind a `kcp_network *`: a network behind a lock. Readers
/// take a snapshot (a copy-on-write value) under the lock and work on it
/// without holding it; changes are made under the lock. So a call sees the
/// network as it was when the call began, whatever other threads or
/// callbacks change meanwhile.
final class NetworkHandle {
    private var network: Network
    /// The channel spaces of `network`, computed once per change of it (a
    /// plan and each of the space queries read them).
    private var computedSpaces: ChannelSpaces?
    private let lock = HandleLock()

    init(_ network: Network) { self.network = network }

    /// The network now.
    var snapshot: Network { lock.holding { network } }

    /// The network now and its channel spaces, computed under the lock the
    /// first time after a change.
    var snapshotWithSpaces: (network: Network, spaces: ChannelSpaces) {
        lock.holding {
            let found = computedSpaces ?? ChannelSpaces(network: network, shapes: network.declaredShapes)
            computedSpaces = found
            return (network, found)
        }
    }

    /// Changes the network under the lock. The network moves out of the
    /// handle while `body` runs, so that its arrays are changed in place
    /// (not copied, which would make building a network quadratic) unless a
    /// reader's snapshot still shares them. `body` must leave it unchanged if
    /// it throws, as `Network`'s mutating methods do: each checks everything
    /// before it changes anything.
    func change<R>(_ body: (inout Network) throws -> R) rethrows -> R {
        try lock.holding {
            var changed = network
            network = Network()
            defer { network = changed }
            let result = try body(&changed)
            computedSpaces = nil
            return result
        }
    }

    static func retained(_ network: Network) -> OpaquePointer {
        OpaquePointer(Unmanaged.passRetained(NetworkHandle(network)).toOpaque())
    }

    static func from(_ pointer: OpaquePointer?) throws -> NetworkHandle {
        guard let pointer else { throw KCPError.invalidArgument(argument: "network", reason: "is NULL") }
        return Unmanaged<NetworkHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    /// The network of `pointer` now.
    static func network(_ pointer: OpaquePointer?) throws -> Network { try from(pointer).snapshot }
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

/// What a name names (`KCP_NAME_*`).
enum NameKind: Int32 {
    case value = 0, parameter = 1
}

extension Arguments {
    static func nameKind(_ code: Int32) throws -> NameKind {
        guard let kind = NameKind(rawValue: code) else {
            throw KCPError.invalidArgument(argument: "kind", reason: "expected 0 (value) or 1 (parameter), got \(code)")
        }
        return kind
    }
}
