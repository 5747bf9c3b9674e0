"""KCP inside a DistributedDataParallel job: each rank prunes its own replica.

DDP keeps the replicas' weights equal, and KCP's masks are a pure function of
the weights and the seed, so every rank computes the same masks with no
communication of its own: the job scales exactly as its training does. The
task, network and training loop are examples/torch_finetune.py's; each rank
trains on its shard of the data.

    torchrun --nproc-per-node=2 examples/torch_ddp.py
    torchrun --nnodes=2 --node-rank=0 --nproc-per-node=8 --master-addr=host0 --master-port=29500 examples/torch_ddp.py

``--out DIR`` saves each rank's plan and weights (``rank<r>.pt``) so they
can be compared (python/tests/test_torch_ddp.py does).
"""

import argparse

import torch
import torch.distributed as dist
import torch.nn as nn
from torch_finetune import accuracy, network, train

import kcp
import kcp.torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="dense epochs (fine-tuning with KCP takes half as many)")
    parser.add_argument("--out", help="folder for each rank's plan and weights")
    args = parser.parse_args()

    dist.init_process_group("gloo")  # "nccl" on GPUs; MASTER_ADDR, RANK, WORLD_SIZE come from torchrun
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    kcp.set_num_threads(1)
    images, labels = kcp.datasets.texture_patches(1024, size=16, classes=4, seed=0)
    shard = torch.from_numpy(images[rank::world]), torch.from_numpy(labels[rank::world])
    val_data = tuple(map(torch.from_numpy, kcp.datasets.texture_patches(512, size=16, classes=4, seed=1)))

    torch.manual_seed(0)
    model = network(classes=4)
    ddp = nn.parallel.DistributedDataParallel(model)
    train(ddp, shard, epochs=args.epochs, lr=3e-3)
    dense_accuracy = accuracy(model, val_data)
    pruner = kcp.torch.Pruner(model, shard[0][:1], macs_reduction=0.5)       # KCP: on every rank
    train(ddp, shard, epochs=max(args.epochs // 2, 1), lr=1e-3, pruner=pruner)  # pruner.step: same masks everywhere
    small = pruner.compact()
    if rank == 0:
        before, after = pruner.macs()
        print(f"{world} ranks: validation accuracy {dense_accuracy:.3f} dense, {accuracy(small, val_data):.3f} "
              f"pruned to {after:,} MACs ({1 - after / before:.0%} fewer than {before:,})")
    if args.out:
        torch.save({"plan": pruner.plan.to_json(), "parameters": dict(model.named_parameters()),
                    "compact": small.state_dict()}, f"{args.out}/rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
