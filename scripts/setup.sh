#!/usr/bin/env bash
# Installs what kcp needs on a Debian machine: OpenBLAS and pkg-config from
# apt, then kcp itself (editable) with its test dependencies from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists openblas 2>/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libopenblas-dev pkg-config
fi
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[test]"
