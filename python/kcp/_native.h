/* Shared by the sources of kcp._native: the engine's ABI and the helpers
 * every function uses to convert arguments and report errors. */
#ifndef KCP_NATIVE_H
#define KCP_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PY_ARRAY_UNIQUE_SYMBOL kcp_native_ARRAY_API
#ifndef KCP_NATIVE_MAIN
#define NO_IMPORT_ARRAY
#endif
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#include <numpy/arrayobject.h>

#include "kcp.h"

/* Room for one node's attributes in the extension's buffers (the longest op, conv_transpose3d, has 16). */
#define ATTRIBUTE_CAPACITY 32

/* kcp.KCPError: failures inside the engine. */
extern PyObject *KCPError;

/* Raises ValueError (bad argument) or KCPError with the engine's message. */
void raise_status(kcp_status status);
/* `obj` as an aligned, C-contiguous float32 array (converted if needed). */
PyArrayObject *read_float32(PyObject *obj, const char *name);

/* The float32 arrays of a sequence, read (converted if needed) or, with
 * `writeable`, used in place (C-contiguous float32 required). */
typedef struct {
    PyArrayObject **arrays;
    float **data;
    int64_t *sizes;
    Py_ssize_t count;
} array_list;
int read_arrays(PyObject *sequence, int writeable, array_list *list, const char *name);
/* The list as the engine's kcp_arrays / kcp_mutable_arrays (pointers with their sizes). */
kcp_arrays input_view(const array_list *list);
kcp_mutable_arrays output_view(const array_list *list);
void release_arrays(array_list *list);

/* A kcp_progress callback into Python: it takes the GIL, checks for signals
 * (Ctrl-C) and calls `callable(step, steps, loss)` (unless None); an exception
 * from either sets `raised`, stops the engine's work at its next step, and is
 * raised once the engine has returned. */
typedef struct {
    PyObject *callable;
    int raised;
} progress_context;
int32_t progress_trampoline(void *context, int64_t step, int64_t steps, double loss);
/* `obj` itself (a new reference) if it is an aligned, C-contiguous float32
 * ndarray, writeable if `writeable`; otherwise NULL with an error. */
PyArrayObject *float32_in_place(PyObject *obj, const char *name, int writeable);
/* The tuple of a shape. */
PyObject *shape_tuple(const int64_t *shape, int32_t ndim);
/* Fails with ValueError unless the array has 1 to 8 dimensions. */
int check_ndim(PyArrayObject *array, const char *name);
void copy_shape(PyArrayObject *array, int64_t *shape);

/* A PyCapsule owning `network` (released on failure), and the network of
 * such a capsule (NULL with an exception for anything else). */
PyObject *network_capsule(kcp_network *network);
kcp_network *unwrap_network(PyObject *capsule);

/* The network functions of _network.c and _plan.c and the fine-tuning
 * functions of _finetune.c, spliced into the module's method table. */
PyObject *finetune_create(PyObject *self, PyObject *args);
PyObject *finetune_run_epoch(PyObject *self, PyObject *args);
PyObject *finetune_network(PyObject *self, PyObject *args);
PyObject *finetune_history(PyObject *self, PyObject *args);
PyObject *finetune_checkpoint(PyObject *self, PyObject *args);
PyObject *finetune_restore(PyObject *self, PyObject *args);
PyObject *network_create(PyObject *self, PyObject *args);
PyObject *network_add_input(PyObject *self, PyObject *args);
PyObject *network_add_parameter(PyObject *self, PyObject *args);
PyObject *network_add_node(PyObject *self, PyObject *args);
PyObject *network_add_output(PyObject *self, PyObject *args);
PyObject *network_truncate(PyObject *self, PyObject *args);
PyObject *network_counts(PyObject *self, PyObject *args);
PyObject *network_names(PyObject *self, PyObject *args);
PyObject *network_find(PyObject *self, PyObject *args);
PyObject *network_nodes(PyObject *self, PyObject *args);
PyObject *network_ports(PyObject *self, PyObject *args);
PyObject *network_value_shape(PyObject *self, PyObject *args);
PyObject *network_parameter_read(PyObject *self, PyObject *args);
PyObject *network_parameter_write(PyObject *self, PyObject *args);
PyObject *network_forward(PyObject *self, PyObject *args);
PyObject *network_gradients(PyObject *self, PyObject *args);
PyObject *network_cost(PyObject *self, PyObject *args);
PyObject *network_spaces(PyObject *self, PyObject *args);
PyObject *network_plan(PyObject *self, PyObject *args);
PyObject *network_prune(PyObject *self, PyObject *args);
PyObject *network_compensate(PyObject *self, PyObject *args);

#define NETWORK_METHODS \
    {"network_create", network_create, METH_NOARGS, "network_create() -> handle."}, \
    {"network_add_input", network_add_input, METH_VARARGS, "network_add_input(h, name, shape) -> value."}, \
    {"network_add_parameter", network_add_parameter, METH_VARARGS, "network_add_parameter(h, name, array) -> index."}, \
    {"network_add_node", network_add_node, METH_VARARGS, \
     "network_add_node(h, name, op, attributes, inputs, parameters) -> value."}, \
    {"network_add_output", network_add_output, METH_VARARGS, "network_add_output(h, value)."}, \
    {"network_truncate", network_truncate, METH_VARARGS, "network_truncate(h, values, parameters, outputs)."}, \
    {"network_counts", network_counts, METH_VARARGS, \
     "network_counts(h) -> (values, nodes, parameters, inputs, outputs, revision)."}, \
    {"network_names", network_names, METH_VARARGS, "network_names(h, kind) -> value (0) or parameter (1) names."}, \
    {"network_find", network_find, METH_VARARGS, "network_find(h, kind, name) -> index, or -1."}, \
    {"network_nodes", network_nodes, METH_VARARGS, \
     "network_nodes(h, count, value names, parameter names) -> [(op, attributes, output, input names, parameter names)]."}, \
    {"network_ports", network_ports, METH_VARARGS, "network_ports(h) -> (input values, output values)."}, \
    {"network_value_shape", network_value_shape, METH_VARARGS, "network_value_shape(h, value, batch) -> tuple."}, \
    {"network_parameter_read", network_parameter_read, METH_VARARGS, "network_parameter_read(h, index) -> array."}, \
    {"network_parameter_write", network_parameter_write, METH_VARARGS, "network_parameter_write(h, index, array)."}, \
    {"network_forward", network_forward, METH_VARARGS, "network_forward(h, inputs, outputs, batch[, seconds])."}, \
    {"network_gradients", network_gradients, METH_VARARGS, \
     "network_gradients(h, inputs, batch, training, output_gradients, outputs, gradients)."}, \
    {"network_cost", network_cost, METH_VARARGS, "network_cost(h, nodes) -> (node MACs, MACs, params)."}, \
    {"network_spaces", network_spaces, METH_VARARGS, "network_spaces(h) -> (class_of, space_of, frozen, reasons)."}, \
    {"network_plan", network_plan, METH_VARARGS, "network_plan(h, ...) -> (keep, scores, ratio, costs)."}, \
    {"network_prune", network_prune, METH_VARARGS, "network_prune(h, keep, mode) -> handle."}, \
    {"network_compensate", network_compensate, METH_VARARGS, \
     "network_compensate(h, keep, inputs, batch, ridge, chunk, callback) -> handle."}, \
    {"finetune_create", finetune_create, METH_VARARGS, "finetune_create(network, settings dict, inputs, targets, ...)."}, \
    {"finetune_run_epoch", finetune_run_epoch, METH_VARARGS, "finetune_run_epoch(h, callback) -> record or None."}, \
    {"finetune_network", finetune_network, METH_VARARGS, "finetune_network(h, mode) -> network handle."}, \
    {"finetune_history", finetune_history, METH_VARARGS, "finetune_history(h) -> [epochs, 5] records."}, \
    {"finetune_checkpoint", finetune_checkpoint, METH_VARARGS, "finetune_checkpoint(h) -> bytes."}, \
    {"finetune_restore", finetune_restore, METH_VARARGS, "finetune_restore(h, bytes)."},

#endif
