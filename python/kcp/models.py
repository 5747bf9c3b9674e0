"""Reference networks for dense labeling and classification, built natively.

- :func:`resnet`: CIFAR-style ResNet (He et al., "Deep Residual Learning for
  Image Recognition", CVPR 2016, section 4.2), depth ``6n + 2``.
- :func:`unet`: a small U-Net-style segmentation network (Ronneberger et al.,
  MICCAI 2015): strided-conv encoder, bilinear-upsampling decoder, skip concats.
- :func:`stereo_net`: a correlation stereo network in the spirit of DispNetC
  (Mayer et al., CVPR 2016) with GC-Net's soft-argmin (Kendall et al., ICCV
  2017): Siamese features, a correlation cost volume, 2-D aggregation.
"""

from __future__ import annotations

from collections.abc import Sequence

from .network import Network, Value


def _conv_bn_relu(net: Network, x: Value, width: int, stride: int = 1, relu: bool = True,
                  name: str | None = None) -> Value:
    y = net.batchnorm(net.conv2d(x, width, 3, stride=stride, padding=1, bias=False, name=name))
    return net.relu(y) if relu else y


def resnet(depth: int = 20, *, classes: int = 10, batch: int = 1, image_size: int = 32, width: int = 16,
           channels: int = 3, seed: int = 0) -> Network:
    """CIFAR ResNet of ``depth = 6n + 2`` layers: three stages of ``n`` basic
    blocks at widths ``width, 2 width, 4 width``; downsampling blocks use a
    strided 1x1 projection shortcut. Input ``[batch, channels, image_size, image_size]``."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth: must be 6n + 2 with n >= 1 (20, 32, 44, 56, ...), got {depth}")
    blocks = (depth - 2) // 6
    net = Network(seed=seed)
    x = _conv_bn_relu(net, net.input("image", (batch, channels, image_size, image_size)), width, name="stem")
    for stage, stage_width in enumerate((width, 2 * width, 4 * width)):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            prefix = f"stage{stage + 1}.block{block + 1}"
            y = _conv_bn_relu(net, x, stage_width, stride, name=f"{prefix}.conv1")
            y = _conv_bn_relu(net, y, stage_width, relu=False, name=f"{prefix}.conv2")
            if stride != 1:
                x = net.batchnorm(net.conv2d(x, stage_width, 1, stride=stride, bias=False, name=f"{prefix}.shortcut"))
            x = net.relu(net.add(y, x))
    net.output(net.linear(net.flatten(net.global_avg_pool(x)), classes, name="classifier"))
    return net


def unet(*, classes: int = 5, batch: int = 1, image_size: int = 64, widths: Sequence[int] = (16, 32, 64),
         channels: int = 3, seed: int = 0) -> Network:
    """A U-Net with ``len(widths)`` levels: each level two 3x3 conv-bn-relu,
    downsampling by a strided conv, upsampling bilinearly followed by a concat
    with the encoder's features. Input ``[batch, channels, H, W]``; output
    ``[batch, classes, H, W]`` logits."""
    net = Network(seed=seed)
    x = net.input("image", (batch, channels, image_size, image_size))
    skips = []
    for level, width in enumerate(widths):
        stride = 1 if level == 0 else 2
        x = _conv_bn_relu(net, x, width, stride, name=f"down{level + 1}.conv1")
        x = _conv_bn_relu(net, x, width, name=f"down{level + 1}.conv2")
        skips.append(x)
    for level in range(len(widths) - 2, -1, -1):
        x = net.concat(net.upsample(x, 2, "bilinear"), skips[level])
        x = _conv_bn_relu(net, x, widths[level], name=f"up{level + 1}.conv1")
        x = _conv_bn_relu(net, x, widths[level], name=f"up{level + 1}.conv2")
    net.output(net.conv2d(x, classes, 1, name="classifier"))
    return net


def stereo_net(*, max_disparity: int = 16, batch: int = 1, height: int = 32, width: int = 64, features: int = 32,
               channels: int = 3, seed: int = 0) -> Network:
    """Siamese features at half resolution (shared weights), a correlation
    cost volume over ``max_disparity`` half-resolution disparities, three 3x3
    aggregation convs and soft-argmin. Inputs ``[batch, channels, H, W]``;
    output ``[batch, 1, H/2, W/2]`` disparities in half-resolution pixels."""
    net = Network(seed=seed)
    left = net.input("left", (batch, channels, height, width))
    right = net.input("right", (batch, channels, height, width))
    branches = []
    for side, x in (("left", left), ("right", right)):
        for i, (channels, stride) in enumerate(((features, 2), (features, 1), (features, 1))):
            layer = f"feature{i + 1}"
            share = layer if side == "right" else None
            x = net.relu(net.conv2d(x, channels, 3, stride=stride, padding=1, share=share,
                                    name=None if share else layer))
        branches.append(x)
    left, right = branches
    cost = net.correlation(left, right, max_disparity)
    x = net.relu(net.batchnorm(net.conv2d(cost, 2 * max_disparity, 3, padding=1, bias=False, name="aggregate1")))
    x = net.relu(net.batchnorm(net.conv2d(x, 2 * max_disparity, 3, padding=1, bias=False, name="aggregate2")))
    x = net.conv2d(x, max_disparity, 3, padding=1, name="aggregate3")
    net.output(net.soft_argmin(x))
    return net
