/* Sampling one index per row from logits (fastsoftmax.sample): the filters
 * and the inverse-CDF draw.
 *
 * Per row, in this order (each filter sees what the one before left):
 *   1. temperature: applied by the softmax kernels through fs_params;
 *   2. top-k on the logits: keep x >= the k-th largest value (ties kept), found
 *      in one scan with partial selections, never a sort; the kept entries
 *      are gathered in index order and only they go through the softmax;
 *   3. top-p: keep the smallest set of most likely entries whose probability
 *      reaches top_p; the boundary is found by a weighted selection (a
 *      quickselect that sums probabilities instead of counting; on long rows
 *      after a histogram of the mass by exponent), which gives the set a
 *      full sort would give.  Every entry equal to the last one
 *      admitted is kept too;
 *   4. min-p: keep p >= min_p * p_max;
 *   5. draw: inverse CDF over the kept entries in index order.
 * The probabilities come from the kernel table's softmax (row_kernels.h):
 * nothing here computes an exp.  At T = 0 the row's first maximal entry is
 * returned and no filter applies (each keeps the maximum anyway).
 *
 * Sums are taken in double; a kept set can differ from the one of exact
 * arithmetic only where the probabilities sit within rounding of the
 * boundary.
 */
#ifndef FASTSOFTMAX_SAMPLE_KERNELS_H
#define FASTSOFTMAX_SAMPLE_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "row_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a row gives instead of an index when it has none (all negative). */
enum fs_sample_status {
    FS_SAMPLE_NAN = -1,        /* a NaN among the entries that take part */
    FS_SAMPLE_POS_INF = -2,    /* +inf at T > 0: the probabilities are undefined */
    FS_SAMPLE_NOTHING = -3,    /* nothing to draw: no entries, or all -inf or masked */
    FS_SAMPLE_NO_MEMORY = -4   /* the thread's scratch could not be allocated */
};

typedef struct {
    ptrdiff_t top_k;   /* 0: off */
    double top_p;      /* >= 1: off */
    double min_p;      /* 0: off */
} fs_sample_filters;

/* One thread's state: the settings of a call, the temperature constants of
 * the last row, and scratch rows. */
typedef struct fs_sampler fs_sampler;

/* A sampler for rows of n entries of `dtype` (FS_F32 / FS_F64); `masked`:
 * rows come with a mask.  NULL when out of memory. */
fs_sampler *fs_sampler_new(int dtype, ptrdiff_t n, const fs_sample_filters *filters, int masked);
void fs_sampler_free(fs_sampler *s);

/* The index drawn from one contiguous row x of n entries, or a negative
 * fs_sample_status.  mask (or NULL): entry i takes part where
 * mask[i * mask_stride] is nonzero.  u: a uniform number in [0, 1), unused at
 * temperature 0. */
int64_t fs_sampler_row(fs_sampler *s, const void *x, const unsigned char *mask, ptrdiff_t mask_stride,
                       double temperature, double u);

#ifdef __cplusplus
}
#endif
#endif
