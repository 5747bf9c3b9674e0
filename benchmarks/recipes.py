"""Pruning recipes for the same budget of fine-tuning epochs, on the demo's tasks.

For each dense-labeling task and seed, the network is trained natively as
``python -m kcp demo`` trains it (12 epochs), then given 12 more epochs at
half the learning rate in one of four ways, all at 70% fewer MACs (except
the reference):

- ``unpruned``: no pruning (the reference);
- ``soft``: KCP soft pruning while fine-tuning, the target ramped over the
  first 6 epochs (the main job's recipe, the paper's);
- ``compacted``: KCP once on the trained weights, compacted, then fine-tuned;
- ``compensated``: the same, compensated (``Plan.compensate`` on the 256
  training samples) before fine-tuning.

Reported per recipe (and criterion, with ``--criteria``): the validation
metric (mean and spread over seeds).

    python benchmarks/recipes.py [--tasks segmentation stereo] [--seeds 0 1 2] [--macs-reduction 0.7]
                                 [--recipes ...] [--criteria kcp l1 fpgm ...]
"""

import argparse
import statistics

import kcp
from kcp.layer import CRITERIA
from kcp.experiments.tasks import DENSE_TASKS, Task
from machine import describe

RECIPES = ("unpruned", "soft", "compacted", "compensated")


def fine_tuned(task, dense, train, val, recipe, criterion, reduction, seed):
    """The network after ``recipe``'s 12 epochs, compact where it was pruned."""
    if recipe == "unpruned":
        run = task.fine_tuning_run(dense, train, val, seed=seed)
    elif recipe == "compacted":
        run = task.fine_tuning_run(kcp.plan(dense, macs_reduction=reduction, criterion=criterion).apply(dense), train,
                                   val, seed=seed)
    else:
        run = task.pruning_run(dense, train, val, reduction, criterion, recipe=recipe, seed=seed)
    run.run(progress=f"{task.name} {recipe}, seed {seed}")
    return run.compact()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=DENSE_TASKS, default=list(DENSE_TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--macs-reduction", type=float, default=0.7)
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--criteria", nargs="+", choices=list(CRITERIA), default=["kcp"],
                        help="channel criteria of the pruning recipes")
    args = parser.parse_args()
    runs = [(recipe, None if recipe == "unpruned" else criterion) for recipe in args.recipes for criterion in
            (["kcp"] if recipe == "unpruned" else args.criteria)]
    rows = []
    for name in args.tasks:
        task = Task(name)
        train, val = task.split("train"), task.split("val")
        scores, macs = {("dense", None): []}, {}
        for seed in args.seeds:
            run = task.training_run(task.model(seed), train, val, seed=seed)
            run.run(progress=f"{name} dense, seed {seed}")
            dense = run.network
            scores[("dense", None)].append(task.evaluate(dense, val)[task.metric])
            for recipe, criterion in runs:
                net = fine_tuned(task, dense, train, val, recipe, criterion or "kcp", args.macs_reduction, seed)
                scores.setdefault((recipe, criterion), []).append(task.evaluate(net, val)[task.metric])
                macs[(recipe, criterion)] = 1 - net.cost()[0] / dense.cost()[0]
        rows.append((task, scores, macs))
    print(f"\n{describe()}")
    print(f"{kcp.get_num_threads()} threads; seeds {args.seeds}; validation metric, mean ± standard deviation")
    print(f"{'task':<13} {'metric':<8} {'recipe':<12} {'criterion':<9} {'fewer MACs':>10} {'score':>16}")
    for task, scores, macs in rows:
        for (recipe, criterion), values in scores.items():
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            print(f"{task.name:<13} {task.metric:<8} {recipe:<12} {criterion or '':<9} "
                  f"{macs.get((recipe, criterion), 0.0):>10.1%} {statistics.mean(values):>8.2%} ± {spread:.2%}")


if __name__ == "__main__":
    main()
