import KCP

/// The op table: every op's `KCP_OP_*` code, name and attribute list, stated
/// once. The thunks decode and encode ops through it, `kcp_op_table` hands it
/// to Python (which keeps no list of its own), and a test checks the enums of
/// `kcp.h` against it. Enumerated attributes (an activation's kind, a binary
/// op's kind, a resize mode) list their values here too.
typealias OpCode = Op.Kind

extension OpCode {
    /// Its `KCP_OP_*` code: its position in `Op.Kind`.
    var code: Int32 { Int32(Self.allCases.firstIndex(of: self)!) }

    init?(code: Int32) {
        guard Self.allCases.indices.contains(Int(code)) else { return nil }
        self = Self.allCases[Int(code)]
    }

    /// The op's name in kcp.h (`KCP_OP_<NAME>`, upper-cased) and in Python.
    var name: String { rawValue }

    /// Attribute names, in order; `nil` for a variable list (channelwise: its output shape without batch).
    var attributes: [String]? {
        let pool = ["kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom", "pad_right",
                    "count_include_pad", "ceil_mode", "dilation_h", "dilation_w"]
        let window3d = ["kernel_d", "kernel_h", "kernel_w", "stride_d", "stride_h", "stride_w", "pad_front", "pad_top",
                        "pad_left", "pad_back", "pad_bottom", "pad_right"]
        switch self {
        case .conv2d:
            return ["stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom", "pad_right", "dilation_h", "dilation_w",
                    "groups"]
        case .batchNorm: return ["epsilon"]
        case .activation: return ["kind", "alpha", "beta"]
        case .binary: return ["kind", "constant_first"]
        case .maxPool, .avgPool: return pool
        case .adaptivePool: return ["height", "width", "max"]
        case .resize: return ["height", "width", "mode", "align_corners"]
        case .correlation: return ["max_disparity", "scale"]
        case .costVolume: return ["kind", "max_disparity", "groups", "scale"]
        case .softArgmin: return ["sign"]
        case .channelShuffle: return ["groups"]
        case .channelChunk: return ["index", "parts"]
        case .normalization: return ["groups", "spatial", "epsilon"]
        case .convTranspose2d:
            return ["stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom", "pad_right", "output_padding_h",
                    "output_padding_w", "dilation_h", "dilation_w", "groups"]
        case .conv3d:
            return ["stride_d", "stride_h", "stride_w", "pad_front", "pad_top", "pad_left", "pad_back", "pad_bottom",
                    "pad_right", "dilation_d", "dilation_h", "dilation_w", "groups"]
        case .convTranspose3d:
            return ["stride_d", "stride_h", "stride_w", "pad_front", "pad_top", "pad_left", "pad_back", "pad_bottom",
                    "pad_right", "output_padding_d", "output_padding_h", "output_padding_w", "dilation_d", "dilation_h",
                    "dilation_w", "groups"]
        // Each 3-D pool lists only the attributes it reads (no dilation for the average, as in PyTorch).
        case .maxPool3d: return window3d + ["ceil_mode", "dilation_d", "dilation_h", "dilation_w"]
        case .avgPool3d: return window3d + ["count_include_pad", "ceil_mode"]
        case .resize3d: return ["depth", "height", "width", "mode", "align_corners"]
        case .channelwise: return nil
        case .concat, .globalAvgPool, .flatten, .linear, .softmax, .identity: return []
        }
    }

    /// The named values of enumerated attributes, as `(attribute, [(name, code)])`.
    static let enumerations: [(String, [(String, Int32)])] = [
        ("activation", [("relu", Activation.Kind.relu), ("clip", .clip), ("leaky_relu", .leakyRelu),
                        ("sigmoid", .sigmoid), ("tanh", .tanh), ("silu", .silu), ("gelu", .gelu),
                        ("gelu_tanh", .geluTanh), ("hardswish", .hardswish), ("hardsigmoid", .hardsigmoid),
                        ("elu", .elu), ("mish", .mish), ("softplus", .softplus), ("affine", .affine)]
            .map { ($0.0, $0.1.rawValue) }),
        ("binary", [("add", Binary.Kind.add), ("sub", .sub), ("mul", .mul), ("div", .div)].map { ($0.0, $0.1.rawValue) }),
        ("resize_mode", [("nearest", UpsampleMode.nearest), ("bilinear", .bilinear)].map { ($0.0, $0.1.rawValue) }),
        ("cost_volume", [("concatenation", CostVolume.Kind.concatenation), ("group_correlation", .groupCorrelation)]
            .map { ($0.0, $0.1.rawValue) }),
    ]

    /// The table as text, one line per op (`op CODE NAME attr,attr,...`, `*`
    /// for a variable list) and per enumerated value (`ENUMERATION CODE NAME`).
    static var table: String {
        let ops = allCases.map { "op \($0.code) \($0.name) \($0.attributes?.joined(separator: ",") ?? "*")" }
        let values = enumerations.flatMap { enumeration, cases in cases.map { "\(enumeration) \($1) \($0)" } }
        return (ops + values).joined(separator: "\n")
    }
}

/// Ops as `KCP_OP_*` codes and attribute lists, both ways.
extension Arguments {
    /// An op from its code and attribute list.
    static func op(_ code: Int32, _ attributes: [Double]) throws -> Op {
        guard let opCode = OpCode(code: code) else {
            throw KCPError.invalidArgument(argument: "op", reason: "unknown op code \(code)")
        }
        if let names = opCode.attributes, names.count != attributes.count {
            throw KCPError.invalidArgument(argument: "attributes",
                                           reason: "\(opCode.name) takes \(names.count) attributes (\(names.joined(separator: ", "))), got \(attributes.count)")
        }
        func integer(_ i: Int) throws -> Int {
            let value = attributes[i]
            guard value.isFinite, value == value.rounded(), abs(value) < 1e15 else {
                throw KCPError.invalidArgument(argument: "attributes",
                                               reason: "\(opCode.name) attribute \(opCode.attributes?[i] ?? "\(i)") must be an integer below 1e15, got \(value)")
            }
            return Int(value)
        }
        func flag(_ i: Int) throws -> Bool { try integer(i) != 0 }
        func kind<Kind: RawRepresentable>(_ i: Int, _: Kind.Type) throws -> Kind where Kind.RawValue == Int32 {
            guard let value = Int32(exactly: try integer(i)), let kind = Kind(rawValue: value) else {
                throw KCPError.invalidArgument(argument: "attributes", reason: "\(opCode.name): unknown kind \(attributes[i])")
            }
            return kind
        }
        func pool() throws -> Pool2d {
            Pool2d(kernel: (try integer(0), try integer(1)), stride: (try integer(2), try integer(3)),
                   padding: (try integer(4), try integer(5), try integer(6), try integer(7)),
                   countIncludePad: try flag(8), ceilMode: try flag(9), dilation: (try integer(10), try integer(11)))
        }
        /// A 3-D pool's window, then its `countIncludePad`, `ceilMode` and dilations.
        func pool3d(countIncludePad: Bool, ceilMode: Bool, dilation: (Int, Int, Int)) throws -> Pool3d {
            Pool3d(kernel: try integer(0), stride: try integer(3), front: try integer(6), back: try integer(9),
                   dilation: dilation.0,
                   plane: Pool2d(kernel: (try integer(1), try integer(2)), stride: (try integer(4), try integer(5)),
                                 padding: (try integer(7), try integer(8), try integer(10), try integer(11)),
                                 countIncludePad: countIncludePad, ceilMode: ceilMode, dilation: (dilation.1, dilation.2)))
        }
        switch opCode {
        case .maxPool3d:
            return .maxPool3d(try pool3d(countIncludePad: false, ceilMode: try flag(12),
                                         dilation: (try integer(13), try integer(14), try integer(15))))
        case .avgPool3d: return .avgPool3d(try pool3d(countIncludePad: try flag(12), ceilMode: try flag(13), dilation: (1, 1, 1)))
        case .resize3d:
            return .resize3d(Resize3d(depth: try integer(0),
                                      plane: Resize(height: try integer(1), width: try integer(2),
                                                    mode: try kind(3, UpsampleMode.self), alignCorners: try flag(4))))
        case .conv2d:
            return .conv2d(Conv2d(stride: (try integer(0), try integer(1)),
                                  padding: (try integer(2), try integer(3), try integer(4), try integer(5)),
                                  dilation: (try integer(6), try integer(7)), groups: try integer(8)))
        case .convTranspose2d:
            return .convTranspose2d(ConvTranspose2d(stride: (try integer(0), try integer(1)),
                                                    padding: (try integer(2), try integer(3), try integer(4), try integer(5)),
                                                    outputPadding: (try integer(6), try integer(7)),
                                                    dilation: (try integer(8), try integer(9)), groups: try integer(10)))
        case .conv3d:
            return .conv3d(Conv3d(depth: DepthAxis(stride: try integer(0), front: try integer(3), back: try integer(6),
                                                   dilation: try integer(9)),
                                  plane: Conv2d(stride: (try integer(1), try integer(2)),
                                                padding: (try integer(4), try integer(5), try integer(7), try integer(8)),
                                                dilation: (try integer(10), try integer(11)), groups: try integer(12))))
        case .convTranspose3d:
            let plane = ConvTranspose2d(stride: (try integer(1), try integer(2)),
                                        padding: (try integer(4), try integer(5), try integer(7), try integer(8)),
                                        outputPadding: (try integer(10), try integer(11)),
                                        dilation: (try integer(13), try integer(14)), groups: try integer(15))
            return .convTranspose3d(ConvTranspose3d(depth: DepthAxis(stride: try integer(0), front: try integer(3),
                                                                     back: try integer(6), dilation: try integer(12)),
                                                    depthOutputPadding: try integer(9), plane: plane))
        case .batchNorm: return .batchNorm(epsilon: Float(attributes[0]))
        case .activation:
            return .activation(Activation(try kind(0, Activation.Kind.self), alpha: Float(attributes[1]),
                                          beta: Float(attributes[2])))
        case .binary: return .binary(Binary(try kind(0, Binary.Kind.self), constantFirst: try flag(1)))
        case .concat: return .concat
        case .maxPool: return .maxPool(try pool())
        case .avgPool: return .avgPool(try pool())
        case .adaptivePool: return .adaptivePool(height: try integer(0), width: try integer(1), max: try flag(2))
        case .globalAvgPool: return .globalAvgPool
        case .flatten: return .flatten
        case .linear: return .linear
        case .resize:
            return .resize(Resize(height: try integer(0), width: try integer(1), mode: try kind(2, UpsampleMode.self),
                                  alignCorners: try flag(3)))
        case .correlation: return .correlation(maxDisparity: try integer(0), scale: Float(attributes[1]))
        case .softmax: return .softmax
        case .costVolume:
            return .costVolume(CostVolume(try kind(0, CostVolume.Kind.self), maxDisparity: try integer(1),
                                          groups: try integer(2), scale: Float(attributes[3])))
        case .softArgmin: return .softArgmin(sign: Float(attributes[0]))
        case .identity: return .identity
        case .channelShuffle: return .channelShuffle(groups: try integer(0))
        case .channelChunk: return .channelChunk(index: try integer(0), parts: try integer(1))
        case .normalization:
            return .normalization(Normalization(groups: try integer(0), spatial: try flag(1), epsilon: Float(attributes[2])))
        case .channelwise:
            guard (1...8).contains(attributes.count) else {
                throw KCPError.invalidArgument(argument: "attributes",
                                               reason: "channelwise takes its output shape without batch (1 to 8 sizes), got \(attributes.count)")
            }
            return .channelwise(shape: try attributes.indices.map(integer))
        }
    }

    /// The code and attribute list of `op`; `Arguments.op` inverts it.
    static func encode(_ op: Op) -> (code: Int32, attributes: [Double]) {
        func pool(_ p: Pool2d) -> [Double] {
            [p.kernel.0, p.kernel.1, p.stride.0, p.stride.1, p.padding.0, p.padding.1, p.padding.2, p.padding.3,
             p.countIncludePad ? 1 : 0, p.ceilMode ? 1 : 0, p.dilation.0, p.dilation.1].map(Double.init)
        }
        func window3d(_ p: Pool3d) -> [Double] {
            let q = p.plane
            return [p.kernel, q.kernel.0, q.kernel.1, p.stride, q.stride.0, q.stride.1, p.front, q.padding.0, q.padding.1,
                    p.back, q.padding.2, q.padding.3].map(Double.init)
        }
        let attributes: [Double]
        switch op {
        case let .conv2d(c):
            attributes = [c.stride.0, c.stride.1, c.padding.0, c.padding.1, c.padding.2, c.padding.3, c.dilation.0,
                          c.dilation.1, c.groups].map(Double.init)
        case let .convTranspose2d(t):
            attributes = [t.stride.0, t.stride.1, t.padding.0, t.padding.1, t.padding.2, t.padding.3, t.outputPadding.0,
                          t.outputPadding.1, t.dilation.0, t.dilation.1, t.groups].map(Double.init)
        case let .conv3d(c):
            let (d, p) = (c.depth, c.plane)
            attributes = [d.stride, p.stride.0, p.stride.1, d.front, p.padding.0, p.padding.1, d.back, p.padding.2,
                          p.padding.3, d.dilation, p.dilation.0, p.dilation.1, p.groups].map(Double.init)
        case let .convTranspose3d(t):
            let (d, p) = (t.depth, t.plane)
            attributes = [d.stride, p.stride.0, p.stride.1, d.front, p.padding.0, p.padding.1, d.back, p.padding.2,
                          p.padding.3, t.depthOutputPadding, p.outputPadding.0, p.outputPadding.1, d.dilation,
                          p.dilation.0, p.dilation.1, p.groups].map(Double.init)
        case let .batchNorm(epsilon): attributes = [Double(epsilon)]
        case let .activation(a): attributes = [Double(a.kind.rawValue), Double(a.alpha), Double(a.beta)]
        case let .binary(b): attributes = [Double(b.kind.rawValue), b.constantFirst ? 1 : 0]
        case .concat, .globalAvgPool, .flatten, .linear, .softmax, .identity: attributes = []
        case let .maxPool(p), let .avgPool(p): attributes = pool(p)
        case let .maxPool3d(p):
            attributes = window3d(p) + [p.plane.ceilMode ? 1 : 0, p.dilation, p.plane.dilation.0, p.plane.dilation.1].map(Double.init)
        case let .avgPool3d(p):
            attributes = window3d(p) + [p.plane.countIncludePad ? 1 : 0, p.plane.ceilMode ? 1 : 0]
        case let .resize3d(r):
            attributes = [Double(r.depth), Double(r.plane.height), Double(r.plane.width), Double(r.plane.mode.rawValue),
                          r.plane.alignCorners ? 1 : 0]
        case let .adaptivePool(height, width, max): attributes = [Double(height), Double(width), max ? 1 : 0]
        case let .resize(r):
            attributes = [Double(r.height), Double(r.width), Double(r.mode.rawValue), r.alignCorners ? 1 : 0]
        case let .correlation(maxDisparity, scale): attributes = [Double(maxDisparity), Double(scale)]
        case let .costVolume(v):
            attributes = [Double(v.kind.rawValue), Double(v.maxDisparity), Double(v.groups), Double(v.scale)]
        case let .softArgmin(sign): attributes = [Double(sign)]
        case let .channelShuffle(groups): attributes = [Double(groups)]
        case let .channelChunk(index, parts): attributes = [Double(index), Double(parts)]
        case let .channelwise(shape): attributes = shape.map(Double.init)
        case let .normalization(n): attributes = [Double(n.groups), n.spatial ? 1 : 0, Double(n.epsilon)]
        }
        return (op.kind.code, attributes)
    }
}
