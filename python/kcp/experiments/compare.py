"""KCP against the filter-norm baselines, under one training budget.

For every task and seed a dense network is trained from scratch once; then
each criterion prunes a copy of it to each MACs reduction while it
fine-tunes for as many epochs again, with the same seed and recipe (soft
pruning with a ramp, or, with ``recipe="compensated"``, pruning once and
compensating before fine-tuning; :meth:`kcp.experiments.tasks.Task.pruning_run`), and
the compact result is scored on the validation set. The reference
is the dense network fine-tuned for the same epochs without pruning
(``"unpruned"``), so every network compared has had the same training.
Reported: mean and standard deviation over seeds of the headline metric, and
of its change against the unpruned network of the same seed.

Results go into ``out`` as they come (``compare.json``, rewritten after every
run, so an interrupted comparison keeps what it finished), then the table
``compare.md`` and the plot ``compare.png``.
"""

import json
import os
from dataclasses import asdict

import numpy as np

from .. import _arguments, _progress
from ..layer import CRITERIA as ALL_CRITERIA
from ..plans import plan
from .tasks import TASK_NAMES, Task, checked_recipe

CRITERIA = ("kcp", "l1", "l2", "fpgm", "random")
#: Whether more is better, for every metric a task reports (:meth:`Task.evaluate`).
HIGHER_IS_BETTER = {"mIoU": True, "pixel_accuracy": True, "accuracy": True, "bad-3px": False, "EPE": False}
#: Metrics in pixels; the others are fractions, shown in percent.
IN_PIXELS = ("EPE",)
REDUCTIONS = (0.3, 0.5, 0.7)
SEEDS = (0, 1, 2)
BUDGET = {"size": 32, "train": 128, "val": 48, "epochs": 10}
QUICK = {"size": 16, "train": 16, "val": 8, "epochs": 1}


def run(tasks=TASK_NAMES, criteria=CRITERIA, reductions=REDUCTIONS, seeds=SEEDS, *, recipe="soft", quick=False,
        out="kcp-compare", model=None, progress=True):
    """Runs the comparison (see the module docstring); returns the summary.
    ``model`` picks the stereo task's network (one of
    :data:`~kcp.experiments.tasks.STEREO_MODELS`). Every argument is checked,
    and every target's reach, before training."""
    for name, values in (("tasks", tasks), ("criteria", criteria), ("reductions", reductions), ("seeds", seeds)):
        if len(values) == 0:
            raise ValueError(f"{name}: needs at least one entry")
    checked_recipe(recipe)
    for criterion in criteria:
        _arguments.choice(criterion, "criteria", ALL_CRITERIA)
    specs = [Task(name, **(QUICK if quick else BUDGET), architecture=model if name == "stereo" else None)
             for name in tasks]
    for spec in specs:
        model = spec.model()
        for target in reductions:
            plan(model, macs_reduction=target)
    records = []
    bar = _progress.bar(progress, "compare", total=len(specs) * len(seeds) * (2 + len(criteria) * len(reductions)),
                        unit="run")
    os.makedirs(out, exist_ok=True)

    def record(spec, val, seed, criterion, target, net):
        macs = net.cost()[0]
        records.append({"task": spec.name, "seed": seed, "criterion": criterion, "macs_reduction_target": target,
                        "macs": macs, "metrics": spec.evaluate(net, val)})
        with open(os.path.join(out, "compare.json"), "w") as file:
            json.dump({"settings": settings(specs[0], criteria, reductions, seeds, recipe), "records": records}, file,
                      indent=1)
        if bar is not None:
            bar.set_postfix(task=spec.name, seed=seed, criterion=criterion)
            bar.update()

    try:
        for spec in specs:
            train, val = spec.split("train"), spec.split("val")
            for seed in seeds:
                dense_run = spec.training_run(spec.model(seed), train, val, seed=seed)
                dense_run.run(progress=False)
                dense = dense_run.network
                record(spec, val, seed, "dense", 0.0, dense)
                unpruned_run = spec.fine_tuning_run(dense, train, val, seed=seed)
                unpruned_run.run(progress=False)
                record(spec, val, seed, "unpruned", 0.0, unpruned_run.network)
                for target in reductions:
                    for criterion in criteria:
                        pruning_run = spec.pruning_run(dense, train, val, target, criterion, recipe=recipe, seed=seed)
                        pruning_run.run(progress=False)
                        record(spec, val, seed, criterion, target, pruning_run.compact())
    finally:
        if bar is not None:
            bar.close()
    from . import plots

    result = summarize(records, specs)
    with open(os.path.join(out, "compare.md"), "w") as file:
        file.write(table(result) + "\n")
    plots.comparison(result).savefig(os.path.join(out, "compare.png"), dpi=120)
    return result


def settings(spec, criteria, reductions, seeds, recipe):
    """The budget every run of the comparison shares."""
    budget = {key: value for key, value in asdict(spec).items() if key != "name"}
    return {**budget, "criteria": list(criteria), "reductions": list(reductions), "seeds": list(seeds),
            "recipe": recipe}


def summarize(records, specs):
    """Per task: for its headline metric (at the top level) and each other
    metric it reports (under ``"others"``), the metric of the dense and
    unpruned networks and, per criterion and reduction, of the pruned ones
    (mean, std over seeds), with the change against the unpruned network of
    the same seed."""
    summary = {"tasks": {}}
    for spec in specs:
        runs = [r for r in records if r["task"] == spec.name]
        dense_macs = next(r["macs"] for r in runs if r["criterion"] == "dense")
        names = [spec.metric] + [name for name in runs[0]["metrics"] if name != spec.metric]
        headline, *others = (_metric_summary(runs, name, dense_macs) for name in names)
        summary["tasks"][spec.name] = {**headline, "dense_macs": dense_macs, "others": others}
    return summary


def _metric_summary(runs, metric, dense_macs):
    """One metric of one task's ``runs`` (its dense network of ``dense_macs``), summarised as :func:`summarize` says."""

    def by_seed(criterion, target=0.0):
        return {r["seed"]: r for r in runs if r["criterion"] == criterion and r["macs_reduction_target"] == target}

    reference = {seed: r["metrics"][metric] for seed, r in by_seed("unpruned").items()}
    entry = {"metric": metric, "higher_is_better": HIGHER_IS_BETTER[metric], "pruned": {}}
    for name in ("dense", "unpruned"):
        values = [r["metrics"][metric] for r in by_seed(name).values()]
        entry[name] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    pruned = [r for r in runs if r["criterion"] not in ("dense", "unpruned")]
    for criterion in dict.fromkeys(r["criterion"] for r in pruned):
        rows = []
        for target in dict.fromkeys(r["macs_reduction_target"] for r in pruned if r["criterion"] == criterion):
            group = by_seed(criterion, target)
            values = np.array([r["metrics"][metric] for r in group.values()])
            changes = values - np.array([reference[seed] for seed in group])
            rows.append({"macs_reduction_target": target,
                         "macs_reduction": float(np.mean([1 - r["macs"] / dense_macs for r in group.values()])),
                         "mean": float(values.mean()), "std": float(values.std()),
                         "change_mean": float(changes.mean()), "change_std": float(changes.std()),
                         "seeds": len(group)})
        entry["pruned"][criterion] = rows
    return entry


def table(summary):
    """The summary as Markdown tables per task, the headline metric's first:
    each metric as mean ± standard deviation over seeds (fractions in percent,
    EPE in pixels), and its mean change against the unpruned networks (in
    points, or pixels)."""
    lines = []
    for task, entry in summary["tasks"].items():
        for metric in (entry, *entry["others"]):
            lines += _metric_table(task, metric, entry["dense_macs"])
    return "\n".join(lines)


def _metric_table(task, entry, dense_macs):
    """The lines of one metric's table (see :func:`table`)."""
    # A hundredth of a pixel, a tenth of a percent.
    unit, scale, digits = ("px", 1, 2) if entry["metric"] in IN_PIXELS else ("%", 100, 1)
    dense, unpruned = entry["dense"], entry["unpruned"]
    better = "higher" if entry["higher_is_better"] else "lower"
    lines = [f"**{task}**: {entry['metric']} in {unit} ({better} is better) at {dense_macs:,} MACs: "
             f"dense {scale * dense['mean']:.{digits}f} ± {scale * dense['std']:.{digits}f}, unpruned after "
             f"the same fine-tuning {scale * unpruned['mean']:.{digits}f} ± {scale * unpruned['std']:.{digits}f}",
             ""]
    criteria = list(entry["pruned"])
    columns = [f"{row['macs_reduction']:.1%} fewer MACs (target {row['macs_reduction_target']:.0%})"
               for row in entry["pruned"][criteria[0]]]
    lines.append("| criterion | " + " | ".join(columns) + " |")
    lines.append("|---" * (len(columns) + 1) + "|")
    for criterion in criteria:
        cells = [f"{scale * row['mean']:.{digits}f} ± {scale * row['std']:.{digits}f} "
                 f"({scale * row['change_mean']:+.{digits}f})" for row in entry["pruned"][criterion]]
        lines.append(f"| {criterion} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines

