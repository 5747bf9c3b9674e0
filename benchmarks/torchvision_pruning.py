"""kcp against Torch-Pruning on torchvision's own model definitions.

For each model (random weights, ``weights=None``: nothing is downloaded; eval
mode; one ``(1, 3, H, W)`` input: 224, inception_v3 299, segmentation 224 or
``--segmentation-size``), in one run:

* kcp: ``kcp.torch.Pruner(model, x, ratio=R)`` (trace and setup, timed),
  ``step()`` (plan, masks in place, timed), ``compact()`` (timed); MACs by
  ``pruner.macs()`` and by the shared counter on the original and compact
  models; the compact model's output against the masked model's, relative to
  the masked output's largest magnitude; ``pruner.frozen``.
* Torch-Pruning 1.6.1: ``tp.pruner.BasePruner`` (``MetaPruner`` is its
  deprecated alias) with ``GroupMagnitudeImportance(p=2)``,
  ``pruning_ratio=R``, the class-score layers ignored, ``step()``; the time
  is the pruner's construction (dependency graph) plus the step.

Both are judged by one MACs counter (``count_macs`` in
``python/tests/torchvision_models.py``: Conv2d, ConvTranspose2d and Linear
through forward hooks). A model a tool fails on stays in the table with its
error. Needs torchvision (imported without its compiled ops, see
``python/tests/torchvision_models.py``) and torch-pruning (``scripts/setup.sh``).

    python benchmarks/torchvision_pruning.py [--models resnet18 ...] [--ratio 0.3]
        [--markdown out.md] [--json out.json]
"""

import argparse
import importlib.metadata
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "tests"))

import torchvision_models  # noqa: E402
from machine import describe  # noqa: E402

warnings.filterwarnings("ignore", category=UserWarning, module="torch_pruning")  # its notes on unwrapped parameters


def _percent(value):
    return f"{100 * value:.1f}%"


def row(result):
    """One markdown table row for a :func:`torchvision_models.compare` result."""
    k, t = result["kcp"], result["tp"]
    kcp_red = _percent(k["reduction"]) if "reduction" in k else "fails"
    tp_red = _percent(t["reduction"]) if "reduction" in t else "fails"
    ratio = f"{k['reduction'] / t['reduction']:.2f}" if "reduction" in k and t.get("reduction") else "-"

    def seconds(d, key):
        return f"{d[key]:.2f}" if key in d else "-"

    error = f"{k['max_rel_err']:.1e}" if "max_rel_err" in k else "-"
    frozen = str(len(k["frozen"])) if "frozen" in k else "-"
    return (f"| {result['model']} | {kcp_red} | {tp_red} | {ratio} | {seconds(k, 'trace_s')} | "
            f"{seconds(k, 'plan_s')} | {seconds(k, 'compact_s')} | {seconds(t, 's')} | {error} | {frozen} |")


HEADER = ("| model | kcp MACs reduction | TP MACs reduction | kcp/TP | kcp trace s | kcp plan s | kcp compact s "
          "| TP s | compact==masked max rel err | frozen count |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def markdown(results, ratio, header_lines):
    lines = list(header_lines) + ["", HEADER] + [row(r) for r in results]
    notes = []
    for r in results:
        k, t = r["kcp"], r["tp"]
        if "error" in k:
            notes.append(f"- {r['model']}: kcp fails: {k['error']}")
        if "error" in t:
            notes.append(f"- {r['model']}: Torch-Pruning fails: {t['error']}")
        if "kcp_macs" in k and "macs" in k and k["kcp_macs"] != k["macs"]:
            notes.append(f"- {r['model']}: kcp's own MACs count {k['kcp_macs'][0]:,} -> {k['kcp_macs'][1]:,}, "
                         f"the shared counter {k['macs'][0]:,} -> {k['macs'][1]:,}")
        frozen = [line for line in k.get("frozen", []) if not line.startswith(("network input", "network output"))]
        if frozen:
            shown = "; ".join(frozen[:3]) + (f" (+{len(frozen) - 3} more)" if len(frozen) > 3 else "")
            notes.append(f"- {r['model']}: frozen: {shown}")
    if notes:
        lines += ["", f"Notes (ratio {ratio}):", ""] + notes
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(torchvision_models.MODELS),
                        choices=torchvision_models.MODELS, metavar="MODEL")
    parser.add_argument("--ratio", type=float, default=0.3)
    parser.add_argument("--segmentation-size", type=int, default=224)
    parser.add_argument("--small", action="store_true",
                        help="the test module's inputs: 64x64, inception_v3 75x75, segmentation 64x64")
    parser.add_argument("--threads", type=int, help="torch and kcp engine threads (default: theirs)")
    parser.add_argument("--markdown", metavar="PATH")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    import torch

    import kcp

    if args.threads:
        torch.set_num_threads(args.threads)
        kcp.set_num_threads(args.threads)
    builders = torchvision_models.builders()
    torchvision = sys.modules["torchvision"]
    import torch_pruning  # noqa: F401  (its __version__ says 1.6.0 in the 1.6.1 wheel: read the metadata)

    tp_version = importlib.metadata.version("torch-pruning")

    header = [f"{describe()}; {os.cpu_count()} logical CPUs; torch threads {torch.get_num_threads()}",
              f"torch {torch.__version__}, torchvision {torchvision.__version__} "
              f"(imported as: {torchvision_models.how_imported}), torch-pruning {tp_version}; "
              f"ratio {args.ratio}; inputs {'of the tests (--small)' if args.small else 'full size'}"]
    print("\n".join(header), flush=True)

    try:
        from tqdm import tqdm
    except ImportError:
        def tqdm(items, **_):
            return items

    results = []
    bar = tqdm(args.models, desc="models", unit="model")
    for model in bar:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(model)
        if args.small:
            size = torchvision_models.input_size(model, small=True)
        else:
            size = args.segmentation_size if model in torchvision_models.SEGMENTATION else None
        start = time.perf_counter()
        result = torchvision_models.compare(model, args.ratio, size, builders[model])
        result["wall_s"] = time.perf_counter() - start
        results.append(result)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"header": header, "ratio": args.ratio, "results": results}, out, indent=1)
    text = markdown(results, args.ratio, header)
    print(text.split("\n", len(header))[-1])
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(text)


if __name__ == "__main__":
    main()
