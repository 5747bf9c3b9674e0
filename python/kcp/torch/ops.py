"""What each PyTorch op becomes in a kcp network (used by :mod:`kcp.torch.trace`).

Every ``torch.nn`` module, function and tensor method below becomes one kcp
layer (two for ``mean`` without ``keepdim``): Conv2d (zero padding; groups 1,
depthwise, or grouped, which the engine freezes), BatchNorm2d and
SyncBatchNorm, ReLU, LeakyReLU, Sigmoid, MaxPool2d and AvgPool2d (no
``ceil_mode``, dilation or divisor override), AdaptiveAvg/MaxPool2d (output
sizes that divide the input), Linear on ``[N, F]``, Flatten, Upsample (one
integer factor, nearest or bilinear without ``align_corners``), Dropout and
Identity (identity), Softmax over channels; the ``F.*``, ``torch.*`` and
method forms of these; ``F.conv2d`` (groups 1) and ``F.linear`` whose weight
is a parameter of the model; ``+`` and ``*`` of equal shapes; ``torch.cat``
on channels; ``torch.flatten``, ``view`` and ``reshape`` to ``[N, C*H*W]``;
``mean`` over H and W. Anything else raises :class:`Opaque` with the reason.

The converter ``c`` a builder receives offers ``native(arg)`` (the kcp value
of an fx argument), ``reserve(node, suffix)`` (a fresh value name),
``layer(node, op, inputs, attributes, parameters, name)``, ``parameter(name,
tensor, axes, scored)``, ``graph_module`` and ``strict``.
"""

import math
import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from ..network import UPSAMPLE_MODES


@dataclass(frozen=True)
class Axes:
    """How a model tensor follows the channels: dimension 0 by the keep mask
    of value ``out``, dimension 1 by that of ``inp`` (None: not sliced).
    Masking sets its pruned entries to ``fill`` (1 for a running variance)."""

    out: str
    inp: str | None = None
    fill: float = 0.0


class Opaque(Exception):
    """Why a node has no kcp form."""


def convert(c, node, shape):
    """The kcp value computing ``node`` (whose tensor has ``shape``), built through ``c``."""
    if node.op == "call_module":
        module = c.graph_module.get_submodule(node.target)
        handler = MODULES.get(type(module))
        if handler is None:
            raise Opaque(f"kcp has no op for {type(module).__name__}")
        return handler(c, node, module, shape)
    handler = (FUNCTIONS if node.op == "call_function" else METHODS).get(node.target)
    if handler is None:
        raise Opaque("kcp has no op for it")
    return handler(c, node, shape)


REQUIRED = object()


def _bind(node, *spec):
    """``node``'s arguments by name; ``spec`` lists names, or ``(name, default)``
    pairs; a method's tensor is its first argument."""
    names = [s if isinstance(s, str) else s[0] for s in spec]
    if len(node.args) > len(names):
        raise Opaque("takes more arguments than kcp knows")
    bound = dict(zip(names, node.args))
    for key, value in node.kwargs.items():
        if key not in names:
            raise Opaque(f"argument {key}={value!r} is not supported")
        bound[key] = value
    for entry in spec:
        name, default = (entry, REQUIRED) if isinstance(entry, str) else entry
        if name not in bound:
            if default is REQUIRED:
                raise Opaque(f"argument {name!r} is missing")
            bound[name] = default
    return bound


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


# -- layers -------------------------------------------------------------------

def conv_layer(c, node, x, weight, bias, stride, padding, dilation, groups):
    """A conv2d layer; ``weight``/``bias`` are ``(model name, tensor)`` or None."""
    x_value = c.native(x)
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
        raise Opaque(f"{groups} groups do not divide {channels} channels")
    out = c.reserve(node)
    sliced_input = x_value.name if groups == 1 else None
    parameters = [c.parameter(weight[0], weight[1], Axes(out, sliced_input), scored=True)]
    if bias is not None:
        parameters.append(c.parameter(bias[0], bias[1], Axes(out)))
    return c.layer(node, "conv2d", [x_value], (*_pair(stride), *pads, dh, dw, groups), parameters, out)


def linear_layer(c, node, x, weight, bias):
    x_value = c.native(x)
    if len(x_value.shape) != 2:
        raise Opaque(f"kcp's linear reads [N, F] tensors, got {list(x_value.shape)}")
    out = c.reserve(node)
    parameters = [c.parameter(weight[0], weight[1], Axes(out, x_value.name), scored=True)]
    if bias is not None:
        parameters.append(c.parameter(bias[0], bias[1], Axes(out)))
    return c.layer(node, "linear", [x_value], (), parameters, out)


def batchnorm_layer(c, node, module, shape):
    x = c.native(node.args[0])
    if len(shape) != 4:
        raise Opaque(f"kcp's batchnorm reads [N, C, H, W] tensors, got {list(shape)}")
    if c.strict and (module.running_mean is None or not module.affine):
        raise Opaque("kcp's batchnorm needs affine parameters and running statistics")
    out = c.reserve(node)
    channels = shape[1]
    parameters = []
    for part, fill, tensor in (("weight", 0.0, module.weight), ("bias", 0.0, module.bias),
                               ("running_mean", 0.0, module.running_mean),
                               ("running_var", 1.0, module.running_var)):
        if tensor is None:  # structure only: no affine parameters or statistics in the model
            parameters.append((f"{node.target}.{part}", np.full(channels, part in ("weight", "running_var"),
                                                                np.float32)))
        else:
            parameters.append(c.parameter(f"{node.target}.{part}", tensor, Axes(out, fill=fill)))
    return c.layer(node, "batchnorm", [x], (module.eps,), parameters, out)


def pool_layer(c, node, op, x, kernel, stride, padding, *, include_pad=True, ceil_mode=False, dilation=1,
               divisor_override=None):
    if ceil_mode or _pair(dilation) != (1, 1) or divisor_override is not None:
        raise Opaque("ceil_mode, dilation and divisor_override are not supported")
    kh, kw = _pair(kernel)
    stride = _pair(kernel if stride is None or stride == [] else stride)
    ph, pw = _pair(padding)
    return c.layer(node, op, [c.native(x)], (kh, kw, *stride, ph, pw, ph, pw, int(bool(include_pad))))


def adaptive_pool_layer(c, node, op, x, shape):
    """An adaptive pool to ``shape``: a pool whose kernel and stride are the input size over the output size."""
    x_value = c.native(x)
    height, width = x_value.shape[2:]
    out_h, out_w = shape[2:]
    if height % out_h or width % out_w:
        raise Opaque(f"output size {out_h}x{out_w} does not divide the input's {height}x{width}")
    if op == "avg_pool" and (out_h, out_w) == (1, 1):
        return c.layer(node, "global_avg_pool", [x_value])
    kernel = (height // out_h, width // out_w)
    return c.layer(node, op, [x_value], (*kernel, *kernel, 0, 0, 0, 0, 0))


def upsample_layer(c, node, x, shape, mode, align_corners):
    x_value = c.native(x)
    if mode not in UPSAMPLE_MODES or (mode == "bilinear" and align_corners):
        raise Opaque(f"mode {mode!r}{' with align_corners' if align_corners else ''} is not supported "
                     "(nearest, or bilinear without align_corners)")
    height, width = x_value.shape[2:]
    scale = shape[2] // height
    if shape[2:] != (height * scale, width * scale) or scale < 1:
        raise Opaque(f"resizes {height}x{width} to {shape[2]}x{shape[3]}, not by one integer factor")
    return c.layer(node, "upsample", [x_value], (scale, UPSAMPLE_MODES[mode]))


def elementwise_layer(c, node, op, a, b, alpha=1):
    if alpha != 1:
        raise Opaque("alpha is not supported")
    a, b = c.native(a), c.native(b)
    if a.shape != b.shape:
        raise Opaque(f"broadcasts {list(a.shape)} and {list(b.shape)}; kcp's {op} takes equal shapes")
    return c.layer(node, op, [a, b])


def flatten_layer(c, node, x, shape):
    x_value = c.native(x)
    if shape == x_value.shape:
        return c.layer(node, "identity", [x_value])
    if len(x_value.shape) == 4 and shape == (x_value.shape[0], math.prod(x_value.shape[1:])):
        return c.layer(node, "flatten", [x_value])
    raise Opaque(f"reshapes {list(x_value.shape)} to {list(shape)}; kcp flattens [N, C, H, W] to [N, C*H*W]")


def require_channels(c, x, dim):
    rank = len(c.native(x).shape)
    if dim not in (1, 1 - rank):
        raise Opaque(f"works on dimension {dim}; kcp's op works on channels (dimension 1)")


def simple_layer(c, node, op, x, *attributes):
    return c.layer(node, op, [c.native(x)], attributes)


def _weight(c, argument):
    """``(model name, tensor)`` of a ``get_attr`` weight, None for None."""
    if argument is None:
        return None
    if not isinstance(argument, torch.fx.Node) or argument.op != "get_attr":
        raise Opaque("its weight is not a parameter of the model")
    return argument.target, c.graph_module.get_parameter(argument.target)


# -- modules ------------------------------------------------------------------

def _conv_module(c, node, m, shape):
    if m.padding_mode != "zeros":
        raise Opaque(f"padding_mode {m.padding_mode!r} is not supported (zeros only)")
    bias = None if m.bias is None else (f"{node.target}.bias", m.bias)
    return conv_layer(c, node, node.args[0], (f"{node.target}.weight", m.weight), bias, m.stride, m.padding,
                      m.dilation, m.groups)


def _linear_module(c, node, m, shape):
    bias = None if m.bias is None else (f"{node.target}.bias", m.bias)
    return linear_layer(c, node, node.args[0], (f"{node.target}.weight", m.weight), bias)


def _max_pool_module(c, node, m, shape):
    if m.return_indices:
        raise Opaque("return_indices is not supported")
    return pool_layer(c, node, "max_pool", node.args[0], m.kernel_size, m.stride, m.padding, include_pad=False,
                      ceil_mode=m.ceil_mode, dilation=m.dilation)


def _avg_pool_module(c, node, m, shape):
    return pool_layer(c, node, "avg_pool", node.args[0], m.kernel_size, m.stride, m.padding,
                      include_pad=m.count_include_pad, ceil_mode=m.ceil_mode, divisor_override=m.divisor_override)


def _flatten_module(c, node, m, shape):
    if (m.start_dim, m.end_dim) != (1, -1):
        raise Opaque(f"flattens dimensions {m.start_dim}..{m.end_dim}; kcp flattens 1..-1")
    return flatten_layer(c, node, node.args[0], shape)


def _softmax_module(c, node, m, shape):
    require_channels(c, node.args[0], m.dim)
    return simple_layer(c, node, "softmax", node.args[0])


def _upsample_module(c, node, m, shape):
    return upsample_layer(c, node, node.args[0], shape, m.mode, m.align_corners)


def _identity_module(c, node, m, shape):
    return simple_layer(c, node, "identity", node.args[0])


MODULES = {
    nn.Conv2d: _conv_module,
    nn.BatchNorm2d: batchnorm_layer,
    nn.SyncBatchNorm: batchnorm_layer,
    nn.ReLU: lambda c, node, m, shape: simple_layer(c, node, "relu", node.args[0]),
    nn.LeakyReLU: lambda c, node, m, shape: simple_layer(c, node, "leaky_relu", node.args[0], m.negative_slope),
    nn.Sigmoid: lambda c, node, m, shape: simple_layer(c, node, "sigmoid", node.args[0]),
    nn.MaxPool2d: _max_pool_module,
    nn.AvgPool2d: _avg_pool_module,
    nn.AdaptiveAvgPool2d: lambda c, node, m, shape: adaptive_pool_layer(c, node, "avg_pool", node.args[0], shape),
    nn.AdaptiveMaxPool2d: lambda c, node, m, shape: adaptive_pool_layer(c, node, "max_pool", node.args[0], shape),
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
    return simple_layer(c, node, "relu", _bind(node, "input", ("inplace", False))["input"])


def _sigmoid(c, node, shape):
    return simple_layer(c, node, "sigmoid", _bind(node, "input")["input"])


def _leaky_relu(c, node, shape):
    a = _bind(node, "input", ("negative_slope", 0.01), ("inplace", False))
    return simple_layer(c, node, "leaky_relu", a["input"], a["negative_slope"])


def _add(c, node, shape):
    a = _bind(node, "input", "other", ("alpha", 1))
    return elementwise_layer(c, node, "add", a["input"], a["other"], a["alpha"])


def _mul(c, node, shape):
    a = _bind(node, "input", "other")
    return elementwise_layer(c, node, "mul", a["input"], a["other"])


def _cat(c, node, shape):
    a = _bind(node, "tensors", ("dim", 0))
    if not isinstance(a["tensors"], (tuple, list)):
        raise Opaque("concatenates a sequence kcp did not see built")
    require_channels(c, a["tensors"][0], a["dim"])
    return c.layer(node, "concat", [c.native(t) for t in a["tensors"]])


def _flatten(c, node, shape):
    a = _bind(node, "input", ("start_dim", 0), ("end_dim", -1))
    if (a["start_dim"], a["end_dim"]) != (1, -1):
        raise Opaque(f"flattens dimensions {a['start_dim']}..{a['end_dim']}; kcp flattens 1..-1")
    return flatten_layer(c, node, a["input"], shape)


def _reshape(c, node, shape):
    return flatten_layer(c, node, node.args[0], shape)


def _mean(c, node, shape):
    a = _bind(node, "input", ("dim", None), ("keepdim", False), ("dtype", None))
    x = c.native(a["input"])
    dims = a["dim"] if isinstance(a["dim"], (tuple, list)) else (a["dim"],)
    if len(x.shape) != 4 or a["dtype"] is not None or sorted(d % 4 for d in dims if d is not None) != [2, 3]:
        raise Opaque("kcp averages [N, C, H, W] tensors over H and W only")
    if a["keepdim"]:
        return c.layer(node, "global_avg_pool", [x])
    pooled = c.layer(node, "global_avg_pool", [x], name=c.reserve(node, ".pool"))
    return c.layer(node, "flatten", [pooled])


def _max_pool(c, node, shape):
    a = _bind(node, "input", "kernel_size", ("stride", None), ("padding", 0), ("dilation", 1), ("ceil_mode", False),
              ("return_indices", False))
    if a["return_indices"]:
        raise Opaque("return_indices is not supported")
    return pool_layer(c, node, "max_pool", a["input"], a["kernel_size"], a["stride"], a["padding"], include_pad=False,
                      ceil_mode=a["ceil_mode"], dilation=a["dilation"])


def _avg_pool(c, node, shape):
    a = _bind(node, "input", "kernel_size", ("stride", None), ("padding", 0), ("ceil_mode", False),
              ("count_include_pad", True), ("divisor_override", None))
    return pool_layer(c, node, "avg_pool", a["input"], a["kernel_size"], a["stride"], a["padding"],
                      include_pad=a["count_include_pad"], ceil_mode=a["ceil_mode"],
                      divisor_override=a["divisor_override"])


def _adaptive(op):
    def handler(c, node, shape):
        a = _bind(node, "input", "output_size", ("return_indices", False))
        if a["return_indices"]:
            raise Opaque("return_indices is not supported")
        return adaptive_pool_layer(c, node, op, a["input"], shape)
    return handler


def _interpolate(c, node, shape):
    a = _bind(node, "input", ("size", None), ("scale_factor", None), ("mode", "nearest"), ("align_corners", None),
              ("recompute_scale_factor", None), ("antialias", False))
    if a["antialias"]:
        raise Opaque("antialias is not supported")
    return upsample_layer(c, node, a["input"], shape, a["mode"], a["align_corners"])


def _dropout(c, node, shape):
    a = _bind(node, "input", ("p", 0.5), ("training", True), ("inplace", False))
    return simple_layer(c, node, "identity", a["input"])


def _identity(c, node, shape):
    return simple_layer(c, node, "identity", _bind(node, "input", ("memory_format", None))["input"])


def _softmax(c, node, shape):
    a = _bind(node, "input", "dim", ("_stacklevel", 3), ("dtype", None))
    require_channels(c, a["input"], a["dim"])
    return simple_layer(c, node, "softmax", a["input"])


def _conv2d(c, node, shape):
    a = _bind(node, "input", "weight", ("bias", None), ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1))
    if a["groups"] != 1:
        raise Opaque("a functional conv with groups cannot be compacted (its groups argument is in the code)")
    return conv_layer(c, node, a["input"], _weight(c, a["weight"]), _weight(c, a["bias"]), a["stride"],
                      a["padding"], a["dilation"], 1)


def _linear(c, node, shape):
    a = _bind(node, "input", "weight", ("bias", None))
    return linear_layer(c, node, a["input"], _weight(c, a["weight"]), _weight(c, a["bias"]))


FUNCTIONS = {
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

METHODS = {
    "relu": _relu, "relu_": _relu, "sigmoid": _sigmoid, "sigmoid_": _sigmoid,
    "add": _add, "add_": _add, "mul": _mul, "mul_": _mul,
    "flatten": _flatten, "view": _reshape, "reshape": _reshape, "mean": _mean, "softmax": _softmax,
    "contiguous": _identity,
}
