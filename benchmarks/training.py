"""One training step (forward, backward, SGD with momentum) natively against PyTorch 2.13 CPU.

ResNet-20 (batch 128, 32x32, classification), the U-Net (batch 8, 64x64,
per-pixel classification), the stereo network (batch 4, 64x128,
disparity, smooth-L1) and PSMNet (published widths, batch 1, 256x512, 64
disparities) from ``kcp.models``, with the same weights, batch and
thread count. Each framework runs in a fresh process, so that the reported
peak resident memory (ru_maxrss) is its own.

    python benchmarks/training.py [--repeats 7] [--threads N] [--cases NAME ...] [--clock wall|cpu]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

from kcp import models

CLOCK = time.perf_counter  # or time.process_time (--clock cpu)
CASES = {
    "ResNet-20": ("resnet", dict(depth=20, batch=128), "classification"),
    "U-Net": ("unet", dict(batch=8, image_size=64), "segmentation"),
    "stereo": ("stereo_net", dict(batch=4, height=64, width=128, max_disparity=16), "disparity"),
    "PSMNet": ("psmnet", dict(height=256, width=512, max_disparity=64, **models.PSMNET_PUBLISHED), "disparity"),
}


def build(name):
    factory, arguments, task = CASES[name]
    net = getattr(models, factory)(**arguments)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(v.shape).astype(np.float32) for v in net.inputs]
    output = net(*inputs)[0]
    if task == "disparity":
        targets = rng.uniform(0, 8, output.shape).astype(np.float32)
    elif task == "classification":
        targets = rng.integers(0, output.shape[1], output.shape[0])
    else:
        targets = rng.integers(0, output.shape[1], (output.shape[0], *output.shape[2:]))
    return net, inputs, targets, task


def kcp_step_ms(name, repeats):
    import kcp

    net, inputs, targets, task = build(name)
    batch = len(targets)
    tuner = kcp.FineTune(net, (inputs, targets), task=task, epochs=repeats + 1, batch_size=batch, lr=0.01,
                         momentum=0.9, weight_decay=5e-4, schedule="constant")
    marks = []
    tuner.run(progress=False, callback=lambda step, steps, loss: marks.append(CLOCK()))
    return statistics.median(np.diff(marks)) * 1e3


def torch_step_ms(name, repeats):
    import torch
    import torch.nn.functional as F

    from kcp.testing.torch_functional import torch_forward

    net, inputs, targets, task = build(name)
    parameters = {k: torch.tensor(v, requires_grad="running" not in k) for k, v in net.parameters.items()}
    optimizer = torch.optim.SGD([p for k, p in parameters.items() if "running" not in k], lr=0.01, momentum=0.9,
                                weight_decay=5e-4)
    xs = [torch.from_numpy(x) for x in inputs]
    y = torch.from_numpy(targets)

    def step():
        (out,) = torch_forward(net, parameters, xs, training=True)
        loss = F.smooth_l1_loss(out, y) if task == "disparity" else F.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    times = []
    for _ in range(repeats):
        start = CLOCK()
        step()
        times.append(CLOCK() - start)
    return statistics.median(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the process's CPU time, which other processes on a busy machine barely change")
    parser.add_argument("--run", nargs=2, metavar=("FRAMEWORK", "NETWORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.run:
        framework, name = args.run
        if framework == "kcp":
            import kcp

            kcp.set_num_threads(args.threads)
            ms = kcp_step_ms(name, args.repeats)
        else:
            import torch

            torch.set_num_threads(args.threads)
            ms = torch_step_ms(name, args.repeats)
        print(json.dumps({"ms": ms, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    import kcp
    from machine import describe

    kcp.set_num_threads(args.threads)
    print(describe())
    print(f"{args.threads} threads, median of {args.repeats} steps ({args.clock} clock), each framework in its own "
          "process")
    print(f"{'network':<10} {'kcp ms':>9} {'torch ms':>9} {'kcp/torch':>10} {'kcp MB':>8} {'torch MB':>9}")
    for name in args.cases:
        results = {}
        for framework in ("kcp", "torch"):
            command = [sys.executable, __file__, "--run", framework, name, "--repeats", str(args.repeats), "--clock", args.clock,
                       "--threads", str(args.threads)]
            results[framework] = json.loads(subprocess.check_output(command, text=True).strip().splitlines()[-1])
        k, t = results["kcp"], results["torch"]
        print(f"{name:<10} {k['ms']:>9.1f} {t['ms']:>9.1f} {k['ms'] / t['ms']:>9.2f}x {k['peak_mb']:>8.0f} "
              f"{t['peak_mb']:>9.0f}")


if __name__ == "__main__":
    main()
