import Testing
@testable import KCP

@Suite("Checked arithmetic, rollback and checkpoint counts")
struct CheckedArithmeticTests {
    @Test("products, sums and narrowings fit or name what overflowed")
    func helpers() {
        #expect((try? Checked.product([2, 3, 7], "x")) == 42)
        #expect((try? Checked.sum([Int.max - 1, 1], "x")) == Int.max)
        expectInvalidArgument("network", containing: ["span", "overflows"]) { _ = try Checked.multiply(1 << 40, 1 << 40, "span") }
        expectInvalidArgument("epochs", "overflows") { _ = try Checked.sum([Int.max, 1], "steps", argument: "epochs") }
        expectInvalidArgument("label", "out of range") { _ = try Checked.narrow(Int(Int32.max) + 1, to: Int32.self, "label", argument: "label") }
        expectInvalidArgument("seed", "integer") { _ = try Checked.integer(0.5, as: Int.self, "seed", argument: "seed") }
    }

    @Test("a dilation whose reach overflows is refused naming the node and the attribute")
    func dilationOverflow() throws {
        var net = Network()
        let x = try net.addInput(name: "x", shape: [1, 1, 4, 4])
        let w = net.addParameter(name: "w", tensor: Tensor(shape: [1, 1, 1, 10_000], data: [Float](repeating: 0, count: 10_000)))
        let conv = Conv2d(stride: (1, 1), padding: (0, 0, 0, 0), dilation: (1, 999_999_999_999_999), groups: 1)
        expectInvalidArgument("network", containing: ["node 'c'", "dilation_w", "overflows"]) {
            _ = try net.addNode(name: "c", op: .conv2d(conv), inputs: [x], parameters: [w])
        }
        #expect(net.nodes.isEmpty && net.valueCount == 1)
    }

    @Test("truncate removes what a step added, and refuses to orphan what stays")
    func truncate() throws {
        var net = Network()
        let x = try net.addInput(name: "x", shape: [1, 2, 3, 3])
        let before = (values: net.valueCount, parameters: net.parameters.count, outputs: net.outputs.count)
        let w = net.addParameter(name: "w", tensor: Tensor(shape: [2, 2, 1, 1], data: [1, 0, 0, 1]))
        let y = try net.addNode(name: "c", op: .conv2d(Conv2d(stride: (1, 1), padding: (0, 0, 0, 0), dilation: (1, 1), groups: 1)),
                                inputs: [x], parameters: [w])
        try net.addOutput(y)
        expectInvalidArgument("counts", "uses") { try net.truncate(values: 2, parameters: 0, outputs: 1) }
        try net.truncate(values: before.values, parameters: before.parameters, outputs: before.outputs)
        #expect(net.nodes.isEmpty && net.parameters.isEmpty && net.outputs.isEmpty && net.valueCount == 1)
        #expect(net.declaredShapes == [[1, 2, 3, 3]])
    }

    @Test("a checkpoint count larger than the bytes left is refused before anything is allocated")
    func checkpointCounts() {
        var writer = ByteWriter()
        writer.write(Int.max)
        var reader = ByteReader(writer.bytes)
        expectInvalidArgument("checkpoint", "corrupt") { _ = try reader.count(itemBytes: 8) }
        var negative = ByteReader(ByteWriter().bytes + [255, 255, 255, 255, 255, 255, 255, 255])
        expectInvalidArgument("checkpoint", "corrupt") { _ = try negative.floats() }
    }
}
