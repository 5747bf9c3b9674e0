"""Properties of selection, clustering, compaction and masking on random layers (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kcp
from kcp.testing import reference as ref
from support import weight

ratios = st.floats(0.0, 1.0, exclude_max=True, allow_nan=False)
seeds = st.integers(0, 2**64 - 1)


@st.composite
def layers(draw):
    """``(weight, groups)``: a random linear, conv, grouped or depthwise layer."""
    linear = draw(st.booleans())
    groups = 1 if linear else draw(st.integers(1, 3))
    kernel = () if linear else draw(st.sampled_from([(1, 1), (3, 3), (1, 3), (2, 2)]))
    shape = (draw(st.integers(1, 5)) * groups, draw(st.integers(1, 6))) + kernel
    return weight(shape, draw(st.integers(0, 2**32 - 1))), groups


def channels(w, groups):
    return w.shape[1] * groups


# ---------------------------------------------------------------------------
# Selection


@given(n=st.integers(1, 200), ratio=ratios, round_to=st.integers(1, 16), levels=st.integers(1, 300),
       seed=st.integers(0, 2**32 - 1))
def test_select_keeps_the_formula_count_of_the_largest(n, ratio, round_to, levels, seed):
    scores = np.random.default_rng(seed).integers(0, levels, n) / levels  # few levels: many ties
    keep = kcp.select(scores, ratio, round_to=round_to)
    kept = int(keep.sum())
    assert kept == ref.kept_count(n, ratio, round_to)
    assert kept >= 1 and (kept % round_to == 0 or kept == n)
    assert kept >= n - int(np.floor(ratio * n))
    np.testing.assert_array_equal(keep, ref.select(scores, ratio, round_to))
    if 0 < kept < n:  # every pruned (score, index) comes before every kept one
        pruned = max((scores[i], i) for i in np.flatnonzero(~keep))
        assert pruned < min((scores[i], i) for i in np.flatnonzero(keep))


@given(layer=layers(), ratio=ratios, round_to=st.integers(1, 8), centers=st.integers(1, 4), seed=seeds)
def test_cluster_kept_count(layer, ratio, round_to, centers, seed):
    w, groups = layer
    n = channels(w, groups)
    centers = min(centers, n)
    result = kcp.cluster(w, ratio, centers=centers, groups=groups, round_to=round_to, seed=seed)
    expected = ref.kept_count(n, ratio, round_to)
    if centers == 1:
        assert result.kept == expected
    else:  # each non-empty cluster keeps its representative, even past the count
        assert result.kept == max(expected, len(np.unique(result.labels)))
    assert result.pruned.size == n - result.kept


@given(layer=layers(), ratio=ratios, round_to=st.integers(1, 8))
def test_kernel_granularity_kept_count(layer, ratio, round_to):
    w, groups = layer
    result = kcp.cluster(w, ratio, granularity="kernel", groups=groups, round_to=round_to)
    assert result.keep.shape == w.shape[:2]
    assert result.kept == ref.kept_count(w.shape[0] * w.shape[1], ratio, round_to)
    np.testing.assert_array_equal(result.keep, ref.select(result.scores, ratio, round_to))


# ---------------------------------------------------------------------------
# Determinism


def _run_all(w, groups, seed, ratio):
    """Every engine result for one layer, by name."""
    n = channels(w, groups)
    results = {
        "kmeans": kcp.cluster(w, ratio, centers=min(3, n), groups=groups, seed=seed),
        "median": kcp.cluster(w, ratio, center="median", centers=min(2, n), groups=groups, seed=seed),
        "kernel": kcp.cluster(w, ratio, granularity="kernel", groups=groups),
    }
    for criterion in ("kcp", "l1", "l2", "fpgm", "random"):
        results[criterion] = kcp.scores(w, criterion, groups=groups, seed=seed)
    return results


def _assert_same(first, second):
    """Bit-identical results; FPGM's scores only to 1e-6, as OpenBLAS's SGEMM
    rounds differently for different thread counts."""
    for name, a in first.items():
        b = second[name]
        if name == "fpgm":
            np.testing.assert_allclose(a, b, rtol=1e-6)
        elif isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            for field in ("keep", "labels", "scores", "centers"):
                x, y = getattr(a, field), getattr(b, field)
                assert (x is None and y is None) or np.array_equal(x, y), f"{name}.{field}"


@given(layer=layers(), seed=seeds, ratio=ratios)
def test_results_are_deterministic_under_a_seed(layer, seed, ratio):
    w, groups = layer
    _assert_same(_run_all(w, groups, seed, ratio), _run_all(w, groups, seed, ratio))


@given(layer=layers(), seed=seeds, ratio=ratios)
def test_results_do_not_depend_on_the_thread_count(layer, seed, ratio):
    w, groups = layer
    kcp.set_num_threads(1)
    one = _run_all(w, groups, seed, ratio)
    kcp.set_num_threads(2)
    two = _run_all(w, groups, seed, ratio)
    _assert_same(one, two)


@pytest.mark.parametrize("shape", [(64, 48, 3, 3), (256, 130), (96, 1, 5, 5)])
def test_large_layers_do_not_depend_on_the_thread_count(shape):
    w, groups = weight(shape, 70), (96 if shape[1] == 1 else 1)
    for ratio in (0.3, 0.7):
        kcp.set_num_threads(1)
        one = _run_all(w, groups, 11, ratio)
        kcp.set_num_threads(2)
        two = _run_all(w, groups, 11, ratio)
        _assert_same(one, two)


# ---------------------------------------------------------------------------
# k-means


@given(layer=layers(), centers=st.integers(2, 5), seed=seeds, ratio=ratios)
def test_kmeans_keeps_every_cluster_and_every_channel_sits_with_its_nearest_center(layer, centers, seed, ratio):
    w, groups = layer
    n = channels(w, groups)
    if n < 2:
        return
    centers = min(centers, n)
    result = kcp.cluster(w, ratio, centers=centers, groups=groups, seed=seed)
    assert result.centers.shape == (centers, (w.shape[0] // groups) * int(np.prod(w.shape[2:], dtype=int)))
    assert result.labels.min() >= 0 and result.labels.max() < centers
    for label in np.unique(result.labels):
        members = np.flatnonzero(result.labels == label)
        assert result.keep[members].any(), f"cluster {label} was emptied"
        assert result.keep[members[np.argmax(result.scores[members])]]
    points = ref.cluster_vectors(w, groups)
    d2 = ref.squared_distances(points, result.centers.astype(np.float64))
    own = d2[np.arange(n), result.labels]
    assert np.all(own <= d2.min(axis=1) * (1 + 1e-5) + 1e-9)
    np.testing.assert_allclose(np.sqrt(own) / np.sqrt(own).mean() if own.any() else own, result.scores,
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# Compact and masked weights


@st.composite
def parameters(draw):
    """A float32 or float64 parameter of 1 to 4 dimensions, with keep masks or sorted indices."""
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    array = weight(shape, draw(st.integers(0, 2**32 - 1)), draw(st.sampled_from([np.float32, np.float64])))

    def keep(length):
        mask = np.array(draw(st.lists(st.booleans(), min_size=length, max_size=length)))
        return draw(st.sampled_from([None, mask, np.flatnonzero(mask), list(np.flatnonzero(mask) - length)]))

    return array, (keep(shape[1]) if ndim > 1 else None), keep(shape[0])


def _is_mask(keep):
    return isinstance(keep, np.ndarray) and keep.dtype == np.bool_


@given(parameter=parameters())
def test_compact_equals_numpy_slicing(parameter):
    array, keep_in, keep_out = parameter
    out = kcp.compact(array, keep_in=keep_in, keep_out=keep_out)
    expected = array.astype(np.float32)
    if keep_out is not None:
        expected = np.take(expected, keep_out, axis=0) if not _is_mask(keep_out) else expected[keep_out]
    if keep_in is not None:
        expected = np.take(expected, keep_in, axis=1) if not _is_mask(keep_in) else expected[:, keep_in]
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out, ref.compact(array, keep_in, keep_out))
    assert not np.shares_memory(out, array)


@st.composite
def masks(draw):
    """A float32 weight, a keep mask and its axis: ``in``, ``out`` or a 2-D kernel mask."""
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    axis = draw(st.sampled_from(["out"] if ndim == 1 else ["out", "in", "kernel"]))
    keep_shape = shape[:2] if axis == "kernel" else (shape[0 if axis == "out" else 1],)
    keep = np.array(draw(st.lists(st.booleans(), min_size=int(np.prod(keep_shape)),
                                  max_size=int(np.prod(keep_shape))))).reshape(keep_shape)
    return weight(shape, draw(st.integers(0, 2**32 - 1))), keep, ("in" if axis == "kernel" else axis)


@given(case=masks())
def test_apply_mask_writes_into_the_callers_array(case):
    w, keep, axis = case
    expected = ref.apply_mask(w, keep, axis)
    pointer = w.ctypes.data
    returned = kcp.apply_mask(w, keep, axis=axis)
    assert returned is w and w.ctypes.data == pointer
    np.testing.assert_array_equal(w, expected)


@given(case=masks(), before=st.integers(0, 3), after=st.integers(0, 3))
def test_apply_mask_on_a_view_modifies_its_base(case, before, after):
    w, keep, axis = case
    base = weight((before + w.shape[0] + after,) + w.shape[1:], 99)
    original = base.copy()
    view = base[before:before + w.shape[0]]
    view[...] = w
    original[before:before + w.shape[0]] = w
    assert view.flags.c_contiguous and np.shares_memory(view, base)
    kcp.apply_mask(view, keep, axis=axis)
    np.testing.assert_array_equal(base[before:before + w.shape[0]], ref.apply_mask(w, keep, axis))
    np.testing.assert_array_equal(base[:before], original[:before])
    np.testing.assert_array_equal(base[before + w.shape[0]:], original[before + w.shape[0]:])


@given(layer=layers(), ratio=ratios)
def test_masked_then_compacted_equals_compacted(layer, ratio):
    w, _ = layer
    keep = kcp.cluster(w, ratio).keep
    masked = kcp.apply_mask(w.copy(), keep)
    np.testing.assert_array_equal(kcp.compact(masked, keep_in=keep), kcp.compact(w, keep_in=keep))
    assert not masked[:, ~keep].any()


@pytest.mark.parametrize("keep_in", [[2, 0], [1, 1], [0, -3]])
def test_compact_refuses_indices_that_are_not_increasing(keep_in):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.raises(ValueError, match="keep_in"):
        kcp.compact(w, keep_in=keep_in)

