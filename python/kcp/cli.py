"""Command line: ``python -m kcp COMMAND``."""

import argparse

from . import demo


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kcp", description="Kernel cluster pruning.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="prune one conv layer with KCP and show what it did")
    demo_parser.add_argument("--ratio", type=float, default=0.5, help="fraction of input channels to prune")
    demo_parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.run(ratio=args.ratio, seed=args.seed)
    return 2
