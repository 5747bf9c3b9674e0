"""Reference networks for dense labeling and classification, built natively.

- :func:`resnet`: CIFAR-style ResNet (He et al., "Deep Residual Learning for
  Image Recognition", CVPR 2016, section 4.2), depth ``6n + 2``.
- :func:`unet`: a small U-Net-style segmentation network (Ronneberger et al.,
  MICCAI 2015): strided-conv encoder, bilinear-upsampling decoder, skip concats.
- :func:`stereo_net`: a correlation stereo network in the spirit of DispNetC
  (Mayer et al., CVPR 2016) with GC-Net's soft-argmin (Kendall et al., ICCV
  2017): Siamese features, a correlation cost volume, 2-D aggregation.
- :func:`psmnet`: PSMNet (Chang and Chen, "Pyramid Stereo Matching
  Network", CVPR 2018): dilated residual features with spatial pyramid
  pooling, a concatenation volume at 1/4 resolution, a stacked 3-D
  hourglass, trilinear upsampling, disparity regression.
- :func:`gwcnet`: GwcNet (Guo et al., "Group-wise Correlation Stereo
  Network", CVPR 2019): a group-wise correlation volume, optionally joined
  by a small concatenation volume (GwcNet-gc), the same 3-D aggregation.
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


def _shared(name, share):
    """Builder arguments naming a layer of the left branch, or reusing it on the right."""
    return {"share": name} if share else {"name": name}


def _features(net, image, width, share):
    """The Siamese trunk of PSMNet and GwcNet at 1/4 resolution: a strided
    conv-bn-relu, a residual block of stride 2 and a residual block of
    dilation 2 (each two 3x3 conv-bn, a 1x1 projection where the shape
    changes); returns the outputs of the last two blocks. ``share``: reuse the
    left branch's convs (batchnorms are per branch, as their statistics are)."""
    def conv(x, channels, kernel=3, stride=1, dilation=1, relu=True, name=None):
        pad = dilation * (kernel // 2)
        y = net.conv2d(x, channels, kernel, stride=stride, padding=pad, dilation=dilation, bias=False,
                       **_shared(name, share))
        y = net.batchnorm(y)
        return net.relu(y) if relu else y

    x = conv(image, width, stride=2, name="first")
    blocks = []
    for name, stride, dilation in (("layer1", 2, 1), ("layer2", 1, 2)):
        y = conv(conv(x, width, stride=stride, dilation=dilation, name=f"{name}.conv1"), width, dilation=dilation,
                 relu=False, name=f"{name}.conv2")
        shortcut = conv(x, width, 1, stride=stride, relu=False, name=f"{name}.shortcut") if stride != 1 else x
        x = net.relu(net.add(y, shortcut))
        blocks.append(x)
    return blocks


def _conv3d_bn(net, x, channels, stride=1, relu=True):
    y = net.batchnorm(net.conv3d(x, channels, 3, stride=stride, padding=1, bias=False))
    return net.relu(y) if relu else y


def _hourglass(net, x, width):
    """PSMNet's 3-D hourglass: two strided conv3d-bn stages down to 1/4 of the
    volume, two transposed conv3d-bn stages back up, with skip additions."""
    down1 = _conv3d_bn(net, _conv3d_bn(net, x, 2 * width, stride=2), 2 * width)
    down2 = _conv3d_bn(net, _conv3d_bn(net, down1, 2 * width, stride=2), 2 * width)
    up1 = net.relu(net.add(net.batchnorm(net.conv_transpose3d(down2, 2 * width, 3, stride=2, padding=1,
                                                              output_padding=1, bias=False)), down1))
    up0 = net.batchnorm(net.conv_transpose3d(up1, width, 3, stride=2, padding=1, output_padding=1, bias=False))
    return net.relu(net.add(up0, x))


def _aggregate_and_regress(net, volume, width, hourglasses, max_disparity, height, image_width):
    """3-D aggregation of a 1/4-resolution volume: two conv3d-bn-relu, a
    residual pair, ``hourglasses`` stacked hourglasses (each adding the
    residual's output back), a classifier to one channel, trilinear
    upsampling to ``[max_disparity, H, W]`` and PSMNet's regression
    ``sum_d d softmax_d(cost)``; output ``[N, 1, H, W]`` in pixels."""
    cost = _conv3d_bn(net, _conv3d_bn(net, volume, width), width)
    cost = net.add(_conv3d_bn(net, _conv3d_bn(net, cost, width), width, relu=False), cost)
    x = cost
    for _ in range(hourglasses):
        x = _hourglass(net, x, width)
    x = net.conv3d(_conv3d_bn(net, x, width), 1, 3, padding=1, bias=False, name="classifier")
    x = net.resize(x, (max_disparity, height, image_width), "trilinear")
    return net.soft_argmin(x, sign=1)


def _stereo_inputs(net, batch, channels, height, width, max_disparity):
    if height % 16 or width % 16 or max_disparity % 16:
        raise ValueError(f"height, width and max_disparity must be multiples of 16 (the 3-D hourglass halves the "
                         f"1/4-resolution volume twice), got {height}, {width}, {max_disparity}")
    return net.input("left", (batch, channels, height, width)), net.input("right", (batch, channels, height, width))


#: :func:`psmnet`'s widths as Chang and Chen publish them: a 32-channel extractor, a four-level pyramid
#: (their 64, 32, 16 and 8 pixel pools of a 256 x 512 crop), three hourglasses over 32 channels.
PSMNET_PUBLISHED = dict(features=32, volume_width=32, hourglasses=3, pyramid=(1, 2, 4, 8))


def psmnet(*, max_disparity=16, batch=1, height=64, width=128, features=16, volume_width=8, hourglasses=1,
           pyramid=(1, 2, 4), channels=3, seed=0):
    """PSMNet with small widths: Siamese features (:func:`_features`, width
    ``features``) and a spatial pyramid: average pools of the 1/4-resolution
    map to ``b`` rows (and as many columns as its aspect gives) for each ``b``
    of ``pyramid`` (PSMNet's 64, 32, 16, 8 pixel pools of a 64 x 128 map are
    ``b`` = 1, 2, 4, 8), a 1x1 conv-bn-relu each, bilinear
    upsampling back, concatenated with both blocks' features and fused by a
    3x3 conv-bn-relu and a 1x1 conv to ``features`` channels. The
    concatenation volume (``[N, 2 features, D/4, H/4, W/4]``) is aggregated
    by ``hourglasses`` 3-D hourglasses of width ``volume_width`` and
    regressed at full resolution. Inputs ``[batch, channels, H, W]``; output
    ``[batch, 1, H, W]`` disparities in pixels."""
    net = Network(seed=seed)
    images = _stereo_inputs(net, batch, channels, height, width, max_disparity)
    branches = []
    for share, image in enumerate(images):
        raw, deep = _features(net, image, features, share)
        height4, width4 = deep.shape[2:]
        pooled = []
        for bins in pyramid:
            branch = net.adaptive_pool(deep, (bins, max(1, bins * width4 // height4)))
            branch = net.relu(net.batchnorm(net.conv2d(branch, features // 2, 1, bias=False,
                                                       **_shared(f"pyramid{bins}", share))))
            pooled.append(net.resize(branch, (height4, width4), "bilinear"))
        x = net.concat(raw, deep, *pooled)
        x = net.relu(net.batchnorm(net.conv2d(x, features, 3, padding=1, bias=False, **_shared("fuse", share))))
        branches.append(net.conv2d(x, features, 1, bias=False, **_shared("last", share)))
    volume = net.cost_volume(*branches, max_disparity // 4, "concatenation", name="volume")
    net.output(_aggregate_and_regress(net, volume, volume_width, hourglasses, max_disparity, height, width))
    return net


def gwcnet(*, max_disparity=16, batch=1, height=64, width=128, features=16, groups=8, concat_features=4,
           volume_width=8, hourglasses=1, channels=3, seed=0):
    """GwcNet with small widths: the Siamese features of both blocks
    concatenated (``2 features`` channels) give a group-wise correlation
    volume of ``groups`` groups; with ``concat_features > 0`` (GwcNet-gc) a
    3x3 conv-bn-relu and a 1x1 conv reduce them to ``concat_features``
    channels whose concatenation volume joins it. The same 3-D aggregation
    and full-resolution regression as :func:`psmnet`."""
    net = Network(seed=seed)
    images = _stereo_inputs(net, batch, channels, height, width, max_disparity)
    correlated, concatenated = [], []
    for share, image in enumerate(images):
        x = net.concat(*_features(net, image, features, share))
        correlated.append(x)
        if concat_features:
            y = net.conv2d(x, 2 * features, 3, padding=1, bias=False, **_shared("concat1", share))
            y = net.relu(net.batchnorm(y))
            concatenated.append(net.conv2d(y, concat_features, 1, bias=False, **_shared("concat2", share)))
    volume = net.cost_volume(*correlated, max_disparity // 4, "group_correlation", groups=groups, name="gwc_volume")
    if concat_features:
        volume = net.concat(volume, net.cost_volume(*concatenated, max_disparity // 4, name="concat_volume"))
    net.output(_aggregate_and_regress(net, volume, volume_width, hourglasses, max_disparity, height, width))
    return net
