#!/bin/sh
# Runs Python tests against a build of the engine and the extension with
# AddressSanitizer (engine and glue) and UndefinedBehaviorSanitizer (the C glue; Swift traps on
# its own) (slower than CI; run by hand):
#   scripts/sanitize.sh [pytest arguments]   (default: the hardening and robustness tests)
# Any invalid memory access or undefined behaviour aborts with a report.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/.build-sanitize"
cd "$ROOT"
# The toolchain's clang compiles the glue, so that one AddressSanitizer runtime (clang's) serves both.
CC="$(dirname "$(command -v swift)")/clang" KCP_SANITIZE=1 python setup.py build_ext --build-lib "$OUT/lib" --build-temp "$OUT/temp"
rm -rf "$OUT/python" && mkdir -p "$OUT/python"
cp -r python/kcp "$OUT/python/kcp"
rm -f "$OUT/python/kcp"/_native*.so
cp "$OUT"/lib/kcp/_native*.so "$OUT/python/kcp/"
RUNTIME=$(dirname "$(dirname "$(command -v swift)")")/lib/swift/clang/lib/linux/libclang_rt.asan-x86_64.so
[ $# -gt 0 ] || set -- python/tests/test_hardening.py python/tests/test_robustness.py
# Leaks are not checked: the interpreter keeps much of what it allocates until exit.
LD_PRELOAD="$RUNTIME" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    PYTHONPATH="$OUT/python" python -m pytest -q -p no:cacheprovider "$@"
