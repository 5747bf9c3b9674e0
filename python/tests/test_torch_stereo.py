"""PSMNet and GwcNet as PyTorch modules (python/tests/torch_stereo.py), their
volumes built by the published loops, traced by kcp.torch, pruned to 70%
fewer MACs and compacted: the compact model's outputs equal the masked
model's."""

import numpy as np
import pytest
import torch
from torch_stereo import GwcNet, PSMNet, PublishedGwcNet, PublishedPSMNet

import kcp.torch
from kcp.testing.torch_functional import concatenation_volume


def randomized(model, seed=0):
    """Non-trivial batchnorm statistics and affine parameters, in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            n = module.num_features
            module.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.weight.data.copy_(1 + 0.2 * torch.randn(n, generator=generator))
            module.bias.data.copy_(0.2 * torch.randn(n, generator=generator))
    return model.eval()


@pytest.mark.parametrize("build", [PSMNet, PublishedPSMNet, GwcNet, PublishedGwcNet],
                         ids=["psmnet", "psmnet-in-place", "gwcnet", "gwcnet-in-place"])
def test_published_volume_loops_prune_to_70_percent_fewer_macs(build):
    torch.manual_seed(0)
    model = randomized(build())
    inputs = (torch.randn(1, 3, 32, 64), torch.randn(1, 3, 32, 64))
    pruner = kcp.torch.Pruner(model, inputs, macs_reduction=0.7)
    plan = pruner.step()
    before, after = pruner.macs()
    assert after <= 0.3 * before and (before, after) == (plan.network.macs_before, plan.network.macs_after)
    compact = pruner.compact().eval()
    with torch.no_grad():
        expected, got = model(*inputs), compact(*inputs)
    assert got.shape == expected.shape == (1, 1, 32, 64)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=1e-4 * expected.abs().max().item())
    # The Siamese trunk (shared by both images) is pruned, and the 3-D aggregation reading the volume with it.
    first = (model.feature_extraction.firstconv[0][0], compact.feature_extraction.firstconv[0][0])
    assert first[1].out_channels < first[0].out_channels
    assert compact.dres0[0][0].in_channels < model.dres0[0][0].in_channels
    assert compact.hourglass.conv1[0][0].out_channels < model.hourglass.conv1[0][0].out_channels


def test_concatenation_volume_loop_prunes_each_feature_in_both_halves():
    """Feature channel c reaches the volume at c (left) and C + c (right): the first 3-D conv loses both."""
    torch.manual_seed(1)
    model = randomized(PSMNet())
    inputs = (torch.randn(1, 3, 32, 64), torch.randn(1, 3, 32, 64))
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    pruner.step()
    compact = pruner.compact()
    features = compact.feature_extraction.lastconv[2].out_channels
    assert features == 4 and compact.dres0[0][0].in_channels == 2 * features


@pytest.mark.parametrize("build", [GwcNet, PublishedGwcNet], ids=["stacked", "in-place"])
def test_group_wise_volume_keeps_its_groups_and_rescales_its_readers(build):
    """GwcNet's ``view(B, G, C // G, H, W).mean(2)``: every group keeps the same
    positions, so G stays; the compact mean divides by fewer channels, and the
    3-D conv reading it has those columns scaled by k' / k (here 2 / 4). Written
    into a zero volume slice by slice, it is the engine's group-wise volume."""
    torch.manual_seed(3)
    model = randomized(build())
    inputs = (torch.randn(1, 3, 32, 64), torch.randn(1, 3, 32, 64))
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    plan = pruner.step()
    compact = pruner.compact()
    # 16 features (two blocks of 8) in 4 groups of 4: 2 positions of each group stay.
    assert compact.feature_extraction.layer2.conv2[0].out_channels == 4
    assert compact.feature_extraction.layer1.conv2[0].out_channels == 4
    (columns, factor), = [plan.scale[name] for name in plan.scale]
    assert list(columns) == [0, 1, 2, 3] and factor == 0.5 and list(plan.scale) == ["dres0.0.0.weight"]
    assert_compact_equals_masked(model, compact, inputs)
    again = kcp.torch.load_pruned(model, kcp.torch.TorchPlan.from_json(plan.to_json()))
    assert_compact_equals_masked(model, again, inputs)
    volumes = [layer.attributes for layer in pruner.network.layers if layer.op == "cost_volume"]
    assert volumes == ([] if build is GwcNet else [(1, 4, 4, 0.25), (0, 4, 1, 1.0)])


class MeanThroughBatchnorm(torch.nn.Module):
    """A group-wise mean read by a batchnorm, whose output a rescaled weight cannot restore."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(2)
        self.head = torch.nn.Conv2d(2, 2, 1)

    def forward(self, x):
        f = self.features(x)
        batch, channels, height, width = f.shape
        return self.head(self.norm((f * f).view(batch, 2, channels // 2, height, width).mean(2)))


def test_a_group_mean_read_otherwise_keeps_its_channels():
    model = randomized(MeanThroughBatchnorm())
    inputs = (torch.randn(2, 3, 8, 8),)
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    pruner.step()
    compact = pruner.compact()
    assert compact.features.out_channels == 8
    assert_compact_equals_masked(model, compact, inputs)


def assert_compact_equals_masked(model, compact, inputs):
    with torch.no_grad():
        expected, got = model.eval()(*inputs), compact.eval()(*inputs)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=0, atol=1e-4 * expected.abs().max().item())


class Aggregation3d(torch.nn.Module):
    """Conv3d (strided, dilated, grouped), BatchNorm3d, ConvTranspose3d and trilinear upsampling."""

    def __init__(self):
        super().__init__()
        self.down = torch.nn.Sequential(torch.nn.Conv3d(4, 8, 3, 2, 1, bias=False), torch.nn.BatchNorm3d(8),
                                        torch.nn.ReLU())
        self.grouped = torch.nn.Conv3d(8, 8, (1, 3, 3), padding=(0, 2, 2), dilation=(1, 2, 2), groups=2)
        self.up = torch.nn.ConvTranspose3d(8, 6, 3, 2, 1, 1)
        self.head = torch.nn.Conv3d(6, 2, 1)

    def forward(self, x):
        y = self.up(torch.relu(self.grouped(self.down(x))))
        return self.head(torch.nn.functional.interpolate(y, scale_factor=2, mode="trilinear", align_corners=False))


def test_volumetric_modules_trace_to_native_layers_and_compute_the_model():
    torch.manual_seed(2)
    model = randomized(Aggregation3d())
    inputs = (torch.randn(2, 4, 4, 6, 8),)
    net = kcp.torch.to_kcp(model, inputs)
    assert [layer.op for layer in net.layers if layer.op != "activation"] == \
        ["conv3d", "batchnorm", "conv3d", "conv_transpose3d", "resize3d", "conv3d"]
    with torch.no_grad():
        expected = model(*inputs).numpy()
    (native,) = net(inputs[0].numpy())
    np.testing.assert_allclose(native, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    pruner.step()
    compact = pruner.compact().eval()
    with torch.no_grad():
        np.testing.assert_allclose(compact(*inputs).numpy(), model(*inputs).numpy(), rtol=0,
                                   atol=1e-4 * np.abs(expected).max())
    assert compact.grouped.groups == 2 and compact.up.out_channels == 3


class VolumeHead(torch.nn.Module):
    """Siamese features written into a zero volume slice by slice (PSMNet's code), then a 3-D conv."""

    def __init__(self, halves=(0, 1)):
        super().__init__()
        self.features = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.aggregate = torch.nn.Conv3d(12, 4, 3, padding=1)
        self.halves = halves

    def forward(self, left, right):
        if self.halves == (0, 1):
            volume = concatenation_volume(self.features(left), self.features(right), 4)
        else:  # only the left half written: not a cost volume kcp knows
            fl = self.features(left)
            volume = fl.new_zeros([fl.size()[0], 12, 4, fl.size()[2], fl.size()[3]])
            for i in range(4):
                volume[:, :6, i, :, i:] = fl[:, :, :, i:]
        return self.aggregate(volume)


def test_a_volume_written_slice_by_slice_is_the_native_cost_volume():
    torch.manual_seed(4)
    model = VolumeHead().eval()
    inputs = (torch.randn(2, 3, 5, 9), torch.randn(2, 3, 5, 9))
    net = kcp.torch.to_kcp(model, inputs)
    assert [layer.op for layer in net.layers] == ["conv2d", "conv2d", "cost_volume", "conv3d"]
    with torch.no_grad():
        expected = model(*inputs).numpy()
    (native,) = net(*(x.numpy() for x in inputs))
    np.testing.assert_allclose(native, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    pruner.step()
    compact = pruner.compact()
    assert compact.features.out_channels == 3 and compact.aggregate.in_channels == 6
    assert_compact_equals_masked(model, compact, inputs)


def test_a_volume_written_otherwise_keeps_the_features():
    model = VolumeHead(halves=(0,)).eval()
    inputs = (torch.randn(1, 3, 5, 9), torch.randn(1, 3, 5, 9))
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    assert any("concatenation volume" in reason for reason in pruner.frozen)
    pruner.step()
    compact = pruner.compact()
    assert compact.features.out_channels == 6
    assert_compact_equals_masked(model, compact, inputs)


def test_published_psmnet_runs_natively_from_its_pytorch_code():
    """The volume written into zeros and the regression ``sum(softmax(squeeze(cost, 1)) * arange(D), 1)``
    become the engine's cost_volume and soft_argmin (sign 1): to_kcp computes the whole model."""
    torch.manual_seed(5)
    model = randomized(PublishedPSMNet())
    inputs = (torch.randn(2, 3, 32, 64), torch.randn(2, 3, 32, 64))
    net = kcp.torch.to_kcp(model, inputs)
    ops = [layer.op for layer in net.layers]
    assert ops.count("cost_volume") == 1 and ops[-1] == "soft_argmin" and "channelwise" not in ops
    assert net.layers[-1].attributes == (1,)
    with torch.no_grad():
        expected = model(*inputs).numpy()
    (native,) = net(*(x.numpy() for x in inputs))
    np.testing.assert_allclose(native, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    small = kcp.plan(net, macs_reduction=0.7).apply(net)
    back = kcp.torch.from_kcp(small, model).eval()
    with torch.no_grad():
        np.testing.assert_allclose(back(*inputs).numpy(), small(*(x.numpy() for x in inputs))[0], rtol=0,
                                   atol=1e-4 * np.abs(expected).max())


class SigmoidGroupCorrelation(torch.nn.Module):
    """Sigmoid features into a group-wise correlation: a masked channel would add sigmoid(0)^2 to the mean."""

    def __init__(self, activation):
        super().__init__()
        self.features = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.activation = activation
        self.head = torch.nn.Conv3d(2, 2, 1)

    def forward(self, left, right):
        fl, fr = self.activation(self.features(left)), self.activation(self.features(right))
        batch, channels, height, width = fl.shape
        slices = [torch.nn.functional.pad(fl[:, :, :, d:] * fr[:, :, :, :width - d], (d, 0))
                  .view(batch, 2, channels // 2, height, width).mean(2) for d in range(3)]
        return self.head(torch.stack(slices, 2))


@pytest.mark.parametrize(("activation", "kept"), [(torch.nn.Sigmoid(), 8), (torch.nn.Tanh(), 4)])
def test_features_nonzero_at_zero_before_a_group_mean_are_kept(activation, kept):
    model = SigmoidGroupCorrelation(activation).eval()
    inputs = (torch.randn(1, 3, 4, 8), torch.randn(1, 3, 4, 8))
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    pruner.step()
    compact = pruner.compact()
    assert compact.features.out_channels == kept
    assert_compact_equals_masked(model, compact, inputs)


def test_published_gwcnet_runs_natively_and_comes_back_compact():
    """GwcNet's group-wise correlations written into zeros are the engine's volume: to_kcp runs the
    model natively; from_kcp of the compact network scales the 3-D conv reading the model's mean by k' / k."""
    torch.manual_seed(6)
    model = randomized(PublishedGwcNet())
    inputs = (torch.randn(1, 3, 32, 64), torch.randn(1, 3, 32, 64))
    net = kcp.torch.to_kcp(model, inputs)
    assert "channelwise" not in [layer.op for layer in net.layers]
    arrays = [x.numpy() for x in inputs]
    with torch.no_grad():
        expected = model(*inputs).numpy()
    np.testing.assert_allclose(net(*arrays)[0], expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    small = kcp.plan(net, ratio=0.5).apply(net)
    back = kcp.torch.from_kcp(small, model).eval()
    assert back.feature_extraction.layer2.conv2[0].out_channels == 4
    # The 4 group-wise channels of the volume: the model's mean over 2 channels per group where the engine keeps 1/4.
    weight = small.parameters["dres0.0.0.weight"]
    np.testing.assert_allclose(back.dres0[0][0].weight.detach().numpy(),
                               np.concatenate([weight[:, :4] / 2, weight[:, 4:]], 1))
    with torch.no_grad():
        np.testing.assert_allclose(back(*inputs).numpy(), small(*arrays)[0], rtol=0, atol=1e-4 * np.abs(expected).max())


class VolumeOut(torch.nn.Module):
    """A volume written into zeros and returned, or read by an op kcp does not follow."""

    def __init__(self, read):
        super().__init__()
        self.features = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.read = read

    def forward(self, left, right):
        volume = concatenation_volume(self.features(left), self.features(right), 3)
        return volume if self.read is None else self.read(volume)


@pytest.mark.parametrize("read", [None, torch.nn.Hardshrink()], ids=["returned", "unknown-op"])
def test_a_volume_the_model_returns_or_hands_to_an_unknown_op_keeps_its_channels(read):
    model = VolumeOut(read).eval()
    inputs = (torch.randn(1, 3, 4, 8), torch.randn(1, 3, 4, 8))
    pruner = kcp.torch.Pruner(model, inputs, ratio=0.5)
    pruner.step()
    compact = pruner.compact()
    assert compact.features.out_channels == 6
    assert_compact_equals_masked(model, compact, inputs)
