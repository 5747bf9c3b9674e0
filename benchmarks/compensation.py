"""Pruning without retraining: plain compaction against compensated compaction.

For each dense-labeling task of the demo (the U-Net on texture mosaics, the
correlation stereo network on synthetic pairs) the network is trained
natively as ``python -m kcp demo`` trains it (12 epochs, seed 0), then
pruned with KCP and with L1 filter norms to 30%, 50% and 70% fewer MACs and
compacted, once plainly and once with ``Plan.compensate`` fitted on the 256
training samples. Reported: the validation metric of each, and the time the
compensation took.

    python benchmarks/compensation.py [--tasks segmentation stereo] [--samples 256]
"""

import argparse
import time

import kcp
from kcp.experiments.tasks import DENSE_TASKS, Task
from machine import describe


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=DENSE_TASKS, default=list(DENSE_TASKS))
    parser.add_argument("--samples", type=int, default=256, help="calibration samples (from the training set)")
    args = parser.parse_args()
    print(describe())
    print(f"{kcp.get_num_threads()} threads; validation metric of the network pruned without retraining")
    print(f"{'task':<13} {'criterion':<9} {'MACs':>6} {'dense':>7} {'pruned':>7} {'compensated':>11} {'seconds':>8}")
    for name in args.tasks:
        task = Task(name)
        train, val = task.split("train"), task.split("val")
        run = task.training_run(task.model(), train, val)
        run.run(progress=f"{name}: dense training")
        dense = run.network
        before = task.evaluate(dense, val)[task.metric]
        calibration = [x[:args.samples] for x in train.inputs]
        for criterion in ("kcp", "l1"):
            for reduction in (0.3, 0.5, 0.7):
                chosen = kcp.plan(dense, macs_reduction=reduction, criterion=criterion)
                start = time.perf_counter()
                compensated = chosen.compensate(dense, calibration)
                seconds = time.perf_counter() - start
                plain, fitted = (task.evaluate(n, val)[task.metric] for n in (chosen.apply(dense), compensated))
                print(f"{name:<13} {criterion:<9} {-reduction:>6.0%} {before:>7.2%} {plain:>7.2%} {fitted:>11.2%} "
                      f"{seconds:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
