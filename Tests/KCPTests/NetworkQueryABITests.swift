import Testing
import KCPC

/// The structure queries of include/kcp.h: counts, names, lookups, node edges and graph ports.
@Suite("C ABI: network structure")
struct NetworkQueryABITests {
    /// x [1, 2, 2, 2] and y -> 1x1 conv "c" (weight "w") -> concat "é\nz" of c and y -> output.
    static func network() -> OpaquePointer? {
        var network: OpaquePointer?, x: Int64 = 0, y: Int64 = 0, w: Int64 = 0, c: Int64 = 0, z: Int64 = 0
        _ = kcp_network_create(&network)
        _ = kcp_network_add_input(network, "x", [1, 2, 2, 2], 4, &x)
        _ = kcp_network_add_input(network, "y", [1, 3, 2, 2], 4, &y)
        _ = kcp_network_add_parameter(network, "w", [Float](repeating: 1, count: 8), [4, 2, 1, 1], 4, &w)
        _ = kcp_network_add_node(network, "c", 0, [1, 1, 0, 0, 0, 0, 1, 1, 1], 9, [x], 1, [w], 1, &c)
        _ = kcp_network_add_node(network, "é\nz", 4, [], 0, [c, y], 2, [], 0, &z)
        _ = kcp_network_add_output(network, z)
        return network
    }

    static func counts(_ network: OpaquePointer?) -> [Int64] {
        var counts = [Int64](repeating: -1, count: 6)
        #expect(kcp_network_counts(network, &counts, 6) == 0)
        return counts
    }

    @Test("kcp_network_counts: values, nodes, parameters, inputs, outputs, and a revision that moves with structure only")
    func counts() {
        let network = Self.network()
        defer { kcp_network_destroy(network) }
        let before = Self.counts(network)
        #expect(Array(before.prefix(5)) == [4, 2, 1, 2, 1])
        #expect(kcp_network_parameter_write(network, 0, [Float](repeating: 2, count: 8), 8) == 0)
        #expect(Self.counts(network) == before)
        #expect(kcp_network_truncate(network, 4, 1, 0) == 0)
        let after = Self.counts(network)
        #expect(Array(after.prefix(5)) == [4, 2, 1, 2, 0] && after[5] > before[5])
        var short = [Int64](repeating: 0, count: 5)
        expectInvalid("counts", kcp_network_counts(network, &short, 5))
    }

    @Test("kcp_network_names: every name in order, each followed by a 0, written only with room for them")
    func names() {
        let network = Self.network()
        defer { kcp_network_destroy(network) }
        var length: Int64 = -1
        #expect(kcp_network_names(network, 0, nil, 0, &length) == 0)
        let expected = Array("x\0y\0c\0é\nz\0".utf8)
        #expect(length == Int64(expected.count))
        var buffer = [CChar](repeating: 7, count: expected.count + 1)
        #expect(kcp_network_names(network, 0, &buffer, Int64(expected.count), &length) == 0)
        #expect(buffer.allSatisfy { $0 == 7 })  // no room for the final 0: nothing written
        #expect(kcp_network_names(network, 0, &buffer, Int64(buffer.count), &length) == 0)
        #expect(buffer.map { UInt8(bitPattern: $0) } == expected + [0])
        #expect(kcp_network_names(network, 1, &buffer, Int64(buffer.count), &length) == 0 && length == 2)
        #expect(Array(buffer.prefix(3)) == [CChar(UInt8(ascii: "w")), 0, 0])
        expectInvalid("kind", kcp_network_names(network, 2, nil, 0, &length))
    }

    @Test("kcp_network_find: the index of a value or parameter name, or -1")
    func find() {
        let network = Self.network()
        defer { kcp_network_destroy(network) }
        var index: Int64 = 0
        #expect(kcp_network_find(network, 0, "é\nz", &index) == 0 && index == 3)
        #expect(kcp_network_find(network, 1, "w", &index) == 0 && index == 0)
        #expect(kcp_network_find(network, 1, "c", &index) == 0 && index == -1)
        #expect(kcp_network_truncate(network, 3, 1, 0) == 0)
        #expect(kcp_network_find(network, 0, "é\nz", &index) == 0 && index == -1)
        expectInvalid("kind", kcp_network_find(network, -1, "w", &index))
        expectInvalid("name", kcp_network_find(network, 0, nil, &index))
    }

    @Test("kcp_network_node_edges: output, inputs and parameters, refused when they do not fit")
    func edges() {
        let network = Self.network()
        defer { kcp_network_destroy(network) }
        var output: Int64 = -1, inputs = [Int64](repeating: -1, count: 2), parameters = [Int64](repeating: -1, count: 1)
        var inputCount: Int64 = -1, parameterCount: Int64 = -1
        #expect(kcp_network_node_edges(network, 1, &output, &inputs, 2, &inputCount, &parameters, 1, &parameterCount) == 0)
        #expect(output == 3 && inputs == [2, 1] && inputCount == 2 && parameterCount == 0)
        #expect(kcp_network_node_edges(network, 0, &output, &inputs, 2, &inputCount, &parameters, 1, &parameterCount) == 0)
        #expect(output == 2 && inputs[0] == 0 && inputCount == 1 && parameters == [0] && parameterCount == 1)
        expectInvalid("inputs", kcp_network_node_edges(network, 1, &output, &inputs, 1, &inputCount, &parameters, 1,
                                                       &parameterCount))
        expectInvalid("parameters", kcp_network_node_edges(network, 0, &output, &inputs, 2, &inputCount, &parameters, 0,
                                                           &parameterCount))
        expectInvalid("node", kcp_network_node_edges(network, 2, &output, &inputs, 2, &inputCount, &parameters, 1,
                                                     &parameterCount))
    }

    @Test("kcp_network_node_op: the op code and attributes, refused when they do not fit")
    func op() {
        let network = Self.network()
        defer { kcp_network_destroy(network) }
        var code: Int32 = -1, count: Int32 = -1, attributes = [Double](repeating: -1, count: 9)
        #expect(kcp_network_node_op(network, 0, &code, &attributes, 9, &count) == 0)
        #expect(code == 0 && count == 9 && attributes == [1, 1, 0, 0, 0, 0, 1, 1, 1])
        attributes = [Double](repeating: -1, count: 9)
        expectInvalid("attributes", kcp_network_node_op(network, 0, &code, &attributes, 8, &count))
        #expect(attributes.allSatisfy { $0 == -1 })
        expectInvalid("node", kcp_network_node_op(network, 2, &code, &attributes, 9, &count))
    }

    @Test("kcp_network_ports: graph inputs and outputs, sized by the counts")
    func ports() {
        let network = Self.network()
        defer { kcp_network_destroy(network) }
        var inputs = [Int64](repeating: -1, count: 2), outputs = [Int64](repeating: -1, count: 1)
        #expect(kcp_network_ports(network, &inputs, 2, &outputs, 1) == 0)
        #expect(inputs == [0, 1] && outputs == [3])
        expectInvalid("inputs", kcp_network_ports(network, &inputs, 1, &outputs, 1))
        expectInvalid("outputs", kcp_network_ports(network, &inputs, 2, &outputs, 2))
    }
}
