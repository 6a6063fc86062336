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
import os

from cpython.pycapsule cimport PyCapsule_New
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
cimport numpy as cnp

cnp.import_array()

cdef extern from "openmp_compat.h" nogil:
    int omp_get_max_threads()
    int omp_get_num_procs()
    int FS_HAVE_OPENMP

cdef extern from "row_kernels.h" nogil:
    Py_ssize_t FS_CHUNK, FS_LONG_ROW
    int FS_SOFTMAX, FS_LOG_SOFTMAX, FS_LOGSUMEXP
    int FS_F32, FS_F64
    ctypedef struct fs_params:
        int mode
    ctypedef struct fs_stats:
        double max
    ctypedef struct fs_row_result:
        double logsumexp
    ctypedef struct fs_kernels:
        void (*rows)(int op, const void *x, void *out, Py_ssize_t rows, Py_ssize_t n,
                     const fs_params *p, int stream) noexcept nogil
        void (*chunk_stats)(int op, const void *x, Py_ssize_t n, const fs_params *p, fs_stats *s) noexcept nogil
        void (*chunk_write)(int op, const void *x, void *out, Py_ssize_t n, const fs_params *p,
                            const fs_row_result *r, int stream) noexcept nogil
        void (*columns)(int op, const void *x, void *out, Py_ssize_t n, Py_ssize_t stride,
                        Py_ssize_t lanes, Py_ssize_t out_stride, const fs_params *p) noexcept nogil
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
        k.chunk_stats(op, x + (r * n + start) * size, length, p, &part[it])
    for r in range(rows):
        fs_stats_init(&whole[r])
        for c in range(chunks):
            fs_stats_merge(&part[r * chunks + c], p, &whole[r])
        fs_row_finish(op, &whole[r], n, p, &result[r])

    if op == FS_LOGSUMEXP:
        for r in range(rows):
            if size == 4:
                (<float *> out)[r] = <float> result[r].logsumexp
            else:
                (<double *> out)[r] = result[r].logsumexp
    else:
        for it in prange(items, num_threads=threads, schedule="static"):
            r = it // chunks
            start = (it % chunks) * FS_CHUNK
            length = min(FS_CHUNK, n - start)
            k.chunk_write(op, x + (r * n + start) * size, out + (r * n + start) * size, length, p,
                          &result[r], stream)
    free(part)
    free(whole)
    free(result)
    return 0

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
    if FORKED_CHILD or not FS_HAVE_OPENMP:
        threads = 1
    else:
        threads = num_threads if num_threads > 0 else omp_get_max_threads()
        threads = max(1, min(threads, NUM_PROCS))
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
    threads None or an int >= 1, and ``out`` None or an ndarray of exactly
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
        if type(num_threads) is not int or num_threads < 1:
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


# ---- sampling (fastsoftmax.sample) --------------------------------------------
# One index per row, drawn after the filters of csrc/sample_kernels.h, whose
# probabilities come from the kernel table above.  Each thread keeps its own
# sampler (the call's settings, the temperature constants of its last row,
# scratch rows).  The uniform numbers come from Python, one per row, so the
# result is the same for any number of threads.

from cython.parallel cimport parallel
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
    cdef int threads = 1
    if not FORKED_CHILD and FS_HAVE_OPENMP and rows > 1 and rows * n >= MIN_PARALLEL_ELEMENTS:
        threads = num_threads if num_threads > 0 else omp_get_max_threads()
        threads = <int> max(1, min(threads, NUM_PROCS, rows))

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
