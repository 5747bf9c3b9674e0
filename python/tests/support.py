"""Helpers shared by the test modules: layer shapes, weights, comparisons."""

import subprocess
import sys
import textwrap

import numpy as np

# (name, weight shape, groups): every layout the engine reads.
LAYERS = [
    ("conv3x3", (8, 6, 3, 3), 1),
    ("grouped2", (8, 3, 3, 3), 2),
    ("grouped4", (8, 2, 3, 3), 4),
    ("depthwise", (6, 1, 3, 3), 6),
    ("depthwise_x2", (12, 1, 3, 3), 6),
    ("linear", (10, 7), 1),
    ("pointwise", (16, 12, 1, 1), 1),
    ("grouped_pointwise", (12, 8, 1, 1), 2),
    ("conv5x5", (6, 4, 5, 5), 1),
    ("conv1x3", (9, 5, 1, 3), 1),
    ("wide", (24, 20, 3, 3), 1),
    ("conv3x3x3", (8, 6, 3, 3, 3), 1),
    ("grouped_volume", (8, 3, 2, 3, 3), 2),
]
LAYER_IDS = [name for name, _, _ in LAYERS]


def weight(shape, seed, dtype=np.float32):
    """A standard normal weight, fixed by `seed`."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def in_channels(shape, groups):
    """``I = (I/g) * g``."""
    return shape[1] * groups


def assert_selection_agrees(keep, expected_keep, expected_scores, tolerance):
    """`keep` equals `expected_keep`, except at entries whose reference score is in a near tie.

    Float32 rounding may order two scores that tie (or nearly tie) in float64
    either way, which moves the cut or a cluster's representative; every entry
    where the masks differ must have a partner score within `tolerance`
    (relative). The kept counts must always agree.
    """
    keep, expected_keep = np.asarray(keep), np.asarray(expected_keep)
    assert keep.shape == expected_keep.shape
    assert keep.sum() == expected_keep.sum()
    scores = np.asarray(expected_scores, dtype=np.float64).reshape(-1)
    for i in np.flatnonzero(keep.reshape(-1) != expected_keep.reshape(-1)):
        close = np.abs(scores - scores[i]) <= tolerance * max(1.0, abs(scores[i]))
        assert close.sum() > 1, f"masks differ at {i} (score {scores[i]:.9g}), which is in no near tie"


def run_isolated(code, timeout=600):
    """Runs ``code`` in a fresh interpreter; returns its stdout (fails on a crash, a hang or a nonzero exit)."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    return result.stdout
