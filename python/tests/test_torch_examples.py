"""examples/torch_finetune.py runs as a script: trains, prunes with three
added lines, exports the compact model to ONNX and checks it in onnxruntime
(it asserts its own accuracy and MACs targets)."""

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "torch_finetune.py"


def test_finetune_example(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "% fewer" in result.stdout and "in onnxruntime" in result.stdout
    assert (tmp_path / "small.onnx").stat().st_size > 0
