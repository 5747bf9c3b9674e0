"""Command line: ``python -m kcp {demo, compare, info, prune}``.

``demo`` is the main job (:mod:`kcp.experiments.demo`), ``compare`` the criteria
comparison (:mod:`kcp.experiments.compare`); ``info`` and ``prune`` read ONNX models. Any
failure they can name (a file that is not ONNX, an unsupported op, a target
out of reach) is printed as one line on stderr and exits with status 2;
Ctrl-C exits with status 130. A command whose optional dependencies are not
installed says which extra installs them, and exits with status 2 too.
"""

import argparse
import importlib.util
import json
import sys

import numpy as np

from . import KCPError, from_onnx, plan, spaces
from .experiments import compare
from .layer import CRITERIA
from .plans import MODES
from .experiments.tasks import DENSE_TASKS, PRUNING_RECIPES, STEREO_MODELS, TASK_NAMES

#: Each command's extra, and the modules it imports from it: the demo plots with
#: matplotlib, draws its data from scikit-image and writes ONNX files.
EXTRAS = {"demo": ("demo", ("matplotlib", "skimage", "onnx")), "compare": ("demo", ("matplotlib", "skimage")),
          "info": ("onnx", ("onnx",)), "prune": ("onnx", ("onnx",))}
#: The distributions of the modules whose names differ.
DISTRIBUTIONS = {"skimage": "scikit-image"}


def _missing_extra(command):
    """One line naming what ``command`` lacks and the extra that installs it,
    or None when it lacks nothing."""
    extra, modules = EXTRAS[command]
    missing = [DISTRIBUTIONS.get(name, name) for name in modules if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return f"python -m kcp {command}: needs {', '.join(missing)}; pip install 'kcp-prune[{extra}]'"


def _demo(args):
    from .experiments import demo

    results = demo.run(args.task, model=args.model, macs_reduction=args.macs_reduction, criterion=args.criterion,
                       recipe=args.recipe, quick=args.quick, out=args.out, seed=args.seed)
    how = (f"with {args.criterion} soft pruning" if args.recipe == "soft"
           else f"after {args.criterion} pruning and compensation")
    print(f"\n{args.task}: {results['settings']['epochs']} epochs dense, then as many {how}\n")
    print(demo.report(results))
    print(f"\nwrote {args.out}/: results.json, training.png, widths.png, predictions.png, dense.onnx, pruned.onnx, "
          "compensated.onnx")
    return 0


def _compare(args):
    summary = compare.run(args.tasks, args.criteria, args.reductions, range(args.seeds), recipe=args.recipe,
                          quick=args.quick, out=args.out, model=args.model)
    print(compare.table(summary))
    print(f"wrote {args.out}/: compare.json, compare.md, compare.png")
    return 0


def _info(args):
    net = from_onnx(args.model)
    macs, params = net.cost()
    layer_macs = net.layer_macs()
    found = spaces(net)
    if args.json:
        print(json.dumps({
            "model": args.model, "macs": macs, "params": params,
            "nodes": [{"name": layer.name, "op": layer.op, "macs": layer_macs[layer.name]} for layer in net.layers],
            "spaces": [{"index": s.index, "channels": s.channels, "prunable": s.prunable > 0,
                        "prunable_channels": s.prunable, "reason": s.reason, "values": list(s.values)}
                       for s in found],
        }))
        return 0
    print(f"{args.model}: {len(net.layers)} nodes, {macs:,} MACs per sample, {params:,} parameters")
    print(f"\n{'layer':<32} {'op':<16} {'MACs':>14}")
    for layer in net.layers:
        print(f"{layer.name:<32} {layer.op:<16} {layer_macs[layer.name]:>14,}")
    print(f"\n{'space':>5} {'channels':>8} {'prunable':>8}  values / frozen because")
    for s in found:
        detail = s.reason if s.reason else ", ".join(s.values[:4]) + (" ..." if len(s.values) > 4 else "")
        print(f"{s.index:>5} {s.channels:>8} {s.prunable:>8}  {detail}")
    return 0


def _prune(args):
    net = from_onnx(args.model)
    amount = {"ratio": args.ratio} if args.ratio is not None else {"macs_reduction": args.macs_reduction}
    chosen = plan(net, criterion=args.criterion, round_to=args.round_to, seed=args.seed, global_pruning=args.global_pruning,
                  **amount)
    if args.calibration:
        if args.mode != "compact":
            raise ValueError("--calibration: compensation writes a compact model; drop --mode mask")
        calibration = _calibration(args.calibration, net)
        pruned = chosen.compensate(net, calibration, ridge=args.ridge)
    else:
        pruned = chosen.apply(net, args.mode)
    pruned.to_onnx(args.output)
    if args.plan:
        with open(args.plan, "w") as file:
            file.write(chosen.to_json())
    print(f"{'':<11} {'before':>14} {'after':>14} {'change':>8}")
    for label, before, after in (("MACs", chosen.macs_before, chosen.macs_after),
                                 ("parameters", chosen.params_before, chosen.params_after)):
        change = f"{after / before - 1:>+8.1%}" if before else f"{'-':>8}"  # a model may have no MACs
        print(f"{label:<11} {before:>14,} {after:>14,} {change}")
    compensated = f", compensated on {len(calibration[0])} samples" if args.calibration else ""
    print(f"wrote {args.output} ({args.mode}, {args.criterion}, ratio {chosen.ratio:.3f}{compensated})"
          + (f" and {args.plan}" if args.plan else ""))
    return 0


def _calibration(path, net):
    """The calibration inputs stored at ``path``: an ``.npy`` array for a
    network with one input, or an ``.npz`` archive with one array per input,
    named as the network's inputs."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (EOFError, ValueError) as error:  # empty, truncated, pickled or not NumPy at all
        raise ValueError(f"--calibration: {path} is not a NumPy .npy or .npz file ({error})") from None
    if isinstance(loaded, np.ndarray):
        return [loaded]
    with loaded:
        names = [value.name for value in net.inputs]
        missing = [name for name in names if name not in loaded.files]
        if missing:
            raise ValueError(f"--calibration: {path} has no array for the inputs {missing} (it holds {loaded.files})")
        return [loaded[name] for name in names]


def _parser():
    parser = argparse.ArgumentParser(prog="python -m kcp", description="Kernel cluster pruning.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo_parser = commands.add_parser("demo", help="train a dense-labeling network, prune it with KCP, compare")
    demo_parser.add_argument("--task", choices=DENSE_TASKS, default="segmentation")
    demo_parser.add_argument("--model", choices=list(STEREO_MODELS), help="the stereo task's network "
                             "(default stereo_net)")
    demo_parser.add_argument("--macs-reduction", type=float, default=0.7, help="fraction of MACs to remove")
    demo_parser.add_argument("--criterion", choices=list(CRITERIA), default="kcp")
    demo_parser.add_argument("--recipe", choices=PRUNING_RECIPES, default="soft",
                             help="soft: prune softly while fine-tuning (the paper's); compensated: prune once, "
                                  "compensate, fine-tune")
    demo_parser.add_argument("--quick", action="store_true", help="a small run of a few seconds (for checks)")
    demo_parser.add_argument("--out", default="kcp-demo", help="folder for results.json, plots and ONNX files")
    demo_parser.add_argument("--seed", type=int, default=0)

    comparison = commands.add_parser("compare", help="KCP against the baseline criteria on the dense-labeling tasks")
    comparison.add_argument("--tasks", nargs="+", choices=TASK_NAMES, default=list(TASK_NAMES))
    comparison.add_argument("--model", choices=list(STEREO_MODELS), help="the stereo task's network "
                            "(default stereo_net)")
    comparison.add_argument("--criteria", nargs="+", choices=list(CRITERIA), default=list(compare.CRITERIA))
    comparison.add_argument("--reductions", nargs="+", type=float, default=list(compare.REDUCTIONS),
                         help="MACs reductions to prune to")
    comparison.add_argument("--seeds", type=int, default=len(compare.SEEDS), help="seeds per task (0, 1, ...)")
    comparison.add_argument("--recipe", choices=PRUNING_RECIPES, default="soft",
                            help="how every criterion prunes (see demo --recipe)")
    comparison.add_argument("--quick", action="store_true", help="a tiny budget (for checks)")
    comparison.add_argument("--out", default="kcp-compare", help="folder for compare.json, compare.md, compare.png")

    info = commands.add_parser("info", help="nodes, channel spaces, MACs and parameters of an ONNX model")
    info.add_argument("model", help="an ONNX file")
    info.add_argument("--json", action="store_true", help="print one JSON object")

    prune = commands.add_parser("prune", help="prune an ONNX model and write the result as ONNX")
    prune.add_argument("model", help="an ONNX file")
    prune.add_argument("-o", "--output", required=True, help="the pruned ONNX file to write")
    target = prune.add_mutually_exclusive_group(required=True)
    target.add_argument("--ratio", type=float, help="fraction of each space's channels to prune")
    target.add_argument("--macs-reduction", type=float, help="fraction of MACs to remove")
    prune.add_argument("--criterion", choices=list(CRITERIA), default="kcp")
    prune.add_argument("--mode", choices=list(MODES), default="compact")
    prune.add_argument("--global", dest="global_pruning", action="store_true", help="rank channels across spaces")
    prune.add_argument("--round-to", type=int, default=1, help="keep a multiple of this many channels")
    prune.add_argument("--seed", type=int, default=0)
    prune.add_argument("--plan", help="also write the plan as JSON")
    prune.add_argument("--calibration", help="inputs (.npy, or .npz named by input) to refit the pruned layers on "
                                             "(Plan.compensate), instead of pruning without compensation")
    prune.add_argument("--ridge", type=float, default=1e-3, help="ridge of the compensation's least squares")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    command = {"demo": _demo, "compare": _compare, "info": _info, "prune": _prune}[args.command]
    missing = _missing_extra(args.command)
    if missing:
        print(missing, file=sys.stderr)
        return 2
    try:
        return command(args)
    except (ValueError, TypeError, KeyError, KCPError, OSError, ImportError) as error:
        print(f"kcp {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kcp {args.command}: interrupted", file=sys.stderr)
        return 130
