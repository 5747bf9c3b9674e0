"""Volumetric convs (``conv3d``, ``conv_transpose3d``) against the float64
NumPy oracles of ``kcp.testing.reference``: strides, asymmetric padding,
dilation, groups, depthwise, depth taps that fall wholly in the padding, on
both kernels (the direct kernel over stacked depth taps, for 4 to 64 output
channels per group and rows that fill its vectors; stacked unfolded
products otherwise), and the transposed conv on both of the input
gradient's paths (a conv for unit strides, a gather of folded products
otherwise)."""

import numpy as np
import pytest

import kcp
from kcp.testing import reference

CONVS = {
    # input shape, outputs, kernel, stride, padding (front, top, left, back, bottom, right), dilation, groups
    "3x3x3, padding 1": ((2, 4, 5, 6, 7), 6, (3, 3, 3), (1, 1, 1), (1,) * 6, (1, 1, 1), 1),
    "strided, asymmetric padding, 2 groups": ((1, 4, 6, 7, 5), 4, (2, 3, 3), (2, 1, 2), (1, 0, 2, 1, 1, 0), (1, 1, 1), 2),
    "depth dilation 2": ((1, 3, 7, 6, 6), 5, (3, 3, 3), (1, 1, 1), (2, 1, 1, 2, 1, 1), (2, 1, 1), 1),
    "depthwise, stride 2": ((1, 4, 4, 5, 5), 4, (3, 3, 3), (2, 2, 2), (1,) * 6, (1, 1, 1), 4),
    "padding past the kernel: whole depth taps in padding": ((1, 2, 2, 4, 4), 3, (3, 1, 1), (1, 1, 1), (3, 0, 0, 3, 0, 0),
                                                             (1, 1, 1), 1),
    "1x1x1": ((2, 5, 3, 4, 5), 7, (1, 1, 1), (1, 1, 1), (0,) * 6, (1, 1, 1), 1),
    "direct kernel: 8 outputs, rows of 32": ((2, 3, 4, 5, 32), 8, (3, 3, 3), (1, 1, 1), (1,) * 6, (1, 1, 1), 1),
    "direct kernel: stride 2, depth taps in padding": ((1, 4, 5, 6, 34), 6, (3, 3, 3), (2, 1, 2), (2, 1, 1, 2, 1, 1),
                                                       (1, 1, 1), 1),
    "direct kernel: 2 groups, dilated": ((1, 4, 6, 6, 40), 16, (3, 3, 3), (1, 1, 1), (2, 1, 2, 2, 1, 2), (2, 1, 2), 2),
    "unfolded: 65 outputs": ((1, 3, 3, 4, 9), 65, (3, 3, 3), (1, 1, 1), (1,) * 6, (1, 1, 1), 1),
}


@pytest.mark.parametrize("case", CONVS.values(), ids=CONVS.keys())
def test_conv3d_matches_numpy(case):
    shape, outputs, kernel, stride, padding, dilation, groups = case
    net = kcp.Network(seed=3)
    net.output(net.conv3d(net.input("x", shape), outputs, kernel, stride=stride, padding=padding, dilation=dilation,
                          groups=groups, name="c"))
    rng = np.random.default_rng(5)
    bias = rng.standard_normal(outputs).astype(np.float32)
    net.set_parameter("c.bias", bias)
    x = rng.standard_normal(shape).astype(np.float32)
    expected = reference.conv3d(x, net.parameters["c.weight"], bias, stride, padding, dilation, groups)
    np.testing.assert_allclose(net(x)[0], expected, rtol=0, atol=1e-5 * np.abs(expected).max())


TRANSPOSED = {
    # input shape, outputs, kernel, stride, padding, output padding, dilation, groups
    "3x3x3, padding 1": ((2, 3, 3, 4, 5), 4, (3, 3, 3), (1, 1, 1), (1,) * 6, (0, 0, 0), (1, 1, 1), 1),
    "stride 2, output padding 1": ((1, 4, 3, 4, 3), 3, (3, 3, 3), (2, 2, 2), (1,) * 6, (1, 1, 1), (1, 1, 1), 1),
    "mixed strides, asymmetric padding": ((1, 2, 3, 3, 4), 3, (2, 3, 2), (1, 2, 3), (0, 1, 1, 1, 0, 0), (0, 1, 2),
                                          (1, 1, 1), 1),
    "2 groups, dilation 2": ((1, 4, 3, 3, 3), 6, (3, 3, 3), (2, 1, 1), (1, 2, 2, 1, 2, 2), (1, 0, 0), (2, 2, 2), 2),
    "depthwise, multiplier 2": ((1, 3, 2, 3, 3), 6, (2, 2, 2), (2, 2, 2), (0,) * 6, (0, 0, 0), (1, 1, 1), 3),
}


@pytest.mark.parametrize("case", TRANSPOSED.values(), ids=TRANSPOSED.keys())
def test_conv_transpose3d_matches_numpy(case):
    shape, outputs, kernel, stride, padding, output_padding, dilation, groups = case
    net = kcp.Network(seed=3)
    net.output(net.conv_transpose3d(net.input("x", shape), outputs, kernel, stride=stride, padding=padding,
                                    output_padding=output_padding, dilation=dilation, groups=groups, name="t"))
    rng = np.random.default_rng(6)
    bias = rng.standard_normal(outputs).astype(np.float32)
    net.set_parameter("t.bias", bias)
    x = rng.standard_normal(shape).astype(np.float32)
    expected = reference.conv_transpose3d(x, net.parameters["t.weight"], bias, stride, padding, output_padding,
                                          dilation, groups)
    np.testing.assert_allclose(net(x)[0], expected, rtol=0, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("case", list(CONVS.values())[:4], ids=list(CONVS)[:4])
def test_conv3d_weight_gradient_is_the_adjoint_of_the_oracle(case):
    """``<dL/dW, W'> = <dL/dy, conv_W'(x)>`` for any ``W'`` (input gradients are
    checked by finite differences in the Swift tests and against PyTorch)."""
    shape, outputs, kernel, stride, padding, dilation, groups = case
    net = kcp.Network(seed=4)
    net.output(net.conv3d(net.input("x", shape), outputs, kernel, stride=stride, padding=padding, dilation=dilation,
                          groups=groups, bias=False, name="c"))
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    w = net.parameters["c.weight"].astype(np.float64)
    w2 = rng.standard_normal(w.shape)
    seed = rng.standard_normal(net.outputs[0].shape).astype(np.float32)
    (_,), gradients = net.gradients(x.astype(np.float32), output_gradients=[seed])
    lhs = float((gradients["c.weight"] * w2).sum())
    rhs = float((seed * reference.conv3d(x.astype(np.float32), w2, None, stride, padding, dilation, groups)).sum())
    assert abs(lhs - rhs) <= 1e-4 * max(abs(rhs), 1)
