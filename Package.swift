// swift-tools-version:6.0
import PackageDescription

// MARK: - Compiler settings

/// Hot loops need the host's vector units: without a CPU target, SIMD FMA on
/// x86-64 lowers to library calls and runs ~100x slower.
#if arch(x86_64)
let cpuFlags: [String] = ["-target-cpu", "haswell"]
#else
let cpuFlags: [String] = []
#endif

let engineSettings: [SwiftSetting] = [
    .unsafeFlags(cpuFlags + ["-enforce-exclusivity=unchecked"]),
    .swiftLanguageMode(.v5),
]

// MARK: - Package

let package = Package(
    name: "kcp",
    products: [
        // Linked into the Python extension `kcp._native` by setup.py.
        .library(name: "KCPEngine", type: .static, targets: ["KCPC"]),
    ],
    targets: [
        // MARK: System libraries
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),

        // glibc's malloc tuning (malloc.h), which the Glibc module lacks.
        .target(name: "CPlatform"),

        // MARK: Engine (pure Swift, no Foundation)
        .target(name: "KCP", dependencies: ["COpenBLAS", "CPlatform"], swiftSettings: engineSettings),

        // MARK: C ABI (`@_cdecl` thunks only; contract in include/kcp.h)
        .target(
            name: "KCPC",
            dependencies: ["KCP"],
            exclude: ["include"],
            swiftSettings: engineSettings
        ),

        // MARK: Tests
        .testTarget(name: "KCPTests", dependencies: ["KCP", "KCPC"], swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
