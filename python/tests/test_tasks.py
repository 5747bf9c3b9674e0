"""The embedded dense-labeling tasks: data, models and metrics, the metrics
checked by hand and against the engine's own validation metric."""

import numpy as np
import pytest

import kcp
from kcp.experiments.tasks import Task, disparity_scores, segmentation_scores


def test_segmentation_scores_by_hand():
    truth = np.array([[0, 0, 1, 1]])
    predicted = np.array([[0, 1, 1, 1]])
    # class 0: 1 / 2, class 1: 2 / 3; class 2 occurs in neither map.
    scores = segmentation_scores(predicted, truth, classes=3)
    assert scores["mIoU"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert scores["pixel_accuracy"] == pytest.approx(3 / 4)


def test_disparity_scores_skip_invalid_pixels():
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([1.5, 6.0, 3.0, 40.0])
    valid = np.array([True, True, True, False])
    scores = disparity_scores(predicted, truth, valid)
    assert scores["EPE"] == pytest.approx((0.5 + 4.0 + 0.0) / 3)
    assert scores["bad-3px"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("name", ["segmentation", "stereo", "classification"])
def test_splits_fit_the_model(name):
    task = Task(name, size=16, train=4, val=2)
    net = task.model()
    for which, samples in (("train", 4), ("val", 2)):
        split = task.split(which)
        assert [x.shape for x in split.inputs] == [(samples, *v.shape[1:]) for v in net.inputs]
        assert len(split.truth) == samples
        output = net(*split.inputs)[0]
        if name == "segmentation":
            assert split.targets.shape == (samples, 16, 16) and split.mask is None
        elif name == "classification":
            assert split.targets.shape == (samples,) and output.shape == (samples, 8) and split.mask is None
        else:
            assert split.targets.shape == output.shape == split.mask.shape
            # Targets are the full-resolution disparities at every other pixel, in half-resolution pixels.
            assert np.array_equal(split.targets, split.truth[:, :, ::2, ::2] / 2)
            assert split.truth.shape == split.valid.shape == (samples, 1, 16, 32)
    assert not np.array_equal(task.split("train").inputs[0][:2], task.split("val").inputs[0])


@pytest.mark.parametrize("name, metric", [("segmentation", "mIoU"), ("classification", "accuracy")])
def test_metric_matches_the_engine(name, metric):
    task = Task(name, size=16, train=32, val=16, epochs=2)
    train, val = task.split("train"), task.split("val")
    run = task.training_run(task.model(), train, val)
    history = run.run(progress=False)
    assert task.evaluate(run.network, val)[metric] == pytest.approx(history[-1]["metric"], abs=1e-12)


def test_stereo_metric_matches_the_engine_at_half_resolution():
    task = Task("stereo", size=16, train=16, val=8, epochs=2)
    train, val = task.split("train"), task.split("val")
    run = task.training_run(task.model(), train, val)
    history = run.run(progress=False)
    half = np.concatenate([run.network(*(x[i:i + 3] for x in val.inputs))[0] for i in range(0, 8, 3)])
    assert disparity_scores(half, val.targets, val.mask)["EPE"] == pytest.approx(history[-1]["metric"], rel=1e-5)
    # Full resolution: each half-resolution prediction covers 2x2 pixels, doubled.
    full = task.predict(run.network, val)
    np.testing.assert_allclose(full[:, :, ::2, 1::2], 2 * half, rtol=1e-5)
    np.testing.assert_allclose(full[:, :, 1::2, ::2], 2 * half, rtol=1e-5)


@pytest.mark.parametrize("architecture", ["psmnet", "gwcnet"])
def test_full_resolution_stereo_networks_train_on_full_resolution_disparities(architecture):
    task = Task("stereo", size=16, train=8, val=4, epochs=1, architecture=architecture)
    train, val = task.split("train"), task.split("val")
    assert task.output_stride == 1
    np.testing.assert_array_equal(val.targets, val.truth)
    net = task.model()
    assert net.outputs[0].shape == (1, 1, 16, 32)
    run = task.training_run(net, train, val)
    history = run.run(progress=False)
    predicted = task.predict(run.network, val)
    assert predicted.shape == val.truth.shape
    assert disparity_scores(predicted, val.truth, val.valid)["EPE"] == pytest.approx(history[-1]["metric"], rel=1e-5)


@pytest.mark.parametrize("settings, message", [({"name": "classify"}, "task"),
                                               ({"name": "stereo", "size": 20}, "size"),
                                               ({"name": "segmentation", "size": 8}, "size"),
                                               ({"name": "segmentation", "architecture": "psmnet"}, "model"),
                                               ({"name": "stereo", "architecture": "dispnet"}, "model"),
                                               ({"name": "stereo", "size": 24, "architecture": "gwcnet"}, "size")])
def test_bad_task_settings_name_the_argument(settings, message):
    with pytest.raises(ValueError, match=message):
        Task(**settings)


def test_fine_tuning_continues_at_half_the_rate():
    task = Task("segmentation", size=16, train=8, val=4, epochs=1)
    split = task.split("train")
    scratch = task.training_run(task.model(), split, split).run(progress=False)
    unpruned = task.fine_tuning_run(task.model(), split, split).run(progress=False)
    pruned = task.fine_tuning_run(task.model(), split, split, prune=kcp.PruneSchedule(ratio=0.5)).run(progress=False)
    # One step per epoch with a cosine schedule: the epoch's last rate is the peak.
    assert unpruned[0]["lr"] == pruned[0]["lr"] == pytest.approx(scratch[0]["lr"] / 2)
    assert pruned[0]["macs"] < unpruned[0]["macs"] == scratch[0]["macs"]
