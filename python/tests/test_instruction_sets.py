"""Every instruction set this CPU runs passes the kernel oracles, with bitwise the same results.

The engine picks its vector kernels once, at load time (``kcp.info()["isa"]``);
``KCP_ISA`` in the environment forces a narrower set. Each supported set runs
the conv, volumetric conv and layer oracle suites in a fresh process, and a network covering
the direct kernel, the unfolded product, the Winograd transforms and the
fused epilogues gives the same bytes on every set, with OpenBLAS held to the
kernel set the widest loads (each engine set otherwise loads OpenBLAS's of its
width, and AVX-512's 1x1 convs sum as that set's products do). Convs
of more than 64 output channels take the channel-vector kernel with AVX-512
only, so a network with one rounds differently between sets.
"""

import os
import subprocess
import sys

import pytest

import kcp

HERE = os.path.dirname(os.path.abspath(__file__))
SUPPORTED = kcp.info()["supported"]

# Prints the instruction set in use and a digest of a network's outputs.
DIGEST = """
import hashlib, numpy as np, kcp
net = kcp.Network(seed=3)
x = net.input("x", (2, 8, 30, 34))
a = net.relu(net.batchnorm(net.conv2d(x, 12, 3, padding=1)))             # direct kernel, fused epilogue
b = net.relu(net.batchnorm(net.conv2d(a, 70, 1, stride=2)))              # unfolded product, 70 outputs
w = net.relu(net.batchnorm(net.conv2d(b, 40, 3, padding=1)))            # Winograd's F(4x4, 3x3)
c = net.add(net.batchnorm(net.conv2d(w, 70, 1)), b)                      # plain product, residual add
net.output(net.relu(c))
y = net(np.random.default_rng(0).standard_normal((2, 8, 30, 34)).astype(np.float32))[0]
print(kcp.info()["isa"], hashlib.sha256(y.tobytes()).hexdigest())
"""


def run(isa, *arguments, **environment):
    environment = dict(os.environ, KCP_ISA=isa, **environment)
    return subprocess.run([sys.executable, *arguments], env=environment, capture_output=True, text=True, cwd=HERE)


def test_the_default_is_the_widest_supported_set():
    environment = {key: value for key, value in os.environ.items() if key != "KCP_ISA"}
    result = subprocess.run([sys.executable, "-c", DIGEST], env=environment, capture_output=True, text=True)
    assert result.stdout.split()[0] == SUPPORTED[0]
    assert SUPPORTED[-1] in ("avx2", "native")


def test_an_unknown_or_unsupported_name_falls_back_to_the_widest():
    assert run("sse2", "-c", DIGEST).stdout.split()[0] == SUPPORTED[0]


@pytest.mark.parametrize("isa", SUPPORTED)
def test_oracles_pass(isa):
    result = run(isa, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_conv_oracle.py", "test_conv3d_oracle.py",
                 "test_layer_oracle.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_every_set_gives_the_same_bytes():
    # OpenBLAS held to the kernels the widest set loads, whatever OPENBLAS_CORETYPE the caller set: the
    # AVX-512 pointwise kernel sums each product in the order of their SGEMM (Haswell's sums otherwise).
    widest = run(SUPPORTED[0], "-c", "from kcp import _cpu; print(_cpu.blas_coretype())").stdout.strip()
    held = {} if widest == "None" else {"OPENBLAS_CORETYPE": widest}
    digests = {}
    for isa in SUPPORTED:
        result = run(isa, "-c", DIGEST, **held)
        assert result.returncode == 0, result.stderr
        used, digest = result.stdout.split()
        assert used == isa
        digests[isa] = digest
    assert len(set(digests.values())) == 1, digests


READS_CPUINFO = pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="needs Linux's /proc/cpuinfo as the oracle")


def first_processor():
    """The ``key: value`` fields of the first processor in ``/proc/cpuinfo``, blanks trimmed."""
    with open("/proc/cpuinfo") as info:
        lines = info.read().split("\n\n")[0].splitlines()
    return {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines if ":" in line)}


@READS_CPUINFO
def test_the_cpu_is_named_as_the_kernel_names_it():
    name = first_processor().get("model name")
    if name is None:
        pytest.skip("/proc/cpuinfo names no model on this architecture")
    assert kcp.info()["cpu"] == " ".join(name.split())


@READS_CPUINFO
def test_the_cpu_family_and_model_are_the_kernels():
    fields = first_processor()
    if "cpu family" not in fields:
        assert (kcp.info()["family"], kcp.info()["model"]) == (None, None)
        return
    assert (kcp.info()["family"], kcp.info()["model"]) == (int(fields["cpu family"]), int(fields["model"]))


@READS_CPUINFO
def test_half_width_units_are_zen_4s():
    """AMD's family 25 with AVX-512 (Zen 4) runs 512-bit operations as two halves; Zen 3, of the same
    family, has no AVX-512, and other families run them whole."""
    fields = first_processor()
    expected = fields.get("cpu family") == "25" and "avx512f" in fields.get("flags", "").split()
    assert kcp.info()["half_width_units"] == expected
