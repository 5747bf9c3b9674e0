"""Ops on 5-D volumes ``[N, C, D, H, W]`` against PyTorch 2.13, values and
gradients: 3-D max and average pooling (padding, strides, ``ceil_mode``,
``count_include_pad``, dilation), trilinear and nearest resizing (both
``align_corners``), global average pooling, concatenation, and element-wise
ops (activations, a broadcast add). Each op follows a 1x1x1 conv, so the
conv's weight gradient checks the op's input gradient too."""

import numpy as np
import pytest
import torch

import kcp
from kcp.testing.torch_functional import torch_forward

SHAPE = (2, 3, 5, 7, 6)

OPS = {
    "max_pool 2": lambda net, x: net.max_pool(x, 2),
    "max_pool 3, stride 2, padding 1, ceil_mode": lambda net, x: net.max_pool(x, 3, 2, 1, ceil_mode=True),
    "max_pool (1, 3, 2), dilation (2, 1, 2)": lambda net, x: net.max_pool(x, (2, 3, 2), (1, 2, 1), dilation=(2, 1, 2)),
    "avg_pool 3, stride 2, padding 1": lambda net, x: net.avg_pool(x, 3, 2, 1),
    "avg_pool 3, stride 2, padding 1, count_include_pad, ceil_mode":
        lambda net, x: net.avg_pool(x, 3, 2, 1, count_include_pad=True, ceil_mode=True),
    "avg_pool (2, 2, 3), stride (2, 1, 3), padding (1, 0, 1)":
        lambda net, x: net.avg_pool(x, (2, 2, 3), (2, 1, 3), (1, 0, 1), count_include_pad=True),
    "trilinear up": lambda net, x: net.resize(x, (9, 14, 11), "trilinear"),
    "trilinear down, align_corners": lambda net, x: net.resize(x, (3, 4, 5), "trilinear", align_corners=True),
    "trilinear up, align_corners": lambda net, x: net.resize(x, (10, 8, 12), "trilinear", align_corners=True),
    "upsample 2, trilinear": lambda net, x: net.upsample(x, 2, "trilinear"),
    "nearest": lambda net, x: net.resize(x, (8, 5, 13)),
    "global_avg_pool": lambda net, x: net.global_avg_pool(x),
    "activations": lambda net, x: net.sigmoid(net.leaky_relu(x, 0.1)),
    "add with a broadcast [N, C, 1, 1, 1]": lambda net, x: net.add(net.tanh(x), net.global_avg_pool(x)),
    "concat": lambda net, x: net.concat(x, net.relu(x)),
}


@pytest.mark.parametrize("build", OPS.values(), ids=OPS.keys())
def test_volume_op_agrees_with_pytorch(build):
    net = kcp.Network(seed=2)
    x = net.conv3d(net.input("x", SHAPE), 4, 1, name="mix")
    net.output(build(net, x))
    rng = np.random.default_rng(3)
    xs = rng.standard_normal(SHAPE).astype(np.float32)
    out, = net(xs)
    seed = rng.standard_normal(out.shape).astype(np.float32)
    _, gradients = net.gradients(xs, output_gradients=[seed], training=False)

    parameters = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.parameters.items()}
    reference, = torch_forward(net, parameters, [torch.tensor(xs, dtype=torch.float64)], False)
    (reference * torch.tensor(seed, dtype=torch.float64)).sum().backward()
    reference = reference.detach().numpy()
    assert out.shape == reference.shape
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-5 * np.abs(reference).max())
    for name, tensor in parameters.items():
        expected = tensor.grad.numpy()
        np.testing.assert_allclose(gradients[name], expected, rtol=0, atol=1e-4 * max(np.abs(expected).max(), 1e-6),
                                   err_msg=name)


def test_volume_ops_refuse_bad_input_naming_the_argument():
    net = kcp.Network()
    x = net.input("x", SHAPE)
    with pytest.raises(ValueError, match="kernel_size"):
        net.max_pool(x, (2, 2))
    with pytest.raises(ValueError, match="mode"):
        net.resize(x, (4, 4, 4), "bilinear")
    with pytest.raises(ValueError, match="x: conv3d takes a 5-D input"):
        net.conv3d(net.input("image", (1, 3, 8, 8)), 4, 3)
    with pytest.raises(ValueError, match="padding"):
        net.conv3d(x, 4, 3, padding=(1, 1))
