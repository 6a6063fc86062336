/* A small cache of large result buffers, as a NumPy memory handler.
 *
 * A fresh multi-megabyte result is a fresh mmap: the kernel zeroes and faults
 * in every page on first touch, which costs as much as the softmax itself
 * (np.exp into a fresh 64 MB array takes twice as long as into a reused one).
 * Results of at least FS_CACHE_MIN_BYTES are allocated through this handler;
 * when such an array dies, its buffer is kept (at most FS_CACHE_SLOTS
 * buffers, FS_CACHE_MAX_BYTES in all) and handed to the next result that
 * fits, already faulted in.  Every other allocation is NumPy's own.
 *
 * Buffers start on a page and carry their capacity in a header of half a
 * page, so data is 64-byte aligned (what non-temporal stores want) and lies
 * half a page from the page offset of NumPy's large arrays (16, after
 * malloc's chunk header) and of page-aligned ones.  An output whose address
 * is a few dozen bytes past its input's modulo 4096 makes every load of the
 * input wait on the previous stores to the output (4K aliasing): measured on
 * Zen 4, softmax of (8, 1e6) float32 took 5.7 ms into a buffer at page
 * offset 64 against 3.2 ms at 2048, and log_softmax of (4096, 4096) 11.6 ms
 * against 5.6 ms.  The functions may run on any
 * thread, with or without the GIL: a spin lock guards the slots.
 *
 * Included by _rows.pyx (after NumPy's headers); no other user.
 */
#ifndef FASTSOFTMAX_RESULT_CACHE_H
#define FASTSOFTMAX_RESULT_CACHE_H

#include <stdlib.h>
#include <string.h>

#define FS_CACHE_MIN_BYTES ((size_t)1 << 20)
#define FS_CACHE_MAX_BYTES ((size_t)1 << 30)
#define FS_CACHE_SLOTS 4
#define FS_CACHE_HEADER ((size_t)2048)
#define FS_CACHE_PAGE ((size_t)4096)

static struct {
    char lock;
    int enabled;
    size_t held_bytes;
    void *slot[FS_CACHE_SLOTS];   /* bases (header included), or NULL */
} fs_cache = {0, 1, 0, {NULL}};

static void fs_cache_lock(void)
{
    while (__atomic_test_and_set(&fs_cache.lock, __ATOMIC_ACQUIRE)) { }
}
static void fs_cache_unlock(void) { __atomic_clear(&fs_cache.lock, __ATOMIC_RELEASE); }

static size_t fs_cache_capacity(void *base) { return *(size_t *)base; }

static void *fs_cache_new(size_t size)
{
    void *base = NULL;
    if (posix_memalign(&base, FS_CACHE_PAGE, size + FS_CACHE_HEADER) != 0) return NULL;
    *(size_t *)base = size;
    return (char *)base + FS_CACHE_HEADER;
}

static void *fs_cache_malloc(void *ctx, size_t size)
{
    (void)ctx;
    void *found = NULL;
    fs_cache_lock();
    /* the smallest kept buffer that fits, if it wastes at most a quarter */
    int best = -1;
    for (int i = 0; i < FS_CACHE_SLOTS; i++) {
        void *b = fs_cache.slot[i];
        if (b && fs_cache_capacity(b) >= size && fs_cache_capacity(b) - size <= size / 4 &&
            (best < 0 || fs_cache_capacity(b) < fs_cache_capacity(fs_cache.slot[best])))
            best = i;
    }
    if (best >= 0) {
        found = fs_cache.slot[best];
        fs_cache.slot[best] = NULL;
        fs_cache.held_bytes -= fs_cache_capacity(found);
    }
    fs_cache_unlock();
    return found ? (char *)found + FS_CACHE_HEADER : fs_cache_new(size);
}

static void fs_cache_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx; (void)size;
    if (ptr == NULL) return;
    void *base = (char *)ptr - FS_CACHE_HEADER;
    size_t cap = fs_cache_capacity(base);
    fs_cache_lock();
    if (fs_cache.enabled && cap >= FS_CACHE_MIN_BYTES && fs_cache.held_bytes + cap <= FS_CACHE_MAX_BYTES) {
        for (int i = 0; i < FS_CACHE_SLOTS; i++) {
            if (fs_cache.slot[i] == NULL) {
                fs_cache.slot[i] = base;
                fs_cache.held_bytes += cap;
                base = NULL;
                break;
            }
        }
    }
    fs_cache_unlock();
    free(base);
}

static void *fs_cache_calloc(void *ctx, size_t nelem, size_t elsize)
{
    if (elsize && nelem > (size_t)-1 / elsize) return NULL;
    void *p = fs_cache_malloc(ctx, nelem * elsize);
    if (p) memset(p, 0, nelem * elsize);
    return p;
}

static void *fs_cache_realloc(void *ctx, void *ptr, size_t new_size)
{
    if (ptr == NULL) return fs_cache_malloc(ctx, new_size);
    size_t cap = fs_cache_capacity((char *)ptr - FS_CACHE_HEADER);
    if (new_size <= cap) return ptr;
    void *grown = fs_cache_new(new_size);
    if (grown == NULL) return NULL;
    memcpy(grown, ptr, cap);
    fs_cache_free(ctx, ptr, cap);
    return grown;
}

static PyDataMem_Handler fs_cache_handler = {
    "fastsoftmax_result_cache", 1,
    {NULL, fs_cache_malloc, fs_cache_calloc, fs_cache_realloc, fs_cache_free}
};

/* Drop every kept buffer; with enable = 0 also stop keeping them. */
static void fs_cache_release(int enable)
{
    void *drop[FS_CACHE_SLOTS];
    fs_cache_lock();
    for (int i = 0; i < FS_CACHE_SLOTS; i++) {
        drop[i] = fs_cache.slot[i];
        fs_cache.slot[i] = NULL;
    }
    fs_cache.held_bytes = 0;
    fs_cache.enabled = enable;
    fs_cache_unlock();
    for (int i = 0; i < FS_CACHE_SLOTS; i++) free(drop[i]);
}

static size_t fs_cache_held_bytes(void) { return fs_cache.held_bytes; }

#endif
