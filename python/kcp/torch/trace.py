"""PyTorch models as kcp networks: traced by ``torch.fx``, shaped by the
example inputs (``ShapeProp``), and rebuilt node by node as a
:class:`kcp.Network` (:mod:`kcp.torch.ops` says what each op becomes) whose
parameters carry the model's qualified names (``"layer1.0.conv1.weight"``).
A module called twice shares its parameters, so its calls are pruned
together.

A node with no kcp form is *opaque*. In ``strict`` mode (:func:`kcp.torch.to_kcp`) it
is an error naming the node; otherwise the tensors it reads become network
outputs and the tensor it writes a network input, which the engine freezes,
and :attr:`Traced.frozen_by` says why, naming the module.
"""

import contextlib
import operator
from dataclasses import dataclass

import torch
import torch.fx
import torch.nn as nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from .._native import KCPError
from ..network import Network, Value
from ..onnx.format import fresh_name
from .ops import (ChannelsLast, GroupedView, Opaque, Regression, VolumeBuffer, WrittenSlice, convert, is_multiple,
                  write_volume, written_into_volume)


@dataclass
class Traced:
    """A model as a kcp network.

    Attributes:
        network: the :class:`kcp.Network` (parameters named as in the model).
        axes: per model parameter or buffer name, its :class:`Axes`.
        scored: the conv and linear weights, the tensors the criteria read,
            with their shapes in the network (a channels-last linear weight is a 1x1 conv's).
        frozen_by: engine reason (``"network input 'name'"``) -> why, naming the node.
        layers: ``(fx node, kcp value name)`` of every node with a kcp form.
        statistics: per ``nn.LayerNorm`` path normalising channels, ``(kcp
            value name, axis of the module's input that holds the channels,
            epsilon)``: a masked model's statistics leave out pruned channels there.
        divisors: per kcp value that is a mean over groups of channels,
            ``(the value it averages, channels per group)``: the compact
            model's mean divides by the channels left.
    """

    network: Network
    axes: dict
    scored: dict
    frozen_by: dict
    layers: list
    statistics: dict
    divisors: dict


def _shape(node):
    """The traced shape of ``node``'s tensor, or None if it is not one tensor."""
    meta = node.meta.get("tensor_meta") if isinstance(node, torch.fx.Node) else None
    return tuple(meta.shape) if isinstance(meta, TensorMetadata) else None


@contextlib.contextmanager
def _evaluating(model):
    """``model`` in eval mode inside the block (batchnorm statistics untouched), its modes restored after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


class _Proxy(torch.fx.Proxy):
    """An fx proxy that records item assignment (``volume[:, :C, i] = x``) as an ``operator.setitem`` node."""

    def __setitem__(self, index, value):
        self.tracer.create_proxy("call_function", operator.setitem, (self, index, value), {})


class _Tracer(torch.fx.Tracer):
    """``torch.fx.Tracer`` remembering the module being traced, for error messages,
    and following item assignment into tensors (:class:`_Proxy`)."""

    def __init__(self):
        super().__init__()
        self.inside = []

    def proxy(self, node):
        return _Proxy(node, self)

    def call_module(self, module, forward, args, kwargs):
        self.inside.append(self.path_of_module(module))
        result = super().call_module(module, forward, args, kwargs)
        self.inside.pop()  # not reached when tracing fails: the innermost module stays on top
        return result


def _reads_shapes_only(node):
    """Whether a non-tensor node reads only sizes, dtypes or devices of tensors (``x.shape[-2:]``, ``x.size()``)."""
    if node.op == "call_method":
        return node.target in ("size", "dim", "numel")
    if node.op == "call_function" and node.target is getattr:
        return node.args[1] in ("shape", "dtype", "device", "ndim")
    return (node.op == "call_function" and node.target is operator.getitem and isinstance(node.args[0], torch.fx.Node)
            and _shape(node.args[0]) is None and not is_multiple(node.args[0]))


def _channel_count_of(node):
    """The tensor node whose channel count (dimension 1) ``node`` reads, if it does."""
    if node.op == "call_method" and node.target == "size" and len(node.args) > 1:
        return node.args[0] if node.args[1] in (1, -3) else None
    if node.op == "call_function" and node.target is operator.getitem and isinstance(node.args[0], torch.fx.Node):
        whole = node.args[0]
        reads_whole = (whole.op == "call_method" and whole.target == "size" and len(whole.args) == 1) or (
            whole.op == "call_function" and whole.target is getattr and whole.args[1] == "shape")
        index = node.args[1]
        if reads_whole and (index in (1, -3) or (isinstance(index, slice) and 1 in range(4)[index])):
            return whole.args[0]
    return None


def _feeds_views_only(node):
    """Whether every use of ``node``'s value ends, through integer arithmetic, in a view or reshape."""
    for user in node.users:
        if user.op == "call_method" and user.target in ("view", "reshape"):
            continue
        if user.op == "call_function" and user.target in (torch.reshape,):
            continue
        if user.op == "call_function" and user.target in (operator.floordiv, operator.mul) and _feeds_views_only(user):
            continue
        if (user.op == "call_method" and user.target == "new_zeros") or user.target is operator.setitem:
            continue  # the size or channel slice of a cost volume filled slice by slice (VolumeBuffer)
        return False
    return True


def _followed_value(value):
    """The kcp value a traced result stands for: itself, or the value a view of it shows."""
    return value.value if isinstance(value, (ChannelsLast, GroupedView, Regression)) else value


def _summary(error):
    """``"Type: first line of the message"``."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _module_label(path, module):
    return f"module '{path}' ({type(module).__name__})" if path else f"the model ({type(module).__name__})"


class _Shapes(ShapeProp):
    """ShapeProp whose errors name the node's module."""

    def __init__(self, graph_module, where):
        super().__init__(graph_module)
        self.where = where

    def run_node(self, node):
        try:
            result = super().run_node(node)
        except Exception as error:  # ShapeProp wraps the node's own error
            raise ValueError(f"example_inputs: {self.where(node)} fails on them "
                             f"({_summary(error.__cause__ or error)})") from None
        if node.op == "call_function" or node.op == "call_method":
            if isinstance(result, torch.Tensor) and result.numel() <= CONSTANT_SIZE and _is_constant(node):
                node.meta["kcp_constant"] = result.detach().to("cpu").clone()
        return result


#: The most entries of a tensor the model computes from no input that kcp keeps (``torch.arange(D)``).
CONSTANT_SIZE = 1 << 16


def _is_constant(node):
    """Whether ``node`` computes its tensor from no input of the model (reading a
    tensor's dtype or device does not count)."""
    if "kcp_is_constant" not in node.meta:
        if node.op == "placeholder" or node.op == "call_module":
            constant = False
        elif node.op == "call_function" and node.target is getattr and node.args[1] in ("dtype", "device"):
            constant = True
        else:
            constant = node.op != "output" and all(_is_constant(n) for n in node.all_input_nodes)
        node.meta["kcp_is_constant"] = constant
    return node.meta["kcp_is_constant"]


def _example_tensors(example_inputs):
    """``example_inputs`` as a tuple of tensors."""
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    if not inputs or not all(isinstance(x, torch.Tensor) for x in inputs):
        raise TypeError(f"example_inputs: expected a tensor or a tuple of tensors, got {type(example_inputs).__name__}")
    return inputs


def trace(model, example_inputs, *, strict):
    """``model`` as a :class:`Traced` network, shapes taken from ``example_inputs``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    inputs = _example_tensors(example_inputs)
    tracer = _Tracer()
    try:
        with _evaluating(model):  # the inference graph: dropout and stochastic depth are identities
            graph = tracer.trace(model)
    except Exception as error:
        path = tracer.inside[-1] if tracer.inside else ""
        raise ValueError(f"model: torch.fx cannot trace {_module_label(path, model.get_submodule(path))}: "
                         f"{_summary(error)}") from None
    converter = _Converter(model, torch.fx.GraphModule(model, graph), strict)
    with _evaluating(model):
        _Shapes(converter.graph_module, converter.where).propagate(*inputs)
    return converter.run()


class _Converter:
    def __init__(self, model, graph_module, strict):
        self.model = model  # every module, also those traced through (not in graph_module)
        self.graph_module = graph_module
        self.strict = strict
        self.net = Network()
        self.values = {}  # fx node -> kcp Value
        self.taken = set()
        self.outputs = set()
        self.traced = Traced(self.net, {}, {}, {}, [], {}, {})

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
        if shape is None or len(shape) not in (2, 4, 5):
            if self.strict:
                raise ValueError(f"example_inputs: input '{node.name}' must be a [N, C, H, W], [N, C, D, H, W] or "
                                 f"[N, F] tensor, got shape {shape}")
            return
        self.values[node] = self.net.input(fresh_name(node.name, self.taken), shape)

    def _outputs(self, node):
        leaves = []
        torch.fx.node.map_arg(node.args[0], leaves.append)
        for leaf in leaves:
            self._settle(leaf)
            if not isinstance(self.values.get(leaf), Value):
                if self.strict:
                    raise ValueError(f"model: output {self.where(leaf)} is not a [N, C, H, W], [N, C, D, H, W] or "
                                     "[N, F] tensor")
                if isinstance(_followed_value(self.values.get(leaf)), Value):  # a view: its channels stay
                    self._mark_output(leaf)
                continue
            self._mark_output(leaf)

    def _settle(self, node):
        """Makes a :class:`VolumeBuffer` read by the model's output or by an op
        kcp does not follow its volume, or, if it is none kcp knows, keeps the
        channels written into it."""
        if isinstance(self.values.get(node), VolumeBuffer):
            with contextlib.suppress(Opaque):
                self.native(node)

    def _mark_output(self, node):
        """Makes the kcp value behind ``node`` (or behind its view) a network output."""
        if node not in self.outputs:
            self.outputs.add(node)
            self.net.output(_followed_value(self.values[node]))

    def _call(self, node):
        shape = _shape(node)
        if "kcp_constant" in node.meta:  # computed from no input: a value for the ops that read it
            self.values[node] = node.meta["kcp_constant"]
            return
        if node.target is operator.setitem and isinstance(self.values.get(node.args[0]), VolumeBuffer):
            buffer = self.values[node.args[0]]
            try:
                write_volume(self, node)
            except Opaque as reason:
                buffer.refused = str(reason)
                buffer.writes[None, None] = (node.args[2], None)  # its sources keep their channels too
            return
        if shape is not None and node.op in ("call_function", "call_method") and written_into_volume(self, node):
            self.values[node] = WrittenSlice(node)  # computed for a volume buffer, which reads it from the graph
            return
        if shape is None and not is_multiple(node):
            # Sizes, dtypes and other plain values: the tensors built from them carry their traced shapes, and
            # the model's code recomputes them after pruning. A channel count used for more than the views
            # kcp follows would change the model's arithmetic, so it freezes its tensor, as does anything else.
            tensor = _channel_count_of(node)
            if tensor is not None and not _feeds_views_only(node) and isinstance(self.values.get(tensor), Value):
                self._opaque(node, f"reads the channel count of '{tensor.name}'", frozen=[tensor])
            elif not _reads_shapes_only(node) and any(isinstance(_followed_value(self.values.get(n)), Value)
                                                      for n in node.all_input_nodes):
                self._opaque(node, "kcp has no op for it (its result is not one tensor)")
            return
        try:
            value = convert(self, node, shape)
        except Opaque as reason:
            self._opaque(node, str(reason))
            return
        except (ValueError, KCPError) as error:  # the engine refused the layer
            raise ValueError(f"model: {self.where(node)}: {error}") from None
        self.values[node] = value
        if isinstance(value, Value):
            self.traced.layers.append((node, value.name))

    def _opaque(self, node, reason, frozen=None):
        """Freezes what ``node`` touches (or the nodes ``frozen``): the kcp values it reads become network
        outputs, its tensor an input."""
        if self.strict:
            raise ValueError(f"model: {self.where(node)}: {reason}; kcp has no native form for it")
        text = f"{self.where(node)}: {reason}; the channels it reads and writes are kept"
        for source in node.all_input_nodes if frozen is None else frozen:
            self._settle(source)
            value = _followed_value(self.values.get(source))
            if isinstance(value, Value) and source not in self.outputs:
                self._mark_output(source)
                self.traced.frozen_by[f"network output '{value.name}'"] = text
        shape = _shape(node)
        if shape is not None and len(shape) in (2, 4, 5):
            value = self.net.input(fresh_name(node.name, self.taken), shape)
            self.values[node] = value
            self.traced.frozen_by[f"network input '{value.name}'"] = text

    # -- nodes -----------------------------------------------------------

    # -- what the builders of kcp.torch.ops use -------------------------------

    def native(self, arg):
        """The kcp value of an fx argument (a filled :class:`VolumeBuffer` becomes its volume here)."""
        buffer = self.values.get(arg) if isinstance(arg, torch.fx.Node) else None
        if isinstance(buffer, VolumeBuffer):
            try:
                self.values[arg] = buffer.volume(self)
            except Opaque:
                for source in buffer.sources(self):  # the written features must keep their channels
                    if source not in self.outputs:
                        self._mark_output(source)
                raise
        if not isinstance(arg, torch.fx.Node) or not isinstance(self.values.get(arg), Value):
            what = f"'{arg.name}'" if isinstance(arg, torch.fx.Node) else repr(arg)
            raise Opaque(f"reads {what}, which kcp does not follow as a [N, C, H, W], [N, C, D, H, W] or [N, F] tensor")
        return self.values[arg]

    def module_path(self, module):
        return next(path for path, m in self.model.named_modules() if m is module)

    def statistics(self, module, value, axis, epsilon):
        """Records that ``module`` (an ``nn.LayerNorm``) normalises the channels of ``value`` on ``axis`` of its input."""
        self.traced.statistics[self.module_path(module)] = (value, axis, epsilon)

    def divisor(self, value, source, count):
        """Records that ``value`` is a mean over groups of ``count`` channels of ``source``."""
        self.traced.divisors[value] = (source, count)

    def reserve(self, node, suffix=""):
        """A new kcp value name for ``node``: its module path, or its fx name, and ``suffix``."""
        return fresh_name((node.target if node.op == "call_module" else node.name) + suffix, self.taken)

    def layer(self, node, op, inputs, attributes=(), parameters=(), name=None):
        return self.net.layer(op, inputs, attributes, parameters, name=name or self.reserve(node))

    def parameter(self, name, tensor, axes, *, scored=False):
        """A parameter of a kcp layer: a new ``(name, array)``, or the name of one added already (shared)."""
        if self.net._has_parameter(name):
            return name
        self.traced.axes[name] = axes
        array = tensor.detach().to("cpu", torch.float32).numpy()
        if scored:
            self.traced.scored[name] = array.shape
        return name, array
