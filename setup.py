"""Builds `kcp._native`: the Swift engine, linked statically, plus the CPython glue; and
`kcp._cpu`, the engine's CPU probe alone, which the package reads before the engine loads.

`swift build` compiles the engine (Sources/KCP + the C ABI in Sources/KCPC) as
a static library; the extension's C object is then linked against it by
`swiftc -static-stdlib`, so the Swift runtime lives inside the one `.so` and
importing it needs no Swift toolchain on the loader path.
"""

import os
import subprocess
import sysconfig
from pathlib import Path

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()
# KCP_SANITIZE=1 builds the engine with AddressSanitizer and the C glue with AddressSanitizer and
# UndefinedBehaviorSanitizer (trapping: it needs no runtime), in their own scratch folder; Swift
# itself traps on overflow and out-of-bounds access. scripts/sanitize.sh runs Python tests on it.
SANITIZE = bool(os.environ.get("KCP_SANITIZE"))
SCRATCH = ROOT / (".build-sanitize" if SANITIZE else ".build")
SWIFT_SANITIZE = ["-Xswiftc", "-sanitize=address"] if SANITIZE else []


class SwiftBuildExt(build_ext):
    """Builds the Swift engine, compiles the extension source, links with swiftc."""

    def build_extension(self, ext):
        if ext is not native:
            return super().build_extension(ext)
        self.spawn(["swift", "build", "-c", "release", "--product", "KCPEngine",
                    "--package-path", str(ROOT), "--scratch-path", str(SCRATCH), *SWIFT_SANITIZE])
        bin_dir = subprocess.check_output(
            ["swift", "build", "-c", "release", "--show-bin-path",
             "--package-path", str(ROOT), "--scratch-path", str(SCRATCH), *SWIFT_SANITIZE], text=True).strip()
        library = Path(bin_dir) / "libKCPEngine.a"
        # swiftc reads autolink entries from objects only, not from archives.
        autolink = subprocess.check_output(["swift-autolink-extract", str(library), "-o", "-"], text=True)
        objects = self.compiler.compile(
            ext.sources, output_dir=self.build_temp, include_dirs=ext.include_dirs,
            extra_postargs=["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"]
            + (["-fsanitize=address,undefined", "-fsanitize-trap=undefined", "-fno-omit-frame-pointer"]
               if SANITIZE else []))
        exports = Path(self.build_temp) / "exports.map"
        exports.write_text("{ global: PyInit__native; local: *; };\n")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        self.spawn(["swiftc", "-emit-library", "-static-stdlib", *(["-sanitize=address"] if SANITIZE else []),
                    "-o", str(target), *objects,
                    str(library), *dict.fromkeys(autolink.split()),
                    "-Xlinker", f"--version-script={exports}", "-Xlinker", "-s"])


native = Extension(
    "kcp._native",
    sources=["python/kcp/_native.c", "python/kcp/_network.c", "python/kcp/_plan.c", "python/kcp/_finetune.c"],
    include_dirs=[numpy.get_include(), sysconfig.get_paths()["include"], str(ROOT / "Sources/KCPC/include")],
)

cpu = Extension(
    "kcp._cpu",
    sources=["python/kcp/_cpu.c", "Sources/CPlatform/platform.c"],
    include_dirs=[str(ROOT / "Sources/CPlatform/include")],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror"],
)

setup(ext_modules=[native, cpu], cmdclass={"build_ext": SwiftBuildExt})
