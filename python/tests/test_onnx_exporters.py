"""ONNX files written by PyTorch's own exporter, read by kcp and pruned by its command line.

Each of :data:`MODELS` (torchvision's definitions, random weights, eval
mode) is exported by ``torch.onnx.export(..., dynamo=False,
opset_version=17)`` with a small static input (64x64; segmentation 96x96;
inception_v3 75x75; VGG and AlexNet 224x224).
Before export, every batchnorm gets random affine parameters and the running
statistics of a batch of random images, so activations keep a unit scale
through the depth (with torchvision's initial statistics the outputs of
several models are 1e-9 to 1e-14, which no tolerance tells from zero);
LayerNorms get random affine parameters and ConvNeXt's layer scales (1e-6)
random values near 1, so that its blocks count.

For each file:

* ``kcp.from_onnx`` reads it; where the engine runs every node, the native
  network on a batch of two equals onnxruntime on the file (sample by
  sample: the file's batch is static);
* the unpruned network exported again by kcp equals the file in onnxruntime;
* ``python -m kcp prune FILE -o OUT --ratio 0.3 --mode mask`` and ``--mode
  compact`` write files whose outputs agree in onnxruntime, the compact one
  smaller; the masked output differs from the original's (pruning happened).

"Equal" is within 1e-4 of the expected output's largest magnitude.
:data:`KNOWN_GAPS` lists the models that cannot pass yet, as non-strict
xfails (an XPASS says an entry can go).

:data:`SMALL` holds the PyTorch forms of single ops and patterns (GELU,
Mish, interpolation, pads, views, chunk and channel shuffle, GroupNorm,
InstanceNorm, channels-last LayerNorm...) between two convolutions,
exported the same way and checked by ``test_onnx.check_everywhere``.
"""

import warnings

import numpy as np
import pytest
from support import TORCH_MISSING

torch = pytest.importorskip("torch", reason=TORCH_MISSING)
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import torchvision_models  # noqa: E402

try:
    BUILDERS = torchvision_models.builders()
except ImportError as error:
    pytest.skip(f"needs torchvision.models: {error}", allow_module_level=True)

import kcp  # noqa: E402
from kcp import cli  # noqa: E402
from test_onnx import check_everywhere, kinds  # noqa: E402

nn, F = torch.nn, torch.nn.functional

# Every model of the torchvision comparison, at its input side here: PyTorch's exporter writes VGG's and
# AlexNet's 7x7 adaptive pool only where it divides the input evenly (224), inception_v3 needs 75 at least.
MODELS = {name: 224 if name in ("vgg11_bn", "alexnet") else 75 if name == "inception_v3"
          else 96 if name in torchvision_models.SEGMENTATION else 64 for name in torchvision_models.MODELS}

# model -> why it cannot pass yet (empty: every model passes).
KNOWN_GAPS = {}


def calibrated(name, size):
    """The model (seed 0) with random batchnorm and layernorm affines, layer
    scales near 1 and the batchnorms' running statistics of four random
    images, in eval mode."""
    torch.manual_seed(0)
    model = BUILDERS[name]()
    with torch.no_grad():
        for key, parameter in model.named_parameters():
            if key.endswith("layer_scale"):
                parameter.uniform_(0.5, 1.5)
        for norm in model.modules():
            if isinstance(norm, (nn.BatchNorm2d, nn.LayerNorm)):
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.normal_(0, 0.2)
            if isinstance(norm, nn.BatchNorm2d):
                norm.reset_running_stats()
                norm.momentum = None  # a cumulative average: the batch's own statistics
        model.train()
        model(torch.randn(4, 3, size, size))
    return model.eval()


def run_onnxruntime(path, x):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def assert_close(got, expected, tolerance=1e-4):
    """Every output within ``tolerance`` of the largest expected magnitude."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=0, atol=tolerance * max(float(np.abs(e).max()), 1e-6))


@pytest.fixture(scope="module", params=list(MODELS))
def exported(request, tmp_path_factory):
    """``(name, path)`` of the model exported by PyTorch."""
    name = request.param
    size = MODELS[name]
    path = tmp_path_factory.mktemp("exported") / f"{name}.onnx"
    model = calibrated(name, size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation
        torch.onnx.export(model, torch.randn(1, 3, size, size), str(path), dynamo=False, opset_version=17)
    return name, path


@pytest.fixture(autouse=True)
def known_gap(request):
    if "exported" in request.fixturenames:
        name = request.getfixturevalue("exported")[0]
        if name in KNOWN_GAPS:
            request.applymarker(pytest.mark.xfail(strict=False, reason=KNOWN_GAPS[name]))


def batch(net, count, seed=0):
    return np.random.default_rng(seed).standard_normal((count, *net.inputs[0].shape[1:])).astype(np.float32)


def test_imports_and_runs_as_onnxruntime(exported, tmp_path):
    name, path = exported
    net = kcp.from_onnx(path)
    x = batch(net, 2)
    expected = [np.concatenate(outputs) for outputs in zip(*(run_onnxruntime(path, x[i:i + 1]) for i in range(2)))]
    if all(layer.op != "channelwise" for layer in net.layers):
        # The engine runs 3x3 convs by Winograd's F(4x4, 3x3), which rounds ~20x more than a plain
        # sum; through the 50 to 100 convs of these random networks, up to 2e-4 of the output's scale.
        assert_close(net(x), expected, tolerance=5e-4)
    net.to_onnx(tmp_path / "again.onnx")
    assert_close(run_onnxruntime(tmp_path / "again.onnx", x), expected)


def test_command_line_mask_and_compact_agree(exported, tmp_path):
    name, path = exported
    written = {}
    for mode in ("mask", "compact"):
        written[mode] = tmp_path / f"{mode}.onnx"
        assert cli.main(["prune", str(path), "-o", str(written[mode]), "--ratio", "0.3", "--mode", mode]) == 0
    onnx.checker.check_model(str(written["compact"]), full_check=True)
    original, compact = kcp.from_onnx(path), kcp.from_onnx(written["compact"])
    assert compact.cost()[0] < 0.9 * original.cost()[0]
    x = batch(original, 2, seed=1)
    masked = run_onnxruntime(written["mask"], x)
    assert_close(run_onnxruntime(written["compact"], x), masked)
    before = run_onnxruntime(path, x[:1])
    assert not np.allclose(masked[0][:1], before[0], rtol=0, atol=1e-3 * float(np.abs(before[0]).max()))


# -- single ops and patterns as PyTorch writes them -----------------------------------

def channel_shuffle(x, groups=2):
    """torchvision's ShuffleNet shuffle."""
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def chunked(x):
    a, b = x.chunk(2, dim=1)
    return torch.cat([b, torch.relu(a)], dim=1)


class ChannelsLast(nn.Module):
    """``norm`` over the channels of a channels-last view (ConvNeXt's LayerNorm2d)."""

    def __init__(self, norm):
        super().__init__()
        self.norm = norm

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ChannelsFirstLayerNorm(nn.Module):
    """ConvNeXt's own LayerNorm over the channels of [N, C, H, W], written out."""

    def __init__(self, channels):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.rand(channels) + 0.5), nn.Parameter(torch.randn(channels) / 5)

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * ((x - u) / torch.sqrt(s + 1e-6)) + self.bias[:, None, None]


SMALL = {  # name: (the function between the convs, the kinds kcp reads, as test_onnx.kinds lists them)
    "gelu": (nn.GELU(), ["gelu"]),
    "gelu_tanh": (nn.GELU(approximate="tanh"), None),
    "silu": (nn.SiLU(), ["silu"]),
    "mish": (nn.Mish(), ["mish"]),
    "softplus_beta": (nn.Softplus(beta=2), ["affine", "softplus", "affine"]),
    "hardtanh": (nn.Hardtanh(-2, 3), ["clip"]),
    "relu6": (nn.ReLU6(), ["clip"]),
    "elu": (nn.ELU(0.5), ["elu"]),
    "hardswish": (nn.Hardswish(), ["hardswish"]),
    "hardsigmoid": (nn.Hardsigmoid(), ["hardsigmoid"]),
    "prelu": (nn.PReLU(8, 0.3), ["affine", "relu", "mul", "relu", "add"]),
    "erf": (torch.erf, ["channelwise:Erf"]),
    "pow": (lambda x: x ** 2, ["channelwise:Pow"]),
    "arithmetic": (lambda x: (1 - x * 0.5) / 3 + 2, ["affine", "affine", "affine", "affine"]),
    "interpolate_nearest": (lambda x: F.interpolate(x, scale_factor=2), ["resize"]),
    "interpolate_bilinear": (lambda x: F.interpolate(x, size=(13, 11), mode="bilinear"), ["resize"]),
    "interpolate_align_corners": (lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=True),
                                  ["resize"]),
    "interpolate_down": (lambda x: F.interpolate(x, size=(5, 6)), ["resize"]),
    "pad_zero": (lambda x: F.pad(x, (1, 2, 0, 1)), []),
    "pad_reflect": (lambda x: F.pad(x, (1, 1, 2, 0), mode="reflect"), ["channelwise:Pad"]),
    "crop": (lambda x: x[:, :, 1:-1, 2:], ["channelwise:Slice", "channelwise:Slice"]),
    "adaptive_avg": (nn.AdaptiveAvgPool2d(2), ["avg_pool"]),
    "adaptive_max": (nn.AdaptiveMaxPool2d(1), ["max_pool"]),
    "max_pool_ceil": (nn.MaxPool2d(3, 2, ceil_mode=True), ["max_pool"]),
    "max_pool_dilated": (nn.MaxPool2d(2, 1, 1, dilation=2), ["max_pool"]),
    "avg_pool_ceil": (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), ["avg_pool"]),
    "mean": (lambda x: x.mean((2, 3), keepdim=True), ["global_avg_pool"]),
    "chunk": (chunked, ["channel_chunk", "channel_chunk", "relu", "concat"]),
    "channel_shuffle": (channel_shuffle, ["channel_shuffle"]),
    "group_norm": (nn.GroupNorm(4, 8), ["normalization"]),
    "instance_norm": (nn.InstanceNorm2d(8, affine=True), ["normalization"]),
    "layer_norm_channels_last": (ChannelsLast(nn.LayerNorm(8)), ["normalization"]),
    "layer_norm_written_out": (ChannelsFirstLayerNorm(8), ["normalization"]),
}


class Between(nn.Module):
    def __init__(self, function):
        super().__init__()
        self.first, self.function, self.last = nn.Conv2d(3, 8, 3, padding=1), function, nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.last(self.function(self.first(x)))


@pytest.mark.parametrize("case", SMALL, ids=SMALL)
def test_pytorch_forms_of_single_ops(case, tmp_path):
    function, expected = SMALL[case]
    torch.manual_seed(0)
    path = tmp_path / f"{case}.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Between(function).eval(), torch.randn(1, 3, 8, 8), str(path), dynamo=False,
                          opset_version=17)
    net = check_everywhere(onnx.load(str(path)), batch=1)
    if expected is not None:
        assert kinds(net) == expected
