"""ONNX out: :func:`export` (``Network.to_onnx``) writes a network as an ONNX
model that onnxruntime runs; the stereo ops become ``ai.kcp`` functions (see
:mod:`kcp.onnx.format`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import _arguments
from ..network import ACTIVATIONS, BINARY, COST_VOLUMES, Network
from .format import BATCH, DOMAIN, fresh_name, onnx_module, recall_form

_SIMPLE = {"global_avg_pool": "GlobalAveragePool", "identity": "Identity", "concat": "Concat"}
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div"}
_FLOAT_MAX = float(np.finfo(np.float32).max)


def export(net: Network, path: str | os.PathLike | None = None, *, opset: int = 17) -> Any:
    """``net`` as an ONNX ``ModelProto`` at ``opset`` (13 or later), written to ``path`` if given.

    Initializers are the network's parameters (shared ones once), nodes and
    tensors keep the layer and value names, and the batch dimension of every
    input and output is the symbolic ``"batch"``. Activations the opset lacks
    are written as their formulas (GELU with Erf before opset 20, Mish with
    Softplus and Tanh before 18...); a ``channelwise`` layer is written as the
    ONNX node it was read from. A ``normalization`` whose statistics mask is
    all ones is LayerNormalization (from opset 17; between Transposes to
    channels-last and back for 4-D tensors), InstanceNormalization,
    GroupNormalization (from opset 21) or, before, GroupNorm as PyTorch
    writes it (InstanceNormalization of ``[N, G, -1]``); any other (a masked
    network's, LayerNorm before opset 17, groups at each position) is
    written as its formula, which kcp does not read back.

    Raises:
        ValueError: a layer has no ONNX form at ``opset`` (named).
    """
    onnx = onnx_module()
    helper = onnx.helper
    opset = _arguments.integer(opset, "opset", 13, onnx.defs.onnx_opset_version())
    if not net.outputs:
        raise ValueError("network: has no outputs to export")
    taken = {v.name for v in net._all_values()}
    arrays = net.parameters
    renamed = {name: fresh_name(name, taken) for name in arrays}
    writer = _Writer(net, helper, opset, taken, arrays)
    for layer in net.layers:
        writer.layer(layer, [renamed[p] for p in layer.parameters])
    nodes, functions = writer.nodes, writer.functions
    read = {name for node in nodes for name in node.input}  # a statistics mask is read by formulas only
    initializers = [onnx.numpy_helper.from_array(np.asarray(array, np.float32), renamed[name])
                    for name, array in arrays.items() if renamed[name] in read]
    input_names = {v.name for v in net.inputs}
    outputs: list[Any] = []
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

    def __init__(self, net, helper, opset, taken, arrays):
        self.net, self.helper, self.opset, self.taken, self.arrays = net, helper, opset, taken, arrays
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

    def node(self, op_type, inputs, output=None, domain=None, name=None, **attributes):
        """Appends a node named ``name`` (default: its output); ``output`` None: the
        layer's own output. Returns the output name."""
        output = output or self.name
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=name or output, domain=domain,
                                                **attributes))
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
        if self.opset >= 18 or op_type == "ReduceSum":  # ReduceSum takes its axes as an input from opset 13
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
        elif op == "conv3d":
            self.node("Conv", x + parameters, strides=i[0:3], pads=i[3:9], dilations=i[9:12], group=i[12])
        elif op == "conv_transpose3d":
            self.node("ConvTranspose", x + parameters, strides=i[0:3], pads=i[3:9], output_padding=i[9:12],
                      dilations=i[12:15], group=i[15])
        elif op == "batchnorm":
            self.node("BatchNormalization", x + parameters, epsilon=float(a[0]))
        elif op == "normalization":
            self._normalization(x[0], parameters, i[0], i[1], float(a[2]), self.arrays[layer.parameters[2]])
        elif op == "activation":
            self._activation(self.activations.get(i[0]), x[0], float(a[1]), float(a[2]))
        elif op == "binary":
            operands = x if not parameters else parameters + x if i[1] else x + parameters
            self.node(_BINARY[self.binary[i[0]]], operands)
        elif op in ("max_pool", "avg_pool"):
            self._pool(op, x[0], i[0:2], i[2:4], i[4:8], i[8], i[9], i[10:12])
        elif op == "max_pool3d":
            self._pool("max_pool", x[0], i[0:3], i[3:6], i[6:12], 0, i[12], i[13:16])
        elif op == "avg_pool3d":
            self._pool("avg_pool", x[0], i[0:3], i[3:6], i[6:12], i[12], i[13], [1, 1, 1])
        elif op == "adaptive_pool":
            self._adaptive_pool(x[0], self.shapes[x[0]][2:], tuple(i[0:2]), bool(i[2]))
        elif op in ("flatten", "softmax"):
            self.node(op.capitalize(), x, axis=1)
        elif op == "linear":
            self.node("Gemm", x + parameters, transB=1)
        elif op == "resize":
            self._resize(x[0], i[0:2], i[2], i[3])
        elif op == "resize3d":
            self._resize(x[0], i[0:3], i[3], i[4])
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
        elif op == "cost_volume":
            kind = {code: kind for kind, code in COST_VOLUMES.items()}[i[0]]
            if kind == "concatenation":
                self.functions["ConcatenationVolume"] = _concatenation_volume_function
                self.node("ConcatenationVolume", x, domain=DOMAIN, max_disparity=i[1])
            else:
                self.functions["GroupCorrelationVolume"] = _group_correlation_volume_function
                self.node("GroupCorrelationVolume", x, domain=DOMAIN, max_disparity=i[1], groups=i[2], scale=float(a[3]))
        elif op == "soft_argmin":
            self.functions["SoftArgmin"] = _soft_argmin_function
            self.node("SoftArgmin", x, domain=DOMAIN, sign=float(a[0]))
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
        elif kind == "silu":  # formulas the importer fuses: the first node has the layer's name, as it expects
            self.node("Mul", [x, self.step("Sigmoid", [x], "Sigmoid", name=self.name)], name=self.fresh("Mul"))
        elif kind in ("gelu", "gelu_tanh") and self.opset >= 20:
            self.node("Gelu", [x], approximate="none" if kind == "gelu" else "tanh")
        elif kind == "gelu":  # PyTorch's form: x * (1 + erf(x / sqrt 2)) * 0.5
            erf = self.step("Erf", [self.step("Div", [x, self.constant(np.sqrt(2), "sqrt2")], "Div", name=self.name)],
                            "Erf")
            half = self.step("Mul", [x, self.step("Add", [erf, self.constant(1, "one")], "Add")], "Mul")
            self.node("Mul", [half, self.constant(0.5, "half")], name=self.fresh("Mul"))
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
                softplus = self.step("Softplus", [x], "Softplus", name=self.name)
                self.node("Mul", [x, self.step("Tanh", [softplus], "Tanh")], name=self.fresh("Mul"))
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

    def _normalization(self, x, parameters, groups, spatial, epsilon, mask):
        """The standard op that computes the layer, if one does (all of its statistics mask
        counts, and the opset has it), else :meth:`_normalization_formula`."""
        shape, (weight, bias, _) = self.shapes[x], parameters
        rank, channels = len(shape), shape[1]
        if not (mask == 1).all() or rank not in (2, 4) or spatial and rank == 2 \
                or not spatial and (groups > 1 or self.opset < 17):
            self._normalization_formula(x, parameters, groups, spatial, epsilon)
        elif not spatial and rank == 2:
            self.node("LayerNormalization", [x, weight, bias], axis=-1, epsilon=epsilon)
        elif not spatial:
            last = self.step("Transpose", [x], "Transpose", perm=[0, 2, 3, 1])
            normed = self.step("LayerNormalization", [last, weight, bias], "LayerNormalization", name=self.name,
                               axis=-1, epsilon=epsilon)
            self.node("Transpose", [normed], name=self.fresh("Transpose"), perm=[0, 3, 1, 2])
        elif groups == channels:
            self.node("InstanceNormalization", [x, weight, bias], epsilon=epsilon)
        elif self.opset >= 21:
            self.node("GroupNormalization", [x, weight, bias], num_groups=groups, epsilon=epsilon)
        else:  # PyTorch's GroupNorm, which kcp reads back
            per_channel = [self.step("Reshape", [p, self.constant([channels, 1, 1], "shape", np.int64)], "Reshape")
                           for p in (weight, bias)]  # first: the importer folds them before it reaches the Mul
            grouped = self.step("Reshape", [x, self.constant([0, groups, -1], "shape", np.int64)], "Reshape")
            normed = self.step("InstanceNormalization", [grouped, self.constant(np.ones(groups), "ones"),
                                                         self.constant(np.zeros(groups), "zeros")],
                               "InstanceNormalization", name=self.name, epsilon=epsilon)
            back = self.step("Reshape", [normed, self.constant([0, *shape[1:]], "shape", np.int64)], "Reshape")
            self.node("Add", [self.step("Mul", [back, per_channel[0]], "Mul"), per_channel[1]], name=self.fresh("Add"))

    def _normalization_formula(self, x, parameters, groups, spatial, epsilon):
        """Op.swift's formula over ``[N, G, C / G, positions]``: moments from ReduceSum
        of the entries the statistics mask counts, divided by their number (at least 1)."""
        shape = self.shapes[x]
        view = [groups, shape[1] // groups]
        weight, bias, mask = (self.step("Reshape", [p, self.constant([1, *view, 1], "shape", np.int64)], "Reshape")
                              for p in parameters)
        grouped = self.step("Reshape", [x, self.constant([0, *view, -1], "shape", np.int64)], "Reshape")
        axes = [2, 3] if spatial else [2]
        count = self.reduce("ReduceSum", mask, [2])
        if spatial:
            count = self.step("Mul", [count, self.constant(int(np.prod(shape[2:])), "positions")], "Mul")
        count = self.step("Max", [count, self.constant(1, "one")], "Max")

        def moment(values):
            return self.step("Div", [self.reduce("ReduceSum", self.step("Mul", [values, mask], "Mul"), axes), count],
                             "Div")

        centred = self.step("Sub", [grouped, moment(grouped)], "Sub")
        variance = moment(self.step("Mul", [centred, centred], "Mul"))
        scale = self.step("Sqrt", [self.step("Add", [variance, self.constant(epsilon, "epsilon")], "Add")], "Sqrt")
        y = self.step("Add", [self.step("Mul", [self.step("Div", [centred, scale], "Div"), weight], "Mul"), bias],
                      "Add")
        self.node("Reshape", [y, self.constant([0, *shape[1:]], "shape", np.int64)])

    def _pool(self, op, x, kernel, strides, pads, include, ceil, dilations):
        """MaxPool or AveragePool over 2 or 3 spatial axes (``pads`` begin..end per axis, as kcp's)."""
        extra = {}
        if ceil:
            extra["ceil_mode"] = 1
        if op == "avg_pool":
            extra["count_include_pad"] = include
            if any(d != 1 for d in dilations):
                if self.opset < 19:
                    raise _Refused(f"AveragePool takes dilations from opset 19, exporting at {self.opset}")
                extra["dilations"] = dilations
        elif any(d != 1 for d in dilations):
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
        """``Resize`` to ``sizes`` made of the input's N and C and the fixed H and W (or D, H and W; as PyTorch
        writes it)."""
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
    body = _disparity_shift(helper) + [
        _constant(helper, "scale", ref=("float", "scale")), _constant(helper, "axis3", value_ints=[3]),
        n("Gather", ["right", "index"], ["shifted"], axis=3), n("Unsqueeze", ["left", "axis3"], ["left5"]),
        n("Mul", ["shifted", "left5"], ["products"]), n("ReduceSum", ["products", "axis1"], ["sums"], keepdims=0),
        n("Mul", ["sums", "valid"], ["masked"]), n("Transpose", ["masked"], ["volume"], perm=[0, 2, 1, 3]),
        n("Mul", ["volume", "scale"], ["y"]),
    ]
    return helper.make_function(DOMAIN, "Correlation", ["left", "right"], ["y"], body,
                                [helper.make_opsetid("", opset)], ["max_disparity", "scale"])


def _disparity_shift(helper):
    """Nodes giving ``index[d, w] = max(w - d, 0)`` and ``valid[d, w] = (w >= d)``
    (as floats) for ``d < max_disparity`` and the width of ``left``."""
    n = helper.make_node
    return [
        _constant(helper, "D", ref=("int", "max_disparity")), _constant(helper, "zero", value_int=0),
        _constant(helper, "one", value_int=1), _constant(helper, "three", value_int=3),
        _constant(helper, "axis0", value_ints=[0]), _constant(helper, "axis1", value_ints=[1]),
        n("Shape", ["left"], ["shape"]), n("Gather", ["shape", "three"], ["W"]),
        n("Range", ["zero", "D", "one"], ["d"]), n("Range", ["zero", "W", "one"], ["w"]),
        n("Unsqueeze", ["w", "axis0"], ["w_row"]), n("Unsqueeze", ["d", "axis1"], ["d_column"]),
        n("Sub", ["w_row", "d_column"], ["shift"]), n("Max", ["shift", "zero"], ["index"]),
        n("GreaterOrEqual", ["shift", "zero"], ["inside"]), n("Cast", ["inside"], ["valid"], to=1),
    ]


def _concatenation_volume_function(helper, opset):
    """``left`` repeated over disparities and ``right[..., w - d]`` gathered for
    every ``(d, w)``, both zeroed where ``w < d``, concatenated on channels."""
    n = helper.make_node
    body = _disparity_shift(helper) + [
        _constant(helper, "axis2", value_ints=[2]),
        n("Unsqueeze", ["valid", "axis1"], ["valid3"]),  # [D, 1, W]
        n("Unsqueeze", ["left", "axis2"], ["left5"]), n("Mul", ["left5", "valid3"], ["left_volume"]),
        n("Gather", ["right", "index"], ["shifted"], axis=3),  # [N, C, H, D, W]
        n("Transpose", ["shifted"], ["right5"], perm=[0, 1, 3, 2, 4]), n("Mul", ["right5", "valid3"], ["right_volume"]),
        n("Concat", ["left_volume", "right_volume"], ["y"], axis=1),
    ]
    return helper.make_function(DOMAIN, "ConcatenationVolume", ["left", "right"], ["y"], body,
                                [helper.make_opsetid("", opset)], ["max_disparity"])


def _group_correlation_volume_function(helper, opset):
    """``left * right[..., w - d]`` for every ``(d, w)`` ([N, C, H, D, W]),
    viewed as ``[N, G, C/G, H, D, W]``, summed over each group, zeroed where
    ``w < d``, moved to ``[N, G, D, H, W]`` and scaled."""
    n = helper.make_node
    body = _disparity_shift(helper) + [
        _constant(helper, "G", ref=("int", "groups")), _constant(helper, "scale", ref=("float", "scale")),
        _constant(helper, "axis2", value_ints=[2]), _constant(helper, "axis3", value_ints=[3]),
        _constant(helper, "rest", value_ints=[-1]), _constant(helper, "start", value_ints=[0]),
        _constant(helper, "plane_start", value_ints=[2]), _constant(helper, "end", value_ints=[2**62]),
        n("Gather", ["right", "index"], ["shifted"], axis=3), n("Unsqueeze", ["left", "axis3"], ["left5"]),
        n("Mul", ["shifted", "left5"], ["products"]),
        n("Shape", ["products"], ["products_shape"]), n("Slice", ["products_shape", "start", "axis1"], ["batch"]),
        n("Slice", ["products_shape", "plane_start", "end"], ["planes"]), n("Unsqueeze", ["G", "axis0"], ["groups"]),
        n("Concat", ["batch", "groups", "rest", "planes"], ["grouped_shape"], axis=0),
        n("Reshape", ["products", "grouped_shape"], ["grouped"]),
        n("ReduceSum", ["grouped", "axis2"], ["sums"], keepdims=0),  # [N, G, H, D, W]
        n("Mul", ["sums", "valid"], ["masked"]), n("Transpose", ["masked"], ["volume"], perm=[0, 1, 3, 2, 4]),
        n("Mul", ["volume", "scale"], ["y"]),
    ]
    return helper.make_function(DOMAIN, "GroupCorrelationVolume", ["left", "right"], ["y"], body,
                                [helper.make_opsetid("", opset)], ["max_disparity", "groups", "scale"])


def _soft_argmin_function(helper, opset):
    """Views ``x`` as ``[N, D, H, W]`` (a ``[N, 1, D, H, W]`` volume as its ``D``
    channels), then ``sum_d d * softmax_d(sign * x)`` over axis 1."""
    n = helper.make_node
    body = [
        _constant(helper, "sign", ref=("float", "sign")), _constant(helper, "one", value_int=1),
        _constant(helper, "zero_f", value_float=0.0), _constant(helper, "one_f", value_float=1.0),
        _constant(helper, "axes12", value_ints=[1, 2]), _constant(helper, "axis1", value_ints=[1]),
        _constant(helper, "start", value_ints=[0]), _constant(helper, "batch_end", value_ints=[1]),
        _constant(helper, "plane_start", value_ints=[-2]), _constant(helper, "end", value_ints=[2**62]),
        _constant(helper, "rest", value_ints=[-1]),
        n("Shape", ["x"], ["shape"]), n("Slice", ["shape", "start", "batch_end"], ["batch"]),
        n("Slice", ["shape", "plane_start", "end"], ["plane"]), n("Concat", ["batch", "rest", "plane"], ["view"], axis=0),
        n("Reshape", ["x", "view"], ["x4"]), n("Mul", ["x4", "sign"], ["signed"]),
        n("Softmax", ["signed"], ["p"], axis=1),
        n("Shape", ["x4"], ["shape4"]), n("Gather", ["shape4", "one"], ["D"]), n("Cast", ["D"], ["D_f"], to=1),
        n("Range", ["zero_f", "D_f", "one_f"], ["d"]), n("Unsqueeze", ["d", "axes12"], ["d3"]),
        n("Mul", ["p", "d3"], ["weighted"]), n("ReduceSum", ["weighted", "axis1"], ["y"], keepdims=1),
    ]
    return helper.make_function(DOMAIN, "SoftArgmin", ["x"], ["y"], body, [helper.make_opsetid("", opset)], ["sign"])
