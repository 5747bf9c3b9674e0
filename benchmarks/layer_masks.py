"""KCP masks for every conv weight of ResNet-50: the engine against the NumPy reference.

The 53 conv weight shapes of torchvision's ResNet-50 (about 23.5M float32
parameters, random normal) are each passed to ``kcp.cluster(w, 0.5)``; the
same arrays go through ``kcp.testing.reference.cluster``, the slow float64 NumPy
oracle of the test suite, in the same run. Reported: the median wall time of
the whole set over several repetitions, and the ratio.

    python benchmarks/layer_masks.py [--repeats 7] [--threads N]
"""

import argparse
import os
import statistics
import time

import numpy as np

import kcp
from kcp.testing import reference as _reference
from machine import describe
from resnet50_shapes import resnet50_conv_shapes


def median_seconds(function, weights, repeats):
    """Median over ``repeats`` of the time to run ``function`` on every weight."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for weight in weights:
            function(weight)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--oracle-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    kcp.set_num_threads(args.threads)

    shapes = resnet50_conv_shapes()
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(shape, dtype=np.float32) for shape in shapes]
    parameters = sum(w.size for w in weights)
    print(describe())
    print(f"ResNet-50 conv weights: {len(weights)} layers, {parameters / 1e6:.1f}M parameters; "
          f"{args.threads} threads, median of {args.repeats}")

    rows = []
    for center in ("mean", "median"):
        engine = median_seconds(lambda w: kcp.cluster(w, 0.5, center=center), weights, args.repeats)
        oracle = median_seconds(lambda w: _reference.cluster(w, 0.5, center=center), weights, args.oracle_repeats)
        rows.append((center, engine, oracle))
    print(f"{'center':<8} {'kcp (ms)':>10} {'NumPy (ms)':>11} {'speedup':>8}")
    for center, engine, oracle in rows:
        print(f"{center:<8} {engine * 1e3:>10.1f} {oracle * 1e3:>11.1f} {oracle / engine:>7.1f}x")


if __name__ == "__main__":
    main()
