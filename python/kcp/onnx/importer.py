"""ONNX in: :func:`from_onnx` builds a :class:`~kcp.Network` from a model.

Errors are one-line ``ValueError`` s naming the node (or input, or file).
"""

import math
import os
import re

import numpy as np

from .._native import KCPError
from .format import DOMAIN, fresh_name, onnx_module


def from_onnx(model):
    """A :class:`~kcp.Network` from an ONNX model: a path, serialized bytes or a ``ModelProto``.

    The model uses opset 13 or later and these ops: Conv, BatchNormalization,
    Relu, LeakyRelu, Sigmoid, Add and Mul (of equal shapes), Concat (axis 1),
    MaxPool, AveragePool, GlobalAveragePool, Flatten and Softmax (axis 1),
    Gemm, MatMul with a constant weight (and a following bias Add), Resize and
    Upsample by one integer factor on H and W (nearest, or linear with
    half-pixel centers), Identity, Dropout, Constant, and kcp's
    ``ai.kcp.Correlation`` and ``ai.kcp.SoftArgmin``.

    The model's initializers (and Constant nodes) feeding weights become the
    network's parameters under their own names; an initializer two nodes use
    as their weight is one shared parameter. Layers take the node names (or,
    for unnamed nodes, their output names). A symbolic batch dimension is read
    as 1 (the network runs any batch); other dimensions must be fixed.

    Raises:
        ValueError: one line naming the file, input or node (and op type) at fault.
    """
    try:
        return _Importer(_load(model)).run()
    except ValueError as error:  # names from the file may hold line breaks or control characters
        message = str(error)
        if message.isprintable():
            raise
        raise ValueError("".join(c if c.isprintable() else repr(c)[1:-1] for c in message)) from None


class _Refused(Exception):
    """Why the node being read cannot be imported (the loop adds which node)."""


def _load(source):
    onnx = onnx_module()
    if isinstance(source, onnx.ModelProto):
        model, where = source, "model"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data, where = bytes(source), "model"
    elif isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        try:
            with open(where, "rb") as file:
                data = file.read()
        except OSError as error:
            raise ValueError(f"{where}: cannot read ({error.strerror or error})") from None
    else:
        raise TypeError(f"model: expected a path, bytes or an onnx.ModelProto, got {type(source).__name__}")
    if not isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        try:
            model.ParseFromString(data)
        except Exception as error:  # protobuf raises DecodeError or RuntimeError, depending on its backend
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise ValueError(f"{where}: not an ONNX model, or a truncated one ({reason})") from None
    if not model.HasField("graph") or not model.opset_import:
        raise ValueError(f"{where}: not an ONNX model, or a truncated one (no graph or no opset)")
    if isinstance(source, (str, os.PathLike)) and any(t.data_location == 1 for t in model.graph.initializer):
        try:
            onnx.external_data_helper.load_external_data_for_model(model, os.path.dirname(where) or ".")
        except Exception as error:
            raise ValueError(f"{where}: cannot read its external data ({error})") from None
    return model


def _attributes(node):
    onnx = onnx_module()
    values = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return values


def _pair(attributes, key, default):
    value = tuple(attributes.get(key, default))
    if len(value) != 2:
        raise _Refused(f"{key} must have 2 entries (2-D), got {list(value)}")
    return value


def _nearest_index(i, scale, size, transform, rounding):
    """Source index of output ``i`` for ONNX Resize nearest (None: not a mode we know)."""
    out = size * scale
    x = {"half_pixel": (i + 0.5) / scale - 0.5, "pytorch_half_pixel": (i + 0.5) / scale - 0.5 if out > 1 else 0,
         "asymmetric": i / scale, "tf_half_pixel_for_nn": (i + 0.5) / scale,
         "align_corners": i * (size - 1) / (out - 1) if out > 1 else 0}.get(transform)
    rounded = {"floor": math.floor, "ceil": math.ceil, "round_prefer_floor": lambda v: math.ceil(v - 0.5),
               "round_prefer_ceil": lambda v: math.floor(v + 0.5)}.get(rounding)
    return None if x is None or rounded is None else min(max(rounded(x), 0), size - 1)


class _Importer:
    def __init__(self, model):
        from ..network import Network

        self.graph = model.graph
        versions = {o.domain: o.version for o in model.opset_import}
        self.opset = versions.get("", versions.get("ai.onnx"))
        if self.opset is None or self.opset < 13:
            raise ValueError(f"model: kcp reads ONNX opset 13 or later, the model uses {self.opset or 'none'}")
        self.net = Network()
        self.values, self.constants = {}, {}
        self.shared, self.layer_names, self.parameter_names = {}, set(), set()
        self.consumers = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.graph_outputs = {o.name for o in self.graph.output}
        self.fused = set()
        self.origin = {}  # Identity outputs of constants: the constant they alias

    def run(self):
        onnx = onnx_module()
        for tensor in self.graph.initializer:
            try:
                self.constants[tensor.name] = onnx.numpy_helper.to_array(tensor)
            except Exception as error:
                raise ValueError(f"initializer '{tensor.name}': cannot read its data ({error})") from None
        for value in self.graph.input:
            if value.name not in self.constants:
                try:
                    self.values[value.name] = self.net.input(fresh_name(value.name, self.layer_names), self._shape(value))
                except (ValueError, KCPError) as error:
                    raise ValueError(f"input '{value.name}': {error}") from None
        for index, node in enumerate(self.graph.node):
            if id(node) in self.fused:
                continue
            try:
                self._node(node)
                continue
            except _Refused as error:
                reason = str(error)
            except (TypeError, ValueError, AttributeError, IndexError, KeyError, OverflowError) as error:
                reason = f"malformed attributes or inputs ({type(error).__name__}: {error})"
            raise ValueError(f"node '{node.name or (node.output or ['#' + str(index)])[0]}' "
                             f"({node.op_type}): {reason}")
        if not self.graph.output:
            raise ValueError("model: the graph has no outputs")
        for output in self.graph.output:
            if output.name not in self.values:
                what = "a constant" if output.name in self.constants else "not produced by any node (truncated?)"
                raise ValueError(f"graph output '{output.name}' is {what}")
            self.net.output(self.values[output.name])
        return self.net

    def _shape(self, value):
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type") or tensor.elem_type not in (1, 10, 11, 16):
            raise ValueError("kcp reads float tensors only")
        if not tensor.HasField("shape"):
            raise ValueError("has no shape; kcp needs fixed sizes (the batch may be symbolic)")
        shape = []
        for axis, dim in enumerate(tensor.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(dim.dim_value)
            elif axis == 0:
                shape.append(1)
            else:
                raise ValueError(f"dimension {axis} is dynamic ({dim.dim_param or 'unknown'}); "
                                 "kcp needs fixed sizes except the batch")
        return tuple(shape)

    def _node(self, node):
        standard = node.domain in ("", "ai.onnx")
        op = node.op_type if standard else f"{node.domain}.{node.op_type}"
        handler = getattr(self, f"_op_{op}" if standard else f"_kcp_{node.op_type}", None)
        if handler is None or not standard and node.domain != DOMAIN:
            raise _Refused(f"unsupported op type '{op}'")
        if not node.output or not node.output[0]:
            raise _Refused("has no output")
        for k, name in enumerate(node.output[1:], 1):
            if name and (name in self.consumers or name in self.graph_outputs):
                raise _Refused(f"output {k} ('{name}') is not supported")
        attributes = _attributes(node)
        if op == "Constant":
            self.constants[node.output[0]] = self._op_Constant(node, attributes)
        elif op == "Identity" and node.input and node.input[0] in self.constants:  # an alias of a weight
            self.constants[node.output[0]] = self.constants[node.input[0]]
            self.origin[node.output[0]] = self.origin.get(node.input[0], node.input[0])
        else:
            self.values[node.output[0]] = handler(node, attributes, fresh_name(node.name or node.output[0],
                                                                            self.layer_names))

    # -- reading inputs ----------------------------------------------------

    def _input_name(self, node, k):
        return node.input[k] if k < len(node.input) else ""

    def _source(self, node, k):
        """The initializer or Constant that input ``k`` reads, through Identity aliases."""
        return self.origin.get(node.input[k], node.input[k])

    def _activation(self, node, k):
        name = self._input_name(node, k)
        if name in self.values:
            return self.values[name]
        if not name:
            raise _Refused(f"input {k} is missing")
        if name in self.constants:
            raise _Refused(f"input {k} ('{name}') is a constant; kcp needs it computed from the graph inputs")
        raise _Refused(f"input '{name}' is not a graph input, an initializer or an earlier node's output "
                       "(missing initializer?)")

    def _constant(self, node, k, required=True):
        name = self._input_name(node, k)
        if name in self.constants:
            return self.constants[name]
        if not name:
            if required:
                raise _Refused(f"input {k} is missing")
            return None
        if name in self.values:
            raise _Refused(f"input '{name}' must be a constant (an initializer or a Constant node's output)")
        raise _Refused(f"input '{name}' is not an initializer, a Constant node's output or an earlier node's "
                       "output (missing initializer?)")

    def _parameter(self, node, k, role, transform=None, tag=""):
        """A parameter from constant input ``k``: its kcp name if ``role`` already
        made it (shared), else ``(new name, array)``; ``role=None`` never shares."""
        array, source = self._constant(node, k), self._source(node, k)
        key = (source, tag, role)
        if role is not None and key in self.shared:
            return self.shared[key]
        name = fresh_name(f"{source}.{tag}" if tag else source, self.parameter_names)
        if role is not None:
            self.shared[key] = name
        array = transform(array) if transform else array
        return name, np.ascontiguousarray(array, dtype=np.float32)

    def _layer(self, name, op, inputs, attributes=(), parameters=()):
        try:
            return self.net.layer(op, inputs, attributes, parameters, name=name)
        except (ValueError, KCPError) as error:
            raise _Refused(re.sub(r"^network: node '.*?' \(\w+\): ", "", str(error))) from None

    def _rank(self, value, ranks, what="input"):
        if len(value.shape) not in ranks:
            raise _Refused(f"{what} must be {' or '.join(f'{r}-D' for r in ranks)}, got shape {value.shape}")
        return value

    def _axis(self, attributes, default, rank, expected=1):
        axis = attributes.get("axis", default)
        if axis % rank != expected:
            raise _Refused(f"only axis {expected} is supported, got axis {axis} of a {rank}-D input")

    def _op_Constant(self, node, attributes):
        if len(attributes) != 1 or next(iter(attributes)) not in ("value", "value_float", "value_floats",
                                                                   "value_int", "value_ints"):
            raise _Refused(f"kcp reads a Constant with one numeric value attribute, got {sorted(attributes)}")
        value = next(iter(attributes.values()))
        return onnx_module().numpy_helper.to_array(value) if attributes.keys() == {"value"} else np.asarray(value)

    def _pads(self, attributes, size, kernel, strides, dilations):
        """``(top, left, bottom, right)`` from ``pads`` or ``auto_pad``."""
        auto = attributes.get("auto_pad", "NOTSET")
        if auto == "NOTSET":
            pads = tuple(attributes.get("pads", (0, 0, 0, 0)))
            if len(pads) != 4:
                raise _Refused(f"pads must have 4 entries (2-D), got {list(pads)}")
            return pads
        if auto == "VALID":
            return 0, 0, 0, 0
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            raise _Refused(f"auto_pad {auto!r} is not supported")
        begin, end = [], []
        for n, k, s, d in zip(size, kernel, strides, dilations):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            begin.append(total // 2 if auto == "SAME_UPPER" else total - total // 2)
            end.append(total - begin[-1])
        return (*begin, *end)

    # -- ops (each returns the kcp value of the node's first output) ------------

    def _op_Conv(self, node, attributes, name):
        x = self._rank(self._activation(node, 0), (4,), "input (2-D convolution)")
        weight = self._constant(node, 1)
        if weight.ndim != 4:
            raise _Refused(f"weight must be 4-D [O, I/g, kh, kw], got shape {weight.shape}")
        kernel = tuple(weight.shape[2:])
        if tuple(attributes.get("kernel_shape", kernel)) != kernel:
            raise _Refused(f"kernel_shape {attributes['kernel_shape']} disagrees with the weight {weight.shape}")
        strides, dilations = _pair(attributes, "strides", (1, 1)), _pair(attributes, "dilations", (1, 1))
        pads = self._pads(attributes, x.shape[2:], kernel, strides, dilations)
        group = attributes.get("group", 1)
        parameters = [self._parameter(node, 1, ("conv", group))]
        if self._input_name(node, 2):
            parameters.append(self._parameter(node, 2, ("conv.bias", self._source(node, 1), group)))
        return self._layer(name, "conv2d", [x], (*strides, *pads, *dilations, group), parameters)

    def _op_BatchNormalization(self, node, attributes, name):
        if attributes.get("training_mode", 0):
            raise _Refused("training_mode=1 is not supported (inference only)")
        parameters = [self._parameter(node, k, None) for k in range(1, 5)]
        return self._layer(name, "batchnorm", [self._activation(node, 0)], (attributes.get("epsilon", 1e-5),),
                           parameters)

    def _unary(op):
        return lambda self, node, attributes, name: self._layer(name, op, [self._activation(node, 0)])

    _op_Relu, _op_Sigmoid, _op_Identity = _unary("relu"), _unary("sigmoid"), _unary("identity")
    _op_GlobalAveragePool, _kcp_SoftArgmin = _unary("global_avg_pool"), _unary("soft_argmin")

    def _op_Dropout(self, node, attributes, name):
        training = self._constant(node, 2, required=False)
        if training is not None and bool(training):
            raise _Refused("training_mode=true is not supported (inference only)")
        return self._layer(name, "identity", [self._activation(node, 0)])

    def _op_LeakyRelu(self, node, attributes, name):
        return self._layer(name, "leaky_relu", [self._activation(node, 0)], (attributes.get("alpha", 0.01),))

    def _binary(op):
        def read(self, node, attributes, name):
            if any(self._input_name(node, k) in self.constants for k in (0, 1)):
                hint = " (a constant added to a MatMul's output is read as its bias)" if op == "add" else ""
                raise _Refused(f"kcp supports it between two computed tensors only{hint}")
            a, b = self._activation(node, 0), self._activation(node, 1)
            if a.shape != b.shape:
                raise _Refused(f"inputs must have equal shapes (no broadcasting), got {a.shape} and {b.shape}")
            return self._layer(name, op, [a, b])
        return read

    _op_Add, _op_Mul = _binary("add"), _binary("mul")
    del _unary, _binary

    def _op_Concat(self, node, attributes, name):
        inputs = [self._activation(node, k) for k in range(len(node.input))]
        if "axis" not in attributes:
            raise _Refused("needs an axis")
        self._axis(attributes, None, len(inputs[0].shape))
        return self._layer(name, "concat", inputs)

    def _op_Flatten(self, node, attributes, name):
        x = self._activation(node, 0)
        self._axis(attributes, 1, len(x.shape))
        return self._layer(name, "flatten", [x])

    def _op_Softmax(self, node, attributes, name):
        x = self._activation(node, 0)
        self._axis(attributes, -1, len(x.shape))
        return self._layer(name, "softmax", [x])

    def _pool(self, node, attributes, name, op):
        x = self._rank(self._activation(node, 0), (4,), "input (2-D pooling)")
        if "kernel_shape" not in attributes:
            raise _Refused("needs kernel_shape")
        kernel, strides = _pair(attributes, "kernel_shape", ()), _pair(attributes, "strides", (1, 1))
        if _pair(attributes, "dilations", (1, 1)) != (1, 1):
            raise _Refused("dilations other than 1 are not supported")
        pads = list(self._pads(attributes, x.shape[2:], kernel, strides, (1, 1)))
        include = int(attributes.get("count_include_pad", 0)) if op == "avg_pool" else 0
        if attributes.get("ceil_mode", 0):  # one more window at the end if it starts inside the input
            for axis in (0, 1):
                start_limit, full = x.shape[2 + axis] + pads[axis], x.shape[2 + axis] + pads[axis] + pads[axis + 2]
                count = -(-max(full - kernel[axis], 0) // strides[axis]) + 1
                if (count - 1) * strides[axis] >= start_limit:
                    count -= 1
                extra = (count - 1) * strides[axis] + kernel[axis] - full
                if extra > 0 and (include or 2 * (pads[axis + 2] + extra) > kernel[axis]):
                    raise _Refused("ceil_mode=1 is supported only where it adds at most half a kernel of end "
                                   "padding, without count_include_pad")
                pads[axis + 2] += max(extra, 0)
        return self._layer(name, op, [x], (*kernel, *strides, *pads, include))

    def _op_MaxPool(self, node, attributes, name):
        return self._pool(node, attributes, name, "max_pool")

    def _op_AveragePool(self, node, attributes, name):
        return self._pool(node, attributes, name, "avg_pool")

    def _op_Gemm(self, node, attributes, name):
        x = self._rank(self._activation(node, 0), (2,))
        if attributes.get("transA", 0):
            raise _Refused("transA=1 is not supported")
        b = self._constant(node, 1)
        if b.ndim != 2:
            raise _Refused(f"B must be a 2-D constant, got shape {b.shape}")
        alpha, beta, trans = attributes.get("alpha", 1.0), attributes.get("beta", 1.0), attributes.get("transB", 0)
        tag = ("" if trans else "T") + ("" if alpha == 1 else f"x{alpha:g}")
        parameters = [self._parameter(node, 1, "linear", lambda w: alpha * (w if trans else w.T), tag)]
        if self._input_name(node, 2):
            parameters.append(self._bias(node, 2, b.shape[0] if trans else b.shape[1], beta, self._source(node, 1)))
        return self._layer(name, "linear", [x], (), parameters)

    def _bias(self, node, k, outputs, scale, weight):
        c = self._constant(node, k)
        if c.size not in (1, outputs) or c.ndim > 2 or c.ndim == 2 and c.shape[0] != 1:
            raise _Refused(f"bias '{node.input[k]}' must have {outputs} entries, got shape {c.shape}")
        return self._parameter(node, k, ("linear.bias", weight), lambda c: scale * np.broadcast_to(
            c.reshape(-1), (outputs,)), "" if scale == 1 else f"x{scale:g}")

    def _op_MatMul(self, node, attributes, name):
        x = self._rank(self._activation(node, 0), (2,), "input (MatMul with a constant weight)")
        w = self._constant(node, 1)
        if w.ndim != 2:
            raise _Refused(f"weight must be a 2-D constant, got shape {w.shape}")
        parameters = [self._parameter(node, 1, "linear", lambda w: w.T, "T")]
        add = self._bias_add(node, w.shape[1])
        if add is not None:
            bias = next(k for k in (0, 1) if add.input[k] != node.output[0])
            parameters.append(self._bias(add, bias, w.shape[1], 1, self._source(node, 1)))
            self.fused.add(id(add))
        value = self._layer(name, "linear", [x], (), parameters)
        if add is not None:
            self.values[add.output[0]] = value
        return value

    def _bias_add(self, node, outputs):
        """The Add node that adds a constant bias to ``node``'s output and is its only reader, or None."""
        users = self.consumers.get(node.output[0], [])
        if len(users) != 1 or node.output[0] in self.graph_outputs:
            return None
        add = users[0]
        if add.op_type != "Add" or add.domain not in ("", "ai.onnx") or len(add.input) != 2:
            return None
        other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
        return add if other in self.constants and self.constants[other].size == outputs else None

    def _op_Resize(self, node, attributes, name):
        x = self._rank(self._activation(node, 0), (4,))
        scales, sizes = self._constant(node, 2, required=False), self._constant(node, 3, required=False)
        if scales is not None and scales.size:
            factors = [float(s) for s in scales.reshape(-1)]
        elif sizes is not None and sizes.size:
            axes = attributes.get("axes", range(4))
            factors = [int(s) / x.shape[a] for s, a in zip(sizes.reshape(-1), axes)]
        else:
            raise _Refused("needs constant scales or sizes")
        if "axes" in attributes:
            full = [1.0] * 4
            for axis, factor in zip(attributes["axes"], factors):
                full[axis % 4] = factor
            factors = full
        return self._upsample(node, name, x, factors, attributes.get("mode", "nearest"),
                              attributes.get("coordinate_transformation_mode", "half_pixel"),
                              attributes.get("nearest_mode", "round_prefer_floor"))

    def _op_Upsample(self, node, attributes, name):
        x = self._rank(self._activation(node, 0), (4,))
        scales = attributes["scales"] if "scales" in attributes else self._constant(node, 1)
        return self._upsample(node, name, x, [float(s) for s in np.reshape(scales, -1)],
                              attributes.get("mode", "nearest"), "asymmetric", "floor")

    def _upsample(self, node, name, x, factors, mode, transform, rounding):
        scale = round(factors[2]) if len(factors) == 4 else 0
        if len(factors) != 4 or factors[:2] != [1, 1] or factors[2] != factors[3] or scale < 1 \
                or abs(factors[2] - scale) > 1e-6:
            raise _Refused(f"kcp upsamples H and W by one integer factor, got scales {factors}")
        if mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel"):
            return self._layer(name, "upsample", [x], (scale, 1))
        if mode == "nearest" and all(_nearest_index(i, scale, size, transform, rounding) == i // scale
                                     for size in x.shape[2:] for i in range(size * scale)):
            return self._layer(name, "upsample", [x], (scale, 0))
        detail = f", nearest_mode {rounding!r}" if mode == "nearest" else ""
        raise _Refused(f"mode {mode!r} with coordinate_transformation_mode {transform!r}{detail} is not supported "
                       "(kcp: nearest as asymmetric/floor, or linear with half_pixel)")

    def _kcp_Correlation(self, node, attributes, name):
        if "max_disparity" not in attributes or "scale" not in attributes:
            raise _Refused("needs the attributes max_disparity and scale")
        left, right = self._activation(node, 0), self._activation(node, 1)
        return self._layer(name, "correlation", [left, right], (attributes["max_disparity"], attributes["scale"]))

