"""PyTorch models as kcp networks: traced by ``torch.fx``, shaped by the
example inputs (``ShapeProp``), and rebuilt layer by layer as a
:class:`kcp.Network` whose parameters carry the models' qualified names
(``"layer1.0.conv1.weight"``).

Every ``torch.nn`` module, function and tensor method below becomes one kcp
op (two for ``mean`` without ``keepdim``): Conv2d, BatchNorm2d, SyncBatchNorm,
ReLU, LeakyReLU, Sigmoid, MaxPool2d, AvgPool2d, AdaptiveAvg/MaxPool2d (output
sizes that divide the input), Linear, Flatten, Upsample (integer factors,
nearest or bilinear without ``align_corners``), Dropout (identity), Identity,
Softmax over channels; ``F.*`` and ``torch.*`` forms of these, ``F.conv2d``
and ``F.linear`` with a parameter of the model as weight, ``+``/``*`` of equal
shapes, ``torch.cat`` on channels, ``torch.flatten``, ``view``/``reshape`` to
``[N, -1]``, ``mean`` over H and W. A module called twice shares its
parameters, so its calls are pruned together.

Any other node is *opaque*. In ``strict`` mode (:func:`kcp.torch.to_kcp`) it
is an error naming the node; otherwise the tensors it reads become network
outputs and the tensor it writes a network input, which the engine freezes,
and :attr:`Traced.frozen_by` says why, naming the module.
"""

import contextlib
import math
import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from ._native import KCPError
from .network import UPSAMPLE_MODES, Network
from .onnx_format import fresh_name


@dataclass(frozen=True)
class Axes:
    """How a model tensor follows the channels: dimension 0 by the keep mask
    of value ``out``, dimension 1 by that of ``inp`` (None: not sliced).
    Masking sets its pruned entries to ``fill`` (1 for a running variance)."""

    out: str
    inp: str | None = None
    fill: float = 0.0


@dataclass
class Traced:
    """A model as a kcp network.

    Attributes:
        network: the :class:`kcp.Network` (parameters named as in the model).
        axes: per model parameter or buffer name, its :class:`Axes`.
        scored: the conv and linear weights, the tensors the criteria read.
        frozen_by: engine reason (``"network input 'name'"``) -> why, naming the node.
        layers: per traced node, its module path stack and its kcp value names.
    """

    network: Network
    axes: dict
    scored: list
    frozen_by: dict
    layers: list


class _Opaque(Exception):
    """Why a node has no kcp form."""


REQUIRED = object()


def _bind(node, *spec):
    """``node``'s arguments by name; ``spec`` lists names, or ``(name, default)``
    pairs; a method's tensor is its first argument."""
    names = [s if isinstance(s, str) else s[0] for s in spec]
    if len(node.args) > len(names):
        raise _Opaque("takes more arguments than kcp knows")
    bound = dict(zip(names, node.args))
    for key, value in node.kwargs.items():
        if key not in names:
            raise _Opaque(f"argument {key}={value!r} is not supported")
        bound[key] = value
    for entry in spec:
        name, default = (entry, REQUIRED) if isinstance(entry, str) else entry
        if name not in bound:
            if default is REQUIRED:
                raise _Opaque(f"argument {name!r} is missing")
            bound[name] = default
    return bound


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _shape(node):
    """The traced shape of ``node``'s tensor, or None if it is not one tensor."""
    meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
    return tuple(meta.shape) if isinstance(meta, TensorMetadata) else None


@contextlib.contextmanager
def evaluating(model):
    """``model`` in eval mode inside the block (batchnorm statistics untouched), its modes restored after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


class _Tracer(torch.fx.Tracer):
    """``torch.fx.Tracer`` remembering the module being traced, for error messages."""

    def __init__(self):
        super().__init__()
        self.inside = []

    def call_module(self, module, forward, args, kwargs):
        self.inside.append(self.path_of_module(module))
        result = super().call_module(module, forward, args, kwargs)
        self.inside.pop()
        return result


def _module_label(path, module):
    return f"module '{path}' ({type(module).__name__})" if path else f"the model ({type(module).__name__})"


class _Shapes(ShapeProp):
    """ShapeProp whose errors name the node's module."""

    def __init__(self, graph_module, where):
        super().__init__(graph_module)
        self.where = where

    def run_node(self, node):
        try:
            return super().run_node(node)
        except Exception as error:
            cause = error.__cause__ or error
            raise ValueError(f"example_inputs: {self.where(node)} fails on them "
                             f"({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''})") from None


def example_tensors(example_inputs):
    """``example_inputs`` as a tuple of tensors."""
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    if not inputs or not all(isinstance(x, torch.Tensor) for x in inputs):
        raise TypeError(f"example_inputs: expected a tensor or a tuple of tensors, got {type(example_inputs).__name__}")
    return inputs


def trace(model, example_inputs, *, strict):
    """``model`` as a :class:`Traced` network, shapes taken from ``example_inputs``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    inputs = example_tensors(example_inputs)
    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as error:
        path = tracer.inside[-1] if tracer.inside else ""
        raise ValueError(f"model: torch.fx cannot trace {_module_label(path, model.get_submodule(path))}: "
                         f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    converter = _Converter(torch.fx.GraphModule(model, graph), strict)
    with evaluating(model):
        _Shapes(converter.graph_module, converter.where).propagate(*inputs)
    return converter.run()


class _Converter:
    def __init__(self, graph_module, strict):
        self.graph_module = graph_module
        self.strict = strict
        self.net = Network()
        self.values = {}  # fx node -> kcp Value
        self.taken = set()
        self.outputs = set()
        self.traced = Traced(self.net, {}, [], {}, [])

    def where(self, node):
        """``node`` in words: its module, or its function and the module whose forward calls it."""
        if node.op == "call_module":
            return _module_label(node.target, self.graph_module.get_submodule(node.target))
        what = f".{node.target}()" if node.op == "call_method" else getattr(node.target, "__name__", str(node.target))
        stack = list((node.meta.get("nn_module_stack") or {}).values())
        inside = ""
        if stack:
            path, kind = stack[-1]
            inside = f" in module '{path}' ({getattr(kind, '__name__', kind)})"
        return f"'{node.name}' ({what}){inside}"

    def run(self):
        for node in self.graph_module.graph.nodes:
            if node.op == "placeholder":
                self._placeholder(node)
            elif node.op == "output":
                self._outputs(node)
            elif node.op != "get_attr":
                self._call(node)
        return self.traced

    # -- graph boundary --------------------------------------------------

    def _placeholder(self, node):
        shape = _shape(node)
        if shape is None or len(shape) not in (2, 4):
            if self.strict:
                raise ValueError(f"example_inputs: input '{node.name}' must be a [N, C, H, W] or [N, F] tensor, "
                                 f"got shape {shape}")
            return
        self.values[node] = self.net.input(fresh_name(node.name, self.taken), shape)

    def _outputs(self, node):
        leaves = []
        torch.fx.node.map_arg(node.args[0], leaves.append)
        for leaf in leaves:
            if leaf not in self.values:
                if self.strict:
                    raise ValueError(f"model: output {self.where(leaf)} is not a [N, C, H, W] or [N, F] tensor")
                continue
            self._mark_output(leaf)

    def _mark_output(self, node):
        if node not in self.outputs:
            self.outputs.add(node)
            self.net.output(self.values[node])

    def _call(self, node):
        shape = _shape(node)
        read = [n for n in node.all_input_nodes if n in self.values]
        if shape is None:
            if read and not self._reads_batch_only(node):
                self._opaque(node, f"reads the shape or values of '{read[0].name}' outside tensor ops")
            return
        try:
            value = self._convert(node, shape)
        except _Opaque as reason:
            self._opaque(node, str(reason))
            return
        except (ValueError, KCPError) as error:  # the engine refused the layer
            raise ValueError(f"model: {self.where(node)}: {error}") from None
        self.values[node] = value
        self.traced.layers.append((node, value.name))

    def _reads_batch_only(self, node):
        """Whether a non-tensor node reads only the batch size, dtype or device of a tensor."""
        if node.op == "call_method" and node.target == "size":
            return node.args[1:] == (0,) or node.kwargs == {"dim": 0}
        if node.op == "call_method" and node.target == "dim":
            return True
        if node.op == "call_function" and node.target is getattr and len(node.args) == 2:
            attribute = node.args[1]
            if attribute in ("dtype", "device", "ndim"):
                return True
            return attribute == "shape" and all(u.op == "call_function" and u.target is operator.getitem
                                                and u.args[1] == 0 for u in node.users)
        return False

    def _opaque(self, node, reason):
        """Freezes what ``node`` touches: the kcp values it reads become network outputs, its tensor an input."""
        if self.strict:
            raise ValueError(f"model: {self.where(node)}: {reason}; kcp has no native form for it")
        text = f"{self.where(node)}: {reason}; the channels it reads and writes are kept"
        for source in node.all_input_nodes:
            if source in self.values and source not in self.outputs:
                self._mark_output(source)
                self.traced.frozen_by[f"network output '{self.values[source].name}'"] = text
        shape = _shape(node)
        if shape is not None and len(shape) in (2, 4):
            value = self.net.input(fresh_name(node.name, self.taken), shape)
            self.values[node] = value
            self.traced.frozen_by[f"network input '{value.name}'"] = text

    # -- nodes -----------------------------------------------------------

    def _native(self, arg):
        if not isinstance(arg, torch.fx.Node) or arg not in self.values:
            what = f"'{arg.name}'" if isinstance(arg, torch.fx.Node) else repr(arg)
            raise _Opaque(f"reads {what}, which kcp does not follow as a [N, C, H, W] or [N, F] tensor")
        return self.values[arg]

    def _reserve(self, node):
        """A new kcp value name for ``node``: its module path, or its fx name."""
        return fresh_name(node.target if node.op == "call_module" else node.name, self.taken)

    def _layer(self, node, op, inputs, attributes=(), parameters=(), name=None):
        return self.net.layer(op, inputs, attributes, parameters, name=name or self._reserve(node))

    def _convert(self, node, shape):
        if node.op == "call_module":
            module = self.graph_module.get_submodule(node.target)
            handler = _MODULES.get(type(module))
            if handler is None:
                raise _Opaque(f"kcp has no op for {type(module).__name__}")
            return handler(self, node, module, shape)
        if node.op == "call_function":
            handler = _FUNCTIONS.get(node.target)
        else:
            handler = _METHODS.get(node.target)
        if handler is None:
            raise _Opaque("kcp has no op for it")
        return handler(self, node, shape)

    def _parameter(self, name, tensor, axes, *, scored=False):
        """A parameter of the kcp layer: a new ``(name, array)``, or the name of one already added (shared)."""
        if name in self.net._parameter_index:
            return name
        if axes is not None:
            self.traced.axes[name] = axes
        if scored:
            self.traced.scored.append(name)
        return name, tensor.detach().to("cpu", torch.float32).numpy()

    def conv(self, node, x, weight, bias, stride, padding, dilation, groups):
        """A conv2d layer; ``weight``/``bias`` are ``(model name, tensor)`` or None."""
        x_value = self._native(x)
        kh, kw = weight[1].shape[2:]
        dh, dw = _pair(dilation)
        if padding == "valid":
            padding = 0
        if padding == "same":
            total = (dh * (kh - 1), dw * (kw - 1))
            pads = (total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2)
        else:
            ph, pw = _pair(padding)
            pads = (ph, pw, ph, pw)
        channels = x_value.shape[1]
        if channels % groups:
            raise _Opaque(f"{groups} groups do not divide {channels} channels")
        out = self._reserve(node)
        sliced_input = x_value.name if groups == 1 else None
        parameters = [self._parameter(weight[0], weight[1], Axes(out, sliced_input), scored=True)]
        if bias is not None:
            parameters.append(self._parameter(bias[0], bias[1], Axes(out)))
        return self._layer(node, "conv2d", [x_value], (*_pair(stride), *pads, dh, dw, groups), parameters, out)

    def linear(self, node, x, weight, bias):
        x_value = self._native(x)
        if len(x_value.shape) != 2:
            raise _Opaque(f"kcp's linear reads [N, F] tensors, got {list(x_value.shape)}")
        out = self._reserve(node)
        parameters = [self._parameter(weight[0], weight[1], Axes(out, x_value.name), scored=True)]
        if bias is not None:
            parameters.append(self._parameter(bias[0], bias[1], Axes(out)))
        return self._layer(node, "linear", [x_value], (), parameters, out)

    def batchnorm(self, node, module, shape):
        x = self._native(node.args[0])
        if len(shape) != 4:
            raise _Opaque(f"kcp's batchnorm reads [N, C, H, W] tensors, got {list(shape)}")
        if self.strict and (module.running_mean is None or not module.affine):
            raise _Opaque("kcp's batchnorm needs affine parameters and running statistics")
        out = self._reserve(node)
        channels = shape[1]
        parameters = []
        for part, fill, tensor in (("weight", 0.0, module.weight), ("bias", 0.0, module.bias),
                                   ("running_mean", 0.0, module.running_mean),
                                   ("running_var", 1.0, module.running_var)):
            if tensor is None:  # structure only: no affine parameters or statistics in the model
                parameters.append((f"{node.target}.{part}", np.full(channels, part in ("weight", "running_var"),
                                                                    np.float32)))
            else:
                parameters.append(self._parameter(f"{node.target}.{part}", tensor, Axes(out, fill=fill)))
        return self._layer(node, "batchnorm", [x], (module.eps,), parameters, out)

    def pool(self, node, op, x, kernel, stride, padding, *, include_pad=True, ceil_mode=False, dilation=1,
             divisor_override=None):
        if ceil_mode or _pair(dilation) != (1, 1) or divisor_override is not None:
            raise _Opaque("ceil_mode, dilation and divisor_override are not supported")
        kh, kw = _pair(kernel)
        stride = _pair(kernel if stride is None or stride == [] else stride)
        ph, pw = _pair(padding)
        return self._layer(node, op, [self._native(x)], (kh, kw, *stride, ph, pw, ph, pw, int(bool(include_pad))))

    def adaptive(self, node, op, x, size, shape):
        x_value = self._native(x)
        height, width = x_value.shape[2:]
        out_h, out_w = shape[2:]
        if height % out_h or width % out_w:
            raise _Opaque(f"output size {out_h}x{out_w} does not divide the input's {height}x{width}")
        if op == "avg_pool" and (out_h, out_w) == (1, 1):
            return self._layer(node, "global_avg_pool", [x_value])
        kernel = (height // out_h, width // out_w)
        return self._layer(node, op, [x_value], (*kernel, *kernel, 0, 0, 0, 0, 0))

    def upsample(self, node, x, shape, mode, align_corners):
        x_value = self._native(x)
        if mode not in UPSAMPLE_MODES or (mode == "bilinear" and align_corners):
            raise _Opaque(f"mode {mode!r}{' with align_corners' if align_corners else ''} is not supported "
                          "(nearest, or bilinear without align_corners)")
        height, width = x_value.shape[2:]
        scale = shape[2] // height
        if shape[2:] != (height * scale, width * scale) or scale < 1:
            raise _Opaque(f"resizes {height}x{width} to {shape[2]}x{shape[3]}, not by one integer factor")
        return self._layer(node, "upsample", [x_value], (scale, UPSAMPLE_MODES[mode]))

    def elementwise(self, node, op, a, b, alpha=1):
        if alpha != 1:
            raise _Opaque("alpha is not supported")
        a, b = self._native(a), self._native(b)
        if a.shape != b.shape:
            raise _Opaque(f"broadcasts {list(a.shape)} and {list(b.shape)}; kcp's {op} takes equal shapes")
        return self._layer(node, op, [a, b])

    def flatten(self, node, x, shape):
        x_value = self._native(x)
        if shape == x_value.shape:
            return self._layer(node, "identity", [x_value])
        if len(x_value.shape) == 4 and shape == (x_value.shape[0], math.prod(x_value.shape[1:])):
            return self._layer(node, "flatten", [x_value])
        raise _Opaque(f"reshapes {list(x_value.shape)} to {list(shape)}; kcp flattens [N, C, H, W] to [N, C*H*W]")

    def channel_dim(self, x, dim):
        rank = len(self._native(x).shape)
        if dim not in (1, 1 - rank):
            raise _Opaque(f"works on dimension {dim}; kcp's op works on channels (dimension 1)")

    def simple(self, node, op, x, *attributes):
        return self._layer(node, op, [self._native(x)], attributes)


def _weight(converter, node, argument):
    """``(model name, tensor)`` of a ``get_attr`` weight, None for None."""
    if argument is None:
        return None
    if not isinstance(argument, torch.fx.Node) or argument.op != "get_attr":
        raise _Opaque("its weight is not a parameter of the model")
    return argument.target, converter.graph_module.get_parameter(argument.target)


# -- modules ------------------------------------------------------------------

def _conv_module(c, node, m, shape):
    if m.padding_mode != "zeros":
        raise _Opaque(f"padding_mode {m.padding_mode!r} is not supported (zeros only)")
    bias = None if m.bias is None else (f"{node.target}.bias", m.bias)
    return c.conv(node, node.args[0], (f"{node.target}.weight", m.weight), bias, m.stride, m.padding, m.dilation,
                  m.groups)


def _linear_module(c, node, m, shape):
    bias = None if m.bias is None else (f"{node.target}.bias", m.bias)
    return c.linear(node, node.args[0], (f"{node.target}.weight", m.weight), bias)


def _max_pool_module(c, node, m, shape):
    if m.return_indices:
        raise _Opaque("return_indices is not supported")
    return c.pool(node, "max_pool", node.args[0], m.kernel_size, m.stride, m.padding, include_pad=False,
                  ceil_mode=m.ceil_mode, dilation=m.dilation)


def _avg_pool_module(c, node, m, shape):
    return c.pool(node, "avg_pool", node.args[0], m.kernel_size, m.stride, m.padding,
                  include_pad=m.count_include_pad, ceil_mode=m.ceil_mode, divisor_override=m.divisor_override)


def _flatten_module(c, node, m, shape):
    if (m.start_dim, m.end_dim) != (1, -1):
        raise _Opaque(f"flattens dimensions {m.start_dim}..{m.end_dim}; kcp flattens 1..-1")
    return c.flatten(node, node.args[0], shape)


def _softmax_module(c, node, m, shape):
    c.channel_dim(node.args[0], m.dim)
    return c.simple(node, "softmax", node.args[0])


def _upsample_module(c, node, m, shape):
    return c.upsample(node, node.args[0], shape, m.mode, m.align_corners)


def _identity_module(c, node, m, shape):
    return c.simple(node, "identity", node.args[0])


_MODULES = {
    nn.Conv2d: _conv_module,
    nn.BatchNorm2d: lambda c, node, m, shape: c.batchnorm(node, m, shape),
    nn.SyncBatchNorm: lambda c, node, m, shape: c.batchnorm(node, m, shape),
    nn.ReLU: lambda c, node, m, shape: c.simple(node, "relu", node.args[0]),
    nn.LeakyReLU: lambda c, node, m, shape: c.simple(node, "leaky_relu", node.args[0], m.negative_slope),
    nn.Sigmoid: lambda c, node, m, shape: c.simple(node, "sigmoid", node.args[0]),
    nn.MaxPool2d: _max_pool_module,
    nn.AvgPool2d: _avg_pool_module,
    nn.AdaptiveAvgPool2d: lambda c, node, m, shape: c.adaptive(node, "avg_pool", node.args[0], m.output_size, shape),
    nn.AdaptiveMaxPool2d: lambda c, node, m, shape: c.adaptive(node, "max_pool", node.args[0], m.output_size, shape),
    nn.Linear: _linear_module,
    nn.Flatten: _flatten_module,
    nn.Upsample: _upsample_module,
    nn.Softmax: _softmax_module,
    nn.Identity: _identity_module,
    nn.Dropout: _identity_module,
    nn.Dropout2d: _identity_module,
}


# -- functions and methods -------------------------------------------------------

def _relu(c, node, shape):
    return c.simple(node, "relu", _bind(node, "input", ("inplace", False))["input"])


def _sigmoid(c, node, shape):
    return c.simple(node, "sigmoid", _bind(node, "input")["input"])


def _leaky_relu(c, node, shape):
    a = _bind(node, "input", ("negative_slope", 0.01), ("inplace", False))
    return c.simple(node, "leaky_relu", a["input"], a["negative_slope"])


def _add(c, node, shape):
    a = _bind(node, "input", "other", ("alpha", 1))
    return c.elementwise(node, "add", a["input"], a["other"], a["alpha"])


def _mul(c, node, shape):
    a = _bind(node, "input", "other")
    return c.elementwise(node, "mul", a["input"], a["other"])


def _cat(c, node, shape):
    a = _bind(node, "tensors", ("dim", 0))
    tensors = list(a["tensors"])
    c.channel_dim(tensors[0], a["dim"])
    return c._layer(node, "concat", [c._native(t) for t in tensors])


def _flatten(c, node, shape):
    a = _bind(node, "input", ("start_dim", 0), ("end_dim", -1))
    if (a["start_dim"], a["end_dim"]) != (1, -1):
        raise _Opaque(f"flattens dimensions {a['start_dim']}..{a['end_dim']}; kcp flattens 1..-1")
    return c.flatten(node, a["input"], shape)


def _reshape(c, node, shape):
    return c.flatten(node, node.args[0], shape)


def _mean(c, node, shape):
    a = _bind(node, "input", ("dim", None), ("keepdim", False), ("dtype", None))
    x = c._native(a["input"])
    dims = a["dim"] if isinstance(a["dim"], (tuple, list)) else (a["dim"],)
    if len(x.shape) != 4 or a["dtype"] is not None or sorted(d % 4 for d in dims if d is not None) != [2, 3]:
        raise _Opaque("kcp averages [N, C, H, W] tensors over H and W only")
    if a["keepdim"]:
        return c._layer(node, "global_avg_pool", [x])
    pooled = c.net.global_avg_pool(x, name=fresh_name(f"{node.name}.pool", c.taken))
    return c._layer(node, "flatten", [pooled])


def _max_pool(c, node, shape):
    a = _bind(node, "input", "kernel_size", ("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False),
              ("return_indices", False))
    if a["return_indices"]:
        raise _Opaque("return_indices is not supported")
    return c.pool(node, "max_pool", a["input"], a["kernel_size"], a["stride"], a["padding"], include_pad=False,
                  ceil_mode=a["ceil_mode"], dilation=a["dilation"])


def _avg_pool(c, node, shape):
    a = _bind(node, "input", "kernel_size", ("stride", None), ("padding", 0), ("ceil_mode", False),
              ("count_include_pad", True), ("divisor_override", None))
    return c.pool(node, "avg_pool", a["input"], a["kernel_size"], a["stride"], a["padding"],
                  include_pad=a["count_include_pad"], ceil_mode=a["ceil_mode"], divisor_override=a["divisor_override"])


def _adaptive(op):
    def handler(c, node, shape):
        a = _bind(node, "input", "output_size", ("return_indices", False))
        if a["return_indices"]:
            raise _Opaque("return_indices is not supported")
        return c.adaptive(node, op, a["input"], a["output_size"], shape)
    return handler


def _interpolate(c, node, shape):
    a = _bind(node, "input", ("size", None), ("scale_factor", None), ("mode", "nearest"), ("align_corners", None),
              ("recompute_scale_factor", None), ("antialias", False))
    if a["antialias"]:
        raise _Opaque("antialias is not supported")
    return c.upsample(node, a["input"], shape, a["mode"], a["align_corners"])


def _dropout(c, node, shape):
    return c.simple(node, "identity", _bind(node, "input", ("p", 0.5), ("training", True), ("inplace", False))["input"])


def _identity(c, node, shape):
    return c.simple(node, "identity", _bind(node, "input", ("memory_format", None))["input"])


def _softmax(c, node, shape):
    a = _bind(node, "input", "dim", ("_stacklevel", 3), ("dtype", None))
    c.channel_dim(a["input"], a["dim"])
    return c.simple(node, "softmax", a["input"])


def _conv2d(c, node, shape):
    a = _bind(node, "input", "weight", ("bias", None), ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1))
    if a["groups"] != 1:
        raise _Opaque("a functional conv with groups cannot be compacted (its groups argument is in the code)")
    return c.conv(node, a["input"], _weight(c, node, a["weight"]), _weight(c, node, a["bias"]), a["stride"],
                  a["padding"], a["dilation"], 1)


def _linear(c, node, shape):
    a = _bind(node, "input", "weight", ("bias", None))
    return c.linear(node, a["input"], _weight(c, node, a["weight"]), _weight(c, node, a["bias"]))


_FUNCTIONS = {
    F.relu: _relu, torch.relu: _relu, F.relu_: _relu, torch.relu_: _relu,
    F.leaky_relu: _leaky_relu,
    torch.sigmoid: _sigmoid, F.sigmoid: _sigmoid,
    operator.add: _add, operator.iadd: _add, torch.add: _add,
    operator.mul: _mul, operator.imul: _mul, torch.mul: _mul,
    torch.cat: _cat, torch.concat: _cat, torch.concatenate: _cat,
    torch.flatten: _flatten, torch.reshape: _reshape,
    torch.mean: _mean,
    F.max_pool2d: _max_pool, F.avg_pool2d: _avg_pool,
    F.adaptive_avg_pool2d: _adaptive("avg_pool"), F.adaptive_max_pool2d: _adaptive("max_pool"),
    F.interpolate: _interpolate,
    F.dropout: _dropout, F.dropout2d: _dropout,
    torch.softmax: _softmax, F.softmax: _softmax,
    F.conv2d: _conv2d, torch.conv2d: _conv2d,
    F.linear: _linear,
}

_METHODS = {
    "relu": _relu, "relu_": _relu, "sigmoid": _sigmoid, "sigmoid_": _sigmoid,
    "add": _add, "add_": _add, "mul": _mul, "mul_": _mul,
    "flatten": _flatten, "view": _reshape, "reshape": _reshape, "mean": _mean, "softmax": _softmax,
    "contiguous": _identity,
}
