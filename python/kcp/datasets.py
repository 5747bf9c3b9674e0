"""Embedded tasks built from real images that scikit-image ships (no downloads).

- :func:`texture_patches`: texture classification, random crops of real
  texture and photo images, one class per image.
- :func:`texture_mosaics`: semantic segmentation, images tiled into random
  Voronoi cells each filled with one real texture, with per-pixel labels.

Every generator is deterministic for a seed. Images are float32 in [0, 1],
``[S, 1, H, W]``; labels are int64.
"""

import numpy as np

#: The images used as classes, in label order: three textures and five
#: photographs whose local statistics differ (all grayscale, 512x512 or so).
TEXTURES = ("brick", "grass", "gravel", "moon", "camera", "coins", "page", "text")


def texture_images(names=TEXTURES):
    """The named scikit-image images as float32 arrays in [0, 1]."""
    from skimage import data

    images = []
    for name in names:
        if name not in TEXTURES:
            raise ValueError(f"names: {name!r} is not one of {', '.join(TEXTURES)}")
        images.append(np.asarray(getattr(data, name)(), dtype=np.float32) / 255.0)
    return images


def _crop(image, size, rng):
    """A random ``size x size`` crop (``size`` may be a pair)."""
    height, width = (size, size) if np.isscalar(size) else size
    if image.shape[0] < height or image.shape[1] < width:
        raise ValueError(f"size: {size} exceeds an image of {image.shape}")
    y = rng.integers(0, image.shape[0] - height + 1)
    x = rng.integers(0, image.shape[1] - width + 1)
    return image[y:y + height, x:x + width]


def texture_patches(samples, *, size=32, classes=len(TEXTURES), seed=0):
    """Texture classification: ``samples`` random ``size x size`` crops.

    Returns ``(images [S, 1, size, size], labels [S])``; label ``k`` means
    the crop comes from ``TEXTURES[k]`` (``classes`` first ones used).
    """
    if not 2 <= classes <= len(TEXTURES):
        raise ValueError(f"classes: must be between 2 and {len(TEXTURES)}, got {classes}")
    rng = np.random.default_rng(seed)
    sources = texture_images(TEXTURES[:classes])
    labels = rng.integers(0, classes, samples)
    images = np.stack([_crop(sources[k], size, rng) for k in labels])[:, None]
    return images.astype(np.float32), labels.astype(np.int64)


def texture_mosaics(samples, *, size=64, classes=4, cells=6, seed=0):
    """Semantic segmentation: Voronoi mosaics of real textures.

    Each image is split into ``cells`` Voronoi regions around random seed
    points; each region gets a random class, and the regions of class ``k``
    show the matching pixels of one random crop of image ``k``.

    Returns ``(images [S, 1, size, size], labels [S, size, size])``.
    """
    if not 2 <= classes <= len(TEXTURES):
        raise ValueError(f"classes: must be between 2 and {len(TEXTURES)}, got {classes}")
    if cells < 1:
        raise ValueError(f"cells: must be at least 1, got {cells}")
    rng = np.random.default_rng(seed)
    sources = texture_images(TEXTURES[:classes])
    ys, xs = np.mgrid[0:size, 0:size]
    images = np.empty((samples, 1, size, size), np.float32)
    labels = np.empty((samples, size, size), np.int64)
    for n in range(samples):
        points = rng.uniform(0, size, (cells, 2))
        nearest = np.argmin((ys[None] - points[:, 0, None, None]) ** 2 + (xs[None] - points[:, 1, None, None]) ** 2,
                            axis=0)
        cell_class = rng.integers(0, classes, cells)
        labels[n] = cell_class[nearest]
        for k in np.unique(cell_class):
            region = labels[n] == k
            images[n, 0][region] = _crop(sources[k], size, rng)[region]
    return images, labels
