# 16-bit rows (bfloat16, float16) staged through a per-thread buffer in
# cache: kernels.staged_rows widens a block of rows, runs the kernels of the
# wide dtype and narrows the results.

HALF_BF16 = FS_BF16
HALF_F16 = FS_F16

# Elements of 16-bit input widened at once where rows are short: the block,
# widened, and its results stay in the L2 cache between the conversions and
# the kernels.  (Longer rows are widened one at a time; see half_impl.h.)
cdef Py_ssize_t STAGE_ELEMENTS = 16384


ctypedef struct staged_job:
    loop_job loop
    const fs_kernels *k
    const fs_params *p
    int op, in_format, out_format
    const char *x
    char *out
    Py_ssize_t rows, n, per_block, out_step


cdef void staged_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop, char *buffer) noexcept nogil:
    """Blocks [start, stop) of per_block rows, through this thread's buffer."""
    cdef const staged_job *job = <const staged_job *> loop
    cdef Py_ssize_t blk
    for blk in range(start, stop):
        job.k.staged_rows(job.op, job.in_format, job.out_format, job.x + blk * job.per_block * job.n * 2,
                          job.out + blk * job.out_step, min(job.per_block, job.rows - blk * job.per_block),
                          job.n, job.p, buffer)


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
    if split_long_rows(rows, n, threads):
        return False
    cdef fs_params p
    cdef staged_job job
    cdef Py_ssize_t buffer_elements
    fs_params_init(dtype, temperature, &p)
    memset(&job, 0, sizeof(job))
    # Blocks of short rows are whole multiples of ROW_TILE rows, as the rows
    # of the wide dtype are split, so the results are that path's, rounded.
    if n <= FS_STAGE_BY_ROW:
        job.per_block = max(ROW_TILE, STAGE_ELEMENTS // max(n, 1) // ROW_TILE * ROW_TILE)
        buffer_elements = job.per_block * (n + 1)
    else:
        job.per_block = max(1, rows if threads <= 1 else rows // (UNITS_PER_THREAD * threads))
        buffer_elements = n + 1
    job.loop.run, job.loop.align = staged_run, 1
    job.loop.scratch_bytes = (buffer_elements * dtype_size(dtype) + 63) // 64 * 64
    job.k, job.p, job.op, job.in_format, job.out_format = fs_kernels_for(dtype), &p, op, in_format, out_format
    job.x, job.out = <const char *> cnp.PyArray_DATA(x), <char *> cnp.PyArray_DATA(out)
    job.rows, job.n = rows, n
    job.out_step = job.per_block * (1 if op == FS_LOGSUMEXP else n) * cnp.PyArray_ITEMSIZE(out)
    run_or_raise(&job.loop, (rows + job.per_block - 1) // job.per_block, threads,
                 "fastsoftmax: could not allocate the staging buffers")
    return True
