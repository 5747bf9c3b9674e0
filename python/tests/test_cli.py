"""`python -m kcp info|prune|compare` as users and scripts run them (`demo`: test_demo.py)."""

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from kcp import models


def run(*args):
    return subprocess.run([sys.executable, "-m", "kcp", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def unet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "unet.onnx"
    models.unet(image_size=32).to_onnx(str(path))
    return path


def test_info_json_reports_cost_and_spaces(unet_file):
    result = run("info", str(unet_file), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["macs"] == models.unet(image_size=32).cost()[0]
    assert report["params"] > 0
    assert all({"channels", "prunable", "reason"} <= space.keys() for space in report["spaces"])
    frozen = [s for s in report["spaces"] if not s["prunable"]]
    assert frozen and all(s["reason"] for s in frozen)


def test_info_text_lists_layers(unet_file):
    result = run("info", str(unet_file))
    assert result.returncode == 0 and "MACs" in result.stdout and "classifier" in result.stdout


@pytest.mark.parametrize("target", [["--ratio", "0.5"], ["--macs-reduction", "0.6"]])
def test_prune_writes_a_model_onnxruntime_runs(unet_file, tmp_path, target):
    out, plan = tmp_path / "small.onnx", tmp_path / "plan.json"
    result = run("prune", str(unet_file), "-o", str(out), *target, "--plan", str(plan))
    assert result.returncode == 0, result.stderr
    assert "MACs" in result.stdout and plan.exists() and json.loads(plan.read_text())["format"] == "kcp-plan/1"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    (logits,) = session.run(None, {session.get_inputs()[0].name: image})
    assert logits.shape == (1, 5, 32, 32)
    if target[0] == "--macs-reduction":
        before, after = (int(v.replace(",", "")) for v in result.stdout.splitlines()[1].split()[1:3])
        assert after <= 0.4 * before


@pytest.mark.parametrize("content", [b"not an onnx file", b"", None])
def test_bad_files_give_one_line_and_status_2(tmp_path, unet_file, content):
    path = tmp_path / "bad.onnx"
    if content is None:
        path.write_bytes(unet_file.read_bytes()[:500])  # truncated
    else:
        path.write_bytes(content)
    for args in (["info", str(path)], ["prune", str(path), "-o", str(tmp_path / "x.onnx"), "--ratio", "0.5"]):
        result = run(*args)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_prune_with_calibration_compensates(unet_file, tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "calibration.npy", rng.standard_normal((24, 3, 32, 32)).astype(np.float32))
    plain, fitted = tmp_path / "plain.onnx", tmp_path / "fitted.onnx"
    common = ["--macs-reduction", "0.5"]
    assert run("prune", str(unet_file), "-o", str(plain), *common).returncode == 0
    result = run("prune", str(unet_file), "-o", str(fitted), *common, "--calibration", str(tmp_path / "calibration.npy"))
    assert result.returncode == 0, result.stderr
    assert "compensated on 24 samples" in result.stdout
    image = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    outputs = {}
    for name, path in (("dense", unet_file), ("plain", plain), ("fitted", fitted)):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs[name] = np.concatenate([session.run(None, {session.get_inputs()[0].name: x[None]})[0] for x in image])
    error = {name: np.mean((outputs[name] - outputs["dense"]) ** 2) for name in ("plain", "fitted")}
    assert error["fitted"] < error["plain"]


def test_calibration_errors_give_one_line_and_status_2(unet_file, tmp_path):
    np.savez(tmp_path / "wrong.npz", other=np.zeros((2, 3, 32, 32), np.float32))
    np.save(tmp_path / "shape.npy", np.zeros((2, 4, 32, 32), np.float32))
    for extra in (["--calibration", str(tmp_path / "wrong.npz")], ["--calibration", str(tmp_path / "shape.npy")],
                  ["--calibration", str(tmp_path / "shape.npy"), "--mode", "mask"],
                  ["--calibration", str(tmp_path / "missing.npy")]):
        result = run("prune", str(unet_file), "-o", str(tmp_path / "x.onnx"), "--ratio", "0.5", *extra)
        assert result.returncode == 2, extra
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_missing_file_and_unreachable_target(unet_file, tmp_path):
    assert run("info", str(tmp_path / "missing.onnx")).returncode == 2
    result = run("prune", str(unet_file), "-o", str(tmp_path / "x.onnx"), "--macs-reduction", "0.999")
    assert result.returncode == 2 and "out of reach" in result.stderr


def test_compare_prints_its_table(tmp_path):
    result = run("compare", "--quick", "--tasks", "segmentation", "--criteria", "kcp", "l1", "--reductions", "0.3",
                 "--seeds", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "| kcp |" in result.stdout and "| l1 |" in result.stdout and "(target 30%)" in result.stdout
    assert (tmp_path / "compare.md").read_text() in result.stdout
