#!/usr/bin/env bash
# Installs what kcp needs on a Debian machine: OpenBLAS and pkg-config from
# apt, then PyTorch and kcp itself (editable) with its test dependencies.
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
pip_install -e ".[test]"
