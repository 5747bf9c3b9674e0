"""torchvision's model builders, importable with a CPU-only PyTorch, and the
kcp / Torch-Pruning comparison on them that test_torchvision.py and
benchmarks/torchvision_pruning.py share.

Finding (torchvision 0.28.0 from PyPI, ``--no-deps``, with torch 2.13.0+cpu):
the PyPI wheel is the CUDA 13 build (``torchvision.__version__`` is
``'0.28.0+cu130'``). Its compiled ops, ``torchvision/_C.so``, link against
``libcudart.so.13``, ``libc10_cuda.so`` and ``libtorch_cuda.so``, which the
CPU torch does not have, so ``torchvision.extension`` fails to load them
(silently). A plain ``import torchvision`` (and so ``import
torchvision.models``, which runs the package's ``__init__`` first) then does
not merely warn: it raises ``RuntimeError: operator torchvision::nms does not
exist`` from ``torchvision/_meta_registrations.py``, whose
``torch.library.register_fake("torchvision::nms")`` needs the op the missing
library would have defined.

``torchvision.models`` itself is plain Python and never needs ``_C`` to build
or run the classification and segmentation networks (only detection ops such
as ``nms`` and ``roi_align`` do). So :func:`builders` first tries the real
import (it works where torchvision's CPU wheel or a matching CUDA torch is
installed); if that fails, it removes the half-imported ``torchvision``
modules and registers a bare package module for ``torchvision`` -- same
directory on ``__path__``, its ``__init__`` not run -- and imports
``torchvision.models`` and ``torchvision.models.segmentation`` under it. No
op is stubbed: code that calls a compiled op still raises torchvision's own
"Couldn't load custom C++ ops" error. Only the package ``__init__``'s eager
imports (``_meta_registrations``, datasets, io, transforms) are skipped;
their submodules still import on demand. ``torchvision.__version__`` is set
from ``torchvision/version.py``.
"""

import contextlib
import importlib
import importlib.util
import sys
import time
import types

CLASSIFICATION = ("resnet18", "resnet50", "wide_resnet50_2", "resnext50_32x4d", "densenet121", "vgg11_bn",
                  "inception_v3", "googlenet", "squeezenet1_0", "shufflenet_v2_x1_0", "mobilenet_v2",
                  "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5", "efficientnet_b0", "efficientnet_v2_s",
                  "regnet_x_400mf", "regnet_y_400mf", "convnext_tiny", "alexnet")
SEGMENTATION = ("fcn_resnet50", "deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")
MODELS = CLASSIFICATION + SEGMENTATION

# How import_models() got torchvision.models: "package" (the real import) or
# "bare package" (the fallback the module docstring describes); None before the first call.
how_imported = None


def _forget_torchvision():
    for name in [name for name in sys.modules if name == "torchvision" or name.startswith("torchvision.")]:
        del sys.modules[name]


def import_models():
    """``(torchvision.models, torchvision.models.segmentation)``; raises
    ImportError if torchvision is not installed or its models do not import."""
    global how_imported
    try:
        models = importlib.import_module("torchvision.models")
        segmentation = importlib.import_module("torchvision.models.segmentation")
        how_imported = how_imported or "package"
        return models, segmentation
    except ImportError as error:
        if importlib.util.find_spec("torchvision") is None:
            raise
        failure = error
    except RuntimeError as error:  # "operator torchvision::nms does not exist": the compiled ops did not load
        failure = error
    _forget_torchvision()
    spec = importlib.util.find_spec("torchvision")
    package = types.ModuleType("torchvision")
    package.__spec__, package.__file__ = spec, spec.origin
    package.__path__ = list(spec.submodule_search_locations)
    package.__package__ = "torchvision"
    sys.modules["torchvision"] = package
    try:
        package.__version__ = importlib.import_module("torchvision.version").__version__
        models = importlib.import_module("torchvision.models")
        segmentation = importlib.import_module("torchvision.models.segmentation")
    except Exception as error:
        _forget_torchvision()
        raise ImportError(f"torchvision.models does not import ({type(failure).__name__}: {failure}; "
                          f"without the package __init__: {type(error).__name__}: {error})") from error
    how_imported = "bare package"
    return models, segmentation


def builders():
    """``{name: builder}`` for :data:`MODELS`; each builder takes no arguments
    and returns the network with random weights (``weights=None``, nothing
    downloaded) in eval mode, as the benchmark and the tests use it."""
    models, segmentation = import_models()
    extra = {"inception_v3": {"aux_logits": False, "init_weights": False},
             "googlenet": {"aux_logits": False, "init_weights": False}}
    found = {}
    for name in CLASSIFICATION:
        found[name] = _builder(getattr(models, name), {"weights": None, **extra.get(name, {})})
    for name in SEGMENTATION:
        found[name] = _builder(getattr(segmentation, name), {"weights": None, "weights_backbone": None,
                                                             "aux_loss": False})
    return found


def _builder(function, kwargs):
    def build():
        return function(**kwargs).eval()

    build.__name__ = function.__name__
    return build


def input_size(name, small=False):
    """Input side for ``name``: 224 (inception_v3: 299) for the benchmark,
    or with ``small`` the test size (64; inception_v3: 75, the least it
    takes; segmentation: 64)."""
    if small:
        return 75 if name == "inception_v3" else 64
    return 299 if name == "inception_v3" else 224


# ---------------------------------------------------------------------------
# The comparison the benchmark (benchmarks/torchvision_pruning.py) and the
# tests (test_torchvision.py) share: kcp and Torch-Pruning on one model, both
# judged by one MACs counter.


def count_macs(model, example):
    """Multiply-accumulates per sample of ``model``'s Conv2d, ConvTranspose2d
    and Linear layers on ``example`` (one forward pass, forward hooks).

    Conv2d: output elements x in_channels / groups x kernel area;
    ConvTranspose2d: input elements x out_channels / groups x kernel area
    (each input element is spread over the kernel); Linear: out_features x
    in_features x the elements of the leading dimensions. Functional convs
    and matmuls are not counted (none of :data:`MODELS` has them on its
    main path)."""
    import torch
    import torch.nn as nn

    total = [0]

    def hook(module, inputs, output):
        batch = inputs[0].shape[0]
        if isinstance(module, nn.ConvTranspose2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total[0] += inputs[0].numel() // batch * module.out_channels // module.groups * kernel
        elif isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total[0] += output.numel() // batch * module.in_channels // module.groups * kernel
        else:
            total[0] += output.numel() // batch * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def main_output(output):
    """The tensor to compare: ``output['out']`` of a segmentation model, else the output."""
    return output["out"] if isinstance(output, dict) else output


def classifier_layers(model):
    """The layers that make the class scores (Conv2d or Linear with 1000 or
    21 outputs: torchvision's ImageNet and VOC class counts), which
    Torch-Pruning is told to keep, as its README does."""
    import torch.nn as nn

    return [m for m in model.modules()
            if (isinstance(m, nn.Linear) and m.out_features in (1000, 21))
            or (isinstance(m, nn.Conv2d) and m.out_channels in (1000, 21))]


def _error(error):
    text = f"{type(error).__name__}: {error}".strip().replace("\n", " ")
    return text if len(text) <= 300 else text[:297] + "..."


class _Clock:
    """Wall and CPU seconds (this process, all its threads) since the last lap."""

    def __init__(self):
        self.restart()

    def restart(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self, result, name):
        """Stores ``name_s`` (wall) and ``name_cpu_s`` (CPU) in ``result`` and restarts."""
        prefix = f"{name}_" if name else ""
        result[f"{prefix}s"] = time.perf_counter() - self.wall
        result[f"{prefix}cpu_s"] = time.process_time() - self.cpu
        self.restart()


@contextlib.contextmanager
def threads(count):
    """Runs the block with ``count`` threads for torch and for the kcp engine
    (then restores both): one thread makes CPU seconds a measure of the work
    that other processes on the machine do not inflate."""
    import torch

    import kcp

    before = torch.get_num_threads(), kcp.get_num_threads()
    torch.set_num_threads(count)
    kcp.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        kcp.set_num_threads(before[1])


def run_kcp(model, example, ratio, dense_macs=None):
    """Prunes ``model`` (masked in place) with ``kcp.torch.Pruner`` and
    compacts it. Returns a dict: times (``trace_s``, ``plan_s``, ``compact_s``
    wall seconds; ``trace_cpu_s`` ... the process's CPU seconds), MACs
    by kcp's count and by :func:`count_macs`, the compact model's largest
    deviation from the masked one relative to the masked output's scale,
    and the frozen lines; ``error`` instead of what was not reached."""
    import torch

    import kcp.torch

    result = {}
    try:
        dense_macs = dense_macs or count_macs(model, example)
        clock = _Clock()
        pruner = kcp.torch.Pruner(model, example, ratio=ratio)
        clock.lap(result, "trace")
        result["frozen"] = list(pruner.frozen)
        clock.restart()
        pruner.step()
        clock.lap(result, "plan")
        compact = pruner.compact()
        clock.lap(result, "compact")
        result["kcp_macs"] = [int(m) for m in pruner.macs()]
        with torch.no_grad():
            masked = main_output(model(example))
            small = main_output(compact.eval()(example))
        scale = float(masked.abs().max())
        result["max_rel_err"] = float((small - masked).abs().max()) / max(scale, 1e-12)
        result["macs"] = [dense_macs, count_macs(compact, example)]
        result["reduction"] = 1 - result["macs"][1] / result["macs"][0]
    except Exception as error:  # a model kcp fails on: recorded, not raised
        result["error"] = _error(error)
    return result


def run_tp(model, example, ratio, dense_macs=None):
    """Prunes ``model`` in place with Torch-Pruning 1.6.1's ``BasePruner``
    (``MetaPruner`` is its deprecated alias) and group L2 magnitude,
    the class-score layers ignored. Returns ``{"s": wall seconds of the
    pruner's construction + step, "cpu_s": its CPU seconds, "macs": [before,
    after], "reduction": ...}`` or ``{"error": ...}``."""
    import torch_pruning as tp

    result = {}
    try:
        dense_macs = dense_macs or count_macs(model, example)
        clock = _Clock()
        pruner = tp.pruner.BasePruner(model, example, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                      pruning_ratio=ratio, ignored_layers=classifier_layers(model))
        pruner.step()
        clock.lap(result, "")
        model.eval()
        result["macs"] = [dense_macs, count_macs(model, example)]
        result["reduction"] = 1 - result["macs"][1] / result["macs"][0]
    except Exception as error:
        result["error"] = _error(error)
    return result


def compare(name, ratio=0.3, size=None, build=None):
    """kcp and Torch-Pruning on one freshly built ``name`` (same random
    weights for both, seed 0) with a ``(1, 3, size, size)`` input (default
    :func:`input_size`): ``{"model", "size", "kcp": run_kcp(...), "tp": run_tp(...)}``."""
    import copy

    import torch

    size = size or input_size(name)
    torch.manual_seed(0)
    model = (build or builders()[name])()
    example = torch.randn(1, 3, size, size)
    twin = copy.deepcopy(model)
    dense = count_macs(model, example)
    return {"model": name, "size": size, "kcp": run_kcp(model, example, ratio, dense),
            "tp": run_tp(twin, example, ratio, dense)}
