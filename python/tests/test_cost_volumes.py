"""Stereo cost volumes (PSMNet's concatenation, GwcNet's group-wise
correlation) and disparity regression: the engine against the NumPy
reference, against PyTorch running the published volume-building loops
(outputs and gradients), the builders' argument checks, and the channel
rules (a concatenation volume holds each feature channel twice, a group
correlation keeps its groups) with compact == masked."""

import numpy as np
import pytest
import torch

import kcp
from kcp.testing import reference
from kcp.testing.torch_functional import torch_forward

CASES = [("concatenation", 1, (2, 3, 4, 11), 4), ("concatenation", 1, (1, 2, 3, 5), 7),
         ("group_correlation", 2, (2, 6, 3, 11), 5), ("group_correlation", 6, (1, 6, 2, 9), 3),
         ("group_correlation", 1, (1, 4, 2, 4), 6)]


def volume_net(kind, groups, shape, disparities):
    net = kcp.Network()
    left, right = net.input("left", shape), net.input("right", shape)
    net.output(net.cost_volume(left, right, disparities, kind, groups=groups, name="volume"))
    return net


@pytest.mark.parametrize(("kind", "groups", "shape", "disparities"), CASES)
def test_volumes_match_the_numpy_reference(kind, groups, shape, disparities):
    rng = np.random.default_rng(0)
    left, right = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    (y,) = volume_net(kind, groups, shape, disparities)(left, right)
    expected = reference.cost_volume(left, right, disparities, kind, groups, groups / shape[1])
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-5)
    assert y.shape == (shape[0], 2 * shape[1] if kind == "concatenation" else groups, disparities, *shape[2:])


def test_volume_literals():
    left, right = np.array([[[[1, 2, 3]]]], np.float32), np.array([[[[4, 5, 6]]]], np.float32)
    (y,) = volume_net("concatenation", 1, (1, 1, 1, 3), 2)(left, right)
    assert y.ravel().tolist() == [1, 2, 3, 0, 2, 3, 4, 5, 6, 0, 4, 5]
    (y,) = volume_net("group_correlation", 1, (1, 1, 1, 3), 2)(left, right)
    assert y.ravel().tolist() == [4, 10, 18, 0, 8, 15]


def stereo_head(kind, groups, sign=1, activation="relu"):
    """Siamese features (shared conv) -> volume -> 1x1 conv as a linear map over
    the volume's channels (flatten -> linear), or for one group the regression."""
    net = kcp.Network(seed=3)
    left, right = net.input("left", (2, 3, 4, 10)), net.input("right", (2, 3, 4, 10))
    fl = net.activation(net.conv2d(left, 6, 3, padding=1, name="features"), activation)
    fr = net.activation(net.conv2d(right, 6, 3, padding=1, share="features"), activation)
    volume = net.cost_volume(fl, fr, 5, kind, groups=groups, name="volume")
    if kind == "group_correlation" and groups == 1:
        net.output(net.soft_argmin(volume, sign=sign))
    else:
        net.output(net.linear(net.flatten(volume), 3, name="head"))
    return net


@pytest.mark.parametrize(("kind", "groups", "sign"), [("concatenation", 1, 1), ("group_correlation", 3, 1),
                                                     ("group_correlation", 1, 1), ("group_correlation", 1, -1)])
def test_outputs_and_gradients_agree_with_the_published_loops(kind, groups, sign):
    net = stereo_head(kind, groups, sign)
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal(v.shape).astype(np.float32) for v in net.inputs]
    outputs = net(*inputs)
    seeds = [rng.standard_normal(o.shape).astype(np.float32) for o in outputs]
    _, gradients = net.gradients(*inputs, output_gradients=seeds)
    parameters = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.parameters.items()}
    theirs = torch_forward(net, parameters, [torch.tensor(x, dtype=torch.float64) for x in inputs], False)
    sum((torch.tensor(s, dtype=torch.float64) * t).sum() for s, t in zip(seeds, theirs)).backward()
    for mine, expected in zip(outputs, theirs):
        expected = expected.detach().numpy()
        np.testing.assert_allclose(mine, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    for name, tensor in parameters.items():
        expected = tensor.grad.numpy()
        np.testing.assert_allclose(gradients[name], expected, rtol=0, atol=1e-4 * np.abs(expected).max(), err_msg=name)


def test_regression_signs_and_the_numpy_reference():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1, 6, 3, 4)).astype(np.float32) * 3
    for sign in (-1, 1):
        net = kcp.Network()
        net.output(net.soft_argmin(net.input("x", x.shape), sign=sign))
        (y,) = net(x)
        np.testing.assert_allclose(y, reference.soft_argmin(x, sign), rtol=0, atol=1e-5)
    np.testing.assert_allclose(reference.soft_argmin(x, 1), reference.soft_argmin(-x.reshape(2, 6, 3, 4), -1))


def test_builders_name_the_bad_argument():
    net = kcp.Network()
    left, right = net.input("left", (1, 6, 4, 8)), net.input("right", (1, 6, 4, 8))
    with pytest.raises(ValueError, match="kind"):
        net.cost_volume(left, right, 4, "difference")
    with pytest.raises(ValueError, match="groups"):
        net.cost_volume(left, right, 4, "group_correlation", groups=4)
    with pytest.raises(ValueError, match="groups"):
        net.cost_volume(left, right, 4, "concatenation", groups=2)
    with pytest.raises(ValueError, match="max_disparity"):
        net.cost_volume(left, right, 0)
    with pytest.raises(ValueError, match="sign"):
        net.soft_argmin(left, sign=0)
    with pytest.raises(ValueError, match="one-channel volume"):
        net.soft_argmin(net.cost_volume(left, right, 4, "group_correlation", groups=2))
    other = net.input("other", (1, 6, 4, 9))
    with pytest.raises(ValueError, match="equal shapes"):
        net.cost_volume(left, other, 4)


def test_concatenation_volume_prunes_both_copies_of_a_feature():
    net = stereo_head("concatenation", 1)
    plan = kcp.plan(net, ratio=0.5)
    compact = plan.apply(net, "compact")
    volume = {layer.name: layer for layer in compact.layers}["volume"]
    features = compact.parameters["features.weight"].shape[0]
    assert features == 3
    assert compact.parameters["head.weight"].shape[1] == 2 * features * 5 * 4 * 10
    assert volume.attributes == net.layers[[layer.name for layer in net.layers].index("volume")].attributes


def test_group_correlation_keeps_its_groups_and_scale():
    net = stereo_head("group_correlation", 3)
    plan = kcp.plan(net, ratio=0.5)
    compact = plan.apply(net, "compact")
    # 6 features in 3 groups of 2: one position of every group goes, the 3 groups and scale 1/2 stay.
    assert compact.parameters["features.weight"].shape[0] == 3
    assert {layer.name: layer for layer in compact.layers}["volume"].attributes[2:] == (3, 0.5)
    frozen = " ".join(space.reason for space in kcp.plans.spaces(net))
    assert "group channels of cost volume 'volume'" in frozen


@pytest.mark.parametrize(("kind", "groups", "activation"), [("concatenation", 1, "relu"),
                                                            ("concatenation", 1, "sigmoid"),
                                                            ("group_correlation", 2, "relu"),
                                                            ("group_correlation", 3, "tanh"),
                                                            ("group_correlation", 2, "sigmoid")])
def test_compact_equals_masked(kind, groups, activation):
    net = stereo_head(kind, groups, activation=activation)
    plan = kcp.plan(net, ratio=0.5)
    inputs = [np.random.default_rng(4).standard_normal(v.shape).astype(np.float32) for v in net.inputs]
    (compact,) = plan.apply(net, "compact")(*inputs)
    (masked,) = plan.apply(net, "mask")(*inputs)
    np.testing.assert_allclose(compact, masked, rtol=0, atol=1e-4 * np.abs(masked).max())
    pruned = plan.apply(net, "compact").parameters["features.weight"].shape[0]
    # Every group loses the same positions: floor(0.5 * 6 / groups) of them. sigmoid(0) = 0.5 would
    # reach a group correlation's sums: those features are frozen; a concatenation volume only
    # copies them, and the consumer's masked kernels drop them.
    frozen = (activation, kind) == ("sigmoid", "group_correlation")
    assert pruned == 6 - (0 if frozen else (6 // groups // 2) * groups)


@pytest.mark.parametrize(("kind", "groups", "sign"), [("concatenation", 1, 1), ("group_correlation", 3, 1),
                                                     ("group_correlation", 1, 1), ("group_correlation", 1, -1)])
@pytest.mark.parametrize("compact", [False, True], ids=["dense", "compact"])
def test_onnx_export_runs_in_onnxruntime_and_reimports(kind, groups, sign, compact):
    pytest.importorskip("onnxruntime")
    from test_onnx import check_export

    net = stereo_head(kind, groups, sign)
    if compact:
        net = kcp.plan(net, ratio=0.5).apply(net)
    inputs = [np.random.default_rng(5).standard_normal(v.shape).astype(np.float32) for v in net.inputs]
    model, again = check_export(net, inputs)
    assert [(layer.op, layer.attributes) for layer in again.layers] == [(layer.op, layer.attributes)
                                                                        for layer in net.layers]
    expected = {"concatenation": "ConcatenationVolume"}.get(kind, "GroupCorrelationVolume")
    assert ("ai.kcp", expected) in {(f.domain, f.name) for f in model.functions}


@pytest.mark.parametrize("build", [kcp.models.psmnet, kcp.models.gwcnet], ids=["psmnet", "gwcnet"])
def test_stereo_models_prune_to_70_percent_fewer_macs_compact_equals_masked(build):
    net = build(height=32, width=64, channels=1)
    rng = np.random.default_rng(6)
    for name, value in net.parameters.items():
        if name.endswith(("running_var", "running_mean", ".bias")):
            net.set_parameter(name, rng.uniform(0.5, 1.5, value.shape) if name.endswith("running_var")
                              else rng.normal(0, 0.3, value.shape))
    plan = kcp.plan(net, macs_reduction=0.7)
    compact, masked = plan.apply(net, "compact"), plan.apply(net, "mask")
    assert compact.cost()[0] == plan.macs_after <= 0.3 * plan.macs_before
    inputs = [rng.standard_normal(v.shape).astype(np.float32) for v in net.inputs]
    (got,), (expected,) = compact(*inputs), masked(*inputs)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize(("attributes", "message"), [((5, 4, 1, 1.0), "kind"), ((1, 4, 0, 1.0), "groups"),
                                                     ((1, 4, 4, float("nan")), "scale"),
                                                     ((0, 10**14, 1, 1.0), "elements"),
                                                     ((0, 4, 2, 1.0), "groups 1 and scale 1"),
                                                     ((1, -3, 2, 0.5), "disparity")])
def test_raw_attributes_are_checked_before_the_engine_runs(attributes, message):
    net = kcp.Network()
    left, right = net.input("left", (1, 4, 3, 8)), net.input("right", (1, 4, 3, 8))
    with pytest.raises(ValueError, match=message):
        net.layer("cost_volume", [left, right], attributes)
    with pytest.raises(ValueError, match="sign"):
        net.layer("soft_argmin", [left], (float("nan"),))
