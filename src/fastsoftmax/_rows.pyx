# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, autotestdict=False
"""Loops over rows, and the threads that run them.

Everything here works on a 2-D C-contiguous float32 or float64 array of shape
(rows, n), one row per softmax, already validated by ``fastsoftmax._api``.
The per-row work lives in the C kernels (csrc/row_kernels.h); this module
decides how rows (or chunks of very long rows) are spread over OpenMP threads.
"""
import os

from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
cimport numpy as cnp

cnp.import_array()
fs_dispatch_init()   # pick the SIMD variant once, under the GIL

cdef extern from "openmp_compat.h" nogil:
    int omp_get_max_threads()
    int omp_get_num_procs()
    int FS_HAVE_OPENMP

cdef extern from "row_kernels.h" nogil:
    Py_ssize_t FS_CHUNK
    int FS_SOFTMAX, FS_LOG_SOFTMAX, FS_LOGSUMEXP
    int FS_ROW_NORMAL
    ctypedef struct fs_params:
        int mode
    ctypedef struct fs_stats:
        double max
    ctypedef struct fs_row_result:
        double logsumexp
    void fs_params_init_f32(double temperature, fs_params *p)
    void fs_params_init_f64(double temperature, fs_params *p)
    void fs_stats_init(fs_stats *s)
    void fs_stats_merge_scan(fs_stats *row, const fs_stats *chunk)
    void fs_stats_merge_reduce(fs_stats *row, const fs_stats *chunk)
    void fs_row_finish(int op, const fs_stats *row, Py_ssize_t n, const fs_params *p, fs_row_result *r)
    int fs_row_kind_after_scan(const fs_stats *row, Py_ssize_t n, const fs_params *p)
    void fs_scan_f32(const float *x, Py_ssize_t n, fs_stats *s)
    void fs_scan_f64(const double *x, Py_ssize_t n, fs_stats *s)
    void fs_reduce_f32(int op, const float *x, float *out, Py_ssize_t n, double mx, const fs_params *p, fs_stats *s)
    void fs_reduce_f64(int op, const double *x, double *out, Py_ssize_t n, double mx, const fs_params *p, fs_stats *s)
    void fs_write_f32(int op, const float *x, float *out, Py_ssize_t n, double mx, const fs_params *p, const fs_row_result *r)
    void fs_write_f64(int op, const double *x, double *out, Py_ssize_t n, double mx, const fs_params *p, const fs_row_result *r)
    void fs_rows_f32(int op, const float *x, float *out, Py_ssize_t rows, Py_ssize_t n, const fs_params *p)
    void fs_rows_f64(int op, const double *x, double *out, Py_ssize_t rows, Py_ssize_t n, const fs_params *p)
    const char *fs_simd_target()
    void fs_dispatch_init()

SOFTMAX = FS_SOFTMAX
LOG_SOFTMAX = FS_LOG_SOFTMAX
LOGSUMEXP = FS_LOGSUMEXP

# Below this many elements a call stays on the calling thread: starting a
# parallel region costs more than it saves.
cdef Py_ssize_t MIN_PARALLEL_ELEMENTS = 1 << 15

ctypedef fused real:
    float
    double

# ---- one place that maps the fused type onto the C kernel names -------------

cdef inline void params_init(const real *tag, double temperature, fs_params *p) noexcept nogil:
    if real is float:
        fs_params_init_f32(temperature, p)
    else:
        fs_params_init_f64(temperature, p)

cdef inline void kernel_rows(int op, const real *x, real *out, Py_ssize_t rows, Py_ssize_t n,
                             const fs_params *p) noexcept nogil:
    if real is float:
        fs_rows_f32(op, x, out, rows, n, p)
    else:
        fs_rows_f64(op, x, out, rows, n, p)

cdef inline void kernel_scan(const real *x, Py_ssize_t n, fs_stats *s) noexcept nogil:
    if real is float:
        fs_scan_f32(x, n, s)
    else:
        fs_scan_f64(x, n, s)

cdef inline void kernel_reduce(int op, const real *x, real *out, Py_ssize_t n, double mx,
                               const fs_params *p, fs_stats *s) noexcept nogil:
    if real is float:
        fs_reduce_f32(op, x, out, n, mx, p, s)
    else:
        fs_reduce_f64(op, x, out, n, mx, p, s)

cdef inline void kernel_write(int op, const real *x, real *out, Py_ssize_t n, double mx,
                              const fs_params *p, const fs_row_result *r) noexcept nogil:
    if real is float:
        fs_write_f32(op, x, out, n, mx, p, r)
    else:
        fs_write_f64(op, x, out, n, mx, p, r)

# ---- loops ------------------------------------------------------------------

cdef void run_by_rows(int op, const real *x, real *out, Py_ssize_t rows, Py_ssize_t n,
                      const fs_params *p, int threads) noexcept nogil:
    """Rows in contiguous blocks, a few blocks per thread."""
    cdef Py_ssize_t out_step = 1 if op == FS_LOGSUMEXP else n
    cdef Py_ssize_t block, b, start, count
    if threads <= 1:
        kernel_rows(op, x, out, rows, n, p)
        return
    block = max(1, rows // (4 * threads))
    for b in prange((rows + block - 1) // block, num_threads=threads, schedule="dynamic"):
        start = b * block
        count = min(block, rows - start)
        kernel_rows(op, x + start * n, out + start * out_step, count, n, p)

cdef int run_by_chunks(int op, const real *x, real *out, Py_ssize_t rows, Py_ssize_t n,
                       const fs_params *p, int threads) noexcept nogil:
    """Split long rows into FS_CHUNK pieces so that few rows still use every
    thread.  The kernels combine chunk statistics in chunk order, so results
    are bit-identical to run_by_rows.  Returns -1 when out of memory."""
    cdef Py_ssize_t chunks = (n + FS_CHUNK - 1) // FS_CHUNK
    cdef Py_ssize_t items = rows * chunks
    cdef Py_ssize_t it, r, c, start, length
    cdef fs_stats *part = <fs_stats *> malloc(items * sizeof(fs_stats))
    cdef fs_stats *whole = <fs_stats *> malloc(rows * sizeof(fs_stats))
    cdef fs_row_result *result = <fs_row_result *> malloc(rows * sizeof(fs_row_result))
    if part == NULL or whole == NULL or result == NULL:
        free(part)
        free(whole)
        free(result)
        return -1

    for it in prange(items, num_threads=threads, schedule="static"):
        r = it // chunks
        start = (it % chunks) * FS_CHUNK
        length = min(FS_CHUNK, n - start)
        fs_stats_init(&part[it])
        kernel_scan(x + r * n + start, length, &part[it])
    for r in range(rows):
        fs_stats_init(&whole[r])
        for c in range(chunks):
            fs_stats_merge_scan(&whole[r], &part[r * chunks + c])

    for it in prange(items, num_threads=threads, schedule="static"):
        r = it // chunks
        if fs_row_kind_after_scan(&whole[r], n, p) == FS_ROW_NORMAL:
            start = (it % chunks) * FS_CHUNK
            length = min(FS_CHUNK, n - start)
            fs_stats_init(&part[it])
            kernel_reduce(op, x + r * n + start, NULL if op == FS_LOGSUMEXP else out + r * n + start,
                          length, whole[r].max, p, &part[it])
    for r in range(rows):
        if fs_row_kind_after_scan(&whole[r], n, p) == FS_ROW_NORMAL:
            for c in range(chunks):
                fs_stats_merge_reduce(&whole[r], &part[r * chunks + c])
        fs_row_finish(op, &whole[r], n, p, &result[r])

    if op == FS_LOGSUMEXP:
        for r in range(rows):
            out[r] = <real> result[r].logsumexp
    else:
        for it in prange(items, num_threads=threads, schedule="static"):
            r = it // chunks
            start = (it % chunks) * FS_CHUNK
            length = min(FS_CHUNK, n - start)
            kernel_write(op, x + r * n + start, out + r * n + start, length, whole[r].max, p, &result[r])
    free(part)
    free(whole)
    free(result)
    return 0

cdef int run(int op, const real *x, real *out, Py_ssize_t rows, Py_ssize_t n,
             double temperature, int threads) noexcept nogil:
    cdef fs_params p
    params_init(x, temperature, &p)
    if rows * n < MIN_PARALLEL_ELEMENTS:
        threads = 1
    if threads > 1 and n >= 2 * FS_CHUNK and rows < 4 * threads:
        return run_by_chunks(op, x, out, rows, n, &p, threads)
    run_by_rows(op, x, out, rows, n, &p, min(<Py_ssize_t> threads, rows))
    return 0

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


cdef int launch(int op, cnp.ndarray x, cnp.ndarray out, Py_ssize_t rows, Py_ssize_t n,
                double temperature, int num_threads) except -1:
    cdef int threads
    cdef int status
    cdef void *xp = cnp.PyArray_DATA(x)
    cdef void *op_ = cnp.PyArray_DATA(out)
    if FORKED_CHILD or not FS_HAVE_OPENMP:
        threads = 1
    else:
        threads = num_threads if num_threads > 0 else omp_get_max_threads()
        threads = max(1, min(threads, NUM_PROCS))
    with nogil:
        if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32:
            status = run(op, <const float *> xp, <float *> op_, rows, n, temperature, threads)
        else:
            status = run(op, <const double *> xp, <double *> op_, rows, n, temperature, threads)
    if status != 0:
        raise MemoryError("fastsoftmax: could not allocate per-chunk statistics")
    return 0


def compute(int op, cnp.ndarray x, cnp.ndarray out, double temperature, int num_threads):
    """Apply ``op`` to each row of ``x`` (rows, n) into ``out`` ((rows, n) or (rows,)).

    Both arrays must be C-contiguous with the same dtype, float32 or float64;
    ``num_threads`` <= 0 means the OpenMP default.  ``out`` may be ``x``.
    """
    cdef int typenum = cnp.PyArray_TYPE(x)
    if (cnp.PyArray_NDIM(x) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(x)
            or not cnp.PyArray_IS_C_CONTIGUOUS(out) or not cnp.PyArray_ISWRITEABLE(out)
            or (typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64)
            or cnp.PyArray_TYPE(out) != typenum):
        raise ValueError("compute() needs C-contiguous float32/float64 arrays of one dtype")
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0)
    cdef Py_ssize_t n = cnp.PyArray_DIM(x, 1)
    if cnp.PyArray_SIZE(out) != (rows if op == FS_LOGSUMEXP else rows * n):
        raise ValueError("compute(): out has the wrong size")
    if op != FS_SOFTMAX and op != FS_LOG_SOFTMAX and op != FS_LOGSUMEXP:
        raise ValueError(f"compute(): unknown op {op}")
    launch(op, x, out, rows, n, temperature, num_threads)


def try_fast(int op, x, axis, temperature, out, num_threads):
    """The result of the most common call, or None to take the general path.

    Handles only arguments that need no conversion and cannot be invalid: a
    C-contiguous, aligned, native float32/float64 array of >= 1 dimension,
    rows along the last axis, a float temperature >= 0, no ``out``, threads
    None or an int >= 1.  Everything else (including every error) goes to
    ``fastsoftmax._api._apply``, the single validation path."""
    if type(x) is not cnp.ndarray or out is not None:
        return None
    cdef cnp.ndarray a = <cnp.ndarray> x
    cdef int typenum = cnp.PyArray_TYPE(a)
    cdef int ndim = cnp.PyArray_NDIM(a)
    if ((typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64) or ndim < 1
            or not cnp.PyArray_ISCARRAY_RO(a) or not cnp.PyArray_ISNOTSWAPPED(a)):
        return None
    if type(axis) is not int or (axis != -1 and axis != ndim - 1):
        return None
    if type(temperature) is not float or not (<double> temperature >= 0.0):
        return None
    cdef int threads = 0
    if num_threads is not None:
        if type(num_threads) is not int or num_threads < 1:
            return None
        threads = <int> min(num_threads, MAX_THREADS)
    cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(a)
    cdef Py_ssize_t n = dims[ndim - 1]
    cdef Py_ssize_t rows = 1
    cdef int k
    for k in range(ndim - 1):
        rows *= dims[k]
    cdef cnp.ndarray result = cnp.PyArray_EMPTY(ndim - 1 if op == FS_LOGSUMEXP else ndim, dims, typenum, 0)
    launch(op, a, result, rows, n, <double> temperature, threads)
    return result[()] if cnp.PyArray_NDIM(result) == 0 else result


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
    """The instruction-set variant of the kernels chosen for this CPU."""
    return fs_simd_target().decode("ascii")


def overlap(cnp.ndarray a, cnp.ndarray b):
    """How the memory of two C-contiguous arrays relates: 0 disjoint,
    1 the same buffer from the same start (in-place), 2 partial overlap."""
    cdef char *a0 = <char *> cnp.PyArray_DATA(a)
    cdef char *b0 = <char *> cnp.PyArray_DATA(b)
    cdef char *a1 = a0 + cnp.PyArray_NBYTES(a)
    cdef char *b1 = b0 + cnp.PyArray_NBYTES(b)
    if a1 <= b0 or b1 <= a0:
        return 0
    if a0 == b0 and a1 == b1:
        return 1
    return 2
