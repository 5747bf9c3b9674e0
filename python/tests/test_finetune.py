"""kcp.finetune: native training that learns, soft-prunes, stops cleanly and refuses bad input."""

import numpy as np
import pytest

import kcp
import kcp.models


def pixel_task(samples, seed):
    """Label a pixel 1 where the sum of the two input channels there is positive."""
    x = np.random.default_rng(seed).standard_normal((samples, 2, 8, 8)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def small_net():
    net = kcp.Network(seed=3)
    x = net.input("x", (1, 2, 8, 8))
    h = net.relu(net.batchnorm(net.conv2d(x, 16, 3, padding=1, name="c1")))
    h = net.relu(net.conv2d(h, 16, 3, padding=1, name="c2"))
    net.output(net.conv2d(h, 2, 1, name="head"))
    return net


SETTINGS = dict(task="segmentation", epochs=12, batch_size=16, lr=0.2, weight_decay=1e-4, seed=1)


def test_learns_and_soft_prunes_to_half_the_macs():
    net = small_net()
    history, small = kcp.finetune(net, pixel_task(64, 1), pixel_task(32, 2), progress=False,
                                  prune=kcp.PruneSchedule(macs_reduction=0.5, ramp_epochs=3), **SETTINGS)
    assert [r["epoch"] for r in history] == list(range(1, 13))
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["metric"] > 0.85  # mean IoU; chance is about 0.33
    assert small.cost()[0] == history[-1]["macs"] <= 0.5 * net.cost()[0]
    images, labels = pixel_task(32, 2)
    predicted = small(images)[0].argmax(axis=1)
    assert (predicted == labels).mean() > 0.9


def test_same_seed_gives_the_same_history():
    runs = [kcp.finetune(small_net(), pixel_task(32, 1), pixel_task(8, 2), progress=False, **{**SETTINGS, "epochs": 2})
            for _ in range(2)]
    assert runs[0][0] == runs[1][0]
    for name, value in runs[0][1].parameters.items():
        np.testing.assert_array_equal(value, runs[1][1].parameters[name])


def test_an_exception_in_the_callback_stops_at_a_step_boundary():
    tuner = kcp.FineTune(small_net(), pixel_task(64, 1), **{**SETTINGS, "epochs": 3})
    calls = []

    def interrupt(step, steps, loss):
        calls.append((step, steps))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tuner.run(progress=False, callback=interrupt)
    # Stopped before the next step, or, at an epoch's last step, once that epoch was recorded.
    (step, steps), = calls
    assert len(tuner.history) == (1 if step == steps else 0)
    # The network is consistent and training can go on.
    assert np.isfinite(tuner.network(pixel_task(4, 5)[0])[0]).all()
    assert len(tuner.run(progress=False)) == 3


def test_progress_bar_and_callback(capsys):
    steps = []
    kcp.finetune(small_net(), pixel_task(32, 1), progress=True, callback=lambda s, n, loss: steps.append((s, n)),
                 **{**SETTINGS, "epochs": 1})
    assert steps and steps[-1] == (2, 2)
    assert "fine-tune" in capsys.readouterr().err


@pytest.mark.parametrize(("change", "kind", "name"), [
    ({"epochs": -1}, ValueError, "epochs"), ({"batch_size": 0}, ValueError, "batch_size"),
    ({"task": "depth"}, ValueError, "task"), ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
    ({"lr": -1.0}, ValueError, "lr"), ({"seed": 1.5}, TypeError, "seed"),
    ({"prune": kcp.PruneSchedule()}, ValueError, "prune"),
    ({"prune": kcp.PruneSchedule(ratio=0.5, mode="medium")}, ValueError, "mode"),
])
def test_bad_settings_name_the_argument(change, kind, name):
    with pytest.raises(kind, match=name):
        kcp.FineTune(small_net(), pixel_task(8, 1), **{**SETTINGS, **change})


def test_bad_data_is_refused():
    images, labels = pixel_task(8, 1)
    with pytest.raises(ValueError, match="train"):
        kcp.FineTune(small_net(), (images[:, :1], labels), **SETTINGS)
    with pytest.raises(ValueError, match="train"):
        kcp.FineTune(small_net(), (images, labels[:4]), **SETTINGS)
    with pytest.raises(ValueError, match="labels"):
        kcp.FineTune(small_net(), (images, labels + 5), **SETTINGS).run(progress=False)
    with pytest.raises(TypeError, match="train"):
        kcp.FineTune(small_net(), images, **SETTINGS)


def test_a_checkpoint_resumes_the_exact_run(tmp_path):
    settings = {**SETTINGS, "epochs": 4, "prune": kcp.PruneSchedule(ratio=0.5, ramp_epochs=2)}
    train, val = pixel_task(32, 1), pixel_task(8, 2)
    straight, straight_net = kcp.finetune(small_net(), train, val, progress=False, **settings)

    path = tmp_path / "run.kcp"
    tuner = kcp.FineTune(small_net(), train, val, **settings)

    finished = [0]  # epochs seen to end: the callback may not ask the run itself

    def stop_in_the_third_epoch(step, steps, loss):
        if finished[0] == 2:
            raise KeyboardInterrupt
        finished[0] += step == steps

    with pytest.raises(KeyboardInterrupt):
        tuner.run(progress=False, checkpoint=str(path), callback=stop_in_the_third_epoch)
    # A stop at an epoch's last step completes that epoch; the file holds the last saved one.
    assert len(tuner.history) == 3 and path.exists()
    resumed, resumed_net = kcp.finetune(small_net(), train, val, progress=False, checkpoint=str(path), **settings)
    assert resumed == straight
    for name, value in straight_net.parameters.items():
        np.testing.assert_array_equal(resumed_net.parameters[name], value)


def test_bad_checkpoints_are_refused(tmp_path):
    tuner = kcp.FineTune(small_net(), pixel_task(16, 1), **{**SETTINGS, "epochs": 2})
    tuner.run(progress=False)
    good = tmp_path / "good.kcp"
    tuner.save(str(good))
    fresh = kcp.FineTune(small_net(), pixel_task(16, 1), **{**SETTINGS, "epochs": 2})
    for name, content in [("text", b"hello, not a checkpoint"), ("truncated", good.read_bytes()[:-100])]:
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(ValueError):
            fresh.load(str(bad))
    assert fresh.history == []
    other = kcp.FineTune(kcp.models.resnet(8, image_size=8), (np.zeros((4, 3, 8, 8)), np.zeros(4)),
                         task="classification", epochs=1)
    with pytest.raises(ValueError, match="checkpoint"):
        other.load(str(good))


def test_digits_learn_and_survive_half_the_macs():
    """scikit-learn's 8x8 digits (1,797 real images): a small CNN trained from
    scratch natively, soft-pruned by KCP to at least 50% fewer MACs."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images[:, None] / 16.0).astype(np.float32)
    labels = digits.target
    order = np.random.default_rng(0).permutation(len(labels))
    train, val = order[:1400], order[1400:]
    net = kcp.Network(seed=0)
    x = net.input("digit", (1, 1, 8, 8))
    h = net.relu(net.batchnorm(net.conv2d(x, 16, 3, padding=1, bias=False)))
    h = net.relu(net.batchnorm(net.conv2d(h, 32, 3, padding=1, stride=2, bias=False)))
    h = net.relu(net.batchnorm(net.conv2d(h, 32, 3, padding=1, bias=False)))
    net.output(net.linear(net.flatten(net.global_avg_pool(h)), 10))
    history, small = kcp.finetune(net, (images[train], labels[train]), (images[val], labels[val]),
                                  task="classification", epochs=10, batch_size=32, lr=0.1, shift=1, progress=False,
                                  prune=kcp.PruneSchedule(macs_reduction=0.5, ramp_epochs=4))
    assert history[-1]["metric"] > 0.9, history  # accuracy; chance is 0.1
    assert small.cost()[0] <= 0.5 * net.cost()[0]
    predicted = small(images[val])[0].argmax(axis=1)
    assert (predicted == labels[val]).mean() == pytest.approx(history[-1]["metric"])
