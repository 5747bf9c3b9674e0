"""KCP in an ordinary PyTorch training script: three added lines (marked KCP).

A small conv net learns to tell real textures apart (kcp.datasets.texture_patches,
crops of images that scikit-image ships); then the same loop fine-tunes it while
KCP prunes half of its MACs; the compact model is exported to ONNX and checked in
onnxruntime. About ten seconds on two cores.

    python examples/torch_finetune.py [--out DIR]
"""

import argparse
import os
import tempfile
import time

import numpy as np
import onnxruntime
import torch
import torch.nn as nn
import torch.nn.functional as F

import kcp
import kcp.torch


def network(classes):
    def block(cin, cout, stride):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    return nn.Sequential(block(1, 16, 1), block(16, 32, 2), block(32, 32, 1), block(32, 64, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


def train(model, data, epochs, lr, pruner=None):
    """Cross-entropy with AdamW and a cosine schedule; ``pruner.step`` after each epoch."""
    images, labels = data
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    batches = torch.arange(len(images)).split(32)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * len(batches))
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(images), generator=generator).split(32):
            optimizer.zero_grad()
            F.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
            schedule.step()
        if pruner is not None:
            pruner.step(optimizer)                                          # KCP: masks from the current weights


def accuracy(model, data):
    model.eval()
    with torch.no_grad():
        return (model(data[0]).argmax(1) == data[1]).float().mean().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for small.onnx (default: a temporary folder)")
    args = parser.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(1)  # layers this small gain nothing from more threads, and lose much on a busy machine
    torch.manual_seed(0)
    train_data, val_data = (tuple(map(torch.from_numpy, kcp.datasets.texture_patches(n, size=16, classes=4, seed=s)))
                            for n, s in ((1024, 0), (512, 1)))

    model = network(classes=4)
    train(model, train_data, epochs=8, lr=3e-3)
    dense_accuracy = accuracy(model, val_data)

    pruner = kcp.torch.Pruner(model, train_data[0][:1], macs_reduction=0.5)  # KCP: trace, plan against 50% fewer MACs
    train(model, train_data, epochs=4, lr=1e-3, pruner=pruner)
    small = pruner.compact()                                                 # KCP: physically smaller layers
    pruned_accuracy = accuracy(small, val_data)
    before, after = pruner.macs()
    print(f"dense:   {dense_accuracy:.3f} validation accuracy, {before:,} MACs")
    print(f"pruned:  {pruned_accuracy:.3f} validation accuracy, {after:,} MACs ({1 - after / before:.0%} fewer)")
    print(f"layers:  {[m.out_channels for m in small.modules() if isinstance(m, nn.Conv2d)]}")

    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(args.out or scratch, "small.onnx")
        kcp.torch.to_kcp(small, val_data[0][:1]).to_onnx(path)
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        logits = session.run(None, {session.get_inputs()[0].name: val_data[0].numpy()})[0]
    with torch.no_grad():
        expected = small(val_data[0]).numpy()
    assert np.abs(logits - expected).max() <= 1e-4 * np.abs(expected).max(), "onnxruntime disagrees with PyTorch"
    onnx_accuracy = (logits.argmax(1) == val_data[1].numpy()).mean()
    print(f"onnx:    {onnx_accuracy:.3f} validation accuracy in onnxruntime ({time.perf_counter() - start:.0f} s in all)")
    assert after <= 0.5 * before and pruned_accuracy >= dense_accuracy - 0.05, "KCP lost too much accuracy"


if __name__ == "__main__":
    main()
