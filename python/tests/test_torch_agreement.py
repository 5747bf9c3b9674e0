"""The engine's outputs and gradients agree with PyTorch 2.13 on the same
networks, weights and batch: a CIFAR ResNet, the U-Net and the stereo
network of ``kcp.models``, with batchnorm in training and in eval mode.

PyTorch runs each network through ``torch_forward``, a direct translation of
``net.layers`` into ``torch.nn.functional`` calls (the correlation and
soft-argmin written out from their definitions).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kcp import models


def torch_forward(net, parameters, inputs, training):
    """The network's outputs in PyTorch, from ``parameters`` ({name: tensor})."""
    values = {value.name: x for value, x in zip(net.inputs, inputs)}
    for layer in net.layers:
        x = [values[name] for name in layer.inputs]
        p = [parameters[name] for name in layer.parameters]
        a = [int(v) if float(v).is_integer() else v for v in layer.attributes]
        if layer.op == "conv2d":
            sh, sw, top, left, bottom, right, dh, dw, groups = a
            y = F.conv2d(F.pad(x[0], (left, right, top, bottom)), p[0], p[1] if len(p) > 1 else None,
                         stride=(sh, sw), dilation=(dh, dw), groups=groups)
        elif layer.op == "batchnorm":
            y = F.batch_norm(x[0], p[2].detach().clone(), p[3].detach().clone(), p[0], p[1], training=training,
                             momentum=0.1, eps=layer.attributes[0])
        elif layer.op == "relu":
            y = F.relu(x[0])
        elif layer.op == "leaky_relu":
            y = F.leaky_relu(x[0], layer.attributes[0])
        elif layer.op == "sigmoid":
            y = torch.sigmoid(x[0])
        elif layer.op == "add":
            y = x[0] + x[1]
        elif layer.op == "mul":
            y = x[0] * x[1]
        elif layer.op == "concat":
            y = torch.cat(x, dim=1)
        elif layer.op in ("max_pool", "avg_pool"):
            kh, kw, sh, sw, top, left, bottom, right, include = a
            assert (top, left) == (bottom, right)
            if layer.op == "max_pool":
                y = F.max_pool2d(x[0], (kh, kw), (sh, sw), (top, left))
            else:
                y = F.avg_pool2d(x[0], (kh, kw), (sh, sw), (top, left), count_include_pad=bool(include))
        elif layer.op == "global_avg_pool":
            y = F.adaptive_avg_pool2d(x[0], 1)
        elif layer.op == "flatten":
            y = torch.flatten(x[0], 1)
        elif layer.op == "linear":
            y = F.linear(x[0], p[0], p[1] if len(p) > 1 else None)
        elif layer.op == "upsample":
            scale, mode = a
            y = F.interpolate(x[0], scale_factor=scale, mode="bilinear" if mode else "nearest",
                              **({"align_corners": False} if mode else {}))
        elif layer.op == "correlation":
            disparities, scale = int(a[0]), layer.attributes[1]
            left, right = x
            width = left.shape[3]
            y = torch.cat([(left * F.pad(right, (d, 0))[..., :width]).sum(1, keepdim=True) * scale
                           for d in range(disparities)], dim=1)
        elif layer.op == "softmax":
            y = torch.softmax(x[0], dim=1)
        elif layer.op == "soft_argmin":
            d = torch.arange(x[0].shape[1], dtype=x[0].dtype).view(1, -1, 1, 1)
            y = (torch.softmax(-x[0], dim=1) * d).sum(1, keepdim=True)
        elif layer.op == "identity":
            y = x[0]
        else:
            raise NotImplementedError(layer.op)
        values[layer.name] = y
    return [values[v.name] for v in net.outputs]


NETWORKS = {
    "resnet8": lambda: models.resnet(8, batch=4, image_size=16),
    "unet": lambda: models.unet(batch=2, image_size=16),
    "stereo": lambda: models.stereo_net(batch=2, height=16, width=32, max_disparity=8),
}


def randomized(net, seed=0):
    """Non-trivial batchnorm affine parameters and running statistics."""
    rng = np.random.default_rng(seed)
    for name, value in net.parameters.items():
        if name.endswith("running_var"):
            net.set_parameter(name, rng.uniform(0.5, 2, value.shape))
        elif name.endswith("running_mean") or (value.ndim == 1 and not name.endswith("bias")):
            net.set_parameter(name, rng.normal(1 if name.endswith("weight") else 0, 0.3, value.shape))
        elif value.ndim == 1:
            net.set_parameter(name, rng.normal(0, 0.3, value.shape))
    return net


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_outputs_and_gradients_agree_with_pytorch(name, training):
    net = randomized(NETWORKS[name]())
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal(v.shape).astype(np.float32) for v in net.inputs]
    outputs = net(*inputs)
    seeds = [rng.standard_normal(o.shape).astype(np.float32) for o in outputs]
    ours, gradients = net.gradients(*inputs, output_gradients=seeds, training=training)

    torch.set_num_threads(1)
    parameters = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.parameters.items()}
    theirs = torch_forward(net, parameters, [torch.tensor(x, dtype=torch.float64) for x in inputs], training)
    loss = sum((torch.tensor(s, dtype=torch.float64) * t).sum() for s, t in zip(seeds, theirs))
    loss.backward()

    for mine, reference in zip(ours, theirs):
        reference = reference.detach().numpy()
        np.testing.assert_allclose(mine, reference, rtol=0, atol=1e-4 * np.abs(reference).max())
    mine_loss = sum(float((s.astype(np.float64) * o).sum()) for s, o in zip(seeds, ours))
    assert abs(mine_loss - loss.item()) <= 1e-4 * max(abs(loss.item()), 1.0)
    references = {k: np.zeros(t.shape) if t.grad is None else t.grad.numpy() for k, t in parameters.items()}
    # Gradients that vanish exactly (a conv bias before batchnorm in training mode) are compared
    # against a thousandth of the network's largest gradient instead of their own zero scale.
    floor = 1e-3 * max(np.abs(r).max() for r in references.values())
    for key, reference in references.items():
        scale = max(np.abs(reference).max(), floor)
        np.testing.assert_allclose(gradients[key], reference, rtol=0, atol=1e-3 * scale, err_msg=key)
