"""KCP on every rank of a DistributedDataParallel job: two CPU processes
(gloo over loopback) run examples/torch_ddp.py, which trains with DDP and
``pruner.step()`` after each epoch; their masks and weights must agree,
though kcp does not communicate."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "torch_ddp.py"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ranks_compute_the_same_masks_and_weights(tmp_path):
    world = 2
    environment = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
                   "WORLD_SIZE": str(world), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    ranks = [subprocess.Popen([sys.executable, str(EXAMPLE), "--epochs", "2", "--out", str(tmp_path)],
                              env={**environment, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in range(world)]
    try:
        logs = [rank.communicate(timeout=120)[0] for rank in ranks]
    finally:
        for rank in ranks:
            rank.kill()
    assert [rank.returncode for rank in ranks] == [0, 0], "\n".join(logs)
    assert "2 ranks: validation accuracy" in logs[0]
    first, second = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world))
    assert first["plan"] == second["plan"] and '"keep": {}' not in first["plan"]
    for name, parameter in first["parameters"].items():
        assert torch.equal(parameter, second["parameters"][name]), name
    for name, tensor in first["compact"].items():
        if "running" not in name:  # batchnorm statistics are each rank's own since DDP's last broadcast
            assert torch.equal(tensor, second["compact"][name]), name
