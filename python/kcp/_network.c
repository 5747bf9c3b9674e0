/*
 * kcp._native network functions: a kcp_network lives in a PyCapsule whose
 * destructor releases it. Same order as _native.c: parse -> convert ->
 * validate -> allocate -> release the GIL -> call -> one `done:` label.
 */
#include "_native.h"

static const char *CAPSULE = "kcp.network";

static void destroy_capsule(PyObject *capsule) {
    kcp_network_destroy(PyCapsule_GetPointer(capsule, CAPSULE));
}

PyObject *network_capsule(kcp_network *network) {
    PyObject *capsule = PyCapsule_New(network, CAPSULE, destroy_capsule);
    if (capsule == NULL) kcp_network_destroy(network);
    return capsule;
}

kcp_network *unwrap_network(PyObject *capsule) {
    return PyCapsule_GetPointer(capsule, CAPSULE);
}

/* Fills `out` (at most `capacity` entries) from a sequence of ints. */
static int read_indices(PyObject *sequence, int64_t *out, Py_ssize_t capacity, Py_ssize_t *count, const char *name) {
    PyObject *fast = PySequence_Fast(sequence, name);
    if (fast == NULL) return 0;
    *count = PySequence_Fast_GET_SIZE(fast);
    if (*count > capacity) {
        PyErr_Format(PyExc_ValueError, "%s: at most %zd entries, got %zd", name, capacity, *count);
        Py_DECREF(fast);
        return 0;
    }
    for (Py_ssize_t i = 0; i < *count; i++) {
        out[i] = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(fast, i));
        if (out[i] == -1 && PyErr_Occurred()) {
            if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "%s: entry %zd is out of the int64 range", name, i);
            }
            Py_DECREF(fast);
            return 0;
        }
    }
    Py_DECREF(fast);
    return 1;
}

PyObject *network_create(PyObject *self, PyObject *args) {
    (void)self; (void)args;
    kcp_network *network = NULL;
    kcp_status status = kcp_network_create(&network);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    return network_capsule(network);
}

PyObject *network_add_input(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *shape_obj;
    const char *name;
    int64_t shape[8], value;
    Py_ssize_t ndim;
    if (!PyArg_ParseTuple(args, "OsO:network_add_input", &capsule, &name, &shape_obj)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL || !read_indices(shape_obj, shape, 8, &ndim, "shape")) return NULL;
    kcp_status status = kcp_network_add_input(network, name, shape, (int32_t)ndim, &value);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    return PyLong_FromLongLong(value);
}

PyObject *network_add_parameter(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *array_obj, *result = NULL;
    const char *name;
    PyArrayObject *array = NULL;
    int64_t shape[8], index;
    if (!PyArg_ParseTuple(args, "OsO:network_add_parameter", &capsule, &name, &array_obj)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL || (array = read_float32(array_obj, name)) == NULL) goto done;
    if (!check_ndim(array, name)) goto done;
    copy_shape(array, shape);
    kcp_status status = kcp_network_add_parameter(network, name, PyArray_DATA(array), shape, PyArray_NDIM(array), &index);
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = PyLong_FromLongLong(index);
done:
    Py_XDECREF(array);
    return result;
}

PyObject *network_add_node(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *attributes_obj, *inputs_obj, *parameters_obj;
    const char *name;
    int op;
    double attributes[ATTRIBUTE_CAPACITY];
    int64_t inputs[64], parameters[8], value;
    Py_ssize_t attribute_count, input_count, parameter_count;
    if (!PyArg_ParseTuple(args, "OsiOOO:network_add_node", &capsule, &name, &op, &attributes_obj, &inputs_obj,
                          &parameters_obj))
        return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    PyObject *fast = PySequence_Fast(attributes_obj, "attributes");
    if (fast == NULL) return NULL;
    attribute_count = PySequence_Fast_GET_SIZE(fast);
    for (Py_ssize_t i = 0; i < attribute_count && i < ATTRIBUTE_CAPACITY; i++)
        attributes[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
    Py_DECREF(fast);
    if (attribute_count > ATTRIBUTE_CAPACITY) {
        PyErr_Format(PyExc_ValueError, "attributes: at most %d", ATTRIBUTE_CAPACITY);
        return NULL;
    }
    if (PyErr_Occurred()) return NULL;
    if (!read_indices(inputs_obj, inputs, 64, &input_count, "inputs")) return NULL;
    if (!read_indices(parameters_obj, parameters, 8, &parameter_count, "parameters")) return NULL;
    kcp_status status = kcp_network_add_node(network, name, op, attributes, (int32_t)attribute_count, inputs,
                                             (int32_t)input_count, parameters, (int32_t)parameter_count, &value);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    return PyLong_FromLongLong(value);
}

PyObject *network_add_output(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    long long value;
    if (!PyArg_ParseTuple(args, "OL:network_add_output", &capsule, &value)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    kcp_status status = kcp_network_add_output(network, value);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    Py_RETURN_NONE;
}

PyObject *network_truncate(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    long long values, parameters, outputs;
    if (!PyArg_ParseTuple(args, "OLLL:network_truncate", &capsule, &values, &parameters, &outputs)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    kcp_status status = kcp_network_truncate(network, values, parameters, outputs);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    Py_RETURN_NONE;
}

PyObject *network_counts(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    int64_t counts[KCP_NETWORK_COUNTS];
    if (!PyArg_ParseTuple(args, "O:network_counts", &capsule)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    kcp_status status = kcp_network_counts(network, counts, KCP_NETWORK_COUNTS);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    return shape_tuple(counts, KCP_NETWORK_COUNTS);
}

/* The names packed in `bytes` (`length` bytes, each name followed by a 0), as a list. */
static PyObject *split_names(const char *bytes, int64_t length) {
    PyObject *names = PyList_New(0);
    for (int64_t start = 0, end = 0; names != NULL && end < length; end++) {
        if (bytes[end] != 0) continue;
        PyObject *name = PyUnicode_DecodeUTF8(bytes + start, end - start, "strict");
        if (name == NULL || PyList_Append(names, name) < 0) Py_CLEAR(names);
        Py_XDECREF(name);
        start = end + 1;
    }
    return names;
}

PyObject *network_names(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *result = NULL;
    int kind;
    int64_t length = 0, capacity = 0;
    char *buffer = NULL;
    if (!PyArg_ParseTuple(args, "Oi:network_names", &capsule, &kind)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    kcp_status status = kcp_network_names(network, kind, NULL, 0, &length);
    while (status == KCP_OK && capacity <= length) {  /* names added in between: size again */
        PyMem_Free(buffer);
        capacity = length + 1;
        if ((buffer = PyMem_Malloc(capacity)) == NULL) { PyErr_NoMemory(); return NULL; }
        status = kcp_network_names(network, kind, buffer, capacity, &length);
    }
    if (status != KCP_OK) raise_status(status);
    else result = split_names(buffer, length);
    PyMem_Free(buffer);
    return result;
}

PyObject *network_find(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    int kind;
    const char *name;
    int64_t index = -1;
    if (!PyArg_ParseTuple(args, "Ois:network_find", &capsule, &kind, &name)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    kcp_status status = kcp_network_find(network, kind, name, &index);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    return PyLong_FromLongLong(index);
}

/* The entries of `names` (a list) at `indices`, as a tuple; NULL with ValueError for an index past it. */
static PyObject *named(PyObject *names, const int64_t *indices, int64_t count) {
    PyObject *tuple = PyTuple_New(count);
    for (int64_t i = 0; tuple != NULL && i < count; i++) {
        if (indices[i] < 0 || indices[i] >= PyList_GET_SIZE(names)) {
            PyErr_SetString(PyExc_ValueError, "network: changed while it was read");
            Py_CLEAR(tuple);
            break;
        }
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(PyList_GET_ITEM(names, indices[i])));
    }
    return tuple;
}

PyObject *network_nodes(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *value_names, *parameter_names, *nodes = NULL;
    long long count;
    if (!PyArg_ParseTuple(args, "OLO!O!:network_nodes", &capsule, &count, &PyList_Type, &value_names, &PyList_Type,
                          &parameter_names))
        return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL || (nodes = PyList_New(0)) == NULL) return NULL;
    for (long long node = 0; node < count; node++) {
        int32_t op = 0, attribute_count = 0;
        double attributes[ATTRIBUTE_CAPACITY];
        int64_t output = 0, inputs[256], parameters[8], input_count = 0, parameter_count = 0;
        kcp_status status = kcp_network_node_op(network, node, &op, attributes, ATTRIBUTE_CAPACITY, &attribute_count);
        if (status == KCP_OK)
            status = kcp_network_node_edges(network, node, &output, inputs, 256, &input_count, parameters, 8,
                                            &parameter_count);
        if (status != KCP_OK) { raise_status(status); goto error; }
        PyObject *values = PyTuple_New(attribute_count);
        for (int32_t i = 0; values != NULL && i < attribute_count; i++)
            PyTuple_SET_ITEM(values, i, PyFloat_FromDouble(attributes[i]));
        PyObject *entry = values == NULL ? NULL : Py_BuildValue("(iNLNN)", op, values, (long long)output,
                                                                 named(value_names, inputs, input_count),
                                                                 named(parameter_names, parameters, parameter_count));
        if (entry == NULL || PyList_Append(nodes, entry) < 0) { Py_XDECREF(entry); goto error; }
        Py_DECREF(entry);
    }
    return nodes;
error:
    Py_DECREF(nodes);
    return NULL;
}

PyObject *network_ports(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *result = NULL;
    int64_t counts[KCP_NETWORK_COUNTS], *inputs = NULL, *outputs = NULL;
    if (!PyArg_ParseTuple(args, "O:network_ports", &capsule)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    kcp_status status = kcp_network_counts(network, counts, KCP_NETWORK_COUNTS);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    inputs = PyMem_Calloc(counts[KCP_NETWORK_INPUTS] + 1, sizeof(int64_t));
    outputs = PyMem_Calloc(counts[KCP_NETWORK_OUTPUTS] + 1, sizeof(int64_t));
    if (inputs == NULL || outputs == NULL) { PyErr_NoMemory(); goto done; }
    status = kcp_network_ports(network, inputs, counts[KCP_NETWORK_INPUTS], outputs, counts[KCP_NETWORK_OUTPUTS]);
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = Py_BuildValue("(NN)", shape_tuple(inputs, (int32_t)counts[KCP_NETWORK_INPUTS]),
                           shape_tuple(outputs, (int32_t)counts[KCP_NETWORK_OUTPUTS]));
done:
    PyMem_Free(inputs);
    PyMem_Free(outputs);
    return result;
}

PyObject *network_value_shape(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    long long value, batch;
    int kind;
    int64_t shape[8];
    int32_t ndim = 0;
    if (!PyArg_ParseTuple(args, "OiLL:network_value_shape", &capsule, &kind, &value, &batch)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    kcp_status status = kind == 0 ? kcp_network_value_shape(network, value, batch, shape, &ndim)
                                  : kcp_network_parameter_shape(network, value, shape, &ndim);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    return shape_tuple(shape, ndim);
}

PyObject *network_parameter_read(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    long long index;
    int64_t shape[8];
    int32_t ndim = 0;
    npy_intp dims[8];
    if (!PyArg_ParseTuple(args, "OL:network_parameter_read", &capsule, &index)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    kcp_status status = kcp_network_parameter_shape(network, index, shape, &ndim);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    for (int32_t i = 0; i < ndim; i++) dims[i] = shape[i];
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(ndim, dims, NPY_FLOAT32);
    if (out == NULL) return NULL;
    status = kcp_network_parameter_read(network, index, PyArray_DATA(out), PyArray_SIZE(out));
    if (status != KCP_OK) { raise_status(status); Py_DECREF(out); return NULL; }
    return (PyObject *)out;
}

PyObject *network_parameter_write(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *array_obj;
    long long index;
    if (!PyArg_ParseTuple(args, "OLO:network_parameter_write", &capsule, &index, &array_obj)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    PyArrayObject *array = network == NULL ? NULL : read_float32(array_obj, "value");
    if (array == NULL) return NULL;
    kcp_status status = kcp_network_parameter_write(network, index, PyArray_DATA(array), PyArray_SIZE(array));
    Py_DECREF(array);
    if (status != KCP_OK) { raise_status(status); return NULL; }
    Py_RETURN_NONE;
}

int read_arrays(PyObject *sequence, int writeable, array_list *list, const char *name) {
    Py_ssize_t count = PySequence_Size(sequence);
    if (count < 0) return 0;
    list->arrays = PyMem_Calloc(count + 1, sizeof(PyArrayObject *));
    list->data = PyMem_Calloc(count + 1, sizeof(float *));
    list->sizes = PyMem_Calloc(count + 1, sizeof(int64_t));
    if (list->arrays == NULL || list->data == NULL || list->sizes == NULL) {
        PyErr_NoMemory();
        return 0;
    }
    list->count = count;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PySequence_GetItem(sequence, i);
        if (item == NULL) return 0;
        if (writeable) {
            if (!PyArray_Check(item) || PyArray_TYPE((PyArrayObject *)item) != NPY_FLOAT32 ||
                !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)item) || !PyArray_ISWRITEABLE((PyArrayObject *)item)) {
                PyErr_Format(PyExc_TypeError, "%s: must be writeable C-contiguous float32 arrays", name);
                Py_DECREF(item);
                return 0;
            }
            list->arrays[i] = (PyArrayObject *)item;
        } else {
            list->arrays[i] = read_float32(item, name);
            Py_DECREF(item);
            if (list->arrays[i] == NULL) return 0;
        }
        list->data[i] = PyArray_DATA(list->arrays[i]);
        list->sizes[i] = PyArray_SIZE(list->arrays[i]);
    }
    return 1;
}

kcp_arrays input_view(const array_list *list) {
    return (kcp_arrays){(const float *const *)list->data, list->sizes, list->count};
}

kcp_mutable_arrays output_view(const array_list *list) {
    return (kcp_mutable_arrays){list->data, list->sizes, list->count};
}

void release_arrays(array_list *list) {
    for (Py_ssize_t i = 0; list->arrays != NULL && i < list->count; i++) Py_XDECREF(list->arrays[i]);
    PyMem_Free(list->arrays);
    PyMem_Free(list->data);
    PyMem_Free(list->sizes);
}

PyObject *network_forward(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *inputs_obj, *outputs_obj, *seconds_obj = Py_None, *result = NULL;
    array_list inputs = {0}, outputs = {0};
    PyArrayObject *seconds = NULL;
    long long batch;
    kcp_status status;
    if (!PyArg_ParseTuple(args, "OOOL|O:network_forward", &capsule, &inputs_obj, &outputs_obj, &batch, &seconds_obj))
        return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    if (!read_arrays(inputs_obj, 0, &inputs, "inputs") || !read_arrays(outputs_obj, 1, &outputs, "outputs")) goto done;
    if (seconds_obj != Py_None) {
        seconds = (PyArrayObject *)seconds_obj;
        if (!PyArray_Check(seconds_obj) || PyArray_TYPE(seconds) != NPY_FLOAT64 || !PyArray_IS_C_CONTIGUOUS(seconds)) {
            PyErr_SetString(PyExc_TypeError, "node_seconds: must be a C-contiguous float64 array");
            goto done;
        }
    }
    kcp_arrays in = input_view(&inputs);
    kcp_mutable_arrays out = output_view(&outputs);
    Py_BEGIN_ALLOW_THREADS
    status = kcp_network_forward(network, &in, batch, &out, seconds ? PyArray_DATA(seconds) : NULL,
                                 seconds ? PyArray_SIZE(seconds) : 0);
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = Py_NewRef(Py_None);
done:
    release_arrays(&inputs);
    release_arrays(&outputs);
    return result;
}

PyObject *network_gradients(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule, *inputs_obj, *seeds_obj, *outputs_obj, *gradients_obj, *result = NULL;
    array_list inputs = {0}, seeds = {0}, outputs = {0}, gradients = {0};
    long long batch;
    int training;
    kcp_status status;
    if (!PyArg_ParseTuple(args, "OOLpOOO:network_gradients", &capsule, &inputs_obj, &batch, &training, &seeds_obj,
                          &outputs_obj, &gradients_obj))
        return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    if (!read_arrays(inputs_obj, 0, &inputs, "inputs") || !read_arrays(seeds_obj, 0, &seeds, "output_gradients") ||
        !read_arrays(outputs_obj, 1, &outputs, "outputs") || !read_arrays(gradients_obj, 1, &gradients, "gradients"))
        goto done;
    kcp_arrays in = input_view(&inputs), seed_view = input_view(&seeds);
    kcp_mutable_arrays out = output_view(&outputs), gradient_view = output_view(&gradients);
    Py_BEGIN_ALLOW_THREADS
    status = kcp_network_gradients(network, &in, batch, training, &seed_view, &out, &gradient_view);
    Py_END_ALLOW_THREADS
    if (status != KCP_OK) { raise_status(status); goto done; }
    result = Py_NewRef(Py_None);
done:
    release_arrays(&inputs);
    release_arrays(&seeds);
    release_arrays(&outputs);
    release_arrays(&gradients);
    return result;
}

PyObject *network_cost(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *capsule;
    Py_ssize_t nodes;
    int64_t total[2];
    if (!PyArg_ParseTuple(args, "On:network_cost", &capsule, &nodes)) return NULL;
    kcp_network *network = unwrap_network(capsule);
    if (network == NULL) return NULL;
    npy_intp count = nodes;
    PyArrayObject *macs = (PyArrayObject *)PyArray_SimpleNew(1, &count, NPY_INT64);
    if (macs == NULL) return NULL;
    kcp_status status = kcp_network_cost(network, PyArray_DATA(macs), count, total);
    if (status != KCP_OK) { raise_status(status); Py_DECREF(macs); return NULL; }
    return Py_BuildValue("(NLL)", macs, (long long)total[0], (long long)total[1]);
}
