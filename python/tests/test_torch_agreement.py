"""The engine's outputs and gradients agree with PyTorch 2.13 on the same
networks, weights and batch: a CIFAR ResNet, the U-Net and the stereo
network of ``kcp.models``, with batchnorm in training and in eval mode, and
a network of LayerNorm, GroupNorm and InstanceNorm, dense and masked, and
a decoder of transposed convs (strided, grouped, depthwise), a 3-D
aggregation network of volumetric convs, transposed convs and batchnorm,
and stereo networks on PSMNet's concatenation volume, GwcNet's group-wise
volume (PyTorch builds both with the published loops) and a correlation
with a transposed-conv decoder.

PyTorch runs each network through ``kcp.testing.torch_functional.torch_forward``, a
direct translation of ``net.layers`` into ``torch.nn.functional`` calls.
"""

import numpy as np
import pytest
import torch
from test_network_zoo import (concatenation_volume, correlation_decoder, decoder, group_correlation_volume, normalized,
                               volume)

import kcp
from kcp import models
from kcp.testing.torch_functional import torch_forward


def masked_normalized():
    """``normalized`` masked at ratio 0.5: its statistics masks hold zeros."""
    net = normalized()
    return kcp.plan(net, ratio=0.5).apply(net, "mask")


NETWORKS = {
    "resnet8": lambda: models.resnet(8, batch=4, image_size=16),
    "unet": lambda: models.unet(batch=2, image_size=16),
    "stereo": lambda: models.stereo_net(batch=2, height=16, width=32, max_disparity=8),
    "psmnet": lambda: models.psmnet(batch=2, height=16, width=32, features=8, volume_width=4),
    "gwcnet": lambda: models.gwcnet(batch=2, height=16, width=32, features=8, groups=4, volume_width=4),
    "normalized": normalized,
    "normalized_masked": masked_normalized,
    "decoder": decoder,
    "concatenation_volume": concatenation_volume,
    "group_correlation_volume": group_correlation_volume,
    "correlation_decoder": correlation_decoder,
    "volume": volume,
}


def randomized(net, seed=0):
    """Non-trivial batchnorm affine parameters and running statistics (statistics masks kept)."""
    rng = np.random.default_rng(seed)
    for name, value in net.parameters.items():
        if name.endswith("statistics_mask"):
            continue
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
    parameters = {k: torch.tensor(v, dtype=torch.float64, requires_grad=not k.endswith(("running_mean", "running_var",
                                                                                        "statistics_mask")))
                  for k, v in net.parameters.items()}
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


def test_gradients_of_a_network_with_many_parameters():
    net = models.resnet(20, batch=2, image_size=8)
    assert len(net.parameters) > 64
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    _, gradients = net.gradients(x, output_gradients=[np.ones((2, 10), np.float32)])
    assert set(gradients) == set(net.parameters) and all(np.isfinite(g).all() for g in gradients.values())
