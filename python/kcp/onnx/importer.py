"""ONNX in: :func:`from_onnx` builds a :class:`~kcp.Network` from a model.

Errors are one-line ``ValueError`` s naming the node (or input, or file).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np

from .. import _arguments
from ..network import ACTIVATIONS, BINARY, COST_VOLUMES, Network, pool_form
from .._native import KCPError
from . import folding
from .format import DOMAIN, fresh_name, onnx_module, remember_form


def from_onnx(model: str | os.PathLike | bytes | Any) -> Network:
    """A :class:`~kcp.Network` from an ONNX model: a path, serialized bytes or a ``ModelProto``.

    The model uses opset 13 or later. Shape arithmetic (Shape, Gather, Slice,
    Concat, Cast, Unsqueeze, integer arithmetic, ConstantOfShape, Range,
    Reshape... of constants) is folded into constants as the graph is read
    (:mod:`kcp.onnx.folding`; the batch reads as 1), so files written by
    ``torch.onnx.export`` read as written. The ops:

    - Conv and ConvTranspose (2-D, or 3-D on ``[N, C, D, H, W]``),
      BatchNormalization (any rank), Gemm, MatMul with a constant weight (and a
      following bias Add); a zero-constant Pad of H and W folds into the 2-D Convs
      reading it;
    - Relu, LeakyRelu, Sigmoid, Tanh, Clip (Relu6), HardSwish, HardSigmoid,
      Elu, Softplus, Mish, Gelu, and the decompositions PyTorch writes for
      exact GELU (``x * 0.5 * (1 + Erf(x / sqrt 2))``), SiLU (``x *
      Sigmoid(x)``) and Mish;
    - Add, Sub, Mul, Div: of two tensors (NumPy broadcasting, equal ranks), or
      of a tensor and a constant (a scalar: an affine activation; else a
      constant operand broadcast over the batch);
    - Concat (axis 1), Flatten, Reshape to ``[N, C*H*W]``, Squeeze of a
      ``[N, C, 1, 1]`` tensor, Softmax (axis 1), Identity, Dropout;
    - InstanceNormalization, GroupNormalization (opset 18's per-group or 21's
      per-channel scale), GroupNorm as PyTorch writes it before opset 18
      (Reshape to ``[N, G, -1]``, InstanceNormalization, Reshape back, Mul
      and Add per channel), LayerNormalization over the channels (of
      ``[N, C]``, or over the last axis between a Transpose to channels-last
      ``[0, 2, 3, 1]`` and one back ``[0, 3, 1, 2]``: ConvNeXt), also written
      out (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add). A
      channels-last tensor also passes through elementwise ops with scalar
      constants, and a MatMul with a constant weight (and a bias Add) is a
      1x1 Conv there;
    - MaxPool and AveragePool (2-D or 3-D; pads, ceil_mode, dilations),
      GlobalAveragePool, GlobalMaxPool, ReduceMean and ReduceMax over H and W;
    - Resize on H and W, or D, H and W (nearest as PyTorch computes it, or
      linear with half-pixel centers or aligned corners: bilinear, trilinear),
      and Upsample on H and W;
    - other elementwise ops (Erf, Abs, Exp, Sqrt, Pow, Max, Min, a spatial
      Pad...): kcp prunes, compacts and exports them (as the op they came
      from) but does not run them natively;
    - kcp's ``ai.kcp.Correlation`` and ``ai.kcp.SoftArgmin``.

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
    return _per_axis(attributes, key, default, 2)


def _per_axis(attributes, key, default, axes):
    """The ``axes`` entries of attribute ``key`` (2 for H and W, 3 for D, H and W)."""
    value = tuple(attributes.get(key, default))
    if len(value) != axes:
        raise _Refused(f"{key} must have {axes} entries ({axes}-D), got {list(value)}")
    return value


def _nearest_indices(scale, size, out, transform, rounding):
    """Source indices of the ``out`` outputs of ONNX Resize nearest of ``size``
    by ``scale`` (None: not a mode we know), computed as arrays: ``out`` may be large."""
    i = np.arange(out, dtype=np.float64)
    x = {"half_pixel": lambda: (i + 0.5) / scale - 0.5,
         "pytorch_half_pixel": lambda: (i + 0.5) / scale - 0.5 if out > 1 else np.zeros(out),
         "asymmetric": lambda: i / scale, "tf_half_pixel_for_nn": lambda: (i + 0.5) / scale,
         "align_corners": lambda: i * (size - 1) / (out - 1) if out > 1 else np.zeros(out)}.get(transform)
    rounded = {"floor": np.floor, "ceil": np.ceil, "round_prefer_floor": lambda v: np.ceil(v - 0.5),
               "round_prefer_ceil": lambda v: np.floor(v + 0.5)}.get(rounding)
    return None if x is None or rounded is None else np.clip(rounded(x()), 0, size - 1).astype(np.int64)


_FLOAT_MAX = float(np.finfo(np.float32).max)

# Elementwise ops the engine has no kernel for: read as "channelwise" layers
# (each output channel depends only on the same channel of every input).
_CHANNELWISE = {"Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Celu", "Cos", "Cosh", "Erf", "Exp",
                "Floor", "Log", "Reciprocal", "Round", "Selu", "Shrink", "Sign", "Sin", "Sinh", "Softsign", "Sqrt",
                "Tan", "ThresholdedRelu", "Pow", "Mod", "Sum", "Mean"}

# Ops whose output is elementwise in their computed inputs (and so in either layout).
_ELEMENTWISE = {"Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip", "HardSwish", "HardSigmoid", "Elu", "Softplus",
                "Mish", "Gelu", "Neg", "Identity", "Dropout", "Cast", "Add", "Sub", "Mul", "Div", "Max", "Min",
                *_CHANNELWISE}
# Ops that read channels-last tensors (see _Importer.channels_last).
_CHANNELS_LAST_READERS = _ELEMENTWISE | {"LayerNormalization", "MatMul", "Transpose", "ReduceMean"}
# Folded ops that keep a constant's values, only reshaped.
_RESHAPES = {"Reshape", "Unsqueeze", "Squeeze", "Flatten"}


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
        # Outputs that are no kcp value but a step of a pattern a later node completes:
        # {name: _Deferred} (a zero Pad the Convs reading it absorb, ShuffleNet's 5-D view and its transpose).
        self.deferred = {}
        # Outputs in channels-last layout [N, H, W, C] (after a Transpose [0, 2, 3, 1]) whose kcp value is the
        # same tensor as [N, C, H, W]; see _check_channels_last.
        self.channels_last = set()

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
        nodes = list(enumerate(self.graph.node))
        # Constant nodes first: the fusions look ahead at constants that exporters write just before their use.
        for index, node in [(i, n) for i, n in nodes if n.op_type == "Constant" and n.domain in ("", "ai.onnx")] + \
                [(i, n) for i, n in nodes if n.op_type != "Constant" or n.domain not in ("", "ai.onnx")]:
            if id(node) in self.fused:
                self._keep_layout(node)
                continue
            try:
                self._node(node)
                continue
            except (_Refused, folding.FoldingError) as error:
                reason = str(error)
            except (TypeError, ValueError, AttributeError, IndexError, KeyError, ArithmeticError) as error:
                reason = f"malformed attributes or inputs ({type(error).__name__}: {error})"
            raise ValueError(f"node '{node.name or (node.output or ['#' + str(index)])[0]}' "
                             f"({node.op_type}): {reason}")
        if not self.graph.output:
            raise ValueError("model: the graph has no outputs")
        for output in self.graph.output:
            if output.name not in self.values:
                what = ("a constant" if output.name in self.constants else self.deferred[output.name].what
                        if output.name in self.deferred else "not produced by any node (truncated?)")
                raise ValueError(f"graph output '{output.name}' is {what}")
            if output.name in self.channels_last:
                raise ValueError(f"graph output '{output.name}' is channels-last (a Transpose [0, 2, 3, 1] without "
                                 "the Transpose back); kcp's outputs are channels-first")
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
        if not node.output or not node.output[0]:
            raise _Refused("has no output")
        attributes = _attributes(node)
        if op == "Identity" and node.input and node.input[0] in self.constants:  # an alias of a weight
            self.constants[node.output[0]] = self.constants[node.input[0]]
            self.origin[node.output[0]] = self.origin.get(node.input[0], node.input[0])
            return
        if standard and self._foldable(node):
            inputs = [None if not name else self.constants[name] if name in self.constants
                      else folding.placeholder(self._known_shape(name)) for name in node.input]
            for name, array in zip(node.output, folding.evaluate(op, inputs, attributes)):
                if name:
                    self.constants[name] = array
            if op in _RESHAPES and node.input[0] in self.constants:  # the same values: named after their source
                self.origin[node.output[0]] = self._source(node, 0)
            return
        if any(name in self.channels_last for name in node.input):
            self._check_channels_last(node, op)
        handler = getattr(self, f"_op_{op}" if standard else f"_kcp_{node.op_type}", None)
        if handler is None and standard and op in _CHANNELWISE:
            handler = self._channelwise
        if handler is None or not standard and node.domain != DOMAIN:
            raise _Refused(f"unsupported op type '{op}'")
        for k, name in enumerate(node.output[1:], 1):
            if name and (name in self.consumers or name in self.graph_outputs) and op != "Split":
                raise _Refused(f"output {k} ('{name}') is not supported")
        value = handler(node, attributes, fresh_name(node.name or node.output[0], self.layer_names))
        for output, value in zip(node.output, value if isinstance(value, list) else [value]):
            if output and value is not None:
                self.values[output] = value
        if op != "Transpose":  # a Transpose sets the layout itself
            self._keep_layout(node)

    def _keep_layout(self, node):
        """Marks ``node``'s outputs channels-last where an input is."""
        if any(name in self.channels_last for name in node.input):
            self.channels_last.update(node.output)

    def _check_channels_last(self, node, op):
        """Refuses ``node`` unless it reads its channels-last inputs as kcp can:
        all its computed inputs channels-last, and an op of
        :data:`_CHANNELS_LAST_READERS` (elementwise ones with scalar constants only)."""
        first = next(name for name in node.input if name in self.channels_last)
        if op not in _CHANNELS_LAST_READERS:
            raise _Refused(f"input '{first}' is channels-last (a Transpose [0, 2, 3, 1]); kcp reads channels-last "
                           "tensors only in LayerNormalization over the last axis (or written out), MatMul with "
                           "a constant weight, elementwise ops and the Transpose back [0, 3, 1, 2]")
        for name in node.input:
            if name in self.values and name not in self.channels_last:
                raise _Refused(f"input '{name}' is channels-first and input '{first}' channels-last")
            if op in _ELEMENTWISE and name in self.constants and self.constants[name].size > 1:
                raise _Refused(f"constant '{name}' of shape {self.constants[name].shape} on the channels-last input "
                               f"'{first}': kcp reads only scalar constants there")

    def _foldable(self, node):
        """Whether every input of ``node`` is known (a constant, or a computed tensor's shape for Shape and Size)."""
        if not folding.foldable(node.op_type):
            return False
        return all(not name or name in self.constants
                   or k == 0 and folding.shape_only(node.op_type) and self._known_shape(name) is not None
                   for k, name in enumerate(node.input))

    def _known_shape(self, name):
        if name in self.values:
            shape = self.values[name].shape
            return (shape[0], *shape[2:], shape[1]) if name in self.channels_last else shape
        return self.deferred[name].shape if name in self.deferred else None

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
        if name in self.deferred:
            raise _Refused(f"input '{name}' is {self.deferred[name].what}")
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
            raise _Refused(f"input '{name}' must be a constant (an initializer, a Constant node's output or "
                           "shape arithmetic on them)")
        raise _Refused(f"input '{name}' is not an initializer, a Constant node's output or an earlier node's "
                       "output (missing initializer?)")

    def _scalar(self, name):
        """The value of constant ``name`` if it holds one number, else None."""
        array = self.constants.get(name)
        return float(array.reshape(-1)[0]) if array is not None and array.size == 1 else None

    def _only_reader(self, name, op):
        """The one node reading ``name`` if it is a standard ``op`` node and ``name``
        is not a graph output, else None."""
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.graph_outputs:
            return None
        user = users[0]
        return user if user.op_type == op and user.domain in ("", "ai.onnx") and id(user) not in self.fused else None

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

    def _pads(self, attributes, size, kernel, strides, dilations):
        """``(top, left, bottom, right)`` (or ``(front, top, left, back, bottom, right)`` for a 3-D ``size``)
        from ``pads`` or ``auto_pad``."""
        auto = attributes.get("auto_pad", "NOTSET")
        if auto == "NOTSET":
            return _per_axis(attributes, "pads", (0,) * (2 * len(size)), 2 * len(size))
        if auto == "VALID":
            return (0,) * (2 * len(size))
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            raise _Refused(f"auto_pad {auto!r} is not supported")
        begin, end = [], []
        for n, k, s, d in zip(size, kernel, strides, dilations):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            begin.append(total // 2 if auto == "SAME_UPPER" else total - total // 2)
            end.append(total - begin[-1])
        return (*begin, *end)

    # -- kcp layers ----------------------------------------------------------

    def _activation_layer(self, name, x, kind, alpha=0.0, beta=0.0):
        return self._layer(name, "activation", [x], (ACTIVATIONS[kind], alpha, beta))

    def _binary_layer(self, name, kind, inputs, constant_first=False, parameters=()):
        return self._layer(name, "binary", inputs, (BINARY[kind], int(constant_first)), parameters)

    def _channelwise(self, node, attributes, name, shape=None, operands=None):
        """A ``channelwise`` layer computing ``node`` (kept to export it back).

        ``shape``: the output shape (default: the inputs broadcast); ``operands``:
        the input positions that broadcast against the data (default: all).
        """
        values, form_inputs, shapes = [], [], []
        for k, input_name in enumerate(node.input):
            if not input_name:
                form_inputs.append(None)
            elif input_name in self.constants:
                form_inputs.append(self.constants[input_name])
                if operands is None or k in operands:
                    shapes.append(("constant", input_name, self.constants[input_name].shape))
            else:
                form_inputs.append(len(values))
                values.append(self._activation(node, k))
                shapes.append(("value", input_name, values[-1].shape))
        if not values:
            raise _Refused("needs a computed input")
        rank = len(values[0].shape)
        for kind, input_name, input_shape in shapes:
            if len(input_shape) > rank or kind == "value" and len(input_shape) != rank:
                raise _Refused(f"input '{input_name}' of shape {input_shape} does not broadcast on the data "
                               f"{values[0].shape}")
            aligned = (1,) * (rank - len(input_shape)) + tuple(input_shape)
            if kind == "constant" and (aligned[0] != 1 or rank > 1 and aligned[1] != 1):
                raise _Refused(f"constant '{input_name}' of shape {input_shape} varies along the batch or the "
                               "channels, which kcp cannot prune with it")
        if shape is None:
            try:
                shape = np.broadcast_shapes(*(s for _, _, s in shapes))
            except ValueError:
                raise _Refused(f"inputs of shapes {[s for _, _, s in shapes]} do not broadcast") from None
        value = self._layer(name, "channelwise", values, tuple(int(d) for d in shape[1:]))
        remember_form(self.net, name, {"op_type": node.op_type, "domain": node.domain,
                                       "attributes": [_copy(a) for a in node.attribute], "inputs": form_inputs})
        return value

    # -- ops (each returns the kcp value of the node's first output, or None) ----

    def _op_Conv(self, node, attributes, name):
        x, extra, size = self._padded_input(node)
        axes = len(self._rank(x, (4, 5), "input (2-D or 3-D convolution)").shape) - 2
        kernel = self._conv_kernel(node, attributes, axes)
        strides, dilations = (_per_axis(attributes, key, (1,) * axes, axes) for key in ("strides", "dilations"))
        pads = self._pads(attributes, size[2:], kernel, strides, dilations)
        pads = tuple(p + e for p, e in zip(pads, extra)) if axes == 2 else pads
        group = attributes.get("group", 1)
        parameters = [self._parameter(node, 1, ("conv", group))]
        if self._input_name(node, 2):
            parameters.append(self._parameter(node, 2, ("conv.bias", self._source(node, 1), group)))
        return self._layer(name, "conv2d" if axes == 2 else "conv3d", [x], (*strides, *pads, *dilations, group),
                           parameters)

    def _conv_kernel(self, node, attributes, axes):
        """The kernel sizes of a Conv's or ConvTranspose's weight over ``axes`` spatial axes (4-D or 5-D),
        checked against ``kernel_shape``."""
        weight = self._constant(node, 1)
        if weight.ndim != axes + 2:
            layout = "[O, I/g, kh, kw]" if axes == 2 else "[O, I/g, kd, kh, kw]"
            raise _Refused(f"weight must be {axes + 2}-D {layout} (I and O swapped for ConvTranspose), "
                           f"got shape {weight.shape}")
        kernel = tuple(weight.shape[2:])
        if tuple(attributes.get("kernel_shape", kernel)) != kernel:
            raise _Refused(f"kernel_shape {attributes['kernel_shape']} disagrees with the weight {weight.shape}")
        return kernel

    def _op_ConvTranspose(self, node, attributes, name):
        x = self._rank(self._activation(node, 0), (4, 5), "input (2-D or 3-D transposed convolution)")
        axes = len(x.shape) - 2
        kernel = self._conv_kernel(node, attributes, axes)
        if "output_shape" in attributes or attributes.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise _Refused("output_shape and auto_pad SAME_* are not supported (give pads and output_padding)")
        strides, dilations = (_per_axis(attributes, key, (1,) * axes, axes) for key in ("strides", "dilations"))
        pads = self._pads(attributes, x.shape[2:], kernel, strides, dilations)
        group = attributes.get("group", 1)
        parameters = [self._parameter(node, 1, ("conv_transpose", group))]
        if self._input_name(node, 2):
            parameters.append(self._parameter(node, 2, ("conv_transpose.bias", self._source(node, 1), group)))
        output_padding = _per_axis(attributes, "output_padding", (0,) * axes, axes)
        return self._layer(name, "conv_transpose2d" if axes == 2 else "conv_transpose3d", [x],
                           (*strides, *pads, *output_padding, *dilations, group), parameters)

    def _padded_input(self, node):
        """``(value, extra (top, left, bottom, right) padding, shape)`` of input 0, through a folded zero Pad."""
        deferred = self.deferred.get(self._input_name(node, 0))
        if deferred is not None and deferred.kind == "zero_pad":
            return deferred.value, deferred.detail, deferred.shape
        x = self._activation(node, 0)
        return x, (0, 0, 0, 0), x.shape

    def _op_Pad(self, node, attributes, name):
        x = self._activation(node, 0)
        rank = len(x.shape)
        pads = [int(p) for p in self._constant(node, 1).reshape(-1)]
        axes = self._constant(node, 3, required=False)
        axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes.reshape(-1)]
        if len(pads) != 2 * len(axes):
            raise _Refused(f"pads has {len(pads)} entries for {len(axes)} axes")
        full = [0] * (2 * rank)
        for i, axis in enumerate(axes):
            full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
        if rank < 3 or any(full[a] or full[rank + a] for a in (0, 1)):
            raise _Refused(f"kcp pads only the spatial axes, got pads {pads} of a {rank}-D input")
        shape = tuple(d + full[a] + full[rank + a] for a, d in enumerate(x.shape))
        if min(shape) < 1:
            raise _Refused(f"pads {pads} leave nothing of the input {x.shape}")
        fill = self._constant(node, 2, required=False)
        zero = attributes.get("mode", "constant") == "constant" and (fill is None or fill.size == 0 or not fill.any())
        readers = self.consumers.get(node.output[0], [])
        if (zero and rank == 4 and min(full) >= 0 and readers and node.output[0] not in self.graph_outputs
                and all(r.op_type == "Conv" and r.domain in ("", "ai.onnx") and list(r.input[:1]) == [node.output[0]]
                        for r in readers)):
            self.deferred[node.output[0]] = _Deferred("zero_pad", x, shape, (full[2], full[3], full[6], full[7]),
                                                      "a zero Pad that kcp folds into the Convs reading it")
            return None
        return self._channelwise(node, attributes, name, shape=shape, operands=(0,))

    def _op_BatchNormalization(self, node, attributes, name):
        if attributes.get("training_mode", 0):
            raise _Refused("training_mode=1 is not supported (inference only)")
        parameters = [self._parameter(node, k, None) for k in range(1, 5)]
        return self._layer(name, "batchnorm", [self._activation(node, 0)], (attributes.get("epsilon", 1e-5),),
                           parameters)

    def _op_InstanceNormalization(self, node, attributes, name):
        """InstanceNorm; of a view of the channels in groups (a Reshape to ``[N, G, -1]``), GroupNorm as
        PyTorch writes it before opset 18, made when the Reshape back comes."""
        epsilon = attributes.get("epsilon", 1e-5)
        deferred = self.deferred.get(self._input_name(node, 0))
        if deferred is None or deferred.kind != "channel_groups":
            x = self._rank(self._activation(node, 0), (4,))
            weight, bias = (self._affine(node, k, x.shape[1], x.shape[1], name) for k in (1, 2))
            return self._normalization(name, x, x.shape[1], True, epsilon, weight, bias)
        x, groups = deferred.value, deferred.detail
        weight, bias, fused = self._group_affine(node, x, groups, name)
        self.deferred[node.output[0]] = _Deferred("group_normalized", x, deferred.shape,
                                                  (name, groups, epsilon, weight, bias, fused),
                                                  "GroupNorm's normalised groups, which need a Reshape back")
        return None

    def _group_affine(self, node, x, groups, name):
        """Weight, bias and the nodes to fuse of GroupNorm written with the ``InstanceNormalization``
        ``node``: where its scale is 1 and its bias 0, the Mul and Add per channel after the Reshape back
        (as PyTorch writes them); else its scale and bias, repeated per channel."""
        scale, shift = self._constant(node, 1), self._constant(node, 2)
        back = self._only_reader(node.output[0], "Reshape")
        mul = back and self._channel_operand(back.output[0], "Mul", x, False)
        if mul is None or scale.size != groups or (scale != 1).any() or shift.any():
            return (*(self._affine(node, k, groups, x.shape[1], name) for k in (1, 2)), [])
        add = self._channel_operand(mul[0].output[0], "Add", x, False)
        weight = self._parameter(*mul, None, lambda a: a.reshape(-1))
        if add is None:
            return weight, self._affine(node, 2, groups, x.shape[1], name), [mul[0]]
        return weight, self._parameter(*add, None, lambda a: a.reshape(-1)), [mul[0], add[0]]

    def _channel_operand(self, name, op, x, channels_last):
        """``(node, k)``: the ``op`` node that is ``name``'s only reader, with constant input ``k`` one value
        per channel of ``x`` (``[C, 1, 1]`` against ``[N, C, H, W]``, ``[C]`` if channels-last); else None."""
        user = self._only_reader(name, op)
        other = user and _other(user, name)
        if other not in self.constants:
            return None
        c, rank = self.constants[other], len(x.shape)
        aligned = (1,) * (rank - c.ndim) + tuple(c.shape)
        if c.ndim > rank or c.size != x.shape[1] or aligned[rank - 1 if channels_last else 1] != x.shape[1]:
            return None
        return user, list(user.input).index(other)

    def _op_GroupNormalization(self, node, attributes, name):
        x = self._rank(self._activation(node, 0), (4,))
        groups, channels = attributes["num_groups"], x.shape[1]
        if groups < 1 or channels % groups:
            raise _Refused(f"num_groups {groups} does not divide {channels} channels")
        entries = channels if self.opset >= 21 else groups  # opset 18 scales and shifts per group
        weight, bias = (self._affine(node, k, entries, channels, name) for k in (1, 2))
        return self._normalization(name, x, groups, True, attributes.get("epsilon", 1e-5), weight, bias)

    def _op_LayerNormalization(self, node, attributes, name):
        x = self._activation(node, 0)
        channels_last, rank, axis = node.input[0] in self.channels_last, len(x.shape), attributes.get("axis", -1)
        if not (channels_last and axis % rank == 3 or rank == 2 and axis % rank == 1):
            raise _Refused(f"kcp reads LayerNormalization over the channels only: over the last axis of [N, C] or "
                           f"of a channels-last tensor (after a Transpose [0, 2, 3, 1]); got axis {axis} of "
                           f"{'channels-last ' if channels_last else ''}{self._known_shape(node.input[0])}")
        weight, bias = (self._affine(node, k, x.shape[1], x.shape[1], name) for k in (1, 2))
        return self._normalization(name, x, 1, False, attributes.get("epsilon", 1e-5), weight, bias)

    def _affine(self, node, k, entries, channels, name):
        """Scale (``k`` 1) or bias (2) of a normalization ``node``, ``entries`` values (per channel or per
        group), as a parameter per channel; a missing bias is zeros."""
        if k == 2 and not self._input_name(node, k):
            return fresh_name(f"{name}.bias", self.parameter_names), np.zeros(channels, np.float32)
        c = self._constant(node, k)
        if c.size != entries:
            raise _Refused(f"{('scale', 'bias')[k - 1]} '{node.input[k]}' must have {entries} entries, got "
                           f"shape {c.shape}")
        return self._parameter(node, k, None, lambda a: np.repeat(a.reshape(-1), channels // entries))

    def _normalization(self, name, x, groups, spatial, epsilon, weight, bias):
        """A ``normalization`` layer; its statistics mask counts every channel."""
        mask = fresh_name(f"{name}.statistics_mask", self.parameter_names), np.ones(x.shape[1], np.float32)
        return self._layer(name, "normalization", [x], (groups, int(spatial), epsilon), [weight, bias, mask])

    @staticmethod
    def _unary(op):
        return lambda self, node, attributes, name: self._layer(name, op, [self._activation(node, 0)])

    _op_Identity = _unary("identity")
    _op_GlobalAveragePool = _unary("global_avg_pool")
    del _unary

    def _kcp_SoftArgmin(self, node, attributes, name):
        # Files written before the sign existed hold GC-Net's softmax(-x).
        return self._layer(name, "soft_argmin", [self._activation(node, 0)], (attributes.get("sign", -1.0),))

    @staticmethod
    def _activation_op(kind, *defaults):
        """An ONNX activation read as ``kind``; ``defaults``: ``(attribute, default)`` giving alpha and beta."""
        def read(self, node, attributes, name):
            numbers = [float(attributes.get(key, default)) for key, default in defaults]
            return self._activation_layer(name, self._activation(node, 0), kind, *numbers)
        return read

    _op_Relu, _op_Tanh, _op_HardSwish = _activation_op("relu"), _activation_op("tanh"), _activation_op("hardswish")
    _op_LeakyRelu = _activation_op("leaky_relu", ("alpha", 0.01))
    _op_HardSigmoid = _activation_op("hardsigmoid", ("alpha", 0.2), ("beta", 0.5))
    _op_Elu = _activation_op("elu", ("alpha", 1.0))
    _op_Mish = _activation_op("mish")
    del _activation_op

    def _op_Sigmoid(self, node, attributes, name):
        x = self._activation(node, 0)
        gate = self._only_reader(node.output[0], "Mul")  # x * Sigmoid(x): SiLU
        if gate is not None and node.input[0] in gate.input:
            return self._fuse(name, x, "silu", [gate])
        return self._activation_layer(name, x, "sigmoid")

    def _op_Softplus(self, node, attributes, name):
        x = self._activation(node, 0)
        tanh = self._only_reader(node.output[0], "Tanh")  # x * Tanh(Softplus(x)): Mish
        gate = tanh and self._only_reader(tanh.output[0], "Mul")
        if gate is not None and node.input[0] in gate.input:
            return self._fuse(name, x, "mish", [tanh, gate])
        return self._activation_layer(name, x, "softplus", 1.0, 20.0)  # PyTorch's beta and threshold

    def _op_Gelu(self, node, attributes, name):
        approximate = attributes.get("approximate", "none")
        if approximate not in ("none", "tanh"):
            raise _Refused(f"approximate {approximate!r} is not supported")
        return self._activation_layer(name, self._activation(node, 0), "gelu" if approximate == "none" else "gelu_tanh")

    def _fuse(self, name, x, kind, nodes):
        """One activation layer for a chain ending in ``nodes[-1]``; the nodes are skipped."""
        value = self._activation_layer(name, x, kind)
        self.fused.update(id(n) for n in nodes)
        self.values[nodes[-1].output[0]] = value
        return value

    def _gelu(self, node):
        """The nodes after ``node`` (x / sqrt 2 or x * (1 / sqrt 2)) of PyTorch's exact GELU
        ``x * 0.5 * (1 + Erf(x / sqrt 2))``, with x its computed input, or None."""
        if len(node.input) != 2:
            return None
        x = next((k for k in (0, 1) if node.input[k] in self.values), None)
        scale = self._scalar(node.input[1 - x]) if x is not None else None
        if scale is None or not (node.op_type == "Div" and x == 0 and np.isclose(scale, math.sqrt(2), rtol=1e-6)
                                 or node.op_type == "Mul" and np.isclose(scale, math.sqrt(0.5), rtol=1e-6)):
            return None
        erf = self._only_reader(node.output[0], "Erf")
        add = erf and self._only_reader(erf.output[0], "Add")
        if add is None or self._scalar(_other(add, erf.output[0])) != 1:
            return None
        first = self._only_reader(add.output[0], "Mul")
        second = first and self._only_reader(first.output[0], "Mul")
        if second is None:
            return None
        a, b = _other(first, add.output[0]), _other(second, first.output[0])
        if not (a == node.input[x] and self._scalar(b) == 0.5 or self._scalar(a) == 0.5 and b == node.input[x]):
            return None
        return [erf, add, first, second], self.values[node.input[x]]

    @staticmethod
    def _arithmetic(kind):
        def read(self, node, attributes, name):
            if kind in ("mul", "div"):
                gelu = self._gelu(node)
                if gelu is not None:
                    nodes, x = gelu
                    return self._fuse(name, x, "gelu", nodes)
            if len(node.input) != 2:
                raise _Refused("needs two inputs")
            constant = [self._input_name(node, k) in self.constants for k in (0, 1)]
            if not any(constant):
                a, b = self._activation(node, 0), self._activation(node, 1)
                if len(a.shape) != len(b.shape) or any(p != q and 1 not in (p, q) for p, q in zip(a.shape, b.shape)):
                    raise _Refused(f"inputs of shapes {a.shape} and {b.shape} do not broadcast (kcp broadcasts "
                                   "tensors of equal rank)")
                return self._binary_layer(name, kind, [a, b])
            first = constant[0]
            x = self._activation(node, 1 if first else 0)
            c = self._constant(node, 0 if first else 1)
            rank = len(x.shape)
            if c.size == 1 and c.ndim <= rank and not (kind == "div" and (first or float(c.reshape(-1)[0]) == 0)):
                s = float(c.reshape(-1)[0])
                alpha, beta = {"add": (1.0, s), "sub": (-1.0, s) if first else (1.0, -s), "mul": (s, 0.0),
                               "div": (1.0 / s if s else 0.0, 0.0)}[kind]
                return self._activation_layer(name, x, "affine", alpha, beta)
            aligned = (1,) * (rank - c.ndim) + tuple(c.shape)
            if c.ndim > rank or aligned[0] != 1 or any(q not in (1, p) for p, q in zip(x.shape[1:], aligned[1:])):
                hint = " (a constant added to a MatMul's output is read as its bias)" if kind == "add" else ""
                raise _Refused(f"constant '{node.input[0 if first else 1]}' of shape {c.shape} does not broadcast on "
                               f"the input {x.shape} without changing its shape{hint}")
            parameter = self._parameter(node, 0 if first else 1, None, lambda a: a.reshape(aligned[1:]))
            return self._binary_layer(name, kind, [x], first, [parameter])
        return read

    _op_Add, _op_Sub, _op_Mul, _op_Div = _arithmetic("add"), _arithmetic("sub"), _arithmetic("mul"), _arithmetic("div")
    del _arithmetic

    def _op_Neg(self, node, attributes, name):
        return self._activation_layer(name, self._activation(node, 0), "affine", -1.0, 0.0)

    def _op_Clip(self, node, attributes, name):
        bounds = [self._input_name(node, k) for k in (1, 2)]
        if any(b and b not in self.constants for b in bounds):  # bounds computed from the graph
            return self._channelwise(node, attributes, name)
        low, high = (self._scalar(b) if b else None for b in bounds)
        x = self._activation(node, 0)
        if low == 0 and high is None:
            return self._activation_layer(name, x, "relu")
        return self._activation_layer(name, x, "clip", -_FLOAT_MAX if low is None else max(low, -_FLOAT_MAX),
                                      _FLOAT_MAX if high is None else min(high, _FLOAT_MAX))

    def _op_Cast(self, node, attributes, name):
        if attributes.get("to") != 1:  # FLOAT
            raise _Refused(f"kcp computes in float32; a Cast of a computed tensor to type {attributes.get('to')} "
                           "is not supported")
        return self._layer(name, "identity", [self._activation(node, 0)])

    @staticmethod
    def _extremum(clip):
        def read(self, node, attributes, name):
            """Max or Min of a tensor and scalar constants is a clip, else channelwise."""
            scalars = [self._scalar(n) for n in node.input if n in self.constants]
            computed = [k for k, n in enumerate(node.input) if n not in self.constants]
            if len(computed) != 1 or None in scalars or not scalars:
                return self._channelwise(node, attributes, name)
            x = self._activation(node, computed[0])
            bound = max(scalars) if clip == "low" else min(scalars)
            if clip == "low" and bound == 0:
                return self._activation_layer(name, x, "relu")
            low, high = (bound, _FLOAT_MAX) if clip == "low" else (-_FLOAT_MAX, bound)
            return self._activation_layer(name, x, "clip", max(low, -_FLOAT_MAX), min(high, _FLOAT_MAX))
        return read

    _op_Max, _op_Min = _extremum("low"), _extremum("high")
    del _extremum

    def _op_PRelu(self, node, attributes, name):
        """A scalar slope: a leaky relu; one per channel: ``relu(x) + (-slope) * relu(-x)``."""
        x, slope = self._activation(node, 0), self._constant(node, 1)
        if slope.size == 1:
            return self._activation_layer(name, x, "leaky_relu", float(slope.reshape(-1)[0]))
        rank = len(x.shape)
        aligned = (1,) * (rank - slope.ndim) + tuple(slope.shape)
        if slope.ndim > rank or aligned[0] != 1 or any(q not in (1, p) for p, q in zip(x.shape[1:], aligned[1:])):
            raise _Refused(f"slope of shape {slope.shape} does not broadcast on the input {x.shape}")
        part = lambda suffix: fresh_name(f"{name}.{suffix}", self.layer_names)  # noqa: E731
        negative = self._activation_layer(part("negated"), x, "affine", -1.0, 0.0)
        negative = self._activation_layer(part("negative_part"), negative, "relu")
        slope = self._parameter(node, 1, None, lambda a: -a.reshape(aligned[1:]), "negated")
        negative = self._binary_layer(part("scaled"), "mul", [negative], False, [slope])
        return self._binary_layer(name, "add", [self._activation_layer(part("positive_part"), x, "relu"), negative])

    def _op_Dropout(self, node, attributes, name):
        training = self._constant(node, 2, required=False)
        if training is not None and bool(training):
            raise _Refused("training_mode=true is not supported (inference only)")
        return self._layer(name, "identity", [self._activation(node, 0)])

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

    def _op_Reshape(self, node, attributes, name):
        deferred = self.deferred.get(self._input_name(node, 0))
        if deferred is None or deferred.kind not in ("shuffled", "group_normalized"):
            deferred = None
            shape = self._activation(node, 0).shape
        else:
            shape = deferred.shape
        target = [int(s) for s in self._constant(node, 1).reshape(-1)]
        if not attributes.get("allowzero", 0):
            target = [shape[i] if s == 0 and i < len(shape) else s for i, s in enumerate(target)]
        known = math.prod(s for s in target if s != -1)
        if target.count(-1) == 1 and known > 0 and math.prod(shape) % known == 0:
            target[target.index(-1)] = math.prod(shape) // known
        target = tuple(target)
        if deferred is not None:  # the end of ShuffleNet's channel shuffle or of GroupNorm: back to [N, C, H, W]
            if target != tuple(deferred.value.shape):
                raise _Refused(f"input '{node.input[0]}' is {deferred.what}, reshaped to {list(target)}")
            if deferred.kind == "shuffled":
                return self._layer(name, "channel_shuffle", [deferred.value], (deferred.detail,))
            layer_name, groups, epsilon, weight, bias, fused = deferred.detail
            value = self._normalization(layer_name, deferred.value, groups, True, epsilon, weight, bias)
            self.fused.update(id(n) for n in fused)
            self.values.update((n.output[0], value) for n in fused)
            return value
        x = self._activation(node, 0)
        if len(target) == 3 and len(x.shape) > 1 and target[0] == x.shape[0] and x.shape[1] % target[1] == 0 \
                and math.prod(target) == math.prod(x.shape):  # PyTorch's GroupNorm before opset 18: [N, G, -1]
            self.deferred[node.output[0]] = _Deferred("channel_groups", x, target, target[1], "a view of the channels "
                                                      "in groups, which kcp reads only as GroupNorm (followed by "
                                                      "InstanceNormalization and a Reshape back)")
            return None
        if len(x.shape) == 4 and len(target) == 5 and target[0] == x.shape[0] and target[3:] == x.shape[2:] \
                and target[1] * target[2] == x.shape[1]:  # ShuffleNet's view as [N, groups, C / groups, H, W]
            self.deferred[node.output[0]] = _Deferred("grouped", x, target, target[1], "a view of the channels in "
                                                      "groups, which kcp reads only as a channel shuffle (followed by "
                                                      "a Transpose of the groups and a Reshape back)")
            return None
        return self._reshaped(node, name, x, target)

    def _op_Transpose(self, node, attributes, name):
        source, perm = self._input_name(node, 0), list(attributes.get("perm", ()))
        deferred = self.deferred.get(source)
        if deferred is None or deferred.kind != "grouped" or perm != [0, 2, 1, 3, 4]:
            x = self._activation(node, 0)
            if source in self.channels_last and perm == [0, 3, 1, 2]:
                return x
            if source not in self.channels_last and len(x.shape) == 4 and perm == [0, 2, 3, 1]:
                self.channels_last.add(node.output[0])
                return x
            raise _Refused("kcp reads a Transpose only in ShuffleNet's channel shuffle (a 5-D view of the channels "
                           "in groups, perm [0, 2, 1, 3, 4], a Reshape back), or to channels-last [0, 2, 3, 1] "
                           f"and back [0, 3, 1, 2]; got perm {perm}")
        n, groups, size, height, width = deferred.shape
        self.deferred[node.output[0]] = _Deferred("shuffled", deferred.value, (n, size, groups, height, width), groups,
                                                  "a channel shuffle that needs a Reshape back to [N, C, H, W]")

    def _op_Slice(self, node, attributes, name):
        x = self._activation(node, 0)
        rank = len(x.shape)
        starts, ends = (self._constant(node, k).reshape(-1).tolist() for k in (1, 2))
        axes = self._constant(node, 3, required=False)
        axes = range(len(starts)) if axes is None else axes.reshape(-1).tolist()
        steps = self._constant(node, 4, required=False)
        steps = [1] * len(starts) if steps is None else steps.reshape(-1).tolist()
        kept = [range(d) for d in x.shape]
        for start, end, axis, step in zip(starts, ends, axes, steps):
            if step == 0:
                raise _Refused("a step of 0")
            kept[axis % rank] = range(x.shape[axis % rank])[slice(start, end, step)]
        changed = [a for a in range(rank) if kept[a] != range(x.shape[a])]
        if not changed:
            return self._layer(name, "identity", [x])
        if changed == [1] and kept[1].step == 1 and len(kept[1]) and x.shape[1] % len(kept[1]) == 0 \
                and kept[1].start % len(kept[1]) == 0:  # torch.chunk along the channels
            return self._layer(name, "channel_chunk", [x], (kept[1].start // len(kept[1]), x.shape[1] // len(kept[1])))
        if 0 in changed or 1 in changed:
            raise _Refused(f"kcp slices the channels only into equal parts (torch.chunk), got {kept[1]} of "
                           f"{x.shape[1]} channels" if 0 not in changed else "kcp does not slice the batch")
        return self._channelwise(node, attributes, name, shape=tuple(len(r) for r in kept), operands=(0,))

    def _op_Split(self, node, attributes, name):
        x = self._activation(node, 0)
        axis = attributes.get("axis", 0) % len(x.shape)
        sizes = self._constant(node, 1, required=False)
        if sizes is not None:
            sizes = sizes.reshape(-1).tolist()
        elif "split" in attributes:
            sizes = list(attributes["split"])
        else:
            parts = attributes.get("num_outputs", len(node.output))
            sizes = [-(-x.shape[axis] // parts)] * parts
            sizes[-1] = x.shape[axis] - sum(sizes[:-1])
        if axis != 1 or len(set(sizes)) != 1 or sum(sizes) != x.shape[1] or len(sizes) != len(node.output):
            raise _Refused(f"kcp splits the channels only into equal parts (torch.chunk), got sizes {sizes} along "
                           f"axis {axis} of {x.shape}")
        return [self._layer(name if k == 0 else fresh_name(output or f"{name}.{k}", self.layer_names), "channel_chunk",
                            [x], (k, len(sizes))) for k, output in enumerate(node.output)]

    def _reshaped(self, node, name, x, target):
        if target == tuple(x.shape):
            return self._layer(name, "identity", [x])
        if len(x.shape) > 2 and target == (x.shape[0], math.prod(x.shape[1:])):
            return self._layer(name, "flatten", [x])
        raise _Refused(f"kcp reads a {node.op_type} of {x.shape} to {list(target)} only as a flatten "
                       f"[N, C*H*W] (or no change)")

    def _op_Squeeze(self, node, attributes, name):
        x = self._activation(node, 0)
        axes = self._constant(node, 1, required=False)
        axes = attributes.get("axes") if axes is None else axes.reshape(-1).tolist()
        if axes is None:
            raise _Refused("needs axes (without them it would squeeze the batch)")
        axes = {int(a) % len(x.shape) for a in axes}
        if 0 in axes or any(x.shape[a] != 1 for a in axes):
            raise _Refused(f"cannot squeeze axes {sorted(axes)} of {x.shape}")
        return self._reshaped(node, name, x, tuple(d for a, d in enumerate(x.shape) if a not in axes))

    def _op_Expand(self, node, attributes, name):
        x = self._activation(node, 0)
        shape = tuple(int(s) for s in self._constant(node, 1).reshape(-1))
        try:
            expanded = np.broadcast_shapes(x.shape, shape)
        except ValueError:
            raise _Refused(f"cannot expand {x.shape} to {list(shape)}") from None
        if expanded != tuple(x.shape):
            raise _Refused(f"kcp reads Expand only where it leaves the shape {x.shape}, got {list(shape)}")
        return self._layer(name, "identity", [x])

    def _op_Softmax(self, node, attributes, name):
        x = self._activation(node, 0)
        self._axis(attributes, -1, len(x.shape))
        return self._layer(name, "softmax", [x])

    def _pool(self, node, attributes, name, op):
        x = self._rank(self._activation(node, 0), (4, 5), "input (2-D or 3-D pooling)")
        axes = len(x.shape) - 2
        if "kernel_shape" not in attributes:
            raise _Refused("needs kernel_shape")
        kernel, strides = _per_axis(attributes, "kernel_shape", (), axes), _per_axis(attributes, "strides", (1,) * axes, axes)
        dilations = _per_axis(attributes, "dilations", (1,) * axes, axes)
        pads = self._pads(attributes, x.shape[2:], kernel, strides, dilations)
        include = int(attributes.get("count_include_pad", 0)) if op == "avg_pool" else 0
        if axes == 3 and op == "avg_pool" and any(d != 1 for d in dilations):
            raise _Refused(f"3-D AveragePool with dilations {list(dilations)} is not supported")
        layer_op, numbers = pool_form(op, (*kernel, *strides, *pads), include, int(attributes.get("ceil_mode", 0)),
                                      dilations)
        return self._layer(name, layer_op, [x], numbers)

    def _op_MaxPool(self, node, attributes, name):
        return self._pool(node, attributes, name, "max_pool")

    def _op_AveragePool(self, node, attributes, name):
        return self._pool(node, attributes, name, "avg_pool")

    def _op_GlobalMaxPool(self, node, attributes, name):
        return self._layer(name, "adaptive_pool", [self._rank(self._activation(node, 0), (4,))], (1, 1, 1))

    @staticmethod
    def _reduce(is_max):
        def read(self, node, attributes, name):
            axes = self._axes(node, attributes)
            normalized = None if is_max else self._layer_norm_written_out(node, attributes, axes, name)
            if normalized is not None:
                return normalized
            x = self._rank(self._activation(node, 0), (4,), "input (kcp reduces over H and W of 4-D tensors)")
            if node.input[0] in self.channels_last or sorted(int(a) % 4 for a in axes or ()) != [2, 3]:
                raise _Refused(f"kcp reduces over H and W only (axes [2, 3] of [N, C, H, W]) or, in LayerNorm "
                               f"written out, over the channels; got axes {axes}"
                               f"{' of a channels-last tensor' if node.input[0] in self.channels_last else ''}")
            keep = attributes.get("keepdims", 1)
            pooled_name = name if keep else fresh_name(f"{name}.pool", self.layer_names)
            pooled = (self._layer(pooled_name, "adaptive_pool", [x], (1, 1, 1)) if is_max
                      else self._layer(pooled_name, "global_avg_pool", [x]))
            return pooled if keep else self._layer(name, "flatten", [pooled])
        return read

    _op_ReduceMean, _op_ReduceMax = _reduce(False), _reduce(True)
    del _reduce

    def _axes(self, node, attributes):
        """The axes of a reduction: its input 1 (from opset 18) or its attribute (None: all)."""
        axes = self._constant(node, 1, required=False)
        return attributes.get("axes") if axes is None else axes.reshape(-1).tolist()

    def _layer_norm_written_out(self, node, attributes, axes, name):
        """One normalization layer for LayerNorm over the channels written out from ``node``, a ReduceMean
        of them (as PyTorch writes it before opset 17, and ConvNeXt's own channels-first LayerNorm at any):
        ``(x - mean) / Sqrt(ReduceMean((x - mean)^2) + epsilon)``, then a Mul and an Add per channel; the
        nodes after ``node`` are fused. None where they are not that."""
        source = node.input[0]
        x, channels_last = self.values.get(source), source in self.channels_last
        rank = len(x.shape) if x is not None else 0
        if not rank or [int(a) % rank for a in axes or ()] != [rank - 1 if channels_last else 1] \
                or not attributes.get("keepdims", 1):
            return None
        subs = self.consumers.get(node.output[0], [])  # x - mean, once or (ConvNeXt's own) twice
        centred = {n.output[0] for n in subs}
        if not 0 < len(subs) <= 2 or centred & self.graph_outputs or node.output[0] in self.graph_outputs \
                or any(not _is(n, "Sub") or list(n.input) != [source, node.output[0]] for n in subs):
            return None
        readers = [r for n in subs for r in self.consumers.get(n.output[0], [])]
        square = next((r for r in readers if _is(r, "Pow") and r.input[0] in centred and self._scalar(r.input[1]) == 2
                       or _is(r, "Mul") and r.input[0] == r.input[1] in centred), None)
        divide = next((r for r in readers if _is(r, "Div") and r.input[0] in centred), None)
        variance = square and len(readers) == 2 and self._only_reader(square.output[0], "ReduceMean")
        if not variance or divide is None or self._axes(variance, _attributes(variance)) != axes \
                or not _attributes(variance).get("keepdims", 1):
            return None
        shift = self._only_reader(variance.output[0], "Add")
        epsilon = shift and self._scalar(_other(shift, variance.output[0]))
        root = epsilon is not None and self._only_reader(shift.output[0], "Sqrt")
        if not root or divide.input[1] != root.output[0]:
            return None
        fused = [*subs, square, variance, shift, root, divide]
        scale = self._channel_operand(divide.output[0], "Mul", x, channels_last)
        offset = scale and self._channel_operand(scale[0].output[0], "Add", x, channels_last)
        weight, bias = ((self._parameter(*found, None, lambda a: a.reshape(-1)) if found else
                         (fresh_name(f"{name}.{part}", self.parameter_names), np.full(x.shape[1], fill, np.float32)))
                        for found, part, fill in ((scale, "weight", 1), (offset, "bias", 0)))
        fused += [found[0] for found in (scale, offset) if found]
        value = self._normalization(name, x, 1, False, epsilon, weight, bias)
        self.fused.update(id(n) for n in fused)
        self.values[fused[-1].output[0]] = value
        return value

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
        """``[N, C] @ W``: a linear layer; channels-last ``[N, H, W, C] @ W``: a 1x1 convolution."""
        x = self._activation(node, 0)
        conv = node.input[0] in self.channels_last
        if not conv:
            self._rank(x, (2,), "input (MatMul with a constant weight, unless channels-last)")
        w = self._constant(node, 1)
        if w.ndim != 2:
            raise _Refused(f"weight must be a 2-D constant, got shape {w.shape}")
        parameters = [self._parameter(node, 1, ("conv", 1), lambda w: w.T[:, :, None, None], "T") if conv
                      else self._parameter(node, 1, "linear", lambda w: w.T, "T")]
        add = self._bias_add(node, w.shape[1])
        if add is not None:
            bias = next(k for k in (0, 1) if add.input[k] != node.output[0])
            parameters.append(self._bias(add, bias, w.shape[1], 1, self._source(node, 1)))
            self.fused.add(id(add))
        value = self._layer(name, "conv2d", [x], (1, 1, 0, 0, 0, 0, 1, 1, 1), parameters) if conv \
            else self._layer(name, "linear", [x], (), parameters)
        if add is not None:
            self.values[add.output[0]] = value
        return value

    def _bias_add(self, node, outputs):
        """The Add node that adds a constant bias to ``node``'s output and is its only reader, or None."""
        add = self._only_reader(node.output[0], "Add")
        if add is None or len(add.input) != 2:
            return None
        other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
        return add if other in self.constants and self.constants[other].size == outputs else None

    def _op_Resize(self, node, attributes, name):
        x = self._rank(self._activation(node, 0), (4, 5))
        rank = len(x.shape)
        transform = attributes.get("coordinate_transformation_mode", "half_pixel")
        if transform == "tf_crop_and_resize":
            raise _Refused("coordinate_transformation_mode 'tf_crop_and_resize' is not supported")
        scales, sizes = self._constant(node, 2, required=False), self._constant(node, 3, required=False)
        axes = [int(a) % rank for a in attributes.get("axes", range(rank))]
        if sizes is not None and sizes.size:
            if attributes.get("keep_aspect_ratio_policy", "stretch") != "stretch":
                raise _Refused(f"keep_aspect_ratio_policy {attributes['keep_aspect_ratio_policy']!r} is not supported")
            out = list(x.shape)
            for axis, size in zip(axes, sizes.reshape(-1)):
                out[axis] = int(size)
            factors = [o / i for o, i in zip(out, x.shape)]
        elif scales is not None and scales.size:
            factors = [1.0] * rank
            for axis, scale in zip(axes, scales.reshape(-1)):
                factors[axis] = float(scale)
            if min(factors) <= 0 or not all(math.isfinite(f) for f in factors):
                raise _Refused(f"scales must be positive, got {scales.reshape(-1).tolist()}")
            out = [math.floor(i * f) for i, f in zip(x.shape, factors)]
        else:
            raise _Refused("needs constant scales or sizes")
        if out[:2] != list(x.shape[:2]) or min(out) < 1:
            raise _Refused(f"kcp resizes the spatial axes only, got {list(x.shape)} to {out}")
        return self._resize(name, x, out[2:], factors[2:], attributes.get("mode", "nearest"), transform,
                            attributes.get("nearest_mode", "round_prefer_floor"), attributes.get("antialias", 0))

    def _op_Upsample(self, node, attributes, name):
        x = self._rank(self._activation(node, 0), (4,))
        scales = attributes["scales"] if "scales" in attributes else self._constant(node, 1)
        factors = [float(s) for s in np.reshape(scales, -1)]
        if len(factors) != 4 or factors[:2] != [1, 1] or min(factors) <= 0:
            raise _Refused(f"kcp resizes H and W only, got scales {factors}")
        out = [math.floor(i * f) for i, f in zip(x.shape[2:], factors[2:])]
        return self._resize(name, x, out, factors[2:], attributes.get("mode", "nearest"), "asymmetric", "floor", 0)

    def _resize(self, name, x, out, factors, mode, transform, rounding, antialias):
        size, op = x.shape[2:], "resize" if len(out) == 2 else "resize3d"
        if x.shape[1] * math.prod(out) > _arguments.INT32_MAX:  # before any work over the output size
            raise ValueError(f"network: node {name!r} (resize): output {[x.shape[0], x.shape[1], *out]} has more than "
                             f"{_arguments.INT32_MAX} elements per sample")
        if mode == "nearest":
            sources = [_nearest_indices(f, n, o, transform, rounding) for n, o, f in zip(size, out, factors)]
            if all(found is not None and np.array_equal(found, np.arange(o) * n // o)
                   for found, n, o in zip(sources, size, out)):
                return self._layer(name, op, [x], (*out, 0, 0))
            raise _Refused(f"nearest with coordinate_transformation_mode {transform!r} and nearest_mode {rounding!r} "
                           f"from {list(size)} to {out} is not PyTorch's nearest (source = floor(i * in / out))")
        if mode != "linear":
            raise _Refused(f"mode {mode!r} is not supported (kcp: nearest or linear)")
        if antialias and any(o < n for n, o in zip(size, out)):
            raise _Refused("antialiased downsampling is not supported")
        if transform == "align_corners":
            return self._layer(name, op, [x], (*out, 1, 1))
        exact = all(abs(f * n - o) <= 1e-5 * o for n, o, f in zip(size, out, factors))
        if transform in ("half_pixel", "pytorch_half_pixel") and exact and not (
                transform == "pytorch_half_pixel" and any(o == 1 < n for n, o in zip(size, out))):
            return self._layer(name, op, [x], (*out, 1, 0))
        raise _Refused(f"linear with coordinate_transformation_mode {transform!r} from {list(size)} by {factors} is "
                       "not supported (kcp: half_pixel with scales out/in, or align_corners)")

    def _kcp_ConcatenationVolume(self, node, attributes, name):
        return self._cost_volume(node, attributes, name, "concatenation", ("max_disparity",))

    def _kcp_GroupCorrelationVolume(self, node, attributes, name):
        return self._cost_volume(node, attributes, name, "group_correlation", ("max_disparity", "groups", "scale"))

    def _cost_volume(self, node, attributes, name, kind, required):
        if any(attribute not in attributes for attribute in required):
            raise _Refused(f"needs the attributes {', '.join(required)}")
        left, right = self._activation(node, 0), self._activation(node, 1)
        return self._layer(name, "cost_volume", [left, right], (COST_VOLUMES[kind], attributes["max_disparity"],
                                                                attributes.get("groups", 1),
                                                                attributes.get("scale", 1.0)))

    def _kcp_Correlation(self, node, attributes, name):
        if "max_disparity" not in attributes or "scale" not in attributes:
            raise _Refused("needs the attributes max_disparity and scale")
        left, right = self._activation(node, 0), self._activation(node, 1)
        return self._layer(name, "correlation", [left, right], (attributes["max_disparity"], attributes["scale"]))


class _Deferred:
    """A step of a pattern (see ``_Importer.deferred``): ``kind``, the kcp ``value``
    it starts from, its ONNX ``shape``, a ``detail`` (pads, groups) and ``what`` it is, for errors."""

    def __init__(self, kind, value, shape, detail, what):
        self.kind, self.value, self.shape, self.detail, self.what = kind, value, tuple(shape), detail, what


def _copy(attribute):
    copy = type(attribute)()
    copy.CopyFrom(attribute)
    return copy


def _is(node, op):
    """Whether ``node`` is a standard ``op`` node."""
    return node.op_type == op and node.domain in ("", "ai.onnx")


def _other(node, name):
    """The input of the two-input ``node`` that is not ``name`` (None if both are)."""
    others = [n for n in node.input if n != name]
    return others[0] if len(node.input) == 2 and len(others) == 1 else None
