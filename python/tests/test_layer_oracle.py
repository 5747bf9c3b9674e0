"""The engine against the float64 NumPy reference on many layer shapes.

Scores are float32 work in the engine, so they agree to ~1e-6 relative with
the mean center; the median and FPGM go through more float32 steps (and the
median stops on a relative step of 1e-7), so they get looser tolerances.
Masks must agree exactly unless the reference puts a near tie on the cut.
"""

import numpy as np
import pytest

import kcp
from kcp.testing import reference as ref
from support import LAYER_IDS, LAYERS, assert_selection_agrees, in_channels, weight

SCORE_RTOL = {"mean": 1e-5, "median": 1e-4, "l1": 1e-5, "l2": 1e-5, "fpgm": 1e-4, "random": 1e-12}


@pytest.mark.parametrize(("name", "shape", "groups"), LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("center", ["mean", "median"])
@pytest.mark.parametrize("seed", [0, 1])
def test_kcp_scores(name, shape, groups, center, seed):
    w = weight(shape, seed)
    scores = kcp.scores(w, center=center, groups=groups)
    assert scores.dtype == np.float64 and scores.shape == (in_channels(shape, groups),)
    np.testing.assert_allclose(scores, ref.scores(w, center=center, groups=groups), rtol=SCORE_RTOL[center], atol=1e-6)
    assert scores.mean() == pytest.approx(1.0)


@pytest.mark.parametrize(("name", "shape", "groups"), LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("criterion", ["l1", "l2", "fpgm", "random"])
def test_filter_scores(name, shape, groups, criterion):
    w = weight(shape, 2)
    scores = kcp.scores(w, criterion, groups=groups, seed=123)
    assert scores.dtype == np.float64 and scores.shape == (shape[0],)
    expected = ref.scores(w, criterion, groups=groups, seed=123)
    np.testing.assert_allclose(scores, expected, rtol=SCORE_RTOL[criterion], atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2**63, 2**64 - 1])
def test_random_scores_follow_splitmix64(seed):
    w = weight((17, 3, 3, 3), 0)
    np.testing.assert_allclose(kcp.scores(w, "random", seed=seed), ref.random_scores(w, seed), rtol=1e-13)
    assert not np.array_equal(kcp.scores(w, "random", seed=seed), kcp.scores(w, "random", seed=seed ^ 1))


@pytest.mark.parametrize(("name", "shape", "groups"), LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("center", ["mean", "median"])
@pytest.mark.parametrize("centers", [1, 3])
@pytest.mark.parametrize("seed", [0, 5])
def test_cluster(name, shape, groups, center, centers, seed):
    w = weight(shape, 10 + seed)
    ratio = 0.4 + 0.1 * seed / 5
    result = kcp.cluster(w, ratio, center=center, centers=centers, groups=groups, seed=seed)
    expected = ref.cluster(w, ratio, center=center, centers=centers, groups=groups, seed=seed)
    n = in_channels(shape, groups)
    assert result.labels.dtype == np.int32 and result.labels.shape == (n,)
    assert result.centers.dtype == np.float32 and result.centers.shape == expected.centers.shape
    assert result.keep.dtype == np.bool_ and result.keep.shape == (n,)
    np.testing.assert_array_equal(result.labels, expected.labels)
    np.testing.assert_allclose(result.centers, expected.centers, rtol=1e-4, atol=1e-5)
    tolerance = SCORE_RTOL[center]
    np.testing.assert_allclose(result.scores, expected.scores, rtol=tolerance, atol=1e-6)
    assert_selection_agrees(result.keep, expected.keep, expected.scores, 10 * tolerance)
    # The selection rule applied to the engine's own scores and labels gives its mask exactly.
    protected = ref.representatives(result.scores, result.labels) if centers > 1 else None
    np.testing.assert_array_equal(result.keep, ref.select(result.scores, ratio, 1, protected))
    np.testing.assert_array_equal(result.pruned, np.flatnonzero(~result.keep))
    assert result.kept == result.keep.sum()


@pytest.mark.parametrize(("name", "shape", "groups"), LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.75])
@pytest.mark.parametrize("round_to", [1, 4])
def test_kernel_granularity(name, shape, groups, ratio, round_to):
    w = weight(shape, 20)
    result = kcp.cluster(w, ratio, granularity="kernel", groups=groups, round_to=round_to)
    expected = ref.cluster(w, ratio, granularity="kernel", groups=groups, round_to=round_to)
    assert result.labels is None and result.centers is None
    assert result.scores.shape == result.keep.shape == shape[:2]
    np.testing.assert_allclose(result.scores, expected.scores, rtol=1e-5, atol=1e-6)
    assert_selection_agrees(result.keep, expected.keep, expected.scores, 1e-5)
    np.testing.assert_array_equal(result.keep, ref.select(result.scores, ratio, round_to))
    np.testing.assert_array_equal(result.pruned, np.argwhere(~result.keep))
    assert result.kept == ref.kept_count(shape[0] * shape[1], ratio, round_to)


@pytest.mark.parametrize(("name", "shape", "groups"), LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("round_to", [2, 4, 8])
def test_round_to(name, shape, groups, round_to):
    w = weight(shape, 30)
    result = kcp.cluster(w, 0.6, groups=groups, round_to=round_to)
    expected = ref.cluster(w, 0.6, groups=groups, round_to=round_to)
    assert_selection_agrees(result.keep, expected.keep, expected.scores, 1e-4)


def test_kmeans_finds_planted_clusters():
    # 30 input channels around 3 well-separated prototypes.
    rng = np.random.default_rng(40)
    prototypes = rng.standard_normal((3, 16, 1, 3)) * 10
    truth = rng.integers(0, 3, 30)
    w = np.stack([prototypes[t] + 0.1 * rng.standard_normal((16, 1, 3)) for t in truth], axis=1)
    w = w.astype(np.float32)
    for seed in range(4):
        result = kcp.cluster(w, 0.5, centers=3, seed=seed)
        expected = ref.cluster(w, 0.5, centers=3, seed=seed)
        np.testing.assert_array_equal(result.labels, expected.labels)
        # Same partition as the truth, up to renaming the clusters.
        assert len({(a, b) for a, b in zip(truth, result.labels)}) == 3
        assert_selection_agrees(result.keep, expected.keep, expected.scores, 1e-4)


@pytest.mark.parametrize("centers", [2, 4, 7])
@pytest.mark.parametrize("seed", [0, 3, 2**64 - 1])
def test_kmeans_on_larger_layer(centers, seed):
    w = weight((32, 24, 3, 3), 50)
    result = kcp.cluster(w, 0.5, centers=centers, seed=seed)
    expected = ref.cluster(w, 0.5, centers=centers, seed=seed)
    np.testing.assert_array_equal(result.labels, expected.labels)
    np.testing.assert_allclose(result.scores, expected.scores, rtol=1e-5)


@pytest.mark.parametrize("convert", [
    lambda w: w.astype(np.float64),
    lambda w: w.astype(np.float16),
    lambda w: w.astype(">f4"),
    lambda w: np.asfortranarray(w),
    lambda w: np.repeat(w, 2, axis=1)[:, ::2],
    lambda w: np.frombuffer(b"\0" + w.tobytes(), np.float32, w.size, 1).reshape(w.shape),
    lambda w: w.tolist(),
], ids=["float64", "float16", "big_endian", "fortran", "strided", "misaligned", "list"])
def test_converted_inputs_give_the_same_result(convert):
    w = weight((8, 6, 3, 3), 60)
    source = convert(w)
    read = np.ascontiguousarray(source, dtype=np.float32)  # what the engine reads
    np.testing.assert_array_equal(kcp.scores(source), kcp.scores(read))
    np.testing.assert_array_equal(kcp.scores(source, "fpgm"), kcp.scores(read, "fpgm"))
    np.testing.assert_array_equal(kcp.cluster(source, 0.5, centers=2).keep, kcp.cluster(read, 0.5, centers=2).keep)
    np.testing.assert_array_equal(kcp.compact(source, keep_in=[1, 4]), read[:, [1, 4]])


def test_integer_weights_are_read_as_real():
    w = np.arange(60, dtype=np.int16).reshape(5, 4, 3, 1) % 7
    np.testing.assert_allclose(kcp.scores(w), ref.scores(w), rtol=1e-6)
    np.testing.assert_allclose(kcp.scores(w, "l1"), ref.scores(w, "l1"), rtol=1e-6)


# ---------------------------------------------------------------------------
# Numerically hard inputs


@pytest.mark.parametrize("call", [
    lambda w, r: (kcp.scores(w), r.scores(w)),
    lambda w, r: (kcp.scores(w, "l1"), r.scores(w, "l1")),
    lambda w, r: (kcp.scores(w, center="median"), r.scores(w, center="median")),
    lambda w, r: (kcp.scores(w, "l2"), r.scores(w, "l2")),
    lambda w, r: (kcp.scores(w, "fpgm"), r.scores(w, "fpgm")),
    lambda w, r: (kcp.cluster(w, 0.5, centers=2).scores, r.cluster(w, 0.5, centers=2).scores),
    lambda w, r: (kcp.cluster(w, 0.5, granularity="kernel").scores,
                               r.cluster(w, 0.5, granularity="kernel").scores),
], ids=["kcp", "l1", "median", "l2", "fpgm", "kmeans", "kernel"])
def test_huge_finite_weights_are_scored_or_refused_by_name(call):
    """Weights of ~1e20 are finite float32: the engine must score them as the
    float64 reference does, or refuse them with an error naming `weight`."""
    w = (np.random.default_rng(0).standard_normal((8, 6, 3, 3)) * 1e20).astype(np.float32)
    try:
        got, expected = call(w, ref)
    except (ValueError, kcp.KCPError) as error:
        assert str(error).startswith("weight:"), str(error)
        return
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_fpgm_is_accurate_for_filters_with_a_common_offset():
    w = (1 + 1e-3 * np.random.default_rng(0).standard_normal((16, 64, 3, 3))).astype(np.float32)
    expected = ref.scores(w, "fpgm")
    np.testing.assert_allclose(kcp.scores(w, "fpgm"), expected, rtol=1e-4)


def test_median_centers_keep_every_channel_with_its_nearest_center():
    w = weight((6, 12, 3, 3), 170)
    result = kcp.cluster(w, 0.5, center="median", centers=3, seed=0)
    d2 = ref.squared_distances(ref.cluster_vectors(w), result.centers.astype(np.float64))
    np.testing.assert_array_equal(result.labels, np.argmin(d2, axis=1))
