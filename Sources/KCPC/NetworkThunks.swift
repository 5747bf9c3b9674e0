import KCP

// The network part of include/kcp.h.

@_cdecl("kcp_network_create")
public func kcp_network_create(_ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    boundary { try Arguments.output(out, "network").pointee = NetworkHandle.retained(Network()) }
}

@_cdecl("kcp_network_destroy")
public func kcp_network_destroy(_ network: OpaquePointer?) {
    guard let network else { return }
    Unmanaged<NetworkHandle>.fromOpaque(UnsafeRawPointer(network)).release()
}

@_cdecl("kcp_network_add_input")
public func kcp_network_add_input(_ network: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                  _ shape: UnsafePointer<Int64>?, _ ndim: Int32,
                                  _ value: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let name = try Arguments.string(name, "name"), dims = try Arguments.shape(shape, ndim)
        let index = try NetworkHandle.from(network).change { try $0.addInput(name: name, shape: dims) }
        try Arguments.output(value, "value").pointee = Int64(index)
    }
}

@_cdecl("kcp_network_add_parameter")
public func kcp_network_add_parameter(_ network: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                      _ data: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ ndim: Int32,
                                      _ parameter: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let handle = try NetworkHandle.from(network)
        let dims = try Arguments.shape(shape, ndim)
        let slice = try SliceShape(dims)
        let values = try Arguments.buffer(data, slice.count, "data")
        try require(values.allSatisfy(\.isFinite), "data", "parameter values must be finite")
        let tensor = Tensor(shape: dims, data: Array(values)), name = try Arguments.string(name, "name")
        let index = handle.change { $0.addParameter(name: name, tensor: tensor) }
        try Arguments.output(parameter, "parameter").pointee = Int64(index)
    }
}

@_cdecl("kcp_network_add_node")
public func kcp_network_add_node(_ network: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ op: Int32,
                                 _ attributes: UnsafePointer<Double>?, _ attributeCount: Int32,
                                 _ inputs: UnsafePointer<Int64>?, _ inputCount: Int32,
                                 _ parameters: UnsafePointer<Int64>?, _ parameterCount: Int32,
                                 _ value: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let handle = try NetworkHandle.from(network)
        let attributeList = attributeCount == 0 ? [] : Array(try Arguments.buffer(attributes, Int(max(attributeCount, 0)), "attributes"))
        let name = try Arguments.string(name, "name"), op = try Arguments.op(op, attributeList)
        let inputs = try Arguments.indices(inputs, inputCount, "inputs")
        let parameters = try Arguments.indices(parameters, parameterCount, "parameters")
        // addNode infers the new node's shape before it changes anything.
        let index = try handle.change { try $0.addNode(name: name, op: op, inputs: inputs, parameters: parameters) }
        try Arguments.output(value, "value").pointee = Int64(index)
    }
}

@_cdecl("kcp_network_add_output")
public func kcp_network_add_output(_ network: OpaquePointer?, _ value: Int64) -> Int32 {
    boundary { try NetworkHandle.from(network).change { try $0.addOutput(Int(value)) } }
}

@_cdecl("kcp_network_truncate")
public func kcp_network_truncate(_ network: OpaquePointer?, _ values: Int64, _ parameters: Int64, _ outputs: Int64) -> Int32 {
    boundary {
        try NetworkHandle.from(network).change {
            try $0.truncate(values: Int(values), parameters: Int(parameters), outputs: Int(outputs))
        }
    }
}

@_cdecl("kcp_network_value_shape")
public func kcp_network_value_shape(_ network: OpaquePointer?, _ value: Int64, _ batch: Int64,
                                    _ shape: UnsafeMutablePointer<Int64>?, _ ndim: UnsafeMutablePointer<Int32>?) -> Int32
{
    boundary {
        let shapes = try NetworkHandle.network(network).declaredShapes
        try require(shapes.indices.contains(Int(value)), "value", "no value \(value)")
        var found = shapes[Int(value)]
        if batch > 0 { found[0] = Int(batch) }
        try Arguments.output(shape, "shape").store(found) { Int64($0) }
        try Arguments.output(ndim, "ndim").pointee = Int32(found.count)
    }
}

@_cdecl("kcp_network_parameter_shape")
public func kcp_network_parameter_shape(_ network: OpaquePointer?, _ parameter: Int64,
                                        _ shape: UnsafeMutablePointer<Int64>?, _ ndim: UnsafeMutablePointer<Int32>?) -> Int32
{
    boundary {
        let parameters = try NetworkHandle.network(network).parameters
        try require(parameters.indices.contains(Int(parameter)), "parameter", "no parameter \(parameter)")
        let found = parameters[Int(parameter)].tensor.shape
        try Arguments.output(shape, "shape").store(found) { Int64($0) }
        try Arguments.output(ndim, "ndim").pointee = Int32(found.count)
    }
}

@_cdecl("kcp_network_parameter_read")
public func kcp_network_parameter_read(_ network: OpaquePointer?, _ parameter: Int64,
                                       _ out: UnsafeMutablePointer<Float>?, _ count: Int64) -> Int32
{
    boundary {
        let parameters = try NetworkHandle.network(network).parameters
        try require(parameters.indices.contains(Int(parameter)), "parameter", "no parameter \(parameter)")
        let data = parameters[Int(parameter)].tensor.data
        try require(Int(count) == data.count, "out", "has \(count) elements, the parameter \(data.count)")
        try Arguments.output(out, "out").update(from: data, count: data.count)
    }
}

@_cdecl("kcp_network_parameter_write")
public func kcp_network_parameter_write(_ network: OpaquePointer?, _ parameter: Int64,
                                        _ data: UnsafePointer<Float>?, _ count: Int64) -> Int32
{
    boundary {
        let handle = try NetworkHandle.from(network)
        let values = try Arguments.buffer(data, Int(max(count, 0)), "data")
        try require(values.allSatisfy(\.isFinite), "data", "parameter values must be finite")
        let data = Array(values)
        try handle.change { try $0.setParameter(Int(parameter), data: data) }
    }
}

@_cdecl("kcp_network_forward")
public func kcp_network_forward(_ network: OpaquePointer?, _ inputs: UnsafeRawPointer?, _ batch: Int64,
                                _ outputs: UnsafeRawPointer?, _ nodeSeconds: UnsafeMutablePointer<Double>?,
                                _ nodeCount: Int64) -> Int32
{
    boundary {
        let net = try NetworkHandle.network(network)
        let destinations = try SizedArrays(outputs, "outputs")
        try destinations.expect(net.outputs.count)
        try require(nodeSeconds == nil || nodeCount == Int64(net.nodes.count), "node_seconds",
                    "has \(nodeCount) entries, the network \(net.nodes.count) nodes")
        try destinations.store(try net.forward(try inputTensors(net, inputs, batch), nodeSeconds: nodeSeconds))
    }
}

@_cdecl("kcp_network_gradients")
public func kcp_network_gradients(_ network: OpaquePointer?, _ inputs: UnsafeRawPointer?, _ batch: Int64,
                                  _ training: Int32, _ outputGradients: UnsafeRawPointer?, _ outputs: UnsafeRawPointer?,
                                  _ parameterGradients: UnsafeRawPointer?) -> Int32
{
    boundary {
        let net = try NetworkHandle.network(network)
        let outputArrays = try SizedArrays(outputs, "outputs"), gradientArrays = try SizedArrays(parameterGradients, "parameter_gradients")
        try outputArrays.expect(net.outputs.count)
        try gradientArrays.expect(net.parameters.count)
        let pass = try net.trainingForward(try inputTensors(net, inputs, batch), training: training != 0)
        let results = pass.outputs(of: net)
        let seeds = try SizedArrays(outputGradients, "output_gradients").tensors(results.map(\.shape))
        try outputArrays.store(results)
        try gradientArrays.store(try net.backward(pass, outputGradients: seeds))
    }
}

@_cdecl("kcp_network_cost")
public func kcp_network_cost(_ network: OpaquePointer?, _ nodeMACs: UnsafeMutablePointer<Int64>?, _ nodeCount: Int64,
                             _ total: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let net = try NetworkHandle.network(network)
        let cost = try net.cost(), totals = try Arguments.output(total, "total")
        if let nodeMACs {
            try require(nodeCount == Int64(net.nodes.count), "node_macs", "has \(nodeCount) entries, the network \(net.nodes.count) nodes")
            nodeMACs.store(try net.nodeMACs(shapes: net.declaredShapes)) { Int64($0) }
        }
        totals.store([cost.macs, cost.parameters]) { Int64($0) }
    }
}

@_cdecl("kcp_network_node_op")
public func kcp_network_node_op(_ network: OpaquePointer?, _ node: Int64, _ op: UnsafeMutablePointer<Int32>?,
                                _ attributes: UnsafeMutablePointer<Double>?, _ capacity: Int32,
                                _ count: UnsafeMutablePointer<Int32>?) -> Int32
{
    boundary {
        let nodes = try NetworkHandle.network(network).nodes
        try require(nodes.indices.contains(Int(node)), "node", "no node \(node)")
        let (code, values) = Arguments.encode(nodes[Int(node)].op)
        try require(values.count <= Int(capacity), "attributes",
                    "has room for \(capacity) entries, node '\(nodes[Int(node)].name)' has \(values.count)")
        try Arguments.output(op, "op").pointee = code
        try Arguments.output(attributes, "attributes").store(values) { $0 }
        try Arguments.output(count, "count").pointee = Int32(values.count)
    }
}

@_cdecl("kcp_network_counts")
public func kcp_network_counts(_ network: OpaquePointer?, _ counts: UnsafeMutablePointer<Int64>?, _ count: Int64) -> Int32 {
    boundary {
        let net = try NetworkHandle.network(network)
        let found = [net.valueCount, net.nodes.count, net.parameters.count, net.inputs.count, net.outputs.count,
                     net.revision]
        try require(count == Int64(found.count), "counts", "has \(count) entries, KCP_NETWORK_COUNTS is \(found.count)")
        try Arguments.output(counts, "counts").store(found) { Int64($0) }
    }
}

@_cdecl("kcp_network_names")
public func kcp_network_names(_ network: OpaquePointer?, _ kind: Int32, _ buffer: UnsafeMutablePointer<CChar>?,
                              _ capacity: Int64, _ length: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let net = try NetworkHandle.network(network)
        let names = try Arguments.nameKind(kind) == .value ? net.valueNames : net.parameters.map(\.name)
        try Arguments.text(names.map { $0 + "\0" }.joined(), buffer, capacity, length)
    }
}

@_cdecl("kcp_network_find")
public func kcp_network_find(_ network: OpaquePointer?, _ kind: Int32, _ name: UnsafePointer<CChar>?,
                             _ index: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let net = try NetworkHandle.network(network), name = try Arguments.string(name, "name")
        let found = try Arguments.nameKind(kind) == .value ? net.value(named: name) : net.parameter(named: name)
        try Arguments.output(index, "index").pointee = Int64(found ?? -1)
    }
}

@_cdecl("kcp_network_node_edges")
public func kcp_network_node_edges(_ network: OpaquePointer?, _ node: Int64, _ output: UnsafeMutablePointer<Int64>?,
                                   _ inputs: UnsafeMutablePointer<Int64>?, _ inputCapacity: Int64,
                                   _ inputCount: UnsafeMutablePointer<Int64>?,
                                   _ parameters: UnsafeMutablePointer<Int64>?, _ parameterCapacity: Int64,
                                   _ parameterCount: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let nodes = try NetworkHandle.network(network).nodes
        try require(nodes.indices.contains(Int(node)), "node", "no node \(node)")
        let found = nodes[Int(node)]
        try require(Int64(found.inputs.count) <= inputCapacity, "inputs",
                    "has room for \(inputCapacity) entries, node '\(found.name)' reads \(found.inputs.count) values")
        try require(Int64(found.parameters.count) <= parameterCapacity, "parameters",
                    "has room for \(parameterCapacity) entries, node '\(found.name)' uses \(found.parameters.count)")
        try Arguments.output(output, "output").pointee = Int64(found.output)
        try Arguments.output(inputCount, "input_count").pointee = Int64(found.inputs.count)
        try Arguments.output(parameterCount, "parameter_count").pointee = Int64(found.parameters.count)
        if !found.inputs.isEmpty { try Arguments.output(inputs, "inputs").store(found.inputs) { Int64($0) } }
        if !found.parameters.isEmpty { try Arguments.output(parameters, "parameters").store(found.parameters) { Int64($0) } }
    }
}

@_cdecl("kcp_network_ports")
public func kcp_network_ports(_ network: OpaquePointer?, _ inputs: UnsafeMutablePointer<Int64>?, _ inputCount: Int64,
                              _ outputs: UnsafeMutablePointer<Int64>?, _ outputCount: Int64) -> Int32
{
    boundary {
        let net = try NetworkHandle.network(network)
        try require(inputCount == Int64(net.inputs.count), "inputs",
                    "has \(inputCount) entries, the network \(net.inputs.count) inputs (it changed since it was counted)")
        try require(outputCount == Int64(net.outputs.count), "outputs",
                    "has \(outputCount) entries, the network \(net.outputs.count) outputs (it changed since it was counted)")
        if inputCount > 0 { try Arguments.output(inputs, "inputs").store(net.inputs) { Int64($0.value) } }
        if outputCount > 0 { try Arguments.output(outputs, "outputs").store(net.outputs) { Int64($0) } }
    }
}
