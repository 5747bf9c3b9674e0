"""OpenBLAS runs kernels as wide as the engine's own, whatever CPU model it finds.

OpenBLAS picks its kernels from the CPU's model number when it loads and falls
back to SSE3 ("Prescott") on one it does not know; ``import kcp`` names the set
from the CPU's features first (``kcp._engine``). The caller's
``OPENBLAS_CORETYPE`` wins, the environment is left as it was, and an OpenBLAS
loaded narrower before ``kcp`` gets a warning.
"""

import os
import subprocess
import sys

import pytest

import kcp

pytestmark = pytest.mark.skipif(kcp.info()["isa"] == "native", reason="OpenBLAS's kernel sets are named on x86-64")

WIDTHS = {"avx512": {"SkylakeX", "Cooperlake", "SapphireRapids"},
          "avx2": {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"}}


def run(code, **environment):
    base = {key: value for key, value in os.environ.items() if key not in ("OPENBLAS_CORETYPE", "KCP_ISA")}
    result = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                            env={**base, **environment}, capture_output=True, text=True)
    return result


INFO = "import os, kcp; print(kcp.info()['isa'], kcp.info()['blas'], os.environ.get('OPENBLAS_CORETYPE'))"


@pytest.mark.parametrize("isa", kcp.info()["supported"])
def test_openblas_runs_kernels_as_wide_as_the_engines(isa):
    result = run(INFO, KCP_ISA=isa)
    assert result.returncode == 0, result.stderr
    used, blas, left = result.stdout.split()
    assert used == isa
    assert blas in WIDTHS[isa]
    assert left == "None"  # the environment is as it was


def test_the_callers_choice_wins():
    result = run(INFO, OPENBLAS_CORETYPE="Prescott")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1:] == ["Prescott", "Prescott"]


def test_an_openblas_loaded_narrower_before_kcp_is_named_in_a_warning():
    code = ("import ctypes, ctypes.util, os; os.environ['OPENBLAS_CORETYPE'] = 'Prescott'; "
            "ctypes.CDLL(ctypes.util.find_library('openblas')); del os.environ['OPENBLAS_CORETYPE']; import kcp")
    result = run(code)
    assert result.returncode != 0
    assert "RuntimeWarning: OpenBLAS was loaded before kcp and runs its Prescott kernels" in result.stderr
