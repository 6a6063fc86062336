# Losses over C-contiguous (rows, n) logits: one row per item, the per-row
# maths in the kernels (kernels.cross_entropy_row, kl_div_row,
# contrastive_row).  Losses come back per row in float64; the API layer
# reduces them.

ctypedef struct loss_job:
    loop_job loop
    const fs_kernels *k
    const fs_params *p
    const double *temperatures    # one per row (cross_entropy, kl_div), or NULL: every row uses p
    int dtype
    Py_ssize_t n, size
    const char *x                 # logits, teacher logits' student, or the similarity matrix
    const char *teacher           # kl_div: teacher logits
    const long long *target       # cross_entropy: class indices, or NULL
    const char *soft              # cross_entropy: soft labels (rows, n), or NULL
    const char *weight            # cross_entropy: class weights (n,), or NULL
    long long ignore_index
    double smoothing
    char *grad                    # (rows, n), or NULL
    double scale                  # d(reduced loss) / d(row loss); contrastive: of the row losses
    double scale_columns          # contrastive: of the column losses (0: none)
    double *loss                  # per row


cdef void cross_entropy_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop,
                            char *scratch) noexcept nogil:
    cdef const loss_job *j = <const loss_job *> loop
    cdef Py_ssize_t r, at
    cdef params_cache own
    own.temperature = NAN
    for r in range(start, stop):
        at = r * j.n * j.size
        if j.target != NULL and j.target[r] == j.ignore_index:
            j.loss[r] = 0.0
            if j.grad != NULL:
                memset(j.grad + at, 0, j.n * j.size)
            continue
        j.loss[r] = j.k.cross_entropy_row(j.x + at, j.n, params_of_row(j.p, j.temperatures, j.dtype, r, &own),
                                          j.target[r] if j.target != NULL else -1,
                                          j.soft + at if j.soft != NULL else NULL, j.weight, j.smoothing,
                                          j.scale, j.grad + at if j.grad != NULL else NULL)


cdef void kl_div_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop, char *scratch) noexcept nogil:
    cdef const loss_job *j = <const loss_job *> loop
    cdef Py_ssize_t r, at
    cdef params_cache own
    own.temperature = NAN
    for r in range(start, stop):
        at = r * j.n * j.size
        j.loss[r] = j.k.kl_div_row(j.x + at, j.teacher + at, j.n,
                                   params_of_row(j.p, j.temperatures, j.dtype, r, &own), j.scale,
                                   j.grad + at if j.grad != NULL else NULL, scratch)


cdef void contrastive_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop,
                          char *scratch) noexcept nogil:
    cdef const loss_job *j = <const loss_job *> loop
    cdef Py_ssize_t r, at
    for r in range(start, stop):
        at = r * j.n * j.size
        j.loss[r] = j.k.contrastive_row(j.x + at, r, j.n, j.p, j.scale, j.scale_columns,
                                        j.grad + at if j.grad != NULL else NULL, scratch)


cdef cnp.ndarray loss_rows(loss_job *j, cnp.ndarray x, temperature, grad, fs_params *p):
    """Fill the parts of a loss job common to every loss for (rows, n) ``x``
    (``temperature``: a float, or a float64 array of one per row, see
    row_temperatures); returns the (rows,) float64 array of row losses it
    writes."""
    cdef int dtype = dtype_of(x)
    cdef cnp.ndarray loss = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(x), cnp.NPY_FLOAT64, 0)
    memset(j, 0, sizeof(loss_job))
    j.temperatures, j.dtype = row_temperatures(temperature, dtype, cnp.PyArray_DIM(x, 0), p), dtype
    j.k, j.p = fs_kernels_for(dtype), p
    j.n, j.size = cnp.PyArray_DIM(x, 1), dtype_size(dtype)
    j.x = <const char *> cnp.PyArray_DATA(x)
    j.loss = <double *> cnp.PyArray_DATA(loss)
    j.loop.align = 1
    if grad is not None:
        check_rows(grad, cnp.PyArray_TYPE(x), cnp.PyArray_DIM(x, 0), j.n, "grad")
        j.grad = <char *> cnp.PyArray_DATA(grad)
    return loss


def cross_entropy_rows(cnp.ndarray x, target, soft, weight, long long ignore_index, double smoothing,
                       temperature, grad, double grad_scale, int num_threads):
    """Per-row cross-entropy losses (float64) of C-contiguous (rows, n)
    logits against int64 class indices ``target`` (rows,) or soft labels
    ``soft`` (rows, n); ``weight`` (n,) or None; the gradient of the reduced
    loss into ``grad`` when it is not None.  Class indices must be valid
    (checked by the caller).  ``temperature``: a float, or a C-contiguous
    float64 array of one per row."""
    cdef int typenum = cnp.PyArray_TYPE(x)
    dtype_of(x)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(x, 0), n = cnp.PyArray_DIM(x, 1)
    if target is not None:
        if cnp.PyArray_TYPE(target) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(target) or cnp.PyArray_SIZE(target) != rows:
            raise ValueError("target: a C-contiguous int64 array of one class per row is needed")
    else:
        check_rows(soft, typenum, rows, n, "soft")
    if weight is not None:
        check_rows(weight, typenum, 1, n, "weight")
    cdef fs_params p
    cdef loss_job j
    loss = loss_rows(&j, x, temperature, grad, &p)
    j.loop.run = cross_entropy_run
    if target is not None:
        j.target = <const long long *> cnp.PyArray_DATA(target)
    else:
        j.soft = <const char *> cnp.PyArray_DATA(soft)
    if weight is not None:
        j.weight = <const char *> cnp.PyArray_DATA(weight)
    j.ignore_index, j.smoothing, j.scale = ignore_index, smoothing, grad_scale
    run_or_raise(&j.loop, rows, call_threads(num_threads, rows * n), "could not allocate the loss rows")
    return loss


def kl_div_rows(cnp.ndarray student, cnp.ndarray teacher, temperature, grad, double grad_scale,
                int num_threads):
    """Per-row T**2 * KL(teacher || student) (float64) of C-contiguous
    (rows, n) logits; the gradient with respect to the student, times
    grad_scale, into ``grad`` when it is not None.  ``temperature``: a
    float, or a C-contiguous float64 array of one per row."""
    dtype_of(student)
    cdef Py_ssize_t rows = cnp.PyArray_DIM(student, 0), n = cnp.PyArray_DIM(student, 1)
    check_rows(teacher, cnp.PyArray_TYPE(student), rows, n, "teacher")
    cdef fs_params p
    cdef loss_job j
    loss = loss_rows(&j, student, temperature, grad, &p)
    j.loop.run = kl_div_run
    j.loop.scratch_bytes = max(n, 1) * j.size
    j.teacher, j.scale = <const char *> cnp.PyArray_DATA(teacher), grad_scale
    run_or_raise(&j.loop, rows, call_threads(num_threads, rows * n), "could not allocate a row of scratch per thread")
    return loss


def contrastive_rows(cnp.ndarray similarity, double temperature, bint symmetric, grad, double scale_rows,
                     double scale_columns, int num_threads):
    """Row and column cross-entropies (float64, against the diagonal) of a
    C-contiguous (N, N) similarity matrix at temperature T: (row_losses,
    column_losses or None).  The columns go through the strided-axis
    kernels, without a transposed copy.  With ``grad``, the gradient
    scale_rows * d(row losses) + scale_columns * d(column losses)."""
    cdef int dtype = dtype_of(similarity)
    cdef Py_ssize_t n = cnp.PyArray_DIM(similarity, 0)
    if cnp.PyArray_DIM(similarity, 1) != n:
        raise ValueError("contrastive_rows: a square matrix is needed")
    cdef fs_params p
    cdef loss_job j
    row_loss = loss_rows(&j, similarity, temperature, grad, &p)
    cdef int threads = call_threads(num_threads, n * n)
    cdef cnp.ndarray column_loss = None, column_lse
    if not symmetric:
        scale_columns = 0.0
    else:
        column_lse = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(similarity), cnp.PyArray_TYPE(similarity), 0)
        with nogil:
            run(FS_LOGSUMEXP, dtype, j.x, <char *> cnp.PyArray_DATA(column_lse), 1, n, n, temperature, threads)
            if j.grad != NULL:
                run(FS_SOFTMAX, dtype, j.x, j.grad, 1, n, n, temperature, threads)
        diagonal = similarity.diagonal().astype(np.float64)
        column_lse = column_lse.astype(np.float64)
        # a column holding +inf has no softmax (nor has one of only -inf): NaN
        column_lse[column_lse == np.inf] = np.nan
        with np.errstate(invalid="ignore"):
            column_loss = (column_lse - diagonal) / temperature
    j.loop.run = contrastive_run
    j.loop.scratch_bytes = max(n, 1) * j.size
    j.scale, j.scale_columns = scale_rows, scale_columns
    run_or_raise(&j.loop, n, threads, "could not allocate a row of scratch per thread")
    return row_loss, column_loss
