"""Bad input raises ValueError or TypeError naming the argument, and never crashes."""

import re
import subprocess
import sys

import numpy as np
import pytest

import kcp

W = np.random.default_rng(0).standard_normal((4, 6, 3, 3)).astype(np.float32)


def raises(kind, argument, call):
    """`call()` raises `kind` and its message starts by naming `argument`."""
    with pytest.raises(kind) as info:
        call()
    assert str(info.value).startswith(f"{argument}:"), str(info.value)
    return str(info.value)


# ---------------------------------------------------------------------------
# The weight


@pytest.mark.parametrize("shape", [(), (6,), (4, 6, 3), (4, 6, 3, 3, 1, 1), (1,) * 9])
@pytest.mark.parametrize("call", [kcp.scores, lambda w: kcp.cluster(w, 0.5)], ids=["scores", "cluster"])
def test_wrong_number_of_dimensions(shape, call):
    message = raises(ValueError, "weight", lambda: call(np.ones(shape, np.float32)))
    assert str(len(shape)) in message


@pytest.mark.parametrize("shape", [(0, 6, 3, 3), (4, 0, 3, 3), (4, 6, 0, 3), (4, 6, 3, 0), (0, 5), (5, 0)])
def test_empty_dimensions(shape):
    raises(ValueError, "weight", lambda: kcp.scores(np.ones(shape, np.float32)))
    raises(ValueError, "weight", lambda: kcp.cluster(np.ones(shape, np.float32), 0.5))
    raises(ValueError, "weight", lambda: kcp.cluster(np.ones(shape, np.float32), 0.5, granularity="kernel"))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", [
    lambda w: kcp.scores(w),
    lambda w: kcp.scores(w, center="median"),
    lambda w: kcp.scores(w, "l1"),
    lambda w: kcp.scores(w, "l2"),
    lambda w: kcp.scores(w, "fpgm"),
    lambda w: kcp.scores(w, "random"),
    lambda w: kcp.cluster(w, 0.5),
    lambda w: kcp.cluster(w, 0.5, centers=2),
    lambda w: kcp.cluster(w, 0.5, granularity="kernel"),
], ids=["kcp", "median", "l1", "l2", "fpgm", "random", "cluster", "kmeans", "kernel"])
def test_non_finite_weights_name_the_first_bad_index(value, call):
    w = W.copy()
    w[2, 4, 1, 0] = value
    w[3, 5, 2, 2] = value
    message = raises(ValueError, "weight", lambda: call(w))
    assert "[2, 4, 1, 0]" in message
    assert ("nan" if np.isnan(value) else "inf") in message


def test_non_finite_linear_weight():
    w = np.ones((3, 5), np.float32)
    w[1, 3] = np.nan
    assert "[1, 3]" in raises(ValueError, "weight", lambda: kcp.scores(w))


def test_float64_weights_outside_the_float32_range():
    w = W.astype(np.float64)
    w[1, 2, 0, 0] = 1e300
    with np.errstate(over="ignore"):
        assert "[1, 2, 0, 0]" in raises(ValueError, "weight", lambda: kcp.scores(w))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, object, "U3", "S3", bool])
def test_non_real_dtypes(dtype):
    w = W.astype(dtype)
    raises(TypeError, "weight", lambda: kcp.scores(w))
    raises(TypeError, "weight", lambda: kcp.cluster(w, 0.5))
    raises(TypeError, "weight", lambda: kcp.compact(w, keep_in=[0]))


@pytest.mark.parametrize("value", [None, "weights", {"a": 1}])
def test_non_arrays(value):
    raises(TypeError, "weight", lambda: kcp.scores(value))


def test_ragged_lists_name_the_weight():
    raises(ValueError, "weight", lambda: kcp.scores([[1.0, 2.0], [3.0]]))


# ---------------------------------------------------------------------------
# Plain arguments


@pytest.mark.parametrize(("groups", "kind"), [(4, ValueError), (5, ValueError), (0, ValueError), (-2, ValueError),
                                             (2.0, TypeError), (True, TypeError), ("2", TypeError)])
def test_bad_groups(groups, kind):
    w = np.ones((6, 2, 3, 3), np.float32)  # 4 does not divide O = 6
    raises(kind, "groups", lambda: kcp.scores(w, groups=groups))
    raises(kind, "groups", lambda: kcp.cluster(w, 0.5, groups=groups))


def test_linear_layers_have_one_group():
    raises(ValueError, "groups", lambda: kcp.scores(np.ones((4, 4), np.float32), groups=2))


def test_huge_groups_name_the_argument():
    raises(ValueError, "groups", lambda: kcp.scores(W, groups=2**63))


def test_huge_centers_name_the_argument():
    raises(ValueError, "centers", lambda: kcp.cluster(W, 0.5, centers=2**31))


@pytest.mark.parametrize(("ratio", "kind"), [(1.0, ValueError), (1.5, ValueError), (-0.1, ValueError),
                                           (-1e-300, ValueError), (float("nan"), ValueError),
                                           (float("inf"), ValueError), (True, TypeError), (False, TypeError),
                                           (np.bool_(False), TypeError), ("0.5", TypeError), (None, TypeError),
                                           (0.5j, TypeError), ([0.5], TypeError)])
def test_bad_ratio(ratio, kind):
    raises(kind, "ratio", lambda: kcp.cluster(W, ratio))
    raises(kind, "ratio", lambda: kcp.select([1.0, 2.0], ratio))


@pytest.mark.parametrize("ratio", [0, 0.0, -0.0, np.float32(0.5), np.float64(0.25), 1 - 2**-53])
def test_edge_ratios_are_accepted(ratio):
    assert kcp.cluster(W, ratio).kept >= 1


@pytest.mark.parametrize(("argument", "value"), [("criterion", "l3"), ("criterion", None), ("criterion", "KCP"),
                                                ("center", "avg"), ("center", 0)])
def test_unknown_choices_in_scores(argument, value):
    message = raises(ValueError, argument, lambda: kcp.scores(W, **{argument: value}))
    assert repr(value) in message


@pytest.mark.parametrize(("argument", "value"), [("center", "geometric"), ("granularity", "filter"),
                                                ("granularity", None)])
def test_unknown_choices_in_cluster(argument, value):
    raises(ValueError, argument, lambda: kcp.cluster(W, 0.5, **{argument: value}))


def test_unknown_axis():
    w = W.copy()
    raises(ValueError, "axis", lambda: kcp.apply_mask(w, np.ones(6, bool), axis="side"))
    raises(ValueError, "axis", lambda: kcp.apply_mask(w, np.ones(6, bool), axis=1))
    np.testing.assert_array_equal(w, W)


@pytest.mark.parametrize(("seed", "kind"), [(1.0, TypeError), (1.5, TypeError), ("1", TypeError),
                                          (None, TypeError), (True, TypeError), (-1, ValueError),
                                          (np.int64(-1), ValueError), (2**64, ValueError)])
def test_bad_seed(seed, kind):
    raises(kind, "seed", lambda: kcp.cluster(W, 0.5, centers=2, seed=seed))
    raises(kind, "seed", lambda: kcp.scores(W, "random", seed=seed))


@pytest.mark.parametrize("seed", [0, 2**64 - 1, np.uint64(2**64 - 1), np.int8(3)])
def test_seed_range_is_accepted(seed):
    assert kcp.scores(W, "random", seed=seed).shape == (4,)


@pytest.mark.parametrize(("centers", "kind"), [(7, ValueError), (0, ValueError), (-1, ValueError),
                                             (2.0, TypeError), (True, TypeError)])
def test_bad_centers(centers, kind):
    message = raises(kind, "centers", lambda: kcp.cluster(W, 0.5, centers=centers))
    if centers == 7:
        assert "6" in message  # the 6 input channels


@pytest.mark.parametrize(("round_to", "kind"), [(0, ValueError), (-4, ValueError), (2**31, ValueError),
                                              (2.0, TypeError), (True, TypeError)])
def test_bad_round_to(round_to, kind):
    raises(kind, "round_to", lambda: kcp.cluster(W, 0.5, round_to=round_to))
    raises(kind, "round_to", lambda: kcp.select([1.0, 2.0], 0.5, round_to=round_to))


@pytest.mark.parametrize("options", [{"center": "median"}, {"centers": 2}])
def test_kernel_granularity_takes_only_the_mean_center(options):
    raises(ValueError, "granularity", lambda: kcp.cluster(W, 0.5, granularity="kernel", **options))


# ---------------------------------------------------------------------------
# select


@pytest.mark.parametrize(("scores", "kind"), [([], ValueError), ([1.0, np.nan], ValueError),
                                            ([1.0, np.inf], ValueError), ([True, False], TypeError),
                                            (["a", "b"], TypeError), ([1j, 2j], TypeError),
                                            (np.array([1.0], dtype=object), TypeError)])
def test_bad_scores(scores, kind):
    raises(kind, "scores", lambda: kcp.select(scores, 0.5))


# ---------------------------------------------------------------------------
# compact


@pytest.mark.parametrize(("options", "argument", "kind"), [
    ({"keep_in": np.ones(5, bool)}, "keep_in", ValueError),
    ({"keep_out": np.ones(5, bool)}, "keep_out", ValueError),
    ({"keep_in": [6]}, "keep_in", ValueError),
    ({"keep_in": [-7]}, "keep_in", ValueError),
    ({"keep_out": [0.5]}, "keep_out", TypeError),
    ({"keep_out": ["a"]}, "keep_out", TypeError),
    ({"keep_in": np.ones((2, 3), bool)}, "keep_in", ValueError),
    ({"keep_in": True}, "keep_in", ValueError),
])
def test_bad_compact_keeps(options, argument, kind):
    raises(kind, argument, lambda: kcp.compact(W, **options))


def test_compact_needs_an_axis():
    raises(ValueError, "weight", lambda: kcp.compact(np.float32(1.0)))
    raises(ValueError, "keep_in", lambda: kcp.compact(np.ones(4, np.float32), keep_in=[0]))
    raises(ValueError, "weight", lambda: kcp.compact(np.ones((1,) * 9, np.float32), keep_out=[0]))


# ---------------------------------------------------------------------------
# apply_mask: every refusal leaves the array unchanged


def _unchanged_after(kind, argument, weight, keep, **options):
    before = np.array(weight, copy=True)
    raises(kind, argument, lambda: kcp.apply_mask(weight, keep, **options))
    np.testing.assert_array_equal(weight, before)


def test_apply_mask_refuses_float64():
    _unchanged_after(TypeError, "weight", W.astype(np.float64), np.zeros(6, bool))


def test_apply_mask_refuses_other_dtypes():
    _unchanged_after(TypeError, "weight", W.astype(np.float16), np.zeros(6, bool))
    _unchanged_after(TypeError, "weight", W.astype(np.int32), np.zeros(6, bool))


def test_apply_mask_refuses_non_contiguous_arrays():
    base = np.repeat(W, 2, axis=1)
    _unchanged_after(ValueError, "weight", base[:, ::2], np.zeros(6, bool))
    _unchanged_after(ValueError, "weight", np.asfortranarray(W), np.zeros(6, bool))
    _unchanged_after(ValueError, "weight", W.transpose(1, 0, 2, 3).copy().transpose(1, 0, 2, 3), np.zeros(6, bool))


def test_apply_mask_refuses_misaligned_arrays():
    raw = np.zeros(W.nbytes + 1, np.uint8)
    misaligned = raw[1:].view(np.float32).reshape(W.shape)
    misaligned[...] = W
    assert not misaligned.flags.aligned
    _unchanged_after(ValueError, "weight", misaligned, np.zeros(6, bool))


def test_apply_mask_refuses_read_only_arrays():
    frozen = W.copy()
    frozen.flags.writeable = False
    _unchanged_after(ValueError, "weight", frozen, np.zeros(6, bool))
    from_bytes = np.frombuffer(W.tobytes(), np.float32).reshape(W.shape)
    _unchanged_after(ValueError, "weight", from_bytes, np.zeros(6, bool))


def test_apply_mask_refuses_non_arrays():
    rows = W.tolist()
    raises(TypeError, "weight", lambda: kcp.apply_mask(rows, np.zeros(6, bool)))
    assert rows == W.tolist()


@pytest.mark.parametrize(("keep", "axis", "kind"), [
    (np.ones(5, bool), "in", ValueError),
    (np.ones(7, bool), "in", ValueError),
    (np.ones(6, bool), "out", ValueError),
    (np.ones(3, bool), "out", ValueError),
    ([6], "in", ValueError),
    ([0.5], "in", TypeError),
    (np.ones((4, 5), bool), "in", ValueError),
    (np.ones((4, 6), int), "in", TypeError),
    (np.ones((2, 2, 2), bool), "in", ValueError),
    (np.bool_(True), "in", ValueError),
])
def test_apply_mask_refuses_bad_keeps(keep, axis, kind):
    _unchanged_after(kind, "keep", W.copy(), keep, axis=axis)


def test_apply_mask_on_a_bias_has_no_input_axis():
    _unchanged_after(ValueError, "axis", np.ones(4, np.float32), np.zeros(4, bool), axis="in")


# ---------------------------------------------------------------------------
# None of it crashes the interpreter


def test_bad_calls_do_not_crash_a_fresh_interpreter():
    script = """
import numpy as np, kcp
calls = [
    lambda: kcp.scores(np.ones((0, 0, 0, 0), np.float32)),
    lambda: kcp.scores(np.ones((1,) * 32, np.float32)),
    lambda: kcp.compact(np.ones((1,) * 32, np.float32), keep_out=[0]),
    lambda: kcp.apply_mask(np.ones((1,) * 32, np.float32), [True], axis="out"),
    lambda: kcp.select(np.ones((1,) * 32), 0.5),
    lambda: kcp.cluster(np.ones((1, 1), np.float32), 0.5, centers=2),
    lambda: kcp.cluster(np.full((2, 3), 3e38, np.float32), 0.5, centers=2),
    lambda: kcp.scores(np.full((2, 3), 3e38, np.float32), "fpgm"),
    lambda: kcp.scores(np.full((2, 3), 3e38, np.float32), center="median"),
    lambda: kcp._native.layer_scores(np.ones((2, 2), np.float32), 1, 99, 0, 0),
    lambda: kcp._native.layer_scores(np.ones((2, 2), np.float32), 1, 0, 99, 0),
    lambda: kcp._native.layer_cluster(np.ones((2, 2), np.float32), 1, 0.5, 0, 1, 99, 1, 0),
    lambda: kcp._native.layer_cluster(np.ones((2, 2), np.float32), 1, 2.0, 0, 1, 0, 1, 0),
    lambda: kcp._native.layer_cluster(np.ones((2, 2), np.float32), 1, 0.5, 0, 1, 0, 0, 0),
    lambda: kcp._native.scores_select(np.ones(3), -1.0, 1),
    lambda: kcp._native.scores_select(np.ones(3), 0.5, 0),
    lambda: kcp._native.weight_mask(np.ones((2, 2), np.float32), np.ones(2, bool), 7),
    lambda: kcp._native.weight_mask(np.ones(2, np.float32), np.ones(2, bool), 1),
    lambda: kcp._native.weight_mask(np.ones((2, 2), np.float32), np.ones(3, bool), 2),
    lambda: kcp._native.weight_compact(np.ones((2, 2), np.float32), np.ones(3, bool), None),
    lambda: kcp._native.weight_compact(np.ones(2, np.float32), None, np.ones(1, bool)),
    lambda: kcp._native.set_num_threads(0),
    lambda: kcp._native.set_num_threads(-5),
]
for call in calls:
    try:
        call()
    except Exception:
        pass
print("survived")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "survived"


@pytest.mark.parametrize(("call", "argument"), [
    (lambda: kcp._native.layer_scores(W, 1, 99, 0, 0), "criterion"),
    (lambda: kcp._native.layer_scores(W, 1, 0, 99, 0), "center"),
    (lambda: kcp._native.layer_cluster(W, 1, 0.5, 0, 1, 99, 1, 0), "granularity"),
    (lambda: kcp._native.layer_cluster(W, 1, 2.0, 0, 1, 0, 1, 0), "ratio"),
    (lambda: kcp._native.layer_cluster(W, 1, 0.5, 0, 1, 0, 0, 0), "round_to"),
    (lambda: kcp._native.scores_select(np.ones(3), float("nan"), 1), "ratio"),
    (lambda: kcp._native.weight_mask(W.copy(), np.ones(6, bool), 7), "axis"),
    (lambda: kcp._native.weight_mask(np.ones(2, np.float32), np.ones(2, bool), 1), "axis"),
    (lambda: kcp._native.weight_mask(W.copy(), np.ones(5, bool), 2), "keep"),
    (lambda: kcp._native.weight_compact(W, np.ones(3, bool), None), "keep_out"),
    (lambda: kcp._native.weight_compact(W, None, np.ones(2, bool)), "keep_in"),
])
def test_the_engine_checks_its_own_arguments(call, argument):
    """The C ABI validates what the Python layer already checks (the thunks never trap)."""
    raises(ValueError, argument, call)


def test_error_messages_are_per_call():
    with pytest.raises(ValueError, match=re.escape("groups:")):
        kcp.scores(W, groups=5)
    assert kcp.scores(W).shape == (6,)
    with pytest.raises(ValueError, match=re.escape("centers:")):
        kcp.cluster(W, 0.5, centers=9)
