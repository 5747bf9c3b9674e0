import KCP

/// A `kcp_arrays` or `kcp_mutable_arrays` of include/kcp.h (`data`, `sizes`,
/// `count`, 8 bytes each): pointers that each come with their element count,
/// checked before any is read or written.
struct SizedArrays {
    let name: String
    private let pointers: [UnsafeMutableRawPointer?]
    private let sizes: [Int]

    init(_ raw: UnsafeRawPointer?, _ name: String) throws {
        guard let raw else { throw KCPError.invalidArgument(argument: name, reason: "is NULL") }
        let data = raw.load(as: UnsafePointer<UnsafeMutableRawPointer?>?.self)
        let sizes = raw.load(fromByteOffset: 8, as: UnsafePointer<Int64>?.self)
        let count = raw.load(fromByteOffset: 16, as: Int64.self)
        try require((0...Int64(UInt16.max)).contains(count), name, "has \(count) arrays")
        self.name = name
        self.pointers = count == 0 ? [] : Array(try Arguments.buffer(data, Int(count), name))
        self.sizes = count == 0 ? [] : try Arguments.buffer(sizes, Int(count), "\(name) sizes").map { Int($0) }
    }

    var count: Int { pointers.count }

    /// Fails unless there are `expected` arrays.
    func expect(_ expected: Int) throws {
        try require(count == expected, name, "has \(count) arrays, expected \(expected)")
    }

    private func pointer(_ i: Int, count expected: Int) throws -> UnsafeMutableRawPointer {
        try require(pointers.indices.contains(i), name, "has \(count) arrays, array \(i) is needed")
        try require(sizes[i] == expected, name, "array \(i) has \(sizes[i]) elements, expected \(expected)")
        guard let pointer = pointers[i] else {
            throw KCPError.invalidArgument(argument: name, reason: "array \(i) is NULL")
        }
        return pointer
    }

    /// Array `i`, to read `count` floats from.
    func floats(_ i: Int, count: Int) throws -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: try pointer(i, count: count).assumingMemoryBound(to: Float.self), count: count)
    }

    /// Copies each tensor into the array at its position (as many arrays as tensors, each the tensor's size).
    func store(_ tensors: [Tensor]) throws {
        try expect(tensors.count)
        let destinations = try tensors.enumerated().map { i, tensor in try pointer(i, count: tensor.count) }
        for (destination, tensor) in zip(destinations, tensors) {
            destination.assumingMemoryBound(to: Float.self).update(from: tensor.data, count: tensor.count)
        }
    }

    /// One tensor per shape, copied from the arrays (as many arrays as shapes, each the shape's size).
    func tensors(_ shapes: [[Int]]) throws -> [Tensor] {
        try expect(shapes.count)
        return try shapes.enumerated().map { i, shape in
            Tensor(shape: shape, data: Array(try floats(i, count: Checked.product(shape, "\(name) array \(i) size"))))
        }
    }
}

/// The network's inputs for batch size `batch`, copied from the caller's arrays.
func inputTensors(_ net: Network, _ inputs: UnsafeRawPointer?, _ batch: Int64, _ name: String = "inputs") throws
    -> [Tensor]
{
    try require(batch >= 1, "batch", "must be positive, got \(batch)")
    return try SizedArrays(inputs, name).tensors(net.inputs.map { [Int(batch)] + $0.shape.dropFirst() })
}
