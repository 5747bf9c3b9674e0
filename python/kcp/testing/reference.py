"""A slow, plain NumPy (float64) reference for every function of the kcp engine.

Written from the definition in ALGORITHM.md, not from the Swift sources, so
that the tests compare two independent readings of it. Nothing here is
fast: loops are written out where that makes the formula easier to check.

Notation: a weight ``W`` has shape ``[O, I/g, kh, kw]`` (``[O, I]`` for a
linear layer, the case ``kh = kw = 1``, ``g = 1``); ``K = kh * kw``.
"""

import math

import numpy as np

from ..layer import ClusterResult

MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------
# Random numbers


class SplitMix64:
    """SplitMix64 (Steele, Lea, Flood 2014) on Python ints masked to 64 bits.

    ``state += 0x9E3779B97F4A7C15``; ``z = state``;
    ``z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9``;
    ``z = (z ^ z >> 27) * 0x94D049BB133111EB``; output ``z ^ z >> 31``.
    """

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        """The next 64-bit output."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def next_unit(self):
        """Uniform in ``[0, 1)``: ``(next() >> 11) * 2**-53``."""
        return (self.next() >> 11) * 2.0**-53


# ---------------------------------------------------------------------------
# Layer geometry and kernel clusters


def as_conv(weight):
    """``weight`` as a float64 ``[O, I/g, K]`` array (a linear ``[O, I]`` has ``K = 1``, a volumetric
    ``[O, I/g, kd, kh, kw]`` ``K = kd * kh * kw``)."""
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim not in (2, 4, 5):
        raise ValueError(f"weight: expected 2-D, 4-D or 5-D, got shape {w.shape}")
    return w.reshape(w.shape[0], w.shape[1], -1)


def cluster_vectors(weight, groups=1):
    """The kernel cluster ``v_i`` of every input channel, as rows of ``[I, (O/g) * K]``.

    Channel ``i`` is ``j = i mod I/g`` of group ``q = i div I/g``;
    ``v_i = (W[q * O/g + o', j, k])`` flattened output-major over ``o' < O/g``, ``k < K``.
    """
    w = as_conv(weight)
    out_channels, per_group, area = w.shape
    out_per_group = out_channels // groups
    rows = []
    for i in range(per_group * groups):
        q, j = divmod(i, per_group)
        rows.append(w[q * out_per_group:(q + 1) * out_per_group, j, :].reshape(-1))
    return np.array(rows).reshape(per_group * groups, out_per_group * area)


def filters(weight):
    """The output filters ``W[o]`` as rows of ``[O, (I/g) * K]``."""
    w = as_conv(weight)
    return w.reshape(w.shape[0], -1)


# ---------------------------------------------------------------------------
# Centers


def mean_center(points):
    """``c = mean_i v_i``."""
    return points.mean(axis=0)


def geometric_median(points, max_iterations=200):
    """``argmin_c sum_i ||v_i - c||_2`` by Weiszfeld's iteration.

    Start at the mean; each step ``c <- sum_i v_i / d_i / sum_i 1 / d_i`` over
    the points with ``d_i = ||v_i - c|| >= 1e-12``; stop when no point is left,
    when ``||c_new - c|| < 1e-7 * (1 + ||c_new||)``, or after ``max_iterations``.
    """
    center = points.mean(axis=0)
    for _ in range(max_iterations):
        distances = np.linalg.norm(points - center, axis=1)
        far = distances >= 1e-12
        if not far.any():
            break
        weights = 1.0 / distances[far]
        new = (weights[:, None] * points[far]).sum(axis=0) / weights.sum()
        step = np.linalg.norm(new - center)
        center = new
        if step < 1e-7 * (1 + np.linalg.norm(new)):
            break
    return center


def squared_distances(points, centers):
    """``D[i, c] = ||v_i - center_c||^2``."""
    return ((points[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)


def nearest_center(points, centers):
    """Index of each point's nearest center (ties: the lowest index)."""
    return np.argmin(squared_distances(points, centers), axis=1)


def kmeans_plus_plus(points, m, seed):
    """Rows chosen as the ``m`` initial centers by k-means++ with SplitMix64(``seed``).

    The first is row ``floor(u * n)``. With ``D2[i]`` the squared distance of
    row ``i`` to its nearest chosen row, the next is the first row with
    ``D2 > 0`` whose running sum of ``D2`` exceeds ``u * sum(D2)`` (the last
    such row if rounding keeps the sum below), or the lowest unchosen row
    when ``sum(D2) = 0``.
    """
    rng = SplitMix64(seed)
    n = len(points)
    chosen = [min(math.floor(rng.next_unit() * n), n - 1)]
    while len(chosen) < m:
        d2 = squared_distances(points, points[chosen]).min(axis=1)
        total = d2.sum()
        if total > 0:
            target = rng.next_unit() * total
            running = 0.0
            for i in np.flatnonzero(d2 > 0):
                running += d2[i]
                pick = int(i)
                if running > target:
                    break
        else:
            pick = next(i for i in range(n) if i not in chosen)
        chosen.append(pick)
    return chosen


def kmeans(points, m, seed, max_iterations=100):
    """k-means++ seeding, then Lloyd (Lloyd 1982; Arthur & Vassilvitskii 2007).

    Assign every point to its nearest center; then up to ``max_iterations``
    times: move each center to the mean of its members (an empty cluster keeps
    its center) and reassign, stopping as soon as no assignment changes.
    Returns ``(labels, centers)``.
    """
    centers = points[kmeans_plus_plus(points, m, seed)].copy()
    labels = nearest_center(points, centers)
    for _ in range(max_iterations):
        for c in range(m):
            if (labels == c).any():
                centers[c] = points[labels == c].mean(axis=0)
        new = nearest_center(points, centers)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels, centers


# ---------------------------------------------------------------------------
# Scores


def normalized(values):
    """``s_i = x_i / mean_j x_j``, or all zeros when the mean is 0."""
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean()
    return values / mean if mean > 0 else np.zeros_like(values)


def channel_clusters(weight, groups=1, center="mean", centers=1, seed=0):
    """KCP on the input channels: ``(scores, labels, centers)``.

    One center: the mean or geometric median of all ``v_i``. ``m > 1``
    centers: k-means; with ``center="median"`` each group's center then moves
    to its members' geometric median and every channel joins its nearest
    center. ``d_i = ||v_i - c(i)||``, ``s_i = d_i / mean(d)``.
    """
    points = cluster_vectors(weight, groups)
    locate = mean_center if center == "mean" else geometric_median
    if centers == 1:
        labels = np.zeros(len(points), dtype=np.int64)
        found = locate(points)[None, :]
    else:
        labels, found = kmeans(points, centers, seed)
        if center == "median":
            for c in range(centers):
                if (labels == c).any():
                    found[c] = geometric_median(points[labels == c])
            labels = nearest_center(points, found)
    distances = np.linalg.norm(points - found[labels], axis=1)
    return normalized(distances), labels, found


def l1_scores(weight):
    """``||W[o]||_1`` per output filter, normalised (Li et al. 2017)."""
    return normalized(np.abs(filters(weight)).sum(axis=1))


def l2_scores(weight):
    """``||W[o]||_2`` per output filter, normalised (SFP)."""
    return normalized(np.linalg.norm(filters(weight), axis=1))


def fpgm_scores(weight):
    """``sum_b ||W[a] - W[b]||_2`` per output filter ``a``, normalised (FPGM)."""
    f = filters(weight)
    return normalized([np.linalg.norm(f - f[a], axis=1).sum() for a in range(len(f))])


def random_scores(weight, seed):
    """One SplitMix64(``seed``) uniform per output filter, in order, normalised."""
    rng = SplitMix64(seed)
    return normalized([rng.next_unit() for _ in range(np.shape(weight)[0])])


def kernel_distances(weight, groups=1):
    """``t[o, j] = ||W[o, j] - mu_i||_2`` with ``mu_i = mean_o' W[o', j]`` over ``o``'s group."""
    w = as_conv(weight)
    out_per_group = w.shape[0] // groups
    t = np.zeros(w.shape[:2])
    for o in range(w.shape[0]):
        q = o // out_per_group
        mu = w[q * out_per_group:(q + 1) * out_per_group].mean(axis=0)
        t[o] = np.linalg.norm(w[o] - mu, axis=1)
    return t


def scores(weight, criterion="kcp", center="mean", groups=1, seed=0):
    """Normalised scores: ``I`` for ``"kcp"``, ``O`` for the filter baselines."""
    if criterion == "kcp":
        return channel_clusters(weight, groups, center)[0]
    if criterion == "random":
        return random_scores(weight, seed)
    return {"l1": l1_scores, "l2": l2_scores, "fpgm": fpgm_scores}[criterion](weight)


# ---------------------------------------------------------------------------
# Selection


def kept_count(n, ratio, round_to=1):
    """``min(n, ceil(max(1, n - floor(ratio * n)) / q) * q)``."""
    kept = max(1, n - math.floor(ratio * n))
    return min(n, -(-kept // round_to) * round_to)


def representatives(scores, labels):
    """Mask of each cluster's largest-scored member (ties: the lowest index)."""
    keep = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        keep[members[np.argmax(scores[members])]] = True  # argmax: first of equals
    return keep


def select(scores, ratio, round_to=1, protected=None):
    """Keep mask: prune ``n - kept_count`` entries ascending by ``(score, flat index)``.

    Entries in ``protected`` are never pruned (fewer are pruned if needed).
    """
    values = np.asarray(scores, dtype=np.float64)
    flat = values.reshape(-1)
    shielded = np.zeros(flat.size, dtype=bool) if protected is None else np.asarray(protected).reshape(-1)
    prune = flat.size - kept_count(flat.size, ratio, round_to)
    order = sorted((i for i in range(flat.size) if not shielded[i]), key=lambda i: (flat[i], i))
    keep = np.ones(flat.size, dtype=bool)
    keep[order[:prune]] = False
    return keep.reshape(values.shape)


def cluster(weight, ratio, *, center="mean", centers=1, granularity="channel", groups=1, round_to=1, seed=0):
    """The whole single-layer decision, as :func:`kcp.cluster` returns it."""
    if granularity == "kernel":
        t = kernel_distances(weight, groups)
        keep = select(t, ratio, round_to)
        return ClusterResult(keep=keep, pruned=np.argwhere(~keep), scores=t, labels=None, centers=None)
    s, labels, found = channel_clusters(weight, groups, center, centers, seed)
    protected = representatives(s, labels) if centers > 1 else None
    keep = select(s, ratio, round_to, protected)
    return ClusterResult(keep=keep, pruned=np.flatnonzero(~keep), scores=s, labels=labels, centers=found)


# ---------------------------------------------------------------------------
# Compact and masked weights


def compact(weight, keep_in=None, keep_out=None):
    """``weight[keep_out][:, keep_in]`` (a ``None`` keeps the whole axis), as float32.

    A keep is a boolean mask or integer indices (NumPy indexing, in their order).
    """
    w = np.asarray(weight, dtype=np.float32)
    if keep_out is not None:
        w = w[_indexer(keep_out)]
    if keep_in is not None:
        w = w[:, _indexer(keep_in)]
    return np.ascontiguousarray(w)


def _indexer(keep):
    """A boolean mask as it is, anything else as integer indices."""
    keep = np.asarray(keep)
    return keep if keep.dtype == np.bool_ else keep.astype(np.intp)


def apply_mask(weight, keep, axis="in"):
    """A copy of ``weight`` with pruned slices zeroed.

    A 2-D ``keep`` zeroes kernels ``W[o, j]``; otherwise ``axis="in"`` zeroes
    ``W[:, j]`` and ``axis="out"`` zeroes ``W[o]`` where ``keep`` is false.
    """
    w = np.array(weight, dtype=np.float32)
    keep = np.asarray(keep)
    if keep.ndim == 2:
        w[~keep] = 0
    elif axis == "in":
        w[:, ~keep] = 0
    else:
        w[~keep] = 0
    return w


# ---------------------------------------------------------------------------
# Volumetric convolutions


def conv3d(x, weight, bias=None, stride=(1, 1, 1), padding=(0,) * 6, dilation=(1, 1, 1), groups=1):
    """``y[n, o, z, h, w] = b[o] + sum_{j, t, p, q} W[o, j, t, p, q] x[n, g(o) I/g + j, z sd + t dd - front, h sh + p dh - top, w sw + q dw - left]``
    (zero outside ``x``), float64; ``padding`` is ``(front, top, left, back, bottom, right)``."""
    x, w = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    x = np.pad(x, ((0, 0), (0, 0), (padding[0], padding[3]), (padding[1], padding[4]), (padding[2], padding[5])))
    outputs, per_group, *kernel = w.shape
    out_size = [(x.shape[2 + a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1 for a in range(3)]
    y = np.zeros((x.shape[0], outputs, *out_size))
    for o in range(outputs):
        g = o // (outputs // groups)
        for t in range(kernel[0]):
            for p in range(kernel[1]):
                for q in range(kernel[2]):
                    start = (t * dilation[0], p * dilation[1], q * dilation[2])
                    window = x[:, g * per_group:(g + 1) * per_group,
                               start[0]:start[0] + stride[0] * (out_size[0] - 1) + 1:stride[0],
                               start[1]:start[1] + stride[1] * (out_size[1] - 1) + 1:stride[1],
                               start[2]:start[2] + stride[2] * (out_size[2] - 1) + 1:stride[2]]
                    y[:, o] += np.einsum("nczhw,c->nzhw", window, w[o, :, t, p, q])
        if bias is not None:
            y[:, o] += bias[o]
    return y


def conv_transpose3d(x, weight, bias=None, stride=(1, 1, 1), padding=(0,) * 6, output_padding=(0, 0, 0),
                     dilation=(1, 1, 1), groups=1):
    """Every input voxel scatters its kernels, float64:
    ``y[n, g O/g + o, z sd + t dd - front, h sh + p dh - top, w sw + q dw - left] += W[g I/g + j, o, t, p, q] x[n, g I/g + j, z, h, w]``
    over the full scatter, of which ``front, top, left`` are cropped at the
    start and ``back - output_padding`` (per axis) at the end; plus ``b[o]``."""
    x, w = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    inputs, out_per_group, *kernel = w.shape
    per_group = inputs // groups
    full = [(x.shape[2 + a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1 + output_padding[a] for a in range(3)]
    y = np.zeros((x.shape[0], out_per_group * groups, *full))
    for i in range(inputs):
        g = i // per_group
        for t in range(kernel[0]):
            for p in range(kernel[1]):
                for q in range(kernel[2]):
                    start = (t * dilation[0], p * dilation[1], q * dilation[2])
                    y[:, g * out_per_group:(g + 1) * out_per_group,
                      start[0]:start[0] + stride[0] * (x.shape[2] - 1) + 1:stride[0],
                      start[1]:start[1] + stride[1] * (x.shape[3] - 1) + 1:stride[1],
                      start[2]:start[2] + stride[2] * (x.shape[4] - 1) + 1:stride[2]] += \
                        np.einsum("nzhw,o->nozhw", x[:, i], w[i, :, t, p, q])
    y = y[:, :, padding[0]:full[0] - padding[3], padding[1]:full[1] - padding[4], padding[2]:full[2] - padding[5]]
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape(1, -1, 1, 1, 1)
    return y


# ---------------------------------------------------------------------------
# Stereo cost volumes and disparity regression


def cost_volume(left, right, max_disparity, kind="concatenation", groups=1, scale=1.0):
    """The engine's ``cost_volume`` element by element, ``[N, C, H, W]`` x2 ->
    ``[N, K, D, H, W]``, zero where ``w < d``: ``"concatenation"`` (PSMNet)
    ``y[c, d, h, w] = left[c, h, w]``, ``y[C + c, d, h, w] = right[c, h, w - d]``;
    ``"group_correlation"`` (GwcNet) ``y[g, d, h, w] = scale * sum_{c in g}
    left[c, h, w] * right[c, h, w - d]`` over ``groups`` equal groups."""
    left, right = np.asarray(left, np.float64), np.asarray(right, np.float64)
    n, channels, height, width = left.shape
    k = 2 * channels if kind == "concatenation" else groups
    y = np.zeros((n, k, max_disparity, height, width))
    per_group = channels // groups
    for d in range(max_disparity):
        for w in range(d, width):
            if kind == "concatenation":
                y[:, :channels, d, :, w] = left[:, :, :, w]
                y[:, channels:, d, :, w] = right[:, :, :, w - d]
            else:
                for g in range(groups):
                    part = slice(g * per_group, (g + 1) * per_group)
                    y[:, g, d, :, w] = scale * (left[:, part, :, w] * right[:, part, :, w - d]).sum(1)
    return y


def soft_argmin(x, sign=-1):
    """``y[n, 0, h, w] = sum_d d * softmax_d(sign * x)`` over the channels of
    ``[N, D, H, W]`` or over ``D`` of ``[N, 1, D, H, W]``."""
    x = np.asarray(x, np.float64)
    x = x.reshape(x.shape[0], -1, *x.shape[-2:])
    z = sign * x
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return (p * np.arange(x.shape[1]).reshape(1, -1, 1, 1)).sum(1, keepdims=True)
