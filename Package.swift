// swift-tools-version:6.0
import PackageDescription

// MARK: - Compiler settings

/// Hot loops need the host's vector units: without a CPU target, SIMD FMA on
/// x86-64 lowers to library calls and runs ~100x slower. The engine is built
/// for AVX2 + FMA (`haswell`); its vector kernels (`KCPVector`) are built a
/// second time for AVX-512 (`KCPVectorAVX512`: the same files, through
/// symbolic links), and `InstructionSet` picks one build at load time.
#if arch(x86_64)
let cpuFlags: [String] = ["-target-cpu", "haswell"]
let vectorBuilds: [(name: String, cpuFlags: [String])] = [
    ("KCPVector", cpuFlags), ("KCPVectorAVX512", ["-target-cpu", "skylake-avx512"]),
]
#else
let cpuFlags: [String] = []
let vectorBuilds: [(name: String, cpuFlags: [String])] = [("KCPVector", cpuFlags)]
#endif

func engineSettings(_ cpuFlags: [String]) -> [SwiftSetting] {
    [.unsafeFlags(cpuFlags + ["-enforce-exclusivity=unchecked"]), .swiftLanguageMode(.v5)]
}

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

        // glibc's malloc tuning (malloc.h), CPU features and a prefetch hint, which the Glibc module lacks.
        .target(name: "CPlatform"),
    ]
    // MARK: Vector kernels, one build per instruction set (Swift on raw pointers, CPlatform's prefetch hint)
    + vectorBuilds.map {
        .target(name: $0.name, dependencies: ["CPlatform"], swiftSettings: engineSettings($0.cpuFlags))
    }
    + [
        // MARK: Engine (pure Swift, no Foundation)
        .target(name: "KCP", dependencies: ["COpenBLAS", "CPlatform"] + vectorBuilds.map { .target(name: $0.name) },
                swiftSettings: engineSettings(cpuFlags)),

        // MARK: C ABI (`@_cdecl` thunks only; contract in include/kcp.h)
        .target(
            name: "KCPC",
            dependencies: ["KCP"],
            exclude: ["include"],
            swiftSettings: engineSettings(cpuFlags)
        ),

        // MARK: Tests
        .testTarget(name: "KCPTests", dependencies: ["KCP", "KCPC"], swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
