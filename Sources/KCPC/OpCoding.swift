import KCP

/// Ops as `KCP_OP_*` codes and attribute lists (see kcp.h), both ways.
extension Arguments {
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

    /// The `KCP_OP_*` code and attribute list of `op`; `Arguments.op` inverts it.
    static func encode(_ op: Op) -> (code: Int32, attributes: [Double]) {
        func pool(_ p: Pool2d) -> [Double] {
            [p.kernel.0, p.kernel.1, p.stride.0, p.stride.1, p.padding.0, p.padding.1, p.padding.2, p.padding.3,
             p.countIncludePad ? 1 : 0].map(Double.init)
        }
        switch op {
        case let .conv2d(c):
            return (0, [c.stride.0, c.stride.1, c.padding.0, c.padding.1, c.padding.2, c.padding.3,
                        c.dilation.0, c.dilation.1, c.groups].map(Double.init))
        case let .batchNorm(epsilon): return (1, [Double(epsilon)])
        case .relu: return (2, [])
        case let .leakyRelu(alpha): return (3, [Double(alpha)])
        case .sigmoid: return (4, [])
        case .add: return (5, [])
        case .mul: return (6, [])
        case .concat: return (7, [])
        case let .maxPool(p): return (8, pool(p))
        case let .avgPool(p): return (9, pool(p))
        case .globalAvgPool: return (10, [])
        case .flatten: return (11, [])
        case .linear: return (12, [])
        case let .upsample(scale, mode): return (13, [Double(scale), Double(mode.rawValue)])
        case let .correlation(maxDisparity, scale): return (14, [Double(maxDisparity), Double(scale)])
        case .softmax: return (15, [])
        case .softArgmin: return (16, [])
        case .identity: return (17, [])
        }
    }
}
