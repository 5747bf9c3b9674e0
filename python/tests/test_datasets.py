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
])
def test_bad_arguments_name_themselves(call, name):
    with pytest.raises(ValueError, match=name):
        call()
