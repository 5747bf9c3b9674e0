"""Native fine-tuning agrees with the same training loop in PyTorch 2.13 on a
small network, a CIFAR ResNet, the U-Net and the stereo network:
same weights, same batches (the engine's SplitMix64 shuffle, replayed here),
SGD with momentum and weight decay or AdamW, a cosine schedule per step, and
batchnorm running statistics; the weights after a few steps agree."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import kcp
from kcp import models
from kcp.testing.reference import SplitMix64
from kcp.testing.torch_functional import torch_forward


def engine_order(samples, seed, epochs):
    """The engine's batches: a Fisher-Yates shuffle per epoch from SplitMix64(seed)."""
    rng = SplitMix64(seed)
    orders = []
    for _ in range(epochs):
        order = list(range(samples))
        for i in range(samples - 1, 0, -1):
            j = rng.next() % (i + 1)
            order[i], order[j] = order[j], order[i]
        orders.append(order)
    return orders


def network():
    net = kcp.Network(seed=5)
    x = net.input("x", (1, 3, 6, 6))
    # No bias before batchnorm: its gradient is zero up to rounding, which AdamW would amplify to full steps.
    h = net.relu(net.batchnorm(net.conv2d(x, 8, 3, padding=1, bias=False, name="c1"), name="bn1"))
    h = net.relu(net.conv2d(h, 8, 3, padding=1, stride=2, name="c2"))
    net.output(net.conv2d(net.upsample(h, 2, "bilinear"), 2, 1, name="head"))
    return net


NETWORKS = {
    "small": network,
    "resnet8": lambda: models.resnet(8, image_size=8),
    "unet": lambda: models.unet(image_size=8, widths=(4, 8)),
    "stereo": lambda: models.stereo_net(height=8, width=16, max_disparity=4, features=6),
}


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_weights_after_training_agree_with_pytorch(name, optimizer):
    net = NETWORKS[name]()
    rng = np.random.default_rng(0)
    images = [rng.standard_normal((24, *v.shape[1:])).astype(np.float32) for v in net.inputs]
    targets = rng.standard_normal((24, *net(*[x[:1] for x in images])[0].shape[1:])).astype(np.float32)
    epochs, batch, lr, seed = 2, 8, 0.05, 3
    # AdamW's eps is 1e-3 here: with eps = 1e-8 it scales every gradient entry to about +-lr, so an entry
    # that is zero but for rounding (float32 here, float64 in PyTorch) would take a full step either way.
    settings = dict(task="regression", epochs=epochs, batch_size=batch, lr=lr, optimizer=optimizer, momentum=0.9,
                    nesterov=True, weight_decay=1e-3, eps=1e-3, schedule="cosine", seed=seed)
    tuner = kcp.FineTune(net, (images, targets), **settings)
    history = tuner.run(progress=False)
    trained = tuner.network.parameters

    torch.set_num_threads(1)
    parameters = {k: torch.tensor(v, dtype=torch.float64, requires_grad="running" not in k)
                  for k, v in net.parameters.items()}
    learnable = [v for k, v in parameters.items() if "running" not in k]
    if optimizer == "sgd":
        opt = torch.optim.SGD(learnable, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-3)
    else:
        opt = torch.optim.AdamW(learnable, lr=lr, weight_decay=1e-3, eps=1e-3)
    steps = epochs * (len(targets) // batch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    losses = []
    for order in engine_order(len(targets), seed, epochs):
        epoch_losses = []
        for start in range(0, len(order), batch):
            index = order[start:start + batch]
            xs = [torch.tensor(x[index], dtype=torch.float64) for x in images]
            (y,) = torch_forward(net, parameters, xs, training=True)  # updates the running statistics
            loss = F.mse_loss(y, torch.tensor(targets[index], dtype=torch.float64))
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            epoch_losses.append(loss.item())
        losses.append(np.mean(epoch_losses))

    np.testing.assert_allclose([r["loss"] for r in history], losses, rtol=1e-4)
    for name, value in parameters.items():
        reference = value.detach().numpy()
        np.testing.assert_allclose(trained[name], reference, rtol=0, atol=1e-4 * max(np.abs(reference).max(), 1e-3),
                                   err_msg=name)

