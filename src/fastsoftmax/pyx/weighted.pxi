# Weighted log-sum-exp: fastsoftmax.special.logsumexp(a, b=...).  Each row's
# statistics come from kernels.weighted_stats through the chunk-and-merge of
# pieces.pxi (rows on threads, or few long rows in pieces on threads) and
# end in fs_weighted_finish.

ctypedef struct weighted_job:
    pieces_job pieces             # with b set: weighted statistics
    char *value
    char *sign                    # or NULL: a negative sum gives NaN


cdef void weighted_store(const weighted_job *job, const fs_stats *row, Py_ssize_t r) noexcept nogil:
    """Row r's value (and sign, unless sign is NULL: then a negative sum gives NaN)."""
    cdef double v, s
    fs_weighted_finish(row, 1.0, &v, &s)
    if job.sign == NULL and s < 0:
        v = NAN
    store_value(job.value, r, job.pieces.size, v)
    if job.sign != NULL:
        store_value(job.sign, r, job.pieces.size, s)


cdef void weighted_rows_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop,
                            char *scratch) noexcept nogil:
    """Whole rows; each row's statistics are local, so threads never share them."""
    cdef const weighted_job *job = <const weighted_job *> loop
    cdef fs_stats row
    cdef Py_ssize_t r
    for r in range(start, stop):
        fold_row(&job.pieces, r, &row)
        weighted_store(job, &row, r)


cdef int run_weighted(weighted_job *job, Py_ssize_t rows, int threads) noexcept nogil:
    """-1 when out of memory."""
    cdef fs_stats *whole
    cdef Py_ssize_t r
    cdef int status
    if not split_long_rows(rows, job.pieces.n, threads):
        job.pieces.loop.run = weighted_rows_run
        return run_items(&job.pieces.loop, rows, threads)
    whole = <fs_stats *> malloc(rows * sizeof(fs_stats))
    if whole == NULL:
        return -1
    status = stats_by_pieces(&job.pieces, rows, threads, whole)
    if status == 0:
        for r in range(rows):
            weighted_store(job, &whole[r], r)
    free(whole)
    return status


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
    cdef int dtype = dtype_code(typenum)
    cdef fs_params p
    cdef weighted_job job
    cdef int status
    cdef int threads = call_threads(num_threads, rows * n)
    fs_params_init(dtype, 1.0, &p)
    pieces_init(&job.pieces, fs_kernels_for(dtype), &p, FS_LOGSUMEXP, <const char *> cnp.PyArray_DATA(x), NULL,
                n, dtype_size(dtype))
    job.pieces.b = <const char *> cnp.PyArray_DATA(b)
    job.pieces.b_rows, job.pieces.b_step, job.pieces.b_len = offsets_p, 1 if b_varies else 0, b_len
    job.value = <char *> cnp.PyArray_DATA(value)
    job.sign = NULL if sign is None else <char *> cnp.PyArray_DATA(<cnp.ndarray> sign)
    with nogil:
        status = run_weighted(&job, rows, threads)
    if status != 0:
        raise MemoryError("fastsoftmax: could not allocate per-chunk statistics")
