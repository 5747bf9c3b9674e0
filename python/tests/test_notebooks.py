"""Every notebook under notebooks/ runs top to bottom (each ends with an assertion); one that
imports torch is skipped, with the reason, where torch is not installed."""

import re
from pathlib import Path

import nbclient
import nbformat
import pytest
from support import TORCH_MISSING

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    if TORCH_MISSING and any(re.search(r"^\s*(import|from) (torch|kcp\.torch)\b", cell.source, re.M)
                             for cell in notebook.cells if cell.cell_type == "code"):
        pytest.skip(TORCH_MISSING)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
