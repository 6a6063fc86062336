/* Sampling kernels (see sample_kernels.h): the per-dtype code in
 * sample_kernels_impl.h, instantiated below for float and double; the
 * probabilities come from the kernel table of row_kernels.h.
 *
 * The maxima (greedy draws, top-k's groups, min-p) come from the kernel
 * table's max pass, in the instruction set in use.  The other scans look for
 * rare entries (those above a bar), or sum a few lanes of a block in the
 * row dtype, whose lane layout fixes the rounding of the block sums and so
 * the draw: they keep the 16-byte vectors of the portable baseline, the same
 * in every variant. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sample_kernels.h"
#include "simd.h"
#if defined(__SSE2__)
#include <emmintrin.h>   /* movemask: whether any lane of a comparison is set */
#endif

/* Entries per group of top-k's first pass: from this many down to
 * FS_TOPK_GROUP_MIN (powers of two, multiples of a scan step). */
#define FS_TOPK_GROUP 256
#define FS_TOPK_GROUP_MIN 16
/* Below this many candidates a selection sorts them (insertion sort). */
#define FS_SELECT_SMALL 8
/* Partition rounds before a selection gives up on its pivots and sorts. */
#define FS_SELECT_ROUNDS 64
/* Entries per block of the draw: it first picks a block, then an entry. */
#define FS_DRAW_BLOCK 64
/* Rows from this length find the top-p boundary's neighbourhood with a
 * histogram of the probability mass first. */
#define FS_HISTOGRAM_MIN 4096
#define FS_BUCKETS 1024
/* Softmax rows sum to 1 within 2e-6 (float32; far less for float64): 1 plus
 * this bounds the sum from above with a wide margin (see draw). */
#define FS_SUM_SLACK 0x1p-12
/* The largest double below 1. */
#define FS_BELOW_ONE 0x1.fffffffffffffp-1
/* How far from 1 a row of draft probabilities may sum. */
#define FS_PROBS_TOLERANCE 1e-3

struct fs_sampler {
    int dtype;
    ptrdiff_t n;
    fs_sample_needs needs;
    const fs_kernels *kernels;
    double temperature;      /* of `params`; NaN before the first row */
    fs_params params;
    fs_params unit_params;   /* T = 1: "raw" log-probabilities */
    /* scratch rows, NULL where the call does not need them */
    void *logits;            /* n: the edited row (penalties, bias, where=) */
    uint32_t *counts;        /* n, zero between rows: the history's counts */
    void *probs;             /* n */
    void *kept;              /* n: logits kept by top-k, in index order */
    int64_t *index;          /* n: their indices */
    void *maxima;            /* n / FS_TOPK_GROUP_MIN + 1: top-k's group maxima */
    void *select_a, *select_b;  /* n each: the selections' partitions */
    void *top_vals;          /* n: candidates of the most likely entries (top_logprobs) */
    int64_t *top_index;      /* n: their positions */
    void *residual;          /* n: verify_draft's max(0, p - q) */
    double *histogram;       /* 4 * FS_BUCKETS (top-p) */
    double *block_sums;      /* one per FS_DRAW_BLOCK entries */
};

FS_INLINE float fs_sample_next_up_f32(float v) { return nextafterf(v, INFINITY); }
FS_INLINE double fs_sample_next_up_f64(double v) { return nextafter(v, INFINITY); }

typedef float fs_sv_f32 __attribute__((vector_size(16)));
typedef int32_t fs_si_f32 __attribute__((vector_size(16)));
typedef double fs_sv_f64 __attribute__((vector_size(16)));
typedef int64_t fs_si_f64 __attribute__((vector_size(16)));

/* top-p buckets: float32 by exponent and 3 more bits, float64 by exponent */
#define FS_SR float
#define FS_SV fs_sv_f32
#define FS_SI fs_si_f32
#define FS_SU uint32_t
#define FS_BUCKET_SHIFT 20
#define FS_MOVEMASK(m) _mm_movemask_ps((__m128)(m))
#define FS_SK(name) fs_sample_##name##_f32
#include "sample_kernels_impl.h"   /* which undefines these parameters */

#define FS_SR double
#define FS_SV fs_sv_f64
#define FS_SI fs_si_f64
#define FS_SU uint64_t
#define FS_BUCKET_SHIFT 52
#define FS_MOVEMASK(m) _mm_movemask_pd((__m128d)(m))
#define FS_SK(name) fs_sample_##name##_f64
#include "sample_kernels_impl.h"

/* ---- the sampler ------------------------------------------------------------ */

/* offsets of the scratch rows: whole cache lines */
#define FS_SCRATCH_ALIGN 64

/* Lays the scratch out after the struct at `base` (NULL: only measures);
 * returns the bytes needed, 0 on overflow. */
static size_t fs_sampler_layout(fs_sampler *s, char *base, int dtype, ptrdiff_t n, const fs_sample_needs *needs)
{
    const size_t item = dtype == FS_F32 ? sizeof(float) : sizeof(double);
    const int top_k = needs->top_k > 0 || needs->top_n > 0;
    const int select = needs->top_p || top_k;
    const size_t rows = (size_t)n;
    if (rows > SIZE_MAX / 64) return 0;
    size_t at = (sizeof(fs_sampler) + FS_SCRATCH_ALIGN - 1) / FS_SCRATCH_ALIGN * FS_SCRATCH_ALIGN;
#define FS_CARVE(field, type, count)                                                          \
    do {                                                                                      \
        if (s != NULL) s->field = (count) != 0 ? (type)(base + at) : NULL;                       \
        at += ((count) + FS_SCRATCH_ALIGN - 1) / FS_SCRATCH_ALIGN * FS_SCRATCH_ALIGN;         \
    } while (0)
    FS_CARVE(logits, void *, needs->edited ? rows * item : 0);
    FS_CARVE(counts, uint32_t *, needs->penalties ? rows * sizeof(uint32_t) : 0);
    FS_CARVE(probs, void *, rows * item);
    FS_CARVE(kept, void *, needs->top_k > 0 ? rows * item : 0);
    FS_CARVE(index, int64_t *, needs->top_k > 0 ? rows * sizeof(int64_t) : 0);
    FS_CARVE(maxima, void *, top_k ? (rows / FS_TOPK_GROUP_MIN + 1) * item : 0);
    FS_CARVE(select_a, void *, select ? rows * item : 0);
    FS_CARVE(select_b, void *, select ? rows * item : 0);
    FS_CARVE(top_vals, void *, needs->top_n > 0 ? rows * item : 0);
    FS_CARVE(top_index, int64_t *, needs->top_n > 0 ? rows * sizeof(int64_t) : 0);
    FS_CARVE(residual, void *, needs->verify ? rows * item : 0);
    FS_CARVE(histogram, double *, needs->top_p ? 4 * FS_BUCKETS * sizeof(double) : 0);
    FS_CARVE(block_sums, double *, (rows / FS_DRAW_BLOCK + 1) * sizeof(double));
#undef FS_CARVE
    return at;
}

fs_sampler *fs_sampler_new(int dtype, ptrdiff_t n, const fs_sample_needs *needs)
{
    const size_t bytes = fs_sampler_layout(NULL, NULL, dtype, n, needs);
    if (bytes == 0) return NULL;
    char *base = (char *)malloc(bytes);
    if (base == NULL) return NULL;
    fs_sampler *s = (fs_sampler *)base;
    fs_sampler_layout(s, base, dtype, n, needs);
    if (s->counts != NULL) memset(s->counts, 0, (size_t)n * sizeof *s->counts);
    s->dtype = dtype;
    s->n = n;
    s->needs = *needs;
    s->kernels = fs_kernels_for(dtype);
    s->temperature = NAN;
    fs_params_init(dtype, 1.0, &s->unit_params);
    return s;
}

void fs_sampler_free(fs_sampler *s) { free(s); }

static void fs_sampler_temperature(fs_sampler *s, double temperature)
{
    if (!(temperature == s->temperature)) {
        fs_params_init(s->dtype, temperature, &s->params);
        s->temperature = temperature;
    }
}

int64_t fs_sampler_row(fs_sampler *s, const void *x, const fs_sample_row *row, double u,
                       const fs_sample_logprobs *lp)
{
    fs_sampler_temperature(s, row->temperature);
    if (s->dtype == FS_F32) return fs_sample_sample_row_f32(s, (const float *)x, row, u, lp);
    return fs_sample_sample_row_f64(s, (const double *)x, row, u, lp);
}

ptrdiff_t fs_sampler_verify(fs_sampler *s, const void *x, ptrdiff_t k, const int64_t *draft, const void *q,
                            const fs_sample_row *row, const double *u, int64_t *tokens)
{
    fs_sampler_temperature(s, row->temperature);
    if (s->dtype == FS_F32)
        return fs_sample_verify_f32(s, (const float *)x, k, draft, (const float *)q, row, u, tokens);
    return fs_sample_verify_f64(s, (const double *)x, k, draft, (const double *)q, row, u, tokens);
}
