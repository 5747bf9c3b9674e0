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
        let handle = try NetworkHandle.from(network)
        let index = try handle.network.addInput(name: Arguments.string(name, "name"), shape: Arguments.shape(shape, ndim))
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
        let index = handle.network.addParameter(name: try Arguments.string(name, "name"),
                                                tensor: Tensor(shape: dims, data: Array(values)))
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
        // addNode infers the new node's shape before it changes anything.
        let index = try handle.network.addNode(name: Arguments.string(name, "name"), op: Arguments.op(op, attributeList),
                                               inputs: Arguments.indices(inputs, inputCount, "inputs"),
                                               parameters: Arguments.indices(parameters, parameterCount, "parameters"))
        try Arguments.output(value, "value").pointee = Int64(index)
    }
}

@_cdecl("kcp_network_add_output")
public func kcp_network_add_output(_ network: OpaquePointer?, _ value: Int64) -> Int32 {
    boundary { try NetworkHandle.from(network).network.addOutput(Int(value)) }
}

@_cdecl("kcp_network_value_shape")
public func kcp_network_value_shape(_ network: OpaquePointer?, _ value: Int64, _ batch: Int64,
                                    _ shape: UnsafeMutablePointer<Int64>?, _ ndim: UnsafeMutablePointer<Int32>?) -> Int32
{
    boundary {
        let handle = try NetworkHandle.from(network)
        let shapes = handle.network.shapes(batch: batch > 0 ? Int(batch) : nil)
        try require(shapes.indices.contains(Int(value)), "value", "no value \(value)")
        let found = shapes[Int(value)]
        try Arguments.output(shape, "shape").store(found) { Int64($0) }
        try Arguments.output(ndim, "ndim").pointee = Int32(found.count)
    }
}

@_cdecl("kcp_network_parameter_shape")
public func kcp_network_parameter_shape(_ network: OpaquePointer?, _ parameter: Int64,
                                        _ shape: UnsafeMutablePointer<Int64>?, _ ndim: UnsafeMutablePointer<Int32>?) -> Int32
{
    boundary {
        let handle = try NetworkHandle.from(network)
        try require(handle.network.parameters.indices.contains(Int(parameter)), "parameter", "no parameter \(parameter)")
        let found = handle.network.parameters[Int(parameter)].tensor.shape
        try Arguments.output(shape, "shape").store(found) { Int64($0) }
        try Arguments.output(ndim, "ndim").pointee = Int32(found.count)
    }
}

@_cdecl("kcp_network_parameter_read")
public func kcp_network_parameter_read(_ network: OpaquePointer?, _ parameter: Int64,
                                       _ out: UnsafeMutablePointer<Float>?, _ count: Int64) -> Int32
{
    boundary {
        let handle = try NetworkHandle.from(network)
        try require(handle.network.parameters.indices.contains(Int(parameter)), "parameter", "no parameter \(parameter)")
        let data = handle.network.parameters[Int(parameter)].tensor.data
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
        try handle.network.setParameter(Int(parameter), data: Array(values))
    }
}

@_cdecl("kcp_network_forward")
public func kcp_network_forward(_ network: OpaquePointer?, _ inputs: UnsafePointer<UnsafePointer<Float>?>?,
                                _ batch: Int64, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>?>?,
                                _ nodeSeconds: UnsafeMutablePointer<Double>?) -> Int32
{
    boundary {
        let net = try NetworkHandle.from(network).network
        let results = try net.forward(try inputTensors(net, inputs, batch), nodeSeconds: nodeSeconds)
        try store(results, outputs, "outputs")
    }
}

@_cdecl("kcp_network_gradients")
public func kcp_network_gradients(_ network: OpaquePointer?, _ inputs: UnsafePointer<UnsafePointer<Float>?>?,
                                  _ batch: Int64, _ training: Int32,
                                  _ outputGradients: UnsafePointer<UnsafePointer<Float>?>?,
                                  _ outputs: UnsafePointer<UnsafeMutablePointer<Float>?>?,
                                  _ parameterGradients: UnsafePointer<UnsafeMutablePointer<Float>?>?) -> Int32
{
    boundary {
        let net = try NetworkHandle.from(network).network
        let pass = try net.trainingForward(try inputTensors(net, inputs, batch), training: training != 0)
        let results = pass.outputs(of: net)
        let gradientPointers = try Arguments.buffer(outputGradients, results.count, "output_gradients")
        let seeds = try results.enumerated().map { position, result in
            Tensor(shape: result.shape,
                   data: Array(try Arguments.buffer(gradientPointers[position], result.count, "output_gradients")))
        }
        try store(results, outputs, "outputs")
        try store(try net.backward(pass, outputGradients: seeds), parameterGradients, "parameter_gradients")
    }
}

/// The network's inputs for batch size `batch`, copied from the caller's arrays.
func inputTensors(_ net: Network, _ inputs: UnsafePointer<UnsafePointer<Float>?>?, _ batch: Int64) throws
    -> [Tensor]
{
    try require(batch >= 1, "batch", "must be positive, got \(batch)")
    let shapes = try net.inferShapes(batch: Int(batch))
    let pointers = try Arguments.buffer(inputs, net.inputs.count, "inputs")
    return try net.inputs.enumerated().map { position, input in
        let shape = shapes[input.value]
        return Tensor(shape: shape, data: Array(try Arguments.buffer(pointers[position], shape.reduce(1, *), "inputs")))
    }
}

/// Copies each tensor to the caller's array at the same position.
private func store(_ tensors: [Tensor], _ destinations: UnsafePointer<UnsafeMutablePointer<Float>?>?, _ name: String)
    throws
{
    let pointers = try Arguments.buffer(destinations, tensors.count, name)
    for (position, tensor) in tensors.enumerated() {
        guard let destination = pointers[position] else {
            throw KCPError.invalidArgument(argument: name, reason: "entry \(position) is NULL")
        }
        destination.update(from: tensor.data, count: tensor.count)
    }
}

@_cdecl("kcp_network_cost")
public func kcp_network_cost(_ network: OpaquePointer?, _ nodeMACs: UnsafeMutablePointer<Int64>?,
                             _ total: UnsafeMutablePointer<Int64>?) -> Int32
{
    boundary {
        let net = try NetworkHandle.from(network).network
        let cost = try net.cost()
        if let nodeMACs { nodeMACs.store(net.nodeMACs(shapes: net.declaredShapes)) { Int64($0) } }
        try Arguments.output(total, "total").store([cost.macs, cost.parameters]) { Int64($0) }
    }
}

@_cdecl("kcp_network_node_op")
public func kcp_network_node_op(_ network: OpaquePointer?, _ node: Int64, _ op: UnsafeMutablePointer<Int32>?,
                                _ attributes: UnsafeMutablePointer<Double>?, _ count: UnsafeMutablePointer<Int32>?) -> Int32
{
    boundary {
        let nodes = try NetworkHandle.from(network).network.nodes
        try require(nodes.indices.contains(Int(node)), "node", "no node \(node)")
        let (code, values) = Arguments.encode(nodes[Int(node)].op)
        try Arguments.output(op, "op").pointee = code
        try Arguments.output(attributes, "attributes").store(values) { $0 }
        try Arguments.output(count, "count").pointee = Int32(values.count)
    }
}
