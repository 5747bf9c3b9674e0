"""Pruning whole networks: channel spaces, plans, masked, compact and
compensated networks.

Channels that must go together (through residual adds, concats, shared
weights, a stereo correlation) form *channel classes*; the values they tie
form a *space*. A :class:`Plan` keeps or prunes every class, and applies to
the network it was made for, or to any network of the same architecture:
it stores, per space, which channel positions are pruned.
"""

import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from . import _arguments, _native
from ._progress import progress_bar
from .layer import CENTERS, CRITERIA
from .network import WEIGHTED_OPS, Network

MODES = {"mask": 0, "compact": 1}


@dataclass(frozen=True)
class Space:
    """Channels pruned together: ``values`` (names), ``channels`` (classes),
    ``prunable`` (how many may be pruned) and why the rest are frozen."""

    index: int
    values: tuple
    channels: int
    prunable: int
    reason: str

    def to_dict(self):
        return {"index": self.index, "values": list(self.values), "channels": self.channels,
                "prunable": self.prunable, "frozen": self.prunable == 0, "reason": self.reason}


def _structure(net):
    """``(class_of per value, space_of, frozen, reasons)`` from the engine."""
    class_of, space_of, frozen, reasons = _native.network_spaces(net._handle)
    widths = [v.shape[1] for v in net._all_values()]
    offsets = np.cumsum([0, *widths])
    per_value = [class_of[offsets[i]:offsets[i + 1]] for i in range(len(widths))]
    return per_value, space_of, frozen, reasons


def spaces(net: Network) -> list[Space]:
    """The channel spaces of ``net``, each a :class:`Space`."""
    with net._lock:  # one view of the network: builders in other threads wait
        per_value, space_of, frozen, reasons = _structure(net)
        members: list[list[int]] = [[] for _ in reasons]
        for label, space in enumerate(space_of):
            members[space].append(label)
        values: list[list[str]] = [[] for _ in reasons]
        for value, op, classes in zip(net._all_values(), net._value_ops(), per_value):
            if len(classes) and op != "concat":
                values[space_of[classes[0]]].append(value.name)
        return [Space(index, tuple(values[index]), len(members[index]), int((~frozen[members[index]]).sum()),
                      reason.replace("\n", "; ")) for index, reason in enumerate(reasons)]


@dataclass
class Plan:
    """Which channels of each space are pruned, and what it saves.

    Attributes:
        pruned: per space index, the pruned channel positions in that space.
        channels: per space index, its channel count (checked on apply).
        ratio: the uniform (or global) ratio applied.
        macs_before, macs_after, params_before, params_after: per sample.
        widths: per conv or linear layer, its output channels ``[before, after]``.
        scores: per space, the score of each channel (empty if loaded from JSON).
    """

    pruned: dict
    channels: dict
    ratio: float
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    criterion: str = "kcp"
    widths: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict, repr=False)

    @property
    def macs_reduction(self):
        return 1 - self.macs_after / self.macs_before if self.macs_before else 0.0

    def _keep_classes(self, net, space_of=None):
        """Per channel class of ``net``, whether the plan keeps it; ``space_of``
        (the class-to-space map of ``_structure``) may be given if known."""
        if space_of is None:
            space_of = _structure(net)[1]
        keep = np.ones(len(space_of), dtype=bool)
        for space, count in self.channels.items():
            members = np.flatnonzero(space_of == space)
            if len(members) != count:
                raise ValueError(f"plan: space {space} has {len(members)} channels in this network, "
                                 f"the plan was made for {count}")
            pruned = [_arguments.integer(c, f"pruned (space {space})", 0, count - 1) for c in self.pruned.get(space, [])]
            keep[members[pruned]] = False
        return keep

    def apply(self, net: Network, mode: Literal["compact", "mask"] = "compact") -> Network:
        """The masked (``mode="mask"``) or compact (``"compact"``) network."""
        mode_code = _arguments.choice(mode, "mode", MODES)
        with net._lock:  # one view of the network: builders in other threads wait
            return net._derived(_native.network_prune(net._handle, self._keep_classes(net), mode_code))

    def compensate(self, net: Network, calibration, *, ridge: float = 1e-3, chunk: int = 16,
                   progress: bool | str = True) -> Network:
        """The compact network with the layers that read pruned channels
        refitted, without training, to reproduce ``net``'s outputs.

        Each such conv (one group) or linear layer is refitted in network
        order by ridge least squares on the ``calibration`` inputs (one array
        per network input, in a list, or one array for a network with one
        input; any number of samples, run ``chunk`` at a time): its weights become ``W = Y X^T (X X^T + lambda I)^-1``,
        with ``X`` its unfolded inputs in the compact network (earlier layers
        already refitted) and ``Y`` the dense network's outputs of that layer
        on the kept channels, ``lambda = ridge * mean(diag(X X^T))`` (He et
        al., ICCV 2017; Luo et al., ThiNet, ICCV 2017). A few hundred
        calibration images are typically enough. ``progress`` shows a tqdm
        bar (a string labels it); Ctrl-C stops the work and raises
        ``KeyboardInterrupt``. ``net`` is left unchanged.
        """
        arrays, batch = net._checked_inputs(calibration if isinstance(calibration, (list, tuple)) else [calibration])
        ridge = _arguments.non_negative(ridge, "ridge")
        chunk = _arguments.integer(chunk, "chunk", 1)
        with net._lock:  # one view of the network: builders in other threads wait
            with progress_bar(progress, "compensate", "chunk") as report:
                handle = _native.network_compensate(net._handle, self._keep_classes(net), arrays, batch, ridge, chunk,
                                                    report)
            return net._derived(handle)

    def to_json(self) -> str:
        """The plan as JSON (everything needed to re-apply it)."""
        return json.dumps({
            "format": "kcp-plan/1", "criterion": self.criterion, "ratio": self.ratio,
            "macs": {"before": self.macs_before, "after": self.macs_after},
            "params": {"before": self.params_before, "after": self.params_after},
            "widths": self.widths,
            "spaces": [{"index": s, "channels": c, "pruned": list(map(int, self.pruned.get(s, [])))}
                       for s, c in sorted(self.channels.items())],
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != "kcp-plan/1":
            raise ValueError("text: not a kcp plan (format 'kcp-plan/1' expected)")
        try:
            spaces = data["spaces"]
            pruned = {_arguments.integer(s["index"], "index"): [_arguments.integer(c, "pruned") for c in s["pruned"]]
                      for s in spaces}
            channels = {_arguments.integer(s["index"], "index"): _arguments.integer(s["channels"], "channels", 0)
                        for s in spaces}
            return cls(pruned=pruned, channels=channels, ratio=_arguments.finite(data["ratio"], "ratio"),
                       macs_before=data["macs"]["before"], macs_after=data["macs"]["after"],
                       params_before=data["params"]["before"], params_after=data["params"]["after"],
                       criterion=data["criterion"], widths=dict(data.get("widths", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"text: a kcp plan with a missing or malformed entry ({type(error).__name__}: {error})") from None


def plan(net: Network, *, ratio: float | None = None, macs_reduction: float | None = None,
         global_pruning: bool = False, max_ratio: float = 0.9,
         criterion: Literal["kcp", "l1", "l2", "fpgm", "random"] = "kcp", center: Literal["mean", "median"] = "mean",
         round_to: int = 1, overrides: dict[int | str, float] | None = None, seed: int = 0,
         global_: bool | None = None, _weights=None) -> Plan:
    """Plan pruning for a whole network.

    Exactly one of ``ratio`` (prune ``floor(ratio * n)`` of every space's
    ``n`` prunable channels) and ``macs_reduction`` (the smallest uniform
    ratio whose compact network has that fraction fewer MACs) is given.
    ``global_pruning=True`` ranks layer-normalised scores across spaces
    instead, pruning at most ``max_ratio`` of any space (``global_``, its old
    name, still works and warns). KCP scores a channel by the
    sum of its kernel-cluster scores ``s_i`` over every layer that reads it;
    the baselines (``"l1"``, ``"l2"``, ``"fpgm"``, ``"random"``) by the sum of
    their filter scores over every layer that writes it.

    ``overrides`` fixes the ratio of some spaces, ``{space: ratio}`` with a
    space given by its index or by the name of one of its values (a layer);
    an override of 0 keeps a space whole. ``round_to`` keeps a multiple of
    that many channels in each space; ``seed`` seeds ``"random"``.

    ``_weights`` (for :mod:`kcp.torch`) maps parameter names to aligned,
    C-contiguous float32 arrays of the parameters' shapes, scored in place of
    the network's own weights: read during the call, never copied or kept.
    """
    if (ratio is None) == (macs_reduction is None):
        raise ValueError("ratio: give exactly one of ratio and macs_reduction")
    if ratio is not None:
        kind, amount = 0, _arguments.ratio(ratio)
    else:
        kind, amount = 1, _arguments.macs_reduction(macs_reduction)
    global_pruning = _arguments.deprecated_global(global_pruning, global_)
    with net._lock:  # one view of the network: builders in other threads wait
        override_spaces, override_ratios = _overrides(net, overrides or {})
        keep, scores, applied, costs = _native.network_plan(
            net._handle, kind, amount, global_pruning, _arguments.max_ratio(max_ratio),
            _arguments.choice(criterion, "criterion", CRITERIA), _arguments.choice(center, "center", CENTERS),
            _arguments.integer(round_to, "round_to", 1, _arguments.INT32_MAX), _arguments.seed(seed), override_spaces,
            override_ratios, {} if _weights is None else _weights, net._parameter_indices())
        per_value, space_of, _, reasons = _structure(net)
        pruned, channels, space_scores = {}, {}, {}
        for space in range(len(reasons)):
            members = np.flatnonzero(space_of == space)
            channels[space] = len(members)
            pruned[space] = np.flatnonzero(~keep[members]).tolist()
            space_scores[space] = scores[members]
        producers = {layer.name for layer in net.layers if layer.op in WEIGHTED_OPS}
        widths = {value.name: [len(classes), int(keep[classes].sum())]
                  for value, classes in zip(net._all_values(), per_value) if value.name in producers}
        macs_before, params_before, macs_after, params_after = costs
        return Plan(pruned, channels, applied, macs_before, macs_after, params_before, params_after,
                    criterion=criterion, widths=widths, scores=space_scores)


def _overrides(net, overrides):
    """``(space indices, ratios)`` from ``{space index or value name: ratio}``."""
    by_name = {name: s.index for s in spaces(net) for name in s.values} if overrides else {}
    indices, ratios = [], []
    for key, value in overrides.items():
        if isinstance(key, str):
            if key not in by_name:
                raise ValueError(f"overrides: no space holds a value named {key!r}")
            key = by_name[key]
        indices.append(_arguments.integer(key, "overrides", 0))
        ratios.append(_arguments.ratio(value))
    return np.array(indices, dtype=np.int64), np.array(ratios, dtype=np.float64)
