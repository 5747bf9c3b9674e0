"""What each PyTorch op becomes in a kcp network (used by :mod:`kcp.torch.trace`).

The ``torch.nn`` modules, functions and tensor methods in the tables at the
end become kcp layers: 2-D and 3-D convolutions and transposed convolutions
(zero padding; any groups; no ``output_size`` argument), batchnorm (2-D and 3-D),
the activation family (ReLU, ReLU6 and Hardtanh, clamp, LeakyReLU, Sigmoid,
Tanh, SiLU, GELU, Hardswish, Hardsigmoid, ELU, Mish, Softplus), add, sub,
mul and div (two traced tensors with broadcasting; a tensor and a number,
an affine activation; a tensor and a model parameter or buffer with one
entry per channel, a constant operand), pools (``ceil_mode``, dilation),
adaptive pools to any size, linear on ``[N, F]``, flatten, interpolation to
the traced size (nearest, bilinear; trilinear of ``[N, C, D, H, W]``),
dropout, torchvision's stochastic depth and identity, softmax over channels, ``torch.cat`` and ``torch.chunk`` on
channels, the view-transpose-view of a channel shuffle, LayerNorm over
channels (channels-last, with the permutes and Linear layers around it),
GroupNorm, InstanceNorm and PReLU. Ops along H and W (padding, crops,
concatenation, flips, reductions keeping their axes, and ``torch.stack``
along a new axis after the channels, as a cost volume is built disparity by
disparity) become ``channelwise`` layers: pruned by rule, not run by the
engine. A zero tensor (``x.new_zeros``) filled slice by slice as PSMNet's
or GwcNet's cost volume (:class:`VolumeBuffer`) becomes the engine's
``cost_volume``; ``x.view(N, G, C / G, H, W).mean(2)`` a group mean
(:func:`group_mean_layer`); PSMNet's regression ``sum(softmax(squeeze(x,
1), 1) * arange(D).view(1, D, 1, 1), 1, keepdim=True)`` the ``soft_argmin``
of sign 1 (:class:`Regression`; tensors the model computes from no input,
such as ``arange(D)``, are read as constants). Reading a tensor's shape never
freezes its channels: the model recomputes shapes after pruning. Anything
else raises :class:`Opaque` with the reason.

The converter ``c`` a builder receives offers ``native(arg)`` (the kcp value
of an fx argument), ``values`` (what each fx node became), ``reserve(node,
suffix)`` (a fresh value name), ``layer(node, op, inputs, attributes,
parameters, name)``, ``parameter(name, tensor, axes, scored)``,
``statistics(module, value, axis, epsilon)``, ``divisor(value, source,
count)``, ``module_path(module)``, ``model``, ``graph_module`` and ``strict``.
"""

import math
import numbers
import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from ..network import ACTIVATIONS, BINARY, COST_VOLUMES, UPSAMPLE_MODES, Value, pool_form


@dataclass(frozen=True)
class Axes:
    """How a model tensor follows the channels: dimension 0 by the keep mask
    of value ``out``, dimension 1 by that of ``inp`` (None: not sliced), or
    for a grouped conv's weight by that of the first of ``groups`` equal
    groups of ``inp`` (pruning keeps the same positions in every group).
    A transposed conv's weight ``[I, O/g, kh, kw]`` has its input as ``out``
    and its output as ``inp``: the names say which dimension, not which way
    data flows. Masking sets its pruned entries to ``fill`` (1 for a running
    variance)."""

    out: str
    inp: str | None = None
    fill: float = 0.0
    groups: int = 1


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
    if node.op == "call_function":
        handler = FUNCTIONS.get(node.target) or LIBRARY_FUNCTIONS.get(_qualified_name(node.target))
    else:
        handler = METHODS.get(node.target)
    if handler is None:
        raise Opaque("kcp has no op for it")
    return handler(c, node, shape)


def _qualified_name(function):
    return f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"


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
    return _per_axis(value, 2)


def _per_axis(value, axes):
    """An int or a sequence as ``axes`` entries (2: H and W; 3: D, H and W)."""
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,) * axes
    if len(value) != axes:
        raise Opaque(f"expected {axes} sizes, got {list(value)}")
    return value


# -- layers -------------------------------------------------------------------

def conv_layer(c, node, x, weight, bias, stride, padding, dilation, groups):
    """A conv2d (or, for a 5-D weight, conv3d) layer; ``weight``/``bias`` are ``(model name, tensor)`` or None."""
    x_value = c.native(x)
    kernel = tuple(weight[1].shape[2:])
    spatial = len(kernel)
    if len(x_value.shape) != spatial + 2:
        raise Opaque(f"a {spatial}-D conv of a {len(x_value.shape)}-D input")
    dilation = _per_axis(dilation, spatial)
    if padding == "valid":
        padding = 0
    if padding == "same":
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        pads = (*(t // 2 for t in total), *(t - t // 2 for t in total))
    else:
        pads = _per_axis(padding, spatial) * 2
    channels = x_value.shape[1]
    if channels % groups:
        raise Opaque(f"{groups} groups do not divide {channels} channels")
    out = c.reserve(node)
    depthwise = groups > 1 and groups == channels
    axes = Axes(out) if depthwise else Axes(out, x_value.name, groups=groups)
    parameters = [c.parameter(weight[0], weight[1], axes, scored=True)]
    if bias is not None:
        parameters.append(c.parameter(bias[0], bias[1], Axes(out)))
    return c.layer(node, "conv2d" if spatial == 2 else "conv3d", [x_value],
                   (*_per_axis(stride, spatial), *pads, *dilation, groups), parameters, out)


def conv_transpose_layer(c, node, m):
    """A conv_transpose2d (or conv_transpose3d) layer of module ``m``; its weight's dimension 0
    follows the input, dimension 1 the output (group 0's, for 1 < g < I)."""
    if m.padding_mode != "zeros":
        raise Opaque(f"padding_mode {m.padding_mode!r} is not supported (zeros only)")
    if len(node.args) > 1 or node.kwargs:
        raise Opaque("output_size is not supported (set the module's output_padding instead)")
    x = c.native(node.args[0])
    out = c.reserve(node)
    depthwise = m.groups > 1 and m.groups == x.shape[1]
    axes = Axes(x.name) if depthwise else Axes(x.name, out, groups=m.groups)
    parameters = [c.parameter(f"{node.target}.weight", m.weight, axes, scored=True)]
    if m.bias is not None:
        parameters.append(c.parameter(f"{node.target}.bias", m.bias, Axes(out)))
    attributes = (*m.stride, *m.padding, *m.padding, *m.output_padding, *m.dilation, m.groups)
    return c.layer(node, "conv_transpose2d" if len(m.padding) == 2 else "conv_transpose3d", [x], attributes,
                   parameters, out)


def linear_layer(c, node, x, weight, bias):
    """A linear layer on ``[N, F]``, or on the channels of a channels-last view
    (ConvNeXt's MLP): a 1x1 conv of the ``[N, C, H, W]`` value."""
    x_value, view = followed(c, x)
    if len(x_value.shape) != 2 and view is None:
        raise Opaque(f"kcp's linear reads [N, F] tensors or the channels of [N, H, W, C] views, "
                     f"got {list(x_value.shape)}")
    out = c.reserve(node)
    matrix = weight[1] if view is None else weight[1][:, :, None, None]
    parameters = [c.parameter(weight[0], matrix, Axes(out, x_value.name), scored=True)]
    if bias is not None:
        parameters.append(c.parameter(bias[0], bias[1], Axes(out)))
    if view is None:
        return c.layer(node, "linear", [x_value], (), parameters, out)
    return view.of(c.layer(node, "conv2d", [x_value], (1, 1, 0, 0, 0, 0, 1, 1, 1), parameters, out))


def normalization_layer(c, node, x, groups, spatial, epsilon, weight, bias, module=None):
    """A normalization of ``x``'s channels; ``weight``/``bias`` are ``(model
    name, tensor)`` or None (then 1 and 0, not the model's).

    A masked model's LayerNorm must leave pruned channels out of its
    statistics, as the compact one does: :class:`kcp.torch.Pruner` hooks
    ``module`` (its ``nn.LayerNorm``) for that. Without one to hook, only
    :func:`to_kcp` (``strict``) takes it."""
    x_value, view = followed(c, x)
    channels = x_value.shape[1]
    if not c.strict and groups < channels and (weight is None or bias is None):
        raise Opaque("has no affine weight and bias, by whose shapes kcp resizes a pruned LayerNorm or GroupNorm")
    if groups == 1 and channels > 1 and module is None and not c.strict:
        raise Opaque("normalises channels outside an nn.LayerNorm module, which kcp cannot hook to leave pruned "
                     "channels out of the masked model's statistics")
    out = c.reserve(node)
    parameters = []
    for part, fill, given in (("weight", 1.0, weight), ("bias", 0.0, bias)):
        parameters.append(c.parameter(given[0], given[1], Axes(out)) if given is not None
                          else (f"{out}.{part}", np.full(channels, fill, np.float32)))
    parameters.append((f"{out}.statistics_mask", np.ones(channels, np.float32)))
    value = c.layer(node, "normalization", [x_value], (groups, int(spatial), epsilon), parameters, out)
    if groups == 1 and module is not None:
        # The module's input holds the channels last, unless the module permutes them there itself (LayerNorm2d).
        inside = view is not None and node.op != "call_module" and view.made_inside(c.module_path(module))
        c.statistics(module, out, 1 if inside else -1, epsilon)
    return value if view is None else view.of(value)


def batchnorm_layer(c, node, module, shape):
    x = c.native(node.args[0])
    if len(shape) not in (4, 5):
        raise Opaque(f"kcp's batchnorm reads [N, C, H, W] and [N, C, D, H, W] tensors, got {list(shape)}")
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
    """A 2-D pool of ``[N, C, H, W]`` or a 3-D one (``<op>3d``) of ``[N, C, D, H, W]``."""
    if divisor_override is not None:
        raise Opaque("divisor_override is not supported")
    x_value = c.native(x)
    axes = len(x_value.shape) - 2
    if axes not in (2, 3):
        raise Opaque(f"kcp pools [N, C, H, W] and [N, C, D, H, W] tensors, got {list(x_value.shape)}")
    window = (*_per_axis(kernel, axes), *_per_axis(kernel if stride is None or stride == [] else stride, axes),
              *_per_axis(padding, axes) * 2)
    layer_op, attributes = pool_form(op, window, include_pad, ceil_mode, _per_axis(dilation, axes))
    return c.layer(node, layer_op, [x_value], attributes)


def adaptive_pool_layer(c, node, use_max, x, shape):
    """An adaptive pool to the traced ``shape`` (a global average where that is 1x1)."""
    x_value = c.native(x)
    if not use_max and len(shape) in (4, 5) and all(size == 1 for size in shape[2:]):
        return c.layer(node, "global_avg_pool", [x_value])
    if len(shape) != 4:
        raise Opaque("kcp pools [N, C, H, W] tensors to any size, [N, C, D, H, W] ones to their average")
    return c.layer(node, "adaptive_pool", [x_value], (*shape[2:], int(use_max)))


def resize_layer(c, node, x, shape, mode, align_corners):
    """A resize of ``x`` to the traced ``shape``'s H and W (bilinear or nearest), or D, H and W
    (trilinear or nearest)."""
    x_value = c.native(x)
    modes = {4: {"nearest": "nearest", "bilinear": "bilinear"}, 5: {"nearest": "nearest", "trilinear": "bilinear"}}
    if len(shape) not in modes:
        raise Opaque("kcp resizes [N, C, H, W] and [N, C, D, H, W] tensors")
    if mode not in modes[len(shape)]:
        raise Opaque(f"mode {mode!r} of a {len(shape)}-D tensor is not supported ({' or '.join(modes[len(shape)])})")
    return c.layer(node, "resize" if len(shape) == 4 else "resize3d", [x_value],
                   (*shape[2:], UPSAMPLE_MODES[modes[len(shape)][mode]], int(bool(align_corners))))


def activation_layer(c, node, x, kind, alpha=0.0, beta=0.0):
    x_value, view = followed(c, x)
    value = c.layer(node, "activation", [x_value], (ACTIVATIONS[kind], alpha, beta))
    return value if view is None else view.of(value)


def binary_layer(c, node, kind, a, b, shape):
    """``a kind b``: two traced tensors (broadcast), a tensor and a number
    (an affine activation), or a tensor and a parameter or buffer of the model
    with one entry per channel or one in all (a constant operand)."""
    if isinstance(a, numbers.Number) and isinstance(b, torch.fx.Node):
        if kind in ("add", "mul"):
            a, b = b, a
        elif kind == "sub":
            return activation_layer(c, node, b, "affine", -1.0, float(a))
        else:
            raise Opaque("divides a number by a tensor; kcp has no kernel for it")
    if isinstance(b, numbers.Number):
        if isinstance(b, bool):
            raise Opaque("combines a tensor with a bool")
        scale, shift = {"add": (1.0, b), "sub": (1.0, -b), "mul": (b, 0.0), "div": (1.0 / b if b else math.inf, 0.0)}[kind]
        if not math.isfinite(scale):
            raise Opaque("divides by zero")
        return activation_layer(c, node, a, "affine", float(scale), float(shift))
    constant = [k for k, v in enumerate((a, b)) if isinstance(v, torch.fx.Node) and v.op == "get_attr"]
    if constant:
        k = constant[0]
        x = c.native((a, b)[1 - k])
        return constant_layer(c, node, kind, x, (a, b)[k], constant_first=k == 0)
    a, b = c.native(a), c.native(b)
    if len(a.shape) != len(b.shape):
        raise Opaque(f"broadcasts tensors of ranks {len(a.shape)} and {len(b.shape)}; kcp broadcasts equal ranks")
    return c.layer(node, "binary", [a, b], (BINARY[kind], 0))


def constant_layer(c, node, kind, x, attribute, constant_first):
    """``x kind constant`` (or ``constant kind x``) with a model tensor shaped like one sample of ``x``."""
    tensor = _attribute_tensor(c, attribute)
    rank = len(x.shape) - 1
    shape = tuple(tensor.shape)
    if len(shape) == rank + 1 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) > rank:
        raise Opaque(f"its constant {list(tensor.shape)} does not broadcast over one sample {list(x.shape[1:])}")
    sample_shape = (1,) * (rank - len(shape)) + shape
    if any(s not in (1, d) for s, d in zip(sample_shape, x.shape[1:])):
        raise Opaque(f"its constant {list(shape)} does not broadcast over {list(x.shape[1:])}")
    per_channel = sample_shape[0] == x.shape[1] > 1
    if per_channel and tensor.dim() != rank:
        raise Opaque(f"its per-channel constant {list(shape)} must have the channels first, as [C, 1, 1]")
    out = c.reserve(node)
    array = tensor.detach().to("cpu", torch.float32).reshape(sample_shape)
    parameter = c.parameter(attribute.target, array, Axes(out)) if per_channel else (f"{out}.constant", array.numpy())
    return c.layer(node, "binary", [x], (BINARY[kind], int(constant_first)), [parameter], out)


def _attribute_tensor(c, node):
    """The parameter or buffer a ``get_attr`` node reads."""
    owner, _, name = node.target.rpartition(".")
    module = c.graph_module.get_submodule(owner)
    tensor = getattr(module, name)
    if not isinstance(tensor, torch.Tensor):
        raise Opaque(f"reads {node.target}, which is not a tensor")
    return tensor


@dataclass(frozen=True)
class GroupedView:
    """A ``[N, C, H, W]`` value viewed as ``[N, g, C / g, H, W]`` (``transposed``:
    as ``[N, C / g, g, H, W]``), the middle of a channel shuffle."""

    value: object
    groups: int
    transposed: bool = False


@dataclass(frozen=True)
class ChannelsLast:
    """A ``[N, C, H, W]`` value viewed as ``[N, H, W, C]`` (``x.permute(0, 2, 3, 1)``,
    ConvNeXt's layout around its LayerNorm and MLP); ``permute`` is the fx
    node that made the view."""

    value: object
    permute: torch.fx.Node

    def of(self, value):
        """The same view of another value."""
        return ChannelsLast(value, self.permute)

    def made_inside(self, path):
        """Whether the permute happened inside the module at ``path``."""
        return any(p == path for p, _ in (self.permute.meta.get("nn_module_stack") or {}).values())


def followed(c, x):
    """``(kcp value, ChannelsLast view or None)`` of an fx argument."""
    source = c.values.get(x) if isinstance(x, torch.fx.Node) else None
    if isinstance(source, ChannelsLast):
        return source.value, source
    return c.native(x), None


def permute_layer(c, node, x, dims):
    """To channels-last and back: ``permute(0, 2, 3, 1)`` of a ``[N, C, H, W]``
    value is a view kcp follows, ``permute(0, 3, 1, 2)`` of that view the value again."""
    dims = tuple(d % 4 for d in dims)
    source = c.values.get(x) if isinstance(x, torch.fx.Node) else None
    if isinstance(source, ChannelsLast) and dims == (0, 3, 1, 2):
        return c.layer(node, "identity", [source.value])
    if not isinstance(source, ChannelsLast) and dims == (0, 2, 3, 1) and len(c.native(x).shape) == 4:
        return ChannelsLast(c.native(x), node)
    raise Opaque(f"permutes dimensions {list(dims)}; kcp follows the permutes to channels-last and back")


@dataclass(frozen=True)
class Chunks:
    """The values of a ``torch.chunk`` along channels, for ``getitem`` to pick from."""

    values: tuple


def is_multiple(node):
    """Whether ``node`` returns several tensors kcp follows (a chunk along channels)."""
    return (node.op == "call_function" and node.target is torch.chunk) or (
        node.op == "call_method" and node.target == "chunk")


@dataclass(frozen=True)
class Regression:
    """PSMNet's and GwcNet's disparity regression of a one-channel volume
    ``[N, 1, D, H, W]``, step by step: ``"squeezed"`` (``torch.squeeze(x, 1)``),
    ``"probabilities"`` (its softmax over D), ``"weighted"`` (times
    ``arange(D)`` as ``[1, D, 1, 1]``); summed over D with ``keepdim`` it is
    the engine's ``soft_argmin`` with sign 1."""

    value: object
    stage: str


def _squeeze(c, node, shape):
    a = _bind(node, "input", ("dim", None))
    x = c.native(a["input"])
    if len(x.shape) != 5 or x.shape[1] != 1 or a["dim"] not in (1, -4):
        raise Opaque("kcp follows squeezing the channel of a one-channel [N, 1, D, H, W] volume")
    return Regression(x, "squeezed")


def _regression_weights(c, a, b):
    """The :class:`Regression` that ``a * b`` weighs by its disparities, or None."""
    for x, weights in ((a, b), (b, a)):
        source = c.values.get(x) if isinstance(x, torch.fx.Node) else None
        constant = c.values.get(weights) if isinstance(weights, torch.fx.Node) else None
        if isinstance(source, Regression) and source.stage == "probabilities" and isinstance(constant, torch.Tensor):
            disparities = source.value.shape[2]
            expected = torch.arange(disparities, dtype=constant.dtype).view(1, disparities, 1, 1)
            if constant.shape == expected.shape and torch.equal(constant, expected):
                return Regression(source.value, "weighted")
    return None


@dataclass(frozen=True)
class WrittenSlice:
    """A tensor computed only to be written into a :class:`VolumeBuffer` (a crop
    of W, or GwcNet's product, view and group mean of crops): no layer of its
    own; the buffer reads how ``node`` was computed from the fx graph."""

    node: torch.fx.Node


#: The steps of a slice written into a volume: crops, GwcNet's product of two, its view and group mean.
SLICE_STEPS = (operator.getitem, operator.mul, torch.mul, "mul", "view", "reshape", "mean")


def written_into_volume(c, node):
    """Whether every use of ``node`` (one of :data:`SLICE_STEPS`) ends, through
    such steps, in a write into a :class:`VolumeBuffer` (reading its shape aside)."""
    if node.target not in SLICE_STEPS or not node.users:
        return False
    for user in node.users:
        if (user.target is getattr and user.args[1] == "shape") or user.target == "size":
            continue
        if user.target is operator.setitem:
            if user.args[2] is not node or not isinstance(c.values.get(user.args[0]), VolumeBuffer):
                return False
        elif not written_into_volume(c, user):
            return False
    return True


@dataclass
class VolumeBuffer:
    """A zero ``[N, K, D, H, W]`` tensor (``x.new_zeros(...)``) that a loop over
    disparities fills slice by slice (PSMNet's ``cost[:, :C, i, :, i:] =
    left[:, :, :, i:]``, GwcNet's ``volume[:, :, i, :, i:] =
    groupwise_correlation(left[..., i:], right[..., :-i], G)``): the writes,
    ``{(channel half, or None for all channels, d): (written fx node, W start)}``,
    become a cost volume when a layer reads it (:meth:`volume`)."""

    node: torch.fx.Node
    shape: tuple
    writes: dict = field(default_factory=dict)
    refused: str | None = None  # why a write does not fit

    def sources(self, c):
        """The traced tensors the writes read, directly or through slice steps."""
        found, pending = [], [written for written, _ in self.writes.values()]
        while pending:
            node = pending.pop()
            if isinstance(c.values.get(node), WrittenSlice):
                pending.extend(node.all_input_nodes)
            elif isinstance(c.values.get(node), Value) and node not in found:
                found.append(node)
        return found

    def volume(self, c):
        """The cost volume the writes make, or :class:`Opaque`: a concatenation
        volume if every disparity ``d`` writes ``left[..., d:]`` into the first
        half and ``right[..., :-d]`` into the second at ``W`` positions ``d:``."""
        if self.refused:
            raise Opaque(self.refused)
        if any(half is None for half, _ in self.writes):
            return self._group_correlation(c)
        n, channels, disparities, height, width = self.shape
        sides = []
        for half in (0, 1):
            sources = set()
            for d in range(disparities):
                written, start = self.writes.get((half, d), (None, None))
                crop = (d or None, None) if half == 0 else (None, -d or None)
                sources.add(None if written is None or (start or 0) != d else _uncropped(written, d, *crop))
            if len(sources) != 1 or None in sources:
                raise Opaque("fills a zero volume other than as a concatenation volume, every disparity once")
            sides.append(sources.pop())
        left, right = (c.native(side) for side in sides)
        if left.shape != right.shape or 2 * left.shape[1] != channels or len(self.writes) != 2 * disparities:
            raise Opaque(f"fills a volume of {channels} channels from {list(left.shape)} and {list(right.shape)}")
        return c.layer(self.node, "cost_volume", [left, right], (COST_VOLUMES["concatenation"], disparities, 1, 1.0))

    def _group_correlation(self, c):
        """The group-wise correlation volume the writes make: every disparity
        ``d`` writes the group mean ``(left[..., d:] * right[..., :-d]).view(N,
        G, C / G, H, W - d).mean(2)`` at ``W`` positions ``d:``."""
        n, groups, disparities, height, width = self.shape
        pairs = set()
        for d in range(disparities):
            mean, start = self.writes.get((None, d), (None, None))
            view = mean.args[0] if mean is not None and mean.target == "mean" else None
            product = view.args[0] if view is not None and view.target in ("view", "reshape") else None
            if product is None or (start or 0) != d or product.target not in (operator.mul, torch.mul, "mul"):
                raise Opaque(f"writes disparity {d} other than as GwcNet's group-wise correlation")
            pairs.add((_uncropped(product.args[0], d, d or None, None),
                       _uncropped(product.args[1], d, None, -d or None)))
        if len(pairs) != 1 or None in next(iter(pairs)) or len(self.writes) != disparities:
            raise Opaque("fills a zero volume other than as a group-wise correlation volume, every disparity once")
        left, right = (c.native(side) for side in pairs.pop())
        channels = left.shape[1]
        if left.shape != right.shape or channels % groups:
            raise Opaque(f"fills {groups} groups from {list(left.shape)} and {list(right.shape)}")
        value = c.layer(self.node, "cost_volume", [left, right],
                        (COST_VOLUMES["group_correlation"], disparities, groups, groups / channels))
        c.divisor(value.name, left.name, channels // groups)
        return value


def _uncropped(node, d, start, stop):
    """The tensor ``node`` crops as ``[..., start:stop]`` of W (itself where ``d`` is 0), or None."""
    if d == 0:
        return node
    index = node.args[1] if node.target is operator.getitem else None
    whole = slice(None)
    if isinstance(index, tuple) and len(index) == 4 and index[:3] == (whole,) * 3 and \
            (index[3].start, index[3].stop, index[3].step) == (start, stop, None):
        return node.args[0]
    return None


def _new_zeros(c, node, shape):
    c.native(node.args[0])
    if len(shape) != 5:
        raise Opaque("kcp follows zero tensors filled as [N, K, D, H, W] cost volumes")
    return VolumeBuffer(node, shape)


def write_volume(c, node):
    """``buffer[index] = value`` into a :class:`VolumeBuffer`: records the write."""
    buffer, index, value = node.args
    buffer = c.values[buffer]
    whole = slice(None)
    if not (isinstance(index, tuple) and len(index) == 5 and index[0] == whole and index[3] == whole
            and isinstance(index[1], slice) and isinstance(index[2], int) and isinstance(index[4], slice)):
        raise Opaque("writes a volume other than at [:, channels, d, :, w:]")
    channels, d, positions = index[1], index[2], index[4]
    if channels.step is not None or (channels.start is not None and channels.stop is not None):
        raise Opaque("writes a volume's channels other than whole or as its first or second half")
    if not isinstance(c.values.get(value), (Value, WrittenSlice)) or positions.step is not None \
            or positions.stop is not None:
        raise Opaque("writes a volume with something other than a tensor or a slice computed for it")
    half = None if channels == whole else 0 if channels.start is None else 1
    buffer.writes[(half, d)] = (value, positions.start)


def reshape_layer(c, node, x, shape):
    """A view or reshape: flatten to ``[N, C*H*W]``, identity, or the steps of a channel shuffle."""
    source = c.values.get(x) if isinstance(x, torch.fx.Node) else None
    if isinstance(source, GroupedView):
        n, channels, height, width = source.value.shape
        if shape != (n, channels, height, width):
            raise Opaque(f"reshapes a grouped view to {list(shape)}; kcp follows it back to {[n, channels, height, width]}")
        if not source.transposed:
            return c.layer(node, "identity", [source.value])
        return c.layer(node, "channel_shuffle", [source.value], (source.groups,))
    x_value = c.native(x)
    if shape == x_value.shape:
        return c.layer(node, "identity", [x_value])
    if len(x_value.shape) == 4:
        n, channels, height, width = x_value.shape
        if shape == (n, math.prod(x_value.shape[1:])):
            return c.layer(node, "flatten", [x_value])
        if len(shape) == 5 and shape[0] == n and shape[3:] == (height, width) and shape[1] * shape[2] == channels:
            return GroupedView(x_value, shape[1])
    raise Opaque(f"reshapes {list(x_value.shape)} to {list(shape)}; kcp follows flattening to [N, C*H*W] "
                 "and channel shuffles")


def transpose_layer(c, node, x, dims, shape):
    source = c.values.get(x) if isinstance(x, torch.fx.Node) else None
    if isinstance(source, GroupedView) and sorted(d % 5 for d in dims) == [1, 2]:
        return GroupedView(source.value, source.groups, not source.transposed)
    raise Opaque(f"transposes dimensions {list(dims)}; kcp follows only the transpose of a channel shuffle")


def flatten_layer(c, node, x, shape):
    return reshape_layer(c, node, x, shape)


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
    return resize_layer(c, node, node.args[0], shape, m.mode, m.align_corners)


def _identity_module(c, node, m, shape):
    return simple_layer(c, node, "identity", node.args[0])


def _affine_of(node, m):
    """``[(name, weight), (name, bias)]`` of a normalization module, None where it has none."""
    return [None if t is None else (f"{node.target}.{part}", t) for part, t in (("weight", m.weight), ("bias", m.bias))]


def _layer_norm_module(c, node, m, shape):
    _normalises_channels(c, node.args[0], m.normalized_shape)
    return normalization_layer(c, node, node.args[0], 1, False, m.eps, *_affine_of(node, m), module=m)


def _normalises_channels(c, x, normalized_shape):
    """Checks that a LayerNorm over ``normalized_shape`` (the last axes) normalises channels."""
    x_value, view = followed(c, x)
    if len(normalized_shape) != 1 or (view is None and len(x_value.shape) != 2) or \
            x_value.shape[1] != normalized_shape[0]:
        raise Opaque(f"normalises over the last axes {list(normalized_shape)}; kcp's LayerNorm normalises the "
                     "channels of a channels-last view or of [N, F] features")


def _group_norm_module(c, node, m, shape):
    return normalization_layer(c, node, node.args[0], m.num_groups, True, m.eps, *_affine_of(node, m))


def _instance_norm_module(c, node, m, shape):
    if m.track_running_stats:
        raise Opaque("normalises by running statistics (track_running_stats=True)")
    x = c.native(node.args[0])
    if len(x.shape) != 4:
        raise Opaque(f"kcp's InstanceNorm reads [N, C, H, W] tensors, got {list(x.shape)}")
    return normalization_layer(c, node, node.args[0], x.shape[1], True, m.eps, *_affine_of(node, m))


def _prelu_module(c, node, m, shape):
    """PReLU: ``relu(x) + weight * (x - relu(x))``, its weight sliced with the
    channels; a single weight is a leaky relu, its slope fixed at the traced value."""
    if m.weight.numel() == 1:
        return activation_layer(c, node, node.args[0], "leaky_relu", float(m.weight))
    x = c.native(node.args[0])
    if len(x.shape) < 2 or m.weight.numel() != x.shape[1]:
        raise Opaque(f"has {m.weight.numel()} weights for {list(x.shape)}; kcp slices one per channel")
    positive = c.layer(node, "activation", [x], (ACTIVATIONS["relu"], 0.0, 0.0), name=c.reserve(node, ".positive"))
    negative = c.layer(node, "binary", [x, positive], (BINARY["sub"], 0), name=c.reserve(node, ".negative"))
    scaled = c.reserve(node, ".scaled")
    weight = m.weight.reshape(-1, *(1,) * (len(x.shape) - 2))
    negative = c.layer(node, "binary", [negative], (BINARY["mul"], 0),
                       [c.parameter(f"{node.target}.weight", weight, Axes(scaled))], scaled)
    return c.layer(node, "binary", [positive, negative], (BINARY["add"], 0))


def _activation_module(kind, *constants):
    """A handler for an activation module; ``constants`` are ``alpha`` and ``beta`` from the module."""
    return lambda c, node, m, shape: activation_layer(c, node, node.args[0], kind,
                                                      *(float(f(m)) for f in constants))


MODULES = {
    nn.Conv2d: _conv_module,
    nn.ConvTranspose2d: lambda c, node, m, shape: conv_transpose_layer(c, node, m),
    nn.Conv3d: _conv_module,
    nn.ConvTranspose3d: lambda c, node, m, shape: conv_transpose_layer(c, node, m),
    nn.BatchNorm2d: batchnorm_layer,
    nn.BatchNorm3d: batchnorm_layer,
    nn.SyncBatchNorm: batchnorm_layer,
    nn.ReLU: _activation_module("relu"),
    nn.ReLU6: _activation_module("clip", lambda m: 0.0, lambda m: 6.0),
    nn.Hardtanh: _activation_module("clip", lambda m: m.min_val, lambda m: m.max_val),
    nn.LeakyReLU: _activation_module("leaky_relu", lambda m: m.negative_slope),
    nn.Sigmoid: _activation_module("sigmoid"),
    nn.Tanh: _activation_module("tanh"),
    nn.SiLU: _activation_module("silu"),
    nn.GELU: lambda c, node, m, shape: activation_layer(c, node, node.args[0],
                                                        "gelu" if m.approximate == "none" else "gelu_tanh"),
    nn.Hardswish: _activation_module("hardswish"),
    nn.Hardsigmoid: _activation_module("hardsigmoid", lambda m: 1 / 6, lambda m: 0.5),
    nn.ELU: _activation_module("elu", lambda m: m.alpha),
    nn.PReLU: _prelu_module,
    nn.Mish: _activation_module("mish"),
    nn.Softplus: _activation_module("softplus", lambda m: m.beta, lambda m: m.threshold),
    nn.MaxPool2d: _max_pool_module,
    nn.AvgPool2d: _avg_pool_module,
    nn.MaxPool3d: _max_pool_module,
    nn.AvgPool3d: _avg_pool_module,
    nn.AdaptiveAvgPool3d: lambda c, node, m, shape: adaptive_pool_layer(c, node, False, node.args[0], shape),
    nn.AdaptiveAvgPool2d: lambda c, node, m, shape: adaptive_pool_layer(c, node, False, node.args[0], shape),
    nn.AdaptiveMaxPool2d: lambda c, node, m, shape: adaptive_pool_layer(c, node, True, node.args[0], shape),
    nn.Linear: _linear_module,
    nn.LayerNorm: _layer_norm_module,
    nn.GroupNorm: _group_norm_module,
    nn.InstanceNorm2d: _instance_norm_module,
    nn.Flatten: _flatten_module,
    nn.Upsample: _upsample_module,
    nn.Softmax: _softmax_module,
    nn.Identity: _identity_module,
    nn.Dropout: _identity_module,
    nn.Dropout2d: _identity_module,
}


# -- functions and methods -------------------------------------------------------

def _activation(kind, *spec, alpha=lambda a: 0.0, beta=lambda a: 0.0):
    """A handler for an activation function taking ``spec`` (as ``_bind``)."""
    def handler(c, node, shape):
        a = _bind(node, "input", *spec)
        return activation_layer(c, node, a["input"], kind, float(alpha(a)), float(beta(a)))
    return handler


def _clamp(c, node, shape):
    a = _bind(node, "input", ("min", None), ("max", None))
    if not all(v is None or isinstance(v, numbers.Number) for v in (a["min"], a["max"])):
        raise Opaque("clamps to tensor bounds; kcp clamps to numbers")
    low = -math.inf if a["min"] is None else float(a["min"])
    high = math.inf if a["max"] is None else float(a["max"])
    if not (math.isfinite(low) and math.isfinite(high)):
        if low == 0 and high == math.inf:
            return activation_layer(c, node, a["input"], "relu")
        raise Opaque("clamps on one side only (other than at 0 from below)")
    return activation_layer(c, node, a["input"], "clip", low, high)


def _gelu(c, node, shape):
    a = _bind(node, "input", ("approximate", "none"))
    return activation_layer(c, node, a["input"], "gelu" if a["approximate"] == "none" else "gelu_tanh")


def _binary(kind):
    def handler(c, node, shape):
        a = _bind(node, "input", "other", ("alpha", 1), ("out", None))
        if a["alpha"] != 1 or a["out"] is not None:
            raise Opaque("alpha and out are not supported")
        weighted = _regression_weights(c, a["input"], a["other"]) if kind == "mul" else None
        if weighted is not None:
            return weighted
        return binary_layer(c, node, kind, a["input"], a["other"], shape)
    return handler


def _reverse_binary(kind):
    """``number kind tensor`` (``operator`` functions whose first argument is a number)."""
    def handler(c, node, shape):
        return binary_layer(c, node, kind, node.args[0], node.args[1], shape)
    return handler


def channelwise_layer(c, node, inputs, shape):
    """An op along the non-channel axes (padding, cropping, concatenation
    along H or W, flips, reductions over H or W): output channel ``c`` reads
    channel ``c`` of each input, so the channel rules follow it; the engine
    has no kernel for it (native runs refuse it, naming it), and the pruned
    model's own code still computes it."""
    values = [c.native(x) for x in inputs]
    if len(shape) < 2 or any(len(v.shape) != len(shape) or v.shape[1] != shape[1] for v in values):
        raise Opaque(f"changes the channels ({[list(v.shape) for v in values]} to {list(shape)})")
    return c.layer(node, "channelwise", values, tuple(shape[1:]))


def _off_channels(dims, rank):
    """Whether the axes ``dims`` (an int, a sequence, or None: all) avoid the batch and channel axes."""
    dims = range(rank) if dims is None else dims if isinstance(dims, (tuple, list)) else (dims,)
    return all(isinstance(d, int) and d % rank >= 2 for d in dims)


def _cat(c, node, shape):
    a = _bind(node, "tensors", ("dim", 0))
    if not isinstance(a["tensors"], (tuple, list)):
        raise Opaque("concatenates a sequence kcp did not see built")
    if _off_channels(a["dim"], len(shape)):
        return channelwise_layer(c, node, a["tensors"], shape)
    require_channels(c, a["tensors"][0], a["dim"])
    return c.layer(node, "concat", [c.native(t) for t in a["tensors"]])


def _stack(c, node, shape):
    """Tensors of one width stacked along a new axis after the channels
    (the disparity axis of a cost volume built slice by slice): output
    channel ``c`` holds channel ``c`` of each input."""
    a = _bind(node, "tensors", ("dim", 0), ("out", None))
    if not isinstance(a["tensors"], (tuple, list)) or a["out"] is not None:
        raise Opaque("stacks a sequence kcp did not see built, or into out")
    if not _off_channels(a["dim"], len(shape)):
        raise Opaque("stacks along the batch or channel axis")
    values = [c.native(t) for t in a["tensors"]]
    if any(len(v.shape) != len(shape) - 1 or v.shape[1] != shape[1] for v in values):
        raise Opaque(f"stacks tensors of other widths ({[list(v.shape) for v in values]} to {list(shape)})")
    return c.layer(node, "channelwise", values, tuple(shape[1:]))


def _pad(c, node, shape):
    a = _bind(node, "input", "pad", ("mode", "constant"), ("value", None))
    if len(a["pad"]) > 2 * (len(shape) - 2):
        raise Opaque(f"pads {len(a['pad']) // 2} axes, the channels among them")
    return channelwise_layer(c, node, [a["input"]], shape)


def _sum(c, node, shape):
    a = _bind(node, "input", ("dim", None), ("keepdim", False), ("dtype", None))
    source = c.values.get(a["input"]) if isinstance(a["input"], torch.fx.Node) else None
    if isinstance(source, Regression) and source.stage == "weighted" and a["dim"] in (1, -3, (1,), [1]):
        if not a["keepdim"]:
            raise Opaque("a disparity regression without keepdim gives [N, H, W]; kcp's soft_argmin keeps the channel")
        return c.layer(node, "soft_argmin", [source.value], (1,))
    return _along("dim", "dim", ("keepdim", False), ("dtype", None))(c, node, shape)


def _along(axes, *spec):
    """A handler for a function of one tensor taking ``spec`` (as ``_bind``)
    along the axes its argument ``axes`` names (flip, roll, or a reduction
    keeping its dimensions), when those avoid the batch and channels."""
    def handler(c, node, shape):
        a = _bind(node, "input", *spec)
        rank = len(c.native(a["input"]).shape)
        if not _off_channels(a[axes], rank) or len(shape) != rank:
            raise Opaque("works along the batch or channel axis, or drops an axis")
        return channelwise_layer(c, node, [a["input"]], shape)
    return handler


def _chunk(c, node, shape):
    a = _bind(node, "input", "chunks", ("dim", 0))
    x = c.native(a["input"])
    require_channels(c, a["input"], a["dim"])
    if x.shape[1] % a["chunks"]:
        raise Opaque(f"chunks {x.shape[1]} channels into {a['chunks']} unequal parts")
    name = c.reserve(node)
    return Chunks(tuple(c.layer(node, "channel_chunk", [x], (k, a["chunks"]), name=f"{name}.{k}")
                        for k in range(a["chunks"])))


def _getitem(c, node, shape):
    source = c.values.get(node.args[0]) if isinstance(node.args[0], torch.fx.Node) else None
    if isinstance(source, Chunks) and isinstance(node.args[1], int):
        return source.values[node.args[1]]
    index = node.args[1] if isinstance(node.args[1], tuple) else (node.args[1],)
    whole = slice(None)
    if isinstance(source, Value) and len(index) >= 2 and index[:2] == (whole, whole) and \
            all(isinstance(i, slice) or i is Ellipsis for i in index):
        return channelwise_layer(c, node, [node.args[0]], shape)  # a crop of H or W
    raise Opaque("indexes a tensor; kcp follows the parts of a chunk and crops of H and W")


def _flatten(c, node, shape):
    a = _bind(node, "input", ("start_dim", 0), ("end_dim", -1))
    if (a["start_dim"], a["end_dim"]) != (1, -1):
        raise Opaque(f"flattens dimensions {a['start_dim']}..{a['end_dim']}; kcp flattens 1..-1")
    return flatten_layer(c, node, a["input"], shape)


def _reshape(c, node, shape):
    return reshape_layer(c, node, node.args[0], shape)


def _transpose(c, node, shape):
    return transpose_layer(c, node, node.args[0], node.args[1:3], shape)


def group_mean_layer(c, node, view, dim, keepdim, dtype):
    """``x.view(N, G, C / G, H, W).mean(2)``, the mean over each of ``G``
    equal groups of channels (GwcNet's group-wise correlation), as a grouped
    1x1 conv of weight ``G / C``. Every group keeps the same positions, as a
    grouped conv's do, and the weight stays ``G / C``; the model's own mean
    then divides by the fewer channels left, which compaction makes up for
    in the layers that read it (:meth:`Converter.divisor`)."""
    if view.transposed or dim is None or dim % 5 != 2 or keepdim or dtype is not None:
        raise Opaque("kcp follows the mean over dimension 2 of a [N, G, C / G, H, W] view, without keepdim")
    x, groups = view.value, view.groups
    per_group = x.shape[1] // groups
    out = c.reserve(node)
    weight = (f"{out}.group_mean", np.full((groups, per_group, 1, 1), 1 / per_group, np.float32))
    value = c.layer(node, "conv2d", [x], (1, 1, 0, 0, 0, 0, 1, 1, groups), [weight], out)
    c.divisor(out, x.name, per_group)
    return value


def _mean(c, node, shape):
    a = _bind(node, "input", ("dim", None), ("keepdim", False), ("dtype", None))
    source = c.values.get(a["input"]) if isinstance(a["input"], torch.fx.Node) else None
    if isinstance(source, GroupedView):
        return group_mean_layer(c, node, source, a["dim"], a["keepdim"], a["dtype"])
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


def _adaptive(use_max):
    def handler(c, node, shape):
        a = _bind(node, "input", "output_size", ("return_indices", False))
        if a["return_indices"]:
            raise Opaque("return_indices is not supported")
        return adaptive_pool_layer(c, node, use_max, a["input"], shape)
    return handler


def _interpolate(c, node, shape):
    a = _bind(node, "input", ("size", None), ("scale_factor", None), ("mode", "nearest"), ("align_corners", None),
              ("recompute_scale_factor", None), ("antialias", False))
    if a["antialias"]:
        raise Opaque("antialias is not supported")
    return resize_layer(c, node, a["input"], shape, a["mode"], a["align_corners"])


def _dropout(c, node, shape):
    a = _bind(node, "input", ("p", 0.5), ("training", True), ("inplace", False))
    return simple_layer(c, node, "identity", a["input"])


def _identity(c, node, shape):
    x = _bind(node, "input", ("memory_format", None))["input"]
    source = c.values.get(x) if isinstance(x, torch.fx.Node) else None
    if isinstance(source, GroupedView):  # .contiguous() in the middle of a channel shuffle
        return source
    return simple_layer(c, node, "identity", x)


def _stochastic_depth(c, node, shape):
    """torchvision's stochastic depth: the identity in evaluation, where kcp traces."""
    a = _bind(node, "input", "p", "mode", ("training", True))
    if a["training"] and a["p"] > 0:
        raise Opaque("drops residual branches at random (training mode); kcp traces in evaluation mode")
    return simple_layer(c, node, "identity", a["input"])


def _permute(c, node, shape):
    if node.op == "call_method":
        dims = node.args[1:]
    else:
        dims = node.args[1] if len(node.args) > 1 else node.kwargs["dims"]
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    return permute_layer(c, node, node.args[0], dims)


def _layer_norm(c, node, shape):
    a = _bind(node, "input", "normalized_shape", ("weight", None), ("bias", None), ("eps", 1e-5))
    _normalises_channels(c, a["input"], a["normalized_shape"])
    return normalization_layer(c, node, a["input"], 1, False, a["eps"], _weight(c, a["weight"]), _weight(c, a["bias"]),
                               module=_owning_layer_norm(c, node))


def _owning_layer_norm(c, node):
    """The innermost ``nn.LayerNorm`` whose forward made ``node``, if any."""
    for path, _ in reversed(list((node.meta.get("nn_module_stack") or {}).values())):
        module = c.model.get_submodule(path)
        if isinstance(module, nn.LayerNorm):
            return module
    return None


def _group_norm(c, node, shape):
    a = _bind(node, "input", "num_groups", ("weight", None), ("bias", None), ("eps", 1e-5))
    return normalization_layer(c, node, a["input"], a["num_groups"], True, a["eps"], _weight(c, a["weight"]),
                               _weight(c, a["bias"]))


def _softmax(c, node, shape):
    a = _bind(node, "input", "dim", ("_stacklevel", 3), ("dtype", None))
    source = c.values.get(a["input"]) if isinstance(a["input"], torch.fx.Node) else None
    if isinstance(source, Regression) and source.stage == "squeezed" and a["dim"] in (1, -3):
        return Regression(source.value, "probabilities")
    require_channels(c, a["input"], a["dim"])
    return simple_layer(c, node, "softmax", a["input"])


def _conv(c, node, shape):
    a = _bind(node, "input", "weight", ("bias", None), ("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1))
    x = c.native(a["input"])
    if a["groups"] > 1 and a["groups"] == x.shape[1]:
        raise Opaque("a functional depthwise conv cannot be compacted (its groups argument is in the code)")
    return conv_layer(c, node, a["input"], _weight(c, a["weight"]), _weight(c, a["bias"]), a["stride"],
                      a["padding"], a["dilation"], a["groups"])


def _linear(c, node, shape):
    a = _bind(node, "input", "weight", ("bias", None))
    return linear_layer(c, node, a["input"], _weight(c, a["weight"]), _weight(c, a["bias"]))


_RELU = _activation("relu", ("inplace", False))
_SIGMOID = _activation("sigmoid")
_TANH = _activation("tanh")
_SILU = _activation("silu", ("inplace", False))
_HARDSWISH = _activation("hardswish", ("inplace", False))
_HARDSIGMOID = _activation("hardsigmoid", ("inplace", False), alpha=lambda a: 1 / 6, beta=lambda a: 0.5)

FUNCTIONS = {
    F.relu: _RELU, torch.relu: _RELU, F.relu_: _RELU, torch.relu_: _RELU,
    F.relu6: _activation("clip", ("inplace", False), beta=lambda a: 6.0),
    F.hardtanh: _activation("clip", ("min_val", -1.0), ("max_val", 1.0), ("inplace", False),
                            alpha=lambda a: a["min_val"], beta=lambda a: a["max_val"]),
    torch.clamp: _clamp, torch.clip: _clamp,
    F.leaky_relu: _activation("leaky_relu", ("negative_slope", 0.01), ("inplace", False),
                              alpha=lambda a: a["negative_slope"]),
    torch.sigmoid: _SIGMOID, F.sigmoid: _SIGMOID,
    torch.tanh: _TANH, F.tanh: _TANH,
    F.silu: _SILU, F.gelu: _gelu, F.hardswish: _HARDSWISH, F.hardsigmoid: _HARDSIGMOID,
    F.elu: _activation("elu", ("alpha", 1.0), ("inplace", False), alpha=lambda a: a["alpha"]),
    F.mish: _activation("mish", ("inplace", False)),
    F.softplus: _activation("softplus", ("beta", 1.0), ("threshold", 20.0), alpha=lambda a: a["beta"],
                            beta=lambda a: a["threshold"]),
    operator.add: _binary("add"), operator.iadd: _binary("add"), torch.add: _binary("add"),
    operator.sub: _binary("sub"), operator.isub: _binary("sub"), torch.sub: _binary("sub"),
    operator.mul: _binary("mul"), operator.imul: _binary("mul"), torch.mul: _binary("mul"),
    operator.truediv: _binary("div"), operator.itruediv: _binary("div"), torch.div: _binary("div"),
    torch.cat: _cat, torch.concat: _cat, torch.concatenate: _cat, torch.stack: _stack,
    torch.chunk: _chunk, operator.getitem: _getitem,
    torch.flatten: _flatten, torch.reshape: _reshape, torch.transpose: _transpose,
    torch.mean: _mean,
    F.max_pool2d: _max_pool, F.avg_pool2d: _avg_pool, F.max_pool3d: _max_pool, F.avg_pool3d: _avg_pool,
    F.adaptive_avg_pool3d: _adaptive(False),
    F.adaptive_avg_pool2d: _adaptive(False), F.adaptive_max_pool2d: _adaptive(True),
    F.interpolate: _interpolate,
    F.dropout: _dropout, F.dropout2d: _dropout,
    torch.softmax: _softmax, F.softmax: _softmax,
    F.conv2d: _conv, torch.conv2d: _conv, F.conv3d: _conv, torch.conv3d: _conv,
    F.linear: _linear,
    torch.permute: _permute, F.layer_norm: _layer_norm, F.group_norm: _group_norm,
    F.pad: _pad, torch.flip: _along("dims", "dims"), torch.roll: _along("dims", "shifts", ("dims", None)),
    torch.amax: _along("dim", "dim", ("keepdim", False)), torch.amin: _along("dim", "dim", ("keepdim", False)),
    torch.sum: _sum, torch.squeeze: _squeeze,
}

# Functions of libraries kcp does not import, by ``module.qualname``.
LIBRARY_FUNCTIONS = {
    "torchvision.ops.stochastic_depth.stochastic_depth": _stochastic_depth,
}

METHODS = {
    "relu": _RELU, "relu_": _RELU, "sigmoid": _SIGMOID, "sigmoid_": _SIGMOID, "tanh": _TANH, "tanh_": _TANH,
    "clamp": _clamp, "clamp_": _clamp, "clip": _clamp,
    "add": _binary("add"), "add_": _binary("add"), "sub": _binary("sub"), "sub_": _binary("sub"),
    "mul": _binary("mul"), "mul_": _binary("mul"), "div": _binary("div"), "div_": _binary("div"),
    "new_zeros": _new_zeros, "chunk": _chunk, "flatten": _flatten, "view": _reshape, "reshape": _reshape,
    "transpose": _transpose,
    "mean": _mean, "softmax": _softmax, "contiguous": _identity, "permute": _permute,
    "flip": _along("dims", "dims"), "roll": _along("dims", "shifts", ("dims", None)),
    "amax": _along("dim", "dim", ("keepdim", False)), "amin": _along("dim", "dim", ("keepdim", False)),
    "sum": _sum, "squeeze": _squeeze,
}
