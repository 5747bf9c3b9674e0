"""Native inference against onnxruntime, dense and compact, on the same models.

ResNet-20 (CIFAR, batch 64, 32x32), the small U-Net (batch 8, 64x64) and
PSMNet (published widths, 256x512, 64 disparities) from ``kcp.models`` are pruned with KCP to 50% fewer MACs. The dense and compact
networks run in the engine and, exported to ONNX, in onnxruntime with the
same thread count, in one run. Reported: median latency of several runs, the
engine's compact-vs-dense speedup against the MACs ratio, and engine time
over onnxruntime time. The engine's dense and compact runs alternate, so
that another process slowing the machine down for a while weighs on both
alike; onnxruntime runs one session after the other. onnxruntime's threads
spin for work within a run, as by default, and stop when it returns
(``session.force_spinning_stop``): left spinning, they took a core from the
engine's runs 200 ms later.

    python benchmarks/inference.py [--repeats 15] [--threads N] [--cases NAME ...] [--clock wall|cpu]
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import onnxruntime as ort

import kcp
from kcp import models
from machine import describe


CLOCK = time.perf_counter  # or time.process_time (--clock cpu)
CASES = {
    "ResNet-20": lambda: models.resnet(20, batch=64),
    "U-Net": lambda: models.unet(batch=8, image_size=64),
    "PSMNet": lambda: models.psmnet(height=256, width=512, max_disparity=64, **models.PSMNET_PUBLISHED),
}


def median_ms(functions, repeats):
    """``{name: median milliseconds}`` of ``functions`` (name -> callable), run in turn ``repeats`` times."""
    times = {name: [] for name in functions}
    for function in functions.values():
        function()
    for _ in range(repeats):
        for name, function in functions.items():
            start = CLOCK()
            function()
            times[name].append(CLOCK() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def onnxruntime_session(net, path, threads):
    net.to_onnx(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.force_spinning_stop", "1")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the process's CPU time, which other processes on a busy machine barely change")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    kcp.set_num_threads(args.threads)

    print(describe())
    print(f"{args.threads} threads, median of {args.repeats} runs ({args.clock} clock); MACs per sample")
    print(f"{'network':<10} {'form':<8} {'MACs':>12} {'kcp ms':>9} {'ORT ms':>9} {'kcp/ORT':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.cases:
            dense = CASES[name]()
            compact = kcp.plan(dense, macs_reduction=0.5).apply(dense)
            inputs = [np.random.default_rng(0).standard_normal(v.shape).astype(np.float32) for v in dense.inputs]
            forms = (("dense", dense), ("compact", compact))
            engine = median_ms({form: (lambda net=net: net(*inputs)) for form, net in forms}, args.repeats)
            runtime = {}
            for form, net in forms:
                session = onnxruntime_session(net, os.path.join(folder, f"{name}-{form}.onnx"), args.threads)
                feed = {i.name: x for i, x in zip(session.get_inputs(), inputs)}
                runtime |= median_ms({form: lambda: session.run(None, feed)}, args.repeats)
            for form, net in forms:
                print(f"{name:<10} {form:<8} {net.cost()[0]:>12,} {engine[form]:>9.1f} {runtime[form]:>9.1f} "
                      f"{engine[form] / runtime[form]:>7.2f}x")
            macs_ratio = dense.cost()[0] / compact.cost()[0]
            speedup = engine["dense"] / engine["compact"]
            print(f"{name:<10} compact speedup {speedup:.2f}x for {macs_ratio:.2f}x fewer MACs "
                  f"({speedup / macs_ratio:.2f} of the MACs ratio)")


if __name__ == "__main__":
    main()
