"""Property-based fuzzing of the public entry points: hypothesis draws
extreme integers, wrong shapes and dtypes, NaN and inf, empty and huge sizes
for the builder, inference, plans, compensation, fine-tuning, checkpoints,
plan JSON and ONNX bytes. Every input either works or raises ValueError or
TypeError (kcp.KCPError for numeric failures), and the inputs are left
unchanged. Each property runs in a fresh interpreter, so a crash fails it."""

import textwrap

import pytest

from support import TORCH_MISSING, run_isolated

PRELUDE = """
import json
import numpy as np, kcp
from hypothesis import given, settings, strategies as st, HealthCheck

settings.register_profile("fuzz", max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile("fuzz")
EXPECTED = (ValueError, TypeError, kcp.KCPError)
extreme = st.one_of(st.integers(-3, 40), st.sampled_from([2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**62, 2**63 - 1, 2**64]),
                    st.integers())
real = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 0.5, 1.0, 1e38, 3e38]))
outcomes = {}

def attempt(call):
    try:
        call()
        outcome = "ok"
    except EXPECTED as error:
        outcome = type(error).__name__
    outcomes[outcome] = outcomes.get(outcome, 0) + 1

def small_net(classes=3):
    net = kcp.Network(seed=0)
    x = net.input("x", (1, 2, 6, 6))
    h = net.relu(net.conv2d(x, 4, 3, padding=1))
    net.output(net.conv2d(h, classes, 1))
    return net
"""


def fuzz(body, max_examples=60, timeout=600):
    code = PRELUDE.replace("MAX_EXAMPLES", str(max_examples)) + textwrap.dedent(body) + "\nprint(outcomes)\n"
    output = run_isolated(code, timeout=timeout)
    outcomes = eval(output.strip().splitlines()[-1])
    assert sum(outcomes.values()) >= max_examples
    return outcomes


def test_builder_inference_plan_and_compensation():
    outcomes = fuzz("""
        @given(st.sampled_from(["conv2d", "max_pool", "avg_pool", "resize", "adaptive_pool", "linear", "correlation",
                                "chunk", "channel_shuffle"]),
               st.lists(extreme, min_size=6, max_size=6), st.sampled_from([0.0, 0.5, 0.9]))
        def build(op, v, ratio):
            def run():
                net = kcp.Network(seed=0)
                x = net.input("x", (1, 4, 8, 8))
                layer = {
                    "conv2d": lambda: net.conv2d(x, v[0], (v[1], v[2]), stride=v[3], padding=v[4], dilation=v[5]),
                    "max_pool": lambda: net.max_pool(x, v[0], v[1], v[2], dilation=v[3]),
                    "avg_pool": lambda: net.avg_pool(x, v[0], v[1], v[2], ceil_mode=bool(v[3] % 2)),
                    "resize": lambda: net.resize(x, (v[0], v[1])),
                    "adaptive_pool": lambda: net.adaptive_pool(x, (v[0], v[1])),
                    "linear": lambda: net.linear(net.flatten(x), v[0]),
                    "correlation": lambda: net.correlation(x, x, v[0]),
                    "chunk": lambda: net.chunk(x, v[0])[0],
                    "channel_shuffle": lambda: net.channel_shuffle(x, v[0]),
                }[op]
                net.output(layer())
                image = np.ones((1, 4, 8, 8), np.float32)
                if net.cost()[0] < 10**8 and all(np.prod(o.shape) < 10**7 for o in net.outputs):
                    net(image)
                    plan = kcp.plan(net, ratio=ratio)
                    plan.apply(net)(image)
                    plan.compensate(net, [image], progress=False)
            attempt(run)
        build()
    """)
    assert outcomes.get("ok") and outcomes.get("ValueError")


def test_inference_with_wrong_arrays_leaves_them_unchanged():
    outcomes = fuzz("""
        net = small_net()
        dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.bool_, np.complex64, object])
        @given(st.lists(st.integers(0, 7), min_size=0, max_size=5), dtypes, real)
        def infer(shape, dtype, fill):
            try:
                array = np.full(shape, fill).astype(dtype)
            except (OverflowError, ValueError, TypeError):
                return
            before = array.copy()
            attempt(lambda: net(array))
            assert np.array_equal(array, before, equal_nan=True) if dtype is not object else True
        infer()
    """)
    assert outcomes.get("ValueError") or outcomes.get("TypeError")


def test_finetune_settings_and_data():
    outcomes = fuzz("""
        images = np.random.default_rng(0).standard_normal((4, 2, 6, 6)).astype(np.float32)
        labels = np.random.default_rng(1).integers(0, 3, (4, 6, 6))
        keys = st.sampled_from(["epochs", "batch_size", "seed", "ignore_label", "step_every", "warmup", "shift", "lr",
                                "momentum", "weight_decay", "min_lr", "eps"])
        targets = st.sampled_from(["labels", "labels + 0.5", "labels * 1e9", "labels[:, :3]", "labels.reshape(4, 36)",
                                   "np.full((4, 6, 6), np.nan)", "labels - 1", "labels[:2]", "labels.astype(np.complex64)"])
        @given(keys, st.one_of(extreme, real), targets, targets)
        def tune(key, value, train, val):
            settings = dict(task="segmentation", epochs=1, batch_size=2, progress=False)
            settings[key] = value
            if key in ("epochs",) and isinstance(value, int) and value > 2:
                settings[key] = 2
            attempt(lambda: kcp.finetune(small_net(), (images, eval(train)), (images, eval(val)), **settings))
        tune()
    """, max_examples=40)
    assert outcomes.get("ok") and outcomes.get("ValueError")


def test_checkpoints_and_plan_json_from_arbitrary_bytes(tmp_path):
    outcomes = fuzz(f"""
        images = np.random.default_rng(0).standard_normal((4, 2, 6, 6)).astype(np.float32)
        labels = np.random.default_rng(1).integers(0, 3, (4, 6, 6))
        tuner = kcp.FineTune(small_net(), (images, labels), task="segmentation", epochs=1, batch_size=2)
        tuner.run(progress=False)
        path = r"{tmp_path / 'run.ckpt'}"
        tuner.save(path)
        good = open(path, "rb").read()
        text = kcp.plan(small_net(), ratio=0.5).to_json()
        @given(st.binary(max_size=64), st.integers(0, len(good)), st.integers(0, 2**64 - 1), st.integers(0, len(good) // 8))
        def restore(noise, cut, word, at):
            for data in (noise, good[:cut] + noise, good[:8 * at] + word.to_bytes(8, "little") + good[8 * at + 8:]):
                open(path, "wb").write(data)
                attempt(lambda: tuner.load(path))
            assert len(tuner.history) == 1
        restore()
        @given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4)),
               st.sampled_from(["spaces", "ratio", "macs", "criterion", "index", "pruned"]))
        def plans(junk, key):
            data = json.loads(text)
            data[key] = junk
            attempt(lambda: kcp.Plan.from_json(json.dumps(data)).apply(small_net()))
            attempt(lambda: kcp.Plan.from_json(json.dumps(junk)))
        plans()
    """)
    assert outcomes.get("ValueError")


def test_onnx_bytes():
    pytest.importorskip("onnx")
    outcomes = fuzz("""
        net = small_net()
        good = net.to_onnx().SerializeToString()
        @given(st.integers(0, len(good) - 1), st.binary(min_size=1, max_size=8), st.integers(0, len(good)))
        def load(at, noise, cut):
            for data in (good[:at] + noise + good[at + len(noise):], good[:cut]):
                attempt(lambda: kcp.from_onnx(data))
        load()
    """)
    assert outcomes.get("ValueError")


def test_cli_options(tmp_path):
    outcomes = fuzz(f"""
        import contextlib, io
        from kcp.cli import main
        model, out = r"{tmp_path / 'model.onnx'}", r"{tmp_path / 'out.onnx'}"
        small_net().to_onnx(model)
        option = st.sampled_from(["--ratio", "--macs-reduction", "--round-to", "--seed", "--ridge", "--mode", "--criterion"])
        value = st.one_of(extreme.map(str), real.map(str), st.sampled_from(["", "x", "nan", "-inf", "mask"]))
        @given(st.sampled_from(["info", "prune"]), st.lists(st.tuples(option, value), max_size=3))
        def cli(command, options):
            argv = [command, model] + (["-o", out] if command == "prune" else [])
            argv += [part for pair in options for part in pair]
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                try:
                    code = main(argv)
                except SystemExit as exit:  # argparse refuses unknown or malformed options
                    code = exit.code
            assert code in (0, 2), (argv, code)
            outcomes[code] = outcomes.get(code, 0) + 1
        cli()
    """, max_examples=40)
    assert outcomes.get(0) and outcomes.get(2)


def test_torch_pruner_settings():
    pytest.importorskip("torch", reason=TORCH_MISSING)
    outcomes = fuzz("""
        import torch
        from kcp.torch import Pruner
        model = torch.nn.Sequential(torch.nn.Conv2d(2, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1))
        example = torch.ones(1, 2, 6, 6)
        @given(st.one_of(real, extreme), st.one_of(extreme, st.just(1)), st.one_of(extreme, st.just(0)),
               st.sampled_from(["kcp", "l1", "random", "bogus"]))
        def prune(ratio, round_to, seed, criterion):
            before = [p.detach().clone() for p in model.parameters()]
            def run():
                pruner = Pruner(model, example, ratio=ratio, criterion=criterion, round_to=round_to, seed=seed)
                pruner.step()
            attempt(run)
            with torch.no_grad():
                for p, b in zip(model.parameters(), before):
                    p.copy_(b)
        prune()
    """, max_examples=40)
    assert outcomes.get("ValueError") or outcomes.get("TypeError")
