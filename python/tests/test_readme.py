"""The README is a guide that runs: its Python blocks, in order and as
written, run in one fresh interpreter (in a temporary directory, for the
files they write). A block right after ``<!-- not run: REASON -->`` is
left out; the reason says why (a multi-process job)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the README's PyTorch blocks need torch")
pytest.importorskip("sklearn", reason="the README's digits come from scikit-learn")

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"(<!-- not run: [^>]*-->\n)?```python\n(.*?)```", re.S)


def blocks():
    """The README's Python blocks to run, in order."""
    return [code for skipped, code in BLOCK.findall(README.read_text()) if not skipped]


def test_the_readme_names_what_it_leaves_out():
    assert len(blocks()) >= 8
    assert all(reason.strip() for reason in re.findall(r"<!-- not run: ([^>]*)-->", README.read_text()))


def test_every_python_block_runs_as_written(tmp_path):
    script = "\n\n".join(blocks())
    ran = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, ran.stderr[-3000:]
