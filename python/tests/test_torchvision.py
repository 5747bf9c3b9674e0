"""kcp.torch on torchvision's real model definitions, against Torch-Pruning.

For each model of :data:`torchvision_models.MODELS` (random weights, eval
mode, a small input: 64x64, inception_v3 75x75), pruned at ratio 0.3:

* the compact model's output equals the masked model's within 1e-4 of the
  masked output's largest magnitude;
* kcp removes at least 0.9x the MACs that Torch-Pruning 1.6.1 (group L2
  magnitude, the same ratio, run here on a copy of the same model) removes,
  both counted by one counter (:func:`torchvision_models.count_macs`);
* kcp's trace + plan + compact take at most max(2 s, 3x Torch-Pruning's
  construction + step), in CPU seconds of this process with torch and the
  engine on one thread each (so that other work on a shared machine does
  not decide the outcome; the benchmark reports wall seconds);

and where ``kcp.torch.to_kcp`` converts the whole model, the native network
computes the model's output within 1e-4 relative.

:data:`KNOWN_GAPS` lists what fails today (the engine is being extended), by
model name for the compact-equals-masked test and by ``(name, "macs")``,
``(name, "time")`` and ``(name, "native")`` for the others. They are
non-strict xfails, so an entry whose gap has been closed shows as XPASS:
remove it then. ``benchmarks/torchvision_pruning.py`` measures the
same comparison at full resolution.
"""

import copy

import numpy as np
import pytest
from support import TORCH_MISSING

torch = pytest.importorskip("torch", reason=TORCH_MISSING)
pytest.importorskip("torch_pruning", reason="needs torch-pruning (scripts/setup.sh installs it)")

import torchvision_models  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:torch_pruning")

try:
    BUILDERS = torchvision_models.builders()
except ImportError as error:
    pytest.skip(f"needs torchvision.models: {error}", allow_module_level=True)

import kcp.torch  # noqa: E402

RATIO = 0.3

# What fails today, as non-strict xfails: model -> why the compact model is not
# the masked one (or kcp fails); (model, "macs") -> why kcp removes less than
# 0.9x Torch-Pruning's MACs; (model, "time") -> why it takes longer than
# max(2 s, 3x Torch-Pruning's); (model, "native") -> why to_kcp fails.
# Measured at the inputs of this module.
_GROUPED = ("grouped convs keep the same positions in every group; per group of n positions kcp prunes "
            "floor(0.3 n), Torch-Pruning n - floor(0.7 n), past the ratio")
KNOWN_GAPS = {
    ("resnext50_32x4d", "macs"): f"{_GROUPED} (1 against 2 of 4): 47% vs 54%",
    ("regnet_x_400mf", "macs"): f"{_GROUPED}: 46% vs 51%",
    ("regnet_y_400mf", "macs"): f"{_GROUPED} (2 against 3 of 8): 46% vs 56%",
}

@pytest.fixture(scope="module", params=torchvision_models.MODELS)
def built(request):
    """``(name, model, example)``: the pristine model (seed 0) and its input.
    Module scope groups a model's tests, so it is built once."""
    name = request.param
    torch.manual_seed(0)
    model = BUILDERS[name]()
    size = torchvision_models.input_size(name, small=True)
    return name, model, torch.randn(1, 3, size, size)


@pytest.fixture(scope="module")
def compared(built):
    """``(name, kcp's result, Torch-Pruning's)``, each pruning its own copy of
    the model on one thread (:func:`torchvision_models.run_kcp` and ``run_tp``:
    failures are recorded in the result, not raised)."""
    name, model, example = built
    dense = torchvision_models.count_macs(model, example)
    with torchvision_models.threads(1):
        ours = torchvision_models.run_kcp(copy.deepcopy(model), example, RATIO, dense)
        theirs = torchvision_models.run_tp(copy.deepcopy(model), example, RATIO, dense)
    return name, ours, theirs


def known_gap(request, key):
    if key in KNOWN_GAPS:
        request.applymarker(pytest.mark.xfail(strict=False, reason=KNOWN_GAPS[key]))


def kcp_ran(ours):
    assert "error" not in ours, f"kcp fails: {ours['error']}"


def torch_pruning_ran(name, theirs):
    if "error" in theirs:
        pytest.skip(f"Torch-Pruning fails on {name} ({theirs['error']}): nothing to compare with")


def test_compact_model_computes_the_masked_one(compared, request):
    name, ours, _ = compared
    known_gap(request, name)
    kcp_ran(ours)
    assert ours["max_rel_err"] <= 1e-4
    assert ours["macs"][1] <= ours["macs"][0] and ours["kcp_macs"][1] <= ours["kcp_macs"][0]


def test_kcp_removes_as_many_macs_as_torch_pruning(compared, request):
    name, ours, theirs = compared
    known_gap(request, (name, "macs"))
    torch_pruning_ran(name, theirs)
    kcp_ran(ours)
    frozen = [line for line in ours["frozen"] if not line.startswith(("network input", "network output"))]
    assert ours["reduction"] >= 0.9 * theirs["reduction"], (
        f"kcp removes {ours['reduction']:.1%} of the MACs, Torch-Pruning {theirs['reduction']:.1%}; "
        f"kcp keeps ({len(frozen)}): {frozen[:3]}")


def test_kcp_takes_at_most_three_times_torch_pruning(compared, request):
    name, ours, theirs = compared
    known_gap(request, (name, "time"))
    torch_pruning_ran(name, theirs)
    kcp_ran(ours)
    seconds = ours["trace_cpu_s"] + ours["plan_cpu_s"] + ours["compact_cpu_s"]
    assert seconds <= max(2.0, 3 * theirs["cpu_s"]), (
        f"kcp takes {seconds:.2f} CPU s (trace {ours['trace_cpu_s']:.2f}, plan {ours['plan_cpu_s']:.2f}, "
        f"compact {ours['compact_cpu_s']:.2f}), Torch-Pruning {theirs['cpu_s']:.2f} s")


def test_native_network_computes_the_model(built, request):
    name, model, example = built
    known_gap(request, (name, "native"))
    net = kcp.torch.to_kcp(model, example)
    with torch.no_grad():
        expected = torchvision_models.main_output(model(example)).numpy()
    got = net(example.numpy())[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_full_size_expansion_in_bands_computes_the_model():
    """At 224x224 MobileNetV3-Large's first expansion, 16 -> 64 channels on 112x112 with a relu, runs
    with its depthwise conv as one step, band by band of rows (the depthwise conv's time folds into the
    1x1 conv's in ``Network.profile``); the features up to there are the model's within 1e-4."""
    torch.manual_seed(0)
    model = BUILDERS["mobilenet_v3_large"]().features[:4].eval()
    example = torch.randn(1, 3, 224, 224)
    net = kcp.torch.to_kcp(model, example)
    with torch.no_grad():
        expected = model(example).numpy()
    got = net(example.numpy())[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    times, parameters = net.profile(example.numpy(), repeats=1), net.parameters
    folded = [layer.name for layer in net.layers if layer.op == "conv2d" and layer.attributes[-1] > 1
              and parameters[layer.parameters[0]].shape[2] > 1 and times[layer.name] == 0]
    assert folded == ["2.block.1.0"], folded  # features[2]: the block's depthwise conv
