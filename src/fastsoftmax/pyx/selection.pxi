# where= selections, and the rows that take them: masked forward
# (kernels.rows_where) and the backward functions (kernels.backward).
#
# These work on C-contiguous (rows, n) arrays: the API layer moves the reduced
# axes to the end.  A selection is a broadcast view (views.pxi) whose rows are
# n contiguous bytes, or one byte for the whole row.

cdef struct selection:
    row_view view                            # n bytes per row, or one for the whole row
    bint per_row                             # one byte per row
    unsigned char *none                      # n zero bytes: a row deselected as a whole


cdef inline const unsigned char *row_selection(const selection *s, Py_ssize_t r) noexcept nogil:
    """The selection of row r: n bytes, or NULL for every entry."""
    cdef const unsigned char *at
    if s == NULL:
        return NULL
    at = <const unsigned char *> view_row(&s.view, r)
    if s.per_row:
        return NULL if at[0] else s.none
    return at


cdef int fill_selection(selection *s, cnp.ndarray mask, tuple outer_shape, Py_ssize_t n) except -1:
    """``mask``: a bool view (views.pxi) whose rows are contiguous."""
    fill_view(&s.view, mask, outer_shape, n, True)
    s.per_row = s.view.length == 1 and n != 1
    s.none = NULL
    if s.per_row:
        s.none = <unsigned char *> calloc(max(n, 1), 1)
        if s.none == NULL:
            raise MemoryError()
    return 0


cdef int check_rows(cnp.ndarray a, int typenum, Py_ssize_t rows, Py_ssize_t n, str name) except -1:
    if (cnp.PyArray_TYPE(a) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(a) or cnp.PyArray_SIZE(a) != rows * n):
        raise ValueError(f"{name}: a C-contiguous array of {rows} x {n} of the row dtype is needed")
    return 0


cdef int dtype_of(cnp.ndarray x) except -1:
    cdef int typenum = cnp.PyArray_TYPE(x)
    if cnp.PyArray_NDIM(x) != 2 or not cnp.PyArray_IS_C_CONTIGUOUS(x) or (
            typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64):
        raise ValueError("a C-contiguous 2-d float32/float64 array of rows is needed")
    return dtype_code(typenum)


ctypedef struct selected_job:
    loop_job loop
    const fs_kernels *k
    const fs_params *p
    const selection *s            # or NULL: every entry
    const double *temperatures    # one per row, or NULL: every row uses p
    int dtype
    bint backward                 # kernels.backward (x is the gradient, y the forward result)
    int op, stream
    const char *x
    const char *y
    char *out
    Py_ssize_t n, size, out_step
    Py_ssize_t run_length         # rows whose selections lie one stride apart (the last dimension of the row index)


cdef void selected_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop, char *scratch) noexcept nogil:
    """Rows [start, stop): within a run of rows whose selections advance by
    one stride, one kernel call for the whole stretch (the kernels fetch the
    next row ahead); a selection of one byte per row goes row by row."""
    cdef const selected_job *job = <const selected_job *> loop
    cdef Py_ssize_t r = start, count, step = 0, n = job.n, size = job.size
    cdef const unsigned char *sel
    cdef const fs_params *p
    cdef params_cache own
    own.temperature = NAN
    if job.s != NULL and not job.s.per_row and job.s.view.ndim > 0:
        step = job.s.view.strides[job.s.view.ndim - 1]
    while r < stop:
        if (job.s != NULL and job.s.per_row) or job.temperatures != NULL:
            count = 1
        else:
            count = min(stop, (r // job.run_length + 1) * job.run_length) - r
        sel = row_selection(job.s, r)
        p = params_of_row(job.p, job.temperatures, job.dtype, r, &own)
        if job.backward:
            job.k.backward(job.op, job.x + r * n * size, job.y + r * n * size, sel, job.out + r * n * size,
                           count, n, step if count > 1 else 0, p)
        else:
            job.k.rows_where(job.op, job.x + r * n * size, sel, job.out + r * job.out_step, count, n,
                             step if count > 1 else 0, p, job.stream)
        r += count


cdef int run_selected(bint backward, int op, cnp.ndarray x, y, mask, tuple outer_shape, cnp.ndarray out,
                      temperature, int num_threads) except -1:
    cdef int dtype = dtype_of(x)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1)
    cdef selected_job job
    cdef selection s
    cdef fs_params p
    memset(&job, 0, sizeof(job))
    job.size = dtype_size(dtype)
    if backward:
        check_rows(y, cnp.PyArray_TYPE(x), rows, n, "y")
        job.y = <const char *> cnp.PyArray_DATA(y)
    check_rows(out, cnp.PyArray_TYPE(x), rows, 1 if op == FS_LOGSUMEXP and not backward else n, "out")
    if rows == 0:
        return 0
    s.none = NULL
    if mask is not None:
        fill_selection(&s, mask, outer_shape, n)
        job.s = &s
    job.temperatures, job.dtype = row_temperatures(temperature, dtype, rows, &p), dtype
    job.loop.run, job.loop.align = selected_run, ROW_TILE
    job.k, job.p, job.backward, job.op, job.n = fs_kernels_for(dtype), &p, backward, op, n
    job.x, job.out = <const char *> cnp.PyArray_DATA(x), <char *> cnp.PyArray_DATA(out)
    job.out_step = job.size if (not backward and op == FS_LOGSUMEXP) else n * job.size
    job.stream = not backward and op != FS_LOGSUMEXP and rows * n * job.size >= STREAM_BYTES
    job.run_length = rows
    if job.s != NULL and not s.per_row and s.view.ndim > 0:
        job.run_length = max(1, s.view.shape[s.view.ndim - 1])
    try:
        run_or_raise(&job.loop, rows, call_threads(num_threads, rows * n), "could not allocate the rows' selections")
    finally:
        free(s.none)
    return 0


def compute_where(int op, cnp.ndarray x, cnp.ndarray mask, tuple outer_shape, cnp.ndarray out,
                  temperature, int num_threads):
    """``op`` over the rows of C-contiguous (rows, n) ``x`` into ``out``
    ((rows, n), or (rows,) for logsumexp), entries taking part where ``mask``
    is True (see fill_selection; ``outer_shape`` is the row index's shape).
    ``temperature``: a float, or a C-contiguous float64 array of one per row."""
    run_selected(False, op, x, None, mask, outer_shape, out, temperature, num_threads)


def compute_backward(int op, cnp.ndarray grad, cnp.ndarray y, mask, tuple outer_shape, cnp.ndarray out,
                     temperature, int num_threads):
    """softmax_backward (op SOFTMAX) or log_softmax_backward over the rows of
    C-contiguous (rows, n) arrays; ``out`` may be ``grad``; ``mask`` None or
    as for compute_where; ``temperature`` as for compute_where."""
    run_selected(True, op, grad, y, mask, outer_shape, out, temperature, num_threads)
