"""PSMNet and GwcNet (small widths) as ordinary PyTorch modules, their cost
volumes built as the published code builds them: a Python loop over
disparities that crops, pads, concatenates or multiplies, and stacks
(Chang and Chen, CVPR 2018; Guo et al., CVPR 2019)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from kcp.testing.torch_functional import concatenation_volume  # PSMNet's published form: slices into zeros


def convbn(cin, cout, kernel=3, stride=1, dilation=1):
    pad = dilation if dilation > 1 else kernel // 2
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, pad, dilation, bias=False), nn.BatchNorm2d(cout))


def convbn_3d(cin, cout, kernel=3, stride=1):
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm3d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1, dilation=1):
        super().__init__()
        self.conv1 = nn.Sequential(convbn(cin, cout, 3, stride, dilation), nn.ReLU(inplace=True))
        self.conv2 = convbn(cout, cout, 3, 1, dilation)
        self.downsample = convbn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        return out + (x if self.downsample is None else self.downsample(x))


class FeatureExtraction(nn.Module):
    """A strided stem, a strided and a dilated residual block (1/4 resolution);
    with ``pyramid`` PSMNet's spatial pyramid pooling and fusion."""

    def __init__(self, width, pyramid=()):
        super().__init__()
        self.firstconv = nn.Sequential(convbn(3, width, 3, 2), nn.ReLU(inplace=True))
        self.layer1 = BasicBlock(width, width, stride=2)
        self.layer2 = BasicBlock(width, width, dilation=2)
        self.branches = nn.ModuleList(nn.Sequential(nn.AvgPool2d(k, k), convbn(width, width // 2, 1), nn.ReLU())
                                      for k in pyramid)
        if pyramid:
            self.lastconv = nn.Sequential(convbn(2 * width + len(pyramid) * (width // 2), width), nn.ReLU(),
                                          nn.Conv2d(width, width, 1, bias=False))

    def forward(self, x):
        raw = self.layer1(self.firstconv(x))
        deep = self.layer2(raw)
        if not self.branches:
            return torch.cat([raw, deep], 1)
        size = deep.shape[2:]
        pooled = [F.interpolate(branch(deep), size, mode="bilinear", align_corners=False) for branch in self.branches]
        return self.lastconv(torch.cat([raw, deep, *pooled], 1))


def build_concat_volume(left, right, disparities):
    """``[left, right shifted by d]`` on channels for every disparity, zero where ``w < d``, stacked on axis 2."""
    width = left.shape[3]
    slices = [torch.cat([F.pad(left[:, :, :, d:], (d, 0)), F.pad(right[:, :, :, :width - d], (d, 0))], 1)
              for d in range(disparities)]
    return torch.stack(slices, 2)


def build_gwc_volume(left, right, disparities, groups):
    """GwcNet's group-wise correlation per disparity: the mean of ``left * right
    shifted by d`` over each group's channels, zero where ``w < d``, stacked on axis 2."""
    batch, channels, height, width = left.shape
    slices = []
    for d in range(disparities):
        products = F.pad(left[:, :, :, d:] * right[:, :, :, :width - d], (d, 0))
        slices.append(products.view(batch, groups, channels // groups, height, width).mean(2))
    return torch.stack(slices, 2)


class Hourglass(nn.Module):
    """PSMNet's 3-D hourglass: two strided stages down, two transposed ones up, skips added."""

    def __init__(self, width):
        super().__init__()
        self.conv1 = nn.Sequential(convbn_3d(width, 2 * width, 3, 2), nn.ReLU(inplace=True))
        self.conv2 = convbn_3d(2 * width, 2 * width)
        self.conv3 = nn.Sequential(convbn_3d(2 * width, 2 * width, 3, 2), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(convbn_3d(2 * width, 2 * width), nn.ReLU(inplace=True))
        self.conv5 = nn.Sequential(nn.ConvTranspose3d(2 * width, 2 * width, 3, 2, 1, 1, bias=False),
                                   nn.BatchNorm3d(2 * width))
        self.conv6 = nn.Sequential(nn.ConvTranspose3d(2 * width, width, 3, 2, 1, 1, bias=False), nn.BatchNorm3d(width))

    def forward(self, x):
        pre = F.relu(self.conv2(self.conv1(x)), inplace=True)
        post = F.relu(self.conv5(self.conv4(self.conv3(pre))) + pre, inplace=True)
        return self.conv6(post)


class StereoNet(nn.Module):
    """The shared 3-D part: two conv3d-bn-relu, a residual pair, an hourglass,
    a classifier, trilinear upsampling and ``sum_d d softmax_d``."""

    def __init__(self, volume_channels, width, max_disparity):
        super().__init__()
        self.max_disparity = max_disparity
        self.dres0 = nn.Sequential(convbn_3d(volume_channels, width), nn.ReLU(inplace=True), convbn_3d(width, width),
                                   nn.ReLU(inplace=True))
        self.dres1 = nn.Sequential(convbn_3d(width, width), nn.ReLU(inplace=True), convbn_3d(width, width))
        self.hourglass = Hourglass(width)
        self.classif = nn.Sequential(convbn_3d(width, width), nn.ReLU(inplace=True),
                                     nn.Conv3d(width, 1, 3, 1, 1, bias=False))

    def regress(self, volume, height, width):
        cost0 = self.dres0(volume)
        cost0 = self.dres1(cost0) + cost0
        cost = self.classif(F.relu(self.hourglass(cost0) + cost0))
        cost = F.interpolate(cost, [self.max_disparity, height, width], mode="trilinear", align_corners=False)
        probability = F.softmax(torch.squeeze(cost, 1), dim=1)
        disparities = torch.arange(self.max_disparity, dtype=cost.dtype).view(1, -1, 1, 1)
        return torch.sum(probability * disparities, 1, keepdim=True)


class PSMNet(StereoNet):
    def __init__(self, max_disparity=16, features=8, width=8, pyramid=(8, 4, 2)):
        super().__init__(2 * features, width, max_disparity)
        self.feature_extraction = FeatureExtraction(features, pyramid)

    def forward(self, left, right):
        volume = build_concat_volume(self.feature_extraction(left), self.feature_extraction(right),
                                     self.max_disparity // 4)
        return self.regress(volume, left.shape[2], left.shape[3])


class GwcNet(StereoNet):
    def __init__(self, max_disparity=16, features=8, width=8, groups=4, concat_features=4):
        super().__init__(groups + 2 * concat_features, width, max_disparity)
        self.groups = groups
        self.feature_extraction = FeatureExtraction(features)
        self.concatconv = nn.Sequential(convbn(2 * features, 2 * features), nn.ReLU(inplace=True),
                                        nn.Conv2d(2 * features, concat_features, 1, bias=False))

    def forward(self, left, right):
        fl, fr = self.feature_extraction(left), self.feature_extraction(right)
        disparities = self.max_disparity // 4
        volume = torch.cat([build_gwc_volume(fl, fr, disparities, self.groups),
                            build_concat_volume(self.concatconv(fl), self.concatconv(fr), disparities)], 1)
        return self.regress(volume, left.shape[2], left.shape[3])


class PublishedPSMNet(PSMNet):
    """PSMNet whose volume is written slice by slice into zeros, as the published code does."""

    def forward(self, left, right):
        volume = concatenation_volume(self.feature_extraction(left), self.feature_extraction(right),
                                              self.max_disparity // 4)
        return self.regress(volume, left.shape[2], left.shape[3])


def groupwise_correlation(fea1, fea2, num_groups):
    batch, channels, height, width = fea1.shape
    return (fea1 * fea2).view([batch, num_groups, channels // num_groups, height, width]).mean(dim=2)


def build_gwc_volume_in_place(left, right, disparities, groups):
    """GwcNet's published form: group-wise correlations written into a zero volume."""
    batch, channels, height, width = left.shape
    volume = left.new_zeros([batch, groups, disparities, height, width])
    for i in range(disparities):
        if i > 0:
            volume[:, :, i, :, i:] = groupwise_correlation(left[:, :, :, i:], right[:, :, :, :-i], groups)
        else:
            volume[:, :, i, :, :] = groupwise_correlation(left, right, groups)
    return volume


class PublishedGwcNet(GwcNet):
    """GwcNet whose volumes are written slice by slice into zeros, as the published code does."""

    def forward(self, left, right):
        fl, fr = self.feature_extraction(left), self.feature_extraction(right)
        disparities = self.max_disparity // 4
        volume = torch.cat([build_gwc_volume_in_place(fl, fr, disparities, self.groups),
                            concatenation_volume(self.concatconv(fl), self.concatconv(fr), disparities)], 1)
        return self.regress(volume, left.shape[2], left.shape[3])
