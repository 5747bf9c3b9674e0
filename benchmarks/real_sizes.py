"""Inference at real sizes: kcp against onnxruntime and PyTorch, in one run.

Cases (random weights, eval mode, nothing downloaded):

* torchvision ResNet-50 through ``kcp.torch.to_kcp``, 224x224, batch 1 and 8;
* torchvision DeepLabV3-MobileNetV3-Large through ``kcp.torch.to_kcp``, 512x512,
  and the MobileNetV3-Large classifier at 224x224 (depthwise convs on 7x7
  to 112x112 planes);
* the U-Net of ``kcp.models`` at 512x512 and its stereo network at 256x512
  (48 disparities);
* the small cases of ``benchmarks/inference.py`` (ResNet-20 b64 32x32, U-Net
  b8 64x64).

Each runs dense and compact at 50% and 70% fewer MACs (``kcp.plan``), in the
engine, in onnxruntime (the kcp network exported to ONNX) and, for the
torchvision models, in PyTorch (``kcp.torch.from_kcp`` for the compact
forms), all with the same thread count. Reported: the CPU, the instruction
set the engine chose (``kcp.info()``), median milliseconds, kcp over each
peer, and the compact speedup as a fraction of the MACs ratio. Then GMAC/s
per layer kind of the dense networks (``Network.profile``) against the
engine's SGEMM peak, measured as a linear layer 1024 -> 1024 on 4096 rows
(one OpenBLAS product, 4096 x 1024 x 1024).

Every form in every framework runs in turn, run by run, so that another
process slowing the machine down weighs on all of them alike. So that they do
not slow each other down, no framework's threads spin once its run is over:
onnxruntime's spin for work within a run, as by default, and stop when it
returns (``session.force_spinning_stop``; left spinning, they took a core from
the engine's runs 200 ms later); PyTorch's OpenMP threads sleep
(``OMP_WAIT_POLICY=PASSIVE``); the engine's spin for 100 us after each parallel
loop, and each run with several threads is followed by a pause of 1 ms
(``PAUSE``). Each form runs ``WARMUP`` times before it is timed. The peak is
the best of its runs at the start and at the end.

    python benchmarks/real_sizes.py [--quick] [--training] [--repeats 7] [--threads N] [--clock wall|cpu]
        [--cases NAME ...]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import onnxruntime as ort

import kcp
from kcp import models
from machine import describe

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "tests"))

REDUCTIONS = (0.5, 0.7)


def torchvision_case(builder, size, batch):
    """``() -> (net, torch model, inputs)`` for a torchvision model through ``kcp.torch.to_kcp``."""
    def build():
        import torch

        import kcp.torch
        import torchvision_models

        classification, segmentation = torchvision_models.import_models()
        module = classification if hasattr(classification, builder) else segmentation
        torch.manual_seed(0)
        model = getattr(module, builder)(weights=None, **({} if module is classification else
                                                          {"weights_backbone": None})).eval()
        x = torch.randn(batch, 3, size, size)
        return kcp.torch.to_kcp(model, x), model, [x.numpy()]
    return build


def kcp_case(factory, **arguments):
    """``() -> (net, None, inputs)`` for a network of ``kcp.models``."""
    def build():
        net = getattr(models, factory)(**arguments)
        rng = np.random.default_rng(0)
        return net, None, [rng.standard_normal(v.shape).astype(np.float32) for v in net.inputs]
    return build


CASES = {
    "ResNet-50 b1": torchvision_case("resnet50", 224, 1),
    "ResNet-50 b8": torchvision_case("resnet50", 224, 8),
    "DeepLabV3-MNv3 512": torchvision_case("deeplabv3_mobilenet_v3_large", 512, 1),
    "MobileNetV3-L b1": torchvision_case("mobilenet_v3_large", 224, 1),
    "U-Net 512": kcp_case("unet", batch=1, image_size=512),
    "stereo 256x512": kcp_case("stereo_net", batch=1, height=256, width=512, max_disparity=48),
    "ResNet-20 b64": kcp_case("resnet", depth=20, batch=64),
    "U-Net 64 b8": kcp_case("unet", batch=8, image_size=64),
}
QUICK = {"ResNet-50 b1": REDUCTIONS[:1], "U-Net 512": ()}


def median_ms(functions, repeats):
    """``{name: median milliseconds}`` of ``functions`` (name -> callable), run in turn ``repeats`` times
    after ``WARMUP`` runs each."""
    times = {name: [] for name in functions}
    for _ in range(WARMUP):
        for function in functions.values():
            function()
            time.sleep(PAUSE)
    for _ in range(repeats):
        for name, function in functions.items():
            times[name].append(timed(function))
            time.sleep(PAUSE)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def onnxruntime_run(net, inputs, path, threads):
    """A callable running ``net`` exported to ONNX in onnxruntime, its threads spinning within a run only."""
    net.to_onnx(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.force_spinning_stop", "1")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {i.name: x for i, x in zip(session.get_inputs(), inputs)}
    return lambda: session.run(None, feed)


def torch_run(model, inputs, threads):
    """A callable running ``model`` in PyTorch inference mode."""
    import torch

    torch.set_num_threads(threads)
    x = [torch.from_numpy(a) for a in inputs]

    def run():
        with torch.inference_mode():
            model(*x)
    return run


def layer_kind(layer, parameters):
    """The kind a layer's time is reported under."""
    if layer.op == "conv2d":
        o, i, kh, kw = parameters[layer.parameters[0]].shape
        groups = int(layer.attributes[-1])
        if groups > 1:
            return "conv grouped" if i > 1 else "conv depthwise"
        return "conv 1x1" if kh * kw == 1 else "conv kxk, <=64 out" if o <= 64 else "conv kxk, >64 out"
    return layer.op if layer.op in ("linear", "correlation") else "other ops"


def kinds(net, inputs, repeats, total_ms):
    """``{kind: (MACs, ms)}`` over the layers of ``net`` (MACs of the whole batch): each kind's share
    of the layer times of ``Network.profile`` (wall clock), of ``total_ms``, the network's median on
    the benchmark's clock."""
    batch = inputs[0].shape[0]
    times, macs, parameters = net.profile(*inputs, repeats=repeats), net.layer_macs(), net.parameters
    scale = total_ms / sum(times.values())
    result = {}
    for layer in net.layers:
        kind = layer_kind(layer, parameters)
        m, ms = result.get(kind, (0, 0.0))
        result[kind] = (m + macs[layer.name] * batch, ms + times[layer.name] * scale)
    return result


def sgemm_peak(repeats):
    """GMAC/s of the engine's OpenBLAS on one 4096 x 1024 x 1024 product (a linear layer 1024 -> 1024 on
    4096 rows; a 1x1 conv would take the engine's own pointwise kernel), its best run."""
    net = kcp.Network()
    net.output(net.linear(net.input("x", (4096, 1024)), 1024, bias=False))
    x = np.random.default_rng(0).standard_normal((4096, 1024)).astype(np.float32)
    net(x)
    best = min(timed(lambda: net(x)) for _ in range(repeats))
    return 1024 * 4096 * 1024 / best / 1e9


CLOCK = time.perf_counter  # or time.process_time (--clock cpu)
# Runs of each form before the timed ones: the engine's heap grows over its first few runs (ResNet-50
# at batch 1 page-faulted 25,600 pages in its first run, then 2,300, 400 and 500, none from the fifth).
WARMUP = 3
PAUSE = 0.0  # seconds after each run: 0.001 with several threads, so that the engine's stop spinning


def timed(function):
    """Seconds one call of ``function`` takes, on ``CLOCK``."""
    start = CLOCK()
    function()
    return CLOCK() - start


def training_ms(threads, repeats):
    """``(kcp, PyTorch)`` median ms of one forward and backward pass (the gradients a training step
    needs) of torchvision's ResNet-18, 10 classes, batch 16 at 112x112, in train mode for PyTorch."""
    import torch

    import kcp.torch
    import torchvision_models

    classification, _ = torchvision_models.import_models()
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = classification.resnet18(num_classes=10)
    x = torch.randn(16, 3, 112, 112)
    net = kcp.torch.to_kcp(model.eval(), x)
    model.train()
    seed = np.random.default_rng(0).standard_normal((16, 10)).astype(np.float32)

    def step():
        model.zero_grad()
        model(x).backward(torch.from_numpy(seed))
    ms = median_ms({"kcp": lambda: net.gradients(x.numpy(), output_gradients=[seed]), "PyTorch": step}, repeats)
    return ms["kcp"], ms["PyTorch"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ResNet-50 b1 (dense, 50%%) and U-Net 512 dense only")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), metavar="CASE")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--training", action="store_true",
                        help="also a forward and backward pass of ResNet-18 (batch 16, 112x112) against PyTorch")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the process's CPU time, which other processes on a busy machine barely "
                             "change; with --threads 1 it is the latency a quiet machine would show")
    args = parser.parse_args()
    global CLOCK, PAUSE
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    PAUSE = 0.001 if args.threads > 1 else 0.0
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when PyTorch, imported later, loads OpenMP
    warnings.filterwarnings("ignore", category=UserWarning)
    kcp.set_num_threads(args.threads)
    selected = {name: REDUCTIONS for name in args.cases or CASES} if not args.quick else QUICK
    repeats = 3 if args.quick else args.repeats

    peak = sgemm_peak(repeats)
    print(f"{describe()}; median of {repeats} runs, {args.clock} clock")
    print("\n| case | form | GMAC | kcp ms | ORT ms | PyTorch ms | kcp/ORT | kcp/PyTorch | speedup / MACs ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    profiles = {}
    with tempfile.TemporaryDirectory() as folder:
        for case, reductions in selected.items():
            dense, model, inputs = CASES[case]()
            forms = {"dense": dense} | {f"-{round(100 * r)}% MACs": kcp.plan(dense, macs_reduction=r).apply(dense)
                                        for r in reductions}
            batch = inputs[0].shape[0]
            runs = {("kcp", form): (lambda net=net: net(*inputs)) for form, net in forms.items()}
            for form, net in forms.items():
                runs["ORT", form] = onnxruntime_run(net, inputs, os.path.join(folder, f"{form}.onnx"), args.threads)
                if model is not None:
                    from kcp.torch import from_kcp

                    runs["PyTorch", form] = torch_run(model if net is dense else from_kcp(net, model), inputs,
                                                      args.threads)
            ms = median_ms(runs, repeats)
            profiles[case] = kinds(dense, inputs, repeats, ms["kcp", "dense"])
            for form, net in forms.items():
                kcp_ms, ort_ms, torch_ms = ms["kcp", form], ms["ORT", form], ms.get(("PyTorch", form))
                ratio = (dense.cost()[0] / net.cost()[0], ms["kcp", "dense"] / kcp_ms)
                print(f"| {case} | {form} | {net.cost()[0] * batch / 1e9:.2f} | {kcp_ms:.1f} | {ort_ms:.1f} | "
                      f"{'-' if torch_ms is None else f'{torch_ms:.1f}'} | {kcp_ms / ort_ms:.2f} | "
                      f"{'-' if torch_ms is None else f'{kcp_ms / torch_ms:.2f}'} | "
                      f"{'-' if net is dense else f'{ratio[1] / ratio[0]:.2f}'} |", flush=True)
    peak = max(peak, sgemm_peak(repeats))

    if args.training:
        kcp_ms, torch_ms = training_ms(args.threads, repeats)
        print(f"\nResNet-18, batch 16, 112x112, forward and backward: kcp {kcp_ms:.0f} ms, PyTorch {torch_ms:.0f} ms "
              f"(kcp/PyTorch {kcp_ms / torch_ms:.2f})")
    print(f"\nDense networks, GMAC/s per layer kind in the engine (SGEMM peak {peak:.1f}):")
    print("\n| case | layer kind | GMAC | ms | GMAC/s | of peak |")
    print("|---|---|---:|---:|---:|---:|")
    for case, table in profiles.items():
        for kind, (macs, ms) in sorted(table.items(), key=lambda item: -item[1][1]):
            rate = macs / ms / 1e6 if macs else None
            print(f"| {case} | {kind} | {macs / 1e9:.2f} | {ms:.1f} | {'-' if rate is None else f'{rate:.1f}'} | "
                  f"{'-' if rate is None else f'{rate / peak:.0%}'} |")


if __name__ == "__main__":
    main()
