"""The line every benchmark prints first: the machine it ran on and what the engine chose for it."""

import os

import kcp
from kcp import _cpu


def describe():
    """``CPU: <name> (family <f>, model <m>); engine kernels: <isa> (of <supported>[, 512-bit operations
    in two halves]); OpenBLAS <kernels>; <n> engine threads``,
    with a note where ``OPENBLAS_CORETYPE`` in the environment named other OpenBLAS kernels than the
    engine would."""
    info = kcp.info()
    own = _cpu.blas_coretype()
    named = os.environ.get("OPENBLAS_CORETYPE")
    blas = info["blas"] if not named or own in (None, info["blas"]) else \
        f"{info['blas']} (named by OPENBLAS_CORETYPE; the engine would load {own})"
    cpu = info["cpu"] if info["family"] is None else f"{info['cpu']} (family {info['family']}, model {info['model']})"
    units = ", 512-bit operations in two halves" if info["half_width_units"] else ""
    return (f"CPU: {cpu}; engine kernels: {info['isa']} (of {', '.join(info['supported'])}{units}); "
            f"OpenBLAS {blas}; {info['threads']} engine threads")
