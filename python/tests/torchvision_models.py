"""torchvision's model builders, importable with a CPU-only PyTorch.

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

import importlib
import importlib.util
import sys
import types

CLASSIFICATION = ("resnet18", "resnet50", "wide_resnet50_2", "resnext50_32x4d", "densenet121", "vgg11_bn",
                  "inception_v3", "googlenet", "squeezenet1_0", "shufflenet_v2_x1_0", "mobilenet_v2",
                  "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5", "efficientnet_b0", "efficientnet_v2_s",
                  "regnet_x_400mf", "regnet_y_400mf", "convnext_tiny", "alexnet")
SEGMENTATION = ("fcn_resnet50", "deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")
MODELS = CLASSIFICATION + SEGMENTATION

# How import_models() got torchvision.models: "package" (the real import) or
# "bare package" (the fallback above); None before the first call.
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
