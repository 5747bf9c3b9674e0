/*
 * kcp.h: the C ABI of the kcp engine (kernel cluster pruning).
 *
 * Hand-written contract for the `@_cdecl` thunks in Sources/KCPC; see
 * docs/ABI.md for ownership and lifetimes. Every function that can fail
 * returns a kcp_status; on failure, kcp_error_message() holds a message for
 * the calling thread, starting with the name of the offending argument.
 *
 * Arrays are row-major and owned by the caller. The engine reads and writes
 * them only during the call and keeps no pointer afterwards. Every array
 * crosses with its size (elements); the engine checks it against what it
 * would read or write, in the same call, before touching the array.
 *
 * Handles may be shared by threads. A kcp_network is locked while a call
 * changes it or takes the snapshot it works on: every call sees the network
 * as it was when it began. A kcp_finetune serves one call at a time; a
 * second, from another thread or from a progress callback of the first,
 * fails with KCP_INVALID_ARGUMENT ("finetune: is in use ...").
 */
#ifndef KCP_H
#define KCP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KCP_ABI_VERSION 7

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

/*
 * The op table, one line per op, "op CODE NAME ATTRIBUTE,ATTRIBUTE,..." ("*": a variable list), and
 * one per value of an enumerated attribute, "ENUMERATION CODE NAME" (activation kinds, binary kinds,
 * resize modes). *length excludes the terminating 0, which is written only if capacity > *length.
 * The KCP_OP_* and KCP_ACTIVATION_* enums below restate it; a test checks that they agree.
 */
kcp_status kcp_op_table(char *buffer, int64_t capacity, int64_t *length);

/*
 * What the engine chose for this machine, one "key value" line each: "cpu" (the processor's brand
 * string), "family" and "model" (as the OS reports them, or "unknown"), "isa" (the instruction set of
 * its own vector kernels, "avx512", "avx2" or "native"; KCP_ISA=avx2 in the environment at load
 * time forces AVX2), "supported" (the sets this CPU runs, widest first, comma-separated),
 * "halfwidth" ("1" where the CPU runs 512-bit operations as two 256-bit halves, "0" otherwise), "blas"
 * (OpenBLAS's kernel set), "threads". *length as in kcp_op_table.
 */
kcp_status kcp_info(char *buffer, int64_t capacity, int64_t *length);

/* The calling thread's message for its last failed call ("" if none). */
const char *kcp_error_message(void);

/* Thread count of the engine's parallel loops (n >= 1); OpenBLAS runs one thread per call inside them. */
kcp_status kcp_threads_set(int32_t n);
int32_t kcp_threads_get(void);

/*
 * Layer weights: `shape` has `ndim` entries, [O, I] (linear) or
 * [O, I/g, kh, kw] (conv with `groups` groups).
 */

/* Validates a layer shape and fills geometry[KCP_GEOMETRY_COUNT] (`capacity`: its room, at least that). */
kcp_status kcp_layer_geometry(const int64_t *shape, int32_t ndim, int64_t groups, int64_t *geometry,
                              int64_t capacity);

/*
 * Normalised channel scores: `criterion` KCP gives in_channels scores (one
 * per kernel cluster), the others out_channels scores (one per filter);
 * `scores` has room for `capacity` entries.
 */
kcp_status kcp_layer_scores(const float *weight, const int64_t *shape, int32_t ndim, int64_t groups,
                            int32_t criterion, int32_t center, uint64_t seed, double *scores, int64_t capacity);

/*
 * KCP on one layer. Channel granularity: scores and keep have in_channels
 * entries, labels in_channels, centers centers * cluster_length.
 * Kernel granularity: scores and keep have `kernels` entries ([O, I/g]),
 * labels and centers are not written (may be NULL).
 * `capacities`: the room of scores, labels, centers_out and keep, in entries.
 */
kcp_status kcp_layer_cluster(const float *weight, const int64_t *shape, int32_t ndim, int64_t groups,
                             double ratio, int32_t center, int32_t centers, int32_t granularity,
                             int32_t round_to, uint64_t seed,
                             double *scores, int32_t *labels, float *centers_out, uint8_t *keep,
                             const int64_t capacities[4]);

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

/*
 * Networks. A kcp_network is an engine-owned DAG of nodes over values (see
 * docs/ABI.md); value and parameter indices are returned as int64.
 */
typedef struct kcp_network kcp_network;

/* Op codes for kcp_network_add_node and their attributes (doubles, in order); see kcp_op_table. */
enum {
    KCP_OP_CONV2D = 0,          /* stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right,
                                   dilation_h, dilation_w, groups; params weight [, bias] */
    KCP_OP_BATCHNORM = 1,       /* epsilon; params gamma, beta, running mean, running var */
    KCP_OP_ACTIVATION = 2,      /* kind (KCP_ACTIVATION_*), alpha, beta */
    KCP_OP_BINARY = 3,          /* kind (KCP_BINARY_*), constant_first; inputs a, b (broadcast), or x and
                                   a constant parameter shaped like one sample (dimensions equal or 1) */
    KCP_OP_CONCAT = 4,          /* one or more inputs, along channels */
    KCP_OP_MAX_POOL = 5,        /* kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, pad_bottom,
                                   pad_right, count_include_pad, ceil_mode, dilation_h, dilation_w */
    KCP_OP_AVG_POOL = 6,        /* as max pool */
    KCP_OP_ADAPTIVE_POOL = 7,   /* height, width, max (0 average, 1 max) */
    KCP_OP_GLOBAL_AVG_POOL = 8,
    KCP_OP_FLATTEN = 9,
    KCP_OP_LINEAR = 10,         /* params weight [, bias] */
    KCP_OP_RESIZE = 11,         /* height, width, mode (KCP_RESIZE_*), align_corners */
    KCP_OP_CORRELATION = 12,    /* max_disparity, scale; inputs left, right */
    KCP_OP_SOFTMAX = 13,
    KCP_OP_SOFT_ARGMIN = 14,    /* sign (-1: GC-Net's softmax(-x), 1: PSMNet's softmax(x)); input [N, D, H, W]
                                   or [N, 1, D, H, W] */
    KCP_OP_IDENTITY = 15,
    KCP_OP_CHANNEL_SHUFFLE = 16, /* groups */
    KCP_OP_CHANNEL_CHUNK = 17,  /* index, parts */
    KCP_OP_CHANNELWISE = 18,    /* the output shape without batch (1 to 8 sizes); no kernel: prunable,
                                   not runnable */
    KCP_OP_NORMALIZATION = 19,  /* groups, spatial; epsilon; params weight, bias, statistics mask */
    KCP_OP_CONV_TRANSPOSE2D = 20, /* stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right,
                                    output_padding_h, output_padding_w, dilation_h, dilation_w, groups;
                                    params weight [I, O/g, kh, kw] [, bias] */
    KCP_OP_CONV3D = 21,         /* stride_d, stride_h, stride_w, pad_front, pad_top, pad_left, pad_back, pad_bottom,
                                   pad_right, dilation_d, dilation_h, dilation_w, groups;
                                   params weight [O, I/g, kd, kh, kw] [, bias] */
    KCP_OP_CONV_TRANSPOSE3D = 22, /* stride_d, stride_h, stride_w, pad_front, pad_top, pad_left, pad_back,
                                    pad_bottom, pad_right, output_padding_d, output_padding_h, output_padding_w,
                                    dilation_d, dilation_h, dilation_w, groups;
                                    params weight [I, O/g, kd, kh, kw] [, bias] */
    KCP_OP_MAX_POOL3D = 23,     /* kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_front, pad_top,
                                   pad_left, pad_back, pad_bottom, pad_right, ceil_mode, dilation_d, dilation_h,
                                   dilation_w */
    KCP_OP_AVG_POOL3D = 24,     /* kernel_d, kernel_h, kernel_w, stride_d, stride_h, stride_w, pad_front, pad_top,
                                   pad_left, pad_back, pad_bottom, pad_right, count_include_pad, ceil_mode */
    KCP_OP_RESIZE3D = 25,       /* depth, height, width, mode (KCP_RESIZE_MODE_*: bilinear is trilinear), align_corners */
    KCP_OP_COST_VOLUME = 26     /* kind (KCP_COST_VOLUME_*), max_disparity, groups, scale; inputs left, right
                                   [N, C, H, W] -> [N, 2C or groups, max_disparity, H, W] */
};
enum { KCP_ACTIVATION_RELU = 0, KCP_ACTIVATION_CLIP = 1, KCP_ACTIVATION_LEAKY_RELU = 2, KCP_ACTIVATION_SIGMOID = 3,
       KCP_ACTIVATION_TANH = 4, KCP_ACTIVATION_SILU = 5, KCP_ACTIVATION_GELU = 6, KCP_ACTIVATION_GELU_TANH = 7,
       KCP_ACTIVATION_HARDSWISH = 8, KCP_ACTIVATION_HARDSIGMOID = 9, KCP_ACTIVATION_ELU = 10,
       KCP_ACTIVATION_MISH = 11, KCP_ACTIVATION_SOFTPLUS = 12, KCP_ACTIVATION_AFFINE = 13 };
enum { KCP_BINARY_ADD = 0, KCP_BINARY_SUB = 1, KCP_BINARY_MUL = 2, KCP_BINARY_DIV = 3 };
enum { KCP_RESIZE_MODE_NEAREST = 0, KCP_RESIZE_MODE_BILINEAR = 1 };
enum { KCP_COST_VOLUME_CONCATENATION = 0, KCP_COST_VOLUME_GROUP_CORRELATION = 1 };

kcp_status kcp_network_create(kcp_network **network);
/* Releases a network (NULL is ignored). */
void kcp_network_destroy(kcp_network *network);
kcp_status kcp_network_add_input(kcp_network *network, const char *name, const int64_t *shape, int32_t ndim,
                                 int64_t *value);
/* Copies `data` into a new engine-owned parameter. */
kcp_status kcp_network_add_parameter(kcp_network *network, const char *name, const float *data,
                                     const int64_t *shape, int32_t ndim, int64_t *parameter);
/* Adds a node; fails (leaving the network unchanged) if shapes do not infer. */
kcp_status kcp_network_add_node(kcp_network *network, const char *name, int32_t op,
                                const double *attributes, int32_t attribute_count,
                                const int64_t *inputs, int32_t input_count,
                                const int64_t *parameters, int32_t parameter_count, int64_t *value);
kcp_status kcp_network_add_output(kcp_network *network, int64_t value);
/* Removes what was added after the network had `values` values, `parameters` parameters and `outputs`
 * outputs (an interrupted build step undone); fails, changing nothing, if what stays uses what goes. */
kcp_status kcp_network_truncate(kcp_network *network, int64_t values, int64_t parameters, int64_t outputs);
/* The op code and attributes of node `node` (nodes numbered in the order they were added); `attributes`
 * has room for `capacity` entries, and a node with more is an error. */
kcp_status kcp_network_node_op(const kcp_network *network, int64_t node, int32_t *op, double *attributes,
                               int32_t capacity, int32_t *count);
/* Indices into the `counts` array filled by kcp_network_counts. The revision grows with every change of
 * structure (an add or a truncation, not a parameter write): a caller's copy of names or nodes read at
 * one revision is current while the revision is. */
enum { KCP_NETWORK_VALUES = 0, KCP_NETWORK_NODES = 1, KCP_NETWORK_PARAMETERS = 2, KCP_NETWORK_INPUTS = 3,
       KCP_NETWORK_OUTPUTS = 4, KCP_NETWORK_REVISION = 5, KCP_NETWORK_COUNTS = 6 };
/* What a name names, for kcp_network_names and kcp_network_find. */
enum { KCP_NAME_VALUE = 0, KCP_NAME_PARAMETER = 1 };
/* counts[count] (count = KCP_NETWORK_COUNTS): see the enum above. */
kcp_status kcp_network_counts(const kcp_network *network, int64_t *counts, int64_t count);
/* Every value (kind KCP_NAME_VALUE) or parameter name, in index order, each followed by a 0 byte;
 * *length counts those bytes; they and one more 0 are written only if capacity > *length. */
kcp_status kcp_network_names(const kcp_network *network, int32_t kind, char *buffer, int64_t capacity,
                             int64_t *length);
/* The index of the value or parameter called `name` (the latest, should names repeat), or -1. */
kcp_status kcp_network_find(const kcp_network *network, int32_t kind, const char *name, int64_t *index);
/* Node `node`'s output value, its input values (input_capacity entries at most; *input_count receives
 * how many) and its parameters (likewise); fails, writing nothing, if either capacity is too small. */
kcp_status kcp_network_node_edges(const kcp_network *network, int64_t node, int64_t *output, int64_t *inputs,
                                  int64_t input_capacity, int64_t *input_count, int64_t *parameters,
                                  int64_t parameter_capacity, int64_t *parameter_count);
/* The graph input values (input_count entries) and output values (output_count), in order; the counts
 * must be the network's (kcp_network_counts). */
kcp_status kcp_network_ports(const kcp_network *network, int64_t *inputs, int64_t input_count, int64_t *outputs,
                             int64_t output_count);
/* Shape of a value (at most 8 dims) for batch size `batch` (<= 0: the declared one). */
kcp_status kcp_network_value_shape(const kcp_network *network, int64_t value, int64_t batch,
                                   int64_t *shape, int32_t *ndim);
kcp_status kcp_network_parameter_shape(const kcp_network *network, int64_t parameter, int64_t *shape,
                                       int32_t *ndim);
/* Copies a parameter out to / in from the caller's `count` floats. */
kcp_status kcp_network_parameter_read(const kcp_network *network, int64_t parameter, float *out, int64_t count);
kcp_status kcp_network_parameter_write(kcp_network *network, int64_t parameter, const float *data, int64_t count);
/* Arrays with their sizes, passed by pointer: `count` pointers, pointer i to sizes[i] elements. */
typedef struct {
    const float *const *data;
    const int64_t *sizes;
    int64_t count;
} kcp_arrays;
typedef struct {
    float *const *data;
    const int64_t *sizes;
    int64_t count;
} kcp_mutable_arrays;

/* Inference: one input array per network input (batch `batch`), one output array per network output,
 * sized by kcp_network_value_shape; node_seconds (NULL, or node_count entries, one per node) receives
 * each node's wall time. */
kcp_status kcp_network_forward(const kcp_network *network, const kcp_arrays *inputs, int64_t batch,
                               const kcp_mutable_arrays *outputs, double *node_seconds, int64_t node_count);
/* Training pass: a forward keeping every value (training != 0: batchnorm on batch statistics), then
 * the backward from output_gradients (one per output, shaped like it). Writes the outputs and the
 * gradient of every parameter (one array per parameter, shaped like it; shared ones summed). */
kcp_status kcp_network_gradients(const kcp_network *network, const kcp_arrays *inputs, int64_t batch,
                                 int32_t training, const kcp_arrays *output_gradients,
                                 const kcp_mutable_arrays *outputs, const kcp_mutable_arrays *parameter_gradients);
/* MACs per sample of each node (NULL, or node_count entries) and total[2] = {MACs, learnable parameters}. */
kcp_status kcp_network_cost(const kcp_network *network, int64_t *node_macs, int64_t node_count, int64_t *total);

/* counts[3] = {channel classes, spaces, channels over all values}. */
kcp_status kcp_network_spaces(const kcp_network *network, int64_t *counts);
/* class_of[channels] (values in order, channels in order), space_of[classes], frozen[classes]; `channels`
 * and `classes` are the arrays' sizes, checked against the network's. */
kcp_status kcp_network_space_data(const kcp_network *network, int64_t *class_of, int64_t channels,
                                  int64_t *space_of, uint8_t *frozen, int64_t classes);
/* Why a space is frozen, lines joined by '\n'; *length excludes the terminating 0, which is written
 * only if capacity > *length. */
kcp_status kcp_network_space_reasons(const kcp_network *network, int64_t space, char *buffer, int64_t capacity,
                                     int64_t *length);
/* Plans pruning: amount_kind 0 = ratio, 1 = MACs reduction; override_count spaces get fixed ratios.
 * weights is NULL or weight_count (= the parameter count) pointers, one per parameter: a non-NULL one
 * points to as many floats as its parameter holds and is scored instead of the network's own, read
 * only during the call. Writes keep[classes], scores[classes] (`classes`: their size, checked against
 * the network's), the applied ratio and costs[4] = {MACs before, params before, MACs after, params after}. */
kcp_status kcp_network_plan(const kcp_network *network, int32_t amount_kind, double amount, int32_t global,
                            double max_ratio, int32_t criterion, int32_t center, int32_t round_to, uint64_t seed,
                            const int64_t *override_spaces, const double *override_ratios, int32_t override_count,
                            const float *const *weights, int64_t weight_count, uint8_t *keep, double *scores,
                            int64_t classes, double *ratio, int64_t *costs);
/* A new network: mode 0 masked (pruned channels zeroed), 1 compact (removed). */
kcp_status kcp_network_prune(const kcp_network *network, const uint8_t *keep, int64_t count, int32_t mode,
                             kcp_network **out);
/* Progress of long work: called a few times per second at most, and after the last step; a nonzero
 * return stops the work before the next step. `loss` is NaN where the work has none. */
typedef int32_t (*kcp_progress)(void *context, int64_t step, int64_t steps, double loss);

/* A new compact network (as kcp_network_prune, mode 1) whose layers reading pruned channels are
 * refitted by ridge least squares to the network's outputs on `batch` calibration samples (inputs
 * as kcp_network_forward's), `chunk` samples at a time. `progress` (may be NULL) counts chunks of
 * refitted layers; if it stops the work, *out receives NULL. */
kcp_status kcp_network_compensate(const kcp_network *network, const uint8_t *keep, int64_t count,
                                  const kcp_arrays *inputs, int64_t batch, double ridge, int64_t chunk,
                                  kcp_progress progress, void *context, kcp_network **out);

/*
 * Fine-tuning. A kcp_finetune holds a copy of a network, its data, optimizer
 * and pruning state; kcp_finetune_run_epoch trains one epoch natively.
 */
typedef struct kcp_finetune kcp_finetune;

#define KCP_FINETUNE_SETTINGS_VERSION 1

/* Settings of kcp_finetune_create. Every field is 8 bytes, so the struct has no padding; `version`
 * must be KCP_FINETUNE_SETTINGS_VERSION and `size` sizeof(kcp_finetune_settings). */
typedef struct {
    int64_t version, size;
    int64_t epochs, batch_size;
    uint64_t seed;
    int64_t task;              /* 0 classification, 1 segmentation, 2 disparity, 3 regression */
    int64_t ignore_label;      /* segmentation: label to skip, < 0 for none */
    int64_t optimizer;         /* 0 SGD, 1 AdamW */
    double momentum;
    int64_t nesterov;
    double weight_decay, beta1, beta2, epsilon, learning_rate;
    int64_t schedule;          /* 0 constant, 1 step, 2 cosine (over all steps after warm-up) */
    int64_t step_every;
    double step_gamma, minimum_rate;
    int64_t warmup_steps;
    int64_t prune;             /* 0 none, 1 soft, 2 hard */
    int64_t prune_amount_kind; /* as kcp_network_plan */
    double prune_amount;
    int64_t prune_global;
    double prune_max_ratio;
    int64_t prune_criterion, prune_center, prune_round_to, prune_every, prune_ramp_epochs;
    int64_t flip, shift;       /* augmentation: random horizontal flips, shifts up to `shift` pixels */
} kcp_finetune_settings;

/* Indices into the record array of kcp_finetune_run_epoch. */
enum { KCP_FT_RECORD_EPOCH = 0, KCP_FT_RECORD_LOSS = 1, KCP_FT_RECORD_METRIC = 2, KCP_FT_RECORD_MACS = 3,
       KCP_FT_RECORD_LEARNING_RATE = 4, KCP_FT_RECORD_COUNT = 5 };

/* Samples for fine-tuning: one array per network input, each [samples] + the input's shape without its
 * batch; targets of target_shape (first dimension = samples); an optional mask (uint8, one per target
 * element, or NULL). */
typedef struct {
    const kcp_arrays *inputs;
    const int64_t *target_shape;
    int64_t target_ndim;
    const float *targets;
    const uint8_t *mask;
} kcp_samples;

/* Copies the network and the data. Training and validation data (val NULL: none) pass the
 * same checks: shapes against the network's, targets finite, labels integers within the output's
 * classes or equal to ignore_label. */
kcp_status kcp_finetune_create(const kcp_network *network, const kcp_finetune_settings *settings,
                               const kcp_samples *train, const kcp_samples *val, kcp_finetune **out);
void kcp_finetune_destroy(kcp_finetune *finetune);
/* Runs the next epoch; writes record[KCP_FT_RECORD_COUNT] unless stopped (then *stopped = 1). A stop
 * requested at the epoch's last step completes and records the epoch. */
kcp_status kcp_finetune_run_epoch(kcp_finetune *finetune, kcp_progress progress, void *context, double *record,
                                  int32_t *stopped);
/* The epochs run so far: *count receives their number; records (count * KCP_FT_RECORD_COUNT doubles)
 * are written if capacity >= that (a NULL `records` only sizes). */
kcp_status kcp_finetune_history(const kcp_finetune *finetune, double *records, int64_t capacity, int64_t *count);
/* A checkpoint of the run (weights, optimizer, shuffling state, step, history, masks): *size receives
 * its length; the bytes are written to `buffer` if capacity >= *size. */
kcp_status kcp_finetune_checkpoint(const kcp_finetune *finetune, uint8_t *buffer, int64_t capacity, int64_t *size);
/* Continues from a checkpoint made by a run with the same network, settings and data; on failure the
 * run is unchanged. */
kcp_status kcp_finetune_restore(kcp_finetune *finetune, const uint8_t *checkpoint, int64_t size);
/* The network now: mode 0 as trained (pruned weights zeroed), 1 compact. */
kcp_status kcp_finetune_network(const kcp_finetune *finetune, int32_t mode, kcp_network **out);

#ifdef __cplusplus
}
#endif

#endif /* KCP_H */
