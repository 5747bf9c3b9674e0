"""kcp networks evaluated by PyTorch: each layer of ``net.layers`` as a
``torch.nn.functional`` call, the stereo correlation and soft-argmin written
out from their definitions, the cost volumes as PSMNet's and GwcNet's
published code builds them. Used to check the engine against PyTorch and to
compare their speed; needs ``torch``.
"""

import torch
import torch.nn.functional as F

from ..network import ACTIVATIONS, COST_VOLUMES


def activation(x, kind, alpha, beta):
    """The engine's activation ``kind`` (a code of ``kcp.network.ACTIVATIONS``) by PyTorch."""
    name = {code: name for name, code in ACTIVATIONS.items()}[int(kind)]
    return {
        "relu": lambda: F.relu(x),
        "clip": lambda: torch.clamp(x, alpha, beta),
        "leaky_relu": lambda: F.leaky_relu(x, alpha),
        "sigmoid": lambda: torch.sigmoid(x),
        "tanh": lambda: torch.tanh(x),
        "silu": lambda: F.silu(x),
        "gelu": lambda: F.gelu(x),
        "gelu_tanh": lambda: F.gelu(x, approximate="tanh"),
        "hardswish": lambda: F.hardswish(x),
        "hardsigmoid": lambda: torch.clamp(alpha * x + beta, 0, 1),
        "elu": lambda: F.elu(x, alpha),
        "mish": lambda: F.mish(x),
        "softplus": lambda: F.softplus(x, alpha, beta),
        "affine": lambda: alpha * x + beta,
    }[name]()


def normalization(x, weight, bias, mask, groups, spatial, epsilon):
    """The engine's normalization written out: per sample, group and (unless
    ``spatial``) position, the mean and biased variance of the channels whose
    ``mask`` entry is 1, then a per-channel affine map. With a mask of ones it
    is ``F.layer_norm`` over channels, ``F.group_norm`` or ``F.instance_norm``."""
    n, channels, *rest = x.shape
    ones = [1] * len(rest)
    counts = mask.view(1, groups, channels // groups, *ones).expand(n, groups, channels // groups, *rest)
    v = x.reshape(n, groups, channels // groups, *rest)
    axes = tuple(range(2, v.dim())) if spatial else (2,)
    entries = counts.sum(axes, keepdim=True).clamp(min=1)  # a group that counts no entry has moments 0
    mean = (v * counts).sum(axes, keepdim=True) / entries
    variance = (counts * (v - mean) ** 2).sum(axes, keepdim=True) / entries
    y = ((v - mean) / torch.sqrt(variance + epsilon)).reshape(x.shape)
    return y * weight.view(1, channels, *ones) + bias.view(1, channels, *ones)


def concatenation_volume(left, right, max_disparity):
    """GwcNet's ``build_concat_volume`` (PSMNet's volume): per disparity ``i``,
    ``volume[:, :C, i, :, i:] = left[..., i:]`` and ``volume[:, C:, i, :, i:] = right[..., :-i]``."""
    n, channels, height, width = left.shape
    volume = left.new_zeros([n, 2 * channels, max_disparity, height, width])
    for i in range(max_disparity):
        if i > 0:
            volume[:, :channels, i, :, i:] = left[:, :, :, i:]
            volume[:, channels:, i, :, i:] = right[:, :, :, :-i]
        else:
            volume[:, :channels, i, :, :] = left
            volume[:, channels:, i, :, :] = right
    return volume


def group_correlation_volume(left, right, max_disparity, groups, scale):
    """GwcNet's ``build_gwc_volume``: per disparity ``i``, ``groupwise_correlation``
    of ``left[..., i:]`` and ``right[..., :-i]`` (``(f1 * f2).view(N, G, C // G, H, W)``
    summed over the group's channels, times ``scale``; GwcNet's mean is ``scale = G / C``)."""
    n, channels, height, width = left.shape
    volume = left.new_zeros([n, groups, max_disparity, height, width])

    def correlation(a, b):
        return (a * b).view(n, groups, channels // groups, height, a.shape[3]).sum(2) * scale

    for i in range(max_disparity):
        if i > 0:
            volume[:, :, i, :, i:] = correlation(left[:, :, :, i:], right[:, :, :, :-i])
        else:
            volume[:, :, i, :, :] = correlation(left, right)
    return volume


def disparity_regression(x, sign):
    """``sum_d d * softmax_d(sign * x)`` over channels of ``[N, D, H, W]`` or over ``D``
    of ``[N, 1, D, H, W]`` (PSMNet squeezes the channel first), keeping a channel of 1."""
    x = x.reshape(x.shape[0], -1, *x.shape[-2:])
    d = torch.arange(x.shape[1], dtype=x.dtype).view(1, -1, 1, 1)
    return (torch.softmax(sign * x, dim=1) * d).sum(1, keepdim=True)


def torch_forward(net, parameters, inputs, training):
    """The outputs of ``net`` computed by PyTorch from ``parameters`` ({name: tensor}).

    In training mode batchnorm normalises by batch statistics and updates the
    running statistics in ``parameters`` in place (momentum 0.1), as
    ``model.train()`` does.
    """
    values = {value.name: x for value, x in zip(net.inputs, inputs)}
    for layer in net.layers:
        x = [values[name] for name in layer.inputs]
        p = [parameters[name] for name in layer.parameters]
        a = [int(v) if float(v).is_integer() else v for v in layer.attributes]
        if layer.op == "conv2d":
            sh, sw, top, left, bottom, right, dh, dw, groups = a
            y = F.conv2d(F.pad(x[0], (left, right, top, bottom)), p[0], p[1] if len(p) > 1 else None,
                         stride=(sh, sw), dilation=(dh, dw), groups=groups)
        elif layer.op == "conv_transpose2d":
            sh, sw, top, left, bottom, right, oh, ow, dh, dw, groups = a
            # The full scatter, then rows and columns cropped (negative padding) or added by the output padding.
            y = F.pad(F.conv_transpose2d(x[0], p[0], stride=(sh, sw), dilation=(dh, dw), groups=groups),
                      (-left, ow - right, -top, oh - bottom))
            if len(p) > 1:
                y = y + p[1].view(1, -1, 1, 1)
        elif layer.op == "conv3d":
            sd, sh, sw, front, top, left, back, bottom, right, dd, dh, dw, groups = a
            y = F.conv3d(F.pad(x[0], (left, right, top, bottom, front, back)), p[0], p[1] if len(p) > 1 else None,
                         stride=(sd, sh, sw), dilation=(dd, dh, dw), groups=groups)
        elif layer.op == "conv_transpose3d":
            sd, sh, sw, front, top, left, back, bottom, right, od, oh, ow, dd, dh, dw, groups = a
            y = F.pad(F.conv_transpose3d(x[0], p[0], stride=(sd, sh, sw), dilation=(dd, dh, dw), groups=groups),
                      (-left, ow - right, -top, oh - bottom, -front, od - back))
            if len(p) > 1:
                y = y + p[1].view(1, -1, 1, 1, 1)
        elif layer.op == "batchnorm":
            y = F.batch_norm(x[0], p[2], p[3], p[0], p[1], training=training, momentum=0.1, eps=layer.attributes[0])
        elif layer.op == "normalization":
            y = normalization(x[0], *p, a[0], bool(a[1]), layer.attributes[2])
        elif layer.op == "activation":
            y = activation(x[0], *layer.attributes)
        elif layer.op == "binary":
            kind, constant_first = a
            left, right = (x[0], x[1]) if len(x) > 1 else ((p[0], x[0]) if constant_first else (x[0], p[0]))
            y = (torch.add, torch.sub, torch.mul, torch.div)[kind](left, right)
        elif layer.op == "concat":
            y = torch.cat(x, dim=1)
        elif layer.op in ("max_pool", "avg_pool"):
            kh, kw, sh, sw, top, left, bottom, right, include, ceil, dh, dw = a
            assert (top, left) == (bottom, right)
            if layer.op == "max_pool":
                y = F.max_pool2d(x[0], (kh, kw), (sh, sw), (top, left), (dh, dw), ceil_mode=bool(ceil))
            else:
                y = F.avg_pool2d(x[0], (kh, kw), (sh, sw), (top, left), ceil_mode=bool(ceil),
                                 count_include_pad=bool(include))
        elif layer.op in ("max_pool3d", "avg_pool3d"):
            kernel, stride, (front, top, left, back, bottom, right) = a[0:3], a[3:6], a[6:12]
            assert (front, top, left) == (back, bottom, right)
            if layer.op == "max_pool3d":
                y = F.max_pool3d(x[0], kernel, stride, (front, top, left), a[13:16], ceil_mode=bool(a[12]))
            else:
                y = F.avg_pool3d(x[0], kernel, stride, (front, top, left), ceil_mode=bool(a[13]),
                                 count_include_pad=bool(a[12]))
        elif layer.op == "adaptive_pool":
            height, width, use_max = a
            y = (F.adaptive_max_pool2d if use_max else F.adaptive_avg_pool2d)(x[0], (height, width))
        elif layer.op == "global_avg_pool":
            y = x[0].mean(dim=tuple(range(2, x[0].dim())), keepdim=True)
        elif layer.op == "flatten":
            y = torch.flatten(x[0], 1)
        elif layer.op == "linear":
            y = F.linear(x[0], p[0], p[1] if len(p) > 1 else None)
        elif layer.op == "resize":
            height, width, mode, align_corners = a
            y = F.interpolate(x[0], size=(height, width), mode="bilinear" if mode else "nearest",
                              **({"align_corners": bool(align_corners)} if mode else {}))
        elif layer.op == "resize3d":
            depth, height, width, mode, align_corners = a
            y = F.interpolate(x[0], size=(depth, height, width), mode="trilinear" if mode else "nearest",
                              **({"align_corners": bool(align_corners)} if mode else {}))
        elif layer.op == "correlation":
            disparities, scale = int(a[0]), layer.attributes[1]
            left, right = x
            width = left.shape[3]
            y = torch.cat([(left * F.pad(right, (d, 0))[..., :width]).sum(1, keepdim=True) * scale
                           for d in range(disparities)], dim=1)
        elif layer.op == "cost_volume":
            kind, disparities, groups = a[:3]
            y = (concatenation_volume(*x, disparities) if kind == COST_VOLUMES["concatenation"]
                 else group_correlation_volume(*x, disparities, groups, layer.attributes[3]))
        elif layer.op == "softmax":
            y = torch.softmax(x[0], dim=1)
        elif layer.op == "soft_argmin":
            y = disparity_regression(x[0], a[0])
        elif layer.op == "identity":
            y = x[0]
        elif layer.op == "channel_shuffle":
            n, c, h, w = x[0].shape
            y = x[0].view(n, a[0], c // a[0], h, w).transpose(1, 2).reshape(n, c, h, w)
        elif layer.op == "channel_chunk":
            y = torch.chunk(x[0], a[1], dim=1)[a[0]]
        else:
            raise NotImplementedError(layer.op)
        values[layer.name] = y
    return [values[v.name] for v in net.outputs]
