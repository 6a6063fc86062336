/* Sampling one index per row from logits (fastsoftmax.sample): the row
 * edits, the filters, the inverse-CDF draw, log-probabilities, and
 * verify_draft's rejection sampling.
 *
 * Per row, in this order (each step sees what the one before left):
 *   0. the edits, into a scratch row (the logits are never written): the
 *      penalties of the row's history (repetition, presence, frequency, on
 *      the raw logit; the work is the history's length), logit_bias, and
 *      where= (masked entries read -inf);
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
 * Every setting is per row (fs_sample_row).  Log-probabilities ("raw":
 * log_softmax of the row as given; "processed": of the distribution drawn
 * from) and the most likely entries come from the same passes plus a top-k
 * selection of the candidates.
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
    FS_SAMPLE_NO_MEMORY = -4,  /* the thread's scratch could not be allocated */
    FS_SAMPLE_BAD_TOKEN = -5,  /* a history id outside [-1, n) (or a draft id outside [0, n)) */
    FS_SAMPLE_BAD_PROBS = -6   /* draft probabilities: one negative or NaN, or a sum off 1 by more than 1e-3 */
};

/* What the scratch of a sampler must hold: the union of the settings of
 * every row of a call. */
typedef struct {
    ptrdiff_t top_k;   /* the largest top_k of a row (0: no row filters by top-k) */
    int top_p;         /* some row has top_p < 1 */
    int edited;        /* some row is edited before the filters: where=, penalties or logit_bias */
    int penalties;     /* some row has a history and a penalty */
    ptrdiff_t top_n;   /* top log-probabilities per row (0: none) */
    int verify;        /* the rows are verify_draft's: dense residual rows */
} fs_sample_needs;

/* One row's settings.  Off: top_k 0, top_p >= 1, min_p 0, repetition 1,
 * presence and frequency 0, NULL pointers. */
typedef struct {
    double temperature;
    ptrdiff_t top_k;
    double top_p, min_p;
    double repetition, presence, frequency;
    const int64_t *history;        /* history_len ids, -1 ignored */
    ptrdiff_t history_len;
    const void *bias;              /* logit_bias in the row dtype, entry i at bias[i * bias_stride] */
    ptrdiff_t bias_stride;         /* elements; 0: one value for the whole row */
    const unsigned char *mask;     /* where=: entry i takes part where mask[i * mask_stride] != 0 */
    ptrdiff_t mask_stride;
} fs_sample_row;

/* Log-probabilities of a drawn row (fastsoftmax.sample(logprobs=...)). */
enum fs_logprobs { FS_LOGPROBS_NONE = 0, FS_LOGPROBS_RAW = 1, FS_LOGPROBS_PROCESSED = 2 };

typedef struct {
    int kind;                  /* enum fs_logprobs */
    double *logprob;           /* the drawn index's */
    int64_t *top_tokens;       /* top_n, most likely first (ties: lower index), -1 past the last */
    double *top_logprobs;      /* top_n, -inf past the last */
} fs_sample_logprobs;

/* One thread's state: the needs of a call, the temperature constants of the
 * last row, and scratch rows. */
typedef struct fs_sampler fs_sampler;

/* A sampler for rows of n entries of `dtype` (FS_F32 / FS_F64).  NULL when
 * out of memory. */
fs_sampler *fs_sampler_new(int dtype, ptrdiff_t n, const fs_sample_needs *needs);
void fs_sampler_free(fs_sampler *s);

/* The index drawn from one contiguous row x of n entries, or a negative
 * fs_sample_status.  u: a uniform number in [0, 1), unused at temperature 0.
 * lp (or NULL): log-probabilities to fill in. */
int64_t fs_sampler_row(fs_sampler *s, const void *x, const fs_sample_row *row, double u,
                       const fs_sample_logprobs *lp);

/* verify_draft for one request: rows x (k + 1 contiguous rows of n entries,
 * the target logits), the k draft ids, the draft probabilities q (k rows of
 * n in the row dtype, or NULL: one-hot drafts), settings of every position,
 * k + 1 uniform numbers.  Writes k + 1 tokens (-1 after the last emitted)
 * and returns the number of drafts accepted, or a negative fs_sample_status
 * (FS_SAMPLE_BAD_TOKEN: a draft id outside [0, n); FS_SAMPLE_BAD_PROBS: a
 * row of q with a negative or NaN entry or a sum off 1 by more than 1e-3),
 * every draft checked first.  At T = 0 drafts are accepted while they equal
 * the target's first maximum, which is then emitted. */
ptrdiff_t fs_sampler_verify(fs_sampler *s, const void *x, ptrdiff_t k, const int64_t *draft, const void *q,
                            const fs_sample_row *row, const double *u, int64_t *tokens);

#ifdef __cplusplus
}
#endif
#endif
