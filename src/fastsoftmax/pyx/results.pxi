# Result buffers.  Large results come from a small cache of buffers
# (csrc/result_cache.h), so a hot loop does not pay the page faults of a
# fresh multi-megabyte mmap on every call.  FASTSOFTMAX_RESULT_CACHE=0 turns
# it off.

cdef object CACHE_HANDLER = PyCapsule_New(&fs_cache_handler, "mem_handler", NULL)
if os.environ.get("FASTSOFTMAX_RESULT_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
    fs_cache_release(0)


cdef cnp.ndarray new_result(int ndim, cnp.npy_intp *dims, int typenum, int fortran=0):
    cdef Py_ssize_t size = 4 if typenum == cnp.NPY_FLOAT32 else 8
    cdef int d
    for d in range(ndim):
        size *= dims[d]
    if <size_t> size < FS_CACHE_MIN_BYTES:
        return cnp.PyArray_EMPTY(ndim, dims, typenum, fortran)
    previous = PyDataMem_SetHandler(CACHE_HANDLER)
    try:
        return cnp.PyArray_EMPTY(ndim, dims, typenum, fortran)
    finally:
        PyDataMem_SetHandler(previous)


def empty(shape, dtype):
    """An uninitialised C-contiguous float32/float64 result buffer (large ones
    from the result cache)."""
    cdef cnp.npy_intp dims[64]
    cdef int ndim = len(shape), d
    for d in range(ndim):
        dims[d] = shape[d]
    return new_result(ndim, dims, cnp.NPY_FLOAT32 if dtype == "float32" else cnp.NPY_FLOAT64)


def empty_cached(shape, dtype):
    """An uninitialised C-contiguous result of any dtype; a large one comes
    from the result cache, as ``empty``'s float32/float64 ones do."""
    if np.dtype(dtype).itemsize * math.prod(shape) < FS_CACHE_MIN_BYTES:
        return np.empty(shape, dtype)
    previous = PyDataMem_SetHandler(CACHE_HANDLER)
    try:
        return np.empty(shape, dtype)
    finally:
        PyDataMem_SetHandler(previous)


def release_result_cache(keep_caching=True):
    """Free the large result buffers kept for reuse; with ``keep_caching``
    false, also stop keeping them.  Returns the bytes that were held."""
    cdef size_t held = fs_cache_held_bytes()
    fs_cache_release(1 if keep_caching else 0)
    return held
