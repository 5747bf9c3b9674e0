// The CPlatform target only exposes include/platform.h to Swift.
#include "platform.h"

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
