/// A named, engine-owned parameter tensor. Nodes refer to parameters by
/// index, so two nodes may share one (a Siamese feature extractor).
public struct Parameter: Sendable {
    public var name: String
    public var tensor: Tensor
}

/// One operation: reads values (and parameters) and writes one value.
public struct Node: Sendable {
    public var name: String
    public var op: Op
    /// Value indices read, in order.
    public var inputs: [Int]
    /// Parameter indices, in the order `op` documents.
    public var parameters: [Int]
    /// The value index written.
    public var output: Int
}

/// A network: a DAG of nodes over values, with several inputs and outputs.
///
/// Nodes are kept in the order they were added, which is a topological
/// order: a node may only read graph inputs and earlier nodes' outputs.
public struct Network: Sendable {
    public private(set) var valueNames: [String] = []
    /// Graph input values and their shapes `[N, C, H, W]` (or `[N, F]`).
    public private(set) var inputs: [(value: Int, shape: [Int])] = []
    public private(set) var outputs: [Int] = []
    public internal(set) var nodes: [Node] = []
    public internal(set) var parameters: [Parameter] = []
    /// The shape of every value at the declared batch, kept as nodes are
    /// added (so building a network is linear in its size); `compacted`
    /// infers them again.
    public internal(set) var declaredShapes: [[Int]] = []
    /// Counts the changes of structure (values, nodes, parameters, outputs
    /// added or truncated), so that a caller's view of the structure can
    /// tell it is stale; parameter values changing leave it.
    public private(set) var revision = 0
    /// The index of each value name and parameter name (the latest of that
    /// name, should names repeat).
    private var valueIndex: [String: Int] = [:]
    private var parameterIndex: [String: Int] = [:]

    public init() {}

    /// The value called `name` (the latest, if several are), or nil.
    public func value(named name: String) -> Int? { valueIndex[name] }

    /// The parameter called `name` (the latest, if several are), or nil.
    public func parameter(named name: String) -> Int? { parameterIndex[name] }

    public var valueCount: Int { valueNames.count }

    /// Adds a graph input; returns its value index.
    public mutating func addInput(name: String, shape: [Int]) throws -> Int {
        try require(!shape.isEmpty && shape.allSatisfy { $0 > 0 }, "shape",
                    "input '\(name)' needs positive dimensions, got \(shape)")
        try require(fitsOneSample(shape), "shape",
                    "input '\(name)' \(shape) has more than \(maxSampleElements) elements per sample")
        let value = newValue(name)
        inputs.append((value, shape))
        declaredShapes.append(shape)
        return value
    }

    /// Adds a parameter; returns its index.
    public mutating func addParameter(name: String, tensor: Tensor) -> Int {
        parameters.append(Parameter(name: name, tensor: tensor))
        parameterIndex[name] = parameters.count - 1
        revision += 1
        return parameters.count - 1
    }

    /// Adds a node reading existing values and parameters; returns its output value.
    public mutating func addNode(name: String, op: Op, inputs: [Int], parameters: [Int] = []) throws -> Int {
        try require(inputs.allSatisfy { (0..<valueCount).contains($0) }, "inputs",
                    "node '\(name)' reads value indices \(inputs), only 0..<\(valueCount) exist")
        try require(parameters.allSatisfy { (0..<self.parameters.count).contains($0) }, "parameters",
                    "node '\(name)' uses parameter indices \(parameters), only 0..<\(self.parameters.count) exist")
        let signatures = op.signatures
        let takesInputs = { (signature: (inputs: Int, parameters: [Int])) in
            signature.inputs == 0 ? !inputs.isEmpty : inputs.count == signature.inputs
        }
        // Blame the parameters where only their count fits no signature.
        let blamesParameters = signatures.contains(where: takesInputs)
            && !signatures.contains { $0.parameters.contains(parameters.count) }
        try require(signatures.contains { takesInputs($0) && $0.parameters.contains(parameters.count) },
                    blamesParameters ? "parameters" : "inputs",
                    "node '\(name)' (\(op.name)) takes " + signatures.map { signature in
                        "\(signature.inputs == 0 ? "one or more" : "\(signature.inputs)") inputs and \(signature.parameters) parameters"
                    }.joined(separator: ", or ") + ", got \(inputs.count) and \(parameters.count)")
        let node = Node(name: name, op: op, inputs: inputs, parameters: parameters, output: valueCount)
        let shape = try outputShape(of: node, shapes: declaredShapes)
        nodes.append(node)
        declaredShapes.append(shape)
        return newValue(name)
    }

    /// Marks a value as a graph output.
    public mutating func addOutput(_ value: Int) throws {
        try require((0..<valueCount).contains(value), "value", "no value \(value)")
        outputs.append(value)
        revision += 1
    }

    /// Replaces a parameter's tensor, keeping its shape.
    public mutating func setParameter(_ index: Int, data: [Float]) throws {
        try require(parameters.indices.contains(index), "parameter", "no parameter \(index)")
        try require(data.count == parameters[index].tensor.count, "data",
                    "parameter '\(parameters[index].name)' has \(parameters[index].tensor.count) elements, got \(data.count)")
        parameters[index].tensor.data = data
    }

    /// Removes what was added after the network had `values` values,
    /// `parameters` parameters and `outputs` outputs (an interrupted build
    /// step undone); what stays must not use what goes.
    public mutating func truncate(values: Int, parameters: Int, outputs: Int) throws {
        try require((0...valueCount).contains(values) && (0...self.parameters.count).contains(parameters)
                    && (0...self.outputs.count).contains(outputs), "counts",
                    "\(values) values, \(parameters) parameters, \(outputs) outputs: the network has "
                    + "\(valueCount), \(self.parameters.count), \(self.outputs.count)")
        let staying = nodes.filter { $0.output < values }
        try require(staying.allSatisfy { $0.parameters.allSatisfy { $0 < parameters } }
                    && self.outputs.prefix(outputs).allSatisfy { $0 < values }, "counts",
                    "what stays uses what would be removed")
        nodes = staying
        inputs.removeAll { $0.value >= values }
        self.outputs.removeLast(self.outputs.count - outputs)
        self.parameters.removeLast(self.parameters.count - parameters)
        valueNames.removeLast(valueCount - values)
        declaredShapes.removeLast(declaredShapes.count - values)
        valueIndex = Dictionary(valueNames.enumerated().map { ($1, $0) }) { _, later in later }
        parameterIndex = Dictionary(self.parameters.enumerated().map { ($1.name, $0) }) { _, later in later }
        revision += 1
    }

    private mutating func newValue(_ name: String) -> Int {
        valueNames.append(name)
        valueIndex[name] = valueNames.count - 1
        revision += 1
        return valueNames.count - 1
    }
}

extension Op {
    /// The accepted numbers of inputs (0: one or more) and parameters.
    var signatures: [(inputs: Int, parameters: [Int])] {
        switch self {
        case .conv2d, .convTranspose2d, .conv3d, .convTranspose3d, .linear: return [(1, [1, 2])]
        case .batchNorm: return [(1, [4])]
        case .normalization: return [(1, [3])]
        case .activation, .maxPool, .avgPool, .maxPool3d, .avgPool3d, .adaptivePool, .globalAvgPool, .flatten, .resize,
             .resize3d, .softmax, .softArgmin,
             .identity, .channelShuffle, .channelChunk:
            return [(1, [0])]
        case .binary: return [(2, [0]), (1, [1])]
        case .correlation, .costVolume: return [(2, [0])]
        case .concat, .channelwise: return [(0, [0])]
        }
    }

    /// The groups of a conv or transposed conv, 2-D or 3-D; nil for other ops.
    public var convolutionGroups: Int? {
        switch self {
        case let .conv2d(c): return c.groups
        case let .convTranspose2d(t): return t.groups
        case let .conv3d(c): return c.groups
        case let .convTranspose3d(t): return t.groups
        default: return nil
        }
    }

    /// Whether it is a transposed conv (weight `[I, O/g, k...]`), 2-D or 3-D.
    public var isTransposedConvolution: Bool {
        switch self {
        case .convTranspose2d, .convTranspose3d: return true
        default: return false
        }
    }

    /// Whether the engine can run it (every op but `channelwise`).
    public var hasKernel: Bool {
        if case .channelwise = self { return false }
        return true
    }

    /// A short name for messages and reports: the kind's, or for an
    /// activation or binary op the function's (`relu`, `add`).
    public var name: String {
        switch self {
        case let .activation(a): return "\(a.kind)"
        case let .binary(b): return "\(b.kind)"
        default: return kind.rawValue
        }
    }

    /// The op's family without its settings.
    public var kind: Kind {
        switch self {
        case .conv2d: return .conv2d
        case .convTranspose2d: return .convTranspose2d
        case .conv3d: return .conv3d
        case .convTranspose3d: return .convTranspose3d
        case .batchNorm: return .batchNorm
        case .normalization: return .normalization
        case .activation: return .activation
        case .binary: return .binary
        case .concat: return .concat
        case .maxPool: return .maxPool
        case .avgPool: return .avgPool
        case .adaptivePool: return .adaptivePool
        case .globalAvgPool: return .globalAvgPool
        case .flatten: return .flatten
        case .linear: return .linear
        case .resize: return .resize
        case .resize3d: return .resize3d
        case .maxPool3d: return .maxPool3d
        case .avgPool3d: return .avgPool3d
        case .correlation: return .correlation
        case .costVolume: return .costVolume
        case .softmax: return .softmax
        case .softArgmin: return .softArgmin
        case .identity: return .identity
        case .channelShuffle: return .channelShuffle
        case .channelChunk: return .channelChunk
        case .channelwise: return .channelwise
        }
    }
}
