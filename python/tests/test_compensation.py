"""Retraining-free compensation (``Plan.compensate``): the refitted weights
against a float64 NumPy least-squares oracle, exact recovery when the pruned
channels are copies of kept ones, and a smaller output error than plain
pruning on every network of the zoo."""

import numpy as np
import pytest

import kcp
from test_network_zoo import ZOO, randomize_batchnorm  # noqa: E402


def calibration_for(net, samples, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((samples, *v.shape[1:])).astype(np.float32) for v in net.inputs]


def unfold(x, kernel, padding):
    """``[samples * H * W, C * k * k]`` patches of a stride-1 conv with ``padding``, ordered (c, p, q)."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    columns = [padded[:, ch, p:p + h, q:q + w] for ch in range(c) for p in range(kernel) for q in range(kernel)]
    return np.stack(columns, axis=-1).reshape(n * h * w, c * kernel * kernel)


def two_convs(duplicated=False, volume=False):
    """conv1 (3 -> 6 channels), relu, conv2 (6 -> 4, with bias); ``duplicated``:
    conv1's channels 3-5 are copies of 0-2; ``volume``: 3-D convs of a
    ``[N, 3, 5, 6, 7]`` volume (conv2 strided in depth, its taps reaching the padding)."""
    net = kcp.Network(seed=11)
    if volume:
        x = net.input("volume", (2, 3, 5, 6, 7))
        h = net.relu(net.conv3d(x, 6, 3, padding=1, name="conv1"))
        net.output(net.conv3d(h, 4, (3, 3, 2), stride=(2, 1, 1), padding=(2, 1, 0, 1, 1, 1), name="conv2"))
    else:
        x = net.input("image", (2, 3, 10, 12))
        h = net.relu(net.conv2d(x, 6, 3, padding=1, name="conv1"))
        net.output(net.conv2d(h, 4, 3, padding=1, name="conv2"))
    rng = np.random.default_rng(5)
    net.set_parameter("conv2.bias", rng.standard_normal(4).astype(np.float32))
    if duplicated:
        w, b = net.parameters["conv1.weight"], rng.standard_normal(6).astype(np.float32)
        w[3:], b[3:] = w[:3], b[:3]
        net.set_parameter("conv1.weight", w)
        net.set_parameter("conv1.bias", b)
    return net


def plan_pruning(net, pruned):
    """A plan pruning channels ``pruned`` of conv1's output space."""
    space = next(s.index for s in kcp.spaces(net) if "conv1" in s.values)
    channels = {s.index: s.channels for s in kcp.spaces(net)}
    plan = kcp.plan(net, ratio=0.0)
    plan.pruned, plan.channels = {space: list(pruned)}, channels
    return plan


def test_refitted_weights_are_the_ridge_least_squares_solution():
    net, ridge = two_convs(), 0.01
    plan = plan_pruning(net, [1, 4])
    calibration = calibration_for(net, 20, seed=1)
    compensated = plan.compensate(net, calibration, ridge=ridge, chunk=7)
    # The oracle: conv1's kept outputs (after relu) as inputs, the dense conv2 outputs as targets.
    kept = [0, 2, 3, 5]
    image = calibration[0].astype(np.float64)
    w1, b1 = (net.parameters[f"conv1.{p}"].astype(np.float64) for p in ("weight", "bias"))
    hidden = np.maximum(unfold(image, 3, 1) @ w1.reshape(6, -1).T + b1, 0)
    x = unfold(hidden.reshape(20, 10, 12, 6).transpose(0, 3, 1, 2)[:, kept], 3, 1)
    dense_hidden = hidden.reshape(20, 10, 12, 6).transpose(0, 3, 1, 2)
    w2, b2 = (net.parameters[f"conv2.{p}"].astype(np.float64) for p in ("weight", "bias"))
    y = unfold(dense_hidden, 3, 1) @ w2.reshape(4, -1).T + b2
    x1 = np.hstack([x, np.ones((len(x), 1))])
    gram = x1.T @ x1
    penalty = ridge * np.mean(np.diag(gram)[:-1])
    gram[np.arange(len(gram) - 1), np.arange(len(gram) - 1)] += penalty
    solution = np.linalg.solve(gram, x1.T @ y).T
    np.testing.assert_allclose(compensated.parameters["conv2.weight"].reshape(4, -1), solution[:, :-1], rtol=0,
                               atol=1e-4 * np.abs(solution).max())
    np.testing.assert_allclose(compensated.parameters["conv2.bias"], solution[:, -1], rtol=0,
                               atol=1e-4 * np.abs(solution).max())
    # conv1 only lost output channels: its kept filters are the dense ones.
    np.testing.assert_array_equal(compensated.parameters["conv1.weight"], net.parameters["conv1.weight"][kept])


@pytest.mark.parametrize("volume", [False, True], ids=["conv2d", "conv3d"])
def test_pruned_copies_of_kept_channels_are_recovered_exactly(volume):
    net = two_convs(duplicated=True, volume=volume)
    plan = plan_pruning(net, [3, 4, 5])
    compensated = plan.compensate(net, calibration_for(net, 8, seed=2), ridge=0)
    test = calibration_for(net, 2, seed=3)
    dense, pruned = net(*test)[0], plan.apply(net)(*test)[0]
    scale = np.abs(dense).max()
    assert np.abs(pruned - dense).max() > 0.1 * scale
    np.testing.assert_allclose(compensated(*test)[0], dense, rtol=0, atol=1e-4 * scale)


@pytest.mark.parametrize("build", ZOO, ids=[f.__name__ for f in ZOO])
def test_compensation_brings_every_zoo_network_closer_to_the_dense_one(build):
    net = build()
    randomize_batchnorm(net)
    plan = kcp.plan(net, ratio=0.5)
    before = {name: value.copy() for name, value in net.parameters.items()}
    # 128 samples: a group-wise volume's lost products are made up for only by the conv3d reading it (the
    # volume's channels stay), a fit that 32 samples leave worse than none on held-out inputs.
    compensated = plan.compensate(net, calibration_for(net, 128, seed=4))
    test = calibration_for(net, 4, seed=5)
    for dense, pruned, fitted in zip(net(*test), plan.apply(net)(*test), compensated(*test)):
        assert np.mean((fitted - dense) ** 2) < np.mean((pruned - dense) ** 2)
    assert compensated.cost() == plan.apply(net).cost()
    for name, value in net.parameters.items():
        np.testing.assert_array_equal(value, before[name])


def test_the_result_does_not_depend_on_the_chunk_size():
    net = ZOO[2]()
    plan = kcp.plan(net, ratio=0.5)
    calibration = calibration_for(net, 12, seed=6)
    one, many = plan.compensate(net, calibration, chunk=1), plan.compensate(net, calibration, chunk=12)
    # The same sums in float in another order; each refit passes its rounding on to the later ones
    # (measured: 1e-7 of the scale in the first refitted layer, 1.3e-4 in the last).
    for name, value in one.parameters.items():
        np.testing.assert_allclose(value, many.parameters[name], rtol=0, atol=1e-3 * np.abs(value).max())


def test_progress_bar_and_ctrl_c(monkeypatch, capfd):
    net = ZOO[2]()
    plan = kcp.plan(net, ratio=0.5)
    calibration = calibration_for(net, 8, seed=7)
    plan.compensate(net, calibration, progress="refitting")
    assert "refitting" in capfd.readouterr().err
    before = {name: value.copy() for name, value in net.parameters.items()}
    import tqdm.auto

    class Interrupted(tqdm.auto.tqdm):
        def update(self, n=1):
            raise KeyboardInterrupt

    monkeypatch.setattr(tqdm.auto, "tqdm", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        plan.compensate(net, calibration)
    for name, value in net.parameters.items():
        np.testing.assert_array_equal(value, before[name])
    assert plan.compensate(net, calibration, progress=False).cost() == plan.apply(net).cost()


@pytest.mark.parametrize(("arguments", "error", "message"), [
    (dict(ridge=-1.0), ValueError, "ridge"),
    (dict(ridge=float("nan")), ValueError, "ridge"),
    (dict(ridge="0.1"), TypeError, "ridge"),
    (dict(chunk=0), ValueError, "chunk"),
])
def test_bad_arguments_are_named(arguments, error, message):
    net = two_convs()
    with pytest.raises(error, match=message):
        plan_pruning(net, [0]).compensate(net, calibration_for(net, 2, seed=0), **arguments)


def test_calibration_of_the_wrong_shape_is_refused():
    net = two_convs()
    with pytest.raises(ValueError, match=r"inputs\[0\]"):
        plan_pruning(net, [0]).compensate(net, [np.zeros((2, 4, 10, 12), np.float32)])
