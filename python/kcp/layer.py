"""KCP on a single layer: scores, clusters, keep masks, compact and masked weights.

Kernel cluster pruning (Yu, Wu, Chen, "KCP: Kernel Cluster Pruning for Dense
Labeling Neural Networks", arXiv:2101.06686). A conv weight ``W`` has shape
``[O, I/g, kh, kw]``; a linear weight ``[O, I]`` is the case ``kh = kw = 1``,
a volumetric one ``[O, I/g, kd, kh, kw]`` that of a ``kd x kh x kw`` kernel.
The *kernel cluster* of input channel ``i`` is every kernel reading ``i``,
``v_i = W[o, j(i)]`` over the outputs ``o`` of ``i``'s group, flattened. Its
score is its distance to the center of all clusters, normalised per layer,

    d_i = || v_i - c(i) ||_2,        s_i = d_i / mean_j d_j,

and the channels with the smallest scores, the ones the center already stands
for, are pruned first.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _arguments, _native

CENTERS = {"mean": 0, "median": 1}
CRITERIA = {"kcp": 0, "l1": 1, "l2": 2, "fpgm": 3, "random": 4}
GRANULARITIES = {"channel": 0, "kernel": 1}
AXES = {"out": 0, "in": 1}


@dataclass(frozen=True)
class ClusterResult:
    """The result of :func:`cluster` on one layer.

    Attributes:
        keep: bool mask, ``True`` for kept entries: per input channel ``[I]``,
            or per kernel ``[O, I/g]`` for ``granularity="kernel"``.
        pruned: indices of the pruned entries: ``[k]`` channel indices, or
            ``[k, 2]`` ``(o, j)`` pairs for kernels, in ascending order.
        scores: float64, same shape as ``keep``: ``s_i`` per channel, or the
            distance ``t[o, j]`` of each kernel to its cluster's mean kernel.
        labels: int32 ``[I]`` center of each input channel (``None`` for
            kernel granularity).
        centers: float32 ``[m, (O/g)*kh*kw]`` cluster centers (``None`` for
            kernel granularity).
    """

    keep: np.ndarray
    pruned: np.ndarray
    scores: np.ndarray
    labels: np.ndarray | None
    centers: np.ndarray | None

    @property
    def kept(self) -> int:
        """Number of kept channels (or kernels)."""
        return int(self.keep.sum())


def cluster(weight: ArrayLike, ratio: float, *, center: Literal["mean", "median"] = "mean", centers: int = 1,
            granularity: Literal["channel", "kernel"] = "channel", groups: int = 1, round_to: int = 1,
            seed: int = 0) -> ClusterResult:
    """Cluster a layer's kernels and select the least representational to prune.

    With ``centers=1`` every kernel cluster ``v_i`` is compared to one center
    ``c``: the mean ``mean_i v_i`` or, with ``center="median"``, the geometric
    median (Weiszfeld). With ``centers=m > 1`` the ``v_i`` are grouped by
    k-means (k-means++ seeding from ``seed``) and each is compared to its own
    group's center; the best-scored member of every group is always kept.
    ``floor(ratio * I)`` channels with the smallest ``s_i = d_i / mean(d)``
    are pruned (at least one kept; the kept count rounded up to a multiple
    of ``round_to``).

    With ``granularity="kernel"`` single kernels are scored against their
    cluster's mean kernel, ``t[o, j] = ||W[o, j] - mean_o' W[o', j]||_2``,
    and the ``floor(ratio * O * I/g)`` smallest are pruned.

    Args:
        weight: ``[O, I/g, kh, kw]`` conv (or ``[O, I/g, kd, kh, kw]``) or ``[O, I]`` linear weight. Aligned,
            C-contiguous float32 arrays are read in place; other real dtypes
            and layouts are converted to float32 first.
        ratio: fraction of channels (or kernels) to prune, in ``[0, 1)``.
        center: ``"mean"`` or ``"median"``.
        centers: number of clusters ``m``, ``1 <= m <= I``.
        granularity: ``"channel"`` or ``"kernel"``.
        groups: conv groups ``g``; ``g = I`` for depthwise convs.
        round_to: keep a multiple of this many channels (kernels).
        seed: seeds k-means++, an integer in ``[0, 2**64)``.

    Returns:
        A :class:`ClusterResult`.

    Reference: Yu, Wu, Chen, arXiv:2101.06686.
    """
    codes = (
        _arguments.integer(groups, "groups", 1, _arguments.INT32_MAX),
        _arguments.ratio(ratio),
        _arguments.choice(center, "center", CENTERS),
        _arguments.integer(centers, "centers", 1, _arguments.INT32_MAX),
        _arguments.choice(granularity, "granularity", GRANULARITIES),
        _arguments.integer(round_to, "round_to", 1, 2**31 - 1),
        _arguments.seed(seed),
    )
    scores, labels, found_centers, keep = _native.layer_cluster(_arguments.array(weight, "weight"), *codes)
    pruned = np.argwhere(~keep) if keep.ndim == 2 else np.flatnonzero(~keep)
    return ClusterResult(keep=keep, pruned=pruned, scores=scores, labels=labels, centers=found_centers)


def scores(weight: ArrayLike, criterion: Literal["kcp", "l1", "l2", "fpgm", "random"] = "kcp", *,
           center: Literal["mean", "median"] = "mean", groups: int = 1, seed: int = 0) -> NDArray[np.float64]:
    """Normalised importance score of every channel of a layer.

    ``"kcp"`` scores the ``I`` input channels by their kernel clusters,
    ``s_i = d_i / mean_j d_j`` with ``d_i = ||v_i - c||_2`` (see :func:`cluster`).
    The baselines score the ``O`` output filters ``W[o]``: ``"l1"`` their L1
    norm (Li et al. 2017), ``"l2"`` their L2 norm (SFP, He et al. 2018),
    ``"fpgm"`` the sum of their distances to every other filter (FPGM, He et
    al. 2019), ``"random"`` seeded uniform scores. Every criterion is
    normalised by its layer mean (all zeros if the mean is 0); smaller means
    less important.

    Args:
        weight: ``[O, I/g, kh, kw]``, ``[O, I/g, kd, kh, kw]`` or ``[O, I]`` weight (read in place when
            aligned, C-contiguous float32).
        criterion: ``"kcp"``, ``"l1"``, ``"l2"``, ``"fpgm"`` or ``"random"``.
        center: ``"mean"`` or ``"median"`` (``"kcp"`` only).
        groups: conv groups.
        seed: seeds ``"random"``, an integer in ``[0, 2**64)``.

    Returns:
        float64 array of ``I`` (``"kcp"``) or ``O`` (baselines) scores.
    """
    criterion_code = _arguments.choice(criterion, "criterion", CRITERIA)
    return _native.layer_scores(_arguments.array(weight, "weight"),
                                _arguments.integer(groups, "groups", 1, _arguments.INT32_MAX), criterion_code,
                                _arguments.choice(center, "center", CENTERS), _arguments.seed(seed))


def select(scores: ArrayLike, ratio: float, *, round_to: int = 1) -> NDArray[np.bool_]:
    """Keep mask for ``scores``: prune the ``floor(ratio * n)`` smallest.

    Ties are broken by index (lower index pruned first), at least one entry is
    kept, and the kept count is rounded up to a multiple of ``round_to``
    (capped at ``n``).

    Args:
        scores: finite real scores of any shape (ranked as one flat array).
        ratio: fraction to prune, in ``[0, 1)``.
        round_to: keep a multiple of this many entries.

    Returns:
        bool array shaped like ``scores``, ``True`` where kept.
    """
    values = _arguments.array(scores, "scores")
    if not (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)):
        raise TypeError(f"scores: expected a real-valued numeric array, got dtype {values.dtype}")
    return _native.scores_select(values, _arguments.ratio(ratio), _arguments.integer(round_to, "round_to", 1, 2**31 - 1))


def compact(weight: ArrayLike, *, keep_in: ArrayLike | None = None,
            keep_out: ArrayLike | None = None) -> NDArray[np.float32]:
    """A new, smaller, C-contiguous float32 copy holding only kept channels.

    ``result = weight[keep_out][:, keep_in]``: axis 0 indexes output channels,
    axis 1 input channels (for grouped convs, the ``I/g`` inputs of the
    weight's second axis). A 1-D parameter (a bias) takes ``keep_out`` only.
    Kept channels stay in their order, so indices must be strictly increasing.

    Args:
        weight: a parameter with at least one dimension; converted to float32.
        keep_in: bool mask or increasing integer indices over axis 1; ``None`` keeps all.
        keep_out: bool mask or increasing integer indices over axis 0; ``None`` keeps all.

    Returns:
        The compact float32 array.
    """
    array = _arguments.array(weight, "weight")
    if array.ndim == 0:
        raise ValueError("weight: needs at least one dimension")
    if keep_in is not None and array.ndim < 2:
        raise ValueError(f"keep_in: a {array.ndim}-D parameter has no input axis")
    keep_out = None if keep_out is None else _arguments.keep_mask(keep_out, array.shape[0], "keep_out")
    keep_in = None if keep_in is None else _arguments.keep_mask(keep_in, array.shape[1], "keep_in")
    return _native.weight_compact(array, keep_out, keep_in)


def apply_mask(weight: NDArray[np.float32], keep: ArrayLike,
               axis: Literal["in", "out"] = "in") -> NDArray[np.float32]:
    """Zero, in place, the pruned slices of ``weight``; returns ``weight``.

    ``axis="in"`` zeroes ``weight[:, j]`` where ``keep[j]`` is false (pruned
    kernel clusters); ``axis="out"`` zeroes ``weight[o]`` (pruned filters or
    bias entries). A 2-D ``keep`` of shape ``weight.shape[:2]`` (a kernel
    mask from ``cluster(..., granularity="kernel")``) zeroes single kernels
    and ignores ``axis``.

    The caller's memory is written directly (no copy), so ``weight`` must be a
    writeable, aligned, C-contiguous float32 ``numpy.ndarray``; anything else
    raises and leaves it unchanged.
    """
    axis_code = _arguments.choice(axis, "axis", AXES)
    keep_array = np.asarray(keep)
    if keep_array.ndim == 2:
        if keep_array.dtype != np.bool_:
            raise TypeError(f"keep: a 2-D kernel mask must be boolean, got dtype {keep_array.dtype}")
        if np.shape(weight)[:2] != keep_array.shape:
            raise ValueError(f"keep: kernel mask shape {keep_array.shape} does not match weight shape "
                             f"{np.shape(weight)[:2]} on its first two axes")
        mask, axis_code = keep_array, 2
    else:
        shape = np.shape(weight)
        if axis_code >= len(shape):
            raise ValueError(f"axis: a {len(shape)}-D weight has no {axis!r} axis")
        mask = _arguments.keep_mask(keep, shape[axis_code], "keep")
    _native.weight_mask(weight, mask, axis_code)
    return weight
