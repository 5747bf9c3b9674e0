// OpenBLAS's CBLAS interface, plus its thread-count controls.
#include <cblas.h>
#include <stddef.h>

// The one LAPACK routine the engine calls (OpenBLAS bundles LAPACK, Debian
// ships no header for it): solves A X = B for a symmetric positive definite A
// by Cholesky, Fortran calling convention (the trailing hidden length of `uplo`).
void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b, const int *ldb,
            int *info, size_t uplo_length);
