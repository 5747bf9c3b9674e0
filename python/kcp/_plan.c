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
    status = kcp_network_space_data(network, PyArray_DATA(class_of), PyArray_DATA(space_of), PyArray_DATA(frozen));
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

PyObject *network_plan(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *result = NULL;
    int kind, global, criterion, center, round_to;
    double amount, max_ratio, ratio = 0;
    unsigned long long seed;
    int64_t counts[3], costs[4];
    PyArrayObject *keep = NULL, *scores = NULL;
    kcp_status status;
    PyObject *override_spaces_obj, *override_ratios_obj;
    PyArrayObject *override_spaces = NULL, *override_ratios = NULL;
    if (!PyArg_ParseTuple(args, "OidpdiiiKOO:network_plan", &capsule, &kind, &amount, &global, &max_ratio, &criterion,
                          &center, &round_to, &seed, &override_spaces_obj, &override_ratios_obj))
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
    npy_intp classes = counts[0];
    keep = (PyArrayObject *)PyArray_SimpleNew(1, &classes, NPY_BOOL);
    scores = (PyArrayObject *)PyArray_SimpleNew(1, &classes, NPY_FLOAT64);
    if (keep == NULL || scores == NULL) goto done;
    Py_BEGIN_ALLOW_THREADS
    status = kcp_network_plan(network, kind, amount, global, max_ratio, criterion, center, round_to, seed,
                              PyArray_DATA(override_spaces), PyArray_DATA(override_ratios),
                              (int32_t)PyArray_SIZE(override_spaces), PyArray_DATA(keep), PyArray_DATA(scores),
                              &ratio, costs);
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = Py_BuildValue("(OOd(LLLL))", keep, scores, ratio, (long long)costs[0], (long long)costs[1],
                           (long long)costs[2], (long long)costs[3]);
done:
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
