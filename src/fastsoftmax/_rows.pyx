# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, autotestdict=False
"""Loops over rows and columns, and the threads that run them.

Everything here works on a C-contiguous float32 or float64 array viewed as
(outer, n, inner), reduced over its middle axis of length n:
  * inner == 1: contiguous rows (the kernels' ``rows``), split over threads by
    row blocks, or by chunks of very long rows when there are few of them;
  * inner > 1: a strided axis (``columns``): each kernel call reduces a band
    of adjacent columns, whose entries lie ``inner`` elements apart.
The per-row work lives in the C kernels (csrc/row_kernels.h), reached through
the kernel table of the dtype; this module decides how the work is spread
over OpenMP threads.  Results never depend on that split.

``try_fast`` validates the common calls here, in compiled code; everything
else goes to ``fastsoftmax._api``, the one path that raises errors.
"""
import math
import os

import numpy as np

from cpython.pycapsule cimport PyCapsule_New
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset
from libc.math cimport INFINITY, NAN
from cython.parallel cimport parallel
cimport numpy as cnp

cnp.import_array()

cdef extern from "openmp_compat.h" nogil:
    int omp_get_max_threads()
    int omp_get_num_procs()
    int FS_HAVE_OPENMP

cdef extern from "row_kernels.h" nogil:
    Py_ssize_t FS_CHUNK, FS_LONG_ROW, FS_STAGE_BY_ROW
    int FS_SOFTMAX, FS_LOG_SOFTMAX, FS_LOGSUMEXP
    int FS_F32, FS_F64
    int FS_BF16, FS_F16
    ctypedef struct fs_params:
        int mode
        double temperature
    ctypedef struct fs_stats:
        double max
        int has_nan
        int64_t count
        double rest
        double rest_comp
        int any_entry
    int FS_ROW_NAN, FS_ROW_NORMAL, FS_ROW_MASKED
    ctypedef struct fs_row_result:
        int kind
        double max
        double log_sum
        double inv_sum
        double logsumexp
    ctypedef struct fs_kernels:
        void (*rows)(int op, const void *x, void *out, Py_ssize_t rows, Py_ssize_t n,
                     const fs_params *p, int stream) noexcept nogil
        void (*chunk_stats)(int op, const void *x, const unsigned char *sel, Py_ssize_t n, const fs_params *p,
                            fs_stats *s) noexcept nogil
        void (*chunk_write)(int op, const void *x, const unsigned char *sel, void *out, Py_ssize_t n,
                            const fs_params *p, const fs_row_result *r, int stream) noexcept nogil
        void (*columns)(int op, const void *x, void *out, Py_ssize_t n, Py_ssize_t stride,
                        Py_ssize_t lanes, Py_ssize_t out_stride, const fs_params *p) noexcept nogil
        void (*rows_where)(int op, const void *x, const unsigned char *sel, void *out, Py_ssize_t rows,
                           Py_ssize_t n, Py_ssize_t sel_step, const fs_params *p, int stream) noexcept nogil
        void (*row_stats)(const void *x, const unsigned char *sel, Py_ssize_t n, const fs_params *p,
                          void *exps, fs_row_result *r) noexcept nogil
        void (*backward)(int op, const void *g, const void *y, const unsigned char *sel, void *out,
                         Py_ssize_t rows, Py_ssize_t n, Py_ssize_t sel_step, const fs_params *p) noexcept nogil
        double (*weighted_gap)(const void *x, double mx, const void *y, double my, const void *wt,
                               const void *q, double b_q, double b_0, Py_ssize_t n, double *total) noexcept nogil
        void (*combine)(void *out, Py_ssize_t n, double alpha, const void *wt, const void *q, double b_q,
                        double b_0) noexcept nogil
        void (*weighted_stats)(const void *x, const void *b, Py_ssize_t b_step, Py_ssize_t n,
                               const fs_params *p, fs_stats *s) noexcept nogil
        void (*staged_rows)(int op, int in_format, int out_format, const void *x, void *out, Py_ssize_t rows,
                            Py_ssize_t n, const fs_params *p, void *buf) noexcept nogil
        double (*cross_entropy_row)(const void *x, Py_ssize_t n, const fs_params *p, int64_t target,
                                    const void *soft, const void *weight, double smoothing,
                                    double grad_scale, void *grad) noexcept nogil
        double (*kl_div_row)(const void *s, const void *t, Py_ssize_t n, const fs_params *p,
                             double grad_scale, void *grad, void *scratch) noexcept nogil
        double (*contrastive_row)(const void *srow, Py_ssize_t i, Py_ssize_t n, const fs_params *p,
                                  double scale_rows, double scale_columns, void *grad, void *scratch) noexcept nogil
    const fs_kernels *fs_kernels_for(int dtype)
    int fs_use_isa(const char *name)
    const char *fs_simd_target()
    void fs_params_init(int dtype, double temperature, fs_params *p)
    void fs_stats_init(fs_stats *s)
    void fs_stats_merge(const fs_stats *chunk, const fs_params *p, fs_stats *row)
    void fs_row_finish(int op, const fs_stats *row, Py_ssize_t n, const fs_params *p, fs_row_result *r)

cdef extern from "numpy/arrayobject.h":
    object PyDataMem_SetHandler(object handler)

cdef extern from "result_cache.h":
    ctypedef struct PyDataMem_Handler:
        pass
    PyDataMem_Handler fs_cache_handler
    size_t FS_CACHE_MIN_BYTES
    void fs_cache_release(int enable) noexcept nogil
    size_t fs_cache_held_bytes() noexcept nogil

SOFTMAX = FS_SOFTMAX
LOG_SOFTMAX = FS_LOG_SOFTMAX
LOGSUMEXP = FS_LOGSUMEXP

fs_kernels_for(FS_F32)   # pick the instruction set once, under the GIL

# Below this many elements a call stays on the calling thread: starting a
# parallel region costs more than it saves.
cdef Py_ssize_t MIN_PARALLEL_ELEMENTS = 1 << 15
# Outputs at least this large are written with non-temporal stores: they do
# not fit the caches anyway, and this saves reading each line before writing.
cdef Py_ssize_t STREAM_BYTES = 8 << 20
# Bytes of adjacent columns per work item of a strided reduction.
cdef Py_ssize_t COLUMN_BAND_BYTES = 512

# ---- loops ------------------------------------------------------------------

cdef void run_by_rows(const fs_kernels *k, int op, const char *x, char *out, Py_ssize_t rows,
                      Py_ssize_t n, Py_ssize_t size, const fs_params *p, int stream,
                      int threads) noexcept nogil:
    """Rows in contiguous blocks, a few blocks per thread."""
    cdef Py_ssize_t out_step = size if op == FS_LOGSUMEXP else n * size
    cdef Py_ssize_t block, b, start, count
    if threads <= 1:
        k.rows(op, x, out, rows, n, p, stream)
        return
    # multiples of 16 rows: the kernels group tiny rows in tiles of up to 16
    # rows counted from the first, and must see the same tiles on any split
    block = max(16, (rows // (4 * threads) + 15) // 16 * 16)
    for b in prange((rows + block - 1) // block, num_threads=threads, schedule="dynamic"):
        start = b * block
        count = min(block, rows - start)
        k.rows(op, x + start * n * size, out + start * out_step, count, n, p, stream)

cdef int run_by_chunks(const fs_kernels *k, int op, const char *x, char *out, Py_ssize_t rows,
                       Py_ssize_t n, Py_ssize_t size, const fs_params *p, int stream,
                       int threads) noexcept nogil:
    """Split long rows (n > FS_LONG_ROW) into FS_CHUNK pieces so that few
    rows still use every thread.  Chunk statistics are combined in chunk
    order, as the kernels do for a whole row, so results are bit-identical to
    run_by_rows.  Returns -1 when out of memory."""
    cdef fs_stats *whole = <fs_stats *> malloc(rows * sizeof(fs_stats))
    cdef int status = -1
    if whole != NULL:
        status = stats_by_pieces(k, op, x, NULL, rows, n, size, p, threads, whole)
        if status == 0:
            status = write_by_pieces(k, op, x, NULL, out, rows, n, n, size, p, whole, stream, threads)
    free(whole)
    return status

cdef void run_by_columns(const fs_kernels *k, int op, const char *x, char *out, Py_ssize_t outer,
                         Py_ssize_t n, Py_ssize_t inner, Py_ssize_t size, const fs_params *p,
                         int threads) noexcept nogil:
    """Bands of adjacent columns; each lane is computed on its own, so the
    split does not change any result."""
    cdef Py_ssize_t band = max(1, COLUMN_BAND_BYTES // size)
    cdef Py_ssize_t bands = (inner + band - 1) // band
    cdef Py_ssize_t out_outer = inner if op == FS_LOGSUMEXP else n * inner
    cdef Py_ssize_t out_stride = 0 if op == FS_LOGSUMEXP else inner
    cdef Py_ssize_t it, o, j
    if threads <= 1:
        for o in range(outer):
            k.columns(op, x + o * n * inner * size, out + o * out_outer * size, n, inner, inner,
                      out_stride, p)
        return
    for it in prange(outer * bands, num_threads=threads, schedule="dynamic"):
        o = it // bands
        j = (it % bands) * band
        k.columns(op, x + (o * n * inner + j) * size, out + (o * out_outer + j) * size, n, inner,
                  min(band, inner - j), out_stride, p)

cdef int run(int op, int dtype, const char *x, char *out, Py_ssize_t outer, Py_ssize_t n,
             Py_ssize_t inner, double temperature, int threads) noexcept nogil:
    cdef fs_params p
    cdef const fs_kernels *k = fs_kernels_for(dtype)
    cdef Py_ssize_t size = 4 if dtype == FS_F32 else 8
    cdef int stream
    fs_params_init(dtype, temperature, &p)
    if outer * n * inner < MIN_PARALLEL_ELEMENTS:
        threads = 1
    if inner == 0 or outer == 0:
        return 0
    if inner > 1:
        run_by_columns(k, op, x, out, outer, n, inner, size, &p,
                       <int> min(<Py_ssize_t> threads, outer * ((inner * size + COLUMN_BAND_BYTES - 1) // COLUMN_BAND_BYTES)))
        return 0
    stream = op != FS_LOGSUMEXP and outer * n * size >= STREAM_BYTES
    if threads > 1 and n > FS_LONG_ROW and outer < 4 * threads:
        return run_by_chunks(k, op, x, out, outer, n, size, &p, stream, threads)
    run_by_rows(k, op, x, out, outer, n, size, &p, stream, <int> min(<Py_ssize_t> threads, outer))
    return 0

# ---- result buffers -----------------------------------------------------------

# Large results come from a small cache of buffers (csrc/result_cache.h), so
# a hot loop does not pay the page faults of a fresh multi-megabyte mmap on
# every call.  FASTSOFTMAX_RESULT_CACHE=0 turns it off.
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


def release_result_cache(keep_caching=True):
    """Free the large result buffers kept for reuse; with ``keep_caching``
    false, also stop keeping them.  Returns the bytes that were held."""
    cdef size_t held = fs_cache_held_bytes()
    fs_cache_release(1 if keep_caching else 0)
    return held


# ---- entry points -----------------------------------------------------------

# omp_get_num_procs() asks the kernel each time; the answer does not change.
cdef int NUM_PROCS = omp_get_num_procs() if FS_HAVE_OPENMP else 1
# A cap on num_threads far above any machine; keeps huge Python ints out of C ints.
MAX_THREADS = 1 << 16


# GNU libgomp's thread pool does not survive fork(): a forked child that
# enters a parallel region hangs.  A child therefore runs every call on its
# own thread (no OpenMP region at all).
cdef bint FORKED_CHILD = False


def _after_fork_in_child():
    global FORKED_CHILD
    FORKED_CHILD = True


os.register_at_fork(after_in_child=_after_fork_in_child)


cdef int thread_count(int num_threads):
    """Threads for a call that asks for ``num_threads`` (<= 0: the OpenMP default)."""
    if FORKED_CHILD or not FS_HAVE_OPENMP:
        return 1
    cdef int threads = num_threads if num_threads > 0 else omp_get_max_threads()
    return max(1, min(threads, NUM_PROCS))


cdef int launch(int op, cnp.ndarray x, cnp.ndarray out, int axis, double temperature,
                int num_threads) except -1:
    """Reduce C-contiguous ``x`` over ``axis`` into C-contiguous ``out``."""
    cdef int threads
    cdef int status
    cdef int dtype = FS_F32 if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32 else FS_F64
    cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(x)
    cdef Py_ssize_t outer = 1, inner = 1, n = 1
    cdef int d
    for d in range(cnp.PyArray_NDIM(x)):
        if d < axis:
            outer *= dims[d]
        elif d > axis:
            inner *= dims[d]
        else:
            n = dims[d]
    cdef const char *xp = <const char *> cnp.PyArray_DATA(x)
    cdef char *op_ = <char *> cnp.PyArray_DATA(out)
    threads = thread_count(num_threads)
    with nogil:
        status = run(op, dtype, xp, op_, outer, n, inner, temperature, threads)
    if status != 0:
        raise MemoryError("fastsoftmax: could not allocate per-chunk statistics")
    return 0


def compute(int op, cnp.ndarray x, cnp.ndarray out, int axis, double temperature, int num_threads):
    """Apply ``op`` over ``axis`` of ``x`` into ``out``.

    Both arrays must be C-contiguous with the same dtype, float32 or float64;
    ``out`` has ``x``'s size (``x``'s size without ``axis`` for logsumexp).
    ``num_threads`` <= 0 means the OpenMP default.  ``out`` may be ``x``.
    """
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef int ndim = cnp.PyArray_NDIM(x)
    if (ndim < 1 or not 0 <= axis < ndim or not cnp.PyArray_IS_C_CONTIGUOUS(x)
            or not cnp.PyArray_IS_C_CONTIGUOUS(out) or not cnp.PyArray_ISWRITEABLE(out)
            or (typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64)
            or cnp.PyArray_TYPE(out) != typenum):
        raise ValueError("compute() needs C-contiguous float32/float64 arrays of one dtype and an axis of x")
    if op != FS_SOFTMAX and op != FS_LOG_SOFTMAX and op != FS_LOGSUMEXP:
        raise ValueError(f"compute(): unknown op {op}")
    cdef Py_ssize_t want = cnp.PyArray_SIZE(x)
    if op == FS_LOGSUMEXP:
        want = want // cnp.PyArray_DIM(x, axis) if cnp.PyArray_DIM(x, axis) else cnp.PyArray_SIZE(out)
    if cnp.PyArray_SIZE(out) != want:
        raise ValueError("compute(): out has the wrong size")
    launch(op, x, out, axis, temperature, num_threads)


cdef int memory_relation(cnp.ndarray a, cnp.ndarray b):
    """0 when two arrays' memory is disjoint, 1 when it is the same buffer
    from the same start (in place: with one layout, every element is read
    before it is written), 2 for any other overlap."""
    cdef char *a0 = <char *> cnp.PyArray_DATA(a)
    cdef char *b0 = <char *> cnp.PyArray_DATA(b)
    cdef char *a1 = a0 + cnp.PyArray_NBYTES(a)
    cdef char *b1 = b0 + cnp.PyArray_NBYTES(b)
    if a1 <= b0 or b1 <= a0:
        return 0
    if a0 == b0 and a1 == b1:
        return 1
    return 2


def try_fast(int op, x, axis, temperature, out, num_threads, keepdims=False):
    """The result of a common call, or None to take the general path.

    Handles only arguments that need no conversion and cannot be invalid: an
    aligned, native float32/float64 array of >= 1 dimension that is C- or
    Fortran-contiguous, one int axis, a float or int temperature >= 0,
    threads None or an int >= 1 (1 without OpenMP), and ``out`` None or an ndarray of exactly
    the result's shape, dtype and layout that is writable and either is ``x``
    or does not overlap it.  Everything else (including every error) goes to
    ``fastsoftmax._api._apply``, the single validation path.

    A Fortran-ordered ``x`` is computed as its C-ordered transpose, so its
    result is Fortran-ordered too, as NumPy's ufuncs keep it."""
    if type(x) is not cnp.ndarray:
        return None
    cdef cnp.ndarray a = <cnp.ndarray> x
    cdef int typenum = cnp.PyArray_TYPE(a)
    cdef int ndim = cnp.PyArray_NDIM(a)
    if ((typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64) or ndim < 1
            or not cnp.PyArray_ISALIGNED(a) or not cnp.PyArray_ISNOTSWAPPED(a)):
        return None
    if type(axis) is not int or not -ndim <= axis < ndim:
        return None
    cdef int ax = axis % ndim
    cdef bint fortran = False
    if not cnp.PyArray_IS_C_CONTIGUOUS(a):
        if ndim < 2 or not cnp.PyArray_IS_F_CONTIGUOUS(a):
            return None
        fortran = True
        a = a.T
        ax = ndim - 1 - ax
    cdef double t
    if type(temperature) is float or type(temperature) is int:
        try:
            t = temperature
        except OverflowError:
            return None
        if not t >= 0.0:
            return None
    else:
        return None
    cdef int threads = 0
    if num_threads is not None:
        # without OpenMP, more than one thread is _api's to warn about
        if type(num_threads) is not int or num_threads < 1 or (num_threads > 1 and not FS_HAVE_OPENMP):
            return None
        threads = <int> min(num_threads, MAX_THREADS)

    cdef cnp.npy_intp dims[64]
    cdef cnp.npy_intp *xdims = cnp.PyArray_DIMS(a)
    cdef int d, rdim = 0
    for d in range(ndim):
        if op != FS_LOGSUMEXP or d != ax:
            dims[rdim] = xdims[d]
            rdim += 1
        elif keepdims:
            dims[rdim] = 1
            rdim += 1
    cdef cnp.ndarray result, owner = None
    cdef cnp.npy_intp fdims[64]
    if out is None and fortran:
        # a Fortran-ordered array that owns its data, computed through its
        # C-ordered transpose
        for d in range(rdim):
            fdims[d] = dims[rdim - 1 - d]
        owner = new_result(rdim, fdims, typenum, 1)
        result = owner.T
    elif out is None:
        result = new_result(rdim, dims, typenum)
    else:
        if type(out) is not cnp.ndarray:
            return None
        result = <cnp.ndarray> out
        if fortran:
            result = result.T
        if (cnp.PyArray_TYPE(result) != typenum or cnp.PyArray_NDIM(result) != rdim
                or not cnp.PyArray_IS_C_CONTIGUOUS(result) or not cnp.PyArray_ISWRITEABLE(result)
                or not cnp.PyArray_ISALIGNED(result) or not cnp.PyArray_ISNOTSWAPPED(result)):
            return None
        for d in range(rdim):
            if cnp.PyArray_DIM(result, d) != dims[d]:
                return None
        if memory_relation(a, result) == 2:
            return None
    launch(op, a, result, ax, t, threads)
    if out is not None:
        return out
    if owner is not None:
        result = owner
    return result[()] if rdim == 0 else result


def _use_isa(name):
    """Switch the kernels to an instruction-set variant ("avx512", "avx2",
    "baseline" or "best"), for tests and benchmarks.  Not thread-safe: call
    it while no other thread is computing.  Raises ValueError for a variant
    this build or CPU does not have."""
    if fs_use_isa(name.encode("ascii")) != 0:
        raise ValueError(f"instruction set {name!r} is not available here; "
                         f"this build and CPU offer up to {simd_target()!r}")


def openmp_enabled():
    """Whether this build runs rows on OpenMP threads."""
    return bool(FS_HAVE_OPENMP)


def default_threads():
    """Threads a call uses when ``num_threads`` is None (the OpenMP default;
    1 without OpenMP or in a process forked from one that had threads)."""
    if FORKED_CHILD or not FS_HAVE_OPENMP:
        return 1
    return omp_get_max_threads()


def simd_target():
    """The instruction-set variant of the kernels in use."""
    return fs_simd_target().decode("ascii")


def overlap(cnp.ndarray a, cnp.ndarray b):
    """How the memory of two C-contiguous arrays relates: 0 disjoint,
    1 the same buffer from the same start (in-place), 2 partial overlap."""
    return memory_relation(a, b)


# ---- where= selections, backward and losses ----------------------------------
#
# These work on C-contiguous (rows, n) arrays: the API layer moves the reduced
# axes to the end.  A where= selection is read in place through broadcast
# strides over the row index (never expanded to x's size); along a row it is
# either n contiguous bytes or one byte for the whole row.

cdef enum:
    MAX_OUTER_DIMS = 64

cdef struct selection:
    const unsigned char *base
    int ndim                                 # dimensions of the row index
    Py_ssize_t shape[MAX_OUTER_DIMS]
    Py_ssize_t strides[MAX_OUTER_DIMS]       # bytes; 0 where the mask broadcasts
    bint per_row                             # one byte per row
    unsigned char *none                      # n zero bytes: a row deselected as a whole


cdef inline const unsigned char *row_selection(const selection *s, Py_ssize_t r) noexcept nogil:
    """The selection of row r: n bytes, or NULL for every entry."""
    cdef Py_ssize_t offset = 0
    cdef int d
    if s == NULL:
        return NULL
    for d in range(s.ndim - 1, -1, -1):
        offset += (r % s.shape[d]) * s.strides[d]
        r = r // s.shape[d]
    if s.per_row:
        return NULL if s.base[offset] else s.none
    return s.base + offset


cdef int fill_selection(selection *s, cnp.ndarray mask, tuple outer_shape, Py_ssize_t n) except -1:
    """``mask``: a bool array of len(outer_shape) + 1 dimensions, each outer
    one 1 or the row index's, the last n with unit stride, or 1."""
    cdef int d, nd = len(outer_shape)
    if (cnp.PyArray_TYPE(mask) != cnp.NPY_BOOL or cnp.PyArray_NDIM(mask) != nd + 1
            or nd > MAX_OUTER_DIMS):
        raise ValueError("selection: a bool mask with one dimension more than the row index is needed")
    if cnp.PyArray_DIM(mask, nd) not in (1, n) or (cnp.PyArray_DIM(mask, nd) > 1 and cnp.PyArray_STRIDE(mask, nd) != 1):
        raise ValueError("selection: the mask's last dimension must be contiguous, or 1")
    s.base = <const unsigned char *> cnp.PyArray_DATA(mask)
    s.ndim = nd
    for d in range(nd):
        s.shape[d] = outer_shape[d]
        if cnp.PyArray_DIM(mask, d) not in (1, s.shape[d]):
            raise ValueError("selection: the mask does not broadcast to the row index")
        s.strides[d] = 0 if cnp.PyArray_DIM(mask, d) == 1 else cnp.PyArray_STRIDE(mask, d)
    s.per_row = cnp.PyArray_DIM(mask, nd) == 1 and n != 1
    s.none = NULL
    if s.per_row:
        s.none = <unsigned char *> calloc(max(n, 1), 1)
        if s.none == NULL:
            raise MemoryError()
    return 0


cdef int call_threads(int num_threads, Py_ssize_t work) noexcept:
    """thread_count, and 1 for work too small to share."""
    return 1 if work < MIN_PARALLEL_ELEMENTS else thread_count(num_threads)


cdef int check_rows(cnp.ndarray a, int typenum, Py_ssize_t rows, Py_ssize_t n, str name) except -1:
    if (cnp.PyArray_TYPE(a) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(a) or cnp.PyArray_SIZE(a) != rows * n):
        raise ValueError(f"{name}: a C-contiguous array of {rows} x {n} of the row dtype is needed")
    return 0


cdef int dtype_of(cnp.ndarray x) except -1:
    cdef int typenum = cnp.PyArray_TYPE(x)
    if cnp.PyArray_NDIM(x) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(x) or (
            typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64):
        raise ValueError("a C-contiguous 2-d float32/float64 array of rows is needed")
    return FS_F32 if typenum == cnp.NPY_FLOAT32 else FS_F64


cdef void selected_rows(int backward, int op, const fs_kernels *k, const char *x, const char *y, char *out,
                        Py_ssize_t rows, Py_ssize_t n, Py_ssize_t size, const selection *s,
                        const fs_params *p, int stream, int threads) noexcept nogil:
    """Forward (rows_where) or backward over rows with their selections.
    Along the last dimension of the row index the selection advances by one
    stride, so the rows go to the kernels in blocks of that run (the kernels
    fetch the next row ahead); a selection that is one byte per row goes row
    by row."""
    cdef Py_ssize_t out_step = size if (not backward and op == FS_LOGSUMEXP) else n * size
    cdef Py_ssize_t run = 1, step = 0, block, blocks_per_run, items, it, r0, count
    if s != NULL and not s.per_row and s.ndim > 0:
        run = s.shape[s.ndim - 1]
        step = s.strides[s.ndim - 1]
    elif s == NULL:
        run = rows
    block = min(run, 16) if s != NULL and s.per_row else min(run, max(16, rows // (4 * threads)))
    block = max(block, 1)
    blocks_per_run = (run + block - 1) // block
    items = (rows // run) * blocks_per_run if run > 0 else 0
    if threads <= 1:
        for it in range(items):
            selected_block(backward, op, k, x, y, out, it, run, block, blocks_per_run, n, size, out_step, step,
                           s, p, stream)
        return
    for it in prange(items, num_threads=threads, schedule="dynamic"):
        selected_block(backward, op, k, x, y, out, it, run, block, blocks_per_run, n, size, out_step, step,
                       s, p, stream)


cdef inline void selected_block(int backward, int op, const fs_kernels *k, const char *x, const char *y, char *out,
                                Py_ssize_t it, Py_ssize_t run, Py_ssize_t block, Py_ssize_t blocks_per_run,
                                Py_ssize_t n, Py_ssize_t size, Py_ssize_t out_step, Py_ssize_t step,
                                const selection *s, const fs_params *p, int stream) noexcept nogil:
    cdef Py_ssize_t r0 = (it // blocks_per_run) * run + (it % blocks_per_run) * block
    cdef Py_ssize_t count = min(block, run - (it % blocks_per_run) * block), r
    cdef const unsigned char *sel
    if s != NULL and s.per_row:
        for r in range(r0, r0 + count):
            sel = row_selection(s, r)
            if backward:
                k.backward(op, x + r * n * size, y + r * n * size, sel, out + r * n * size, 1, n, 0, p)
            else:
                k.rows_where(op, x + r * n * size, sel, out + r * out_step, 1, n, 0, p, stream)
        return
    sel = row_selection(s, r0)
    if backward:
        k.backward(op, x + r0 * n * size, y + r0 * n * size, sel, out + r0 * n * size, count, n, step, p)
    else:
        k.rows_where(op, x + r0 * n * size, sel, out + r0 * out_step, count, n, step, p, stream)


def compute_where(int op, cnp.ndarray x, cnp.ndarray mask, tuple outer_shape, cnp.ndarray out,
                  double temperature, int num_threads):
    """``op`` over the rows of C-contiguous (rows, n) ``x`` into ``out``
    ((rows, n), or (rows,) for logsumexp), entries taking part where ``mask``
    is True (see fill_selection; ``outer_shape`` is the row index's shape)."""
    cdef int dtype = dtype_of(x)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1)
    cdef Py_ssize_t size = 4 if dtype == FS_F32 else 8
    check_rows(out, cnp.PyArray_TYPE(x), rows, 1 if op == FS_LOGSUMEXP else n, "out")
    cdef selection s
    fill_selection(&s, mask, outer_shape, n)
    cdef fs_params p
    fs_params_init(dtype, temperature, &p)
    cdef const fs_kernels *k = fs_kernels_for(dtype)
    cdef int threads = call_threads(num_threads, rows * n)
    cdef int stream = op != FS_LOGSUMEXP and rows * n * size >= STREAM_BYTES
    cdef const char *xp = <const char *> cnp.PyArray_DATA(x)
    cdef char *op_ = <char *> cnp.PyArray_DATA(out)
    with nogil:
        selected_rows(0, op, k, xp, NULL, op_, rows, n, size, &s, &p, stream, <int> min(<Py_ssize_t> threads, rows))
    free(s.none)


def compute_backward(int op, cnp.ndarray grad, cnp.ndarray y, mask, tuple outer_shape, cnp.ndarray out,
                     double temperature, int num_threads):
    """softmax_backward (op SOFTMAX) or log_softmax_backward over the rows of
    C-contiguous (rows, n) arrays; ``out`` may be ``grad``; ``mask`` None or
    as for compute_where."""
    cdef int dtype = dtype_of(grad)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(grad, 0), n = cnp.PyArray_DIM(grad, 1)
    cdef Py_ssize_t size = 4 if dtype == FS_F32 else 8
    check_rows(y, cnp.PyArray_TYPE(grad), rows, n, "y")
    check_rows(out, cnp.PyArray_TYPE(grad), rows, n, "out")
    cdef selection s
    cdef selection *sp = NULL
    if mask is not None:
        fill_selection(&s, mask, outer_shape, n)
        sp = &s
    cdef fs_params p
    fs_params_init(dtype, temperature, &p)
    cdef const fs_kernels *k = fs_kernels_for(dtype)
    cdef int threads = call_threads(num_threads, rows * n)
    cdef const char *gp = <const char *> cnp.PyArray_DATA(grad)
    cdef const char *yp = <const char *> cnp.PyArray_DATA(y)
    cdef char *op_ = <char *> cnp.PyArray_DATA(out)
    with nogil:
        selected_rows(1, op, k, gp, yp, op_, rows, n, size, sp, &p, 0, <int> min(<Py_ssize_t> threads, rows))
    if sp != NULL:
        free(s.none)


cdef struct xent_job:
    const fs_kernels *k
    const fs_params *p
    Py_ssize_t n, size
    const char *x                 # logits (rows, n)
    const long long *target       # class indices, or NULL
    const char *soft              # soft labels (rows, n), or NULL
    const char *weight            # class weights (n,), or NULL
    long long ignore_index
    double smoothing
    char *grad                    # (rows, n), or NULL
    double grad_scale             # d(reduced loss) / d(row loss)
    double *loss                  # per row


cdef void xent_row(const xent_job *j, Py_ssize_t r) noexcept nogil:
    """Cross-entropy of row r (kernels.cross_entropy_row); an ignored row
    gives 0 and a zero gradient."""
    cdef Py_ssize_t n = j.n, size = j.size
    cdef const char *x = j.x + r * n * size
    cdef char *g = j.grad + r * n * size if j.grad != NULL else NULL
    cdef const char *q = j.soft + r * n * size if j.soft != NULL else NULL
    cdef long long t = -1
    if j.target != NULL:
        t = j.target[r]
        if t == j.ignore_index:
            j.loss[r] = 0.0
            if g != NULL:
                memset(g, 0, n * size)
            return
    j.loss[r] = j.k.cross_entropy_row(x, n, j.p, t, q, j.weight, j.smoothing, j.grad_scale, g)


def cross_entropy_rows(cnp.ndarray x, target, soft, weight, long long ignore_index, double smoothing,
                       double temperature, grad, double grad_scale, int num_threads):
    """Per-row cross-entropy losses (float64) of C-contiguous (rows, n)
    logits against int64 class indices ``target`` (rows,) or soft labels
    ``soft`` (rows, n); ``weight`` (n,) or None; the gradient of the reduced
    loss into ``grad`` when it is not None.  Class indices must be valid
    (checked by the caller)."""
    cdef int dtype = dtype_of(x)
    cdef int typenum = cnp.PyArray_TYPE(x)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1), r
    cdef cnp.ndarray loss = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(x), cnp.NPY_FLOAT64, 0)
    cdef fs_params p
    cdef xent_job j
    fs_params_init(dtype, temperature, &p)
    j.k = fs_kernels_for(dtype)
    j.p = &p
    j.n = n
    j.size = 4 if dtype == FS_F32 else 8
    j.x = <const char *> cnp.PyArray_DATA(x)
    j.target = NULL
    j.soft = NULL
    j.weight = NULL
    j.grad = NULL
    if target is not None:
        if cnp.PyArray_TYPE(target) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(target) or cnp.PyArray_SIZE(target) != rows:
            raise ValueError("target: a C-contiguous int64 array of one class per row is needed")
        j.target = <const long long *> cnp.PyArray_DATA(target)
    else:
        check_rows(soft, typenum, rows, n, "soft")
        j.soft = <const char *> cnp.PyArray_DATA(soft)
    if weight is not None:
        check_rows(weight, typenum, 1, n, "weight")
        j.weight = <const char *> cnp.PyArray_DATA(weight)
    if grad is not None:
        check_rows(grad, typenum, rows, n, "grad")
        j.grad = <char *> cnp.PyArray_DATA(grad)
    j.ignore_index = ignore_index
    j.smoothing = smoothing
    j.grad_scale = grad_scale
    j.loss = <double *> cnp.PyArray_DATA(loss)
    cdef int threads = min(<Py_ssize_t> call_threads(num_threads, rows * n), rows)
    with nogil:
        if threads <= 1:
            for r in range(rows):
                xent_row(&j, r)
        else:
            for r in prange(rows, num_threads=threads, schedule="dynamic", chunksize=4):
                xent_row(&j, r)
    return loss


cdef struct scratch_job:
    const fs_kernels *k
    const fs_params *p
    const char *a                 # student logits, or the similarity matrix
    const char *b                 # teacher logits, or NULL
    char *g                       # gradient (rows, n), or NULL
    Py_ssize_t n, size
    double scale1, scale2         # kl: grad scale; contrastive: row and column scales
    double *loss
    bint contrastive


cdef void scratch_row(const scratch_job *j, Py_ssize_t r, char *scratch) noexcept nogil:
    cdef Py_ssize_t at = r * j.n * j.size
    cdef char *g = j.g + at if j.g != NULL else NULL
    if j.contrastive:
        contrastive_row(j.k, j.p, j.a + at, g, scratch, r, j.n, j.size, j.scale1, j.scale2, j.loss + r)
    else:
        kl_row(j.k, j.p, j.a + at, j.b + at, g, scratch, j.n, j.size, j.scale1, j.loss + r)


cdef int rows_with_scratch(const scratch_job *j, Py_ssize_t rows, int threads) except -1:
    """Run scratch_row over the rows, each thread with a row of scratch."""
    cdef Py_ssize_t r, bytes_ = max(j.n, 1) * j.size
    cdef char *scratch
    cdef int missing = 0
    with nogil:
        if threads <= 1:
            scratch = <char *> malloc(bytes_)
            if scratch != NULL:
                for r in range(rows):
                    scratch_row(j, r, scratch)
            missing = scratch == NULL
            free(scratch)
        else:
            with parallel(num_threads=threads):
                scratch = <char *> malloc(bytes_)
                for r in prange(rows, schedule="dynamic", chunksize=4):
                    if scratch == NULL:
                        missing += 1      # a reduction: no thread's failure is lost
                    else:
                        scratch_row(j, r, scratch)
                free(scratch)
    if missing:
        raise MemoryError("could not allocate a row of scratch per thread")
    return 0


cdef void kl_row(const fs_kernels *k, const fs_params *p, const char *s, const char *t, char *g, char *teacher_exps,
                 Py_ssize_t n, Py_ssize_t size, double grad_scale, double *loss) noexcept nogil:
    loss[0] = k.kl_div_row(s, t, n, p, grad_scale, g, teacher_exps)


def kl_div_rows(cnp.ndarray student, cnp.ndarray teacher, double temperature, grad, double grad_scale,
                int num_threads):
    """Per-row T**2 * KL(teacher || student) (float64) of C-contiguous
    (rows, n) logits; the gradient with respect to the student, times
    grad_scale, into ``grad`` when it is not None."""
    cdef int dtype = dtype_of(student)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(student, 0), n = cnp.PyArray_DIM(student, 1), r
    cdef Py_ssize_t size = 4 if dtype == FS_F32 else 8
    check_rows(teacher, cnp.PyArray_TYPE(student), rows, n, "teacher")
    cdef char *g = NULL
    if grad is not None:
        check_rows(grad, cnp.PyArray_TYPE(student), rows, n, "grad")
        g = <char *> cnp.PyArray_DATA(grad)
    cdef cnp.ndarray loss = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(student), cnp.NPY_FLOAT64, 0)
    cdef double *lp = <double *> cnp.PyArray_DATA(loss)
    cdef fs_params p
    fs_params_init(dtype, temperature, &p)
    cdef const fs_kernels *k = fs_kernels_for(dtype)
    cdef const char *sp = <const char *> cnp.PyArray_DATA(student)
    cdef const char *tp = <const char *> cnp.PyArray_DATA(teacher)
    cdef int threads = min(<Py_ssize_t> call_threads(num_threads, rows * n), rows)
    cdef scratch_job j
    j.k, j.p, j.a, j.b, j.g, j.n, j.size = k, &p, sp, tp, g, n, size
    j.scale1, j.scale2, j.loss, j.contrastive = grad_scale, 0.0, lp, False
    rows_with_scratch(&j, rows, threads)
    return loss


cdef void contrastive_row(const fs_kernels *k, const fs_params *p, const char *srow, char *g, char *row_exps,
                          Py_ssize_t i, Py_ssize_t n, Py_ssize_t size, double scale_rows, double scale_columns,
                          double *loss) noexcept nogil:
    loss[0] = k.contrastive_row(srow, i, n, p, scale_rows, scale_columns, g, row_exps)


def contrastive_rows(cnp.ndarray similarity, double temperature, bint symmetric, grad, double scale_rows,
                     double scale_columns, int num_threads):
    """Row and column cross-entropies (float64, against the diagonal) of a
    C-contiguous (N, N) similarity matrix at temperature T: (row_losses,
    column_losses or None).  The columns go through the strided-axis
    kernels, without a transposed copy.  With ``grad``, the gradient
    scale_rows * d(row losses) + scale_columns * d(column losses)."""
    cdef int dtype = dtype_of(similarity)
    cdef Py_ssize_t n = cnp.PyArray_DIM(similarity, 0), r
    cdef Py_ssize_t size = 4 if dtype == FS_F32 else 8
    if cnp.PyArray_DIM(similarity, 1) != n:
        raise ValueError("contrastive_rows: a square matrix is needed")
    cdef char *g = NULL
    if grad is not None:
        check_rows(grad, cnp.PyArray_TYPE(similarity), n, n, "grad")
        g = <char *> cnp.PyArray_DATA(grad)
    if not symmetric:
        scale_columns = 0.0
    cdef fs_params p
    fs_params_init(dtype, temperature, &p)
    cdef const fs_kernels *k = fs_kernels_for(dtype)
    cdef const char *sp = <const char *> cnp.PyArray_DATA(similarity)
    cdef int threads = min(<Py_ssize_t> call_threads(num_threads, n * n), n)
    cdef cnp.ndarray row_loss = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(similarity), cnp.NPY_FLOAT64, 0)
    cdef double *rl = <double *> cnp.PyArray_DATA(row_loss)
    cdef cnp.ndarray column_loss = None, column_lse
    if symmetric:
        column_lse = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(similarity), cnp.PyArray_TYPE(similarity), 0)
        with nogil:
            run(FS_LOGSUMEXP, dtype, sp, <char *> cnp.PyArray_DATA(column_lse), 1, n, n, temperature, threads)
            if g != NULL:
                run(FS_SOFTMAX, dtype, sp, g, 1, n, n, temperature, threads)
        diagonal = similarity.diagonal().astype(np.float64)
        column_loss = (column_lse.astype(np.float64) - diagonal) / temperature
    cdef scratch_job j
    j.k, j.p, j.a, j.b, j.g, j.n, j.size = k, &p, sp, NULL, g, n, size
    j.scale1, j.scale2, j.loss, j.contrastive = scale_rows, scale_columns, rl, True
    rows_with_scratch(&j, n, threads)
    return row_loss, column_loss


# ==== rows split over blocks (Dask arrays: fastsoftmax.dask) ===================
#
# A Dask array chunked along the reduced axis holds each row in several
# blocks.  Such a row is computed as the kernels compute a long row: the
# statistics of each piece (kernels.chunk_stats), folded in order with
# fs_stats_merge, finished with fs_row_finish, and each piece written by
# kernels.chunk_write.  Within one block a row longer than FS_LONG_ROW is cut
# again into FS_CHUNK pieces, as run_by_chunks does.  Between blocks (and
# processes) the statistics travel as NumPy arrays of STATS_DTYPE: the
# fs_stats struct, field for field.  A where= mask travels as bool blocks
# aligned with x's (sel, one byte per entry; NULL: every entry).

# An aligned NumPy struct: it keeps this layout through concatenation and
# copies (NumPy drops the padding of unaligned ones).
STATS_DTYPE = np.dtype({"names": ["max", "has_nan", "count", "rest", "rest_comp", "any_entry"],
                        "formats": [np.float64, np.intc, np.int64, np.float64, np.float64, np.intc]},
                       align=True)
cdef fs_stats _layout
if (STATS_DTYPE.itemsize != sizeof(fs_stats)
        or [STATS_DTYPE.fields[name][1] for name in STATS_DTYPE.names]
        != [<Py_ssize_t> (<char *> &_layout.max - <char *> &_layout),
            <Py_ssize_t> (<char *> &_layout.has_nan - <char *> &_layout),
            <Py_ssize_t> (<char *> &_layout.count - <char *> &_layout),
            <Py_ssize_t> (<char *> &_layout.rest - <char *> &_layout),
            <Py_ssize_t> (<char *> &_layout.rest_comp - <char *> &_layout),
            <Py_ssize_t> (<char *> &_layout.any_entry - <char *> &_layout)]):
    raise ImportError("fastsoftmax._rows: STATS_DTYPE does not match the fs_stats struct")


cdef inline Py_ssize_t piece_length(Py_ssize_t n) noexcept nogil:
    """Elements per piece of a row of n: the whole row, or FS_CHUNK for a long one."""
    return FS_CHUNK if n > FS_LONG_ROW else max(n, 1)


cdef inline void piece_stats(const fs_kernels *k, int op, const char *x, const unsigned char *sel,
                             Py_ssize_t n, Py_ssize_t size, Py_ssize_t it, const fs_params *p,
                             fs_stats *s) noexcept nogil:
    """Statistics of piece ``it`` (row-major over rows and their pieces)."""
    cdef Py_ssize_t piece = piece_length(n)
    cdef Py_ssize_t pieces = (n + piece - 1) // piece
    cdef Py_ssize_t start = (it // pieces) * n + (it % pieces) * piece
    k.chunk_stats(op, x + start * size, sel + start if sel != NULL else NULL,
                  min(piece, n - (it % pieces) * piece), p, s)


cdef inline void piece_write(const fs_kernels *k, int op, const char *x, const unsigned char *sel, char *out,
                             Py_ssize_t n, Py_ssize_t size, Py_ssize_t it, const fs_params *p,
                             const fs_row_result *result, int stream) noexcept nogil:
    """The write pass of piece ``it``, from its row's finished statistics."""
    cdef Py_ssize_t piece = piece_length(n)
    cdef Py_ssize_t pieces = (n + piece - 1) // piece
    cdef Py_ssize_t r = it // pieces
    cdef Py_ssize_t start = r * n + (it % pieces) * piece
    k.chunk_write(op, x + start * size, sel + start if sel != NULL else NULL, out + start * size,
                  min(piece, n - (it % pieces) * piece), p, &result[r], stream)


cdef void merge_in_order(const fs_stats *part, Py_ssize_t rows, Py_ssize_t pieces, const fs_params *p,
                         fs_stats *whole) noexcept nogil:
    """Fold each row's ``pieces`` consecutive statistics, in order, into whole[row]."""
    cdef Py_ssize_t r, c
    for r in range(rows):
        fs_stats_init(&whole[r])
        for c in range(pieces):
            fs_stats_merge(&part[r * pieces + c], p, &whole[r])


cdef int stats_by_pieces(const fs_kernels *k, int op, const char *x, const unsigned char *sel, Py_ssize_t rows,
                         Py_ssize_t n, Py_ssize_t size, const fs_params *p, int threads,
                         fs_stats *whole) noexcept nogil:
    """The statistics of each of ``rows`` contiguous rows of n (entries where
    sel, rows x n, is nonzero; sel NULL: all) into whole[]:
    the pieces' statistics on ``threads`` threads, merged in piece order.
    Returns -1 when out of memory."""
    cdef Py_ssize_t pieces = (n + piece_length(n) - 1) // piece_length(n)
    cdef Py_ssize_t it, items = rows * pieces
    cdef fs_stats *part = whole
    if pieces == 0:
        merge_in_order(NULL, rows, 0, p, whole)
        return 0
    if pieces > 1:
        part = <fs_stats *> malloc(items * sizeof(fs_stats))
        if part == NULL:
            return -1
    # no parallel region at all on one thread (see FORKED_CHILD)
    if threads <= 1:
        for it in range(items):
            piece_stats(k, op, x, sel, n, size, it, p, &part[it])
    else:
        for it in prange(items, num_threads=threads, schedule="static"):
            piece_stats(k, op, x, sel, n, size, it, p, &part[it])
    if pieces > 1:
        merge_in_order(part, rows, pieces, p, whole)
        free(part)
    return 0


cdef int write_by_pieces(const fs_kernels *k, int op, const char *x, const unsigned char *sel, char *out,
                         Py_ssize_t rows, Py_ssize_t n, Py_ssize_t row_length, Py_ssize_t size,
                         const fs_params *p, const fs_stats *whole, int stream, int threads) noexcept nogil:
    """Finish each row's statistics whole[] (of a row ``row_length`` long)
    and write ``op``: logsumexp into out[row], or softmax / log_softmax of
    the row's n entries held in x into out (both rows x n; entries where
    sel, rows x n, is zero are masked; sel NULL: none), on ``threads``
    threads.  Returns -1 when out of memory."""
    cdef Py_ssize_t pieces = (n + piece_length(n) - 1) // piece_length(n)
    cdef Py_ssize_t it, r
    cdef fs_row_result *result = <fs_row_result *> malloc(max(rows, 1) * sizeof(fs_row_result))
    if result == NULL:
        return -1
    for r in range(rows):
        fs_row_finish(op, &whole[r], row_length, p, &result[r])
    if op == FS_LOGSUMEXP:
        for r in range(rows):
            if size == 4:
                (<float *> out)[r] = <float> result[r].logsumexp
            else:
                (<double *> out)[r] = result[r].logsumexp
    elif threads <= 1:
        for it in range(rows * pieces):
            piece_write(k, op, x, sel, out, n, size, it, p, result, stream)
    else:
        for it in prange(rows * pieces, num_threads=threads, schedule="static"):
            piece_write(k, op, x, sel, out, n, size, it, p, result, stream)
    free(result)
    return 0


cdef int rows_dtype(cnp.ndarray a, int ndim, str what) except -1:
    """FS_F32 / FS_F64 for a C-contiguous float32 / float64 array of ``ndim`` dimensions."""
    cdef int typenum = cnp.PyArray_TYPE(a)
    if (cnp.PyArray_NDIM(a) != ndim or not cnp.PyArray_IS_C_CONTIGUOUS(a)
            or (typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64)):
        raise ValueError(f"{what} must be a C-contiguous {ndim}-d float32 or float64 array")
    return FS_F32 if typenum == cnp.NPY_FLOAT32 else FS_F64


cdef const unsigned char *mask_data(mask, Py_ssize_t rows, Py_ssize_t n, str what) except? NULL:
    """The entries of a where= block: None (NULL), or a C-contiguous (rows, n) bool array."""
    if mask is None:
        return NULL
    if (not isinstance(mask, cnp.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray> mask) != cnp.NPY_BOOL
            or cnp.PyArray_NDIM(<cnp.ndarray> mask) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> mask)
            or cnp.PyArray_DIM(<cnp.ndarray> mask, 0) != rows or cnp.PyArray_DIM(<cnp.ndarray> mask, 1) != n):
        raise ValueError(f"{what} must be None or a C-contiguous ({rows}, {n}) bool array")
    return <const unsigned char *> cnp.PyArray_DATA(<cnp.ndarray> mask)


cdef int check_stats(cnp.ndarray stats, Py_ssize_t rows, int ndim, str what) except -1:
    if (stats.dtype != STATS_DTYPE or cnp.PyArray_NDIM(stats) != ndim
            or not cnp.PyArray_IS_C_CONTIGUOUS(stats) or cnp.PyArray_DIM(stats, 0) != rows):
        raise ValueError(f"{what} must be a C-contiguous {ndim}-d STATS_DTYPE array of {rows} rows")
    return 0


def row_stats(int op, cnp.ndarray x, double temperature, int num_threads, mask=None):
    """The statistics of each row of ``x``, a C-contiguous (rows, n) float32
    or float64 array that may hold only a piece of each row.

    Returns a (rows,) array of STATS_DTYPE, relative to each piece's own
    maximum, to be merged in piece order by :func:`merge_row_stats`.  ``op``
    is the operation the statistics are for (softmax keeps every term in
    ``rest``; log_softmax and logsumexp keep the terms at the maximum in
    ``count`` for log1p).  ``num_threads`` <= 0 means the OpenMP default.
    ``mask``, None or a C-contiguous (rows, n) bool array, is the block of
    ``where=``: only entries where it is True take part (a row piece with
    none has ``any_entry`` 0)."""
    cdef int dtype = rows_dtype(x, 2, "row_stats(): x")
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1)
    cdef const unsigned char *sel = mask_data(mask, rows, n, "row_stats(): mask")
    cdef Py_ssize_t size = 4 if dtype == FS_F32 else 8
    cdef cnp.ndarray stats = np.empty(rows, STATS_DTYPE)
    cdef fs_params p
    cdef const fs_kernels *k = fs_kernels_for(dtype)
    cdef const char *xp = <const char *> cnp.PyArray_DATA(x)
    cdef fs_stats *sp = <fs_stats *> cnp.PyArray_DATA(stats)
    cdef int threads = call_threads(num_threads, rows * n)
    cdef int status
    fs_params_init(dtype, temperature, &p)
    with nogil:
        status = stats_by_pieces(k, op, xp, sel, rows, n, size, &p, threads, sp)
    if status != 0:
        raise MemoryError("row_stats(): could not allocate per-piece statistics")
    return stats


def merge_row_stats(cnp.ndarray parts, dtype, double temperature):
    """Fold a (rows, m) STATS_DTYPE array, each row's m pieces in order, into
    (rows,) statistics of the whole rows.  ``dtype`` (float32 or float64) is
    the one the pieces were computed in."""
    cdef int code = FS_F32 if np.dtype(dtype) == np.float32 else FS_F64
    if np.dtype(dtype) != np.float32 and np.dtype(dtype) != np.float64:
        raise ValueError(f"merge_row_stats(): dtype must be float32 or float64, got {dtype!r}")
    if cnp.PyArray_NDIM(parts) != 2:
        raise ValueError("merge_row_stats(): parts must be 2-d")
    check_stats(parts, cnp.PyArray_DIM(parts, 0), 2, "merge_row_stats(): parts")
    cdef Py_ssize_t rows = cnp.PyArray_DIM(parts, 0), m = cnp.PyArray_DIM(parts, 1)
    cdef cnp.ndarray whole = np.empty(rows, STATS_DTYPE)
    cdef fs_params p
    cdef const fs_stats *pp = <const fs_stats *> cnp.PyArray_DATA(parts)
    cdef fs_stats *wp = <fs_stats *> cnp.PyArray_DATA(whole)
    fs_params_init(code, temperature, &p)
    with nogil:
        merge_in_order(pp, rows, m, &p, wp)
    return whole


def write_from_stats(int op, x, cnp.ndarray stats, Py_ssize_t row_length, double temperature,
                     cnp.ndarray out, int num_threads, mask=None):
    """``op`` for rows whose merged statistics are ``stats`` ((rows,) of
    STATS_DTYPE, from :func:`row_stats` with the same ``op`` and
    temperature), each row ``row_length`` long in all.

    logsumexp: ``x`` is None and ``out`` a C-contiguous (rows,) float32 or
    float64 array.  softmax, log_softmax: ``x`` is this block's (rows, n)
    piece of the rows, C-contiguous, and ``out`` an array like it; ``mask``
    None, or the matching C-contiguous (rows, n) bool block of ``where=``
    (entries where it is False are written as masked)."""
    cdef int dtype
    cdef Py_ssize_t rows, n = 0
    cdef const char *xp = NULL
    cdef const unsigned char *sel = NULL
    if op == FS_LOGSUMEXP:
        dtype = rows_dtype(out, 1, "write_from_stats(): out")
        rows = cnp.PyArray_DIM(out, 0)
    elif op == FS_SOFTMAX or op == FS_LOG_SOFTMAX:
        if not isinstance(x, cnp.ndarray):
            raise ValueError("write_from_stats(): x must be an ndarray for softmax and log_softmax")
        dtype = rows_dtype(x, 2, "write_from_stats(): x")
        rows_dtype(out, 2, "write_from_stats(): out")
        if (cnp.PyArray_DIM(x, 0) != cnp.PyArray_DIM(out, 0) or cnp.PyArray_DIM(x, 1) != cnp.PyArray_DIM(out, 1)
                or cnp.PyArray_TYPE(x) != cnp.PyArray_TYPE(out)):
            raise ValueError("write_from_stats(): out must have x's shape and dtype")
        rows, n = cnp.PyArray_DIM(x, 0), cnp.PyArray_DIM(x, 1)
        xp = <const char *> cnp.PyArray_DATA(x)
        sel = mask_data(mask, rows, n, "write_from_stats(): mask")
    else:
        raise ValueError(f"write_from_stats(): unknown op {op}")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("write_from_stats(): out is read-only")
    check_stats(stats, rows, 1, "write_from_stats(): stats")
    cdef Py_ssize_t size = 4 if dtype == FS_F32 else 8
    cdef fs_params p
    cdef const fs_kernels *k = fs_kernels_for(dtype)
    cdef char *op_ = <char *> cnp.PyArray_DATA(out)
    cdef const fs_stats *sp = <const fs_stats *> cnp.PyArray_DATA(stats)
    cdef int threads = call_threads(num_threads, rows * n)
    cdef int stream = op != FS_LOGSUMEXP and rows * n * size >= STREAM_BYTES
    cdef int status
    fs_params_init(dtype, temperature, &p)
    with nogil:
        status = write_by_pieces(k, op, xp, sel, op_, rows, n, row_length, size, &p, sp, stream, threads)
    if status != 0:
        raise MemoryError("write_from_stats(): could not allocate row results")


# ==== weighted log-sum-exp: fastsoftmax.special.logsumexp(a, b=...) ===========

cdef extern from "weighted.h" nogil:
    void fs_weighted_finish(const fs_stats *s, double temperature, double *value, double *sign)


cdef inline Py_ssize_t weight_row(const Py_ssize_t *b_rows, Py_ssize_t r, Py_ssize_t b_len) noexcept nogil:
    """Offset (in elements) of row r's weights."""
    return b_rows[r] if b_rows != NULL else r * b_len


cdef void weighted_row_stats(const fs_kernels *k, const char *x, const char *b, Py_ssize_t b_step,
                             Py_ssize_t n, Py_ssize_t size, const fs_params *p, fs_stats *row) noexcept nogil:
    """A row's statistics: in one piece, or a long row in FS_CHUNK pieces merged
    in order, exactly as run_weighted splits it over threads."""
    cdef fs_stats chunk
    cdef Py_ssize_t start = 0
    if n <= FS_LONG_ROW:
        k.weighted_stats(x, b, b_step, n, p, row)
        return
    fs_stats_init(row)
    while start < n:
        k.weighted_stats(x + start * size, b + start * b_step * size, b_step, min(FS_CHUNK, n - start), p,
                         &chunk)
        fs_stats_merge(&chunk, p, row)
        start += FS_CHUNK


cdef void weighted_store(const fs_stats *row, double temperature, Py_ssize_t r, char *value, char *sign,
                         Py_ssize_t size) noexcept nogil:
    """Row r's value (and sign, unless sign is NULL: then a negative sum gives NaN)."""
    cdef double v, s
    fs_weighted_finish(row, temperature, &v, &s)
    if sign == NULL and s < 0:
        v = NAN
    if size == 4:
        (<float *> value)[r] = <float> v
        if sign != NULL:
            (<float *> sign)[r] = <float> s
    else:
        (<double *> value)[r] = v
        if sign != NULL:
            (<double *> sign)[r] = s


cdef int run_weighted(const fs_kernels *k, const char *x, const char *b, const Py_ssize_t *b_rows,
                      Py_ssize_t b_step, Py_ssize_t rows, Py_ssize_t n, Py_ssize_t size, const fs_params *p,
                      char *value, char *sign, int threads) noexcept nogil:
    """Rows on threads, or few long rows by chunks on threads (as run_by_chunks);
    results do not depend on the split.  Returns -1 when out of memory."""
    cdef Py_ssize_t b_len = n if b_step else 1
    cdef Py_ssize_t chunks, items, it, r, c, start
    cdef fs_stats row
    cdef fs_stats *part
    if threads > 1 and n > FS_LONG_ROW and rows < 4 * threads:
        chunks = (n + FS_CHUNK - 1) // FS_CHUNK
        items = rows * chunks
        part = <fs_stats *> malloc(items * sizeof(fs_stats))
        if part == NULL:
            return -1
        for it in prange(items, num_threads=threads, schedule="static"):
            r = it // chunks
            start = (it % chunks) * FS_CHUNK
            k.weighted_stats(x + (r * n + start) * size, b + (weight_row(b_rows, r, b_len) + start * b_step) * size,
                             b_step, min(FS_CHUNK, n - start), p, &part[it])
        for r in range(rows):
            fs_stats_init(&row)
            for c in range(chunks):
                fs_stats_merge(&part[r * chunks + c], p, &row)
            weighted_store(&row, 1.0, r, value, sign, size)
        free(part)
        return 0
    if threads <= 1:
        for r in range(rows):
            weighted_row(k, x, b, b_rows, b_step, b_len, r, n, size, p, value, sign)
        return 0
    for r in prange(rows, num_threads=threads, schedule="static"):
        weighted_row(k, x, b, b_rows, b_step, b_len, r, n, size, p, value, sign)
    return 0


cdef inline void weighted_row(const fs_kernels *k, const char *x, const char *b, const Py_ssize_t *b_rows,
                              Py_ssize_t b_step, Py_ssize_t b_len, Py_ssize_t r, Py_ssize_t n, Py_ssize_t size,
                              const fs_params *p, char *value, char *sign) noexcept nogil:
    """Row r whole; its statistics are local, so threads never share them."""
    cdef fs_stats row
    weighted_row_stats(k, x + r * n * size, b + weight_row(b_rows, r, b_len) * size, b_step, n, size, p, &row)
    weighted_store(&row, 1.0, r, value, sign, size)


def weighted_logsumexp(cnp.ndarray x, cnp.ndarray b, b_rows, bint b_varies, cnp.ndarray value, sign,
                       int num_threads):
    """``log(sum(b * exp(x)))`` of each row of ``x`` into ``value``, and the
    sign of the sum into ``sign``; with ``sign`` None a negative sum gives NaN.

    ``x`` is C-contiguous (rows, n), float32 or float64; ``b``, ``value`` and
    ``sign`` are C-contiguous arrays of its dtype, ``value`` and ``sign`` of
    ``rows`` elements.  Row r's weights are ``n`` consecutive elements of ``b``
    (``b_varies``) or one, broadcast over the row, starting at element
    ``b_rows[r]`` (an intp array), or at ``r * n`` / ``r`` when ``b_rows`` is
    None.  ``num_threads`` <= 0 means the OpenMP default.
    """
    cdef int typenum = cnp.PyArray_TYPE(x)
    if (cnp.PyArray_NDIM(x) != 2 or (typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64)
            or not cnp.PyArray_IS_C_CONTIGUOUS(x)):
        raise ValueError("weighted_logsumexp() needs x as a C-contiguous (rows, n) float32/float64 array")
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1)
    cdef Py_ssize_t b_len = n if b_varies else 1
    outputs = (value,) if sign is None else (value, sign)
    for a in (b,) + outputs:
        if (type(a) is not cnp.ndarray or cnp.PyArray_TYPE(<cnp.ndarray> a) != typenum
                or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> a)):
            raise ValueError("weighted_logsumexp(): b, value and sign must be C-contiguous arrays of x's dtype")
    for a in outputs:
        if cnp.PyArray_SIZE(<cnp.ndarray> a) != rows or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> a):
            raise ValueError("weighted_logsumexp(): value and sign need one writable element per row")
    cdef cnp.ndarray offsets = None
    cdef const Py_ssize_t *offsets_p = NULL
    if b_rows is not None:
        offsets = cnp.PyArray_FROM_OTF(b_rows, cnp.NPY_INTP, cnp.NPY_ARRAY_IN_ARRAY)
        if cnp.PyArray_SIZE(offsets) != rows:
            raise ValueError("weighted_logsumexp(): b_rows needs one offset per row")
        offsets_p = <const Py_ssize_t *> cnp.PyArray_DATA(offsets)
    if rows and n:
        first, last = (0, (rows - 1) * b_len) if offsets is None else (offsets.min(), offsets.max())
        if first < 0 or last + b_len > cnp.PyArray_SIZE(b):
            raise ValueError("weighted_logsumexp(): the weights of a row lie outside b")
    cdef int dtype = FS_F32 if typenum == cnp.NPY_FLOAT32 else FS_F64
    cdef const fs_kernels *k = fs_kernels_for(dtype)
    cdef fs_params p
    fs_params_init(dtype, 1.0, &p)
    cdef int threads = call_threads(num_threads, rows * n)
    cdef char *sign_p = NULL if sign is None else <char *> cnp.PyArray_DATA(<cnp.ndarray> sign)
    cdef int status
    with nogil:
        status = run_weighted(k, <const char *> cnp.PyArray_DATA(x), <const char *> cnp.PyArray_DATA(b), offsets_p,
                              1 if b_varies else 0, rows, n, cnp.PyArray_ITEMSIZE(x), &p,
                              <char *> cnp.PyArray_DATA(value), sign_p, threads)
    if status != 0:
        raise MemoryError("fastsoftmax: could not allocate per-chunk statistics")


# ==== 16-bit rows (bfloat16, float16) staged through a buffer in cache =========

HALF_BF16 = FS_BF16
HALF_F16 = FS_F16

from numpy import dtype as numpy_dtype, empty as numpy_empty

# Elements of 16-bit input widened at once where rows are short: the block,
# widened, and its results stay in the L2 cache between the conversions and
# the kernels.  (Longer rows are widened one at a time; see half_impl.h.)
cdef Py_ssize_t STAGE_ELEMENTS = 16384


cdef int run_staged(const fs_kernels *k, int op, int in_format, int out_format, const char *x, char *out,
                    Py_ssize_t rows, Py_ssize_t n, Py_ssize_t size, Py_ssize_t out_size, const fs_params *p,
                    int threads) noexcept nogil:
    """Blocks of rows, each thread with its own buffer.  Blocks of short rows
    are whole multiples of 16 rows, as run_by_rows splits them, so the results
    are those of the wide dtype's path, rounded.  Returns -1 when out of
    memory."""
    cdef Py_ssize_t per_block, buffer_elements
    if n <= FS_STAGE_BY_ROW:
        per_block = max(16, STAGE_ELEMENTS // max(n, 1) // 16 * 16)
        buffer_elements = per_block * (n + 1)
    else:
        per_block = rows if threads <= 1 else max(1, rows // (4 * threads))
        buffer_elements = n + 1
    cdef Py_ssize_t blocks = (rows + per_block - 1) // per_block
    cdef Py_ssize_t buffer_bytes = (buffer_elements * size + 63) // 64 * 64
    cdef Py_ssize_t out_step = per_block * (1 if op == FS_LOGSUMEXP else n) * out_size
    cdef Py_ssize_t blk
    if blocks == 0:
        return 0
    threads = <int> min(<Py_ssize_t> threads, blocks)
    cdef char *buffers = <char *> malloc(threads * buffer_bytes)
    if buffers == NULL:
        return -1
    if threads <= 1:
        for blk in range(blocks):
            k.staged_rows(op, in_format, out_format, x + blk * per_block * n * 2, out + blk * out_step,
                          min(per_block, rows - blk * per_block), n, p, buffers)
    else:
        for blk in prange(blocks, num_threads=threads, schedule="dynamic"):
            k.staged_rows(op, in_format, out_format, x + blk * per_block * n * 2, out + blk * out_step,
                          min(per_block, rows - blk * per_block), n, p, buffers + threadid() * buffer_bytes)
    free(buffers)
    return 0


def empty_cached(shape, dtype):
    """An uninitialised C-contiguous result of any dtype; a large one comes
    from the result cache, as ``empty``'s float32/float64 ones do."""
    if numpy_dtype(dtype).itemsize * math.prod(shape) < FS_CACHE_MIN_BYTES:
        return numpy_empty(shape, dtype)
    previous = PyDataMem_SetHandler(CACHE_HANDLER)
    try:
        return numpy_empty(shape, dtype)
    finally:
        PyDataMem_SetHandler(previous)


def compute_staged(int op, cnp.ndarray x, cnp.ndarray out, int in_format, int out_format, double temperature,
                   int num_threads):
    """Apply ``op`` along the last axis of 16-bit ``x`` into ``out``, converting
    block by block inside the loop; returns False, having done nothing, where
    the general path is faster (few rows too long for one block, on several
    threads: it splits them into chunks).

    ``x`` and ``out`` are C-contiguous; ``in_format`` and ``out_format`` are
    HALF_BF16 or HALF_F16, or ``out_format`` is -1 when ``out`` is float32 or
    float64: the dtype computed in (float32 otherwise).  ``out`` has ``x``'s
    size (one element per row for logsumexp).
    """
    cdef int ndim = cnp.PyArray_NDIM(x)
    cdef int out_type = cnp.PyArray_TYPE(out)
    if (ndim < 1 or cnp.PyArray_ITEMSIZE(x) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(x)
            or not cnp.PyArray_IS_C_CONTIGUOUS(out) or not cnp.PyArray_ISWRITEABLE(out)
            or (out_format < 0 and out_type != cnp.NPY_FLOAT32 and out_type != cnp.NPY_FLOAT64)
            or (out_format >= 0 and cnp.PyArray_ITEMSIZE(out) != 2)
            or in_format not in (FS_BF16, FS_F16) or out_format not in (-1, FS_BF16, FS_F16)):
        raise ValueError("compute_staged() needs C-contiguous 16-bit x and a C-contiguous out of a known format")
    if op != FS_SOFTMAX and op != FS_LOG_SOFTMAX and op != FS_LOGSUMEXP:
        raise ValueError(f"compute_staged(): unknown op {op}")
    cdef Py_ssize_t n = cnp.PyArray_DIM(x, ndim - 1)
    cdef Py_ssize_t rows = 1
    cdef int d
    for d in range(ndim - 1):
        rows *= cnp.PyArray_DIM(x, d)
    if cnp.PyArray_SIZE(out) != (rows if op == FS_LOGSUMEXP else rows * n):
        raise ValueError("compute_staged(): out has the wrong size")
    cdef int dtype = FS_F64 if out_format < 0 and out_type == cnp.NPY_FLOAT64 else FS_F32
    cdef int threads = call_threads(num_threads, rows * n)
    if threads > 1 and n > FS_LONG_ROW and rows < 4 * threads:
        return False
    cdef fs_params p
    fs_params_init(dtype, temperature, &p)
    cdef int status
    with nogil:
        status = run_staged(fs_kernels_for(dtype), op, in_format, out_format, <const char *> cnp.PyArray_DATA(x),
                            <char *> cnp.PyArray_DATA(out), rows, n, 4 if dtype == FS_F32 else 8,
                            cnp.PyArray_ITEMSIZE(out), &p, threads)
    if status != 0:
        raise MemoryError("fastsoftmax: could not allocate the staging buffers")
    return True


# ---- sampling (fastsoftmax.sample) --------------------------------------------
# One index per row, drawn after the filters of csrc/sample_kernels.h, whose
# probabilities come from the kernel table above.  Each thread keeps its own
# sampler (the call's settings, the temperature constants of its last row,
# scratch rows).  The uniform numbers come from Python, one per row, so the
# result is the same for any number of threads.

from libc.stdint cimport int64_t

cdef extern from "sample_kernels.h" nogil:
    int FS_SAMPLE_NAN, FS_SAMPLE_POS_INF, FS_SAMPLE_NOTHING, FS_SAMPLE_NO_MEMORY
    ctypedef struct fs_sample_filters:
        Py_ssize_t top_k
        double top_p
        double min_p
    ctypedef struct fs_sampler:
        pass
    fs_sampler *fs_sampler_new(int dtype, Py_ssize_t n, const fs_sample_filters *filters, int masked)
    void fs_sampler_free(fs_sampler *s)
    int64_t fs_sampler_row(fs_sampler *s, const void *x, const unsigned char *mask, Py_ssize_t mask_stride,
                           double temperature, double u)

SAMPLE_NAN = FS_SAMPLE_NAN
SAMPLE_POS_INF = FS_SAMPLE_POS_INF
SAMPLE_NOTHING = FS_SAMPLE_NOTHING
SAMPLE_NO_MEMORY = FS_SAMPLE_NO_MEMORY


def sample(cnp.ndarray x, cnp.ndarray temperatures, cnp.ndarray uniforms, Py_ssize_t top_k, double top_p,
           double min_p, cnp.ndarray mask, cnp.ndarray mask_offsets, Py_ssize_t mask_stride, int num_threads):
    """One index per row of ``x``, a C-contiguous float32/float64 (rows, n)
    array, as an int64 array of ``rows`` entries; a row without one gets a
    negative SAMPLE_* code instead.

    ``temperatures`` and ``uniforms``: float64, one per row, or one for all
    rows (temperatures only).  ``top_k`` 0, ``top_p`` >= 1 and ``min_p`` 0 turn
    those filters off.  ``mask`` (or None): row r's entry i takes part where
    the byte at ``mask.data + mask_offsets[r] + i * mask_stride`` is nonzero;
    the mask is read in place, never expanded.  ``num_threads`` <= 0 means
    the OpenMP default.  Arguments are validated by fastsoftmax._sample."""
    cdef int typenum = cnp.PyArray_TYPE(x)
    if (cnp.PyArray_NDIM(x) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(x)
            or (typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64)):
        raise ValueError("sample() needs a C-contiguous float32/float64 array of 2 dimensions")
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1)
    cdef Py_ssize_t t_step = 0 if cnp.PyArray_SIZE(temperatures) == 1 else 1
    for a, length in ((temperatures, rows if t_step else 1), (uniforms, rows)):
        if (cnp.PyArray_TYPE(a) != cnp.NPY_FLOAT64 or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                or cnp.PyArray_SIZE(a) != length):
            raise ValueError("sample(): temperatures and uniforms must be C-contiguous float64, one per row")
    cdef bint masked = mask is not None
    if masked and (cnp.PyArray_TYPE(mask_offsets) != cnp.NPY_INTP or not cnp.PyArray_IS_C_CONTIGUOUS(mask_offsets)
                   or cnp.PyArray_SIZE(mask_offsets) != rows or cnp.PyArray_ITEMSIZE(mask) != 1):
        raise ValueError("sample(): the mask needs 1-byte entries and one intp offset per row")
    cdef cnp.npy_intp count = rows
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, &count, cnp.NPY_INT64, 0)
    if rows == 0:
        return out

    cdef fs_sample_filters filters
    filters.top_k = top_k
    filters.top_p = top_p
    filters.min_p = min_p
    cdef int dtype = FS_F32 if typenum == cnp.NPY_FLOAT32 else FS_F64
    cdef Py_ssize_t row_bytes = n * (4 if dtype == FS_F32 else 8)
    cdef const char *xp = <const char *> cnp.PyArray_DATA(x)
    cdef const double *temps = <const double *> cnp.PyArray_DATA(temperatures)
    cdef const double *us = <const double *> cnp.PyArray_DATA(uniforms)
    cdef const unsigned char *mp = <const unsigned char *> cnp.PyArray_DATA(mask) if masked else NULL
    cdef const Py_ssize_t *moff = <const Py_ssize_t *> cnp.PyArray_DATA(mask_offsets) if masked else NULL
    cdef int64_t *res = <int64_t *> cnp.PyArray_DATA(out)
    cdef fs_sampler *sampler = NULL
    cdef bint no_memory = False
    cdef Py_ssize_t r, chunk
    cdef int threads = <int> max(1, min(<Py_ssize_t> call_threads(num_threads, rows * n), rows))

    if threads == 1:
        with nogil:
            sampler = fs_sampler_new(dtype, n, &filters, masked)
            no_memory = sampler == NULL
            if not no_memory:
                for r in range(rows):
                    res[r] = fs_sampler_row(sampler, xp + r * row_bytes, mp + moff[r] if masked else NULL,
                                            mask_stride, temps[r * t_step], us[r])
                fs_sampler_free(sampler)
        if no_memory:
            raise MemoryError(f"sample(): no memory for the scratch rows of {n} entries")
        return out

    chunk = max(1, rows // (8 * threads))
    with nogil, parallel(num_threads=threads):
        sampler = fs_sampler_new(dtype, n, &filters, masked)
        for r in prange(rows, schedule="dynamic", chunksize=chunk):
            if sampler == NULL:
                res[r] = FS_SAMPLE_NO_MEMORY
            else:
                res[r] = fs_sampler_row(sampler, xp + r * row_bytes, mp + moff[r] if masked else NULL,
                                        mask_stride, temps[r * t_step], us[r])
        fs_sampler_free(sampler)
    return out
