"""Tiny, hand-checkable cases: literal expected values for the reference and the engine."""

import math

import numpy as np
import pytest

import kcp
from kcp.testing import reference as ref


def test_splitmix64_matches_published_sequence():
    # Vigna's splitmix64.c, seed 0.
    rng = ref.SplitMix64(0)
    assert [rng.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_splitmix64_wraps_at_64_bits():
    rng = ref.SplitMix64(2**64 - 1)
    values = [rng.next() for _ in range(100)]
    assert all(0 <= v < 2**64 for v in values)
    assert rng.state < 2**64
    units = [ref.SplitMix64(s).next_unit() for s in range(100)]
    assert all(0.0 <= u < 1.0 for u in units)
    assert ref.SplitMix64(0).next_unit() == (0xE220A8397B1DCDAF >> 11) / 2.0**53


def test_cluster_vectors_are_output_major():
    w = np.arange(8, dtype=np.float32).reshape(4, 1, 1, 2)  # groups 2: O/g = 2, K = 2
    expected = [[0, 1, 2, 3], [4, 5, 6, 7]]
    np.testing.assert_array_equal(ref.cluster_vectors(w, groups=2), expected)
    w = np.arange(12, dtype=np.float32).reshape(2, 3, 1, 2)
    expected = [[0, 1, 6, 7], [2, 3, 8, 9], [4, 5, 10, 11]]
    np.testing.assert_array_equal(ref.cluster_vectors(w), expected)
    result = kcp.cluster(w, 0.0)
    np.testing.assert_allclose(result.centers, [np.mean(expected, axis=0)], rtol=1e-6)


def test_linear_scores_by_hand():
    # v_i are the columns (0, 3), (1, 4), (2, 5); c = (1, 4); d = (sqrt 2, 0, sqrt 2).
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = {
        "kcp": [1.5, 0.0, 1.5],
        "l1": [3 / 7.5, 12 / 7.5],
        "l2": np.array([math.sqrt(5), math.sqrt(50)]) / ((math.sqrt(5) + math.sqrt(50)) / 2),
        "fpgm": [1.0, 1.0],
    }
    for criterion, values in expected.items():
        np.testing.assert_allclose(ref.scores(w, criterion), values, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(kcp.scores(w, criterion), values, rtol=1e-6, atol=1e-7)


def test_grouped_and_depthwise_scores_by_hand():
    # Groups 2, O/g = 1: v = (1), (2), (3), (4); c = 2.5; d = 1.5, .5, .5, 1.5; mean d = 1.
    w = np.array([1, 2, 3, 4], dtype=np.float32).reshape(2, 2, 1, 1)
    np.testing.assert_allclose(kcp.scores(w, groups=2), [1.5, 0.5, 0.5, 1.5], rtol=1e-6)
    np.testing.assert_allclose(ref.scores(w, groups=2), [1.5, 0.5, 0.5, 1.5])
    # Depthwise, multiplier 2: v_0 = (0, 0), v_1 = (3, 4); c = (1.5, 2); d = 2.5, 2.5.
    w = np.array([0, 0, 3, 4], dtype=np.float32).reshape(4, 1, 1, 1)
    np.testing.assert_allclose(kcp.scores(w, groups=2), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(ref.scores(w, groups=2), [1.0, 1.0])


def test_zero_mean_gives_zero_scores():
    w = np.zeros((4, 3, 3, 3), np.float32)
    for criterion in ("kcp", "l1", "l2", "fpgm"):
        np.testing.assert_array_equal(kcp.scores(w, criterion), np.zeros(4 if criterion != "kcp" else 3))
        np.testing.assert_array_equal(ref.scores(w, criterion), np.zeros(4 if criterion != "kcp" else 3))
    np.testing.assert_array_equal(kcp.scores(w, center="median"), np.zeros(3))
    np.testing.assert_array_equal(kcp.cluster(w, 0.5, centers=2).scores, np.zeros(3))


def test_geometric_median_by_hand():
    # One-dimensional kernel clusters: the median of 0, 1, 2, 3, 100 is 2.
    w = np.array([[0, 1, 2, 3, 100]], np.float32)
    distances = np.array([2, 1, 0, 1, 98]) / 20.4
    np.testing.assert_allclose(ref.scores(w, center="median"), distances, atol=1e-6)
    np.testing.assert_allclose(kcp.scores(w, center="median"), distances, atol=1e-6)
    # The vertices of an equilateral triangle: the median is the centroid.
    triangle = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    np.testing.assert_allclose(ref.geometric_median(triangle), triangle.mean(axis=0), atol=1e-9)


def test_geometric_median_minimises_the_distance_sum():
    points = np.random.default_rng(3).standard_normal((15, 4)) * [1, 2, 3, 4]
    median = ref.geometric_median(points)
    total = np.linalg.norm(points - median, axis=1).sum()
    directions = np.random.default_rng(4).standard_normal((50, 4)) * 1e-3
    assert all(np.linalg.norm(points - (median + d), axis=1).sum() >= total - 1e-12 for d in directions)
    assert total < np.linalg.norm(points - points.mean(axis=0), axis=1).sum()


def test_kmeans_by_hand():
    # Three pairs on a line: {0, 1}, {10, 11}, {20, 22}. d = .5, .5, .5, .5, 1, 1; mean 2/3.
    w = np.array([[0, 1, 10, 11, 20, 22]], np.float32)
    for result in (kcp.cluster(w, 0.5, centers=3, seed=0), ref.cluster(w, 0.5, centers=3, seed=0)):
        # SplitMix64(0): u = 0.88 picks row 5 first (center 0), then row 1 (center 1).
        np.testing.assert_array_equal(result.labels, [1, 1, 2, 2, 0, 0])
        np.testing.assert_allclose(np.asarray(result.centers).ravel(), [21, 0.5, 10.5])
        np.testing.assert_allclose(result.scores, [0.75, 0.75, 0.75, 0.75, 1.5, 1.5], rtol=1e-6)
        # Each pair keeps its representative (ties: lowest index), so only 1, 3, 5 can go.
        np.testing.assert_array_equal(result.keep, [True, False, True, False, True, False])


def test_kmeans_plus_plus_on_coincident_points_takes_lowest_unchosen_rows():
    points = np.ones((5, 3))
    first = math.floor(ref.SplitMix64(7).next_unit() * 5)
    chosen = ref.kmeans_plus_plus(points, 3, seed=7)
    assert chosen == [first] + [i for i in range(5) if i != first][:2]
    labels, _ = ref.kmeans(points, 3, seed=7)
    np.testing.assert_array_equal(labels, 0)
    np.testing.assert_array_equal(kcp.cluster(np.ones((2, 5), np.float32), 0.5, centers=3, seed=7).labels, 0)


def test_kernel_distances_by_hand():
    # mu = column means (1, 10): t = [[1, 0], [1, 0]]; pruning half removes the zeros.
    w = np.array([[0, 10], [2, 10]], np.float32)
    for result in (kcp.cluster(w, 0.5, granularity="kernel"), ref.cluster(w, 0.5, granularity="kernel")):
        np.testing.assert_allclose(result.scores, [[1, 0], [1, 0]])
        np.testing.assert_array_equal(result.keep, [[True, False], [True, False]])
        np.testing.assert_array_equal(result.pruned, [[0, 1], [1, 1]])


@pytest.mark.parametrize(
    ("n", "ratio", "round_to", "kept"),
    [(10, 0.3, 1, 7), (10, 0.3, 4, 8), (10, 0.99, 1, 1), (10, 0.99, 4, 4), (3, 0.5, 4, 3),
     (100, 0.29, 1, 72), (10, 0.0, 3, 10), (1, 0.9, 1, 1), (64, 0.5, 16, 32), (64, 0.51, 16, 32)],
)
def test_kept_count_table(n, ratio, round_to, kept):
    assert ref.kept_count(n, ratio, round_to) == kept
    assert kcp.select(np.arange(n, dtype=float), ratio, round_to=round_to).sum() == kept


def test_select_breaks_ties_by_index():
    scores = [1.0, 0.0, 1.0, 0.0, 1.0]
    np.testing.assert_array_equal(kcp.select(scores, 0.6), [False, False, True, False, True])
    np.testing.assert_array_equal(ref.select(scores, 0.6), [False, False, True, False, True])
