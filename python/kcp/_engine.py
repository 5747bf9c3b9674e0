"""Loads the engine, ``kcp._native``, with OpenBLAS's kernels chosen for this CPU.

OpenBLAS picks its kernels once, when it loads, from the CPU's model number,
and falls back to SSE3 ("Prescott", a quarter of the speed) on a model
it does not know: OpenBLAS 0.3.21 does so on Emerald Rapids Xeons. So the
package names, from the CPU's features, the kernel set as wide as the
engine's own (``OPENBLAS_CORETYPE``: ``SkylakeX`` for AVX-512, ``Haswell``
for AVX2 + FMA; see ``kcp_blas_coretype``) for the moment the engine loads,
unless the caller has named one. A process that loaded OpenBLAS before
``kcp`` keeps the kernels it has, with a warning when they are narrower.
"""

import os
import warnings

from . import _cpu

_CORETYPE = "OPENBLAS_CORETYPE"

# The OpenBLAS kernel sets (lower case) whose SGEMM is at least as wide as each chosen one.
_AVX512 = {"skylakex", "cooperlake", "sapphirerapids"}
_AS_WIDE = {"SkylakeX": _AVX512, "Haswell": _AVX512 | {"haswell", "zen"}}

chosen = None if _CORETYPE in os.environ else _cpu.blas_coretype()
if chosen:
    os.environ[_CORETYPE] = chosen
try:
    from . import _native
finally:
    if chosen:
        del os.environ[_CORETYPE]


def info_fields():
    """The engine's choices for this machine (``kcp_info``) as ``{key: value}`` text."""
    return dict(line.split(" ", 1) for line in _native.info().splitlines())


loaded = info_fields()["blas"]
if chosen and loaded.lower() not in _AS_WIDE[chosen]:
    warnings.warn(f"OpenBLAS was loaded before kcp and runs its {loaded} kernels on this CPU, narrower than "
                  f"{chosen}'s: set {_CORETYPE}={chosen} in the environment before Python starts",
                  RuntimeWarning, stacklevel=2)
