"""Cost volumes at PSMNet's and GwcNet's sizes: the engine's ops against
PyTorch running the published loops (GwcNet's ``build_concat_volume`` and
``build_gwc_volume``, as ``kcp.testing.torch_functional`` writes them).

Features at 1/4 of a 256 x 512 crop (64 x 128), 48 disparities: PSMNet's
32 channels into a concatenation volume, GwcNet's 320 in 40 groups into a
group-wise one. Median wall time of forward (and forward + backward through
the engine's network gradients) over a few runs, with the threads given.

    python benchmarks/cost_volumes.py [--threads 1] [--repeats 5]
"""

import argparse
import time

import numpy as np
import torch

import kcp
from kcp.testing.torch_functional import concatenation_volume, group_correlation_volume
from machine import describe

CASES = [("concatenation", 32, 1), ("group_correlation", 320, 40)]


def median_ms(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=kcp.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--disparities", type=int, default=48)
    args = parser.parse_args()
    kcp.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(describe())
    print(f"{args.disparities} disparities, features 64 x 128")
    print(f"{'volume':<18} {'C':>4} {'G':>3} {'kcp ms':>8} {'torch ms':>9} {'speed-up':>8}")
    rng = np.random.default_rng(0)
    for kind, channels, groups in CASES:
        shape = (1, channels, 64, 128)
        left, right = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
        net = kcp.Network()
        net.output(net.cost_volume(net.input("left", shape), net.input("right", shape), args.disparities, kind,
                                   groups=groups))
        ours = median_ms(lambda: net(left, right), args.repeats)
        tl, tr = torch.from_numpy(left), torch.from_numpy(right)
        with torch.no_grad():
            if kind == "concatenation":
                theirs = median_ms(lambda: concatenation_volume(tl, tr, args.disparities), args.repeats)
            else:
                theirs = median_ms(lambda: group_correlation_volume(tl, tr, args.disparities, groups, groups / channels),
                                   args.repeats)
        print(f"{kind:<18} {channels:>4} {groups:>3} {ours:>8.1f} {theirs:>9.1f} {theirs / ours:>7.2f}x")


if __name__ == "__main__":
    main()
