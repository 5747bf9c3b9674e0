"""The main job: a dense-labeling network trained natively, then pruned by
KCP to 70% fewer MACs while it fine-tunes, then compacted.

1. The task's network (:mod:`kcp.experiments.tasks`) is trained from scratch.
2. It is fine-tuned for as many epochs again and pruned. The ``recipe``
   says how: ``"soft"`` (the paper's) prunes softly while fine-tuning, the
   MACs target rising over the first half of the epochs, then compacts;
   ``"compensated"`` prunes once, compensates
   (:meth:`kcp.Plan.compensate`) and fine-tunes the compact network.
3. For comparison, the trained dense network is also pruned to the same
   target without any fine-tuning, compacted plainly and compensated
   (:meth:`kcp.Plan.compensate`, refitted on the training images).
4. The networks are scored on the validation set and timed, and the
   results are written into ``out``: ``results.json``, the plots
   ``training.png``, ``widths.png`` and ``predictions.png``, and the
   networks as ``dense.onnx``, ``pruned.onnx`` and ``compensated.onnx``.
"""

import json
import os
import time
from dataclasses import asdict

import numpy as np

from .. import get_num_threads
from . import plots
from ..plans import plan
from .tasks import DENSE_TASKS, Task, checked_recipe

QUICK = {"size": 32, "train": 48, "val": 16, "epochs": 3}
LATENCY_BATCH = 8


def latency_ms(net, split, repeats=9):
    """Median wall time in ms of one forward pass over ``LATENCY_BATCH``
    samples of ``split``, after one warm-up pass."""
    inputs = [x[:LATENCY_BATCH] for x in split.inputs]
    net(*inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net(*inputs)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def run(task="segmentation", *, model=None, macs_reduction=0.7, criterion="kcp", recipe="soft", quick=False,
        out="kcp-demo", seed=0, progress=True):
    """Runs the main job (see the module docstring) with the task's network
    (for stereo ``model`` picks one of :data:`~kcp.experiments.tasks.STEREO_MODELS`);
    returns the results dict."""
    if task not in DENSE_TASKS:
        raise ValueError(f"task: the demo runs a dense-labeling task ({', '.join(DENSE_TASKS)}), got {task!r}")
    checked_recipe(recipe)  # before training
    spec = Task(task, **(QUICK if quick else {}), architecture=model)
    model = spec.model(seed)
    plan(model, macs_reduction=macs_reduction, criterion=criterion)  # a target out of reach fails before training
    train, val = spec.split("train"), spec.split("val")

    dense_run = spec.training_run(model, train, val, seed=seed)
    dense_history = dense_run.run(progress=progress and "dense training")
    dense = dense_run.network
    one_shot = plan(dense, macs_reduction=macs_reduction, criterion=criterion)
    compensated = one_shot.compensate(dense, train.inputs, progress=progress and "compensation")
    pruning_run = spec.pruning_run(dense, train, val, macs_reduction, criterion, recipe=recipe, compensated=compensated,
                                   seed=seed)
    pruning_history = pruning_run.run(progress=progress and f"{criterion} pruning, {recipe}")
    pruned = pruning_run.compact()

    (macs_before, params_before), (macs_after, params_after) = dense.cost(), pruned.cost()
    scores_before, scores_after = spec.evaluate(dense, val), spec.evaluate(pruned, val)
    results = {
        "task": task, "metric": spec.metric, "higher_is_better": spec.higher_is_better, "criterion": criterion,
        "recipe": recipe,
        "macs_before": macs_before, "macs_after": macs_after, "macs_reduction": 1 - macs_after / macs_before,
        "params_before": params_before, "params_after": params_after,
        "metric_before": scores_before[spec.metric], "metric_after": scores_after[spec.metric],
        "metrics_before": scores_before, "metrics_after": scores_after,
        "latency_ms_before": latency_ms(dense, val), "latency_ms_after": latency_ms(pruned, val),
        "latency_batch": LATENCY_BATCH, "threads": get_num_threads(),
        "settings": {**asdict(spec), "macs_reduction_target": macs_reduction, "seed": seed},
        "widths_before": dense.layer_widths(), "widths_after": pruned.layer_widths(),
        "history": {"dense": dense_history, "pruning": pruning_history},
        "without_fine_tuning": {
            "macs": compensated.cost()[0], "params": compensated.cost()[1],
            "metrics_compacted": spec.evaluate(one_shot.apply(dense), val),
            "metrics_compensated": spec.evaluate(compensated, val),
        },
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as file:
        json.dump(results, file, indent=1)
    phase = (f"{criterion.upper()} soft pruning" if recipe == "soft"
             else f"{criterion.upper()} pruning, compensation, fine-tuning")
    plots.training_curves(task, dense_history, pruning_history, phase).savefig(os.path.join(out, "training.png"),
                                                                               dpi=120)
    plots.layer_widths(dense, pruned).savefig(os.path.join(out, "widths.png"), dpi=120)
    plots.predictions(spec, val, dense, pruned).savefig(os.path.join(out, "predictions.png"), dpi=120)
    dense.to_onnx(os.path.join(out, "dense.onnx"))
    pruned.to_onnx(os.path.join(out, "pruned.onnx"))
    compensated.to_onnx(os.path.join(out, "compensated.onnx"))
    return results


def report(results):
    """The before/after table of :func:`run`'s results, as text."""
    def row(label, before, after, format, change):
        return f"{label:<20} {format(before):>12} {format(after):>12} {change:>14}"

    lines = [row("", "dense", "pruned", str, "change")]
    for label, key in (("MACs", "macs"), ("parameters", "params")):
        before, after = results[key + "_before"], results[key + "_after"]
        lines.append(row(label, before, after, "{:,}".format, f"{after / before - 1:+.1%}"))
    for name, before in results["metrics_before"].items():
        after = results["metrics_after"][name]
        if name == "EPE":
            lines.append(row("EPE", before, after, "{:.3f} px".format, f"{after - before:+.3f} px"))
        else:
            lines.append(row(name, before, after, "{:.2%}".format, f"{(after - before) * 100:+.2f} points"))
    before, after = results["latency_ms_before"], results["latency_ms_after"]
    lines.append(row(f"latency, batch {results['latency_batch']}", before, after, "{:.1f} ms".format,
                     f"{before / after:.2f}x faster"))
    one_shot, metric = results["without_fine_tuning"], results["metric"]
    lines.append(f"\nwithout fine-tuning, {1 - one_shot['macs'] / results['macs_before']:.1%} fewer MACs: "
                 f"{metric} {one_shot['metrics_compacted'][metric]:.2%} compacted, "
                 f"{one_shot['metrics_compensated'][metric]:.2%} compensated")
    return "\n".join(lines)
