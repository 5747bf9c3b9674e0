"""Conv forward against a float64 NumPy oracle, on every kernel path.

The engine runs a conv by Winograd's F(4x4, 3x3) (3x3, stride 1, 32 to 48
or more channels, 16 or more tiles), by its direct kernel (4 to 64 output channels per
group, rows whose pixel blocks leave few lanes idle), by unfolded matrix
products (the rest), or as a plain product (1x1, stride 1, unpadded); each
geometry below takes one of them, and a conv followed by batchnorm and
relu also runs them with the fused epilogue. Products of a few tiles with
many output channels are split into blocks of channels ("split"), samples
that are one small tile each are unfolded side by side into one product
("chunk"), kernel rows and columns that read only padding are dropped
("padding taps"), and convs whose taps read mostly padding are a sum of
each tap's 1x1 product over the outputs where it reads the input ("tap
products"). Weight gradients are checked against their own oracle.
"""

import numpy as np
import pytest

import kcp


def numpy_conv(x, w, b, stride, padding, dilation, groups):
    """``y[n, o] = b[o] + sum_{c, p, q} w[o, c, p, q] x[n, g(o) C/g + c, oy sy + p dy - top, ox sx + q dx - left]``."""
    (sy, sx), (top, left, bottom, right), (dy, dx) = stride, padding, dilation
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    outputs, per_group, kh, kw = w.shape
    out_h = (x.shape[2] - dy * (kh - 1) - 1) // sy + 1
    out_w = (x.shape[3] - dx * (kw - 1) - 1) // sx + 1
    y = np.zeros((x.shape[0], outputs, out_h, out_w))
    for o in range(outputs):
        g = o // (outputs // groups)
        for p in range(kh):
            for q in range(kw):
                window = x[:, g * per_group:(g + 1) * per_group,
                           p * dy:p * dy + sy * (out_h - 1) + 1:sy, q * dx:q * dx + sx * (out_w - 1) + 1:sx]
                y[:, o] += np.einsum("nchw,c->nhw", window, w[o, :, p, q])
        y[:, o] += b[o]
    return y


CASES = {
    # input shape, outputs, kernel, stride, padding (top, left, bottom, right), dilation, groups
    "direct: 11 outputs, rows of 64": ((2, 16, 12, 64), 11, 3, 1, (1, 1, 1, 1), 1, 1),
    "direct: 22 outputs, pixel blocks through rows of 28": ((2, 22, 9, 28), 22, 3, 1, (1, 1, 1, 1), 1, 1),
    "direct: stride 2, asymmetric padding": ((1, 5, 20, 66), 7, 3, 2, (1, 0, 2, 1), 1, 1),
    "direct: groups 2, dilation (1, 2)": ((1, 6, 10, 36), 12, 3, 1, (1, 2, 1, 2), (1, 2), 2),
    "direct: 5x5, stride (1, 3)": ((1, 3, 14, 100), 5, 5, (1, 3), (2, 2, 2, 2), 1, 1),
    "direct: depthwise, rows of 80": ((2, 6, 9, 80), 6, 3, 1, (1, 1, 1, 1), 1, 6),
    "direct: depthwise, flat through rows of 70": ((1, 4, 9, 70), 4, 3, 1, (1, 1, 1, 1), 1, 4),
    "direct: depthwise stride 2, flat rows": ((1, 5, 13, 20), 5, 3, 2, (1, 1, 1, 1), 1, 5),
    "unfolded: 8-pixel rows": ((2, 8, 8, 8), 16, 3, 1, (1, 1, 1, 1), 1, 1),
    "unfolded: 65 outputs": ((1, 4, 6, 32), 65, 3, 1, (1, 1, 1, 1), 1, 1),
    "unfolded: 1x1 stride 2": ((2, 8, 16, 16), 8, 1, 2, (0, 0, 0, 0), 1, 1),
    "unfolded: groups 2 of 3 outputs, dilation (1, 2)": ((2, 4, 7, 9), 6, 3, 2, (1, 0, 2, 1), (1, 2), 2),
    "product: 1x1": ((2, 5, 6, 7), 9, 1, 1, (0, 0, 0, 0), 1, 1),
    "split: 130 outputs of one 7x7 tile, in blocks": ((1, 20, 7, 7), 130, 3, 1, (1, 1, 1, 1), 1, 1),
    "split: 1x1 product, 256 outputs in blocks": ((1, 24, 9, 9), 256, 1, 1, (0, 0, 0, 0), 1, 1),
    "split: 1x1 stride 2, 192 outputs in blocks": ((1, 24, 14, 14), 192, 1, 2, (0, 0, 0, 0), 1, 1),
    "chunk: 16 samples of 4x4 in one product, 130 outputs in blocks": ((16, 32, 4, 4), 130, 3, 1, (1, 1, 1, 1), 1, 1),
    "chunk: 4 samples of 4x4 in one product, 32 groups of 3 outputs": ((4, 64, 4, 4), 96, 3, 1, (1, 1, 1, 1), 1, 32),
    "chunk: 7 samples of 5x3 in one product, stride 2": ((7, 6, 9, 6), 70, 3, 2, (1, 1, 1, 1), 1, 1),
    "padding taps: dilation 7 on 6x6, a 1x1 conv": ((1, 8, 6, 6), 12, 3, 1, (7, 7, 7, 7), 7, 1),
    "padding taps: columns of dilation 6 on 5 columns": ((2, 5, 9, 5), 70, 3, 1, (2, 6, 2, 6), (2, 6), 1),
    "winograd: 48 channels, partial tiles, 3 samples": ((3, 48, 13, 11), 48, 3, 1, (1, 1, 1, 1), 1, 1),
    "winograd: asymmetric padding wider than a tile": ((3, 48, 14, 15), 56, 3, 1, (5, 6, 0, 1), 1, 1),
    "winograd: groups 2 of 32, two runs of tiles a band": ((1, 64, 9, 70), 64, 3, 1, (0, 2, 1, 0), 1, 2),
    "winograd: chunks of bands": ((2, 64, 66, 82), 80, 3, 1, (0, 0, 0, 0), 1, 1),
    "tap products: dilation 12 on 16x16": ((1, 8, 16, 16), 72, 3, 1, (12, 12, 12, 12), 12, 1),
    "tap products: groups 2, stride 2, dilation (9, 8)": ((2, 6, 45, 45), 140, 3, 2, (9, 7, 10, 8), (9, 8), 2),
}


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("fused", [False, True], ids=["conv", "conv-batchnorm-relu"])
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_conv_matches_numpy(case, fused):
    shape, outputs, kernel, stride, padding, dilation, groups = case
    net = kcp.Network(seed=9)
    x = net.input("image", shape)
    y = net.conv2d(x, outputs, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups, name="conv")
    rng = np.random.default_rng(4)
    b = rng.standard_normal(outputs).astype(np.float32)
    net.set_parameter("conv.bias", b)
    if fused:
        y = net.relu(net.batchnorm(y, name="bn"))
        statistics = {"weight": rng.uniform(0.5, 2, outputs), "bias": rng.normal(0, 1, outputs),
                      "running_mean": rng.normal(0, 1, outputs), "running_var": rng.uniform(0.5, 2, outputs)}
        for part, value in statistics.items():
            net.set_parameter(f"bn.{part}", value.astype(np.float32))
    net.output(y)
    image = rng.standard_normal(shape).astype(np.float32)
    expected = numpy_conv(image, net.parameters["conv.weight"], b, _pair(stride), padding, _pair(dilation), groups)
    if fused:
        s = {part: net.parameters[f"bn.{part}"].astype(np.float64)[:, None, None]
             for part in ("weight", "bias", "running_mean", "running_var")}
        expected = np.maximum((expected - s["running_mean"]) / np.sqrt(s["running_var"] + 1e-5) * s["weight"]
                              + s["bias"], 0)
    np.testing.assert_allclose(net(image)[0], expected, rtol=0, atol=1e-5 * max(np.abs(expected).max(), 1))


def numpy_conv_weight_gradient(x, g, kernel, stride, padding, dilation, groups):
    """``dL/dw[o, c, p, q] = sum_{n, oy, ox} g[n, o, oy, ox] x[n, g(o) C/g + c, oy sy + p dy - top, ox sx + q dx - left]``."""
    (sy, sx), (top, left, bottom, right), (dy, dx), (kh, kw) = stride, padding, dilation, kernel
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    outputs, (out_h, out_w), per_group = g.shape[1], g.shape[2:], x.shape[1] // groups
    dw = np.zeros((outputs, per_group, kh, kw))
    for o in range(outputs):
        first = o // (outputs // groups) * per_group
        for p in range(kh):
            for q in range(kw):
                window = x[:, first:first + per_group,
                           p * dy:p * dy + sy * (out_h - 1) + 1:sy, q * dx:q * dx + sx * (out_w - 1) + 1:sx]
                dw[o, :, p, q] = np.einsum("nchw,nhw->c", window, g[:, o].astype(np.float64))
    return dw


WEIGHT_GRADIENT_CASES = {
    # input shape, outputs, kernel, stride, padding (top, left, bottom, right), dilation, groups
    "16 samples of 4x4 in one product, dW's columns in 2 parts": ((16, 128, 4, 4), 64, 3, 1, (1, 1, 1, 1), 1, 1),
    "a tile per product, 20 products in 16 partial sums": ((20, 2, 24, 24), 4, 3, 1, (1, 1, 1, 1), 1, 1),
    "tiles of 5 and 4 rows in chunks of 3, groups 2": ((3, 64, 29, 40), 16, 3, 1, (1, 1, 1, 1), 1, 2),
    "stride 2, dilation 2, asymmetric padding, 2 chunks": ((20, 6, 13, 13), 10, 3, 2, (2, 1, 0, 2), 2, 1),
    "1x1, 6 samples copied into one product": ((6, 32, 5, 5), 16, 1, 1, (0, 0, 0, 0), 1, 1),
    "1x1, a sample read in place": ((2, 8, 32, 32), 8, 1, 1, (0, 0, 0, 0), 1, 1),
    "1x1 stride 2, 16 samples": ((16, 64, 8, 8), 96, 1, 2, (0, 0, 0, 0), 1, 1),
    "winograd: 48 channels on 13x11, 3 samples": ((3, 48, 13, 11), 48, 3, 1, (1, 1, 1, 1), 1, 1),
    "winograd: groups 2 of 32, rows of 70, asymmetric padding": ((1, 64, 9, 70), 64, 3, 1, (0, 2, 1, 0), 1, 2),
    "winograd: chunks of bands": ((2, 64, 66, 82), 80, 3, 1, (0, 0, 0, 0), 1, 1),
}


@pytest.mark.parametrize("case", WEIGHT_GRADIENT_CASES.values(), ids=WEIGHT_GRADIENT_CASES.keys())
def test_conv_weight_gradient_matches_numpy(case):
    """The weight gradient, computed in products over chunks of tiles of several samples, partial sums
    and blocks of input channels, against the float64 oracle."""
    shape, outputs, kernel, stride, padding, dilation, groups = case
    net = kcp.Network(seed=3)
    net.output(net.conv2d(net.input("image", shape), outputs, kernel, stride=stride, padding=padding,
                          dilation=dilation, groups=groups, bias=False, name="conv"))
    rng = np.random.default_rng(5)
    image = rng.standard_normal(shape).astype(np.float32)
    seed = rng.standard_normal(net.outputs[0].shape).astype(np.float32)
    _, gradients = net.gradients(image, output_gradients=[seed])
    expected = numpy_conv_weight_gradient(image, seed, _pair(kernel), _pair(stride), padding, _pair(dilation), groups)
    np.testing.assert_allclose(gradients["conv.weight"], expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def numpy_conv_input_gradient(g, w, input_shape, stride, padding, dilation, groups):
    """``dL/dx``, the adjoint of ``numpy_conv`` in ``x``: each ``g[n, o, oy, ox] w[o, c, p, q]`` added onto the
    input pixel ``(oy sy + p dy - top, ox sx + q dx - left)`` of channel ``g(o) C/g + c`` (padding dropped)."""
    (sy, sx), (top, left, bottom, right), (dy, dx) = stride, padding, dilation
    n, channels, height, width = input_shape
    padded = np.zeros((n, channels, height + top + bottom, width + left + right))
    outputs, per_group, kh, kw = w.shape
    out_h, out_w = g.shape[2:]
    for o in range(outputs):
        first = o // (outputs // groups) * per_group
        for p in range(kh):
            for q in range(kw):
                padded[:, first:first + per_group, p * dy:p * dy + sy * (out_h - 1) + 1:sy,
                       q * dx:q * dx + sx * (out_w - 1) + 1:sx] += np.einsum("c,nhw->nchw", w[o, :, p, q].astype(np.float64),
                                                                             g[:, o].astype(np.float64))
    return padded[:, :, top:top + height, left:left + width]


INPUT_GRADIENT_CASES = {
    # input shape, outputs, kernel, stride, padding (top, left, bottom, right), dilation, groups
    "stride 2, 16 samples of 4x4 in one product": ((16, 32, 8, 8), 64, 3, 2, (1, 1, 1, 1), 1, 1),
    "stride 2, dilation 2, groups 2, asymmetric padding, 5 samples": ((5, 8, 13, 13), 12, 3, 2, (2, 1, 0, 2), 2, 2),
    "stride 2, tiles of a few rows, a product per tile": ((2, 64, 60, 60), 8, 3, 2, (1, 1, 1, 1), 1, 1),
    "stride 1 (a conv with the transposed kernels), 12 samples of 3x3": ((12, 16, 3, 3), 24, 3, 1, (1, 1, 1, 1), 1, 1),
    "stride 1, dilation 12 on 16x16 (tap products)": ((1, 72, 16, 16), 80, 3, 1, (12, 12, 12, 12), 12, 1),
}


@pytest.mark.parametrize("case", INPUT_GRADIENT_CASES.values(), ids=INPUT_GRADIENT_CASES.keys())
def test_conv_input_gradient_matches_numpy(case):
    """The input gradient, read through the weight gradient of an identity 1x1 conv before the conv
    (``dL/dW1[c', c] = sum_{n, h, w} dL/dx[n, c', h, w] x[n, c, h, w]``), against the float64 oracle."""
    shape, outputs, kernel, stride, padding, dilation, groups = case
    net = kcp.Network(seed=3)
    y = net.conv2d(net.input("image", shape), shape[1], 1, bias=False, name="identity")
    net.output(net.conv2d(y, outputs, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                          bias=False, name="conv"))
    net.set_parameter("identity.weight", np.eye(shape[1], dtype=np.float32)[:, :, None, None])
    rng = np.random.default_rng(8)
    image = rng.standard_normal(shape).astype(np.float32)
    seed = rng.standard_normal(net.outputs[0].shape).astype(np.float32)
    _, gradients = net.gradients(image, output_gradients=[seed])
    dx = numpy_conv_input_gradient(seed, net.parameters["conv.weight"], shape, _pair(stride), padding, _pair(dilation),
                                   groups)
    expected = np.einsum("nchw,nkhw->ck", dx, image.astype(np.float64))[:, :, None, None]
    np.testing.assert_allclose(gradients["identity.weight"], expected, rtol=0, atol=1e-5 * np.abs(expected).max())
