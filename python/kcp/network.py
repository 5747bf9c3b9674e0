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

The engine holds the whole structure: value, node and parameter names, each
node's op, attributes, inputs and parameters, the graph inputs and outputs,
and every shape. A :class:`Network` object keeps only what the engine cannot:
the random generator of initial weights and, per layer name, forms of layers
that another format keeps (:func:`kcp.onnx.format.remember_form`). What it
reads of the structure it caches until the engine's revision counter
(``kcp_network_counts``) moves.

kcp's own modules use a small internal interface, and nothing else that is
private: ``_handle`` (the engine's network, for ``kcp._native``), ``_lock``
(held for one consistent view while other threads build), ``_all_values()``,
``_value_ops()``, ``_parameter_indices()``, ``_has_parameter(name)``,
``_derived(handle)`` (a network over another engine handle, as pruning and
fine-tuning return), ``_forms``; and, for builders, ``_name``, ``_value``,
``_add_parameter`` and ``_node``.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

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
_OP_NAMES = {code: name for name, code in OPS.items()}
#: Ops whose first parameter is a weight that writes their output's channels (the layers plans report widths of).
WEIGHTED_OPS = ("conv2d", "conv_transpose2d", "conv3d", "conv_transpose3d", "linear")
ACTIVATIONS = _ENUMERATIONS["activation"]
BINARY = _ENUMERATIONS["binary"]
UPSAMPLE_MODES = _ENUMERATIONS["resize_mode"]
COST_VOLUMES = _ENUMERATIONS["cost_volume"]
_VALUE, _PARAMETER = 0, 1  # KCP_NAME_VALUE, KCP_NAME_PARAMETER
_NODES = 1  # KCP_NETWORK_NODES

#: An int, or a pair of ints ``(height, width)``.
Pair = Union[int, Sequence[int]]
#: An int, or a triple of ints ``(depth, height, width)`` (a pair where the input has no depth).
Triple = Union[int, Sequence[int]]
#: An int, a pair, or ``(top, left, bottom, right)``; for volumes a triple or ``(front, top, left, back, bottom, right)``.
Padding = Union[int, Sequence[int]]


@dataclass(frozen=True)
class Value:
    """A tensor of the network: a graph input or a layer's output."""

    network: Network
    index: int
    name: str

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape at the declared batch size."""
        return _native.network_value_shape(self.network._handle, 0, self.index, 0)


@dataclass(frozen=True)
class Layer:
    """A node: its name, op, attributes (in kcp.h's order), input value names
    and parameter names."""

    name: str
    op: str
    attributes: tuple[float, ...]
    inputs: tuple[str, ...]
    parameters: tuple[str, ...]


class _Graph:
    """A network's structure at one engine revision (``counts``, as
    ``kcp_network_counts`` gives them), each part read from the engine on
    first use."""

    def __init__(self, net: Network, counts: tuple[int, ...]):
        self.net, self.counts = net, counts

    @functools.cached_property
    def value_names(self) -> list[str]:
        return _native.network_names(self.net._handle, _VALUE)

    @functools.cached_property
    def values(self) -> list[Value]:
        return [Value(self.net, index, name) for index, name in enumerate(self.value_names)]

    @functools.cached_property
    def parameter_names(self) -> list[str]:
        return _native.network_names(self.net._handle, _PARAMETER)

    @functools.cached_property
    def parameter_indices(self) -> dict[str, int]:
        """``{name: index}``, the latest parameter of a name, as the engine finds it."""
        return {name: index for index, name in enumerate(self.parameter_names)}

    @functools.cached_property
    def ports(self) -> tuple[list[Value], list[Value]]:
        inputs, outputs = _native.network_ports(self.net._handle)
        return [self.values[v] for v in inputs], [self.values[v] for v in outputs]

    @functools.cached_property
    def nodes(self) -> list[tuple[Layer, int]]:
        """Each node as a :class:`Layer` and the index of the value it writes."""
        names = self.value_names
        return [(Layer(names[output], _OP_NAMES[op], attributes, inputs, parameters), output)
                for op, attributes, output, inputs, parameters
                in _native.network_nodes(self.net._handle, self.counts[_NODES], names, self.parameter_names)]

    @functools.cached_property
    def layers(self) -> list[Layer]:
        return [layer for layer, _ in self.nodes]


def _pair(value: Pair, name: str, minimum: int = 0) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or a pair, got {value!r}")
        first, second = (_arguments.integer(v, name, minimum) for v in value)
        return first, second
    v = _arguments.integer(value, name, minimum)
    return v, v


def _padding(padding: Padding) -> tuple[int, ...]:
    """``(top, left, bottom, right)`` from an int, a pair, or those four."""
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(padding)
    return _pair(padding, "padding") * 2


def _triple(value: Triple, name: str, minimum: int = 0) -> tuple[int, int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 3:
            raise ValueError(f"{name}: expected an int or a triple, got {value!r}")
        first, second, third = (_arguments.integer(v, name, minimum) for v in value)
        return first, second, third
    v = _arguments.integer(value, name, minimum)
    return v, v, v


def _volume_padding(padding: Padding) -> tuple[int, ...]:
    """``(front, top, left, back, bottom, right)`` from an int, a triple (both sides of each axis) or those six."""
    if isinstance(padding, (tuple, list)) and len(padding) == 6:
        return tuple(_arguments.integer(v, "padding", 0) for v in padding)
    return _triple(padding, "padding") * 2


def pool_form(op: str, window: Sequence[int], count_include_pad: bool, ceil_mode: bool,
              dilation: Sequence[int]) -> tuple[str, tuple[float, ...]]:
    """The op and attributes of a ``"max_pool"`` or ``"avg_pool"`` over the
    axes ``dilation`` has: ``op`` over H and W, ``<op>3d`` over D, H and W.
    ``window`` is the kernel, the strides and the padding before, then after,
    each per axis. A 3-D pool carries only the attributes it reads: no
    dilation for the average (as in PyTorch), no ``count_include_pad`` for the max."""
    flags = (int(bool(count_include_pad)), int(bool(ceil_mode)))
    if len(dilation) == 2:
        return op, (*window, *flags, *dilation)
    return f"{op}3d", (*window, *flags) if op == "avg_pool" else (*window, flags[1], *dilation)


def _initial_weight(rng: np.random.Generator, shape: tuple[int, ...], std: float, name: str) -> NDArray[np.float32]:
    """Normal weights of ``shape`` with standard deviation ``std``, refusing
    more than ``INT32_MAX`` of them (``name`` is the argument that asked for
    them) before anything is allocated."""
    if np.prod(shape, dtype=object) > _arguments.INT32_MAX:
        raise ValueError(f"{name}: a weight of shape {shape} is too large")
    return (rng.standard_normal(shape) * std).astype(np.float32)


class Network:
    """A network held by the kcp engine (see the module docstring)."""

    def __init__(self, seed: int = 0) -> None:
        self._attach(_native.network_create(), np.random.default_rng(_arguments.seed(seed)))

    def _attach(self, handle: Any, rng: np.random.Generator) -> None:
        """Makes this object the view of the engine network ``handle``."""
        self._handle = handle
        self._rng = rng
        #: Per layer name, the form another format keeps of it (see :mod:`kcp.onnx.format`).
        self._forms: dict[str, dict] = {}
        self._cached_graph: _Graph | None = None
        self._lock = threading.RLock()
        self._depth = 0

    # -- structure -------------------------------------------------------

    def _graph(self) -> _Graph:
        """The structure now: the cached one while the engine's counts and revision are unchanged."""
        counts = _native.network_counts(self._handle)
        if self._cached_graph is None or self._cached_graph.counts != counts:
            self._cached_graph = _Graph(self, counts)
        return self._cached_graph

    @property
    def layers(self) -> list[Layer]:
        """The layers in order, as :class:`Layer` records read from the engine."""
        return list(self._graph().layers)

    @property
    def inputs(self) -> list[Value]:
        return list(self._graph().ports[0])

    @property
    def outputs(self) -> list[Value]:
        return list(self._graph().ports[1])

    def _all_values(self) -> list[Value]:
        """Every value in index order: inputs and layer outputs."""
        return list(self._graph().values)

    def _value_ops(self) -> list[str]:
        """The op that produced each value, in index order (``"input"`` for inputs)."""
        graph = self._graph()
        ops = ["input"] * len(graph.values)
        for layer, output in graph.nodes:
            ops[output] = layer.op
        return ops

    def _parameter_indices(self) -> dict[str, int]:
        """``{parameter name: engine index}``, in creation order."""
        return dict(self._graph().parameter_indices)

    def _has_parameter(self, name: str) -> bool:
        return _native.network_find(self._handle, _PARAMETER, name) >= 0

    def _derived(self, handle: Any) -> Network:
        """A network over another engine handle whose structure derives from this one's (pruned, fine-tuned)."""
        other = Network.__new__(Network)
        other._attach(handle, np.random.default_rng(0))
        other._forms.update(self._forms)
        return other

    def _name(self, name: str | None, op: str) -> str:
        """``name``, checked to be new, or a new one from ``op`` and the node count."""
        if name is None:
            name = f"{op}{_native.network_counts(self._handle)[_NODES]}"
        if not isinstance(name, str) or not name or _native.network_find(self._handle, _VALUE, name) >= 0:
            raise ValueError(f"name: must be a new non-empty string, got {name!r}")
        return name

    def _value(self, value: Value, name: str = "x") -> int:
        if not isinstance(value, Value) or value.network is not self:
            raise TypeError(f"{name}: expected a Value of this network, got {type(value).__name__}")
        return value.index

    def _parameter(self, name: str, argument: str = "parameters") -> int:
        """The engine index of the parameter ``name``."""
        index = _native.network_find(self._handle, _PARAMETER, name) if isinstance(name, str) else -1
        if index < 0:
            raise ValueError(f"{argument}: no parameter {name!r}")
        return index

    def input(self, name: str, shape: Sequence[int]) -> Value:
        """A network input of shape ``(N, C, H, W)`` (or ``(N, F)``)."""
        name = self._name(name, "input")
        shape = tuple(_arguments.integer(d, "shape", 1) for d in shape)
        return Value(self, _native.network_add_input(self._handle, name, shape), name)

    def output(self, *values: Value) -> None:
        """Marks values as network outputs, in order."""
        for value in values:
            _native.network_add_output(self._handle, self._value(value))

    def _add_parameter(self, name: str, array: ArrayLike) -> str:
        _native.network_add_parameter(self._handle, name, array)
        return name

    def _node(self, op: str, inputs: Sequence[Value], attributes: Sequence[float] = (),
              parameters: Sequence[str] = (), name: str | None = None, reserved: bool = False) -> Value:
        """Adds a node. ``reserved`` says ``name`` came from :meth:`_name` (a builder
        that names parameters after it); since names live in the engine and
        :meth:`_name` reserves none, the name is checked either way, so two
        nodes never share one."""
        name = self._name(name, op)
        indices = [self._value(v, f"inputs[{i}]") for i, v in enumerate(inputs)]
        params = [self._parameter(p) for p in parameters]
        index = _native.network_add_node(self._handle, name, OPS[op], _arguments.attributes(op, attributes, ATTRIBUTES[op]),
                                         indices, params)
        return Value(self, index, name)

    # -- layers ----------------------------------------------------------

    def layer(self, op: str, inputs: Sequence[Value], attributes: Sequence[float] = (),
              parameters: Sequence[str | tuple[str, ArrayLike]] = (), *, name: str | None = None) -> Value:
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
                self._parameter(parameter)
                names.append(parameter)
            else:
                parameter_name, array = parameter
                if self._has_parameter(parameter_name):
                    raise ValueError(f"parameters: {parameter_name!r} exists already")
                names.append(self._add_parameter(parameter_name, array))
        return self._node(op, list(inputs), tuple(attributes), names, name, reserved=True)

    def conv2d(self, x: Value, out_channels: int, kernel_size: Pair, *, stride: Pair = 1, padding: Padding = 0,
               dilation: Pair = 1, groups: int = 1, bias: bool = True, share: str | None = None,
               name: str | None = None) -> Value:
        """2-D convolution; ``padding`` an int, a pair, or ``(top, left, bottom, right)``.

        ``share`` names an earlier conv whose parameters this one reuses (a
        Siamese branch); then ``out_channels`` and ``kernel_size`` must match.
        """
        out_channels = _arguments.integer(out_channels, "out_channels", 1)
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        pads = _padding(padding)
        groups = _arguments.integer(groups, "groups", 1)
        attributes = (*_pair(stride, "stride"), *pads, *_pair(dilation, "dilation"), groups)
        name = self._name(name, "conv2d")
        parameters = self._filters(x, name, out_channels, (kh, kw), groups, bias, share)
        return self._node("conv2d", [x], attributes, parameters, name, reserved=True)

    def _filters(self, x: Value, name: str, out_channels: int, kernel: tuple[int, ...], groups: int, bias: bool,
                 share: str | None) -> list[str]:
        """A conv's parameters: the layer ``share``'s, or a new weight ``[out_channels, C / groups, *kernel]``
        (``C`` the channels of ``x``) and bias."""
        if share is not None:
            return self._shared(share)
        in_channels = x.shape[1]
        if in_channels % groups:
            raise ValueError(f"groups: {groups} groups do not divide {in_channels} input channels")
        return self._conv_parameters(name, (out_channels, in_channels // groups, *kernel), in_channels // groups,
                                     out_channels, bias)

    def _conv_parameters(self, name: str, shape: tuple[int, ...], inputs_per_group: int, out_channels: int,
                         bias: bool) -> list[str]:
        """A conv's He-initialised weight of ``shape`` (fan-in ``inputs_per_group * kh * kw``, or with ``kd``) and zero bias."""
        fan_in = inputs_per_group * int(np.prod(shape[2:]))
        parameters = [self._add_parameter(f"{name}.weight", _initial_weight(self._rng, shape, np.sqrt(2 / fan_in),
                                                                           "out_channels"))]
        if bias:
            parameters.append(self._add_parameter(f"{name}.bias", np.zeros(out_channels, np.float32)))
        return parameters

    def conv_transpose2d(self, x: Value, out_channels: int, kernel_size: Pair, *, stride: Pair = 1,
                         padding: Padding = 0, output_padding: Pair = 0, dilation: Pair = 1, groups: int = 1,
                         bias: bool = True, name: str | None = None) -> Value:
        """Transposed convolution (PyTorch's ``ConvTranspose2d``): weight
        ``[in_channels, out_channels / groups, kh, kw]``; each output side is
        ``(in - 1) * stride - padding + dilation * (k - 1) + output_padding + 1``
        (``padding`` an int, a pair, or ``(top, left, bottom, right)``, cropped
        from the full scatter; ``output_padding`` a pair, smaller than the
        stride or the dilation). Formulas in ``Sources/KCP/Graph/Op.swift``."""
        out_channels = _arguments.integer(out_channels, "out_channels", 1)
        kh, kw = _pair(kernel_size, "kernel_size", 1)
        pads = _padding(padding)
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

    def conv3d(self, x: Value, out_channels: int, kernel_size: Triple, *, stride: Triple = 1, padding: Padding = 0,
               dilation: Triple = 1, groups: int = 1, bias: bool = True, share: str | None = None,
               name: str | None = None) -> Value:
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
        parameters = self._filters(x, name, out_channels, kernel, groups, bias, share)
        return self._node("conv3d", [x], attributes, parameters, name, reserved=True)

    def conv_transpose3d(self, x: Value, out_channels: int, kernel_size: Triple, *, stride: Triple = 1,
                         padding: Padding = 0, output_padding: Triple = 0, dilation: Triple = 1, groups: int = 1,
                         bias: bool = True, name: str | None = None) -> Value:
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

    def linear(self, x: Value, out_features: int, *, bias: bool = True, share: str | None = None,
               name: str | None = None) -> Value:
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

    def _shared(self, layer_name: str) -> list[str]:
        for layer in self._graph().layers:
            if layer.name == layer_name:
                return list(layer.parameters)
        raise ValueError(f"share: no layer named {layer_name!r}")

    def batchnorm(self, x: Value, *, epsilon: float = 1e-5, name: str | None = None) -> Value:
        """Batch normalization (inference form, running statistics)."""
        name = self._name(name, "batchnorm")
        channels = x.shape[1]
        parameters = [self._add_parameter(f"{name}.{part}", np.full(channels, fill, np.float32))
                      for part, fill in (("weight", 1), ("bias", 0), ("running_mean", 0), ("running_var", 1))]
        return self._node("batchnorm", [x], (epsilon,), parameters, name, reserved=True)

    def normalization(self, x: Value, groups: int = 1, *, spatial: bool = False, epsilon: float = 1e-5,
                      name: str | None = None) -> Value:
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

    def layer_norm(self, x: Value, *, epsilon: float = 1e-5, name: str | None = None) -> Value:
        """LayerNorm over the channels at each position (ConvNeXt's ``LayerNorm2d``)."""
        return self.normalization(x, 1, epsilon=epsilon, name=name)

    def group_norm(self, x: Value, groups: int, *, epsilon: float = 1e-5, name: str | None = None) -> Value:
        """GroupNorm (Wu and He 2018): statistics per group of channels over all positions."""
        return self.normalization(x, groups, spatial=True, epsilon=epsilon, name=name)

    def instance_norm(self, x: Value, *, epsilon: float = 1e-5, name: str | None = None) -> Value:
        """InstanceNorm: statistics per channel over all positions."""
        return self.normalization(x, x.shape[1] if isinstance(x, Value) else 1, spatial=True, epsilon=epsilon,
                                  name=name)

    def activation(self, x: Value, kind: str, alpha: float = 0.0, beta: float = 0.0, *,
                   name: str | None = None) -> Value:
        """Element-wise ``kind``, a key of :data:`ACTIVATIONS` (formulas in
        ``Sources/KCP/Graph/Op.swift``); ``alpha`` and ``beta`` are its constants."""
        code = _arguments.choice(kind, "kind", ACTIVATIONS)
        return self._node("activation", [x], (code, _arguments.finite(alpha, "alpha"), _arguments.finite(beta, "beta")),
                          name=self._name(name, kind), reserved=True)

    def relu(self, x: Value, *, name: str | None = None) -> Value:
        return self.activation(x, "relu", name=name)

    def relu6(self, x: Value, *, name: str | None = None) -> Value:
        return self.activation(x, "clip", 0.0, 6.0, name=name)

    def clip(self, x: Value, minimum: float, maximum: float, *, name: str | None = None) -> Value:
        """``min(max(x, minimum), maximum)``."""
        return self.activation(x, "clip", minimum, maximum, name=name)

    def leaky_relu(self, x: Value, alpha: float = 0.01, *, name: str | None = None) -> Value:
        return self.activation(x, "leaky_relu", alpha, name=name)

    def sigmoid(self, x: Value, *, name: str | None = None) -> Value:
        return self.activation(x, "sigmoid", name=name)

    def tanh(self, x: Value, *, name: str | None = None) -> Value:
        return self.activation(x, "tanh", name=name)

    def silu(self, x: Value, *, name: str | None = None) -> Value:
        return self.activation(x, "silu", name=name)

    def gelu(self, x: Value, approximate: Literal["none", "tanh"] = "none", *, name: str | None = None) -> Value:
        """GELU, exact (``approximate="none"``) or its tanh form (``"tanh"``), as ``F.gelu``."""
        kind = _arguments.choice(approximate, "approximate", {"none": "gelu", "tanh": "gelu_tanh"})
        return self.activation(x, kind, name=name)

    def hardswish(self, x: Value, *, name: str | None = None) -> Value:
        return self.activation(x, "hardswish", name=name)

    def hardsigmoid(self, x: Value, alpha: float = 1 / 6, beta: float = 0.5, *, name: str | None = None) -> Value:
        """``min(max(alpha * x + beta, 0), 1)`` (PyTorch's constants by default)."""
        return self.activation(x, "hardsigmoid", alpha, beta, name=name)

    def elu(self, x: Value, alpha: float = 1.0, *, name: str | None = None) -> Value:
        return self.activation(x, "elu", alpha, name=name)

    def mish(self, x: Value, *, name: str | None = None) -> Value:
        return self.activation(x, "mish", name=name)

    def softplus(self, x: Value, beta: float = 1.0, threshold: float = 20.0, *, name: str | None = None) -> Value:
        """``log(1 + exp(beta x)) / beta``, or ``x`` where ``beta x > threshold``, as ``F.softplus``."""
        return self.activation(x, "softplus", beta, threshold, name=name)

    def binary(self, kind: Literal["add", "sub", "mul", "div"], a: Value, b: Value, *,
               name: str | None = None) -> Value:
        """``a kind b`` (``"add"``, ``"sub"``, ``"mul"``, ``"div"``) with NumPy
        broadcasting: equal ranks, each dimension equal or 1 (an ``[N, C, 1, 1]``
        gate times an ``[N, C, H, W]`` map)."""
        code = _arguments.choice(kind, "kind", BINARY)
        return self._node("binary", [a, b], (code, 0), name=self._name(name, kind), reserved=True)

    def add(self, a: Value, b: Value, *, name: str | None = None) -> Value:
        return self.binary("add", a, b, name=name)

    def sub(self, a: Value, b: Value, *, name: str | None = None) -> Value:
        return self.binary("sub", a, b, name=name)

    def mul(self, a: Value, b: Value, *, name: str | None = None) -> Value:
        return self.binary("mul", a, b, name=name)

    def div(self, a: Value, b: Value, *, name: str | None = None) -> Value:
        return self.binary("div", a, b, name=name)

    def concat(self, *values: Value, name: str | None = None) -> Value:
        """Concatenation along channels."""
        return self._node("concat", list(values), name=name)

    def _pool(self, op: str, x: Value, kernel_size: Triple, stride: Triple | None, padding: Triple,
              count_include_pad: bool, ceil_mode: bool, dilation: Triple, name: str | None) -> Value:
        """A 2-D pool of ``[N, C, H, W]`` (pairs) or a 3-D one of ``[N, C, D, H, W]`` (triples, op ``<op>3d``)."""
        spatial = self._spatial_axes(x, op)
        sizes = _pair if spatial == 2 else _triple
        kernel = sizes(kernel_size, "kernel_size")
        window = (*kernel, *sizes(stride if stride is not None else kernel_size, "stride"), *sizes(padding, "padding") * 2)
        layer_op, attributes = pool_form(op, window, count_include_pad, ceil_mode, sizes(dilation, "dilation", 1))
        return self._node(layer_op, [x], attributes, name=name)

    @staticmethod
    def _spatial_axes(x: Value, op: str) -> int:
        """2 for ``[N, C, H, W]``, 3 for ``[N, C, D, H, W]``; a ``ValueError`` naming ``x`` otherwise."""
        rank = len(x.shape)
        if rank not in (4, 5):
            raise ValueError(f"x: {op} takes [N, C, H, W] or [N, C, D, H, W], got shape {x.shape}")
        return rank - 2

    def max_pool(self, x: Value, kernel_size: Triple, stride: Triple | None = None, padding: Triple = 0, *,
                 dilation: Triple = 1, ceil_mode: bool = False, name: str | None = None) -> Value:
        """Max pooling as PyTorch's ``max_pool2d`` (or, for a 5-D ``x``, ``max_pool3d``: sizes are
        ints or ``(d, h, w)`` triples)."""
        return self._pool("max_pool", x, kernel_size, stride, padding, False, ceil_mode, dilation, name)

    def avg_pool(self, x: Value, kernel_size: Triple, stride: Triple | None = None, padding: Triple = 0, *,
                 count_include_pad: bool = False, ceil_mode: bool = False, name: str | None = None) -> Value:
        """Average pooling as PyTorch's ``avg_pool2d`` (or, for a 5-D ``x``, ``avg_pool3d``)."""
        return self._pool("avg_pool", x, kernel_size, stride, padding, count_include_pad, ceil_mode, 1, name)

    def adaptive_pool(self, x: Value, output_size: Pair, *, max: bool = False, name: str | None = None) -> Value:
        """Average (or ``max``) pooling to ``output_size`` with PyTorch's adaptive bins."""
        return self._node("adaptive_pool", [x], (*_pair(output_size, "output_size", 1), int(bool(max))), name=name)

    def global_avg_pool(self, x: Value, *, name: str | None = None) -> Value:
        return self._node("global_avg_pool", [x], name=name)

    def flatten(self, x: Value, *, name: str | None = None) -> Value:
        return self._node("flatten", [x], name=name)

    def resize(self, x: Value, size: Triple, mode: Literal["nearest", "bilinear", "trilinear"] = "nearest", *,
               align_corners: bool = False, name: str | None = None) -> Value:
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

    def upsample(self, x: Value, scale: int = 2, mode: Literal["nearest", "bilinear", "trilinear"] = "nearest", *,
                 name: str | None = None) -> Value:
        """Integer-factor upsampling of every spatial axis; bilinear (trilinear
        for a 5-D ``x``) uses half-pixel centers (``align_corners=False``)."""
        scale = _arguments.integer(scale, "scale", 1)
        return self.resize(x, tuple(size * scale for size in x.shape[2:]), mode, name=name)

    def correlation(self, left: Value, right: Value, max_disparity: int, *, name: str | None = None) -> Value:
        """Stereo cost volume ``y[d] = mean_c left[c, h, w] * right[c, h, w - d]``, ``d < max_disparity``."""
        scale = 1.0 / left.shape[1]
        return self._node("correlation", [left, right], (_arguments.integer(max_disparity, "max_disparity", 1), scale),
                          name=name)

    def softmax(self, x: Value, *, name: str | None = None) -> Value:
        """Softmax over channels."""
        return self._node("softmax", [x], name=name)

    def cost_volume(self, left: Value, right: Value, max_disparity: int,
                    kind: Literal["concatenation", "group_correlation"] = "concatenation", *, groups: int = 1,
                    name: str | None = None) -> Value:
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

    def soft_argmin(self, x: Value, *, sign: Literal[-1, 1] = -1, name: str | None = None) -> Value:
        """Disparity regression ``sum_d d * softmax_d(sign * x)`` over the
        channels of ``[N, D, H, W]`` or over ``D`` of ``[N, 1, D, H, W]``:
        ``sign=-1`` is GC-Net's soft argmin of a cost, ``sign=1`` PSMNet's and
        GwcNet's regression of a score."""
        if sign not in (-1, 1):
            raise ValueError(f"sign must be -1 or 1, got {sign!r}")
        return self._node("soft_argmin", [x], (sign,), name=name)

    def identity(self, x: Value, *, name: str | None = None) -> Value:
        return self._node("identity", [x], name=name)

    def channel_shuffle(self, x: Value, groups: int, *, name: str | None = None) -> Value:
        """ShuffleNet's shuffle: output channel ``j * groups + i`` is input channel ``i * (C / groups) + j``."""
        return self._node("channel_shuffle", [x], (_arguments.integer(groups, "groups", 1),), name=name)

    def chunk(self, x: Value, parts: int, *, name: str | None = None) -> list[Value]:
        """``parts`` equal slices of ``x`` along channels, as ``torch.chunk``; pruning keeps them equal."""
        parts = _arguments.integer(parts, "parts", 1)
        name = self._name(name, "chunk")
        return [self._node("channel_chunk", [x], (index, parts), name=f"{name}.{index}") for index in range(parts)]

    # -- parameters, inference, cost ----------------------------------------

    @property
    def parameters(self) -> dict[str, NDArray[np.float32]]:
        """``{name: array}``: copies of every parameter, in creation order."""
        return {name: _native.network_parameter_read(self._handle, index)
                for name, index in self._graph().parameter_indices.items()}

    def state_dict(self) -> dict[str, NDArray[np.float32]]:
        """``{name: array}``: a copy of every parameter (as :attr:`parameters`), for saving."""
        return self.parameters

    def load_state_dict(self, state: dict[str, ArrayLike]) -> None:
        """Copies every entry of ``state`` (``{name: array}``, as :meth:`state_dict`
        gives) into the parameter of that name. ``state`` must name each
        parameter once and no other, with its shape; nothing is written otherwise."""
        if not isinstance(state, dict):
            raise TypeError(f"state: expected a dict of arrays, got {type(state).__name__}")
        indices = self._graph().parameter_indices
        missing, unknown = set(indices) - set(state), set(state) - set(indices)
        if missing or unknown:
            raise ValueError(f"state: missing {sorted(missing)}, unknown {sorted(unknown)}")
        for name, value in state.items():
            shape = _native.network_value_shape(self._handle, 1, indices[name], 0)
            if np.shape(value) != shape:
                raise ValueError(f"state: parameter {name!r} has shape {shape}, got {np.shape(value)}")
        for name, value in state.items():
            self.set_parameter(name, value)

    def set_parameter(self, name: str, value: ArrayLike) -> None:
        """Copies ``value`` (same shape) into the parameter ``name``."""
        index = self._parameter(name, "name")
        shape = _native.network_value_shape(self._handle, 1, index, 0)
        array = np.asarray(value)
        if array.shape != shape:
            raise ValueError(f"value: parameter {name!r} has shape {shape}, got {array.shape}")
        _native.network_parameter_write(self._handle, index, array)

    def __call__(self, *inputs: ArrayLike) -> list[NDArray[np.float32]]:
        """Runs the network natively; returns a list with one array per output."""
        return self._forward(inputs, None)

    def profile(self, *inputs: ArrayLike, repeats: int = 5) -> dict[str, float]:
        """Median wall time of each layer over ``repeats`` runs: ``{layer name: ms}``."""
        layers = self._graph().layers
        runs = np.zeros((_arguments.integer(repeats, "repeats", 1), len(layers)))
        for run in runs:
            self._forward(inputs, run)
        return {layer.name: float(ms) for layer, ms in zip(layers, np.median(runs, axis=0) * 1e3)}

    def gradients(self, *inputs: ArrayLike, output_gradients: Sequence[ArrayLike],
                  training: bool = True) -> tuple[list[NDArray[np.float32]], dict[str, NDArray[np.float32]]]:
        """Outputs and parameter gradients of ``L = sum_k <output_gradients[k], outputs[k]>``.

        A forward pass keeping every value (``training``: batchnorm on batch
        statistics, as in ``model.train()``), then the backward pass.

        Returns:
            ``(outputs, {parameter name: dL/dparameter})``; a parameter shared
            by several layers gets the sum of their gradients.
        """
        graph = self._graph()
        arrays, batch = self._checked_inputs(inputs, graph)
        outputs = self._output_buffers(batch, graph)
        seeds = [_arguments.array(g, f"output_gradients[{i}]") for i, g in enumerate(output_gradients)]
        if len(seeds) != len(outputs) or any(s.shape != o.shape for s, o in zip(seeds, outputs)):
            raise ValueError(f"output_gradients: expected shapes {[o.shape for o in outputs]}, "
                             f"got {[s.shape for s in seeds]}")
        names = graph.parameter_names
        grads = [np.empty(_native.network_value_shape(self._handle, 1, index, 0), np.float32)
                 for index in range(len(names))]
        _native.network_gradients(self._handle, arrays, batch, bool(training), seeds, outputs, grads)
        return outputs, dict(zip(names, grads))

    def _forward(self, inputs, node_seconds):
        graph = self._graph()
        arrays, batch = self._checked_inputs(inputs, graph)
        outputs = self._output_buffers(batch, graph)
        _native.network_forward(self._handle, arrays, outputs, batch, node_seconds)
        return outputs

    def _checked_inputs(self, inputs, graph=None):
        """The input arrays and their common batch size, checked against the declared shapes."""
        declared = (graph or self._graph()).ports[0]
        if len(inputs) != len(declared):
            raise ValueError(f"inputs: the network has {len(declared)} inputs, got {len(inputs)}")
        arrays = [_arguments.array(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
        batch = arrays[0].shape[0] if arrays[0].ndim else 0
        for i, (array, value) in enumerate(zip(arrays, declared)):
            expected = (batch, *value.shape[1:])
            if array.shape != expected or batch < 1:
                raise ValueError(f"inputs[{i}]: expected shape {expected} with a batch of at least 1, got {array.shape}")
        return arrays, batch

    def _output_buffers(self, batch, graph):
        return [np.empty(_native.network_value_shape(self._handle, 0, v.index, batch), np.float32)
                for v in graph.ports[1]]

    def cost(self) -> tuple[int, int]:
        """``(MACs per sample, learnable parameters)``."""
        _, macs, params = _native.network_cost(self._handle, self._graph().counts[_NODES])
        return macs, params

    def layer_macs(self) -> dict[str, int]:
        """``{layer name: MACs per sample}``."""
        graph = self._graph()
        node_macs, _, _ = _native.network_cost(self._handle, graph.counts[_NODES])
        return {layer.name: int(m) for layer, m in zip(graph.layers, node_macs)}

    def layer_widths(self) -> dict[str, int]:
        """``{layer name: output channels}`` of every conv2d, transposed conv and linear layer."""
        graph = self._graph()
        return {layer.name: graph.values[output].shape[1] for layer, output in graph.nodes
                if layer.op in WEIGHTED_OPS}

    def to_onnx(self, path: str | os.PathLike | None = None, *, opset: int = 17) -> Any:
        """The network as an ONNX ``ModelProto``, also written to ``path`` if given (see :mod:`kcp.onnx.exporter`)."""
        from .onnx import export

        return export(self, path, opset=opset)


def _step(method):
    """``method`` as one step on its network: it holds the network's lock
    (other threads' steps wait), and if it raises anything, KeyboardInterrupt
    included, the engine's network is truncated to what it was before (and
    the forms of layers it added are dropped) before the exception goes on
    unchanged."""

    @functools.wraps(method)
    def step(self, *args, **kwargs):
        with self._lock:
            if self._depth:
                return method(self, *args, **kwargs)
            values, _, parameters, _, outputs, _ = _native.network_counts(self._handle)
            forms = len(self._forms)
            self._depth += 1
            try:
                return method(self, *args, **kwargs)
            except BaseException:
                _native.network_truncate(self._handle, values, parameters, outputs)
                for name in list(self._forms)[forms:]:
                    del self._forms[name]
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
