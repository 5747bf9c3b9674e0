/*
 * kcp._native fine-tuning functions: a kcp_finetune lives in a PyCapsule.
 * An epoch reports its steps through progress_trampoline (_native.c).
 */
#include "_native.h"

static const char *CAPSULE = "kcp.finetune";

static void destroy_capsule(PyObject *capsule) {
    kcp_finetune_destroy(PyCapsule_GetPointer(capsule, CAPSULE));
}

/* The data pointers of a sequence's arrays as float32 (at most 16: one per network input). */
static int float_pointers(PyObject *sequence, PyArrayObject **arrays, const float **data, Py_ssize_t *count,
                          const char *name) {
    *count = PySequence_Size(sequence);
    if (*count < 0) return 0;
    if (*count > 16) {
        PyErr_Format(PyExc_ValueError, "%s: at most 16 input arrays", name);
        *count = 0;
        return 0;
    }
    for (Py_ssize_t i = 0; i < *count; i++) arrays[i] = NULL;
    for (Py_ssize_t i = 0; i < *count; i++) {
        PyObject *item = PySequence_GetItem(sequence, i);
        if (item == NULL) return 0;
        arrays[i] = read_float32(item, name);
        Py_DECREF(item);
        if (arrays[i] == NULL) return 0;
        data[i] = PyArray_DATA(arrays[i]);
    }
    return 1;
}

PyObject *finetune_create(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *network_obj, *settings_obj, *inputs_obj, *targets_obj, *mask_obj, *val_inputs_obj, *val_targets_obj,
        *val_mask_obj, *result = NULL;
    PyArrayObject *settings = NULL, *targets = NULL, *mask = NULL, *val_targets = NULL, *val_mask = NULL;
    PyArrayObject *inputs[16], *val_inputs[16];
    const float *input_data[16], *val_input_data[16];
    Py_ssize_t input_count = 0, val_count = 0;
    int64_t shape[8];
    kcp_finetune *finetune = NULL;
    kcp_status status;
    if (!PyArg_ParseTuple(args, "OOOOOOOO:finetune_create", &network_obj, &settings_obj, &inputs_obj, &targets_obj,
                          &mask_obj, &val_inputs_obj, &val_targets_obj, &val_mask_obj))
        return NULL;
    kcp_network *network = unwrap_network(network_obj);
    if (network == NULL) return NULL;
    settings = (PyArrayObject *)PyArray_FROM_OTF(settings_obj, NPY_FLOAT64, NPY_ARRAY_IN_ARRAY);
    if (settings == NULL || !float_pointers(inputs_obj, inputs, input_data, &input_count, "train")) goto done;
    if ((targets = read_float32(targets_obj, "train targets")) == NULL || !check_ndim(targets, "train targets")) goto done;
    mask = (PyArrayObject *)(mask_obj == Py_None ? NULL : PyArray_FROM_OTF(mask_obj, NPY_BOOL, NPY_ARRAY_IN_ARRAY));
    if (mask_obj != Py_None && mask == NULL) goto done;
    if (val_targets_obj != Py_None) {
        if (!float_pointers(val_inputs_obj, val_inputs, val_input_data, &val_count, "val")) goto done;
        if ((val_targets = read_float32(val_targets_obj, "val targets")) == NULL) goto done;
        val_mask = (PyArrayObject *)(val_mask_obj == Py_None ? NULL
                                                             : PyArray_FROM_OTF(val_mask_obj, NPY_BOOL, NPY_ARRAY_IN_ARRAY));
        if (val_mask_obj != Py_None && val_mask == NULL) goto done;
    }
    copy_shape(targets, shape);
    Py_BEGIN_ALLOW_THREADS
    status = kcp_finetune_create(network, PyArray_DATA(settings), (int32_t)PyArray_SIZE(settings), input_data, shape,
                                 PyArray_NDIM(targets), PyArray_DATA(targets), mask ? PyArray_DATA(mask) : NULL,
                                 val_targets ? val_input_data : NULL, val_targets ? PyArray_DIM(val_targets, 0) : 0,
                                 val_targets ? PyArray_DATA(val_targets) : NULL, val_mask ? PyArray_DATA(val_mask) : NULL,
                                 &finetune);
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = PyCapsule_New(finetune, CAPSULE, destroy_capsule);
    if (result == NULL) kcp_finetune_destroy(finetune);
done:
    for (Py_ssize_t i = 0; i < input_count; i++) Py_XDECREF(inputs[i]);
    for (Py_ssize_t i = 0; i < val_count; i++) Py_XDECREF(val_inputs[i]);
    Py_XDECREF(settings);
    Py_XDECREF(targets);
    Py_XDECREF(mask);
    Py_XDECREF(val_targets);
    Py_XDECREF(val_mask);
    return result;
}

PyObject *finetune_run_epoch(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    progress_context progress = {Py_None, 0};
    double record[KCP_FT_RECORD_COUNT];
    int32_t stopped = 0;
    kcp_status status;
    if (!PyArg_ParseTuple(args, "OO:finetune_run_epoch", &capsule, &progress.callable)) return NULL;
    kcp_finetune *finetune = PyCapsule_GetPointer(capsule, CAPSULE);
    if (finetune == NULL) return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = kcp_finetune_run_epoch(finetune, progress_trampoline, &progress, record, &stopped);
    Py_END_ALLOW_THREADS
    if (progress.raised) return NULL;
    if (status != KCP_OK) { raise_status(status); return NULL; }
    if (stopped) Py_RETURN_NONE;
    return Py_BuildValue("(ddddd)", record[0], record[1], record[2], record[3], record[4]);
}

PyObject *finetune_network(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    int mode;
    kcp_network *network = NULL;
    if (!PyArg_ParseTuple(args, "Oi:finetune_network", &capsule, &mode)) return NULL;
    kcp_finetune *finetune = PyCapsule_GetPointer(capsule, CAPSULE);
    if (finetune == NULL) return NULL;
    kcp_status status = kcp_finetune_network(finetune, mode, &network);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    return network_capsule(network);
}

PyObject *finetune_history(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    int64_t count = 0;
    if (!PyArg_ParseTuple(args, "O:finetune_history", &capsule)) return NULL;
    kcp_finetune *finetune = PyCapsule_GetPointer(capsule, CAPSULE);
    if (finetune == NULL) return NULL;
    kcp_status status = kcp_finetune_history(finetune, NULL, 0, &count);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    npy_intp shape[2] = {count, KCP_FT_RECORD_COUNT};
    PyArrayObject *records = (PyArrayObject *)PyArray_SimpleNew(2, shape, NPY_FLOAT64);
    if (records == NULL) return NULL;
    status = kcp_finetune_history(finetune, PyArray_DATA(records), PyArray_SIZE(records), &count);
    if (status != KCP_OK) { raise_status(status); Py_DECREF(records); return NULL; }
    return (PyObject *)records;
}

PyObject *finetune_checkpoint(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    int64_t size = 0;
    if (!PyArg_ParseTuple(args, "O:finetune_checkpoint", &capsule)) return NULL;
    kcp_finetune *finetune = PyCapsule_GetPointer(capsule, CAPSULE);
    if (finetune == NULL) return NULL;
    kcp_status status = kcp_finetune_checkpoint(finetune, NULL, 0, &size);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, size);
    if (bytes == NULL) return NULL;
    status = kcp_finetune_checkpoint(finetune, (uint8_t *)PyBytes_AS_STRING(bytes), size, &size);
    if (status != KCP_OK) { raise_status(status); Py_DECREF(bytes); return NULL; }
    return bytes;
}

PyObject *finetune_restore(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    Py_buffer checkpoint;
    if (!PyArg_ParseTuple(args, "Oy*:finetune_restore", &capsule, &checkpoint)) return NULL;
    kcp_finetune *finetune = PyCapsule_GetPointer(capsule, CAPSULE);
    kcp_status status = KCP_OK;
    if (finetune != NULL) status = kcp_finetune_restore(finetune, checkpoint.buf, checkpoint.len);
    PyBuffer_Release(&checkpoint);
    if (finetune == NULL) return NULL;
    if (status != KCP_OK) { raise_status(status); return NULL; }
    Py_RETURN_NONE;
}
