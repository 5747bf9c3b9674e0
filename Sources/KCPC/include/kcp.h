/*
 * kcp.h: the C ABI of the kcp engine (kernel cluster pruning).
 *
 * Hand-written contract for the `@_cdecl` thunks in Sources/KCPC; see
 * docs/ABI.md for ownership and lifetimes. Every function that can fail
 * returns a kcp_status; on failure, kcp_error_message() holds a message for
 * the calling thread, starting with the name of the offending argument.
 *
 * Arrays are row-major and owned by the caller. The engine reads and writes
 * them only during the call and keeps no pointer afterwards.
 */
#ifndef KCP_H
#define KCP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KCP_ABI_VERSION 1

typedef int32_t kcp_status;
enum {
    KCP_OK = 0,
    KCP_INVALID_ARGUMENT = 1, /* the caller can fix it (Python: ValueError) */
    KCP_ENGINE_ERROR = 2      /* a numeric failure inside the engine (Python: kcp.KCPError) */
};

enum { KCP_CRITERION_KCP = 0, KCP_CRITERION_L1 = 1, KCP_CRITERION_L2 = 2,
       KCP_CRITERION_FPGM = 3, KCP_CRITERION_RANDOM = 4 };
enum { KCP_CENTER_MEAN = 0, KCP_CENTER_MEDIAN = 1 };
enum { KCP_GRANULARITY_CHANNEL = 0, KCP_GRANULARITY_KERNEL = 1 };
enum { KCP_AXIS_OUTPUT = 0, KCP_AXIS_INPUT = 1, KCP_AXIS_KERNEL = 2 };

/* Indices into the `geometry` array filled by kcp_layer_geometry. */
enum { KCP_GEOMETRY_IN_CHANNELS = 0, KCP_GEOMETRY_OUT_CHANNELS = 1,
       KCP_GEOMETRY_CLUSTER_LENGTH = 2, KCP_GEOMETRY_KERNELS = 3, KCP_GEOMETRY_COUNT = 4 };

/* The KCP_ABI_VERSION the engine was built with. */
int32_t kcp_abi_version(void);

/* The calling thread's message for its last failed call ("" if none). */
const char *kcp_error_message(void);

/* Thread count of the engine's parallel loops and of OpenBLAS (n >= 1). */
kcp_status kcp_threads_set(int32_t n);
int32_t kcp_threads_get(void);

/*
 * Layer weights: `shape` has `ndim` entries, [O, I] (linear) or
 * [O, I/g, kh, kw] (conv with `groups` groups).
 */

/* Validates a layer shape and fills geometry[KCP_GEOMETRY_COUNT]. */
kcp_status kcp_layer_geometry(const int64_t *shape, int32_t ndim, int64_t groups, int64_t *geometry);

/*
 * Normalised channel scores: `criterion` KCP gives in_channels scores (one
 * per kernel cluster), the others out_channels scores (one per filter).
 */
kcp_status kcp_layer_scores(const float *weight, const int64_t *shape, int32_t ndim, int64_t groups,
                            int32_t criterion, int32_t center, uint64_t seed, double *scores);

/*
 * KCP on one layer. Channel granularity: scores and keep have in_channels
 * entries, labels in_channels, centers centers * cluster_length.
 * Kernel granularity: scores and keep have `kernels` entries ([O, I/g]),
 * labels and centers are not written (may be NULL).
 */
kcp_status kcp_layer_cluster(const float *weight, const int64_t *shape, int32_t ndim, int64_t groups,
                             double ratio, int32_t center, int32_t centers, int32_t granularity,
                             int32_t round_to, uint64_t seed,
                             double *scores, int32_t *labels, float *centers_out, uint8_t *keep);

/* Keep mask (1 = keep) for `count` scores: prune floor(ratio * count), smallest first. */
kcp_status kcp_scores_select(const double *scores, int64_t count, double ratio, int32_t round_to,
                             uint8_t *keep);

/*
 * Parameters sliced along axis 0 (outputs) and axis 1 (inputs); a 1-D
 * parameter (a bias) has axis 0 only.
 */

/* Writes the kept entries into `out` (out_count elements); NULL keeps an axis whole. */
kcp_status kcp_weight_compact(const float *weight, const int64_t *shape, int32_t ndim,
                              const uint8_t *keep_out, const uint8_t *keep_in,
                              float *out, int64_t out_count);

/* Zeroes, in place, the entries that `keep` (keep_count entries along `axis`) marks 0. */
kcp_status kcp_weight_mask(float *weight, const int64_t *shape, int32_t ndim,
                           const uint8_t *keep, int64_t keep_count, int32_t axis);

#ifdef __cplusplus
}
#endif

#endif /* KCP_H */
