"""The embedded tasks: shapes, determinism, labels consistent with the images."""

import numpy as np
import pytest

from kcp import datasets


def test_texture_patches_come_from_their_class_image():
    images, labels = datasets.texture_patches(40, size=16, classes=3, seed=1)
    assert images.shape == (40, 1, 16, 16) and images.dtype == np.float32 and labels.shape == (40,)
    assert set(labels) <= {0, 1, 2} and 0 <= images.min() and images.max() <= 1
    sources = datasets.texture_images(datasets.TEXTURES[:3])
    for image, label in zip(images[:10], labels[:10]):
        source = sources[label]
        windows = np.lib.stride_tricks.sliding_window_view(source, (16, 16))
        assert (windows == image[0]).all(axis=(2, 3)).any(), "the patch is a crop of its class image"


def test_generators_are_deterministic_under_a_seed():
    a, b, c = (datasets.texture_mosaics(3, size=32, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_mosaic_labels_match_the_texture_under_each_pixel():
    images, labels = datasets.texture_mosaics(2, size=40, classes=3, cells=3, seed=2)
    assert images.shape == (2, 1, 40, 40) and labels.shape == (2, 40, 40)
    sources = datasets.texture_images(datasets.TEXTURES[:3])
    for image, label in zip(images, labels):
        for k in np.unique(label):
            # Each class region is cut from one crop of that class's image: find the crop.
            region = label == k
            windows = np.lib.stride_tricks.sliding_window_view(sources[k], (40, 40))
            matches = (windows[:, :, region] == image[0][region]).all(axis=-1)
            assert matches.any(), f"class {k} pixels are not a crop of {datasets.TEXTURES[k]}"
    assert len(np.unique(labels)) > 1


@pytest.mark.parametrize(("call", "name"), [
    (lambda: datasets.texture_patches(2, classes=1), "classes"),
    (lambda: datasets.texture_mosaics(2, classes=9), "classes"),
    (lambda: datasets.texture_mosaics(2, cells=0), "cells"),
    (lambda: datasets.texture_images(["nope"]), "names"),
    (lambda: datasets.texture_patches(2, size=5000), "size"),
    (lambda: datasets.stereo_pairs(1, layers=0), "layers"),
    (lambda: datasets.stereo_pairs(1, max_disparity=1), "max_disparity"),
])
def test_bad_arguments_name_themselves(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_fronto_parallel_stereo_pairs_match_exactly_where_valid():
    left, right, disparity, valid = datasets.stereo_pairs(3, height=32, width=64, max_disparity=8, slant=0, seed=4)
    assert left.shape == right.shape == disparity.shape == valid.shape == (3, 1, 32, 64)
    assert disparity.min() >= 0 and disparity.max() <= 7 and (disparity == np.round(disparity)).all()
    for n in range(3):
        ys, xs = np.nonzero(valid[n, 0])
        d = disparity[n, 0][ys, xs].astype(int)
        np.testing.assert_allclose(left[n, 0][ys, xs], right[n, 0][ys, xs - d], atol=1e-4)
        assert 0.5 < valid[n].mean() < 1  # some pixels are occluded or leave the frame
        assert not valid[n, 0][disparity[n, 0] > np.arange(64)].any()  # x - d < 0 is never valid


def test_slanted_stereo_pairs_match_their_disparity_better_than_a_shifted_one():
    left, right, disparity, valid = datasets.stereo_pairs(2, height=32, width=64, max_disparity=12, slant=0.03, seed=5)
    assert not (disparity == np.round(disparity)).all()
    ys, xs = np.mgrid[0:32, 0:64]

    def mismatch(n, shift):
        target = xs - disparity[n, 0] - shift
        ok = valid[n, 0] & (target >= 0) & (target <= 63)
        x0 = np.floor(target[ok]).astype(int)
        t = target[ok] - x0
        warped = right[n, 0][ys[ok], x0] * (1 - t) + right[n, 0][ys[ok], np.minimum(x0 + 1, 63)] * t
        return np.abs(warped - left[n, 0][ok]).mean()

    for n in range(2):
        assert mismatch(n, 0) < 0.5 * mismatch(n, 2)


def test_the_models_take_the_grayscale_tasks():
    from kcp import models

    left, right, disparity, _ = datasets.stereo_pairs(2, height=32, width=64, seed=1)
    (out,) = models.stereo_net(batch=2, height=32, width=64, channels=1)(left, right)
    assert out.shape == (2, 1, 16, 32)
    images, _ = datasets.texture_mosaics(2, size=32, seed=1)
    assert models.unet(batch=2, image_size=32, channels=1, classes=4)(images)[0].shape == (2, 4, 32, 32)
    patches, _ = datasets.texture_patches(2, size=32, seed=1)
    assert models.resnet(8, batch=2, channels=1)(patches)[0].shape == (2, 10)
