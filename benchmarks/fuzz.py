"""Coverage-guided fuzzing (atheris, libFuzzer) of kcp's readers of outside data.

    python benchmarks/fuzz.py onnx -atheris_runs=1000000
    python benchmarks/fuzz.py checkpoint -max_total_time=600
    python benchmarks/fuzz.py plan -atheris_runs=1000000

Targets: ``onnx`` (kcp.from_onnx on mutated model bytes), ``checkpoint``
(a fine-tuning run restoring mutated checkpoint bytes) and ``plan``
(kcp.Plan.from_json on mutated text, then applied to a network). Each starts
from a valid input of its kind (written to a temporary corpus folder unless
a folder is given). Every input must load or raise ValueError, TypeError or
kcp.KCPError; anything else, a crash or a hang, is a finding, and libFuzzer
saves the input that caused it. Coverage is Python's (the importer, the
plan reader); the engine's checkpoint reader gets edits of a valid
checkpoint (see ``mutated``).
"""

import sys
import tempfile
from pathlib import Path

import atheris
import numpy as np

with atheris.instrument_imports(include=["kcp"]):
    import kcp
    from kcp import _native

EXPECTED = (ValueError, TypeError, kcp.KCPError)


def small_net():
    net = kcp.Network(seed=0)
    x = net.input("x", (1, 3, 8, 8))
    h = net.max_pool(net.relu(net.batchnorm(net.conv2d(x, 8, 3, padding=1))), 2)
    side = net.relu(net.conv2d(x, 4, 3, padding=1))
    net.output(net.conv2d(net.concat(net.upsample(h, 2, "bilinear"), side), 5, 1))
    return net


def onnx_target():
    seed = small_net().to_onnx().SerializeToString()

    def run(data):
        try:
            net = kcp.from_onnx(data)
            if net.cost()[0] < 10**8 and all(np.prod(v.shape) < 10**6 for v in net.inputs):
                net(*[np.ones(v.shape, np.float32) for v in net.inputs])
        except EXPECTED:
            pass

    return seed, run


def checkpoint_target():
    images = np.random.default_rng(0).standard_normal((8, 3, 8, 8)).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 5, (8, 8, 8))
    tuner = kcp.FineTune(small_net(), (images, labels), task="segmentation", epochs=2, batch_size=4,
                         prune=kcp.PruneSchedule(ratio=0.5))
    tuner.run(progress=False)
    good = _native.finetune_checkpoint(tuner._handle)

    def run(data):
        try:
            _native.finetune_restore(tuner._handle, mutated(good, data))
        except EXPECTED:
            pass

    return b"", run


def mutated(good, recipe):
    """``good`` changed as ``recipe`` says: the engine's reader is not
    instrumented, so coverage cannot steer libFuzzer towards checkpoint-like
    bytes; each input is instead a list of edits (8-byte words set to an
    extreme or a random value, bytes flipped, a cut) of a valid checkpoint."""
    provider, data = atheris.FuzzedDataProvider(recipe), bytearray(good)
    for _ in range(provider.ConsumeIntInRange(1, 8)):
        kind, at = provider.ConsumeIntInRange(0, 3), provider.ConsumeIntInRange(0, len(data) - 1)
        if kind == 0:
            word = provider.PickValueInList([0, 1, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1])
            data[at - at % 8:at - at % 8 + 8] = word.to_bytes(8, "little")
        elif kind == 1:
            data[at - at % 8:at - at % 8 + 8] = provider.ConsumeBytes(8).ljust(8, b"\0")
        elif kind == 2:
            data[at] = provider.ConsumeIntInRange(0, 255)
        else:
            del data[at:]
            break
    return bytes(data)


def plan_target():
    net = small_net()
    seed = kcp.plan(net, ratio=0.5).to_json().encode()

    def run(data):
        try:
            kcp.Plan.from_json(data.decode("utf-8", "replace")).apply(net)
        except EXPECTED:
            pass

    return seed, run


TARGETS = {"onnx": onnx_target, "checkpoint": checkpoint_target, "plan": plan_target}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [corpus folder]")
    seed, run = TARGETS[sys.argv[1]]()
    arguments = [sys.argv[0]] + sys.argv[2:]
    if not any(Path(a).is_dir() for a in arguments[1:]):
        corpus = Path(tempfile.mkdtemp(prefix=f"kcp-fuzz-{sys.argv[1]}-"))
        (corpus / "seed").write_bytes(seed)
        arguments.append(str(corpus))
    atheris.Setup(arguments, run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
