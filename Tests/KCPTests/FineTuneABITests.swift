import Glibc
import Testing
import KCPC

/// `kcp_finetune_create` through raw C structs, as a C caller lays them out.
@Suite("C ABI: fine-tuning structs")
struct FineTuneABITests {
    /// The field names of `kcp_finetune_settings` in include/kcp.h, in order.
    static func headerFields() throws -> [String] {
        var path = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(3).joined(separator: "/")
        path += "/Sources/KCPC/include/kcp.h"
        guard let file = fopen(path, "r") else { throw HeaderError.missing(path) }
        defer { fclose(file) }
        var text = "", line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, 4096, file) != nil { text += String(cString: line) }
        let body = text.components(after: "typedef struct {\n    int64_t version, size;", before: "} kcp_finetune_settings;")
        let declarations = ("int64_t version, size;" + body).split(separator: ";").map { $0.split(separator: "\n")
            .map { $0.split(separator: "/")[0] }.joined(separator: " ") }
        return declarations.flatMap { declaration -> [String] in
            let words = declaration.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            return words.first.map { ["int64_t", "uint64_t", "double"].contains($0) } == true ? Array(words.dropFirst()) : []
        }
    }

    enum HeaderError: Error { case missing(String) }

    /// A linear classifier [N, 4] -> [N, 3].
    static func network() -> OpaquePointer? {
        var network: OpaquePointer?, x: Int64 = 0, w: Int64 = 0, y: Int64 = 0
        _ = kcp_network_create(&network)
        _ = kcp_network_add_input(network, "x", [1, 4], 2, &x)
        _ = kcp_network_add_parameter(network, "w", [Float](repeating: 0.1, count: 12), [3, 4], 2, &w)
        _ = kcp_network_add_node(network, "fc", 10, [], 0, [x], 1, [w], 1, &y)
        _ = kcp_network_add_output(network, y)
        return network
    }

    /// Settings as `kcp_finetune_settings` words: SGD, one epoch, no pruning; `change` edits them by field name.
    static func settings(_ fields: [String], _ change: (inout [String: UInt64]) -> Void = { _ in }) -> [UInt64] {
        var values: [String: UInt64] = ["version": 1, "size": UInt64(8 * fields.count), "epochs": 1, "batch_size": 2,
                                        "ignore_label": UInt64(bitPattern: -1), "learning_rate": 0.1.bitPattern,
                                        "step_every": 1, "prune_round_to": 1, "prune_every": 1]
        change(&values)
        return fields.map { values[$0] ?? 0 }
    }

    /// Calls kcp_finetune_create with `samples` training and validation samples of the classifier.
    static func create(settings: [UInt64], inputSize: Int64 = 16, valTargetShape: [Int64] = [4]) -> Int32 {
        let network = network()
        defer { kcp_network_destroy(network) }
        let inputs: [Float] = (0..<16).map(Float.init), targets: [Float] = [0, 1, 2, 1]
        return inputs.withUnsafeBufferPointer { x in
            targets.withUnsafeBufferPointer { t in
                var data: [UnsafeRawPointer?] = [UnsafeRawPointer(x.baseAddress)], sizes: [Int64] = [inputSize]
                return data.withUnsafeMutableBufferPointer { d in
                    sizes.withUnsafeMutableBufferPointer { s in
                        // kcp_arrays {data, sizes, count}; kcp_samples {inputs, target_shape, target_ndim, targets, mask}
                        var arrays: [UInt64] = [UInt64(UInt(bitPattern: d.baseAddress)), UInt64(UInt(bitPattern: s.baseAddress)), 1]
                        return arrays.withUnsafeMutableBufferPointer { a in
                            var trainShape: [Int64] = [4], valShape = valTargetShape
                            return trainShape.withUnsafeMutableBufferPointer { ts in
                                valShape.withUnsafeMutableBufferPointer { vs in
                                    func samples(_ shape: UnsafeMutableBufferPointer<Int64>) -> [UInt64] {
                                        [UInt64(UInt(bitPattern: a.baseAddress)), UInt64(UInt(bitPattern: shape.baseAddress)),
                                         UInt64(shape.count), UInt64(UInt(bitPattern: t.baseAddress)), 0]
                                    }
                                    var train = samples(ts), val = samples(vs), words = settings, tuner: OpaquePointer?
                                    let status = kcp_finetune_create(network, &words, &train, &val, &tuner)
                                    kcp_finetune_destroy(tuner)
                                    return status
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test("the header's settings struct is what the engine reads, and its version and size are checked")
    func settingsStruct() throws {
        let fields = try Self.headerFields()
        #expect(fields.count == 32 && fields.first == "version" && fields.last == "shift", "\(fields)")
        #expect(Self.create(settings: Self.settings(fields)) == 0, "\(lastError())")
        expectInvalid("settings", Self.create(settings: Self.settings(fields) { $0["version"] = 2 }))
        expectInvalid("settings", Self.create(settings: Self.settings(fields) { $0["size"] = 8 * 30 }))
        expectInvalid("ignore_label", Self.create(settings: Self.settings(fields) { $0["task"] = 1; $0["ignore_label"] = 1 << 40 }))
    }

    @Test("arrays with the wrong size and validation targets of the wrong shape are refused before they are read")
    func sizes() throws {
        let fields = try Self.headerFields()
        expectInvalid("train", Self.create(settings: Self.settings(fields), inputSize: 12))
        expectInvalid("val targets", Self.create(settings: Self.settings(fields), valTargetShape: [4, 1]))
    }
}

private extension String {
    /// The text between the first `start` and the next `end` ("" if either is missing).
    func components(after start: String, before end: String) -> String {
        guard let from = firstRange(of: start), let to = self[from.upperBound...].firstRange(of: end) else { return "" }
        return String(self[from.upperBound..<to.lowerBound])
    }
}
