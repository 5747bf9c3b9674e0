"""ONNX out: :func:`export` (``Network.to_onnx``) writes a network as an ONNX
model that onnxruntime runs; the stereo ops become ``ai.kcp`` functions (see
:mod:`kcp.onnx.format`).
"""

import os

import numpy as np

from .. import _arguments
from ..network import ACTIVATIONS, BINARY
from .format import BATCH, DOMAIN, fresh_name, onnx_module, recall_form

_SIMPLE = {"global_avg_pool": "GlobalAveragePool", "identity": "Identity", "concat": "Concat"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div"}
_FLOAT_MAX = float(np.finfo(np.float32).max)


def export(net, path=None, *, opset=17):
    """``net`` as an ONNX ``ModelProto`` at ``opset`` (13 or later), written to ``path`` if given.

    Initializers are the network's parameters (shared ones once), nodes and
    tensors keep the layer and value names, and the batch dimension of every
    input and output is the symbolic ``"batch"``. Activations the opset lacks
    are written as their formulas (GELU with Erf before opset 20, Mish with
    Softplus and Tanh before 18...); a ``channelwise`` layer is written as the
    ONNX node it was read from.

    Raises:
        ValueError: a layer has no ONNX form at ``opset`` (named).
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
    writer = _Writer(net, helper, opset, taken)
    for layer in net.layers:
        writer.layer(layer, [renamed[p] for p in layer.parameters])
    nodes, functions = writer.nodes, writer.functions
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


class _Refused(ValueError):
    pass


class _Writer:
    """Appends the ONNX nodes of each layer to ``nodes``."""

    def __init__(self, net, helper, opset, taken):
        self.net, self.helper, self.opset, self.taken = net, helper, opset, taken
        self.shapes = {v.name: v.shape for v in net._all_values()}
        self.nodes, self.functions = [], {}
        self.activations = {code: kind for kind, code in ACTIVATIONS.items()}
        self.binary = {code: kind for kind, code in BINARY.items()}

    def layer(self, layer, parameters):
        self.name = layer.name
        try:
            self._layer(layer, list(layer.inputs), parameters)
        except _Refused as error:
            raise ValueError(f"network: layer '{layer.name}' ({layer.op}): {error}") from None

    # -- building blocks ----------------------------------------------------

    def fresh(self, suffix):
        return fresh_name(f"{self.name}/{suffix}", self.taken)

    def node(self, op_type, inputs, output=None, domain=None, **attributes):
        """Appends a node; ``output`` None: the layer's own output. Returns the output name."""
        output = output or self.name
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=output, domain=domain, **attributes))
        return output

    def step(self, op_type, inputs, suffix, **attributes):
        """An intermediate node, named after the layer; returns its output."""
        return self.node(op_type, inputs, self.fresh(suffix), **attributes)

    def constant(self, value, suffix="constant", dtype=np.float32):
        array = np.asarray(value, dtype)
        name = self.fresh(suffix)
        self.nodes.append(self.helper.make_node("Constant", [], [name], name=name,
                                                value=onnx_module().numpy_helper.from_array(array, name)))
        return name

    def reduce(self, op_type, x, axes, output=None):
        if self.opset >= 18:
            return self.node(op_type, [x, self.constant(axes, "axes", np.int64)], output or self.fresh(op_type),
                             keepdims=1)
        return self.node(op_type, [x], output or self.fresh(op_type), axes=list(axes), keepdims=1)

    # -- layers -------------------------------------------------------------

    def _layer(self, layer, x, parameters):
        a, op = layer.attributes, layer.op
        i = [int(v) for v in a]
        if op in _SIMPLE:
            self.node(_SIMPLE[op], x, **({"axis": 1} if op == "concat" else {}))
        elif op == "conv2d":
            self.node("Conv", x + parameters, strides=i[0:2], pads=i[2:6], dilations=i[6:8], group=i[8])
        elif op == "conv_transpose2d":
            self.node("ConvTranspose", x + parameters, strides=i[0:2], pads=i[2:6], output_padding=i[6:8],
                      dilations=i[8:10], group=i[10])
        elif op == "batchnorm":
            self.node("BatchNormalization", x + parameters, epsilon=float(a[0]))
        elif op == "activation":
            self._activation(self.activations.get(i[0]), x[0], float(a[1]), float(a[2]))
        elif op == "binary":
            operands = x if not parameters else parameters + x if i[1] else x + parameters
            self.node(_BINARY[self.binary[i[0]]], operands)
        elif op in ("max_pool", "avg_pool"):
            self._pool(op, x[0], i)
        elif op == "adaptive_pool":
            self._adaptive_pool(x[0], self.shapes[x[0]][2:], tuple(i[0:2]), bool(i[2]))
        elif op in ("flatten", "softmax"):
            self.node(op.capitalize(), x, axis=1)
        elif op == "linear":
            self.node("Gemm", x + parameters, transB=1)
        elif op == "resize":
            self._resize(x[0], i[0:2], i[2], i[3])
        elif op == "channel_shuffle":
            self._channel_shuffle(x[0], i[0])
        elif op == "channel_chunk":
            channels = self.shapes[x[0]][1] // i[1]
            self.node("Slice", [x[0], self.constant([i[0] * channels], "starts", np.int64),
                                self.constant([(i[0] + 1) * channels], "ends", np.int64),
                                self.constant([1], "axes", np.int64)])
        elif op == "channelwise":
            self._channelwise(x)
        elif op == "correlation":
            self.functions["Correlation"] = _correlation_function
            self.node("Correlation", x, domain=DOMAIN, max_disparity=i[0], scale=float(a[1]))
        elif op == "soft_argmin":
            self.functions["SoftArgmin"] = _soft_argmin_function
            self.node("SoftArgmin", x, domain=DOMAIN)
        else:
            raise _Refused(f"op {op!r} has no ONNX form")

    def _activation(self, kind, x, alpha, beta):
        simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
        if kind in simple:
            self.node(simple[kind], [x])
        elif kind == "clip":
            self.node("Clip", [x, "" if alpha <= -_FLOAT_MAX else self.constant(alpha, "min"),
                               "" if beta >= _FLOAT_MAX else self.constant(beta, "max")])
        elif kind == "leaky_relu":
            self.node("LeakyRelu", [x], alpha=alpha)
        elif kind == "elu":
            self.node("Elu", [x], alpha=alpha)
        elif kind == "hardsigmoid":
            self.node("HardSigmoid", [x], alpha=alpha, beta=beta)
        elif kind == "hardswish":
            if self.opset >= 14:
                self.node("HardSwish", [x])
            else:
                self.node("Mul", [x, self.step("HardSigmoid", [x], "HardSigmoid", alpha=1 / 6, beta=0.5)])
        elif kind == "silu":
            self.node("Mul", [x, self.step("Sigmoid", [x], "Sigmoid")])
        elif kind in ("gelu", "gelu_tanh") and self.opset >= 20:
            self.node("Gelu", [x], approximate="none" if kind == "gelu" else "tanh")
        elif kind == "gelu":  # PyTorch's form: x * (1 + erf(x / sqrt 2)) * 0.5
            erf = self.step("Erf", [self.step("Div", [x, self.constant(np.sqrt(2), "sqrt2")], "Div")], "Erf")
            half = self.step("Mul", [x, self.step("Add", [erf, self.constant(1, "one")], "Add")], "Mul")
            self.node("Mul", [half, self.constant(0.5, "half")])
        elif kind == "gelu_tanh":  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
            cube = self.step("Mul", [x, self.step("Mul", [x, x], "Mul")], "Mul")
            inner = self.step("Add", [x, self.step("Mul", [cube, self.constant(0.044715, "c")], "Mul")], "Add")
            tanh = self.step("Tanh", [self.step("Mul", [inner, self.constant(np.sqrt(2 / np.pi), "c")], "Mul")],
                             "Tanh")
            half = self.step("Mul", [x, self.step("Add", [tanh, self.constant(1, "one")], "Add")], "Mul")
            self.node("Mul", [half, self.constant(0.5, "half")])
        elif kind == "mish":
            if self.opset >= 18:
                self.node("Mish", [x])
            else:
                self.node("Mul", [x, self.step("Tanh", [self.step("Softplus", [x], "Softplus")], "Tanh")])
        elif kind == "softplus":  # log(1 + exp(alpha x)) / alpha, or x where alpha x > beta
            scaled = x if alpha == 1 else self.step("Mul", [x, self.constant(alpha, "beta")], "Mul")
            exact = beta >= 20  # then the threshold changes the result by less than exp(-20) / alpha
            soft = self.node("Softplus", [scaled], None if exact and alpha == 1 else self.fresh("Softplus"))
            if alpha != 1:
                soft = self.node("Div", [soft, self.constant(alpha, "beta")], None if exact else self.fresh("Div"))
            if not exact:  # written as PyTorch computes it (kcp does not read Greater and Where back)
                above = self.step("Greater", [scaled, self.constant(beta, "threshold")], "Greater")
                self.node("Where", [above, x, soft])
        elif kind == "affine":
            if alpha == 1 and beta == 0:
                self.node("Identity", [x])
            elif beta == 0:
                self.node("Mul", [x, self.constant(alpha, "alpha")])
            elif alpha == 1:
                self.node("Add", [x, self.constant(beta, "beta")])
            else:
                self.node("Add", [self.step("Mul", [x, self.constant(alpha, "alpha")], "Mul"),
                                  self.constant(beta, "beta")])
        else:
            raise _Refused(f"activation kind {kind!r} has no ONNX form")

    def _pool(self, op, x, i):
        kernel, strides, pads, include, ceil, dilations = i[0:2], i[2:4], i[4:8], i[8], i[9], i[10:12]
        extra = {}
        if ceil:
            extra["ceil_mode"] = 1
        if op == "avg_pool":
            extra["count_include_pad"] = include
            if dilations != [1, 1]:
                if self.opset < 19:
                    raise _Refused(f"AveragePool takes dilations from opset 19, exporting at {self.opset}")
                extra["dilations"] = dilations
        elif dilations != [1, 1]:
            extra["dilations"] = dilations
        self.node("MaxPool" if op == "max_pool" else "AveragePool", [x], kernel_shape=kernel, strides=strides,
                  pads=pads, **extra)

    def _adaptive_pool(self, x, size, out, is_max):
        """Global pooling; a pool whose kernel is its stride where ``out`` divides
        the size; else one Slice and reduction per bin (which kcp does not read back)."""
        if out == (1, 1):
            self.node("GlobalMaxPool" if is_max else "GlobalAveragePool", [x])
        elif all(n % o == 0 for n, o in zip(size, out)):
            kernel = [n // o for n, o in zip(size, out)]
            self.node("MaxPool" if is_max else "AveragePool", [x], kernel_shape=kernel, strides=kernel)
        else:
            rows = []
            for r in range(out[0]):
                cells = []
                for c in range(out[1]):
                    (top, bottom), (left, right) = ((k * n // o, -(-(k + 1) * n // o))
                                                    for k, n, o in ((r, size[0], out[0]), (c, size[1], out[1])))
                    cell = self.step("Slice", [x, self.constant([top, left], "starts", np.int64),
                                               self.constant([bottom, right], "ends", np.int64),
                                               self.constant([2, 3], "axes", np.int64)], "Slice")
                    cells.append(self.reduce("ReduceMax" if is_max else "ReduceMean", cell, [2, 3]))
                rows.append(self.step("Concat", cells, "Concat", axis=3) if len(cells) > 1 else cells[0])
            self.node("Concat", rows, axis=2) if len(rows) > 1 else self.node("Identity", rows)

    def _resize(self, x, size, mode, align_corners):
        """``Resize`` to ``sizes`` made of the input's N and C and the fixed H and W (as PyTorch writes it)."""
        shape = self.step("Shape", [x], "Shape")
        batch_channels = self.step("Slice", [shape, self.constant([0], "zero", np.int64),
                                             self.constant([2], "two", np.int64)], "Slice")
        sizes = self.step("Concat", [batch_channels, self.constant(size, "size", np.int64)], "Concat", axis=0)
        modes = ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
                 {"mode": "linear", "coordinate_transformation_mode": "align_corners" if align_corners
                  else "half_pixel"})[mode]
        self.node("Resize", [x, "", "", sizes], **modes)

    def _channel_shuffle(self, x, groups):
        channels, height, width = self.shapes[x][1:]
        grouped = self.step("Reshape", [x, self.constant([0, groups, channels // groups, height, width], "shape",
                                                         np.int64)], "Reshape")
        swapped = self.step("Transpose", [grouped], "Transpose", perm=[0, 2, 1, 3, 4])
        self.node("Reshape", [swapped, self.constant([0, channels, height, width], "shape", np.int64)])

    def _channelwise(self, x):
        form = recall_form(self.net, self.name)
        if form is None:
            raise _Refused("a channelwise node that was not read from ONNX has no ONNX form to write")
        inputs = ["" if source is None else x[source] if isinstance(source, int) else self.constant(source, "constant",
                                                                                                       source.dtype)
                  for source in form["inputs"]]
        node = self.helper.make_node(form["op_type"], inputs, [self.name], name=self.name, domain=form["domain"])
        node.attribute.extend(form["attributes"])
        self.nodes.append(node)


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
