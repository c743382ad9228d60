/* xsock_green._kernel: the one question the hot path asks the kernel
 * without the standard library's detour.
 *
 * queued(fd): the bytes queued to be read on fd, ioctl(FIONREAD), or 1
 * when the kernel will not say (so that the caller reads and learns why).
 * A block stream recv asks it after a reply whenever the loop has other
 * work (ARCHITECTURE.md, step 3): nearly once per request under load.
 * fcntl.ioctl, which answers the same, lets go of the GIL around the call
 * and takes it back, which costs more than the call itself, and this call
 * never blocks.  _hub.py falls back to fcntl.ioctl where this module was
 * not built, and in the pure-Python build (XSOCK_PURE_PYTHON=1).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/ioctl.h>

static PyObject *
queued(PyObject *module, PyObject *arg)
{
    long fd = PyLong_AsLong(arg);
    int count = 0;

    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT_MAX || ioctl((int)fd, FIONREAD, &count) < 0)
        count = 1;
    return PyLong_FromLong(count);
}

static PyMethodDef kernel_methods[] = {
    {"queued", queued, METH_O,
     "queued(fd, /)\n--\n\n"
     "The bytes queued to be read on fd (1 when the kernel will not say)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT, "xsock_green._kernel",
    "What the transfer core asks the kernel, in C (see _hub.queued).", 0,
    kernel_methods,
};

PyMODINIT_FUNC
PyInit__kernel(void)
{
    return PyModule_Create(&kernel_module);
}
