# Sampling (fastsoftmax.sample): one index per row, drawn after the filters
# of csrc/sample_kernels.h, whose probabilities come from the kernel table.
# Each thread keeps its own sampler (the call's settings, the temperature
# constants of its last row, scratch rows) in its scratch.  The uniform
# numbers come from Python, one per row, so the result is the same for any
# number of threads.

SAMPLE_NAN = FS_SAMPLE_NAN
SAMPLE_POS_INF = FS_SAMPLE_POS_INF
SAMPLE_NOTHING = FS_SAMPLE_NOTHING
SAMPLE_NO_MEMORY = FS_SAMPLE_NO_MEMORY


ctypedef struct sample_job:
    loop_job loop
    int dtype, masked
    fs_sample_filters filters
    const char *x
    Py_ssize_t n, row_bytes
    const double *temperatures
    Py_ssize_t t_step             # 0: one temperature for every row
    const double *uniforms
    const row_view *mask          # or NULL: every entry
    int64_t *out


cdef void sample_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop, char *scratch) noexcept nogil:
    """Rows [start, stop) with this thread's sampler, made on its first row."""
    cdef const sample_job *job = <const sample_job *> loop
    cdef fs_sampler **sampler = <fs_sampler **> scratch
    cdef Py_ssize_t r
    if sampler[0] == NULL:
        sampler[0] = fs_sampler_new(job.dtype, job.n, &job.filters, job.masked)
    for r in range(start, stop):
        if sampler[0] == NULL:
            job.out[r] = FS_SAMPLE_NO_MEMORY
        else:
            job.out[r] = fs_sampler_row(sampler[0], job.x + r * job.row_bytes,
                                        <const unsigned char *> view_row(job.mask, r) if job.masked else NULL,
                                        job.mask.step if job.masked else 0, job.temperatures[r * job.t_step],
                                        job.uniforms[r])


cdef void sample_release(const loop_job *loop, char *scratch) noexcept nogil:
    fs_sampler_free((<fs_sampler **> scratch)[0])


def sample(cnp.ndarray x, cnp.ndarray temperatures, cnp.ndarray uniforms, Py_ssize_t top_k, double top_p,
           double min_p, cnp.ndarray mask, tuple batch_shape, int num_threads):
    """One index per row of ``x``, a C-contiguous float32/float64 (rows, n)
    array, as an int64 array of ``rows`` entries; a row without one gets a
    negative SAMPLE_* code instead.

    ``temperatures`` and ``uniforms``: float64, one per row, or one for all
    rows (temperatures only).  ``top_k`` 0, ``top_p`` >= 1 and ``min_p`` 0 turn
    those filters off.  ``mask`` (or None): a bool view (views.pxi) over the
    rows, whose row index has ``batch_shape``, entries of a row at any
    stride; row r's entry i takes part where it is True.  The mask is read in
    place, never expanded.  ``num_threads`` <= 0 means the OpenMP default.
    Arguments are validated by fastsoftmax._sample."""
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
    cdef bint masked = mask is not None and rows > 0
    cdef row_view view
    if masked:
        fill_view(&view, mask, batch_shape, n, False)
    cdef cnp.npy_intp count = rows
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, &count, cnp.NPY_INT64, 0)
    cdef sample_job job
    memset(&job, 0, sizeof(job))
    job.loop.run, job.loop.release, job.loop.align = sample_run, sample_release, 1
    job.loop.scratch_bytes, job.loop.zero_scratch = sizeof(fs_sampler *), True
    job.dtype, job.masked = dtype_code(typenum), masked
    job.filters.top_k, job.filters.top_p, job.filters.min_p = top_k, top_p, min_p
    job.x, job.n, job.row_bytes = <const char *> cnp.PyArray_DATA(x), n, n * dtype_size(job.dtype)
    job.temperatures, job.t_step = <const double *> cnp.PyArray_DATA(temperatures), t_step
    job.uniforms = <const double *> cnp.PyArray_DATA(uniforms)
    job.mask = &view if masked else NULL
    job.out = <int64_t *> cnp.PyArray_DATA(out)
    cdef int threads = call_threads(num_threads, rows * n)
    run_or_raise(&job.loop, rows, threads, f"sample(): no memory for the sampler of each thread")
    if threads <= 1 and rows > 0 and job.out[0] == FS_SAMPLE_NO_MEMORY:
        raise MemoryError(f"sample(): no memory for the scratch rows of {n} entries")
    return out
