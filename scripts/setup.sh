#!/usr/bin/env bash
# Installs what kcp needs on a Debian machine: OpenBLAS and pkg-config from
# apt, then PyTorch (with torchvision and Torch-Pruning, for the comparison)
# and kcp itself (editable) with its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists openblas 2>/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libopenblas-dev pkg-config
fi
pip_install() { python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@"; }
# PyTorch (for the agreement tests), pinned: this machine kind keeps its CPU build in a local
# wheel directory; an unpinned torch would pull a multi-gigabyte CUDA build.
links=()
[ -d /opt/wheels ] && links=(--find-links /opt/wheels)
pip_install "${links[@]}" torch==2.13.0
# torchvision's model definitions and Torch-Pruning, for python/tests/test_torchvision.py and
# benchmarks/torchvision_pruning.py. --no-deps: torchvision 0.28.0 is the release paired with torch
# 2.13 (it pins torch==2.13.0); its PyPI wheel is the CUDA build, whose compiled ops do not load
# with the CPU torch, and python/tests/torchvision_models.py imports its models without them.
pip_install --no-deps torchvision==0.28.0 torch-pruning==1.6.1
pip_install -e ".[test]"
