# Rows split over blocks (Dask arrays: fastsoftmax.dask).
#
# A Dask array chunked along the reduced axis holds each row in several
# blocks.  Each block's piece of the rows goes through the chunk-and-merge of
# pieces.pxi: statistics per block (row_stats), folded in block order
# (merge_row_stats), then each block written (write_from_stats).  Between
# blocks (and processes) the statistics travel as NumPy arrays of
# STATS_DTYPE: the fs_stats struct, field for field.  A where= mask travels
# as bool blocks aligned with x's, read as views (views.pxi).

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


cdef int rows_dtype(cnp.ndarray a, int ndim, str what) except -1:
    """FS_F32 / FS_F64 for a C-contiguous float32 / float64 array of ``ndim`` dimensions."""
    cdef int typenum = cnp.PyArray_TYPE(a)
    if (cnp.PyArray_NDIM(a) != ndim or not cnp.PyArray_IS_C_CONTIGUOUS(a)
            or (typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64)):
        raise ValueError(f"{what} must be a C-contiguous {ndim}-d float32 or float64 array")
    return dtype_code(typenum)


cdef const row_view *block_selection(row_view *view, mask, Py_ssize_t rows, Py_ssize_t n,
                                     str what) except? NULL:
    """The entries of a where= block as a view: None (NULL), or a C-contiguous (rows, n) bool array."""
    if mask is None:
        return NULL
    if (not isinstance(mask, cnp.ndarray) or cnp.PyArray_TYPE(<cnp.ndarray> mask) != cnp.NPY_BOOL
            or cnp.PyArray_NDIM(<cnp.ndarray> mask) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> mask)
            or cnp.PyArray_DIM(<cnp.ndarray> mask, 0) != rows or cnp.PyArray_DIM(<cnp.ndarray> mask, 1) != n):
        raise ValueError(f"{what} must be None or a C-contiguous ({rows}, {n}) bool array")
    if rows and n:
        fill_view(view, mask, (rows,), n, True)
    return view


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
    cdef row_view view
    cdef const row_view *sel = block_selection(&view, mask, rows, n, "row_stats(): mask")
    cdef cnp.ndarray stats = np.empty(rows, STATS_DTYPE)
    cdef fs_params p
    cdef pieces_job job
    cdef int status
    cdef int threads = call_threads(num_threads, rows * n)
    fs_params_init(dtype, temperature, &p)
    pieces_init(&job, fs_kernels_for(dtype), &p, op, <const char *> cnp.PyArray_DATA(x), sel, n,
                dtype_size(dtype))
    with nogil:
        status = stats_by_pieces(&job, rows, threads, <fs_stats *> cnp.PyArray_DATA(stats))
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
    cdef row_view view
    cdef const row_view *sel = NULL
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
        sel = block_selection(&view, mask, rows, n, "write_from_stats(): mask")
    else:
        raise ValueError(f"write_from_stats(): unknown op {op}")
    if not cnp.PyArray_ISWRITEABLE(out):
        raise ValueError("write_from_stats(): out is read-only")
    check_stats(stats, rows, 1, "write_from_stats(): stats")
    cdef Py_ssize_t size = dtype_size(dtype)
    cdef fs_params p
    cdef pieces_job job
    cdef int threads = call_threads(num_threads, rows * n)
    cdef int status
    fs_params_init(dtype, temperature, &p)
    pieces_init(&job, fs_kernels_for(dtype), &p, op, xp, sel, n, size)
    job.out = <char *> cnp.PyArray_DATA(out)
    job.stream = op != FS_LOGSUMEXP and rows * n * size >= STREAM_BYTES
    with nogil:
        status = write_by_pieces(&job, rows, row_length, <const fs_stats *> cnp.PyArray_DATA(stats), threads)
    if status != 0:
        raise MemoryError("write_from_stats(): could not allocate row results")
