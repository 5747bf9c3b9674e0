// glibc interfaces the Swift Glibc module does not carry, CPU features, a prefetch hint and a
// spin-wait hint.
#include <malloc.h>

/// 1 if the CPU and the OS support AVX-512 F, BW, DQ and VL (the set that
/// `-target-cpu skylake-avx512` code may use), else 0.
int kcp_cpu_has_avx512(void);
/// The instruction set of the engine's own kernels: `KCP_ISA` ("avx2") where
/// set, else the widest this CPU runs: "avx512" or "avx2" on x86-64, "native"
/// elsewhere.
const char *kcp_cpu_isa(void);
/// The OpenBLAS kernel set (an `OPENBLAS_CORETYPE` name) as wide as
/// `kcp_cpu_isa()`: "SkylakeX" or "Haswell", or NULL off x86-64. OpenBLAS
/// picks its kernels from the CPU's model number when it loads, and falls
/// back to SSE3 ("Prescott") on a model it does not know, such as an Emerald
/// Rapids Xeon for OpenBLAS 0.3.21; the Python package names this set before
/// the engine loads OpenBLAS.
const char *kcp_blas_coretype(void);
/// Writes the CPU's brand string (at most 48 characters and a 0) into `name`,
/// which has room for `capacity` bytes (at least 49); returns 1, or 0 where
/// the CPU reports none.
int kcp_cpu_name(char *name, int capacity);
/// Writes the CPU's family and model as the OS reports them (cpuid leaf 1,
/// extended fields added: Intel SDM vol. 2A, CPUID, "Family and Model"),
/// e.g. 26 and 2 for an AMD Zen 5 core; returns 1, or 0 off x86-64.
int kcp_cpu_family_model(int *family, int *model);

/// Asks the CPU to bring the cache line holding `address` into the L2 cache
/// (`prefetcht1` on x86-64), without waiting for it: a hint, which never
/// faults, whatever the address.
static inline void kcp_prefetch(const void *address) { __builtin_prefetch(address, 0, 2); }

/// Tells the CPU that the calling thread spins, waiting for another to write
/// a value (`pause` on x86-64, `yield` on ARM): the core saves power and
/// leaves the other thread of its core more of the pipeline, and the spin
/// ends without the memory-order misspeculation that a plain loop pays.
static inline void kcp_spin_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
