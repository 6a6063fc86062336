# Rows in pieces: the one chunk-and-merge of the compiled layer.
#
# A row too long for the cache (n > FS_LONG_ROW) is cut into FS_CHUNK pieces,
# as the kernels cut it themselves: the statistics of each piece
# (kernels.chunk_stats, or kernels.weighted_stats for a weighted
# log-sum-exp), folded in piece order with fs_stats_merge, finished with
# fs_row_finish, and each piece written by kernels.chunk_write.  The pieces
# of few long rows run on several threads (split_long_rows); Dask blocks
# are pieces of rows too (fastsoftmax.dask).  Folding in order makes the
# result the same for any split.

ctypedef struct pieces_job:
    loop_job loop
    const fs_kernels *k
    const fs_params *p
    int op
    const char *x                 # rows x n, C-contiguous
    const row_view *sel           # where=: rows of n contiguous bytes, or NULL for every entry
    const char *b                 # weighted statistics: the weights (b_rows, b_step), or NULL
    const Py_ssize_t *b_rows      # element offset of row r's weights, or NULL: r * b_len
    Py_ssize_t b_step, b_len      # weights advance by b_step (0 or 1); b_len per row
    Py_ssize_t n, size, piece, pieces
    fs_stats *part                # the statistics of each piece (row-major)
    char *out                     # the write pass: rows x n
    const fs_row_result *result   # the write pass: each row's finished statistics
    int stream


cdef void pieces_init(pieces_job *job, const fs_kernels *k, const fs_params *p, int op, const char *x,
                      const row_view *sel, Py_ssize_t n, Py_ssize_t size) noexcept nogil:
    """A job over rows of n, in pieces of FS_CHUNK for long rows (0 pieces
    for n == 0), without weights."""
    memset(job, 0, sizeof(pieces_job))
    job.loop.align = 1
    job.k, job.p, job.op, job.x, job.sel, job.n, job.size = k, p, op, x, sel, n, size
    job.piece = FS_CHUNK if n > FS_LONG_ROW else max(n, 1)
    job.pieces = (n + job.piece - 1) // job.piece


cdef inline const unsigned char *piece_selection(const pieces_job *job, Py_ssize_t r,
                                                 Py_ssize_t start) noexcept nogil:
    if job.sel == NULL:
        return NULL
    return <const unsigned char *> view_row(job.sel, r) + start


cdef inline void piece_stats(const pieces_job *job, Py_ssize_t r, Py_ssize_t c, fs_stats *s) noexcept nogil:
    """Statistics of piece c of row r (the whole row when it has one piece)."""
    cdef Py_ssize_t start = c * job.piece
    cdef Py_ssize_t length = job.n if job.pieces <= 1 else min(job.piece, job.n - start)
    cdef Py_ssize_t at = r * job.n + start
    if job.b != NULL:
        job.k.weighted_stats(job.x + at * job.size,
                             job.b + ((job.b_rows[r] if job.b_rows != NULL else r * job.b_len)
                                      + start * job.b_step) * job.size,
                             job.b_step, length, job.p, s)
    else:
        job.k.chunk_stats(job.op, job.x + at * job.size, piece_selection(job, r, start), length, job.p, s)


cdef inline void fold_row(const pieces_job *job, Py_ssize_t r, fs_stats *row) noexcept nogil:
    """Row r's statistics on this thread: its one piece, or its pieces
    folded in order."""
    cdef fs_stats chunk
    cdef Py_ssize_t c
    if job.pieces <= 1:
        piece_stats(job, r, 0, row)
        return
    fs_stats_init(row)
    for c in range(job.pieces):
        piece_stats(job, r, c, &chunk)
        fs_stats_merge(&chunk, job.p, row)


cdef void pieces_stats_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop,
                           char *scratch) noexcept nogil:
    cdef const pieces_job *job = <const pieces_job *> loop
    cdef Py_ssize_t it
    for it in range(start, stop):
        piece_stats(job, it // job.pieces, it % job.pieces, &job.part[it])


cdef void pieces_write_run(const loop_job *loop, Py_ssize_t start, Py_ssize_t stop,
                           char *scratch) noexcept nogil:
    cdef const pieces_job *job = <const pieces_job *> loop
    cdef Py_ssize_t it, r, begin, first
    for it in range(start, stop):
        r = it // job.pieces
        begin = (it % job.pieces) * job.piece
        first = r * job.n + begin
        job.k.chunk_write(job.op, job.x + first * job.size, piece_selection(job, r, begin),
                          job.out + first * job.size, min(job.piece, job.n - begin), job.p,
                          &job.result[r], job.stream)


cdef void merge_in_order(const fs_stats *part, Py_ssize_t rows, Py_ssize_t pieces, const fs_params *p,
                         fs_stats *whole) noexcept nogil:
    """Fold each row's ``pieces`` consecutive statistics, in order, into whole[row]."""
    cdef Py_ssize_t r, c
    for r in range(rows):
        fs_stats_init(&whole[r])
        for c in range(pieces):
            fs_stats_merge(&part[r * pieces + c], p, &whole[r])


cdef int stats_by_pieces(pieces_job *job, Py_ssize_t rows, int threads, fs_stats *whole) noexcept nogil:
    """The statistics of each of ``rows`` rows into whole[]: the pieces on
    ``threads`` threads, merged in piece order.  -1 when out of memory."""
    cdef int status
    if job.pieces == 0:
        merge_in_order(NULL, rows, 0, job.p, whole)
        return 0
    job.part = whole
    if job.pieces > 1:
        job.part = <fs_stats *> malloc(rows * job.pieces * sizeof(fs_stats))
        if job.part == NULL:
            return -1
    job.loop.run = pieces_stats_run
    status = run_items(&job.loop, rows * job.pieces, threads)
    if job.pieces > 1:
        merge_in_order(job.part, rows, job.pieces, job.p, whole)
        free(job.part)
    return status


cdef int write_by_pieces(pieces_job *job, Py_ssize_t rows, Py_ssize_t row_length, const fs_stats *whole,
                         int threads) noexcept nogil:
    """Finish each row's statistics whole[] (of a row ``row_length`` long in
    all) and write job.op: logsumexp into out[row], or softmax / log_softmax
    of the rows' job.n entries into out, on ``threads`` threads.  -1 when out
    of memory."""
    cdef Py_ssize_t r
    cdef fs_row_result *result = <fs_row_result *> malloc(max(rows, 1) * sizeof(fs_row_result))
    cdef int status = 0
    if result == NULL:
        return -1
    for r in range(rows):
        fs_row_finish(job.op, &whole[r], row_length, job.p, &result[r])
    if job.op == FS_LOGSUMEXP:
        for r in range(rows):
            store_value(job.out, r, job.size, result[r].logsumexp)
    else:
        job.result = result
        job.loop.run = pieces_write_run
        status = run_items(&job.loop, rows * job.pieces, threads)
    free(result)
    return status
