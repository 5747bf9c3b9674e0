"""Whole networks: build a graph of layers, run it, read and write its parameters.

A :class:`Network` is held by the engine; this class is a builder and a view.
Layers are added in order and return a :class:`Value`, the symbolic output
that later layers take as input::

    net = kcp.Network(seed=0)
    x = net.input("image", (1, 3, 32, 32))
    y = net.relu(net.batchnorm(net.conv2d(x, 16, 3, padding=1)))
    net.output(net.linear(net.flatten(net.global_avg_pool(y)), 10))
    logits, = net(images)

Weights start He-normal (biases zero, batchnorm the identity) from ``seed``;
``net.parameters[name]`` reads a copy, ``net.set_parameter(name, array)``
writes one in.
"""

import functools
import threading
from dataclasses import dataclass

import numpy as np

from . import _arguments, _native

def _op_table():
    """The engine's op table (``kcp_op_table``): ``({op: code}, {op: attribute
    names or None}, {enumeration: {name: code}})``."""
    ops, attributes, enumerations = {}, {}, {}
    for line in _native.op_table().splitlines():
        kind, code, name, *rest = line.split(" ")
        if kind == "op":
            ops[name] = int(code)
            attributes[name] = None if rest == ["*"] else tuple(filter(None, rest[0].split(","))) if rest else ()
        else:
            enumerations.setdefault(kind, {})[name] = int(code)
    return ops, attributes, enumerations


OPS, ATTRIBUTES, _ENUMERATIONS = _op_table()
#: Ops whose first parameter is a weight that writes their output's channels (the layers plans report widths of).
WEIGHTED_OPS = ("conv2d", "conv_transpose2d", "conv3d", "conv_transpose3d", "linear")
ACTIVATIONS = _ENUMERATIONS["activation"]
BINARY = _ENUMERATIONS["binary"]
UPSAMPLE_MODES = _ENUMERATIONS["resize_mode"]
COST_VOLUMES = _ENUMERATIONS["cost_volume"]


@dataclass(frozen=True)
class Value:
    """A tensor of the network: a graph input or a layer's output."""

    network: "Network"
    index: int
    name: str

    @property
    def shape(self):
        """The shape at the declared batch size."""
        return _native.network_value_shape(self.network._handle, 0, self.index, 0)


@dataclass(frozen=True)
class Layer:
    """A node: its name, op, attributes (in kcp.h's order), input value names
    and parameter names."""

    name: str
    op: str
    attributes: tuple
    inputs: tuple
    parameters: tuple


def _pair(value, name, minimum=0):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or a pair, got {value!r}")
        return tuple(_arguments.integer(v, name, minimum) for v in value)
    v = _arguments.integer(value, name, minimum)
    return v, v


def _triple(value, name, minimum=0):
    if isinstance(value, (tuple, list)):
        if len(value) != 3:
            raise ValueError(f"{name}: expected an int or a triple, got {value!r}")
        return tuple(_arguments.integer(v, name, minimum) for v in value)
    v = _arguments.integer(value, name, minimum)
    return v, v, v


def _volume_padding(padding):
    """``(front, top, left, back, bottom, right)`` from an int, a triple (both sides of each axis) or those six."""
    if isinstance(padding, (tuple, list)) and len(padding) == 6:
        return tuple(_arguments.integer(v, "padding", 0) for v in padding)
    return _triple(padding, "padding") * 2


def _initial_weight(rng, shape, std, name):
    """Normal weights of ``shape`` with standard deviation ``std``, refusing
    more than ``INT32_MAX`` of them (``name`` is the argument that asked for
    them) before anything is allocated."""
    if np.prod(shape, dtype=object) > _arguments.INT32_MAX:
        raise ValueError(f"{name}: a weight of shape {shape} is too large")
    return (rng.standard_normal(shape) * std).astype(np.float32)


class Network:
    """A network held by the kcp engine (see the module docstring)."""

    def __init__(self, seed=0):
        self._handle = _native.network_create()
        self._rng = np.random.default_rng(_arguments.seed(seed))
        self._parameter_index = {}
        self._layers = []
        self._inputs = []
        self._outputs = []
        self._values = []
        self._names = {}  # ordered, so a failed step can drop the names it took
        self._lock = threading.RLock()
        self._depth = 0

    # -- structure -------------------------------------------------------

    @property
    def layers(self):
        """The layers in order, as :class:`Layer` records (attributes read from the engine)."""
        names = {code: name for name, code in OPS.items()}
        result = []
        for index, layer in enumerate(self._layers):
            code, attributes = _native.network_node_op(self._handle, index)
            result.append(Layer(layer.name, names[code], attributes, layer.inputs, layer.parameters))
        return result

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    def _name(self, name, op):
        if name is None:
            name = f"{op}{len(self._layers)}"
        if not isinstance(name, str) or not name or name in self._names:
            raise ValueError(f"name: must be a new non-empty string, got {name!r}")
        self._names[name] = None
        return name

    def _value(self, value, name="x"):
        if not isinstance(value, Value) or value.network is not self:
            raise TypeError(f"{name}: expected a Value of this network, got {type(value).__name__}")
        return value.index

    def input(self, name, shape):
        """A network input of shape ``(N, C, H, W)`` (or ``(N, F)``)."""
        name = self._name(name, "input")
        shape = tuple(_arguments.integer(d, "shape", 1) for d in shape)
        value = Value(self, _native.network_add_input(self._handle, name, shape), name)
        self._inputs.append(value)
        self._values.append(value)
        return value

    def output(self, *values):
        """Marks values as network outputs, in order."""
        for value in values:
            _native.network_add_output(self._handle, self._value(value))
            self._outputs.append(value)

    def _add_parameter(self, name, array):
        self._parameter_index[name] = _native.network_add_parameter(self._handle, name, array)
        return name

    def _node(self, op, inputs, attributes=(), parameters=(), name=None, reserved=False):
        """Adds a node; ``reserved`` says ``name`` was already taken by :meth:`_name`."""
        name = name if reserved else self._name(name, op)
        indices = [self._value(v, f"inputs[{i}]") for i, v in enumerate(inputs)]
        params = [self._parameter_index[p] for p in parameters]
        index = _native.network_add_node(self._handle, name, OPS[op], _arguments.attributes(op, attributes, ATTRIBUTES[op]),
                                         indices, params)
        self._layers.append(Layer(name, op, tuple(attributes), tuple(v.name for v in inputs), tuple(parameters)))
        self._values.append(Value(self, index, name))
        return self._values[-1]

    # -- layers ----------------------------------------------------------

    def layer(self, op, inputs, attributes=(), parameters=(), *, name=None):
        """Adds a layer from its raw form (what importers use).

        Args:
            op: a key of ``kcp.network.OPS``.
            inputs: the :class:`Value` s it reads.
            attributes: numbers in the order ``include/kcp.h`` gives for ``op``.
            parameters: for each parameter, a ``(name, array)`` pair creating
                it, or the name of an existing parameter (shared).
            name: the layer's name (default: op and position).
        """
        if op not in OPS:
            raise ValueError(f"op: unknown op {op!r}; known: {', '.join(OPS)}")
        name = self._name(name, op)
        names = []
        for parameter in parameters:
            if isinstance(parameter, str):
                if parameter not in self._parameter_index:
                    raise ValueError(f"parameters: no parameter {parameter!r}")
                names.append(parameter)
            else:
                parameter_name, array = parameter
                if parameter_name in self._parameter_index:
                    raise ValueError(f"parameters: {parameter_name!r} exists already")
                names.append(self._add_parameter(parameter_name, array))
        return self._node(op, list(inputs), tuple(attributes), names, name, reserved=True)

    def conv2d(self, x, out_channels, kernel_size, *, stride=1, padding=0, dilation=1, groups=1, bias=True,
               share=None, name=None):
        """2-D convolution; ``padding`` an int, a pair, or ``(top, left, bottom, right)``.

        ``share`` names an earlier conv whose parameters this one reuses (a
        Siamese branch); then ``out_channels`` and ``kernel_size`` must match.
        """
        out_channels = _arguments.integer(out_channels, "out_channels", 1)
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        pads = tuple(padding) if isinstance(padding, (tuple, list)) and len(padding) == 4 else _pair(padding, "padding") * 2
        groups = _arguments.integer(groups, "groups", 1)
        attributes = (*_pair(stride, "stride"), *pads, *_pair(dilation, "dilation"), groups)
        name = self._name(name, "conv2d")
        if share is not None:
            parameters = self._shared(share)
        else:
            in_channels = x.shape[1]
            if in_channels % groups:
                raise ValueError(f"groups: {groups} groups do not divide {in_channels} input channels")
            parameters = self._conv_parameters(name, (out_channels, in_channels // groups, kh, kw), in_channels // groups,
                                               out_channels, bias)
        return self._node("conv2d", [x], attributes, parameters, name, reserved=True)

    def _conv_parameters(self, name, shape, inputs_per_group, out_channels, bias):
        """A conv's He-initialised weight of ``shape`` (fan-in ``inputs_per_group * kh * kw``, or with ``kd``) and zero bias."""
        fan_in = inputs_per_group * int(np.prod(shape[2:]))
        parameters = [self._add_parameter(f"{name}.weight", _initial_weight(self._rng, shape, np.sqrt(2 / fan_in),
                                                                           "out_channels"))]
        if bias:
            parameters.append(self._add_parameter(f"{name}.bias", np.zeros(out_channels, np.float32)))
        return parameters

    def conv_transpose2d(self, x, out_channels, kernel_size, *, stride=1, padding=0, output_padding=0, dilation=1,
                         groups=1, bias=True, name=None):
        """Transposed convolution (PyTorch's ``ConvTranspose2d``): weight
        ``[in_channels, out_channels / groups, kh, kw]``; each output side is
        ``(in - 1) * stride - padding + dilation * (k - 1) + output_padding + 1``
        (``padding`` an int, a pair, or ``(top, left, bottom, right)``, cropped
        from the full scatter; ``output_padding`` a pair, smaller than the
        stride or the dilation). Formulas in ``Sources/KCP/Graph/Op.swift``."""
        out_channels = _arguments.integer(out_channels, "out_channels", 1)
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        pads = tuple(padding) if isinstance(padding, (tuple, list)) and len(padding) == 4 else _pair(padding, "padding") * 2
        groups = _arguments.integer(groups, "groups", 1)
        attributes = (*_pair(stride, "stride"), *pads, *_pair(output_padding, "output_padding"),
                      *_pair(dilation, "dilation"), groups)
        name = self._name(name, "conv_transpose2d")
        in_channels = x.shape[1]
        for channels, which in ((in_channels, "input"), (out_channels, "output")):
            if channels % groups:
                raise ValueError(f"groups: {groups} groups do not divide {channels} {which} channels")
        parameters = self._conv_parameters(name, (in_channels, out_channels // groups, kh, kw), in_channels // groups,
                                           out_channels, bias)
        return self._node("conv_transpose2d", [x], attributes, parameters, name, reserved=True)

    def conv3d(self, x, out_channels, kernel_size, *, stride=1, padding=0, dilation=1, groups=1, bias=True,
               share=None, name=None):
        """Volumetric convolution of ``x [N, C, D, H, W]`` (PyTorch's ``Conv3d``):
        weight ``[out_channels, in_channels / groups, kd, kh, kw]``;
        ``kernel_size``, ``stride`` and ``dilation`` an int or a ``(d, h, w)``
        triple, ``padding`` an int, a triple, or ``(front, top, left, back,
        bottom, right)``. ``share`` as in :meth:`conv2d`. Formula in
        ``Sources/KCP/Graph/Op.swift`` (``Conv3d``)."""
        out_channels = _arguments.integer(out_channels, "out_channels", 1)
        kernel = _triple(kernel_size, "kernel_size", 1)
        groups = _arguments.integer(groups, "groups", 1)
        attributes = (*_triple(stride, "stride"), *_volume_padding(padding), *_triple(dilation, "dilation"), groups)
        name = self._name(name, "conv3d")
        if len(x.shape) != 5:
            raise ValueError(f"x: conv3d takes a 5-D input [N, C, D, H, W], got shape {x.shape}")
        if share is not None:
            parameters = self._shared(share)
        else:
            in_channels = x.shape[1]
            if in_channels % groups:
                raise ValueError(f"groups: {groups} groups do not divide {in_channels} input channels")
            parameters = self._conv_parameters(name, (out_channels, in_channels // groups, *kernel), in_channels // groups,
                                               out_channels, bias)
        return self._node("conv3d", [x], attributes, parameters, name, reserved=True)

    def conv_transpose3d(self, x, out_channels, kernel_size, *, stride=1, padding=0, output_padding=0, dilation=1,
                         groups=1, bias=True, name=None):
        """Volumetric transposed convolution (PyTorch's ``ConvTranspose3d``):
        weight ``[in_channels, out_channels / groups, kd, kh, kw]``; each output
        side is ``(in - 1) * stride - padding + dilation * (k - 1) + output_padding + 1``
        (arguments as in :meth:`conv3d`, ``output_padding`` an int or a
        triple, each smaller than its stride or dilation). Formulas in
        ``Sources/KCP/Graph/Op.swift`` (``ConvTranspose3d``)."""
        out_channels = _arguments.integer(out_channels, "out_channels", 1)
        kernel = _triple(kernel_size, "kernel_size", 1)
        groups = _arguments.integer(groups, "groups", 1)
        attributes = (*_triple(stride, "stride"), *_volume_padding(padding), *_triple(output_padding, "output_padding"),
                      *_triple(dilation, "dilation"), groups)
        name = self._name(name, "conv_transpose3d")
        if len(x.shape) != 5:
            raise ValueError(f"x: conv_transpose3d takes a 5-D input [N, C, D, H, W], got shape {x.shape}")
        in_channels = x.shape[1]
        for channels, which in ((in_channels, "input"), (out_channels, "output")):
            if channels % groups:
                raise ValueError(f"groups: {groups} groups do not divide {channels} {which} channels")
        parameters = self._conv_parameters(name, (in_channels, out_channels // groups, *kernel), in_channels // groups,
                                           out_channels, bias)
        return self._node("conv_transpose3d", [x], attributes, parameters, name, reserved=True)

    def linear(self, x, out_features, *, bias=True, share=None, name=None):
        """``y = x W^T + b`` for ``x [N, F]``."""
        name = self._name(name, "linear")
        if share is not None:
            parameters = self._shared(share)
        else:
            out_features = _arguments.integer(out_features, "out_features", 1)
            weight = _initial_weight(self._rng, (out_features, x.shape[1]), np.sqrt(1 / x.shape[1]), "out_features")
            parameters = [self._add_parameter(f"{name}.weight", weight)]
            if bias:
                parameters.append(self._add_parameter(f"{name}.bias", np.zeros(out_features, np.float32)))
        return self._node("linear", [x], (), parameters, name, reserved=True)

    def _shared(self, layer_name):
        for layer in self._layers:
            if layer.name == layer_name:
                return list(layer.parameters)
        raise ValueError(f"share: no layer named {layer_name!r}")

    def batchnorm(self, x, *, epsilon=1e-5, name=None):
        """Batch normalization (inference form, running statistics)."""
        name = self._name(name, "batchnorm")
        channels = x.shape[1]
        parameters = [self._add_parameter(f"{name}.{part}", np.full(channels, fill, np.float32))
                      for part, fill in (("weight", 1), ("bias", 0), ("running_mean", 0), ("running_var", 1))]
        return self._node("batchnorm", [x], (epsilon,), parameters, name, reserved=True)

    def normalization(self, x, groups=1, *, spatial=False, epsilon=1e-5, name=None):
        """Normalisation over ``groups`` groups of channels, then a per-channel
        weight (1) and bias (0): per sample, group and (unless ``spatial``)
        position, ``y = (x - mean) / sqrt(var + epsilon) * weight + bias``,
        the moments over the channels whose ``statistics_mask`` entry is 1
        (all; masking sets pruned channels' to 0). Formulas in
        ``Sources/KCP/Graph/Op.swift``. Pruning keeps GroupNorm's groups whole."""
        channels = x.shape[1] if isinstance(x, Value) else None
        groups = _arguments.integer(groups, "groups", 1, channels)
        if channels % groups:
            raise ValueError(f"groups: {groups} groups do not divide {channels} channels")
        epsilon = _arguments.finite(epsilon, "epsilon")
        if epsilon <= 0:
            raise ValueError(f"epsilon: must be positive, got {epsilon}")
        name = self._name(name, "normalization")
        parameters = [self._add_parameter(f"{name}.{part}", np.full(channels, fill, np.float32))
                      for part, fill in (("weight", 1), ("bias", 0), ("statistics_mask", 1))]
        return self._node("normalization", [x], (groups, int(bool(spatial)), epsilon), parameters, name, reserved=True)

    def layer_norm(self, x, *, epsilon=1e-5, name=None):
        """LayerNorm over the channels at each position (ConvNeXt's ``LayerNorm2d``)."""
        return self.normalization(x, 1, epsilon=epsilon, name=name)

    def group_norm(self, x, groups, *, epsilon=1e-5, name=None):
        """GroupNorm (Wu and He 2018): statistics per group of channels over all positions."""
        return self.normalization(x, groups, spatial=True, epsilon=epsilon, name=name)

    def instance_norm(self, x, *, epsilon=1e-5, name=None):
        """InstanceNorm: statistics per channel over all positions."""
        return self.normalization(x, x.shape[1] if isinstance(x, Value) else 1, spatial=True, epsilon=epsilon,
                                  name=name)

    def activation(self, x, kind, alpha=0.0, beta=0.0, *, name=None):
        """Element-wise ``kind``, a key of :data:`ACTIVATIONS` (formulas in
        ``Sources/KCP/Graph/Op.swift``); ``alpha`` and ``beta`` are its constants."""
        code = _arguments.choice(kind, "kind", ACTIVATIONS)
        return self._node("activation", [x], (code, _arguments.finite(alpha, "alpha"), _arguments.finite(beta, "beta")),
                          name=self._name(name, kind), reserved=True)

    def relu(self, x, *, name=None):
        return self.activation(x, "relu", name=name)

    def relu6(self, x, *, name=None):
        return self.activation(x, "clip", 0.0, 6.0, name=name)

    def clip(self, x, minimum, maximum, *, name=None):
        """``min(max(x, minimum), maximum)``."""
        return self.activation(x, "clip", minimum, maximum, name=name)

    def leaky_relu(self, x, alpha=0.01, *, name=None):
        return self.activation(x, "leaky_relu", alpha, name=name)

    def sigmoid(self, x, *, name=None):
        return self.activation(x, "sigmoid", name=name)

    def tanh(self, x, *, name=None):
        return self.activation(x, "tanh", name=name)

    def silu(self, x, *, name=None):
        return self.activation(x, "silu", name=name)

    def gelu(self, x, approximate="none", *, name=None):
        """GELU, exact (``approximate="none"``) or its tanh form (``"tanh"``), as ``F.gelu``."""
        kind = _arguments.choice(approximate, "approximate", {"none": "gelu", "tanh": "gelu_tanh"})
        return self.activation(x, kind, name=name)

    def hardswish(self, x, *, name=None):
        return self.activation(x, "hardswish", name=name)

    def hardsigmoid(self, x, alpha=1 / 6, beta=0.5, *, name=None):
        """``min(max(alpha * x + beta, 0), 1)`` (PyTorch's constants by default)."""
        return self.activation(x, "hardsigmoid", alpha, beta, name=name)

    def elu(self, x, alpha=1.0, *, name=None):
        return self.activation(x, "elu", alpha, name=name)

    def mish(self, x, *, name=None):
        return self.activation(x, "mish", name=name)

    def softplus(self, x, beta=1.0, threshold=20.0, *, name=None):
        """``log(1 + exp(beta x)) / beta``, or ``x`` where ``beta x > threshold``, as ``F.softplus``."""
        return self.activation(x, "softplus", beta, threshold, name=name)

    def binary(self, kind, a, b, *, name=None):
        """``a kind b`` (``"add"``, ``"sub"``, ``"mul"``, ``"div"``) with NumPy
        broadcasting: equal ranks, each dimension equal or 1 (an ``[N, C, 1, 1]``
        gate times an ``[N, C, H, W]`` map)."""
        code = _arguments.choice(kind, "kind", BINARY)
        return self._node("binary", [a, b], (code, 0), name=self._name(name, kind), reserved=True)

    def add(self, a, b, *, name=None):
        return self.binary("add", a, b, name=name)

    def sub(self, a, b, *, name=None):
        return self.binary("sub", a, b, name=name)

    def mul(self, a, b, *, name=None):
        return self.binary("mul", a, b, name=name)

    def div(self, a, b, *, name=None):
        return self.binary("div", a, b, name=name)

    def concat(self, *values, name=None):
        """Concatenation along channels."""
        return self._node("concat", list(values), name=name)

    def _pool(self, op, x, kernel_size, stride, padding, count_include_pad, ceil_mode, dilation, name):
        """A 2-D pool of ``[N, C, H, W]`` (pairs) or a 3-D one of ``[N, C, D, H, W]`` (triples, op ``<op>3d``)."""
        spatial = self._spatial_axes(x, op)
        sizes = _pair if spatial == 2 else _triple
        kernel = sizes(kernel_size, "kernel_size")
        window = (*kernel, *sizes(stride if stride is not None else kernel_size, "stride"), *sizes(padding, "padding") * 2)
        flags, dilations = (int(bool(count_include_pad)), int(bool(ceil_mode))), sizes(dilation, "dilation", 1)
        if spatial == 2:
            return self._node(op, [x], (*window, *flags, *dilations), name=name)
        # 3-D pools carry only the attributes they read (a node has at most 16).
        attributes = (*window, *flags) if op == "avg_pool" else (*window, flags[1], *dilations)
        return self._node(f"{op}3d", [x], attributes, name=name)

    @staticmethod
    def _spatial_axes(x, op):
        """2 for ``[N, C, H, W]``, 3 for ``[N, C, D, H, W]``; a ``ValueError`` naming ``x`` otherwise."""
        rank = len(x.shape)
        if rank not in (4, 5):
            raise ValueError(f"x: {op} takes [N, C, H, W] or [N, C, D, H, W], got shape {x.shape}")
        return rank - 2

    def max_pool(self, x, kernel_size, stride=None, padding=0, *, dilation=1, ceil_mode=False, name=None):
        """Max pooling as PyTorch's ``max_pool2d`` (or, for a 5-D ``x``, ``max_pool3d``: sizes are
        ints or ``(d, h, w)`` triples)."""
        return self._pool("max_pool", x, kernel_size, stride, padding, False, ceil_mode, dilation, name)

    def avg_pool(self, x, kernel_size, stride=None, padding=0, *, count_include_pad=False, ceil_mode=False,
                 name=None):
        """Average pooling as PyTorch's ``avg_pool2d`` (or, for a 5-D ``x``, ``avg_pool3d``)."""
        return self._pool("avg_pool", x, kernel_size, stride, padding, count_include_pad, ceil_mode, 1, name)

    def adaptive_pool(self, x, output_size, *, max=False, name=None):
        """Average (or ``max``) pooling to ``output_size`` with PyTorch's adaptive bins."""
        return self._node("adaptive_pool", [x], (*_pair(output_size, "output_size", 1), int(bool(max))), name=name)

    def global_avg_pool(self, x, *, name=None):
        return self._node("global_avg_pool", [x], name=name)

    def flatten(self, x, *, name=None):
        return self._node("flatten", [x], name=name)

    def resize(self, x, size, mode="nearest", *, align_corners=False, name=None):
        """Resizing H and W to ``size`` as ``F.interpolate(x, size, mode=mode,
        align_corners=align_corners)`` does (``"nearest"`` or ``"bilinear"``);
        for a 5-D ``x``, D, H and W to a ``(d, h, w)`` ``size`` (``"nearest"``
        or ``"trilinear"``)."""
        if self._spatial_axes(x, "resize") == 3:
            modes = {"nearest": UPSAMPLE_MODES["nearest"], "trilinear": UPSAMPLE_MODES["bilinear"]}
            mode_code = _arguments.choice(mode, "mode", modes)
            return self._node("resize3d", [x], (*_triple(size, "size", 1), mode_code, int(bool(align_corners))),
                              name=name)
        mode_code = _arguments.choice(mode, "mode", UPSAMPLE_MODES)
        return self._node("resize", [x], (*_pair(size, "size", 1), mode_code, int(bool(align_corners))), name=name)

    def upsample(self, x, scale=2, mode="nearest", *, name=None):
        """Integer-factor upsampling of every spatial axis; bilinear (trilinear
        for a 5-D ``x``) uses half-pixel centers (``align_corners=False``)."""
        scale = _arguments.integer(scale, "scale", 1)
        return self.resize(x, tuple(size * scale for size in x.shape[2:]), mode, name=name)

    def correlation(self, left, right, max_disparity, *, name=None):
        """Stereo cost volume ``y[d] = mean_c left[c, h, w] * right[c, h, w - d]``, ``d < max_disparity``."""
        scale = 1.0 / left.shape[1]
        return self._node("correlation", [left, right], (_arguments.integer(max_disparity, "max_disparity", 1), scale),
                          name=name)

    def softmax(self, x, *, name=None):
        """Softmax over channels."""
        return self._node("softmax", [x], name=name)

    def cost_volume(self, left, right, max_disparity, kind="concatenation", *, groups=1, name=None):
        """A 3-D stereo cost volume ``[N, K, max_disparity, H, W]`` of left and
        right features ``[N, C, H, W]``, zero where ``w < d``:
        ``"concatenation"`` (PSMNet): ``y[c, d, h, w] = left[c, h, w]``,
        ``y[C + c, d, h, w] = right[c, h, w - d]``, ``K = 2C``;
        ``"group_correlation"`` (GwcNet): ``y[g, d, h, w] = mean_{c in group g}
        left[c, h, w] * right[c, h, w - d]`` over ``groups`` equal groups, ``K = groups``."""
        kind_code = _arguments.choice(kind, "kind", COST_VOLUMES)
        max_disparity = _arguments.integer(max_disparity, "max_disparity", 1)
        groups = _arguments.integer(groups, "groups", 1)
        channels = left.shape[1]
        if kind == "concatenation" and groups != 1:
            raise ValueError(f"groups must be 1 for a concatenation volume, got {groups}")
        if channels % groups:
            raise ValueError(f"groups ({groups}) must divide the {channels} channels of left")
        scale = 1.0 if kind == "concatenation" else groups / channels
        return self._node("cost_volume", [left, right], (kind_code, max_disparity, groups, scale), name=name)

    def soft_argmin(self, x, *, sign=-1, name=None):
        """Disparity regression ``sum_d d * softmax_d(sign * x)`` over the
        channels of ``[N, D, H, W]`` or over ``D`` of ``[N, 1, D, H, W]``:
        ``sign=-1`` is GC-Net's soft argmin of a cost, ``sign=1`` PSMNet's and
        GwcNet's regression of a score."""
        if sign not in (-1, 1):
            raise ValueError(f"sign must be -1 or 1, got {sign!r}")
        return self._node("soft_argmin", [x], (sign,), name=name)

    def identity(self, x, *, name=None):
        return self._node("identity", [x], name=name)

    def channel_shuffle(self, x, groups, *, name=None):
        """ShuffleNet's shuffle: output channel ``j * groups + i`` is input channel ``i * (C / groups) + j``."""
        return self._node("channel_shuffle", [x], (_arguments.integer(groups, "groups", 1),), name=name)

    def chunk(self, x, parts, *, name=None):
        """``parts`` equal slices of ``x`` along channels, as ``torch.chunk``; pruning keeps them equal."""
        parts = _arguments.integer(parts, "parts", 1)
        name = self._name(name, "chunk")
        return [self._node("channel_chunk", [x], (index, parts), name=f"{name}.{index}") for index in range(parts)]

    # -- parameters, inference, cost ----------------------------------------

    @property
    def parameters(self):
        """``{name: array}``: copies of every parameter, in creation order."""
        return {name: _native.network_parameter_read(self._handle, index)
                for name, index in self._parameter_index.items()}

    def state_dict(self):
        """``{name: array}``: a copy of every parameter (as :attr:`parameters`), for saving."""
        return self.parameters

    def load_state_dict(self, state):
        """Copies every entry of ``state`` (``{name: array}``, as :meth:`state_dict`
        gives) into the parameter of that name. ``state`` must name each
        parameter once and no other, with its shape; nothing is written otherwise."""
        if not isinstance(state, dict):
            raise TypeError(f"state: expected a dict of arrays, got {type(state).__name__}")
        missing, unknown = set(self._parameter_index) - set(state), set(state) - set(self._parameter_index)
        if missing or unknown:
            raise ValueError(f"state: missing {sorted(missing)}, unknown {sorted(unknown)}")
        for name, value in state.items():
            shape = _native.network_value_shape(self._handle, 1, self._parameter_index[name], 0)
            if np.shape(value) != shape:
                raise ValueError(f"state: parameter {name!r} has shape {shape}, got {np.shape(value)}")
        for name, value in state.items():
            self.set_parameter(name, value)

    def set_parameter(self, name, value):
        """Copies ``value`` (same shape) into the parameter ``name``."""
        if name not in self._parameter_index:
            raise ValueError(f"name: no parameter {name!r}")
        index = self._parameter_index[name]
        shape = _native.network_value_shape(self._handle, 1, index, 0)
        array = np.asarray(value)
        if array.shape != shape:
            raise ValueError(f"value: parameter {name!r} has shape {shape}, got {array.shape}")
        _native.network_parameter_write(self._handle, index, array)

    def __call__(self, *inputs):
        """Runs the network natively; returns a list with one array per output."""
        return self._forward(inputs, None)

    def profile(self, *inputs, repeats=5):
        """Median wall time of each layer over ``repeats`` runs: ``{layer name: ms}``."""
        runs = np.zeros((_arguments.integer(repeats, "repeats", 1), len(self._layers)))
        for run in runs:
            self._forward(inputs, run)
        return {layer.name: float(ms) for layer, ms in zip(self._layers, np.median(runs, axis=0) * 1e3)}

    def gradients(self, *inputs, output_gradients, training=True):
        """Outputs and parameter gradients of ``L = sum_k <output_gradients[k], outputs[k]>``.

        A forward pass keeping every value (``training``: batchnorm on batch
        statistics, as in ``model.train()``), then the backward pass.

        Returns:
            ``(outputs, {parameter name: dL/dparameter})``; a parameter shared
            by several layers gets the sum of their gradients.
        """
        arrays, batch = self._checked_inputs(inputs)
        outputs = self._output_buffers(batch)
        seeds = [_arguments.array(g, f"output_gradients[{i}]") for i, g in enumerate(output_gradients)]
        if len(seeds) != len(outputs) or any(s.shape != o.shape for s, o in zip(seeds, outputs)):
            raise ValueError(f"output_gradients: expected shapes {[o.shape for o in outputs]}, "
                             f"got {[s.shape for s in seeds]}")
        names = list(self._parameter_index)
        grads = [np.empty(_native.network_value_shape(self._handle, 1, self._parameter_index[n], 0), np.float32)
                 for n in names]
        _native.network_gradients(self._handle, arrays, batch, bool(training), seeds, outputs, grads)
        return outputs, dict(zip(names, grads))

    def _forward(self, inputs, node_seconds):
        arrays, batch = self._checked_inputs(inputs)
        outputs = self._output_buffers(batch)
        _native.network_forward(self._handle, arrays, outputs, batch, node_seconds)
        return outputs

    def _checked_inputs(self, inputs):
        """The input arrays and their common batch size, checked against the declared shapes."""
        if len(inputs) != len(self._inputs):
            raise ValueError(f"inputs: the network has {len(self._inputs)} inputs, got {len(inputs)}")
        arrays = [_arguments.array(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
        batch = arrays[0].shape[0] if arrays[0].ndim else 0
        for i, (array, value) in enumerate(zip(arrays, self._inputs)):
            expected = (batch, *value.shape[1:])
            if array.shape != expected or batch < 1:
                raise ValueError(f"inputs[{i}]: expected shape {expected} with a batch of at least 1, got {array.shape}")
        return arrays, batch

    def _output_buffers(self, batch):
        return [np.empty(_native.network_value_shape(self._handle, 0, v.index, batch), np.float32)
                for v in list(self._outputs)]

    def cost(self):
        """``(MACs per sample, learnable parameters)``."""
        _, macs, params = _native.network_cost(self._handle, len(self._layers))
        return macs, params

    def layer_macs(self):
        """``{layer name: MACs per sample}``."""
        node_macs, _, _ = _native.network_cost(self._handle, len(self._layers))
        return {layer.name: int(m) for layer, m in zip(self._layers, node_macs)}

    def layer_widths(self):
        """``{layer name: output channels}`` of every conv2d, transposed conv and linear layer."""
        shapes = {value.name: value.shape for value in self._all_values()}
        return {layer.name: shapes[layer.name][1] for layer in self._layers if layer.op in WEIGHTED_OPS}

    def _value_ops(self):
        """The op that produced each value, in index order (``"input"`` for inputs)."""
        ops = {layer.name: layer.op for layer in self._layers}
        return [ops.get(value.name, "input") for value in self._values]

    def _all_values(self):
        """Every value in index order: inputs and layer outputs."""
        return list(self._values)

    def _derived(self, handle):
        """A network with this one's structure over another engine handle."""
        other = Network.__new__(Network)
        other._handle = handle
        other._rng = np.random.default_rng(0)
        other._parameter_index = dict(self._parameter_index)
        other._layers = list(self._layers)
        other._names = dict(self._names)
        other._lock, other._depth = threading.RLock(), 0
        other._values = [Value(other, v.index, v.name) for v in self._values]
        other._inputs = [other._values[v.index] for v in self._inputs]
        other._outputs = [other._values[v.index] for v in self._outputs]
        return other

    def to_onnx(self, path=None, *, opset=17):
        """The network as an ONNX ``ModelProto``, also written to ``path`` if given (see :mod:`kcp.onnx.exporter`)."""
        from .onnx import export

        return export(self, path, opset=opset)


def _step(method):
    """``method`` as one step on its network: it holds the network's lock
    (other threads' steps wait), and if it raises anything, KeyboardInterrupt
    included, what it added is removed from the engine and from Python alike
    before the exception goes on unchanged."""

    @functools.wraps(method)
    def step(self, *args, **kwargs):
        with self._lock:
            if self._depth:
                return method(self, *args, **kwargs)
            counts = (len(self._values), len(self._parameter_index), len(self._outputs), len(self._layers),
                      len(self._inputs), len(self._names))
            self._depth += 1
            try:
                return method(self, *args, **kwargs)
            except BaseException:
                values, parameters, outputs, layers, inputs, names = counts
                _native.network_truncate(self._handle, values, parameters, outputs)
                del self._values[values:], self._outputs[outputs:], self._layers[layers:], self._inputs[inputs:]
                for name in list(self._parameter_index)[parameters:]:
                    del self._parameter_index[name]
                for name in list(self._names)[names:]:
                    del self._names[name]
                raise
            finally:
                self._depth -= 1

    return step


# Every public method is a step: builders are all-or-nothing, and uses see whole layers. Running the
# network is not: calls from several threads run at once, on the outputs declared when they began
# (the engine checks the arrays' sizes again, so an output added meanwhile is an error, not a write).
_CONCURRENT = {"gradients"}
for _name, _method in list(vars(Network).items()):
    if callable(_method) and not _name.startswith("_") and _name not in _CONCURRENT:
        setattr(Network, _name, _step(_method))
