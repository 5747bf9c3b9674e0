/*
 * kcp._native pruning functions for networks: channel spaces, plans and
 * pruned (masked or compact) networks. Same order as _native.c: parse ->
 * convert -> validate -> allocate -> release the GIL -> call -> one `done:`.
 */
#include "_native.h"

PyObject *network_spaces(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *reasons = NULL, *result = NULL;
    PyArrayObject *class_of = NULL, *space_of = NULL, *frozen = NULL;
    int64_t counts[3];
    char *buffer = NULL;
    if (!PyArg_ParseTuple(args, "O:network_spaces", &capsule)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    kcp_status status = kcp_network_spaces(network, counts);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    npy_intp classes = counts[0], channels = counts[2];
    class_of = (PyArrayObject *)PyArray_SimpleNew(1, &channels, NPY_INT64);
    space_of = (PyArrayObject *)PyArray_SimpleNew(1, &classes, NPY_INT64);
    frozen = (PyArrayObject *)PyArray_SimpleNew(1, &classes, NPY_BOOL);
    reasons = PyList_New(counts[1]);
    if (class_of == NULL || space_of == NULL || frozen == NULL || reasons == NULL) goto done;
    status = kcp_network_space_data(network, PyArray_DATA(class_of), channels, PyArray_DATA(space_of),
                                    PyArray_DATA(frozen), classes);
    if (status != KCP_OK) { raise_status(status); goto done; }
    for (int64_t space = 0; space < counts[1]; space++) {
        int64_t length = 0;
        status = kcp_network_space_reasons(network, space, NULL, 0, &length);
        if (status != KCP_OK) { raise_status(status); goto done; }
        if ((buffer = PyMem_Malloc(length + 1)) == NULL) { PyErr_NoMemory(); goto done; }
        status = kcp_network_space_reasons(network, space, buffer, length + 1, &length);
        if (status != KCP_OK) { raise_status(status); goto done; }
        PyObject *text = PyUnicode_DecodeUTF8(buffer, length, "replace");
        PyMem_Free(buffer);
        buffer = NULL;
        if (text == NULL) goto done;
        PyList_SET_ITEM(reasons, space, text);
    }
    result = Py_BuildValue("(OOOO)", class_of, space_of, frozen, reasons);
done:
    PyMem_Free(buffer);
    Py_XDECREF(class_of);
    Py_XDECREF(space_of);
    Py_XDECREF(frozen);
    Py_XDECREF(reasons);
    return result;
}

/* `value` (a new reference) if it can be read in place as parameter `i`,
 * named `name`: an aligned, C-contiguous float32 array of the parameter's
 * shape; otherwise NULL with an error naming the parameter. */
static PyArrayObject *borrowed_weight(kcp_network *network, PyObject *name, Py_ssize_t i, PyObject *value) {
    int64_t shape[8];
    int32_t ndim = 0;
    PyObject *label = NULL, *got = NULL, *expected = NULL;
    PyArrayObject *array = NULL;
    kcp_status status;
    if ((label = PyUnicode_FromFormat("_weights[%R]", name)) == NULL) goto done;
    if ((array = float32_in_place(value, PyUnicode_AsUTF8(label), 0)) == NULL) goto done;
    if ((status = kcp_network_parameter_shape(network, i, shape, &ndim)) != KCP_OK) {
        raise_status(status);
        Py_CLEAR(array);
        goto done;
    }
    int same = PyArray_NDIM(array) == ndim;
    for (int32_t axis = 0; same && axis < ndim; axis++) same = PyArray_DIM(array, axis) == shape[axis];
    if (same) goto done;
    got = PyArray_IntTupleFromIntp(PyArray_NDIM(array), PyArray_DIMS(array));
    expected = shape_tuple(shape, ndim);
    if (got != NULL && expected != NULL)
        PyErr_Format(PyExc_ValueError, "%U: has shape %R, the parameter %R", label, got, expected);
    Py_CLEAR(array);
done:
    Py_XDECREF(label);
    Py_XDECREF(got);
    Py_XDECREF(expected);
    return array;
}

/* Fills data[i] with the memory of the array that `weights` maps parameter
 * `name` to, where index[name] = i < count, and keeps a reference to the
 * array in held[i] for the call. */
static int borrow_weights(kcp_network *network, PyObject *weights, PyObject *index, Py_ssize_t count,
                          const float **data, PyObject **held) {
    PyObject *name, *value;
    Py_ssize_t position = 0;
    if (!PyDict_Check(weights)) {
        PyErr_Format(PyExc_TypeError, "_weights: expected a dict of parameter name to array, got %s",
                     Py_TYPE(weights)->tp_name);
        return 0;
    }
    while (PyDict_Next(weights, &position, &name, &value)) {
        PyObject *found = PyDict_GetItemWithError(index, name);
        if (found == NULL) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "_weights: the network has no parameter %R", name);
            return 0;
        }
        Py_ssize_t i = PyLong_AsSsize_t(found);
        if (i == -1 && PyErr_Occurred()) return 0;
        if (i < 0 || i >= count) {
            PyErr_Format(PyExc_ValueError, "_weights: parameter %R is numbered %zd of %zd", name, i, count);
            return 0;
        }
        PyArrayObject *array = borrowed_weight(network, name, i, value);
        if (array == NULL) return 0;
        Py_XSETREF(held[i], (PyObject *)array);
        data[i] = PyArray_DATA(array);
    }
    return 1;
}

PyObject *network_plan(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *result = NULL;
    int kind, global, criterion, center, round_to;
    double amount, max_ratio, ratio = 0;
    unsigned long long seed;
    int64_t counts[3], costs[4];
    PyArrayObject *keep = NULL, *scores = NULL;
    kcp_status status;
    PyObject *override_spaces_obj, *override_ratios_obj, *weights_obj, *index_obj;
    PyArrayObject *override_spaces = NULL, *override_ratios = NULL;
    const float **weights = NULL;
    PyObject **held = NULL;
    Py_ssize_t parameters = 0;
    if (!PyArg_ParseTuple(args, "OidpdiiiKOOOO!:network_plan", &capsule, &kind, &amount, &global, &max_ratio,
                          &criterion, &center, &round_to, &seed, &override_spaces_obj, &override_ratios_obj,
                          &weights_obj, &PyDict_Type, &index_obj))
        return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    if ((status = kcp_network_spaces(network, counts)) != KCP_OK) { raise_status(status); return NULL; }
    override_spaces = (PyArrayObject *)PyArray_FROM_OTF(override_spaces_obj, NPY_INT64, NPY_ARRAY_IN_ARRAY);
    override_ratios = (PyArrayObject *)PyArray_FROM_OTF(override_ratios_obj, NPY_FLOAT64, NPY_ARRAY_IN_ARRAY);
    if (override_spaces == NULL || override_ratios == NULL) goto done;
    if (PyArray_SIZE(override_spaces) != PyArray_SIZE(override_ratios)) {
        PyErr_SetString(PyExc_ValueError, "overrides: as many ratios as spaces");
        goto done;
    }
    parameters = PyDict_Size(index_obj);
    weights = PyMem_Calloc(parameters + 1, sizeof(float *));
    held = PyMem_Calloc(parameters + 1, sizeof(PyObject *));
    if (weights == NULL || held == NULL) { PyErr_NoMemory(); goto done; }
    if (!borrow_weights(network, weights_obj, index_obj, parameters, weights, held)) goto done;
    npy_intp classes = counts[0];
    keep = (PyArrayObject *)PyArray_SimpleNew(1, &classes, NPY_BOOL);
    scores = (PyArrayObject *)PyArray_SimpleNew(1, &classes, NPY_FLOAT64);
    if (keep == NULL || scores == NULL) goto done;
    Py_BEGIN_ALLOW_THREADS
    status = kcp_network_plan(network, kind, amount, global, max_ratio, criterion, center, round_to, seed,
                              PyArray_DATA(override_spaces), PyArray_DATA(override_ratios),
                              (int32_t)PyArray_SIZE(override_spaces), weights, parameters, PyArray_DATA(keep),
                              PyArray_DATA(scores), classes, &ratio, costs);
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = Py_BuildValue("(OOd(LLLL))", keep, scores, ratio, (long long)costs[0], (long long)costs[1],
                           (long long)costs[2], (long long)costs[3]);
done:
    for (Py_ssize_t i = 0; held != NULL && i < parameters; i++) Py_XDECREF(held[i]);
    PyMem_Free(held);
    PyMem_Free(weights);
    Py_XDECREF(override_spaces);
    Py_XDECREF(override_ratios);
    Py_XDECREF(keep);
    Py_XDECREF(scores);
    return result;
}

PyObject *network_prune(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *keep_obj;
    int mode;
    kcp_network *pruned = NULL;
    kcp_status status;
    if (!PyArg_ParseTuple(args, "OOi:network_prune", &capsule, &keep_obj, &mode)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    PyArrayObject *keep = (PyArrayObject *)PyArray_FROM_OTF(keep_obj, NPY_BOOL, NPY_ARRAY_IN_ARRAY);
    if (keep == NULL) return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = kcp_network_prune(network, PyArray_DATA(keep), PyArray_SIZE(keep), mode, &pruned);
    Py_END_ALLOW_THREADS
    Py_DECREF(keep);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    return network_capsule(pruned);
}

PyObject *network_compensate(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *keep_obj, *inputs_obj, *result = NULL;
    progress_context progress = {Py_None, 0};
    array_list inputs = {0};
    long long batch, chunk;
    double ridge;
    kcp_network *compensated = NULL;
    kcp_status status;
    if (!PyArg_ParseTuple(args, "OOOLdLO:network_compensate", &capsule, &keep_obj, &inputs_obj, &batch, &ridge, &chunk,
                          &progress.callable))
        return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    PyArrayObject *keep = (PyArrayObject *)PyArray_FROM_OTF(keep_obj, NPY_BOOL, NPY_ARRAY_IN_ARRAY);
    if (keep == NULL) return NULL;
    if (!read_arrays(inputs_obj, 0, &inputs, "calibration")) goto done;
    kcp_arrays in = input_view(&inputs);
    Py_BEGIN_ALLOW_THREADS
    status = kcp_network_compensate(network, PyArray_DATA(keep), PyArray_SIZE(keep), &in, batch, ridge, chunk, progress_trampoline, &progress, &compensated);
    Py_END_ALLOW_THREADS
    /* The engine stops (and returns no network) only when the callback asks it to, after an exception. */
    if (progress.raised) goto done;
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = network_capsule(compensated);
done:
    release_arrays(&inputs);
    Py_DECREF(keep);
    return result;
}
