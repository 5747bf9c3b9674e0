"""Embedded tasks built from real images that scikit-image ships (no downloads).

- :func:`texture_patches`: texture classification, random crops of real
  texture and photo images, one class per image.
- :func:`texture_mosaics`: semantic segmentation, images tiled into random
  Voronoi cells each filled with one real texture, with per-pixel labels.
- :func:`stereo_pairs`: stereo matching, left/right views of a scene of
  textured planes (a slanted background and elliptic foreground patches)
  with ground-truth disparity and a mask of the pixels visible in both views.

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


def _planes(rng, layers, height, width, max_disparity, slant):
    """Per layer: plane coefficients (a, b, c) of ``d = a + b x + c y`` and a
    left-view support mask; layer 0 is the background, nearer layers follow
    with larger disparities."""
    ys, xs = np.mgrid[0:height, 0:width]
    low = np.sort(rng.uniform(0, max_disparity - 1, layers))
    planes, masks = [], []
    for layer in range(layers):
        b = rng.uniform(-slant, slant) if slant else 0.0
        c = rng.uniform(-slant, slant) if slant else 0.0
        a = low[layer] - min(0.0, b * (width - 1)) - min(0.0, c * (height - 1))
        if not slant:
            a = float(np.floor(low[layer]))
        top = a + max(0.0, b * (width - 1)) + max(0.0, c * (height - 1))
        if top > max_disparity - 1:  # keep d within [0, max_disparity - 1]
            a -= top - (max_disparity - 1)
        planes.append((a, b, c))
        if layer == 0:
            masks.append(np.ones((height, width), bool))
        else:
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            ry, rx = rng.uniform(height / 6, height / 2.5), rng.uniform(width / 8, width / 3)
            masks.append(((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1)
    return planes, masks


def _sample_rows(texture, x):
    """``texture[y, x[y, j]]`` by linear interpolation along each row."""
    x = np.clip(x, 0, texture.shape[1] - 1.0001)
    x0 = np.floor(x).astype(int)
    t = x - x0
    rows = np.arange(texture.shape[0])[:, None]
    return texture[rows, x0] * (1 - t) + texture[rows, x0 + 1] * t


def stereo_pairs(samples, *, height=64, width=128, max_disparity=16, layers=3, slant=0.02, seed=0):
    """Stereo matching: rectified pairs of a scene of textured planes.

    Each scene has a background plane and ``layers - 1`` elliptic foreground
    patches, nearer ones with larger disparities, each a plane
    ``d = a + b x + c y`` in left-view pixels (``slant`` bounds ``|b|, |c|``;
    0 gives fronto-parallel layers with integer disparities) carrying a crop
    of a real image. A surface point at left pixel ``(y, x)`` appears in the
    right view at ``x - d``; each view shows, per pixel, the nearest layer.
    Disparities lie in ``[0, max_disparity - 1]``.

    Returns ``(left, right, disparity, valid)``: images ``[S, 1, H, W]`` in
    [0, 1], the left view's disparity ``[S, 1, H, W]``, and ``valid``, true
    where the left pixel is visible in the right view (not occluded, not out
    of the frame).
    """
    if layers < 1:
        raise ValueError(f"layers: must be at least 1, got {layers}")
    if max_disparity < 2:
        raise ValueError(f"max_disparity: must be at least 2, got {max_disparity}")
    rng = np.random.default_rng(seed)
    sources = texture_images()
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    out = [np.empty((samples, 1, height, width), np.float32) for _ in range(3)]
    valid = np.empty((samples, 1, height, width), bool)
    for n in range(samples):
        planes, masks = _planes(rng, layers, height, width, max_disparity, slant)
        textures = [_crop(sources[rng.integers(len(sources))], (height, width), rng).astype(np.float64)
                    for _ in range(layers)]
        # The left view: the nearest layer covering each pixel.
        left_layer = np.zeros((height, width), int)
        for layer in range(1, layers):
            left_layer[masks[layer]] = layer
        disparity = np.zeros((height, width))
        left = np.zeros((height, width))
        for layer, (a, b, c) in enumerate(planes):
            here = left_layer == layer
            disparity[here] = (a + b * xs + c * ys)[here]
            left[here] = textures[layer][here]
        # The right view: per pixel, the nearest layer whose surface maps there.
        right = np.zeros((height, width))
        right_layer = np.full((height, width), -1)
        for layer, (a, b, c) in enumerate(planes):
            source_x = (xs + a + c * ys) / (1 - b)  # left x with x - d(x, y) = right x
            inside = (source_x >= 0) & (source_x <= width - 1)
            column = np.clip(np.rint(source_x).astype(int), 0, width - 1)
            covered = inside & (left_layer[ys.astype(int), column] == layer)
            right[covered] = _sample_rows(textures[layer], source_x)[covered]
            right_layer[covered] = layer
        # Right pixels no layer reaches (beyond the left frame) show the background texture, unmatched.
        right[right_layer < 0] = textures[0][right_layer < 0]
        target = xs - disparity
        column = np.clip(np.rint(target).astype(int), 0, width - 1)
        seen = (target >= 0) & (right_layer[ys.astype(int), column] == left_layer)
        out[0][n, 0], out[1][n, 0], out[2][n, 0] = left, right, disparity
        valid[n, 0] = seen
    return out[0], out[1], out[2], valid
