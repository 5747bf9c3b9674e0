"""The criteria comparison at its quick size: the summary is recomputed
from the per-run records, and an interrupted comparison keeps its runs."""

import json

import numpy as np
import pytest

from kcp.experiments import compare
from kcp.finetuning import FineTune

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    summary = compare.run(["segmentation", "stereo", "classification"], ["kcp", "random"], [0.5], [0, 1], quick=True,
                          out=str(out), progress=False)
    return summary, json.loads((out / "compare.json").read_text()), out


def test_every_run_is_recorded(comparison):
    _, data, out = comparison
    records = data["records"]
    # Per task and seed: one dense network, its unpruned fine-tuning, then one run per criterion and reduction.
    assert len(records) == 3 * 2 * (2 + 2)
    assert data["settings"]["seeds"] == [0, 1] and data["settings"]["epochs"] == compare.QUICK["epochs"]
    dense = {(r["task"], r["seed"]): r["macs"] for r in records if r["criterion"] == "dense"}
    for r in records:
        if r["criterion"] == "unpruned":
            assert r["macs"] == dense[r["task"], r["seed"]]
        elif r["criterion"] != "dense":
            assert r["macs"] <= 0.5 * dense[r["task"], r["seed"]]
    assert (out / "compare.png").read_bytes().startswith(PNG)
    # One table per metric: mIoU and pixel accuracy, bad-3px and EPE, accuracy.
    assert (out / "compare.md").read_text().count("| kcp |") == 5


def test_summary_is_the_mean_and_spread_of_the_records(comparison):
    summary, data, _ = comparison
    entries = [(task, entry) for task, first in summary["tasks"].items() for entry in (first, *first["others"])]
    assert [(task, entry["metric"]) for task, entry in entries] == [
        ("segmentation", "mIoU"), ("segmentation", "pixel_accuracy"), ("stereo", "bad-3px"), ("stereo", "EPE"),
        ("classification", "accuracy")]
    for task, entry in entries:
        runs = [r for r in data["records"] if r["task"] == task]
        dense = {r["seed"]: r["metrics"][entry["metric"]] for r in runs if r["criterion"] == "dense"}
        unpruned = {r["seed"]: r["metrics"][entry["metric"]] for r in runs if r["criterion"] == "unpruned"}
        assert entry["dense"]["mean"] == pytest.approx(np.mean(list(dense.values())))
        assert entry["unpruned"]["std"] == pytest.approx(np.std(list(unpruned.values())))
        for criterion in ("kcp", "random"):
            (row,) = entry["pruned"][criterion]
            values = {r["seed"]: r["metrics"][entry["metric"]] for r in runs if r["criterion"] == criterion}
            assert row["seeds"] == 2
            assert row["mean"] == pytest.approx(np.mean(list(values.values())))
            assert row["std"] == pytest.approx(np.std(list(values.values())))
            assert row["change_mean"] == pytest.approx(np.mean([values[s] - unpruned[s] for s in unpruned]))
            assert row["macs_reduction"] >= 0.5


def test_the_compensated_recipe_is_recorded_and_meets_the_target(tmp_path):
    summary = compare.run(["segmentation"], ["kcp"], [0.5], [0], recipe="compensated", quick=True, out=str(tmp_path),
                          progress=False)
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["settings"]["recipe"] == "compensated"
    (row,) = summary["tasks"]["segmentation"]["pruned"]["kcp"]
    assert row["macs_reduction"] >= 0.5
    with pytest.raises(ValueError, match="recipe"):
        compare.run(["segmentation"], ["kcp"], [0.5], [0], recipe="hard", quick=True, out=str(tmp_path),
                    progress=False)


def test_an_interrupted_comparison_keeps_its_finished_runs(tmp_path, monkeypatch):
    original, calls = FineTune.run, []

    def stop_on_the_third(self, **options):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, **options)

    monkeypatch.setattr(FineTune, "run", stop_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        compare.run(["segmentation"], ["kcp", "l1"], [0.5], [0], quick=True, out=str(tmp_path), progress=False)
    records = json.loads((tmp_path / "compare.json").read_text())["records"]
    assert [r["criterion"] for r in records] == ["dense", "unpruned"]


@pytest.mark.parametrize("arguments, message", [({"seeds": []}, "seeds"), ({"criteria": ["kcp", "l3"]}, "criteria"),
                                                ({"reductions": [0.5, 1.5]}, "macs_reduction"),
                                                ({"reductions": [0.999]}, "out of reach"),
                                                ({"tasks": ["segmentation", "depth"]}, "task")])
def test_bad_arguments_fail_before_training(tmp_path, arguments, message):
    settings = {"tasks": ["segmentation"], "criteria": ["kcp"], "reductions": [0.5], "seeds": [0], **arguments}
    with pytest.raises(ValueError, match=message):
        compare.run(**settings, quick=True, out=str(tmp_path), progress=False)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("model", ["psmnet", "gwcnet"])
def test_the_stereo_task_compares_a_3d_network(model, tmp_path):
    summary = compare.run(["stereo"], ["kcp", "l1"], [0.7], [0], quick=True, out=str(tmp_path), model=model,
                          progress=False)
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["settings"]["architecture"] == model
    dense = next(r["macs"] for r in data["records"] if r["criterion"] == "dense")
    assert all(r["macs"] <= 0.3 * dense for r in data["records"] if r["criterion"] in ("kcp", "l1"))
    assert summary["tasks"]["stereo"]["pruned"]["kcp"][0]["macs_reduction"] >= 0.7
