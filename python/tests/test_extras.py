"""Optional dependencies: a command that lacks its extra says which one in a
line, progress bars vanish silently without tqdm, and the extras declared in
pyproject.toml hold what the commands need."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kcp import cli

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def run_without(modules, code):
    """Runs ``code`` in a fresh interpreter where importing any of ``modules`` fails."""
    hide = "".join(f"sys.modules[{name!r}] = None\n" for name in modules)
    return subprocess.run([sys.executable, "-c", f"import sys\n{hide}{code}"], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("argv, hidden, line", [
    (["demo", "--quick"], ["matplotlib"], "python -m kcp demo: needs matplotlib; pip install 'kcp-prune[demo]'"),
    (["demo"], ["skimage", "onnx"], "python -m kcp demo: needs scikit-image, onnx; pip install 'kcp-prune[demo]'"),
    (["compare", "--quick"], ["skimage"], "python -m kcp compare: needs scikit-image; pip install 'kcp-prune[demo]'"),
    (["info", "model.onnx"], ["onnx"], "python -m kcp info: needs onnx; pip install 'kcp-prune[onnx]'"),
    (["prune", "model.onnx", "-o", "out.onnx", "--ratio", "0.5"], ["onnx"],
     "python -m kcp prune: needs onnx; pip install 'kcp-prune[onnx]'"),
])
def test_a_missing_extra_is_one_line_and_status_2(argv, hidden, line):
    result = run_without(hidden, f"import runpy\nsys.argv = ['kcp', *{argv!r}]\n"
                                 "runpy.run_module('kcp', run_name='__main__')")
    assert (result.returncode, result.stdout, result.stderr) == (2, "", line + "\n")


@pytest.mark.parametrize("hidden, code, line", [
    (["onnx"], "import kcp.onnx.format\nkcp.onnx.format.onnx_module()",
     "ImportError: kcp's ONNX support needs the onnx package: pip install 'kcp-prune[onnx]'"),
    (["onnx"], "import kcp\nkcp.from_onnx(b'')",
     "ImportError: kcp's ONNX support needs the onnx package: pip install 'kcp-prune[onnx]'"),
    (["torch"], "import kcp.torch", "ImportError: kcp.torch needs PyTorch: pip install 'kcp-prune[torch]'"),
])
def test_a_missing_extra_of_the_api_raises_one_line_naming_it(hidden, code, line):
    result = run_without(hidden, code)
    assert result.returncode == 1 and result.stderr.splitlines()[-1] == line, result.stderr


def test_without_tqdm_progress_is_silent():
    code = """
import numpy as np
import kcp
from kcp import _progress

assert _progress.bar(True, "label", total=3) is None
with _progress.progress_bar("compensate", "compensate", "chunk") as report:
    assert report is None
net = kcp.Network(seed=0)
net.output(net.conv2d(net.input("x", (1, 2, 6, 6)), 2, 1))
x = np.random.default_rng(0).standard_normal((8, 2, 6, 6)).astype(np.float32)
history, _ = kcp.finetune(net, (x, x), task="regression", epochs=1, batch_size=4, progress=True)
print(len(history))
"""
    result = run_without(["tqdm"], code)
    assert (result.returncode, result.stdout, result.stderr) == (0, "1\n", "")


def requirements(extras, extra):
    """The distributions ``extra`` installs, following kcp-prune[...] references."""
    names = set()
    for requirement in extras[extra]:
        name, _, nested = re.match(r"([A-Za-z0-9_.-]+)(\[(.*)\])?", requirement).groups()
        if name == "kcp-prune":
            names.update(*(requirements(extras, inner) for inner in nested.split(",")))
        else:
            names.add(name)
    return names


def test_each_commands_extra_installs_what_it_needs():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert project["dependencies"] == ["numpy>=1.26"]
    extras = project["optional-dependencies"]
    for command, (extra, modules) in cli.EXTRAS.items():
        needed = {cli.DISTRIBUTIONS.get(name, name) for name in modules}
        assert needed <= requirements(extras, extra), command
    assert requirements(extras, "all") == set().union(*(requirements(extras, e) for e in ("demo", "onnx", "torch")))
