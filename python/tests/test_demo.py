"""The main job, ``python -m kcp demo``, at its quick size: what it writes
is checked against the networks it wrote."""

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

import kcp
from kcp.experiments import demo
from kcp.experiments.tasks import Task

KEYS = {"task", "metric", "macs_before", "macs_after", "params_before", "params_after", "metric_before",
        "metric_after", "latency_ms_before", "latency_ms_after"}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def segmentation_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = subprocess.run([sys.executable, "-m", "kcp", "demo", "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    return result, out


def test_cli_prints_the_table_and_meets_the_target(segmentation_run):
    result, out = segmentation_run
    assert result.returncode == 0, result.stderr
    for row in ("MACs", "parameters", "mIoU", "latency", "without fine-tuning"):
        assert row in result.stdout
    results = json.loads((out / "results.json").read_text())
    assert KEYS <= results.keys()
    assert results["task"] == "segmentation" and results["metric"] == "mIoU"
    assert results["macs_after"] <= 0.3 * results["macs_before"]
    assert results["params_after"] < results["params_before"]
    assert len(results["history"]["dense"]) == len(results["history"]["pruning"]) == demo.QUICK["epochs"]
    assert results["history"]["pruning"][-1]["macs"] == results["macs_after"]
    for name in ("training.png", "widths.png", "predictions.png"):
        assert (out / name).read_bytes().startswith(PNG)


def test_written_networks_reproduce_the_reported_metrics(segmentation_run):
    _, out = segmentation_run
    results = json.loads((out / "results.json").read_text())
    task = Task("segmentation", **demo.QUICK)
    val = task.split("val")
    for stage in ("before", "after"):
        net = kcp.from_onnx(str(out / f"{'dense' if stage == 'before' else 'pruned'}.onnx"))
        assert net.cost() == (results[f"macs_{stage}"], results[f"params_{stage}"])
        assert task.evaluate(net, val) == pytest.approx(results[f"metrics_{stage}"], abs=1e-12)
        assert net.layer_widths() == results[f"widths_{stage}"]
    one_shot = results["without_fine_tuning"]
    net = kcp.from_onnx(str(out / "compensated.onnx"))
    assert net.cost() == (one_shot["macs"], one_shot["params"]) and one_shot["macs"] <= 0.3 * results["macs_before"]
    assert task.evaluate(net, val) == pytest.approx(one_shot["metrics_compensated"], abs=1e-12)


def test_pruned_onnx_runs_in_onnxruntime(segmentation_run):
    _, out = segmentation_run
    val = Task("segmentation", **demo.QUICK).split("val")
    session = ort.InferenceSession(str(out / "pruned.onnx"))
    expected = kcp.from_onnx(str(out / "pruned.onnx"))(val.inputs[0])[0]
    got = session.run(None, {session.get_inputs()[0].name: val.inputs[0]})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())


def test_stereo_demo(tmp_path):
    results = demo.run("stereo", quick=True, out=str(tmp_path), progress=False)
    assert results["metric"] == "bad-3px" and not results["higher_is_better"]
    assert results["macs_after"] <= 0.3 * results["macs_before"]
    assert set(results["metrics_after"]) == {"bad-3px", "EPE"}
    assert 0 <= results["metric_after"] <= 1
    # The shared feature extractor is pruned; the last aggregation's channels are disparities, frozen.
    before, after = results["widths_before"], results["widths_after"]
    assert all(after[f"feature{i}"] < before[f"feature{i}"] for i in (1, 2, 3))
    assert after["aggregate3"] == before["aggregate3"]
    text = demo.report(results)
    assert "bad-3px" in text and "EPE" in text and "faster" in text


def test_the_demo_is_for_dense_labeling(tmp_path):
    with pytest.raises(ValueError, match="task"):
        demo.run("classification", quick=True, out=str(tmp_path), progress=False)
    assert not any(tmp_path.iterdir())


def test_bad_arguments_exit_with_a_message(tmp_path):
    result = subprocess.run([sys.executable, "-m", "kcp", "demo", "--quick", "--macs-reduction", "0.999",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "kcp demo: error:" in result.stderr and "Traceback" not in result.stderr


def test_the_compensated_recipe_fine_tunes_the_compensated_network(tmp_path):
    results = demo.run("segmentation", recipe="compensated", quick=True, out=str(tmp_path), progress=False)
    assert results["recipe"] == "compensated"
    assert results["macs_after"] == results["without_fine_tuning"]["macs"] <= 0.3 * results["macs_before"]
    assert all(epoch["macs"] == results["macs_after"] for epoch in results["history"]["pruning"])
    with pytest.raises(ValueError, match="recipe"):
        demo.run("segmentation", recipe="hard", quick=True, out=str(tmp_path), progress=False)


@pytest.mark.parametrize("model", ["psmnet", "gwcnet"])
def test_stereo_demo_with_a_3d_network(model, tmp_path):
    result = subprocess.run([sys.executable, "-m", "kcp", "demo", "--task", "stereo", "--model", model, "--quick",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["architecture"] == model and results["metric"] == "bad-3px"
    assert results["macs_after"] <= 0.3 * results["macs_before"]
    # The Siamese trunk is pruned; the classifier's single channel is the volume regressed over disparities.
    before, after = results["widths_before"], results["widths_after"]
    assert after["first"] < before["first"] and after["classifier"] == before["classifier"] == 1
    task = Task("stereo", **demo.QUICK, architecture=model)
    pruned = kcp.from_onnx(str(tmp_path / "pruned.onnx"))
    assert pruned.cost() == (results["macs_after"], results["params_after"])
    assert task.evaluate(pruned, task.split("val")) == pytest.approx(results["metrics_after"], abs=1e-12)


def test_the_model_option_is_for_the_stereo_task(tmp_path):
    with pytest.raises(ValueError, match="model"):
        demo.run("segmentation", model="psmnet", quick=True, out=str(tmp_path), progress=False)
    assert not any(tmp_path.iterdir())
