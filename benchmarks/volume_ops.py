"""Volumetric convs against PyTorch's, in one run, on the same thread count.

Cases (random weights): a conv3d 3x3x3, 64 -> 64, padding 1, of a
``[1, 64, 48, 64, 128]`` volume (a stereo cost volume at 1/4 of a 256x512
image with 192 disparities: 43.5 GMAC), forward, and forward plus backward
(input and weight gradients); a conv_transpose3d 3x3x3, stride 2, 64 -> 32
of ``[1, 64, 24, 32, 64]``, forward. kcp runs a one-layer ``kcp.Network``
(``net(x)``, ``net.gradients``); PyTorch runs ``F.conv3d`` and
``F.conv_transpose3d`` (``torch.no_grad`` for forwards, ``backward`` for the
gradients). Every case runs in turn, run by run, so that another process
slowing the machine down weighs on both alike; idle threads sleep
(``OMP_WAIT_POLICY=PASSIVE``). Reported: the CPU, the threads, the best and
the median of the runs in milliseconds, and kcp over PyTorch. On a machine
shared with other work, ``--clock cpu`` (process CPU time; meaningful with
one thread) leaves out the time other processes hold the core.

    python benchmarks/volume_ops.py [--threads N] [--repeats 5] [--clock wall|cpu] [--small]
"""

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when PyTorch, imported below, loads OpenMP
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import kcp  # noqa: E402
from machine import describe  # noqa: E402


def cases(small):
    """``{name: (kcp callable, PyTorch callable)}``."""
    scale = 4 if small else 1
    rng = np.random.default_rng(0)
    found = {}

    shape = (1, 64, 48 // scale, 64 // scale, 128 // scale)
    net = kcp.Network(seed=0)
    net.output(net.conv3d(net.input("x", shape), 64, 3, padding=1, name="c"))
    x = rng.standard_normal(shape).astype(np.float32)
    seed = rng.standard_normal(net.outputs[0].shape).astype(np.float32)
    w, b = (torch.tensor(net.parameters[f"c.{p}"]) for p in ("weight", "bias"))
    xt, gt = torch.tensor(x), torch.tensor(seed)
    wr, br, xr = (t.clone().requires_grad_(True) for t in (w, b, xt))

    def torch_forward():
        with torch.no_grad():
            F.conv3d(xt, w, b, padding=1)

    def torch_backward():
        F.conv3d(xr, wr, br, padding=1).backward(gt)

    found[f"conv3d {list(shape)} forward"] = (lambda: net(x), torch_forward)
    found[f"conv3d {list(shape)} forward+backward"] = (lambda: net.gradients(x, output_gradients=[seed]),
                                                       torch_backward)

    shape = (1, 64, 24 // scale, 32 // scale, 64 // scale)
    up = kcp.Network(seed=1)
    up.output(up.conv_transpose3d(up.input("x", shape), 32, 3, stride=2, padding=1, output_padding=1, name="t"))
    y = rng.standard_normal(shape).astype(np.float32)
    tw, tb = (torch.tensor(up.parameters[f"t.{p}"]) for p in ("weight", "bias"))
    yt = torch.tensor(y)

    def torch_transposed():
        with torch.no_grad():
            F.conv_transpose3d(yt, tw, tb, stride=2, padding=1, output_padding=1)

    found[f"conv_transpose3d {list(shape)} forward"] = (lambda: up(y), torch_transposed)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--small", action="store_true", help="volumes a quarter the size along each axis")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    kcp.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    print(f"{describe()}; best and median of {args.repeats} runs, {args.clock} clock")
    for case, (ours, theirs) in cases(args.small).items():
        times = {"kcp": [], "torch": []}
        ours(), theirs()
        for _ in range(args.repeats):
            for who, function in (("kcp", ours), ("torch", theirs)):
                start = clock()
                function()
                times[who].append(clock() - start)
        best = {who: min(t) * 1e3 for who, t in times.items()}
        median = {who: statistics.median(t) * 1e3 for who, t in times.items()}
        print(f"{case}: kcp {best['kcp']:.0f} ms (median {median['kcp']:.0f}), PyTorch {best['torch']:.0f} ms "
              f"(median {median['torch']:.0f}); kcp / PyTorch {best['kcp'] / best['torch']:.2f} best, "
              f"{median['kcp'] / median['torch']:.2f} median")


if __name__ == "__main__":
    main()
