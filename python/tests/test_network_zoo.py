"""Whole networks of awkward shapes, pruned and run: compact equals masked.

Each network of the zoo is planned at several ratios and criteria; the
compact network (channels removed) and the masked network (channels zeroed)
must give the same outputs, and the plan's MACs must be the compact
network's.
"""

import numpy as np
import pytest

import kcp
from kcp.testing import reference


def chain():
    net = kcp.Network(seed=1)
    x = net.input("image", (2, 3, 12, 12))
    for i, width in enumerate((8, 16, 16)):
        x = net.relu(net.batchnorm(net.conv2d(x, width, 3, padding=1, stride=1 + (i == 1))))
    net.output(net.linear(net.flatten(net.global_avg_pool(x)), 5))
    return net


def resnet_blocks():
    net = kcp.Network(seed=2)
    x = net.relu(net.batchnorm(net.conv2d(net.input("image", (2, 3, 16, 16)), 8, 3, padding=1)))
    for width, stride in ((8, 1), (16, 2)):
        y = net.relu(net.batchnorm(net.conv2d(x, width, 3, padding=1, stride=stride)))
        y = net.batchnorm(net.conv2d(y, width, 3, padding=1))
        shortcut = x if stride == 1 else net.batchnorm(net.conv2d(x, width, 1, stride=stride))
        x = net.relu(net.add(y, shortcut))
    net.output(net.linear(net.flatten(net.global_avg_pool(x)), 4))
    return net


def unet():
    net = kcp.Network(seed=3)
    x = net.input("image", (1, 3, 16, 16))
    e1 = net.relu(net.conv2d(x, 8, 3, padding=1))
    e2 = net.relu(net.conv2d(e1, 16, 3, padding=1, stride=2))
    bottom = net.relu(net.conv2d(e2, 16, 3, padding=1, stride=2))
    d2 = net.relu(net.conv2d(net.concat(net.upsample(bottom, 2, "bilinear"), e2), 16, 3, padding=1))
    d1 = net.relu(net.conv2d(net.concat(net.upsample(d2, 2, "bilinear"), e1), 8, 3, padding=1))
    net.output(net.conv2d(d1, 3, 1))
    return net


def stereo():
    net = kcp.Network(seed=4)
    left, right = net.input("left", (1, 3, 8, 16)), net.input("right", (1, 3, 8, 16))
    fl = net.relu(net.conv2d(left, 8, 3, padding=1, name="feature"))
    fr = net.relu(net.conv2d(right, 8, 3, padding=1, share="feature"))
    fl = net.relu(net.conv2d(fl, 8, 3, padding=1, name="feature2"))
    fr = net.relu(net.conv2d(fr, 8, 3, padding=1, share="feature2"))
    cost = net.correlation(fl, fr, 4)
    aggregated = net.conv2d(net.relu(net.conv2d(cost, 8, 3, padding=1)), 4, 3, padding=1)
    net.output(net.soft_argmin(aggregated))
    return net


def depthwise_separable():
    net = kcp.Network(seed=5)
    x = net.relu(net.conv2d(net.input("image", (2, 3, 10, 10)), 8, 3, padding=1))
    x = net.relu(net.batchnorm(net.conv2d(x, 8, 3, padding=1, groups=8)))
    x = net.relu(net.conv2d(x, 16, 1))
    x = net.relu(net.conv2d(x, 32, 3, padding=1, groups=16))
    net.output(net.conv2d(x, 4, 1))
    return net


def grouped():
    net = kcp.Network(seed=6)
    x = net.relu(net.conv2d(net.input("image", (1, 4, 8, 8)), 8, 3, padding=1))
    x = net.relu(net.conv2d(x, 8, 3, padding=1, groups=2, name="grouped"))
    x = net.relu(net.conv2d(x, 8, 3, padding=1))
    net.output(net.conv2d(x, 2, 1))
    return net


def two_outputs():
    net = kcp.Network(seed=7)
    x = net.relu(net.conv2d(net.input("image", (2, 3, 8, 8)), 8, 3, padding=1))
    x = net.relu(net.conv2d(x, 8, 3, padding=1))
    net.output(net.conv2d(x, 3, 1, name="segmentation"), net.sigmoid(net.conv2d(x, 1, 1, name="depth")))
    return net


def normalized():
    """InstanceNorm, a ConvNeXt block (depthwise 7x7, LayerNorm over channels,
    1x1 up, GELU, 1x1 down, residual), then GroupNorm."""
    net = kcp.Network(seed=8)
    x = net.relu(net.instance_norm(net.conv2d(net.input("image", (2, 3, 12, 12)), 16, 3, padding=1), name="in"))
    y = net.layer_norm(net.conv2d(x, 16, 7, padding=3, groups=16), name="ln")
    y = net.activation(net.conv2d(y, 32, 1), "gelu")
    x = net.add(x, net.conv2d(y, 16, 1))
    x = net.relu(net.group_norm(net.conv2d(x, 24, 3, padding=1), 4, name="gn"))
    x = net.conv2d(x, 8, 3, padding=1)
    net.output(net.linear(net.flatten(net.global_avg_pool(x)), 5))
    return net


def decoder():
    """A U-Net decoder upsampling by transposed convs: stride 2 with output
    padding and asymmetric padding, then, past concat skips, a grouped one
    (stride 2) and a depthwise one (multiplier 2)."""
    net = kcp.Network(seed=9)
    e1 = net.relu(net.conv2d(net.input("image", (2, 3, 12, 12)), 8, 3, padding=1))
    e2 = net.relu(net.batchnorm(net.conv2d(e1, 16, 3, padding=1, stride=2)))
    bottom = net.relu(net.conv2d(e2, 16, 3, padding=1, stride=2))
    u2 = net.relu(net.conv_transpose2d(bottom, 12, 3, stride=2, padding=(1, 0, 1, 2), output_padding=1, name="up2"))
    u1 = net.relu(net.conv_transpose2d(net.concat(u2, e2), 8, 4, stride=2, padding=1, groups=4, name="up1"))
    d1 = net.relu(net.conv_transpose2d(net.concat(u1, e1), 32, 3, padding=1, groups=16, bias=False, name="dw"))
    net.output(net.conv2d(d1, 3, 1))
    return net


def volume():
    """A stereo-style 3-D aggregation of a [N, C, D, H, W] volume: conv3d-bn-relu,
    a residual add, a strided and a grouped conv3d, transposed conv3d back up
    (stride 2 with output padding, then a depthwise one), a pooled branch
    (max and average pooling, trilinear upsampling) added back, and a 1x1x1 head."""
    net = kcp.Network(seed=10)
    x = net.relu(net.batchnorm(net.conv3d(net.input("volume", (2, 4, 6, 8, 10)), 8, 3, padding=1)))
    y = net.batchnorm(net.conv3d(net.relu(net.batchnorm(net.conv3d(x, 8, 3, padding=1))), 8, 3, padding=1))
    x = net.relu(net.add(x, y))
    down = net.relu(net.batchnorm(net.conv3d(x, 12, 3, stride=2, padding=(1, 0, 1, 1, 2, 1))))
    down = net.relu(net.conv3d(down, 12, (1, 3, 3), padding=(0, 1, 2), groups=3, dilation=(1, 1, 2)))
    up = net.relu(net.conv_transpose3d(down, 8, 3, stride=2, padding=1, output_padding=1, name="up"))
    pooled = net.avg_pool(net.max_pool(x, 2), 3, stride=1, padding=1, count_include_pad=True)
    up = net.add(net.add(up, x), net.upsample(pooled, 2, "trilinear"))
    up = net.conv_transpose3d(up, 16, 3, padding=1, groups=8, bias=False, name="dwup")
    net.output(net.conv3d(net.relu(up), 1, 1))
    return net


def siamese_features(net, width, shape=(1, 3, 8, 16)):
    """Left and right features at half resolution from shared convs."""
    left, right = net.input("left", shape), net.input("right", shape)
    fl = net.conv2d(net.relu(net.conv2d(left, width, 3, stride=2, padding=1, name="f1")), width, 3, padding=1, name="f2")
    fr = net.conv2d(net.relu(net.conv2d(right, width, 3, stride=2, padding=1, share="f1")), width, 3, padding=1,
                    share="f2")
    return fl, fr


def hourglass(net, x, width):
    """A 3-D hourglass: a strided conv3d down, a transposed conv3d back, a residual add."""
    down = net.relu(net.batchnorm(net.conv3d(x, width + 4, 3, stride=2, padding=1)))
    up = net.batchnorm(net.conv_transpose3d(down, width, 3, stride=2, padding=1, output_padding=1))
    return net.relu(net.add(up, x))


def concatenation_volume():
    """PSMNet-style: a concatenation volume (each feature twice), 3-D aggregation
    with an hourglass, regression over the volume's disparities."""
    net = kcp.Network(seed=10)
    volume = net.cost_volume(*siamese_features(net, 6), 4, name="volume")
    x = net.relu(net.batchnorm(net.conv3d(volume, 8, 3, padding=1)))
    net.output(net.soft_argmin(net.conv3d(hourglass(net, x, 8), 1, 3, padding=1), sign=1))
    return net


def group_correlation_volume():
    """GwcNet-style: a group-wise correlation volume (4 groups of 3) concatenated
    with a small concatenation volume of 1x1-reduced features, 3-D hourglass."""
    net = kcp.Network(seed=11)
    fl, fr = siamese_features(net, 12)
    gwc = net.cost_volume(fl, fr, 4, "group_correlation", groups=4, name="gwc")
    cl = net.conv2d(net.relu(fl), 3, 1, name="reduce")
    cr = net.conv2d(net.relu(fr), 3, 1, share="reduce")
    volume = net.concat(gwc, net.cost_volume(cl, cr, 4, name="concat_volume"))
    x = net.relu(net.batchnorm(net.conv3d(volume, 8, 3, padding=1)))
    net.output(net.soft_argmin(net.conv3d(hourglass(net, x, 8), 1, 3, padding=1), sign=1))
    return net


def correlation_decoder():
    """DispNetC-style: a 2-D correlation at half resolution, aggregation, a
    transposed conv back to full resolution, soft argmin."""
    net = kcp.Network(seed=12)
    cost = net.correlation(*siamese_features(net, 8), 6)
    x = net.relu(net.batchnorm(net.conv2d(cost, 12, 3, padding=1)))
    x = net.relu(net.conv_transpose2d(x, 8, 4, stride=2, padding=1, name="up"))
    net.output(net.soft_argmin(net.conv2d(x, 6, 3, padding=1)))
    return net


ZOO = [chain, resnet_blocks, unet, stereo, depthwise_separable, grouped, two_outputs, normalized, decoder, volume,
       concatenation_volume, group_correlation_volume, correlation_decoder]


def inputs_for(net, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(v.shape).astype(np.float32) for v in net.inputs]


def randomize_batchnorm(net, seed=0):
    """Non-trivial batchnorm statistics and normalization biases, so masking must handle them."""
    rng = np.random.default_rng(seed)
    for name, value in net.parameters.items():
        if "running_var" in name:
            net.set_parameter(name, rng.uniform(0.5, 2, value.shape))
        elif "running_mean" in name or name.startswith(("batchnorm", "ln", "gn", "in")) and name.endswith(".bias"):
            net.set_parameter(name, rng.normal(0, 0.5, value.shape))


@pytest.mark.parametrize("build", ZOO, ids=[f.__name__ for f in ZOO])
@pytest.mark.parametrize(("amount", "criterion"), [({"ratio": 0.3}, "kcp"), ({"ratio": 0.5}, "kcp"),
                                                  ({"ratio": 0.7}, "kcp"), ({"ratio": 0.5}, "l1"),
                                                  ({"ratio": 0.5}, "fpgm"), ({"ratio": 0.5}, "random"),
                                                  ({"ratio": 0.5, "global_pruning": True}, "kcp")])
def test_compact_equals_masked(build, amount, criterion):
    net = build()
    randomize_batchnorm(net)
    plan = kcp.plan(net, criterion=criterion, **amount)
    masked, compact = plan.apply(net, "mask"), plan.apply(net, "compact")
    xs = inputs_for(net)
    for m, c in zip(masked(*xs), compact(*xs)):
        assert m.shape == c.shape
        np.testing.assert_allclose(c, m, atol=1e-4 * max(np.abs(m).max(), 1e-6), rtol=0)
    assert compact.cost() == (plan.macs_after, plan.params_after)
    assert net.cost() == (plan.macs_before, plan.params_before)


@pytest.mark.parametrize("build", [chain, resnet_blocks, unet, depthwise_separable], ids=lambda f: f.__name__)
def test_macs_reduction_target_is_met(build):
    net = build()
    plan = kcp.plan(net, macs_reduction=0.5)
    assert plan.macs_after <= 0.5 * plan.macs_before
    assert plan.apply(net).cost()[0] == plan.macs_after


def test_plan_round_trips_through_json_onto_a_fresh_copy():
    net = unet()
    plan = kcp.plan(net, ratio=0.5)
    again = kcp.Plan.from_json(plan.to_json())
    xs = inputs_for(net)
    np.testing.assert_array_equal(again.apply(unet())(*xs)[0], plan.apply(net)(*xs)[0])


def test_frozen_spaces_are_reported_with_their_reason():
    reasons = [s.reason for s in kcp.spaces(grouped()) if s.prunable == 0]
    assert any("network input 'image'" in r for r in reasons)
    stereo_reasons = " ".join(s.reason for s in kcp.spaces(stereo()))
    assert "correlation" in stereo_reasons and "soft_argmin" in stereo_reasons


def test_grouped_convs_keep_their_groups_and_shrink_each_group_alike():
    net = grouped()
    assert all(s.prunable for s in kcp.spaces(net) if "grouped" in s.values)
    compact = kcp.plan(net, ratio=0.5).apply(net)
    layer = next(layer for layer in compact.layers if layer.name == "grouped")
    assert layer.attributes[-1] == 2
    assert compact.parameters["grouped.weight"].shape == (4, 2, 3, 3)


def test_group_norm_loses_whole_groups_and_layer_norm_single_channels():
    net = normalized()
    compact = kcp.plan(net, ratio=0.5).apply(net)
    norms = {layer.name: layer for layer in compact.layers if layer.op == "normalization"}
    assert norms["gn"].attributes[0] == 2 and compact.parameters["gn.weight"].shape == (12,)
    assert norms["in"].attributes[0] == compact.parameters["in.weight"].shape[0] == 8
    assert norms["ln"].attributes[0] == 1 and compact.parameters["ln.weight"].shape == (8,)


def test_masked_layer_norm_counts_only_kept_channels():
    """Masking zeroes a LayerNorm's statistics mask at pruned channels: counted, the zeroed channels would shift its moments."""
    net = normalized()
    randomize_batchnorm(net)
    plan = kcp.plan(net, ratio=0.5)
    masked = plan.apply(net, "mask")
    assert net.parameters["ln.statistics_mask"].sum() == 16
    mask = masked.parameters["ln.statistics_mask"]
    assert sorted(set(mask.tolist())) == [0.0, 1.0] and mask.sum() == 8
    xs = inputs_for(net)
    compact = plan.apply(net)(*xs)[0]
    np.testing.assert_allclose(masked(*xs)[0], compact, atol=1e-4 * np.abs(compact).max(), rtol=0)
    masked.set_parameter("ln.statistics_mask", np.ones_like(mask))
    assert not np.allclose(masked(*xs)[0], compact, atol=1e-2 * np.abs(compact).max())


def test_transposed_convs_slice_their_weight_by_input_rows_and_output_columns():
    net = decoder()
    compact = kcp.plan(net, ratio=0.5).apply(net)
    ops = {layer.name: layer for layer in compact.layers}
    # [I, O/g, kh, kw]: the grouped one keeps its 4 groups, the depthwise one a group per kept input.
    assert compact.parameters["up2.weight"].shape == (8, 6, 3, 3)
    assert compact.parameters["up1.weight"].shape == (16, 1, 4, 4) and ops["up1"].attributes[-1] == 4
    assert compact.parameters["dw.weight"].shape == (8, 2, 3, 3) and ops["dw"].attributes[-1] == 8
    assert compact.layer_widths()["dw"] == 16


def test_siamese_branches_are_pruned_together():
    net = stereo()
    compact = kcp.plan(net, ratio=0.5).apply(net)
    shapes = {name: value.shape for name, value in compact.parameters.items()}
    assert shapes["feature.weight"][0] == 4 and shapes["feature2.weight"][1] == 4


def test_kcp_scores_features_read_only_by_a_correlation_from_their_producers():
    net = stereo()
    chosen = kcp.plan(net, ratio=0.5)
    feature_space = next(s.index for s in kcp.spaces(net) if "feature2" in s.values)
    scores = chosen.scores[feature_space]
    weight = net.parameters["feature2.weight"].reshape(8, -1).astype(np.float64)
    distances = np.linalg.norm(weight - weight.mean(axis=0), axis=1)
    # Two producers (the left and right branches share the weight), each adding its normalised distances.
    np.testing.assert_allclose(scores, 2 * distances / distances.mean(), rtol=1e-6)
    assert sorted(chosen.pruned[feature_space]) == sorted(np.argsort(distances, kind="stable")[:4])


@pytest.mark.parametrize("transposed", [False, True], ids=["conv3d", "conv_transpose3d"])
def test_kcp_scores_volumetric_kernels_as_the_layer_api_does(transposed):
    """A channel read by a conv3d is scored by its kernel cluster of kd x kh x kw kernels, as
    ``kcp.scores`` scores the 5-D weight; a transposed conv3d by its weight's rows."""
    net = kcp.Network(seed=13)
    hidden = net.relu(net.conv3d(net.input("volume", (1, 3, 4, 5, 6)), 8, 3, padding=1, name="first"))
    if transposed:
        net.output(net.conv_transpose3d(hidden, 4, (2, 3, 3), stride=2, name="second"))
    else:
        net.output(net.conv3d(hidden, 4, (2, 3, 3), padding=(1, 1, 1), name="second"))
    chosen = kcp.plan(net, ratio=0.5)
    space = next(s.index for s in kcp.spaces(net) if "first" in s.values)
    weight = net.parameters["second.weight"].astype(np.float64)
    if transposed:
        rows = weight.reshape(8, -1)
        distances = np.linalg.norm(rows - rows.mean(axis=0), axis=1)
        expected = distances / distances.mean()
    else:
        expected = reference.scores(weight)
    np.testing.assert_allclose(chosen.scores[space], expected, rtol=1e-5)
    assert sorted(chosen.pruned[space]) == sorted(np.argsort(expected, kind="stable")[:4])


def test_a_parameter_shared_by_layers_of_different_widths_is_frozen():
    net = kcp.Network()
    a, x = net.input("a", (1, 6, 4, 4)), net.input("x", (1, 2, 4, 4))
    y1 = net.layer("conv2d", [a], (1, 1, 0, 0, 0, 0, 1, 1, 3), [("w", np.ones((3, 2, 1, 1), np.float32))], name="g3")
    y2 = net.layer("conv2d", [net.relu(x)], (1, 1, 0, 0, 0, 0, 1, 1, 1), ["w"], name="g1")
    net.output(y1, y2)
    assert all("parameter 'w' shared by layers of different widths" in s.reason for s in kcp.spaces(net))


def test_overrides_fix_the_ratio_of_a_space():
    net = resnet_blocks()
    spaces = [s for s in kcp.spaces(net) if s.prunable]
    held, other = spaces[0], spaces[1]
    chosen = kcp.plan(net, ratio=0.5, overrides={held.values[0]: 0.0, other.index: 0.25})
    assert chosen.pruned[held.index] == []
    assert len(chosen.pruned[other.index]) == int(0.25 * other.prunable)
    target = kcp.plan(net, macs_reduction=0.4, overrides={held.index: 0.0})
    assert target.pruned[held.index] == [] and target.macs_after <= 0.6 * target.macs_before
    with pytest.raises(ValueError, match="overrides"):
        kcp.plan(net, ratio=0.5, overrides={"no such layer": 0.5})
    with pytest.raises(ValueError, match="overrides"):
        kcp.plan(net, ratio=0.5, overrides={999: 0.5})


def test_plan_reports_layer_widths_before_and_after():
    net = chain()
    chosen = kcp.plan(net, ratio=0.5)
    compact = chosen.apply(net)
    shapes = {name: value.shape[0] for name, value in compact.parameters.items() if name.endswith(".weight")}
    for layer, (before, after) in chosen.widths.items():
        assert net.parameters[f"{layer}.weight"].shape[0] == before and shapes[f"{layer}.weight"] == after
    assert kcp.Plan.from_json(chosen.to_json()).widths == chosen.widths


def test_plan_reads_lent_weights_as_if_written_and_checks_them():
    net, written = resnet_blocks(), resnet_blocks()
    rng = np.random.default_rng(5)
    lent = {name: rng.standard_normal(array.shape, dtype=np.float32) for name, array in net.parameters.items()
            if name.endswith(".weight") and array.ndim in (2, 4)}
    for name, array in lent.items():
        written.set_parameter(name, array)
    borrowed = kcp.plan(net, ratio=0.5, _weights=lent)
    assert borrowed.pruned == kcp.plan(written, ratio=0.5).pruned != kcp.plan(net, ratio=0.5).pruned
    name, weight = list(lent.items())[1]  # the stem's weight is never read: it reads the frozen input
    for bad, error, message in [
        ([weight], TypeError, "_weights: expected a dict"),
        ({"nope": weight}, ValueError, "_weights: the network has no parameter 'nope'"),
        ({name: weight.tolist()}, TypeError, rf"_weights\['{name}'\]: must be a numpy.ndarray to be read in place"),
        ({name: weight.astype(np.float64)}, TypeError, rf"_weights\['{name}'\]: must have dtype float32"),
        ({name: np.asfortranarray(weight)}, ValueError, rf"_weights\['{name}'\]: must be C-contiguous"),
        ({name: weight[:1]}, ValueError, rf"_weights\['{name}'\]: has shape \(1, .*\), the parameter \({len(weight)}, "),
        ({name: np.full_like(weight, np.nan)}, ValueError, "weight: contains nan"),
    ]:
        with pytest.raises(error, match=message):
            kcp.plan(net, ratio=0.5, _weights=bad)


def test_spaces_follow_the_network_as_it_grows():
    """The engine keeps a network's spaces between queries; adding a node or an output changes them."""
    net = kcp.Network(seed=4)
    x = net.conv2d(net.input("image", (1, 3, 8, 8)), 8, 3, padding=1)
    assert [s.prunable for s in kcp.spaces(net)] == [0, 8]
    r = net.relu(x)
    y = net.conv2d(r, 4, 1)
    assert [(s.values, s.prunable) for s in kcp.spaces(net)][1:] == [((x.name, r.name), 8), ((y.name,), 4)]
    net.output(y)
    assert [s.prunable for s in kcp.spaces(net)] == [0, 8, 0]
    assert kcp.plan(net, ratio=0.5).apply(net).parameters[f"{y.name}.weight"].shape == (4, 4, 1, 1)


@pytest.mark.parametrize(("options", "kind", "argument"), [
    ({"macs_reduction": "0.5"}, TypeError, "macs_reduction"), ({"macs_reduction": True}, TypeError, "macs_reduction"),
    ({"macs_reduction": 1.0}, ValueError, "macs_reduction"), ({"macs_reduction": float("nan")}, ValueError,
                                                              "macs_reduction"),
    ({"ratio": 0.5, "max_ratio": "0.9"}, TypeError, "max_ratio"), ({"ratio": 0.5, "max_ratio": 1.0}, ValueError,
                                                                    "max_ratio")])
def test_numeric_settings_are_validated_alike(options, kind, argument):
    with pytest.raises(kind, match=argument):
        kcp.plan(chain(), **options)
    with pytest.raises(kind, match=argument):
        kcp.PruneSchedule(**options).settings()


def test_global_is_the_deprecated_name_of_global_pruning():
    net = resnet_blocks()
    expected = kcp.plan(net, ratio=0.5, global_pruning=True)
    with pytest.warns(DeprecationWarning, match="global_pruning"):
        old = kcp.plan(net, ratio=0.5, global_=True)
    assert old.pruned == expected.pruned != kcp.plan(net, ratio=0.5).pruned
    with pytest.warns(DeprecationWarning, match="global_pruning"):
        assert kcp.PruneSchedule(ratio=0.5, global_=True).global_pruning


def test_state_dict_round_trips_and_is_checked_whole():
    state = chain().state_dict()
    fresh = chain()
    for name in state:
        state[name] = state[name] + 1
    fresh.load_state_dict(state)
    assert all(np.array_equal(fresh.parameters[n], state[n]) for n in state)
    before = fresh.state_dict()
    wrong = dict(state, **{next(iter(state)): np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="state: parameter"):
        fresh.load_state_dict(wrong)
    with pytest.raises(ValueError, match="state: missing"):
        fresh.load_state_dict({k: v for k, v in state.items() if k != next(iter(state))})
    assert all(np.array_equal(fresh.parameters[n], before[n]) for n in before)  # nothing written
    with pytest.raises(ValueError, match="name: no parameter"):
        fresh.set_parameter("nothing", np.zeros(1))
