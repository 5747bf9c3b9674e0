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
    "winograd: 16 x 3 stacked inputs, rows of 70": ((1, 16, 4, 9, 70), 32, (3, 3, 3), (1, 1, 1), (1,) * 6, (1, 1, 1), 1),
    "winograd: depth padding 2 and 0, 2 groups, 2 samples": ((2, 32, 5, 13, 11), 96, (3, 3, 3), (1, 1, 1),
                                                             (2, 1, 0, 0, 1, 2), (1, 1, 1), 2),
}


@pytest.mark.parametrize("fused", [False, True], ids=["conv3d", "conv3d-batchnorm-add-relu"])
@pytest.mark.parametrize("case", CONVS.values(), ids=CONVS.keys())
def test_conv3d_matches_numpy(case, fused):
    """With ``fused``, the batchnorm, a residual add and the relu after the conv run in its epilogue."""
    shape, outputs, kernel, stride, padding, dilation, groups = case
    net = kcp.Network(seed=3)
    x_value = net.input("x", shape)
    # With ``fused``, a conv of the same geometry made first: the fused chain adds it in its epilogue.
    residual = net.conv3d(x_value, outputs, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                          bias=False, name="r") if fused else None
    y = net.conv3d(x_value, outputs, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
                   name="c")
    rng = np.random.default_rng(5)
    bias = rng.standard_normal(outputs).astype(np.float32)
    net.set_parameter("c.bias", bias)
    x = rng.standard_normal(shape).astype(np.float32)
    expected = reference.conv3d(x, net.parameters["c.weight"], bias, stride, padding, dilation, groups)
    if fused:
        expected_residual = reference.conv3d(x, net.parameters["r.weight"], None, stride, padding, dilation, groups)
        y = net.relu(net.add(net.batchnorm(y, name="bn"), residual))
        statistics = {"weight": rng.uniform(0.5, 2, outputs), "bias": rng.normal(0, 1, outputs),
                      "running_mean": rng.normal(0, 1, outputs), "running_var": rng.uniform(0.5, 2, outputs)}
        for part, value in statistics.items():
            net.set_parameter(f"bn.{part}", value.astype(np.float32))
        s = {k: v.reshape(-1, 1, 1, 1) for k, v in statistics.items()}
        expected = np.maximum((expected - s["running_mean"]) / np.sqrt(s["running_var"] + 1e-5) * s["weight"]
                              + s["bias"] + expected_residual, 0)
    net.output(y)
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


def random_geometries(count, seed):
    """Seeded random conv3d and conv_transpose3d layers that fit their inputs: sizes, kernels, strides,
    dilations, asymmetric padding (past the kernel too), groups, output padding. Each reads a 1x1x1 conv,
    whose weight gradient then checks the layer's input gradient."""
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        groups = int(rng.choice([1, 1, 2, 3]))
        shape = (int(rng.integers(1, 3)), groups * int(rng.integers(1, 4)), int(rng.integers(1, 7)),
                 int(rng.integers(1, 8)), int(rng.choice([3, 9, 17, 33])))
        kernel, stride, dilation = (tuple(int(v) for v in rng.integers(1, high, 3)) for high in (4, 4, 3))
        padding = tuple(int(v) for v in rng.integers(0, 4, 6))
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        transposed = bool(rng.random() < 0.4)
        net = kcp.Network(seed=len(found))
        x = net.conv3d(net.input("x", shape), shape[1], 1, name="mix")
        try:
            if transposed:
                y = net.conv_transpose3d(x, groups * int(rng.choice([1, 2, 5, 8])), kernel, stride=stride,
                                         padding=padding, output_padding=output_padding, dilation=dilation,
                                         groups=groups, name="c")
            else:
                y = net.conv3d(x, groups * int(rng.choice([1, 2, 5, 8])), kernel, stride=stride, padding=padding,
                               dilation=dilation, groups=groups, name="c")
        except ValueError:  # the kernel does not fit, or the padding crops everything
            continue
        net.output(y)
        found.append(net)
    return found


@pytest.mark.parametrize("net", random_geometries(40, seed=11), ids=lambda net: str(net.layers[1].attributes))
def test_random_geometries_agree_with_pytorch(net):
    torch = pytest.importorskip("torch")
    from kcp.testing.torch_functional import torch_forward

    rng = np.random.default_rng(12)
    x = rng.standard_normal(net.inputs[0].shape).astype(np.float32)
    out, = net(x)
    seed = rng.standard_normal(out.shape).astype(np.float32)
    _, gradients = net.gradients(x, output_gradients=[seed])
    parameters = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.parameters.items()}
    expected, = torch_forward(net, parameters, [torch.tensor(x, dtype=torch.float64)], False)
    (expected * torch.tensor(seed, dtype=torch.float64)).sum().backward()
    expected = expected.detach().numpy()
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * max(np.abs(expected).max(), 1e-6))
    for name, tensor in parameters.items():
        reference_gradient = tensor.grad.numpy()
        np.testing.assert_allclose(gradients[name], reference_gradient, rtol=0,
                                   atol=1e-4 * max(np.abs(reference_gradient).max(), 1e-6), err_msg=name)
