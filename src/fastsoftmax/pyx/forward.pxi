# softmax, log_softmax and logsumexp of C-contiguous float32/float64 arrays
# viewed as (outer, n, inner), reduced over the middle axis of length n:
#   * inner == 1: contiguous rows (kernels.rows), in blocks of rows, or in
#     pieces when few rows are very long (pieces.pxi);
#   * inner > 1: a strided axis (kernels.columns): each kernel call reduces a
#     band of adjacent columns, whose entries lie ``inner`` elements apart.
# ``try_fast`` validates the common calls here, in compiled code; everything
# else goes to ``fastsoftmax._api``, the one path that raises errors.

# Bytes of adjacent columns per work item of a strided reduction.
cdef Py_ssize_t COLUMN_BAND_BYTES = 512
# The kernels group tiny rows in tiles of up to 16 rows counted from the
# first row of a call: blocks of rows are multiples of this, so every split
# sees the same tiles.
cdef Py_ssize_t ROW_TILE = 16


# ---- per-row temperatures --------------------------------------------------------
# softmax(x, temperature=array): each row has its own temperature.  A row's
# parameters come from the same fs_params_init as one temperature's, derived
# where the row is computed (the previous row's are reused when it shares the
# temperature), and such rows go to the kernels one at a time.  The strided-
# axis kernels, whose lanes are different rows, never see them: the API layer
# lays those rows out contiguously first.

ctypedef struct params_cache:       # one per loop over rows
    double temperature              # of `p`; NaN: none yet
    fs_params p


cdef inline const fs_params *params_of_row(const fs_params *shared, const double *temperatures, int dtype,
                                           Py_ssize_t r, params_cache *own) noexcept nogil:
    """Row r's parameters: ``shared`` when ``temperatures`` is NULL, else its own."""
    if temperatures == NULL:
        return shared
    if not own.temperature == temperatures[r]:
        own.temperature = temperatures[r]
        fs_params_init(dtype, own.temperature, &own.p)
    return &own.p


cdef const double *row_temperatures(temperature, int dtype, Py_ssize_t rows, fs_params *shared) except? NULL:
    """``temperature`` as the loops take it: a float sets ``shared`` (NULL is
    returned), a C-contiguous float64 array of ``rows`` temperatures (kept
    alive by the caller) is returned as a pointer (``shared`` is set for T = 1,
    unused)."""
    cdef cnp.ndarray t
    if not isinstance(temperature, cnp.ndarray):
        fs_params_init(dtype, <double> temperature, shared)
        return NULL
    t = <cnp.ndarray> temperature
    if (cnp.PyArray_TYPE(t) != cnp.NPY_FLOAT64 or not cnp.PyArray_IS_C_CONTIGUOUS(t)
            or cnp.PyArray_SIZE(t) != rows):
        raise ValueError(f"temperature: a float, or a C-contiguous float64 array of one per row ({rows}), "
                         "is needed")
    fs_params_init(dtype, 1.0, shared)
    return <const double *> cnp.PyArray_DATA(t)


ctypedef struct forward_job:
    loop_job loop
    const fs_kernels *k
    const fs_params *p
    const double *temperatures      # one per row (contiguous rows only), or NULL: every row uses p
    int dtype
    int op, stream
    const char *x
    char *out
    Py_ssize_t n, inner, size
    Py_ssize_t band, bands          # columns: adjacent columns per item, items per outer index


cdef void rows_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop, char *scratch) noexcept nogil:
    cdef const forward_job *job = <const forward_job *> loop
    cdef Py_ssize_t out_step = job.size if job.op == FS_LOGSUMEXP else job.n * job.size
    cdef params_cache own
    cdef Py_ssize_t r = start, end, stretch
    if job.temperatures == NULL:
        job.k.rows(job.op, job.x + start * job.n * job.size, job.out + start * out_step, stop - start, job.n,
                   job.p, job.stream)
        return
    # Rows of one temperature go to the kernels together, in stretches that
    # never cross a multiple of ROW_TILE (counted from row 0, as blocks are):
    # every stretch, hence every tile, is the same on any split.
    own.temperature = NAN
    while r < stop:
        end = min(stop, (r // ROW_TILE + 1) * ROW_TILE)
        stretch = r + 1
        while stretch < end and job.temperatures[stretch] == job.temperatures[r]:
            stretch += 1
        job.k.rows(job.op, job.x + r * job.n * job.size, job.out + r * out_step, stretch - r, job.n,
                   params_of_row(job.p, job.temperatures, job.dtype, r, &own), job.stream)
        r = stretch


cdef void columns_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop, char *scratch) noexcept nogil:
    """Bands of adjacent columns; each lane is computed on its own, so the
    split does not change any result."""
    cdef const forward_job *job = <const forward_job *> loop
    cdef Py_ssize_t n = job.n, inner = job.inner, size = job.size
    cdef Py_ssize_t out_outer = inner if job.op == FS_LOGSUMEXP else n * inner
    cdef Py_ssize_t out_stride = 0 if job.op == FS_LOGSUMEXP else inner
    cdef Py_ssize_t it, o, j
    for it in range(start, stop):
        o = it // job.bands
        j = (it % job.bands) * job.band
        job.k.columns(job.op, job.x + (o * n * inner + j) * size, job.out + (o * out_outer + j) * size, n,
                      inner, min(job.band, inner - j), out_stride, job.p)


cdef int run(int op, int dtype, const char *x, char *out, Py_ssize_t outer, Py_ssize_t n,
             Py_ssize_t inner, double temperature, int threads,
             const double *temperatures=NULL) noexcept nogil:
    """``op`` over the middle axis of (outer, n, inner) ``x`` into ``out``;
    ``threads`` from call_threads.  ``temperatures``: one per row instead of
    ``temperature``, for contiguous rows (inner == 1) only.  -1 when out of
    memory."""
    cdef fs_params p
    cdef forward_job job
    cdef pieces_job pieces
    cdef fs_stats *whole
    cdef int status
    if inner == 0 or outer == 0:
        return 0
    fs_params_init(dtype, temperature, &p)
    # every field set here (no memset: this is on the path of the smallest calls)
    job.loop.release, job.loop.scratch_bytes, job.loop.zero_scratch = NULL, 0, False
    job.k, job.p, job.op, job.x, job.out = fs_kernels_for(dtype), &p, op, x, out
    job.temperatures, job.dtype = temperatures, dtype
    job.n, job.inner, job.size = n, inner, dtype_size(dtype)
    job.stream, job.band, job.bands = 0, 0, 0
    if inner > 1:
        job.loop.run, job.loop.align = columns_run, 1
        job.band = max(1, COLUMN_BAND_BYTES // job.size)
        job.bands = (inner + job.band - 1) // job.band
        return run_items(&job.loop, outer * job.bands, threads)
    job.stream = op != FS_LOGSUMEXP and outer * n * job.size >= STREAM_BYTES
    if temperatures == NULL and split_long_rows(outer, n, threads):
        # (rows of their own temperatures stay whole: the same results, fewer threads)
        whole = <fs_stats *> malloc(outer * sizeof(fs_stats))
        if whole == NULL:
            return -1
        pieces_init(&pieces, job.k, &p, op, x, NULL, n, job.size)
        pieces.out, pieces.stream = out, job.stream
        status = stats_by_pieces(&pieces, outer, threads, whole)
        if status == 0:
            status = write_by_pieces(&pieces, outer, n, whole, threads)
        free(whole)
        return status
    job.loop.run, job.loop.align = rows_run, ROW_TILE
    return run_items(&job.loop, outer, threads)


cdef int launch(int op, cnp.ndarray x, cnp.ndarray out, int axis, double temperature,
                int num_threads, const double *temperatures=NULL) except -1:
    """Reduce C-contiguous ``x`` over ``axis`` into C-contiguous ``out``
    (``temperatures``: see run)."""
    cdef int status
    cdef int dtype = dtype_code(cnp.PyArray_TYPE(x))
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
    cdef int threads = call_threads(num_threads, outer * n * inner)
    with nogil:
        status = run(op, dtype, xp, op_, outer, n, inner, temperature, threads, temperatures)
    if status != 0:
        raise MemoryError("fastsoftmax: could not allocate per-chunk statistics")
    return 0


def compute(int op, cnp.ndarray x, cnp.ndarray out, int axis, temperature, int num_threads):
    """Apply ``op`` over ``axis`` of ``x`` into ``out``.

    Both arrays must be C-contiguous with the same dtype, float32 or float64;
    ``out`` has ``x``'s size (``x``'s size without ``axis`` for logsumexp).
    ``temperature``: a float, or (``axis`` the last) a C-contiguous float64
    array of one temperature per row.  ``num_threads`` <= 0 means the OpenMP
    default.  ``out`` may be ``x``.
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
    cdef fs_params unused
    cdef const double *temperatures = NULL
    cdef Py_ssize_t rows = 1
    cdef int d
    if isinstance(temperature, cnp.ndarray):
        if axis != ndim - 1:
            raise ValueError("compute(): one temperature per row needs the rows along the last axis")
        for d in range(ndim - 1):
            rows *= cnp.PyArray_DIM(x, d)
        temperatures = row_temperatures(temperature, dtype_code(typenum), rows, &unused)
        temperature = 1.0
    launch(op, x, out, axis, temperature, num_threads, temperatures)


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


def overlap(cnp.ndarray a, cnp.ndarray b):
    """How the memory of two C-contiguous arrays relates: 0 disjoint,
    1 the same buffer from the same start (in-place), 2 partial overlap."""
    return memory_relation(a, b)


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
