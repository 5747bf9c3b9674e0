"""ONNX out: :func:`export` (``Network.to_onnx``) writes a network as an ONNX
model that onnxruntime runs; the stereo ops become ``ai.kcp`` functions (see
:mod:`kcp.onnx.format`).
"""

import os

import numpy as np

from .. import _arguments
from .format import BATCH, DOMAIN, fresh_name, onnx_module

_SIMPLE = {"relu": "Relu", "sigmoid": "Sigmoid", "add": "Add", "mul": "Mul", "global_avg_pool": "GlobalAveragePool",
           "identity": "Identity"}


def export(net, path=None, *, opset=17):
    """``net`` as an ONNX ``ModelProto`` at ``opset`` (13 or later), written to ``path`` if given.

    Initializers are the network's parameters (shared ones once), nodes and
    tensors keep the layer and value names, and the batch dimension of every
    input and output is the symbolic ``"batch"``.
    """
    onnx = onnx_module()
    helper = onnx.helper
    opset = _arguments.integer(opset, "opset", 13, onnx.defs.onnx_opset_version())
    if not net.outputs:
        raise ValueError("network: has no outputs to export")
    taken = {v.name for v in net._all_values()}
    initializers, renamed = [], {}
    for name, array in net.parameters.items():
        renamed[name] = fresh_name(name, taken)
        initializers.append(onnx.numpy_helper.from_array(np.asarray(array, np.float32), renamed[name]))
    nodes, functions = [], {}
    for layer in net.layers:
        nodes += _export_layer(helper, layer, [renamed[p] for p in layer.parameters], taken, functions)
    input_names = {v.name for v in net.inputs}
    outputs = []
    for value in net.outputs:
        name = value.name
        if name in input_names or name in {o.name for o in outputs}:
            name = fresh_name(f"{value.name}.output", taken)
            nodes.append(helper.make_node("Identity", [value.name], [name], name=name))
        outputs.append(_value_info(helper, name, value.shape))
    graph = helper.make_graph(nodes, "kcp", [_value_info(helper, v.name, v.shape) for v in net.inputs], outputs,
                              initializers)
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(DOMAIN, 1)] * bool(functions)
    model = helper.make_model(graph, opset_imports=opsets, producer_name="kcp",
                              functions=[build(helper, opset) for build in functions.values()])
    model.ir_version = max(8, helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True))
    if path is not None:
        onnx.save_model(model, os.fspath(path))
    return model


def _value_info(helper, name, shape):
    return helper.make_tensor_value_info(name, 1, [BATCH, *shape[1:]])  # 1: FLOAT


def _export_layer(helper, layer, parameters, taken, functions):
    """The ONNX nodes computing ``layer`` (most layers: one)."""
    a, op, x = layer.attributes, layer.op, list(layer.inputs)
    i = [int(v) for v in a]

    def node(op_type, inputs, domain=None, **attributes):
        return helper.make_node(op_type, inputs, [layer.name], name=layer.name, domain=domain, **attributes)

    if op in _SIMPLE:
        return [node(_SIMPLE[op], x)]
    if op == "conv2d":
        return [node("Conv", x + parameters, strides=i[0:2], pads=i[2:6], dilations=i[6:8], group=i[8])]
    if op == "batchnorm":
        return [node("BatchNormalization", x + parameters, epsilon=float(a[0]))]
    if op == "leaky_relu":
        return [node("LeakyRelu", x, alpha=float(a[0]))]
    if op == "concat":
        return [node("Concat", x, axis=1)]
    if op in ("max_pool", "avg_pool"):
        extra = {"count_include_pad": i[8]} if op == "avg_pool" else {}
        return [node("MaxPool" if op == "max_pool" else "AveragePool", x, kernel_shape=i[0:2], strides=i[2:4],
                     pads=i[4:8], **extra)]
    if op in ("flatten", "softmax"):
        return [node(op.capitalize(), x, axis=1)]
    if op == "linear":
        return [node("Gemm", x + parameters, transB=1)]
    if op == "upsample":
        scales = fresh_name(f"{layer.name}.scales", taken)
        modes = ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
                 {"mode": "linear", "coordinate_transformation_mode": "half_pixel"})[i[1]]
        return [helper.make_node("Constant", [], [scales], name=scales,
                                 value=helper.make_tensor(scales, 1, [4], [1, 1, i[0], i[0]])),
                node("Resize", [x[0], "", scales], **modes)]
    if op == "correlation":
        functions["Correlation"] = _correlation_function
        return [node("Correlation", x, DOMAIN, max_disparity=i[0], scale=float(a[1]))]
    if op == "soft_argmin":
        functions["SoftArgmin"] = _soft_argmin_function
        return [node("SoftArgmin", x, DOMAIN)]
    raise ValueError(f"network: layer '{layer.name}' has op {op!r}, which has no ONNX form")


def _constant(helper, output, **value):
    """A Constant node; ``ref=(kind, attribute)`` reads a function attribute instead."""
    ref = value.pop("ref", None)
    node = helper.make_node("Constant", [], [output], **value)
    if ref:
        kind, attribute = ref
        node.attribute.append(helper.make_attribute_ref(f"value_{kind}", {"int": 2, "float": 1}[kind],
                                                        ref_attr_name=attribute))
    return node


def _correlation_function(helper, opset):
    """Gathers ``right[..., w - d]`` for every ``(d, w)`` at once ([N, C, H, D, W]),
    multiplies by ``left``, sums over channels, zeroes ``w < d``, scales."""
    n = helper.make_node
    body = [
        _constant(helper, "D", ref=("int", "max_disparity")), _constant(helper, "scale", ref=("float", "scale")),
        _constant(helper, "zero", value_int=0), _constant(helper, "one", value_int=1),
        _constant(helper, "three", value_int=3), _constant(helper, "axis0", value_ints=[0]),
        _constant(helper, "axis1", value_ints=[1]), _constant(helper, "axis3", value_ints=[3]),
        n("Shape", ["left"], ["shape"]), n("Gather", ["shape", "three"], ["W"]),
        n("Range", ["zero", "D", "one"], ["d"]), n("Range", ["zero", "W", "one"], ["w"]),
        n("Unsqueeze", ["w", "axis0"], ["w_row"]), n("Unsqueeze", ["d", "axis1"], ["d_column"]),
        n("Sub", ["w_row", "d_column"], ["shift"]), n("Max", ["shift", "zero"], ["index"]),
        n("GreaterOrEqual", ["shift", "zero"], ["inside"]), n("Cast", ["inside"], ["valid"], to=1),
        n("Gather", ["right", "index"], ["shifted"], axis=3), n("Unsqueeze", ["left", "axis3"], ["left5"]),
        n("Mul", ["shifted", "left5"], ["products"]), n("ReduceSum", ["products", "axis1"], ["sums"], keepdims=0),
        n("Mul", ["sums", "valid"], ["masked"]), n("Transpose", ["masked"], ["volume"], perm=[0, 2, 1, 3]),
        n("Mul", ["volume", "scale"], ["y"]),
    ]
    return helper.make_function(DOMAIN, "Correlation", ["left", "right"], ["y"], body,
                                [helper.make_opsetid("", opset)], ["max_disparity", "scale"])


def _soft_argmin_function(helper, opset):
    n = helper.make_node
    body = [
        n("Neg", ["x"], ["negated"]), n("Softmax", ["negated"], ["p"], axis=1),
        _constant(helper, "one", value_int=1), _constant(helper, "zero_f", value_float=0.0),
        _constant(helper, "one_f", value_float=1.0), _constant(helper, "axes12", value_ints=[1, 2]),
        _constant(helper, "axis1", value_ints=[1]),
        n("Shape", ["x"], ["shape"]), n("Gather", ["shape", "one"], ["D"]), n("Cast", ["D"], ["D_f"], to=1),
        n("Range", ["zero_f", "D_f", "one_f"], ["d"]), n("Unsqueeze", ["d", "axes12"], ["d3"]),
        n("Mul", ["p", "d3"], ["weighted"]), n("ReduceSum", ["weighted", "axis1"], ["y"], keepdims=1),
    ]
    return helper.make_function(DOMAIN, "SoftArgmin", ["x"], ["y"], body, [helper.make_opsetid("", opset)])
