import KCP

/// The object behind a `kcp_network *`: a network, its channel spaces once
/// computed, and nothing else.
final class NetworkHandle {
    var network: Network

    init(_ network: Network) { self.network = network }

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

    static func indices(_ pointer: UnsafePointer<Int64>?, _ count: Int32, _ name: String) throws -> [Int] {
        guard count >= 0 else { throw KCPError.invalidArgument(argument: name, reason: "negative count \(count)") }
        if count == 0 { return [] }
        return try Array(buffer(pointer, Int(count), name)).map { Int($0) }
    }

    /// An op from its `KCP_OP_*` code and attribute list (see kcp.h).
    static func op(_ code: Int32, _ attributes: [Double]) throws -> Op {
        func expect(_ count: Int) throws {
            guard attributes.count == count else {
                throw KCPError.invalidArgument(argument: "attributes", reason: "op \(code) takes \(count) attributes, got \(attributes.count)")
            }
        }
        func integer(_ i: Int) throws -> Int {
            let value = attributes[i]
            guard value.isFinite, value == value.rounded(), abs(value) < 1e15 else {
                throw KCPError.invalidArgument(argument: "attributes", reason: "attribute \(i) must be an integer, got \(value)")
            }
            return Int(value)
        }
        func pool() throws -> Pool2d {
            try expect(9)
            return Pool2d(kernel: (try integer(0), try integer(1)), stride: (try integer(2), try integer(3)),
                          padding: (try integer(4), try integer(5), try integer(6), try integer(7)),
                          countIncludePad: attributes[8] != 0)
        }
        switch code {
        case 0:
            try expect(9)
            return .conv2d(Conv2d(stride: (try integer(0), try integer(1)),
                                  padding: (try integer(2), try integer(3), try integer(4), try integer(5)),
                                  dilation: (try integer(6), try integer(7)), groups: try integer(8)))
        case 1: try expect(1); return .batchNorm(epsilon: Float(attributes[0]))
        case 2: try expect(0); return .relu
        case 3: try expect(1); return .leakyRelu(alpha: Float(attributes[0]))
        case 4: try expect(0); return .sigmoid
        case 5: try expect(0); return .add
        case 6: try expect(0); return .mul
        case 7: try expect(0); return .concat
        case 8: return .maxPool(try pool())
        case 9: return .avgPool(try pool())
        case 10: try expect(0); return .globalAvgPool
        case 11: try expect(0); return .flatten
        case 12: try expect(0); return .linear
        case 13:
            try expect(2)
            guard let mode = UpsampleMode(rawValue: Int32(try integer(1))) else {
                throw KCPError.invalidArgument(argument: "attributes", reason: "unknown upsample mode \(attributes[1])")
            }
            return .upsample(scale: try integer(0), mode: mode)
        case 14: try expect(2); return .correlation(maxDisparity: try integer(0), scale: Float(attributes[1]))
        case 15: try expect(0); return .softmax
        case 16: try expect(0); return .softArgmin
        case 17: try expect(0); return .identity
        default: throw KCPError.invalidArgument(argument: "op", reason: "unknown op code \(code)")
        }
    }
}
