/*
 * kcp._native: the CPython face of the kcp engine's C ABI (include/kcp.h).
 *
 * Every function reads in one order: parse -> convert -> validate ->
 * allocate outputs -> release the GIL -> call the engine -> one `done:`
 * label that releases what was taken. Aligned, C-contiguous float32 arrays
 * are passed to the engine in place; anything else is converted first.
 */
#define KCP_NATIVE_MAIN
#include "_native.h"

PyObject *KCPError;

/* Raises the Python exception for a failed engine call. */
void raise_status(kcp_status status) {
    PyErr_SetString(status == KCP_INVALID_ARGUMENT ? PyExc_ValueError : KCPError, kcp_error_message());
}

/* `obj` as an aligned, C-contiguous float32 array, converting real numeric
 * input; NULL with TypeError for complex, bool, object or string data. */
PyArrayObject *read_float32(PyObject *obj, const char *name) {
    PyArrayObject *array = (PyArrayObject *)PyArray_FROM_O(obj);
    if (array == NULL) return NULL;
    if (!PyArray_ISINTEGER(array) && !PyArray_ISFLOAT(array)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a real-valued numeric array, got dtype %S",
                     name, (PyObject *)PyArray_DESCR(array));
        Py_DECREF(array);
        return NULL;
    }
    PyArrayObject *converted = (PyArrayObject *)PyArray_FROM_OTF(
        (PyObject *)array, NPY_FLOAT32, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    Py_DECREF(array);
    return converted;
}

PyArrayObject *float32_in_place(PyObject *obj, const char *name, int writeable) {
    const char *use = writeable ? "modified" : "read";
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: must be a numpy.ndarray to be %s in place, got %s",
                     name, use, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *array = (PyArrayObject *)obj;
    if (PyArray_TYPE(array) != NPY_FLOAT32) {
        PyErr_Format(PyExc_TypeError, "%s: must have dtype float32 to be %s in place, got %S",
                     name, use, (PyObject *)PyArray_DESCR(array));
        return NULL;
    }
    if (!PyArray_IS_C_CONTIGUOUS(array) || !PyArray_ISALIGNED(array)) {
        PyErr_Format(PyExc_ValueError, "%s: must be C-contiguous and aligned to be %s in place "
                     "(use numpy.ascontiguousarray%s)", name, use, writeable ? " and assign the result back" : "");
        return NULL;
    }
    if (writeable && !PyArray_ISWRITEABLE(array)) {
        PyErr_Format(PyExc_ValueError, "%s: is read-only", name);
        return NULL;
    }
    Py_INCREF(array);
    return array;
}

/* `obj` as a C-contiguous array of `type`, or NULL for None (`*ok` stays 1). */
static PyArrayObject *read_optional(PyObject *obj, int type, int *ok) {
    if (obj == Py_None) return NULL;
    PyArrayObject *array = (PyArrayObject *)PyArray_FROM_OTF(obj, type, NPY_ARRAY_IN_ARRAY);
    if (array == NULL) *ok = 0;
    return array;
}

PyObject *shape_tuple(const int64_t *shape, int32_t ndim) {
    PyObject *tuple = PyTuple_New(ndim);
    for (int32_t i = 0; tuple != NULL && i < ndim; i++) PyTuple_SET_ITEM(tuple, i, PyLong_FromLongLong(shape[i]));
    return tuple;
}

void copy_shape(PyArrayObject *array, int64_t *shape) {
    for (int axis = 0; axis < PyArray_NDIM(array) && axis < NPY_MAXDIMS; axis++) shape[axis] = PyArray_DIM(array, axis);
}

/* Checks the weight's dimension count before its shape is read. */
int check_ndim(PyArrayObject *array, const char *name) {
    int ndim = PyArray_NDIM(array);
    if (ndim < 1 || ndim > 8) {
        PyErr_Format(PyExc_ValueError, "%s: has %d dimensions, expected 1 to 8", name, ndim);
        return 0;
    }
    return 1;
}

/* -------------------------------------------------------------------------- */

int32_t progress_trampoline(void *context, int64_t step, int64_t steps, double loss) {
    progress_context *progress = context;
    PyGILState_STATE gil = PyGILState_Ensure();
    if (PyErr_CheckSignals() < 0) {
        progress->raised = 1;
    } else if (progress->callable != Py_None) {
        PyObject *returned = PyObject_CallFunction(progress->callable, "LLd", (long long)step, (long long)steps, loss);
        if (returned == NULL) progress->raised = 1;
        Py_XDECREF(returned);
    }
    PyGILState_Release(gil);
    return progress->raised;
}

/* A text the engine writes through `get` (kcp_op_table, kcp_info): its length first, then the text. */
static PyObject *engine_text(kcp_status (*get)(char *, int64_t, int64_t *)) {
    int64_t length = 0;
    if (get(NULL, 0, &length) != KCP_OK) {
        raise_status(KCP_ENGINE_ERROR);
        return NULL;
    }
    char *buffer = PyMem_Malloc(length + 1);
    if (buffer == NULL) return PyErr_NoMemory();
    PyObject *text = NULL;
    if (get(buffer, length + 1, &length) == KCP_OK) {
        text = PyUnicode_DecodeUTF8(buffer, length, "strict");
    } else {
        raise_status(KCP_ENGINE_ERROR);
    }
    PyMem_Free(buffer);
    return text;
}

static PyObject *op_table(PyObject *self, PyObject *args) {
    (void)self; (void)args;
    return engine_text(kcp_op_table);
}

static PyObject *info(PyObject *self, PyObject *args) {
    (void)self; (void)args;
    return engine_text(kcp_info);
}

static PyObject *abi_version(PyObject *self, PyObject *args) {
    (void)self; (void)args;
    return PyLong_FromLong(kcp_abi_version());
}

static PyObject *get_num_threads(PyObject *self, PyObject *args) {
    (void)self; (void)args;
    return PyLong_FromLong(kcp_threads_get());
}

static PyObject *set_num_threads(PyObject *self, PyObject *args) {
    (void)self;
    int n;
    if (!PyArg_ParseTuple(args, "i:set_num_threads", &n)) return NULL;
    kcp_status status = kcp_threads_set(n);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    Py_RETURN_NONE;
}

static PyObject *layer_scores(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *weight_obj, *result = NULL;
    long long groups;
    int criterion, center;
    unsigned long long seed;
    PyArrayObject *weight = NULL, *scores = NULL;
    int64_t shape[8], geometry[KCP_GEOMETRY_COUNT];
    kcp_status status;

    if (!PyArg_ParseTuple(args, "OLiiK:layer_scores", &weight_obj, &groups, &criterion, &center, &seed)) return NULL;
    if ((weight = read_float32(weight_obj, "weight")) == NULL) goto done;
    if (!check_ndim(weight, "weight")) goto done;
    copy_shape(weight, shape);
    status = kcp_layer_geometry(shape, PyArray_NDIM(weight), groups, geometry, KCP_GEOMETRY_COUNT);
    if (status != KCP_OK) { raise_status(status); goto done; }

    npy_intp count = geometry[criterion == KCP_CRITERION_KCP ? KCP_GEOMETRY_IN_CHANNELS : KCP_GEOMETRY_OUT_CHANNELS];
    if ((scores = (PyArrayObject *)PyArray_SimpleNew(1, &count, NPY_FLOAT64)) == NULL) goto done;

    Py_BEGIN_ALLOW_THREADS
    status = kcp_layer_scores(PyArray_DATA(weight), shape, PyArray_NDIM(weight), groups, criterion, center,
                              seed, PyArray_DATA(scores), PyArray_SIZE(scores));
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = (PyObject *)scores;
    scores = NULL;
done:
    Py_XDECREF(weight);
    Py_XDECREF(scores);
    return result;
}

static PyObject *layer_cluster(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *weight_obj, *result = NULL;
    long long groups;
    double ratio;
    int center, centers, granularity, round_to;
    unsigned long long seed;
    PyArrayObject *weight = NULL, *scores = NULL, *labels = NULL, *centers_out = NULL, *keep = NULL;
    int64_t shape[8], geometry[KCP_GEOMETRY_COUNT];
    kcp_status status;

    if (!PyArg_ParseTuple(args, "OLdiiiiK:layer_cluster", &weight_obj, &groups, &ratio, &center, &centers,
                          &granularity, &round_to, &seed))
        return NULL;
    if ((weight = read_float32(weight_obj, "weight")) == NULL) goto done;
    if (!check_ndim(weight, "weight")) goto done;
    copy_shape(weight, shape);
    status = kcp_layer_geometry(shape, PyArray_NDIM(weight), groups, geometry, KCP_GEOMETRY_COUNT);
    if (status != KCP_OK) { raise_status(status); goto done; }
    if (centers < 1 || centers > geometry[KCP_GEOMETRY_IN_CHANNELS]) {
        PyErr_Format(PyExc_ValueError, "centers: must be between 1 and the %lld input channels, got %d",
                     (long long)geometry[KCP_GEOMETRY_IN_CHANNELS], centers);
        goto done;
    }

    int per_kernel = granularity == KCP_GRANULARITY_KERNEL;
    npy_intp kernel_shape[2] = {shape[0], shape[1]};
    npy_intp channels = geometry[KCP_GEOMETRY_IN_CHANNELS];
    npy_intp centers_shape[2] = {centers, geometry[KCP_GEOMETRY_CLUSTER_LENGTH]};
    npy_intp *score_shape = per_kernel ? kernel_shape : &channels;
    int score_ndim = per_kernel ? 2 : 1;
    if ((scores = (PyArrayObject *)PyArray_SimpleNew(score_ndim, score_shape, NPY_FLOAT64)) == NULL) goto done;
    if ((keep = (PyArrayObject *)PyArray_SimpleNew(score_ndim, score_shape, NPY_BOOL)) == NULL) goto done;
    if (!per_kernel) {
        if ((labels = (PyArrayObject *)PyArray_SimpleNew(1, &channels, NPY_INT32)) == NULL) goto done;
        if ((centers_out = (PyArrayObject *)PyArray_SimpleNew(2, centers_shape, NPY_FLOAT32)) == NULL) goto done;
    }

    int64_t capacities[4] = {PyArray_SIZE(scores), labels ? PyArray_SIZE(labels) : 0,
                             centers_out ? PyArray_SIZE(centers_out) : 0, PyArray_SIZE(keep)};
    Py_BEGIN_ALLOW_THREADS
    status = kcp_layer_cluster(PyArray_DATA(weight), shape, PyArray_NDIM(weight), groups, ratio, center, centers,
                               granularity, round_to, seed, PyArray_DATA(scores),
                               labels ? PyArray_DATA(labels) : NULL,
                               centers_out ? PyArray_DATA(centers_out) : NULL, PyArray_DATA(keep), capacities);
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = Py_BuildValue("(OOOO)", scores, labels ? (PyObject *)labels : Py_None,
                           centers_out ? (PyObject *)centers_out : Py_None, keep);
done:
    Py_XDECREF(weight);
    Py_XDECREF(scores);
    Py_XDECREF(labels);
    Py_XDECREF(centers_out);
    Py_XDECREF(keep);
    return result;
}

static PyObject *scores_select(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *scores_obj, *result = NULL;
    double ratio;
    int round_to;
    PyArrayObject *scores = NULL, *keep = NULL;
    kcp_status status;

    if (!PyArg_ParseTuple(args, "Odi:scores_select", &scores_obj, &ratio, &round_to)) return NULL;
    scores = (PyArrayObject *)PyArray_FROM_OTF(scores_obj, NPY_FLOAT64, NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (scores == NULL) goto done;
    keep = (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(scores), PyArray_DIMS(scores), NPY_BOOL);
    if (keep == NULL) goto done;

    Py_BEGIN_ALLOW_THREADS
    status = kcp_scores_select(PyArray_DATA(scores), PyArray_SIZE(scores), ratio, round_to, PyArray_DATA(keep));
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = (PyObject *)keep;
    keep = NULL;
done:
    Py_XDECREF(scores);
    Py_XDECREF(keep);
    return result;
}

static PyObject *weight_compact(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *weight_obj, *keep_out_obj, *keep_in_obj, *result = NULL;
    PyArrayObject *weight = NULL, *keep_out = NULL, *keep_in = NULL, *out = NULL;
    int64_t shape[8];
    npy_intp out_shape[NPY_MAXDIMS];
    int ok = 1;
    kcp_status status;

    if (!PyArg_ParseTuple(args, "OOO:weight_compact", &weight_obj, &keep_out_obj, &keep_in_obj)) return NULL;
    if ((weight = read_float32(weight_obj, "weight")) == NULL) goto done;
    keep_out = read_optional(keep_out_obj, NPY_BOOL, &ok);
    keep_in = read_optional(keep_in_obj, NPY_BOOL, &ok);
    if (!ok || !check_ndim(weight, "weight")) goto done;
    copy_shape(weight, shape);
    for (int axis = 0; axis < PyArray_NDIM(weight); axis++) out_shape[axis] = shape[axis];
    if (keep_out != NULL) {
        if (PyArray_SIZE(keep_out) != shape[0]) {
            PyErr_Format(PyExc_ValueError, "keep_out: has %zd entries, weight axis 0 has %lld",
                         PyArray_SIZE(keep_out), (long long)shape[0]);
            goto done;
        }
        out_shape[0] = 0;
        for (npy_intp i = 0; i < shape[0]; i++) out_shape[0] += ((npy_bool *)PyArray_DATA(keep_out))[i] != 0;
    }
    if (keep_in != NULL) {
        if (PyArray_NDIM(weight) < 2 || PyArray_SIZE(keep_in) != shape[1]) {
            PyErr_Format(PyExc_ValueError, "keep_in: has %zd entries, weight axis 1 has %lld",
                         PyArray_SIZE(keep_in), PyArray_NDIM(weight) < 2 ? 0LL : (long long)shape[1]);
            goto done;
        }
        out_shape[1] = 0;
        for (npy_intp i = 0; i < shape[1]; i++) out_shape[1] += ((npy_bool *)PyArray_DATA(keep_in))[i] != 0;
    }
    if ((out = (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(weight), out_shape, NPY_FLOAT32)) == NULL) goto done;

    Py_BEGIN_ALLOW_THREADS
    status = kcp_weight_compact(PyArray_DATA(weight), shape, PyArray_NDIM(weight),
                                keep_out ? PyArray_DATA(keep_out) : NULL, keep_in ? PyArray_DATA(keep_in) : NULL,
                                PyArray_DATA(out), PyArray_SIZE(out));
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = (PyObject *)out;
    out = NULL;
done:
    Py_XDECREF(weight);
    Py_XDECREF(keep_out);
    Py_XDECREF(keep_in);
    Py_XDECREF(out);
    return result;
}

static PyObject *weight_mask(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *weight_obj, *keep_obj, *result = NULL;
    int axis;
    PyArrayObject *weight = NULL, *keep = NULL;
    int64_t shape[8];
    kcp_status status;

    if (!PyArg_ParseTuple(args, "OOi:weight_mask", &weight_obj, &keep_obj, &axis)) return NULL;
    if ((weight = float32_in_place(weight_obj, "weight", 1)) == NULL) goto done;
    keep = (PyArrayObject *)PyArray_FROM_OTF(keep_obj, NPY_BOOL, NPY_ARRAY_IN_ARRAY);
    if (keep == NULL || !check_ndim(weight, "weight")) goto done;
    copy_shape(weight, shape);

    Py_BEGIN_ALLOW_THREADS
    status = kcp_weight_mask(PyArray_DATA(weight), shape, PyArray_NDIM(weight), PyArray_DATA(keep),
                             PyArray_SIZE(keep), axis);
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(weight);
    Py_XDECREF(keep);
    return result;
}

/* -------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"abi_version", abi_version, METH_NOARGS, "The engine's C ABI version."},
    {"op_table", op_table, METH_NOARGS, "The engine's op table as text (see kcp_op_table)."},
    {"info", info, METH_NOARGS, "The engine's choices for this machine as text (see kcp_info)."},
    {"get_num_threads", get_num_threads, METH_NOARGS, "Engine thread count."},
    {"set_num_threads", set_num_threads, METH_VARARGS, "set_num_threads(n): engine thread count."},
    {"layer_scores", layer_scores, METH_VARARGS,
     "layer_scores(weight, groups, criterion, center, seed) -> float64 scores."},
    {"layer_cluster", layer_cluster, METH_VARARGS,
     "layer_cluster(weight, groups, ratio, center, centers, granularity, round_to, seed)"
     " -> (scores, labels, centers, keep)."},
    {"scores_select", scores_select, METH_VARARGS, "scores_select(scores, ratio, round_to) -> bool keep mask."},
    {"weight_compact", weight_compact, METH_VARARGS, "weight_compact(weight, keep_out, keep_in) -> new array."},
    {"weight_mask", weight_mask, METH_VARARGS, "weight_mask(weight, keep, axis): zeroes pruned entries in place."},
    NETWORK_METHODS
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "kcp._native", "The kcp engine's C ABI for Python (internal).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    import_array();
    if (kcp_abi_version() != KCP_ABI_VERSION) {
        PyErr_Format(PyExc_ImportError, "kcp engine ABI %d does not match the extension's %d",
                     kcp_abi_version(), KCP_ABI_VERSION);
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    KCPError = PyErr_NewExceptionWithDoc("kcp.KCPError", "A failure inside the kcp engine.", NULL, NULL);
    if (KCPError == NULL || PyModule_AddObjectRef(m, "KCPError", KCPError) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "ABI_VERSION", KCP_ABI_VERSION);
    return m;
}
