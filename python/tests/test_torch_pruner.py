"""kcp.torch: PyTorch models pruned by the engine, masked in place, compacted,
serialised and moved to and from native kcp networks.

Every pruning result is run: the compact model's outputs must equal the
masked model's within 1e-4 of the output's scale, and the plan's MACs must be
the compact model's.
"""

import copy
import json
import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch_zoo import ZOO, Opaque, PlainChain, ResNetBlocks, build

import kcp
import kcp.torch
from kcp.torch.trace import trace


def outputs(model, inputs):
    """The model's outputs in eval mode as a list of arrays (tuples and dicts flattened)."""
    model.eval()
    with torch.no_grad():
        result = model(*inputs)
    if isinstance(result, dict):
        result = list(result.values())
    return [t.numpy() for t in (result if isinstance(result, (tuple, list)) else [result])]


def assert_same_outputs(model, other, inputs):
    for expected, got in zip(outputs(model, inputs), outputs(other, inputs), strict=True):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * max(np.abs(expected).max(), 1e-6))


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(ZOO))
def test_compact_equals_masked(name):
    model, inputs = build(name)
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    plan = pruner.step()
    compact = pruner.compact()
    assert_same_outputs(model, compact, inputs)
    before, after = pruner.macs()
    assert after < before and (before, after) == (plan.network.macs_before, plan.network.macs_after)
    assert trace(compact, inputs, strict=False).network.cost()[0] == after
    assert parameter_count(compact) < parameter_count(model)
    assert compact is not model and type(compact) is type(model)


def test_transposed_convs_are_resized_with_their_groups():
    """ConvTranspose2d weights [in, out / groups, kh, kw] lose input rows and output columns;
    the grouped one keeps its groups, the depthwise one keeps a group per input."""
    model, inputs = build("decoder")
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    pruner.step()
    compact = pruner.compact()
    sizes = {name: (m.in_channels, m.out_channels, m.groups, tuple(m.weight.shape))
             for name, m in compact.named_modules() if isinstance(m, torch.nn.ConvTranspose2d)}
    assert sizes == {"up2": (8, 6, 1, (8, 6, 3, 3)), "up1": (16, 4, 4, (16, 1, 4, 4)),
                     "depthwise": (8, 16, 8, (8, 2, 3, 3))}


def test_resnet18_prunes_every_stage_to_the_macs_target():
    model, inputs = build("resnet18")
    pruner = kcp.torch.Pruner(model, inputs, macs_reduction=0.5, round_to=8)
    pruner.step()
    before, after = pruner.macs()
    assert after <= 0.5 * before
    compact = pruner.compact()
    assert_same_outputs(model, compact, inputs)
    for width, stage in zip((64, 128, 256, 512), (compact.layer1, compact.layer2, compact.layer3, compact.layer4)):
        assert all(block.conv1.out_channels % 8 == 0 and block.conv1.out_channels < width for block in stage)
    assert compact.fc.in_features == compact.layer4[1].bn2.num_features < 512
    assert pruner.frozen == ["network input 'x'", "network output 'fc'"]


def test_frozen_ops_are_reported_by_module_and_never_sliced():
    model, inputs = build("opaque")
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    pruner.step()
    frozen = "\n".join(pruner.frozen)
    assert "module 'norm' (LocalResponseNorm): kcp has no op for LocalResponseNorm" in frozen
    compact = pruner.compact()
    assert compact.norm_conv.out_channels == 8
    assert compact.body[0].out_channels < 16
    assert_same_outputs(model, compact, inputs)


def test_ops_along_h_and_w_are_pruned_through_and_refused_natively():
    model, inputs = build("spatial_ops")
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    assert pruner.frozen == ["network input 'x'", "network output 'out'"]
    pruner.step()
    assert pruner.compact().mix.out_channels == 4
    net = kcp.torch.to_kcp(model, inputs)
    assert [layer.op for layer in net.layers].count("channelwise") == 5
    with pytest.raises(ValueError, match="pad"):
        net(inputs[0].numpy())


def test_reading_the_channel_count_freezes_the_tensor():
    class ReadsChannels(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 4, 3, padding=1)

        def forward(self, x):
            y = F.relu(self.a(x))
            return self.b(y) * 1.0 / y.size(1) + y.size(0)

    pruner = kcp.torch.Pruner(ReadsChannels(), torch.randn(2, 3, 8, 8), ratio=0.5)
    assert any("'size' (.size())" in line and "reads the channel count of 'relu'" in line for line in pruner.frozen)
    pruner.step()
    assert pruner.compact().a.out_channels == 8


def test_step_zeroes_weights_and_optimizer_state_in_place():
    model, inputs = build("resnet_blocks")
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    adam_model = copy.deepcopy(model)
    adam = torch.optim.Adam(adam_model.parameters(), lr=0.01)
    for net, optimizer in ((model, sgd), (adam_model, adam)):
        net.train()
        net(*inputs).square().mean().backward()
        optimizer.step()
    conv = model.block1.conv1.weight
    address = conv.data_ptr()
    plan = kcp.torch.Pruner(model, inputs, ratio=0.5).step(sgd)
    assert conv.data_ptr() == address
    kept_out, kept_in = plan.keep["block1.conv1.weight"]
    pruned_out = np.setdiff1d(np.arange(8), kept_out)
    pruned_in = np.setdiff1d(np.arange(8), kept_in)
    for tensor in (conv.detach(), sgd.state[conv]["momentum_buffer"]):
        assert not tensor[pruned_out].any() and not tensor[:, pruned_in].any()
        assert tensor[kept_out][:, kept_in].abs().min() > 0
    assert not model.block1.bn1.weight[pruned_out].any() and (model.block1.bn1.running_var[pruned_out] == 1).all()
    kcp.torch.Pruner(adam_model, inputs, ratio=0.5).step(adam)
    state = adam.state[adam_model.block1.conv1.weight]
    assert not state["exp_avg"][pruned_out].any() and not state["exp_avg_sq"][:, pruned_in].any()


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_soft_pruned_weights_may_regrow_and_hard_ones_stay_zero(mode):
    model, inputs = build("plain_chain")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)

    def train(steps):
        model.train()
        for _ in range(steps):
            optimizer.zero_grad()
            model(*inputs).square().mean().backward()
            optimizer.step()

    train(2)
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5, mode=mode)
    # Soft: the optimizer is left alone, so its momentum regrows what the step zeroed.
    plan = pruner.step(optimizer if mode == "hard" else None)
    train(3)
    parameters = dict(model.named_parameters())
    regrown = max(float(parameters[name].detach().index_select(dim, torch.as_tensor(
                  np.setdiff1d(np.arange(parameters[name].shape[dim]), kept))).abs().max())
                  for name, keep in plan.keep.items() if name in parameters
                  for dim, kept in enumerate(keep) if kept is not None)
    assert (regrown > 0) == (mode == "soft")
    if mode == "hard":
        assert_same_outputs(model, pruner.compact(), inputs)
        with pytest.raises(ValueError, match="optimizer: hard pruning needs it"):
            pruner.step()
        pruner.release()
        pruner.step()


def test_masks_are_a_pure_function_of_the_weights_and_the_seed():
    model, inputs = build("unet")
    first = kcp.torch.Pruner(copy.deepcopy(model), inputs, ratio=0.4).step().to_json()
    assert kcp.torch.Pruner(copy.deepcopy(model), inputs, ratio=0.4).step().to_json() == first
    random = [kcp.torch.Pruner(copy.deepcopy(model), inputs, ratio=0.4, criterion="random", seed=seed).step().keep
              for seed in (0, 0, 1)]
    same = [all(np.array_equal(a[n][0], b[n][0]) for n in a) for a, b in ((random[0], random[1]), (random[0], random[2]))]
    assert same == [True, False]


def test_step_reads_cpu_weights_in_place_and_follows_their_changes(monkeypatch):
    model, inputs = build("resnet18")
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    traced = pruner.network.parameters
    lent, plan_natively = [], kcp._native.network_plan

    def recording(*args):
        lent.append(args[-2])
        return plan_natively(*args)

    def refusing(*args):
        raise AssertionError("step() wrote a weight into the engine's network")

    monkeypatch.setattr(kcp._native, "network_plan", recording)
    monkeypatch.setattr(kcp._native, "network_parameter_write", refusing)
    tensors = dict(model.named_parameters())
    largest = max(t.numel() * t.element_size() for t in tensors.values())
    tracemalloc.start()
    try:
        first = pruner.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < largest / 10, f"traced {peak} bytes during step(), the largest weight has {largest}"
    assert len(lent[0]) == 21 and all(a.ctypes.data == tensors[name].data_ptr() for name, a in lent[0].items())
    with torch.no_grad():
        for name in lent[0]:
            tensors[name].copy_(torch.randn_like(tensors[name]))
    second = pruner.step()
    assert second.network.pruned == kcp.plan(kcp.torch.to_kcp(model, inputs), ratio=0.5).pruned
    assert second.network.pruned != first.network.pruned
    for name, array in pruner.network.parameters.items():
        np.testing.assert_array_equal(array, traced[name])


def test_weights_that_cannot_be_read_in_place_are_copied_for_the_step():
    model, inputs = build("resnet_blocks")
    expected = kcp.torch.Pruner(copy.deepcopy(model), inputs, ratio=0.5).step().to_json()
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    assert not channels_last.block1.conv1.weight.is_contiguous()
    assert kcp.torch.Pruner(channels_last, inputs, ratio=0.5).step().to_json() == expected
    wide = copy.deepcopy(model).double()
    assert kcp.torch.Pruner(wide, tuple(x.double() for x in inputs), ratio=0.5).step().to_json() == expected


def test_ignored_layers_keep_their_output_channels():
    model, inputs = build("resnet_blocks")
    plan = kcp.torch.Pruner(model, inputs, ratio=0.5, ignored_layers=[model.block2.conv1, "stem"]).step()
    # block2.conv1 keeps its outputs and reads the stem's space (the stem's, block1's and the shortcut's), kept too.
    assert not any(name.startswith(("stem.", "block2.conv1.", "block2.bn1.")) for name in plan.keep)
    assert plan.keep["block1.conv1.weight"][1] is None and plan.keep["block2.conv2.weight"][1] is None
    with pytest.raises(ValueError, match="ignored_layers: the model has no module 'nope'"):
        kcp.torch.Pruner(model, inputs, ratio=0.5, ignored_layers=["nope"])
    with pytest.raises(ValueError, match="ignored_layers: a Conv2d that is not a module of the model"):
        kcp.torch.Pruner(model, inputs, ratio=0.5, ignored_layers=[nn.Conv2d(1, 1, 1)])


def test_plan_round_trips_through_json_and_rebuilds_the_pruned_model():
    model, inputs = build("unet")
    pruner = kcp.torch.Pruner(model, inputs, macs_reduction=0.6)
    plan = pruner.step()
    compact = pruner.compact()
    text = plan.to_json()
    again = kcp.torch.TorchPlan.from_json(text)
    assert again.network.macs_after == plan.network.macs_after
    fresh = build("unet", seed=5)[0]
    rebuilt = kcp.torch.load_pruned(fresh, text, compact.state_dict())
    assert_same_outputs(compact, rebuilt, inputs)
    assert fresh.down1[0].out_channels == 8  # the original architecture is left unchanged
    with pytest.raises(ValueError, match="plan: the model has no parameter or buffer 'down1.0.weight'"):
        kcp.torch.load_pruned(PlainChain(), again)
    with pytest.raises(ValueError, match="not a kcp PyTorch plan"):
        kcp.torch.load_pruned(fresh, json.dumps({"format": "other"}))


def test_compact_and_returned_models_share_no_memory_with_the_model():
    """The copies are made without cloning what they shrink, so every tensor
    they hold must still be new: training or scaling one leaves the model
    unchanged, including the tensors kept whole."""
    model, inputs = build("unet")
    pruner = kcp.torch.Pruner(model, inputs, macs_reduction=0.6)
    plan = pruner.step()
    before = copy.deepcopy(model.state_dict())
    copies = [pruner.compact(), kcp.torch.load_pruned(model, plan), kcp.torch.from_kcp(kcp.torch.to_kcp(model, inputs), model)]
    # from_kcp passes every parameter through the shrinking, most of them kept whole.
    assert all(copies[2].state_dict()[name].shape == tensor.shape for name, tensor in before.items())
    ours = {t.untyped_storage().data_ptr() for t in model.state_dict().values() if t.numel()}
    for other in copies:
        theirs = {t.untyped_storage().data_ptr() for t in other.state_dict().values() if t.numel()}
        assert not ours & theirs
        with torch.no_grad():
            for t in other.state_dict().values():
                t.add_(1)  # ints too (batchnorm counters)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_layer_norms_of_a_masked_model_leave_pruned_channels_out_of_their_statistics():
    """ConvNeXt's LayerNorms (over channels-last features, and LayerNorm2d) get hooks while they lose channels;
    the compact model's smaller LayerNorms and GroupNorm (whole groups) need none."""
    model, inputs = build("normalized")
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    pruner.step()
    hooked = {path for path, module in model.named_modules() if module._forward_hooks}
    assert hooked == {"stem_norm", "blocks.0.norm", "blocks.1.norm"}
    compact = pruner.compact()
    assert_same_outputs(model, compact, inputs)
    assert not any(module._forward_hooks for module in compact.modules())
    assert compact.stem_norm.normalized_shape == compact.blocks[0].norm.normalized_shape == (8,)
    assert (compact.group_norm.num_groups, compact.group_norm.num_channels) == (2, 12)
    assert compact.blocks[0].up.weight.shape == (32, 8)
    for module in model.modules():  # without the hooks the zeroed channels count: the outputs differ
        module._forward_hooks.clear()
    with torch.no_grad():
        assert not torch.allclose(model(*inputs), compact(*inputs), atol=1e-3)


@pytest.mark.parametrize("name", ["resnet_blocks", "unet", "decoder", "depthwise_separable", "two_outputs", "siamese",
                                  "normalized", "hourglass3d"])
def test_to_kcp_computes_the_model_and_from_kcp_brings_a_compact_network_back(name):
    model, inputs = build(name)
    net = kcp.torch.to_kcp(model, inputs)
    arrays = [x.numpy() for x in inputs]
    for native, expected in zip(net(*arrays), outputs(model, inputs), strict=True):
        np.testing.assert_allclose(native, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    small = kcp.plan(net, ratio=0.5).apply(net, "compact")
    back = kcp.torch.from_kcp(small, model)
    for native, expected in zip(small(*arrays), outputs(back, inputs), strict=True):
        np.testing.assert_allclose(expected, native, rtol=0, atol=1e-4 * np.abs(native).max())
    assert parameter_count(back) < parameter_count(model)
    assert kcp.torch.to_kcp(back, inputs).cost() == small.cost()


@pytest.mark.parametrize("name", ["resnet_blocks", "unet", "siamese", "hourglass3d"])
def test_a_compensated_network_comes_back_as_a_model_closer_to_the_dense_one(name):
    model, inputs = build(name)
    net = kcp.torch.to_kcp(model, inputs)
    plan = kcp.plan(net, ratio=0.5)
    rng = np.random.default_rng(7)
    calibration = [rng.standard_normal((32, *x.shape[1:])).astype(np.float32) for x in inputs]
    fitted = kcp.torch.from_kcp(plan.compensate(net, calibration), model)
    plain = kcp.torch.from_kcp(plan.apply(net, "compact"), model)
    test = tuple(torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32)) for x in inputs)
    for dense, before, after in zip(outputs(model, test), outputs(plain, test), outputs(fitted, test), strict=True):
        assert np.mean((after - dense) ** 2) < np.mean((before - dense) ** 2)


def test_to_kcp_names_what_it_cannot_run():
    with pytest.raises(ValueError, match=r"model: module 'norm' \(LocalResponseNorm\): kcp has no op for LocalResponseNorm"):
        kcp.torch.to_kcp(Opaque(), torch.randn(2, 3, 8, 8))
    bad = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, affine=False))
    with pytest.raises(ValueError, match="module '1' .*affine parameters and running statistics"):
        kcp.torch.to_kcp(bad, torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="net: the model has no parameter or buffer"):
        kcp.torch.from_kcp(kcp.models.unet(), PlainChain())

    class Sized(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1)

        def forward(self, x):
            return self.up(x, output_size=(16, 16))

    with pytest.raises(ValueError, match=r"module 'up' \(ConvTranspose2d\): output_size is not supported"):
        kcp.torch.to_kcp(Sized(), torch.randn(1, 3, 8, 8))


def test_errors_name_the_module_or_argument():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Sequential(DataDependent())

        def forward(self, x):
            return self.inner(x)

    class DataDependent(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ValueError, match=r"torch.fx cannot trace module 'inner.0' \(DataDependent\)"):
        kcp.torch.Pruner(Branchy(), torch.randn(1, 3, 4, 4), ratio=0.5)
    model, inputs = build("resnet_blocks")
    with pytest.raises(ValueError, match=r"example_inputs: module 'stem.0' \(Conv2d\) fails on them"):
        kcp.torch.Pruner(model, torch.randn(2, 5, 16, 16), ratio=0.5)
    with pytest.raises(TypeError, match="example_inputs"):
        kcp.torch.Pruner(model, [np.zeros((2, 3, 16, 16))], ratio=0.5)
    with pytest.raises(TypeError, match="model"):
        kcp.torch.Pruner(lambda x: x, inputs, ratio=0.5)
    for settings, match in (({}, "ratio: give exactly one"), ({"ratio": 0.5, "macs_reduction": 0.5}, "ratio"),
                            ({"ratio": 1.5}, "ratio"), ({"ratio": 0.5, "mode": "firm"}, "mode"),
                            ({"ratio": 0.5, "criterion": "l3"}, "criterion"), ({"macs_reduction": 0.999}, "macs_reduction"),
                            ({"ratio": 0.5, "round_to": 0}, "round_to")):
        with pytest.raises(ValueError, match=match):
            kcp.torch.Pruner(model, inputs, **settings)
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    with pytest.raises(RuntimeError, match="call step"):
        pruner.compact()
    with pytest.raises(ValueError, match="optimizer: holds none of the model's parameters"):
        pruner.step(torch.optim.SGD(ResNetBlocks().parameters(), lr=0.1))
    with pytest.raises(TypeError, match="optimizer"):
        pruner.step("sgd")


def test_a_data_parallel_wrapper_is_pruned_through_its_module():
    model, inputs = build("plain_chain")
    pruner = kcp.torch.Pruner(nn.DataParallel(model), inputs, ratio=0.5)
    assert pruner.model is model
    plan = pruner.step()
    assert "features.0.0.weight" in plan.keep



class EveryOp(nn.Module):
    """One of each traced form, so that to_kcp's native network must compute each as PyTorch does."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding="same")
        self.wide = nn.Conv2d(8, 8, (3, 1), stride=(2, 1), padding=(2, 0), dilation=(2, 1))
        self.bn = nn.SyncBatchNorm(8)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.max = nn.AdaptiveMaxPool2d((4, 4))
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.mix = nn.Conv2d(16, 8, 1)
        self.head = nn.Linear(8, 6)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
        x = self.act(self.stem(x))
        y = torch.sigmoid(self.bn(self.wide(x)))
        y = F.leaky_relu(self.pool(y), 0.05) * y.relu()
        y = torch.cat((self.up(self.max(y)), F.max_pool2d(x, 2, 2)), dim=-3)
        y = F.avg_pool2d(self.mix(y), 2).contiguous()
        z = F.softmax(F.dropout(self.head(y.mean((-1, -2))), 0.3, training=self.training), dim=1)
        return z, y.mean([2, 3], keepdim=True).flatten(1).add(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_traced_op_computes_what_pytorch_computes(dtype):
    torch.manual_seed(0)
    model = EveryOp().to(dtype)
    inputs = (torch.randn(2, 3, 16, 16, dtype=dtype),)
    net = kcp.torch.to_kcp(model, inputs)
    assert len(net.layers) == 26
    assert not [line for line in kcp.torch.Pruner(model, inputs, ratio=0.5).frozen
                if "network" not in line and "softmax" not in line]
    for native, expected in zip(net(inputs[0].float().numpy()), outputs(model, inputs), strict=True):
        np.testing.assert_allclose(native, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)  # float64 weights reach the engine as float32 copies
    pruner.step()
    assert_same_outputs(model, pruner.compact(), inputs)


class EveryOp3d(nn.Module):
    """The 3-D forms kcp.torch traces and the hourglass does not use: F.conv3d with a weight of the model,
    a dilated MaxPool3d in ceil_mode, AvgPool3d without the padding in its divisor, F.max_pool3d,
    nearest F.interpolate, AdaptiveAvgPool3d(1), a grouped Conv3d."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 8, 3, padding=(1, 0, 1), stride=(1, 2, 1))
        self.weight = nn.Parameter(torch.randn(8, 8, 1, 3, 3) * 0.2)
        self.bn = nn.BatchNorm3d(8)
        self.max = nn.MaxPool3d((2, 3, 3), stride=(1, 2, 2), padding=1, dilation=(2, 1, 1), ceil_mode=True)
        self.avg = nn.AvgPool3d(3, stride=2, padding=1, count_include_pad=False)
        self.grouped = nn.Conv3d(8, 8, 3, padding=1, groups=2)
        self.gap = nn.AdaptiveAvgPool3d(1)

    def forward(self, x):
        x = F.relu(self.bn(F.conv3d(self.stem(x), self.weight, padding=(0, 1, 1))))
        y = self.grouped(self.avg(self.max(x)))
        y = F.interpolate(y, size=x.shape[2:], mode="nearest") + F.max_pool3d(x, 1)
        return F.relu(y), self.gap(y)


def test_every_traced_3d_op_computes_what_pytorch_computes():
    torch.manual_seed(0)
    model = EveryOp3d()
    inputs = (torch.randn(2, 3, 5, 12, 9),)
    net = kcp.torch.to_kcp(model, inputs)
    assert {layer.op for layer in net.layers} >= {"conv3d", "max_pool3d", "avg_pool3d", "resize3d", "global_avg_pool"}
    for native, expected in zip(net(inputs[0].numpy()), outputs(model, inputs), strict=True):
        np.testing.assert_allclose(native, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    pruner.step()
    assert_same_outputs(model, pruner.compact(), inputs)
