"""PyTorch modules of awkward shapes for the kcp.torch tests: the zoo of
test_network_zoo.py written as ``torch.nn`` code, a torchvision-style
ResNet-18, and networks with ops kcp cannot slice."""

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, kernel=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PlainChain(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 8), conv_bn(8, 16, stride=2), nn.MaxPool2d(2), conv_bn(16, 16),
                                      nn.LeakyReLU(0.1), nn.AvgPool2d(2))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 5))

    def forward(self, x):
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block: identity or strided 1x1 projection shortcut, ``out += identity``."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision.models.resnet.ResNet with basic blocks (``ResNet([2, 2, 2, 2])`` is ResNet-18)."""

    def __init__(self, layers, num_classes=1000, width=64):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)

    def _make_layer(self, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(num_classes=1000):
    return ResNet([2, 2, 2, 2], num_classes)


class ResNetBlocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.block1 = BasicBlock(8, 8)
        self.block2 = BasicBlock(8, 16, 2, nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16)))
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(x.mean((2, 3)))


class ConcatSkip(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.c = nn.Conv2d(8, 12, 1)
        self.out = nn.Conv2d(28, 4, 3, padding=1)

    def forward(self, x):
        a = F.relu(self.a(x))
        b = torch.relu(self.b(a))
        c = self.c(b).relu()
        return self.out(torch.cat([a, b, c], dim=1))


class UNet(nn.Module):
    """Strided-conv encoder, bilinear upsampling decoder, skip concats."""

    def __init__(self, classes=3):
        super().__init__()
        self.down1 = conv_bn(3, 8)
        self.down2 = conv_bn(8, 16, stride=2)
        self.bottom = conv_bn(16, 16, stride=2)
        self.up2 = conv_bn(32, 16)
        self.up1 = conv_bn(24, 8)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.classifier = nn.Conv2d(8, classes, 1)

    def forward(self, x):
        e1 = self.down1(x)
        e2 = self.down2(e1)
        bottom = self.bottom(e2)
        d2 = self.up2(torch.cat([F.interpolate(bottom, scale_factor=2, mode="bilinear", align_corners=False), e2], 1))
        d1 = self.up1(torch.cat([self.upsample(d2), e1], 1))
        return self.classifier(d1)


class DepthwiseSeparable(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.depthwise = conv_bn(8, 8, groups=8)
        self.pointwise = conv_bn(8, 16, kernel=1)
        self.depthwise2 = nn.Conv2d(16, 32, 3, padding=1, groups=16)  # channel multiplier 2
        self.out = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        return self.out(F.relu(self.depthwise2(self.pointwise(self.depthwise(self.stem(x))))))


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(4, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.middle = nn.Conv2d(8, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        x = F.relu(self.grouped(F.relu(self.stem(x))))
        return self.out(F.relu(self.middle(x)))


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(conv_bn(3, 8), conv_bn(8, 8))
        self.segmentation = nn.Conv2d(8, 3, 1)
        self.depth = nn.Conv2d(8, 1, 1)

    def forward(self, x):
        features = self.trunk(x)
        return {"segmentation": self.segmentation(features), "depth": torch.sigmoid(self.depth(features))}


class Siamese(nn.Module):
    """One feature extractor applied to two inputs (a reused submodule)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(16, 2, 3, padding=1)

    def forward(self, left, right):
        return self.head(torch.cat([self.features(left), self.features(right)], 1))


class Functional(nn.Module):
    """Parameters used through torch.nn.functional, and a ``view`` flatten."""

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(8, 3, 3, 3) * 0.3)
        self.b1 = nn.Parameter(torch.randn(8) * 0.1)
        self.w2 = nn.Parameter(torch.randn(16, 8, 3, 3) * 0.2)
        self.fc = nn.Linear(16 * 4 * 4, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(F.conv2d(x, self.w1, self.b1, padding=1)), 2)
        x = F.relu(F.conv2d(x, self.w2, padding=1))
        x = F.adaptive_avg_pool2d(x, 4)
        return self.fc(x.view(x.size(0), -1))


class Opaque(nn.Module):
    """LocalResponseNorm (it mixes neighbouring channels), which kcp cannot slice, beside a
    squeeze-excitation (broadcast) multiply, which it can."""

    def __init__(self):
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.norm_conv = nn.Conv2d(8, 8, 3, padding=1)
        self.norm = nn.LocalResponseNorm(3)
        self.se_conv = nn.Conv2d(8, 16, 3, padding=1)
        self.se_fc = nn.Conv2d(16, 16, 1)
        self.body = conv_bn(16, 16)
        self.out = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        x = F.relu(self.norm(self.norm_conv(self.stem(x))))
        x = F.relu(self.se_conv(x))
        x = x * torch.sigmoid(self.se_fc(F.adaptive_avg_pool2d(x, 1)))
        return self.out(self.body(x))


class LayerNorm2d(nn.LayerNorm):
    """torchvision's ConvNeXt LayerNorm2d: a LayerNorm over the channels of an NCHW tensor."""

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt's block: depthwise 7x7, then LayerNorm, an MLP and a layer scale on channels-last features."""

    def __init__(self, width):
        super().__init__()
        self.depthwise = nn.Conv2d(width, width, 7, padding=3, groups=width)
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)
        self.scale = nn.Parameter(torch.rand(width, 1, 1) + 0.5)

    def forward(self, x):
        y = self.norm(self.depthwise(x).permute(0, 2, 3, 1))
        y = self.down(F.gelu(self.up(y))).permute(0, 3, 1, 2)
        return x + self.scale * y


class Normalized(nn.Module):
    """LayerNorm2d, two ConvNeXt blocks, GroupNorm (pruned in whole groups), an affine InstanceNorm and PReLU."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.stem_norm = LayerNorm2d(16)
        self.blocks = nn.Sequential(ConvNeXtBlock(16), ConvNeXtBlock(16))
        self.conv = nn.Conv2d(16, 24, 3, padding=1)
        self.group_norm = nn.GroupNorm(4, 24)
        self.conv2 = nn.Conv2d(24, 8, 3, padding=1)
        self.instance_norm = nn.InstanceNorm2d(8, affine=True)
        self.prelu = nn.PReLU(8)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = self.blocks(self.stem_norm(self.stem(x)))
        x = F.relu(self.group_norm(self.conv(x)))
        return self.head(self.prelu(self.instance_norm(self.conv2(x))))


class SpatialOps(nn.Module):
    """Ops along H and W that kcp follows by rule and cannot run: U-Net's padding of an upsampled map to its
    skip's size, a crop, a flip, a concatenation along W, and a keepdim max over H and W as a gate."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.skip = nn.Conv2d(3, 8, 3, padding=1)
        self.mix = nn.Conv2d(8, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        skip = F.relu(self.skip(x))
        up = F.interpolate(F.relu(self.down(x)), scale_factor=2)
        up = F.pad(up, [0, skip.shape[3] - up.shape[3], 0, skip.shape[2] - up.shape[2]])
        y = F.relu(self.mix(skip + up))[:, :, 1:-1, 1:-1]
        y = torch.cat([y, y.flip(dims=[3])], dim=3)
        y = y * torch.sigmoid(torch.amax(y, dim=(2, 3), keepdim=True))
        return self.out(y)


# name -> (constructor, example input shapes)
class Decoder(nn.Module):
    """A U-Net decoder upsampling by ConvTranspose2d: stride 2 with output
    padding, then past skip concats a grouped one and a depthwise one."""

    def __init__(self, classes=3):
        super().__init__()
        self.down1 = conv_bn(3, 8)
        self.down2 = conv_bn(8, 16, stride=2)
        self.bottom = conv_bn(16, 16, stride=2)
        self.up2 = nn.ConvTranspose2d(16, 12, 3, stride=2, padding=1, output_padding=1)
        self.up1 = nn.ConvTranspose2d(28, 8, 4, stride=2, padding=1, groups=4, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.depthwise = nn.ConvTranspose2d(16, 32, 3, padding=1, groups=16)
        self.classifier = nn.Conv2d(32, classes, 1)

    def forward(self, x):
        e1 = self.down1(x)
        e2 = self.down2(e1)
        d2 = F.relu(self.up2(self.bottom(e2)))
        d1 = F.relu(self.bn1(self.up1(torch.cat([d2, e2], 1))))
        return self.classifier(F.relu(self.depthwise(torch.cat([d1, e1], 1))))


def conv_bn3d(cin, cout, stride=1):
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class Hourglass3d(nn.Module):
    """A PSMNet-style 3-D aggregation of a [N, C, D, H, W] cost volume: a conv3d-bn-relu stem,
    a strided encoder, ConvTranspose3d back up with residual adds, pooled context (MaxPool3d,
    F.avg_pool3d) upsampled trilinearly, and a regression head read by F.interpolate."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(conv_bn3d(4, 8), conv_bn3d(8, 8))
        self.down1 = conv_bn3d(8, 12, stride=2)
        self.down2 = nn.Sequential(nn.Conv3d(12, 12, (1, 3, 3), padding=(0, 1, 1), groups=3), nn.BatchNorm3d(12))
        self.up = nn.ConvTranspose3d(12, 8, 3, stride=2, padding=1, output_padding=1, bias=False)
        self.bn_up = nn.BatchNorm3d(8)
        self.pool = nn.MaxPool3d(2)
        self.context = nn.Conv3d(8, 8, 3, padding=1)
        self.head = nn.Conv3d(8, 1, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        down = F.relu(self.down2(self.down1(x)) + self.down1(x))
        y = F.relu(self.bn_up(self.up(down)) + x)
        context = F.avg_pool3d(self.context(self.pool(y)), 3, stride=1, padding=1)
        y = y + F.interpolate(context, scale_factor=2, mode="trilinear", align_corners=False)
        return F.interpolate(self.head(y), size=(8, 12, 14), mode="trilinear", align_corners=True)


ZOO = {
    "plain_chain": (PlainChain, [(2, 3, 16, 16)]),
    "resnet_blocks": (ResNetBlocks, [(2, 3, 16, 16)]),
    "concat_skip": (ConcatSkip, [(2, 3, 8, 8)]),
    "unet": (UNet, [(2, 3, 16, 16)]),
    "decoder": (Decoder, [(2, 3, 16, 16)]),
    "depthwise_separable": (DepthwiseSeparable, [(2, 3, 10, 10)]),
    "grouped": (Grouped, [(1, 4, 8, 8)]),
    "two_outputs": (TwoOutputs, [(2, 3, 8, 8)]),
    "siamese": (Siamese, [(1, 3, 8, 16), (1, 3, 8, 16)]),
    "functional": (Functional, [(2, 3, 16, 16)]),
    "opaque": (Opaque, [(2, 3, 8, 8)]),
    "normalized": (Normalized, [(2, 3, 12, 12)]),
    "spatial_ops": (SpatialOps, [(2, 3, 9, 9)]),
    "resnet18": (lambda: resnet18(num_classes=10), [(1, 3, 64, 64)]),
    "hourglass3d": (Hourglass3d, [(2, 4, 6, 8, 10)]),
}


def randomized(model, seed=0):
    """``model`` with non-trivial normalization affine parameters and batchnorm running statistics."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.PReLU):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 0.5)
            if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)):
                for tensor in (module.weight, module.bias):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) + (0.5 if tensor is module.weight else -0.5))
            if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
                for tensor, low, high in ((module.weight, 0.5, 1.5), (module.bias, -0.3, 0.3),
                                          (module.running_mean, -0.3, 0.3), (module.running_var, 0.5, 2.0)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return model


def build(name, seed=0):
    """``(model, example inputs)`` of a zoo entry, weights fixed by ``seed``."""
    constructor, shapes = ZOO[name]
    torch.manual_seed(seed)
    model = randomized(constructor(), seed)
    generator = torch.Generator().manual_seed(seed + 1)
    return model, tuple(torch.randn(shape, generator=generator) for shape in shapes)
