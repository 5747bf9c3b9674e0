// The CPlatform target only exposes include/platform.h to Swift.
#include "platform.h"

#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

int kcp_cpu_has_avx512(void) {
#if defined(__x86_64__)
    // cpuid and xgetbv (the OS saves the zmm registers), as libgcc and compiler-rt check them.
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

const char *kcp_cpu_isa(void) {
#if defined(__x86_64__)
    const char *requested = getenv("KCP_ISA");
    if (requested && strcmp(requested, "avx2") == 0) return "avx2";
    return kcp_cpu_has_avx512() ? "avx512" : "avx2";
#else
    return "native";
#endif
}

const char *kcp_blas_coretype(void) {
    // OpenBLAS's kernels of the same width: SkylakeX's SGEMM is AVX-512 (Cooperlake and Sapphire Rapids
    // add BF16 products only), Haswell's AVX2 + FMA.
    const char *isa = kcp_cpu_isa();
    if (strcmp(isa, "avx512") == 0) return "SkylakeX";
    if (strcmp(isa, "avx2") == 0) return "Haswell";
    return NULL;
}

int kcp_cpu_name(char *name, int capacity) {
#if defined(__x86_64__)
    // The processor brand string: 48 bytes from cpuid leaves 0x80000002-4 (Intel SDM vol. 2A, CPUID).
    unsigned int words[12];
    if (capacity < 49 || __get_cpuid_max(0x80000000, 0) < 0x80000004) return 0;
    for (unsigned int leaf = 0; leaf < 3; leaf++)
        __get_cpuid(0x80000002 + leaf, &words[4 * leaf], &words[4 * leaf + 1], &words[4 * leaf + 2], &words[4 * leaf + 3]);
    memcpy(name, words, 48);
    name[48] = 0;
    return 1;
#else
    (void)name;
    (void)capacity;
    return 0;
#endif
}

int kcp_cpu_family_model(int *family, int *model) {
#if defined(__x86_64__)
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    unsigned int base = (eax >> 8) & 0xF, low = (eax >> 4) & 0xF;
    *family = (int)(base == 0xF ? base + ((eax >> 20) & 0xFF) : base);
    *model = (int)(base == 0x6 || base == 0xF ? low + (((eax >> 16) & 0xF) << 4) : low);
    return 1;
#else
    (void)family;
    (void)model;
    return 0;
#endif
}
