// glibc interfaces the Swift Glibc module does not carry.
#include <malloc.h>

/// 1 if the CPU and the OS support AVX-512 F, BW, DQ and VL (the set that
/// `-target-cpu skylake-avx512` code may use), else 0.
int kcp_cpu_has_avx512(void);
/// Writes the CPU's brand string (at most 48 characters and a 0) into `name`,
/// which has room for `capacity` bytes (at least 49); returns 1, or 0 where
/// the CPU reports none.
int kcp_cpu_name(char *name, int capacity);
