"""The single-layer demo: KCP finds the input channels a layer can lose.

A 3x3 conv layer ``[64, 32, 3, 3]`` is built so that a known half of its input
channels are redundant: their kernel clusters are the layer's common cluster
plus small noise, while the other half deviate strongly. KCP scores every
channel by the distance of its kernel cluster to the center; the redundant
channels sit next to the center and must be the ones pruned. The layer is
then compacted and checked against the masked layer on a real image.
"""

import time

import numpy as np

from . import apply_mask, cluster, compact


def redundant_layer(rng, outputs=64, inputs=32, redundant=16):
    """A conv weight whose channels ``redundant_set`` are near the common cluster."""
    common = rng.standard_normal((outputs, 1, 3, 3)).astype(np.float32)
    weight = np.repeat(common, inputs, axis=1)
    redundant_set = np.sort(rng.choice(inputs, redundant, replace=False))
    scale = np.full(inputs, 1.0, dtype=np.float32)
    scale[redundant_set] = 0.05
    weight += scale[None, :, None, None] * rng.standard_normal(weight.shape).astype(np.float32)
    return weight, redundant_set


def conv2d_same(x, weight):
    """3x3 'same' convolution of ``x [I, H, W]`` in NumPy (for the check only)."""
    _, height, width = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros((weight.shape[0], height, width), dtype=np.float64)
    for dy in range(3):
        for dx in range(3):
            patch = padded[:, dy:dy + height, dx:dx + width]
            out += np.einsum("oi,ihw->ohw", weight[:, :, dy, dx], patch)
    return out


def image_features(channels, rng):
    """``channels`` feature maps made from a real photo (scikit-image's camera)."""
    from skimage import data

    image = data.camera()[::8, ::8].astype(np.float32) / 255.0
    mix = rng.standard_normal(channels).astype(np.float32)
    return np.stack([np.roll(image, k, axis=k % 2) * mix[k] for k in range(channels)])


def run(ratio=0.5, seed=0):
    rng = np.random.default_rng(seed)
    weight, redundant = redundant_layer(rng)
    print(f"layer: conv weight {list(weight.shape)}, {len(redundant)} of {weight.shape[1]} input channels redundant")

    start = time.perf_counter()
    result = cluster(weight, ratio)
    elapsed = time.perf_counter() - start
    print(f"kcp.cluster(weight, {ratio}): {len(result.pruned)} channels pruned in {elapsed * 1e3:.2f} ms")
    order = np.argsort(result.scores)
    print("  lowest scores s_i = d_i / mean(d):",
          ", ".join(f"ch{i}={result.scores[i]:.3f}" for i in order[:6]), "...")
    found = np.intersect1d(result.pruned, redundant).size
    print(f"  pruned channels that were redundant: {found} of {len(result.pruned)}")

    small = compact(weight, keep_in=result.keep)
    masked = apply_mask(weight.copy(), result.keep, axis="in")
    features = image_features(weight.shape[1], rng)
    dense_out = conv2d_same(features, masked)
    compact_out = conv2d_same(features[result.keep], small)
    difference = np.abs(dense_out - compact_out).max() / np.abs(dense_out).max()
    print(f"kcp.compact: weight {list(weight.shape)} -> {list(small.shape)}, "
          f"MACs of the layer x{small.size / weight.size:.2f}")
    print(f"  compact layer on the kept channels vs masked layer on all: max relative difference {difference:.1e}")
    ok = found == min(len(result.pruned), len(redundant)) and difference < 1e-5
    print("demo:", "OK" if ok else "FAILED")
    return 0 if ok else 1
