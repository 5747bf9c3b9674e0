/* kcp._cpu: what the CPU supports, read before the engine (kcp._native) and the OpenBLAS it links are loaded.
 * It is built from the engine's own Sources/CPlatform/platform.c and links nothing else. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "platform.h"

static PyObject *blas_coretype(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    const char *name = kcp_blas_coretype();
    if (!name) Py_RETURN_NONE;
    return PyUnicode_FromString(name);
}

static PyMethodDef methods[] = {
    {"blas_coretype", blas_coretype, METH_NOARGS,
     "The OpenBLAS kernel set as wide as the engine's instruction set (see kcp_blas_coretype), or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "kcp._cpu", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cpu(void) { return PyModule_Create(&module); }
