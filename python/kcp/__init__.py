"""kcp: kernel cluster pruning for convolutional networks.

A Swift engine does the numeric work; this package hands it NumPy arrays
without copying them. See :func:`cluster` for the method (Yu, Wu, Chen, "KCP:
Kernel Cluster Pruning for Dense Labeling Neural Networks", arXiv:2101.06686).
PyTorch models are pruned in their own training loops by ``kcp.torch``
(``import kcp.torch``; ``import kcp`` itself never imports torch).
"""

from . import _engine  # first: loads the engine with OpenBLAS's kernels for this CPU
from . import _arguments, datasets, models
from ._native import KCPError
from ._native import get_num_threads as _get_num_threads
from ._native import set_num_threads as _set_num_threads
from .finetuning import FineTune, PruneSchedule, finetune
from .layer import ClusterResult, apply_mask, cluster, compact, scores, select
from .network import Network, Value
from .onnx import from_onnx
from .plans import Plan, Space, plan, spaces

__version__ = "0.1.0"

__all__ = [
    "ClusterResult",
    "FineTune",
    "KCPError",
    "Network",
    "Plan",
    "PruneSchedule",
    "Space",
    "Value",
    "apply_mask",
    "cluster",
    "compact",
    "datasets",
    "finetune",
    "from_onnx",
    "get_num_threads",
    "info",
    "models",
    "plan",
    "scores",
    "select",
    "set_num_threads",
    "spaces",
]


def set_num_threads(n):
    """Set the thread count of the engine's parallel loops (OpenBLAS runs one thread per call inside them).

    The loops run on the calling thread and on helper threads, which spin for 100 us after a loop
    before they sleep (where the threads are no more than the processors); a loop started while
    another runs (from a second Python thread) runs on its calling thread alone. The results do not
    depend on the thread count."""
    _set_num_threads(_arguments.integer(n, "n", 1, 1024))


def get_num_threads():
    """Thread count of the engine's parallel loops."""
    return _get_num_threads()


def info():
    """The machine and what the engine chose for it: ``{"cpu"``: the processor's name,
    ``"family"``, ``"model"``: its family and model numbers as the OS reports them (None off x86-64),
    ``"isa": "avx512" | "avx2" | "native"`` (its own
    vector kernels, chosen at load time from the CPU; ``KCP_ISA=avx2`` in the environment forces
    AVX2), ``"supported"``: the sets this CPU runs, widest first, ``"half_width_units"``: whether it
    runs 512-bit operations as two 256-bit halves (AMD Zen 4; some kernel choices follow it),
    ``"blas"``: OpenBLAS's kernel set (as wide as ``"isa"`` unless ``OPENBLAS_CORETYPE`` names another),
    ``"threads"``: the engine's thread count``}``."""
    fields = _engine.info_fields()
    family, model = (None if fields[key] == "unknown" else int(fields[key]) for key in ("family", "model"))
    return {"cpu": fields["cpu"], "family": family, "model": model, "isa": fields["isa"],
            "supported": fields["supported"].split(","), "half_width_units": fields["halfwidth"] == "1",
            "blas": fields["blas"], "threads": int(fields["threads"])}
