/// A little-endian byte format for checkpoints: fixed-width integers and
/// floats, and arrays as a count followed by their elements.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    mutating func write(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    mutating func write(_ value: Int) { write(UInt64(bitPattern: Int64(value))) }
    mutating func write(_ value: Double) { write(value.bitPattern) }

    mutating func write(_ values: [Float]) {
        write(values.count)
        for value in values {
            let bits = value.bitPattern
            for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift))) }
        }
    }

    mutating func write(_ values: [Bool]) {
        write(values.count)
        bytes += values.map { $0 ? 1 : 0 }
    }
}

/// Reads what `ByteWriter` wrote; every read checks the bounds and throws
/// `invalidArgument(argument: "checkpoint")` on a truncated or corrupt input.
struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { offset == bytes.count }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        try require(count >= 0 && count <= bytes.count - offset, "checkpoint", "is truncated or corrupt")
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    mutating func uint64() throws -> UInt64 {
        try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func int() throws -> Int { Int(Int64(bitPattern: try uint64())) }

    /// A count of items that take at least `itemBytes` bytes each, checked
    /// against the bytes left before anything is allocated from it.
    mutating func count(itemBytes: Int) throws -> Int {
        let count = try int()
        try require(count >= 0 && count <= (bytes.count - offset) / itemBytes, "checkpoint", "is truncated or corrupt")
        return count
    }
    mutating func double() throws -> Double { Double(bitPattern: try uint64()) }

    mutating func floats() throws -> [Float] {
        let count = try self.count(itemBytes: 4)
        let raw = try take(4 * count)
        return (0..<count).map { i in
            let base = raw.startIndex + 4 * i
            let bits = (0..<4).reduce(UInt32(0)) { $0 | UInt32(raw[base + $1]) << UInt32(8 * $1) }
            return Float(bitPattern: bits)
        }
    }

    mutating func bools() throws -> [Bool] {
        try take(try count(itemBytes: 1)).map { $0 != 0 }
    }
}
