// glibc interfaces the Swift Glibc module does not carry.
#include <malloc.h>

/// 1 if the CPU and the OS support AVX-512 F, BW, DQ and VL (the set that
/// `-target-cpu skylake-avx512` code may use), else 0.
int kcp_cpu_has_avx512(void);
