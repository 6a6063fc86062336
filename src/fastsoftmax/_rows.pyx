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
from libc.stdint cimport int64_t
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
        int has_nan
        int64_t count
        double rest
        double rest_comp
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
    cdef fs_stats *whole = <fs_stats *> malloc(rows * sizeof(fs_stats))
    cdef int status = -1
    if whole != NULL:
        status = stats_by_pieces(k, op, x, rows, n, size, p, threads, whole)
        if status == 0:
            status = write_by_pieces(k, op, x, out, rows, n, n, size, p, whole, stream, threads)
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


# ==== rows split over blocks (Dask arrays: fastsoftmax.dask) ===================
#
# A Dask array chunked along the reduced axis holds each row in several
# blocks.  Such a row is computed as the kernels compute a long row: the
# statistics of each piece (kernels.chunk_stats), folded in order with
# fs_stats_merge, finished with fs_row_finish, and each piece written by
# kernels.chunk_write.  Within one block a row longer than FS_LONG_ROW is cut
# again into FS_CHUNK pieces, as run_by_chunks does.  Between blocks (and
# processes) the statistics travel as NumPy arrays of STATS_DTYPE: the
# fs_stats struct, field for field.

import numpy as np

# An aligned NumPy struct: it keeps this layout through concatenation and
# copies (NumPy drops the padding of unaligned ones).
STATS_DTYPE = np.dtype({"names": ["max", "has_nan", "count", "rest", "rest_comp"],
                        "formats": [np.float64, np.intc, np.int64, np.float64, np.float64]},
                       align=True)
cdef fs_stats _layout
if (STATS_DTYPE.itemsize != sizeof(fs_stats)
        or [STATS_DTYPE.fields[name][1] for name in STATS_DTYPE.names]
        != [<Py_ssize_t> (<char *> &_layout.max - <char *> &_layout),
            <Py_ssize_t> (<char *> &_layout.has_nan - <char *> &_layout),
            <Py_ssize_t> (<char *> &_layout.count - <char *> &_layout),
            <Py_ssize_t> (<char *> &_layout.rest - <char *> &_layout),
            <Py_ssize_t> (<char *> &_layout.rest_comp - <char *> &_layout)]):
    raise ImportError("fastsoftmax._rows: STATS_DTYPE does not match the fs_stats struct")


cdef inline Py_ssize_t piece_length(Py_ssize_t n) noexcept nogil:
    """Elements per piece of a row of n: the whole row, or FS_CHUNK for a long one."""
    return FS_CHUNK if n > FS_LONG_ROW else max(n, 1)


cdef inline void piece_stats(const fs_kernels *k, int op, const char *x, Py_ssize_t n, Py_ssize_t size,
                             Py_ssize_t it, const fs_params *p, fs_stats *s) noexcept nogil:
    """Statistics of piece ``it`` (row-major over rows and their pieces)."""
    cdef Py_ssize_t piece = piece_length(n)
    cdef Py_ssize_t pieces = (n + piece - 1) // piece
    cdef Py_ssize_t start = (it % pieces) * piece
    k.chunk_stats(op, x + ((it // pieces) * n + start) * size, min(piece, n - start), p, s)


cdef inline void piece_write(const fs_kernels *k, int op, const char *x, char *out, Py_ssize_t n,
                             Py_ssize_t size, Py_ssize_t it, const fs_params *p,
                             const fs_row_result *result, int stream) noexcept nogil:
    """The write pass of piece ``it``, from its row's finished statistics."""
    cdef Py_ssize_t piece = piece_length(n)
    cdef Py_ssize_t pieces = (n + piece - 1) // piece
    cdef Py_ssize_t r = it // pieces
    cdef Py_ssize_t offset = (r * n + (it % pieces) * piece) * size
    k.chunk_write(op, x + offset, out + offset, min(piece, n - (it % pieces) * piece), p, &result[r],
                  stream)


cdef void merge_in_order(const fs_stats *part, Py_ssize_t rows, Py_ssize_t pieces, const fs_params *p,
                         fs_stats *whole) noexcept nogil:
    """Fold each row's ``pieces`` consecutive statistics, in order, into whole[row]."""
    cdef Py_ssize_t r, c
    for r in range(rows):
        fs_stats_init(&whole[r])
        for c in range(pieces):
            fs_stats_merge(&part[r * pieces + c], p, &whole[r])


cdef int stats_by_pieces(const fs_kernels *k, int op, const char *x, Py_ssize_t rows, Py_ssize_t n,
                         Py_ssize_t size, const fs_params *p, int threads, fs_stats *whole) noexcept nogil:
    """The statistics of each of ``rows`` contiguous rows of n into whole[]:
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
            piece_stats(k, op, x, n, size, it, p, &part[it])
    else:
        for it in prange(items, num_threads=threads, schedule="static"):
            piece_stats(k, op, x, n, size, it, p, &part[it])
    if pieces > 1:
        merge_in_order(part, rows, pieces, p, whole)
        free(part)
    return 0


cdef int write_by_pieces(const fs_kernels *k, int op, const char *x, char *out, Py_ssize_t rows,
                         Py_ssize_t n, Py_ssize_t row_length, Py_ssize_t size, const fs_params *p,
                         const fs_stats *whole, int stream, int threads) noexcept nogil:
    """Finish each row's statistics whole[] (of a row ``row_length`` long)
    and write ``op``: logsumexp into out[row], or softmax / log_softmax of
    the row's n entries held in x into out (both rows x n), on ``threads``
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
            piece_write(k, op, x, out, n, size, it, p, result, stream)
    else:
        for it in prange(rows * pieces, num_threads=threads, schedule="static"):
            piece_write(k, op, x, out, n, size, it, p, result, stream)
    free(result)
    return 0


cdef int rows_dtype(cnp.ndarray a, int ndim, str what) except -1:
    """FS_F32 / FS_F64 for a C-contiguous float32 / float64 array of ``ndim`` dimensions."""
    cdef int typenum = cnp.PyArray_TYPE(a)
    if (cnp.PyArray_NDIM(a) != ndim or not cnp.PyArray_IS_C_CONTIGUOUS(a)
            or (typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64)):
        raise ValueError(f"{what} must be a C-contiguous {ndim}-d float32 or float64 array")
    return FS_F32 if typenum == cnp.NPY_FLOAT32 else FS_F64


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
    ``mask`` is reserved for ``where=`` and not supported yet."""
    if mask is not None:
        raise NotImplementedError("row_stats(): a mask (where=) is not supported yet")
    cdef int dtype = rows_dtype(x, 2, "row_stats(): x")
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1)
    cdef Py_ssize_t size = 4 if dtype == FS_F32 else 8
    cdef cnp.ndarray stats = np.empty(rows, STATS_DTYPE)
    cdef fs_params p
    cdef const fs_kernels *k = fs_kernels_for(dtype)
    cdef const char *xp = <const char *> cnp.PyArray_DATA(x)
    cdef fs_stats *sp = <fs_stats *> cnp.PyArray_DATA(stats)
    cdef int threads = 1 if rows * n < MIN_PARALLEL_ELEMENTS else thread_count(num_threads)
    cdef int status
    fs_params_init(dtype, temperature, &p)
    with nogil:
        status = stats_by_pieces(k, op, xp, rows, n, size, &p, threads, sp)
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
                     cnp.ndarray out, int num_threads):
    """``op`` for rows whose merged statistics are ``stats`` ((rows,) of
    STATS_DTYPE, from :func:`row_stats` with the same ``op`` and
    temperature), each row ``row_length`` long in all.

    logsumexp: ``x`` is None and ``out`` a C-contiguous (rows,) float32 or
    float64 array.  softmax, log_softmax: ``x`` is this block's (rows, n)
    piece of the rows, C-contiguous, and ``out`` an array like it."""
    cdef int dtype
    cdef Py_ssize_t rows, n = 0
    cdef const char *xp = NULL
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
    cdef int threads = 1 if rows * n < MIN_PARALLEL_ELEMENTS else thread_count(num_threads)
    cdef int stream = op != FS_LOGSUMEXP and rows * n * size >= STREAM_BYTES
    cdef int status
    fs_params_init(dtype, temperature, &p)
    with nogil:
        status = write_by_pieces(k, op, xp, op_, rows, n, row_length, size, &p, sp, stream, threads)
    if status != 0:
        raise MemoryError("write_from_stats(): could not allocate row results")
