/* Rows longer than FS_LONG_ROW, in chunks of FS_CHUNK: each chunk's
 * statistics, merged in chunk order, then the write pass chunk by chunk (see
 * row_kernels.h).  The chunk_stats / chunk_write entries let the Cython layer
 * run the chunks of one row on several threads.
 * Part of the kernel template (dtype_kernels.h), with its parameters
 * defined.  No include guard on purpose. */

/* A long row's statistics: each chunk's, relative to its own maximum, merged
 * in chunk order.  prefetch (a compile-time constant): each chunk's exp pass
 * fetches the next chunk into the caches meanwhile. */
FS_INLINE void FS_NAME(long_row_stats)(int op, const FS_R *x, const uint8_t *sel, ptrdiff_t n,
                                       const fs_params *p, const int prefetch, fs_stats *row)
{
    fs_stats_init(row);
    for (ptrdiff_t start = 0; start < n; start += FS_CHUNK) {
        fs_stats chunk;
        const ptrdiff_t len = n - start < FS_CHUNK ? n - start : FS_CHUNK;
        const ptrdiff_t next = !prefetch ? 0 : n - start - len < FS_CHUNK ? n - start - len : FS_CHUNK;
        FS_NAME(stats_pass)(op, x + start, sel ? sel + start : NULL, NULL, len, p, &chunk,
                            prefetch ? x + start + len : NULL, next);
        fs_stats_merge(&chunk, p, row);
    }
}

FS_INLINE void FS_NAME(row_long)(int op, const FS_R *x, const uint8_t *sel, FS_R *out, ptrdiff_t n,
                                 const fs_params *p, int stream)
{
    fs_stats row;
    fs_row_result r;
    FS_NAME(long_row_stats)(op, x, sel, n, p, 1, &row);
    fs_row_finish(op, &row, n, p, &r);
    if (op == FS_LOGSUMEXP) { *out = (FS_R)r.logsumexp; return; }
    for (ptrdiff_t start = 0; start < n; start += FS_CHUNK)
        FS_NAME(write_row)(op, x + start, sel ? sel + start : NULL, NULL, out + start,
                           n - start < FS_CHUNK ? n - start : FS_CHUNK, p, &r, stream);
}

static void FS_NAME(chunk_stats)(int op, const void *x, const uint8_t *sel, ptrdiff_t n, const fs_params *p,
                                 fs_stats *s)
{
    FS_NAME(stats_pass)(op, (const FS_R *)x, sel, NULL, n, p, s, NULL, 0);
}

static void FS_NAME(chunk_write)(int op, const void *x, const uint8_t *sel, void *out, ptrdiff_t n,
                                 const fs_params *p, const fs_row_result *r, int stream)
{
    FS_NAME(write_row)(op, (const FS_R *)x, sel, NULL, (FS_R *)out, n, p, r, stream);
    FS_NAME(stream_fence)(stream);
}
