"""The wheel of ``make wheel`` (scripts/wheel.sh), built here from the tree,
installed into a fresh virtual environment: its extension finds OpenBLAS in
the wheel's own kcp_prune.libs/, and it imports and computes in a process
with a bare environment and no Swift toolchain anywhere on its paths."""

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("auditwheel", reason="needs the wheel tools of the [test] extra")

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "python" / "kcp"
BARE_PATH = "/usr/bin:/bin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel, and the site-packages folder and interpreter of a virtual environment holding it."""
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run([str(ROOT / "scripts" / "wheel.sh"), str(dist)], capture_output=True, text=True,
                           env={**os.environ, "PYTHON": sys.executable}, timeout=900)
    assert build.returncode == 0, build.stdout + build.stderr
    wheel, = dist.glob("*.whl")
    assert re.fullmatch(r"kcp_prune-.+-manylinux_2_\d+_x86_64\.whl", wheel.name)
    # numpy comes from the interpreter's own site-packages; kcp, which may be there too, from the wheel.
    environment = tmp_path_factory.mktemp("venv")
    venv.create(environment, system_site_packages=True, with_pip=False, symlinks=True)
    python = environment / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                              "--no-index", "--ignore-installed", "--disable-pip-version-check", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    site, = environment.glob("lib/python*/site-packages")
    return wheel, site.resolve(), python


def test_the_wheel_holds_the_package_the_extension_and_openblas(installed):
    wheel, _, _ = installed
    names = [name for name in zipfile.ZipFile(wheel).namelist() if not name.endswith("/")]
    modules = {f"kcp/{path.relative_to(PACKAGE).as_posix()}" for path in PACKAGE.rglob("*.py")} | {"kcp/py.typed"}
    package = {name for name in names if name.startswith("kcp/")}
    assert modules <= package
    extensions = sorted(package - modules)
    assert [name.split(".")[0] for name in extensions] == ["kcp/_cpu", "kcp/_native"]
    assert all(name.endswith(".so") for name in extensions)
    assert any(name.startswith("kcp_prune.libs/libopenblas") for name in names)


def test_the_extension_resolves_openblas_from_the_wheel(installed):
    _, site, _ = installed
    extension, = (site / "kcp").glob("_native*.so")
    ldd = subprocess.run(["ldd", str(extension)], capture_output=True, text=True, check=True).stdout
    assert "not found" not in ldd and "swift" not in ldd.lower()
    openblas, = re.findall(r"libopenblas\S* => (\S+)", ldd)
    assert Path(openblas).resolve().parent == site / "kcp_prune.libs"


CHECK = """
import json, sys
import numpy as np
import kcp

x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
net = kcp.Network(seed=0)
net.output(net.conv2d(net.input("x", (1, 3, 5, 5)), 4, 1, bias=False))
weight = next(iter(net.parameters.values()))
expected = np.einsum("oi,nihw->nohw", weight.reshape(4, 3), x)
maps = open("/proc/self/maps").read()
print(json.dumps({"kcp": kcp.__file__, "close": bool(np.allclose(net(x)[0], expected, atol=1e-5)),
                  "libraries": sorted({line.split()[-1] for line in maps.splitlines() if ".so" in line})}))
"""


def test_it_imports_and_computes_in_a_bare_environment(installed):
    _, site, python = installed
    assert shutil.which("swift", path=BARE_PATH) is None
    result = subprocess.run(["env", "-i", f"PATH={BARE_PATH}", str(python), "-c", CHECK], capture_output=True,
                            text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["kcp"]).is_relative_to(site)
    assert report["close"]
    openblas, = [path for path in report["libraries"] if "libopenblas" in path]
    assert Path(openblas).resolve().parent == site / "kcp_prune.libs"
    assert not [path for path in report["libraries"] if "swift" in path.lower()]


def test_the_main_job_runs_from_the_wheel(installed, tmp_path):
    """``python -m kcp demo --quick`` from the installed wheel, in a bare environment (the demo extra's
    packages come from the interpreter's site-packages, as ``pip install 'kcp-prune[demo]'`` puts them)."""
    _, site, python = installed
    result = subprocess.run(["env", "-i", f"PATH={BARE_PATH}", f"HOME={tmp_path}", str(python), "-m", "kcp", "demo",
                             "--quick", "--out", str(tmp_path / "demo")], capture_output=True, text=True, timeout=600,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "demo" / "results.json").is_file()
