"""KCP against the filter-norm baselines, under one training budget.

For every task and seed a dense network is trained from scratch once; then
each criterion prunes a copy of it to each MACs reduction with soft pruning
while it fine-tunes for the same epochs, with the same seed, recipe and
ramp, and the compact result is scored on the validation set. Reported:
mean and standard deviation over seeds of the headline metric, and of its
change against the dense network of the same seed.

Results go into ``out`` as they come (``compare.json``, rewritten after every
run, so an interrupted comparison keeps what it finished), then the table
``compare.md`` and the plot ``compare.png``.
"""

import json
import os
from dataclasses import asdict

import numpy as np

from .finetune import PruneSchedule
from .tasks import TASK_NAMES, Task

CRITERIA = ("kcp", "l1", "l2", "fpgm", "random")
REDUCTIONS = (0.3, 0.5, 0.7)
SEEDS = (0, 1, 2)
BUDGET = {"size": 32, "train": 128, "val": 48, "epochs": 10}
QUICK = {"size": 16, "train": 16, "val": 8, "epochs": 1}


def run(tasks=TASK_NAMES, criteria=CRITERIA, reductions=REDUCTIONS, seeds=SEEDS, *, quick=False, out="kcp-compare",
        progress=True):
    """Runs the comparison (see the module docstring); returns the summary."""
    specs = [Task(name, **(QUICK if quick else BUDGET)) for name in tasks]
    records = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs) * len(seeds) * (1 + len(criteria) * len(reductions)), unit="run", desc="compare")
    os.makedirs(out, exist_ok=True)

    def record(spec, val, seed, criterion, target, net):
        macs = net.cost()[0]
        records.append({"task": spec.name, "seed": seed, "criterion": criterion, "macs_reduction_target": target,
                        "macs": macs, "metrics": spec.evaluate(net, val)})
        with open(os.path.join(out, "compare.json"), "w") as file:
            json.dump({"settings": settings(specs[0], criteria, reductions, seeds), "records": records}, file,
                      indent=1)
        if bar is not None:
            bar.set_postfix(task=spec.name, seed=seed, criterion=criterion)
            bar.update()

    try:
        for spec in specs:
            train, val = spec.split("train"), spec.split("val")
            for seed in seeds:
                dense_run = spec.fine_tune(spec.model(seed), train, val, seed=seed)
                dense_run.run(progress=False)
                dense = dense_run.network
                record(spec, val, seed, "dense", 0.0, dense)
                for target in reductions:
                    for criterion in criteria:
                        schedule = PruneSchedule(macs_reduction=target, criterion=criterion,
                                                 ramp_epochs=max(1, spec.epochs // 2))
                        pruning_run = spec.fine_tune(dense, train, val, prune=schedule, seed=seed)
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


def settings(spec, criteria, reductions, seeds):
    """The budget every run of the comparison shares."""
    budget = {key: value for key, value in asdict(spec).items() if key != "name"}
    return {**budget, "criteria": list(criteria), "reductions": list(reductions), "seeds": list(seeds)}


def summarize(records, specs):
    """Per task: the dense networks' headline metric and, per criterion and
    reduction, the pruned ones' (mean, std over seeds) and its change
    against the dense network of the same seed."""
    summary = {"tasks": {}}
    for spec in specs:
        runs = [r for r in records if r["task"] == spec.name]
        dense = {r["seed"]: r["metrics"][spec.metric] for r in runs if r["criterion"] == "dense"}
        entry = {"metric": spec.metric, "higher_is_better": spec.higher_is_better,
                 "dense": {"mean": float(np.mean(list(dense.values()))), "std": float(np.std(list(dense.values())))},
                 "dense_macs": next(r["macs"] for r in runs if r["criterion"] == "dense"), "pruned": {}}
        for criterion in dict.fromkeys(r["criterion"] for r in runs if r["criterion"] != "dense"):
            rows = []
            for target in dict.fromkeys(r["macs_reduction_target"] for r in runs if r["criterion"] == criterion):
                group = [r for r in runs if r["criterion"] == criterion and r["macs_reduction_target"] == target]
                values = np.array([r["metrics"][spec.metric] for r in group])
                changes = values - np.array([dense[r["seed"]] for r in group])
                rows.append({"macs_reduction_target": target,
                             "macs_reduction": float(np.mean([1 - r["macs"] / entry["dense_macs"] for r in group])),
                             "mean": float(values.mean()), "std": float(values.std()),
                             "change_mean": float(changes.mean()), "change_std": float(changes.std()),
                             "seeds": len(group)})
            entry["pruned"][criterion] = rows
        summary["tasks"][spec.name] = entry
    return summary


def table(summary):
    """The summary as a Markdown table per task: the metric in percent as
    mean ± standard deviation over seeds, and its mean change against the
    dense networks in points."""
    lines = []
    for task, entry in summary["tasks"].items():
        dense = entry["dense"]
        better = "higher" if entry["higher_is_better"] else "lower"
        lines += [f"**{task}**: {entry['metric']} in % ({better} is better); dense "
                  f"{100 * dense['mean']:.1f} ± {100 * dense['std']:.1f} at {entry['dense_macs']:,} MACs", ""]
        criteria = list(entry["pruned"])
        targets = [row["macs_reduction_target"] for row in entry["pruned"][criteria[0]]]
        lines.append("| criterion | " + " | ".join(f"{t:.0%} fewer MACs" for t in targets) + " |")
        lines.append("|---" * (len(targets) + 1) + "|")
        for criterion in criteria:
            cells = [f"{100 * row['mean']:.1f} ± {100 * row['std']:.1f} ({100 * row['change_mean']:+.1f})"
                     for row in entry["pruned"][criterion]]
            lines.append(f"| {criterion} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
