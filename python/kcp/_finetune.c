/*
 * kcp._native fine-tuning functions: a kcp_finetune lives in a PyCapsule.
 * An epoch reports its steps through progress_trampoline (_native.c).
 */
#include "_native.h"

static const char *CAPSULE = "kcp.finetune";

static void destroy_capsule(PyObject *capsule) {
    kcp_finetune_destroy(PyCapsule_GetPointer(capsule, CAPSULE));
}

/* `dict` (field name -> value, every field of kcp_finetune_settings but version and size) as the struct. */
static int read_settings(PyObject *dict, kcp_finetune_settings *s) {
    static char *names[] = {"epochs", "batch_size", "seed", "task", "ignore_label", "optimizer", "momentum", "nesterov",
                            "weight_decay", "beta1", "beta2", "epsilon", "learning_rate", "schedule", "step_every",
                            "step_gamma", "minimum_rate", "warmup_steps", "prune", "prune_amount_kind", "prune_amount",
                            "prune_global", "prune_max_ratio", "prune_criterion", "prune_center", "prune_round_to",
                            "prune_every", "prune_ramp_epochs", "flip", "shift", NULL};
    long long epochs, batch_size, task, ignore_label, optimizer, nesterov, schedule, step_every, warmup_steps, prune,
        prune_amount_kind, prune_global, prune_criterion, prune_center, prune_round_to, prune_every, prune_ramp_epochs,
        flip, shift;
    unsigned long long seed;
    if (!PyDict_Check(dict)) {
        PyErr_SetString(PyExc_TypeError, "settings: expected a dict");
        return 0;
    }
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) return 0;
    int ok = PyArg_ParseTupleAndKeywords(
        empty, dict, "$LLKLLLdLdddddLLddLLLdLdLLLLLLL:settings", names, &epochs, &batch_size, &seed, &task, &ignore_label,
        &optimizer, &s->momentum, &nesterov, &s->weight_decay, &s->beta1, &s->beta2, &s->epsilon, &s->learning_rate,
        &schedule, &step_every, &s->step_gamma, &s->minimum_rate, &warmup_steps, &prune, &prune_amount_kind,
        &s->prune_amount, &prune_global, &s->prune_max_ratio, &prune_criterion, &prune_center, &prune_round_to,
        &prune_every, &prune_ramp_epochs, &flip, &shift);
    Py_DECREF(empty);
    if (!ok) return 0;
    s->version = KCP_FINETUNE_SETTINGS_VERSION;
    s->size = sizeof(kcp_finetune_settings);
    s->epochs = epochs, s->batch_size = batch_size, s->seed = seed, s->task = task, s->ignore_label = ignore_label;
    s->optimizer = optimizer, s->nesterov = nesterov, s->schedule = schedule, s->step_every = step_every;
    s->warmup_steps = warmup_steps, s->prune = prune, s->prune_amount_kind = prune_amount_kind;
    s->prune_global = prune_global, s->prune_criterion = prune_criterion, s->prune_center = prune_center;
    s->prune_round_to = prune_round_to, s->prune_every = prune_every, s->prune_ramp_epochs = prune_ramp_epochs;
    s->flip = flip, s->shift = shift;
    return 1;
}

/* Samples (inputs, targets[, mask]) converted for the engine; `held` keeps what they point into. */
typedef struct {
    array_list inputs;
    PyArrayObject *targets, *mask;
    int64_t shape[8];
    kcp_arrays input_arrays;
    kcp_samples samples;
} held_samples;

static int read_samples(PyObject *inputs, PyObject *targets, PyObject *mask, held_samples *held, const char *name,
                        const char *targets_name) {
    if (!read_arrays(inputs, 0, &held->inputs, name)) return 0;
    if ((held->targets = read_float32(targets, targets_name)) == NULL || !check_ndim(held->targets, targets_name))
        return 0;
    if (mask != Py_None && (held->mask = (PyArrayObject *)PyArray_FROM_OTF(mask, NPY_BOOL, NPY_ARRAY_IN_ARRAY)) == NULL)
        return 0;
    if (held->mask != NULL && PyArray_SIZE(held->mask) != PyArray_SIZE(held->targets)) {
        PyErr_Format(PyExc_ValueError, "%s: the mask has %zd entries, the targets %zd", name,
                     (Py_ssize_t)PyArray_SIZE(held->mask), (Py_ssize_t)PyArray_SIZE(held->targets));
        return 0;
    }
    copy_shape(held->targets, held->shape);
    held->input_arrays = input_view(&held->inputs);
    held->samples = (kcp_samples){&held->input_arrays, held->shape, PyArray_NDIM(held->targets),
                                  PyArray_DATA(held->targets), held->mask ? PyArray_DATA(held->mask) : NULL};
    return 1;
}

static void release_samples(held_samples *held) {
    release_arrays(&held->inputs);
    Py_XDECREF(held->targets);
    Py_XDECREF(held->mask);
}

PyObject *finetune_create(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *network_obj, *settings_obj, *inputs_obj, *targets_obj, *mask_obj, *val_inputs_obj, *val_targets_obj,
        *val_mask_obj, *result = NULL;
    held_samples train = {0}, val = {0};
    kcp_finetune_settings settings;
    kcp_finetune *finetune = NULL;
    kcp_status status;
    if (!PyArg_ParseTuple(args, "OOOOOOOO:finetune_create", &network_obj, &settings_obj, &inputs_obj, &targets_obj,
                          &mask_obj, &val_inputs_obj, &val_targets_obj, &val_mask_obj))
        return NULL;
    kcp_network *network = unwrap_network(network_obj);
    if (network == NULL || !read_settings(settings_obj, &settings)) return NULL;
    if (!read_samples(inputs_obj, targets_obj, mask_obj, &train, "train", "train targets")) goto done;
    if (val_targets_obj != Py_None &&
        !read_samples(val_inputs_obj, val_targets_obj, val_mask_obj, &val, "val", "val targets"))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    status = kcp_finetune_create(network, &settings, &train.samples, val.targets ? &val.samples : NULL, &finetune);
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = PyCapsule_New(finetune, CAPSULE, destroy_capsule);
    if (result == NULL) kcp_finetune_destroy(finetune);
done:
    release_samples(&train);
    release_samples(&val);
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
    /* Sized by one call, filled by the next, which checks the size again. */
    kcp_status status = kcp_finetune_history(finetune, NULL, 0, &count);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    npy_intp shape[2] = {count, KCP_FT_RECORD_COUNT};
    PyArrayObject *records = (PyArrayObject *)PyArray_SimpleNew(2, shape, NPY_FLOAT64);
    if (records == NULL) return NULL;
    status = kcp_finetune_history(finetune, PyArray_DATA(records), PyArray_SIZE(records), &count);
    if (status != KCP_OK) { raise_status(status); Py_DECREF(records); return NULL; }
    if (count != shape[0]) { Py_DECREF(records); return finetune_history(self, args); } /* an epoch ended between */
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
    int64_t capacity = size;
    status = kcp_finetune_checkpoint(finetune, (uint8_t *)PyBytes_AS_STRING(bytes), capacity, &size);
    if (status != KCP_OK) { raise_status(status); Py_DECREF(bytes); return NULL; }
    if (size != capacity) { Py_DECREF(bytes); return finetune_checkpoint(self, args); } /* an epoch ended between */
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
