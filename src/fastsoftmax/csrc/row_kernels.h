/* Kernels for softmax, log_softmax and logsumexp over float32 and float64.
 *
 * A row (the entries a softmax sums over) is processed in up to three passes:
 *   1. max:     the row maximum, and whether a NaN is present;
 *   2. exp-sum: sum of exp((x - max) / T), storing the exps where the last
 *               pass can scale them in cache (softmax);
 *   3. write:   softmax (exps times 1/sum) or log_softmax ((x - max) / T - log sum).
 * Rows of at most FS_SHORT vectors stay in registers from load to store.
 * Rows longer than FS_LONG_ROW elements (beyond what the L2 cache holds) are
 * split into FS_CHUNK pieces: each chunk's maximum and
 * its sum relative to that maximum are found in one visit while the chunk is
 * in cache, the chunk statistics are combined in chunk order, and the write
 * pass recomputes from x.  A row therefore gives bit-identical results
 * whether its chunks run on one thread or on many.
 *
 * Contiguous rows use kernels.rows; rows along a strided axis (axis 0 of a C
 * array, a middle axis, Fortran order) use kernels.columns, which keeps a
 * running maximum and sum per vector lane across the strided axis, with
 * contiguous columns in the lanes, so nothing is transposed or copied.
 *
 * Where things are: core.c (temperature, statistics, finish, the choice of
 * instruction set), isa_avx512.c / isa_avx2.c / isa_baseline.c (one
 * translation unit per instruction set: its vector vocabulary, then
 * kernel_template.h), dtype_kernels.h (the kernels of one dtype, by concern:
 * vectors_impl.h, selection_impl.h, passes_impl.h, chunks_impl.h,
 * rows_impl.h, columns_impl.h, backward_impl.h, losses_impl.h,
 * weighted_impl.h, half_impl.h; vexp.h the exp).
 */
#ifndef FASTSOFTMAX_ROW_KERNELS_H
#define FASTSOFTMAX_ROW_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Elements per chunk of a long row, and the length from which rows are long. */
#define FS_CHUNK ((ptrdiff_t)1 << 15)
#define FS_LONG_ROW ((ptrdiff_t)1 << 16)

enum fs_op { FS_SOFTMAX = 0, FS_LOG_SOFTMAX = 1, FS_LOGSUMEXP = 2 };
enum fs_dtype { FS_F32 = 0, FS_F64 = 1 };
/* 16-bit storage formats converted to and from the row dtype (half_impl.h),
 * and the row length from which staged_rows takes rows one at a time. */
enum fs_half { FS_BF16 = 0, FS_F16 = 1 };
#define FS_STAGE_BY_ROW ((ptrdiff_t)256)

/* How the temperature is applied.  FS_MODE_ZERO / FS_MODE_INF are the exact
 * limits T -> 0+ and T -> inf; they are also used for finite temperatures so
 * extreme that the dtype cannot tell them apart from those limits. */
enum fs_mode { FS_MODE_GENERAL = 0, FS_MODE_ZERO = 1, FS_MODE_INF = 2 };

/* What a row turned out to be once its maximum is known. */
enum fs_row_kind {
    FS_ROW_EMPTY = 0,   /* no elements */
    FS_ROW_NAN = 1,     /* every output NaN (NaN, +inf or only -inf present) */
    FS_ROW_NORMAL = 2,  /* finite maximum (or T = 0 and a +inf maximum): computed */
    FS_ROW_MASKED = 3   /* where= selects no entry: softmax 0, log_softmax and logsumexp -inf */
};

/* Per-call constants derived from the temperature T = tm * 2**e.
 * Values are stored as double but chosen so they are exact in the row dtype. */
typedef struct {
    int mode;
    int unit;            /* T == 1: the kernels skip every scaling step */
    double temperature;  /* T itself, used for logsumexp = max + T * log(S) */
    double s_pre, s_post; /* 2**-e split as min(2**-e, 1) and max(2**-e, 1):
                             (x * s_pre - max * s_pre) * s_post / tm == (x - max) / T
                             and no step overflows unless the result does */
    double k_scale;      /* log2(e) / tm, picks the power of two in exp */
    double c_hi, c_lo;   /* ln(2) * tm split so that k * c_hi is exact */
    double inv_tm;       /* 1 / tm */
    double k_scale_t, c_hi_t, c_lo_t, d_clamp_t;  /* the same for the table-driven
                             exp (float64 AVX-512): steps of ln(2) / 16 */
    double d_clamp;      /* scaled differences are clamped here, where the exp kernel's
                             power of two is exactly 0 (see vexp.h) */
} fs_params;

/* Statistics of a row, or of one chunk of it. */
typedef struct {
    double max;          /* maximum (exact in the row dtype) */
    int has_nan;
    int64_t count;       /* entries at the maximum (FS_MODE_ZERO / GENERAL) or finite entries (FS_MODE_INF) */
    double rest;         /* sum of exp((x - max) / T) over the entries below the maximum */
    double rest_comp;    /* running compensation of rest (Neumaier) */
    int any_entry;       /* some entry takes part (n > 0, and where= selects one) */
} fs_stats;

/* What the write pass of a row needs. */
typedef struct {
    int kind;
    double max;
    double log_sum;      /* log(S), S = count + rest (not for softmax) */
    double inv_sum;      /* 1 / S */
    double logsumexp;    /* max + T * log(S), with every special case resolved */
} fs_row_result;

/* One instruction-set variant's kernels for one dtype.  Pointers are to the
 * dtype's elements; `stream` asks for non-temporal stores (an output far
 * larger than the caches). */
typedef struct {
    /* `rows` contiguous rows of n elements; out has n per row (1 for logsumexp) */
    void (*rows)(int op, const void *x, void *out, ptrdiff_t rows, ptrdiff_t n,
                 const fs_params *p, int stream);
    /* statistics of one chunk of a long row, relative to the chunk's own
     * maximum; entries take part where sel[i] is nonzero (sel NULL: all) */
    void (*chunk_stats)(int op, const void *x, const uint8_t *sel, ptrdiff_t n, const fs_params *p,
                        fs_stats *s);
    /* the write pass for one chunk of a long row (softmax, log_softmax), sel as above */
    void (*chunk_write)(int op, const void *x, const uint8_t *sel, void *out, ptrdiff_t n,
                        const fs_params *p, const fs_row_result *r, int stream);
    /* `lanes` side-by-side reductions over a strided axis: entry i of column j
     * is x[i * stride + j], i < n; out likewise (one entry per column for
     * logsumexp, out[j]).  stride >= lanes. */
    void (*columns)(int op, const void *x, void *out, ptrdiff_t n, ptrdiff_t stride,
                    ptrdiff_t lanes, ptrdiff_t out_stride, const fs_params *p);
    /* `rows` as above with a where= selection: row r's entries take part where
     * sel[r * sel_step + i] is nonzero (sel_step 0: one selection for every
     * row); the others count as -inf whatever their value. */
    void (*rows_where)(int op, const void *x, const uint8_t *sel, void *out, ptrdiff_t rows, ptrdiff_t n,
                       ptrdiff_t sel_step, const fs_params *p, int stream);
    /* One row's final statistics: r->log_sum, r->inv_sum and r->logsumexp are
     * all set for a normal row.  sel may be NULL.  exps, when not NULL,
     * receives exp((x - max) / T) per entry (0 where not selected; in the
     * limit modes 1 on the selected entries, 0 elsewhere) for a normal row. */
    void (*row_stats)(const void *x, const uint8_t *sel, ptrdiff_t n, const fs_params *p, void *exps,
                      fs_row_result *r);
    /* Vector-Jacobian products of `rows` rows: op FS_SOFTMAX takes y =
     * softmax and gives y * (g - sum(g * y)) / T; FS_LOG_SOFTMAX takes y =
     * log_softmax and gives (g - exp(y) * sum(g)) / T.  Entries not selected
     * (sel as in rows_where, or NULL) are excluded from the sums and get 0.
     * out may be g. */
    void (*backward)(int op, const void *g, const void *y, const uint8_t *sel, void *out, ptrdiff_t rows,
                     ptrdiff_t n, ptrdiff_t sel_step, const fs_params *p);
    /* Loss helpers over one row of n entries.  The coefficient of entry i is
     * a_i = wt_i * (b_q * q_i + b_0), wt or q NULL reading as 1 and 0.
     * weighted_gap returns sum a_i * ((x_i - mx) - (y_i - my)) (y NULL: no
     * y term) over the entries with a_i != 0, so a zero coefficient never
     * meets an infinite logit, and sets *total = sum a_i. */
    double (*weighted_gap)(const void *x, double mx, const void *y, double my, const void *wt, const void *q,
                           double b_q, double b_0, ptrdiff_t n, double *total);
    /* out_i = alpha * out_i - a_i, with a_i as above. */
    void (*combine)(void *out, ptrdiff_t n, double alpha, const void *wt, const void *q, double b_q,
                    double b_0);
    /* weighted log-sum-exp statistics of a row or chunk: weight i is
     * b[i * b_step] (b_step 0 or 1); see weighted_impl.h and weighted.h */
    void (*weighted_stats)(const void *x, const void *b, ptrdiff_t b_step, ptrdiff_t n,
                           const fs_params *p, fs_stats *s);
    /* `rows` rows of n 16-bit values (in_format, enum fs_half) computed in the
     * row dtype through buf, results in out_format (or -1: the row dtype);
     * buf holds rows * (n + 1) elements for n <= FS_STAGE_BY_ROW, else n + 1.
     * See half_impl.h. */
    void (*staged_rows)(int op, int in_format, int out_format, const void *x, void *out, ptrdiff_t rows,
                        ptrdiff_t n, const fs_params *p, void *buf);
    /* Cross-entropy of one row of n logits at p->temperature: against class `target` (soft == NULL)
     * or soft labels `soft` (n entries).  weight: n class weights or NULL; smoothing: label smoothing.
     * Returns the row's loss; when grad != NULL writes grad_scale * d(loss)/dx into it (n entries;
     * grad may hold anything on entry, it is used as the exps' scratch).  The caller handles
     * ignore_index (it never calls this for an ignored row).  See losses_impl.h. */
    double (*cross_entropy_row)(const void *x, ptrdiff_t n, const fs_params *p, int64_t target,
                                const void *soft, const void *weight, double smoothing,
                                double grad_scale, void *grad);
    /* T**2 * KL(softmax(t/T) || softmax(s/T)) of one row; gradient with respect to s, times
     * grad_scale, into grad when not NULL; scratch: n elements of the dtype. */
    double (*kl_div_row)(const void *s, const void *t, ptrdiff_t n, const fs_params *p,
                         double grad_scale, void *grad, void *scratch);
    /* Row i of a contrastive loss over an n x n similarity matrix: the cross-entropy of
     * srow / T against class i; the gradient scale_rows * d(row loss) into grad when not NULL,
     * plus scale_columns * d(column loss) when scale_columns != 0 (grad then already holds the
     * column softmax); scratch: n elements of the dtype. */
    double (*contrastive_row)(const void *srow, ptrdiff_t i, ptrdiff_t n, const fs_params *p,
                              double scale_rows, double scale_columns, void *grad, void *scratch);
    /* The maximum of n elements (-inf for n = 0), the softmax kernels' max pass; *has_nan:
     * whether one is NaN (the maximum means nothing then).  For the sampling kernels. */
    double (*row_max)(const void *x, ptrdiff_t n, int *has_nan);
} fs_kernels;

/* The kernel table for a dtype and the instruction set in use. */
const fs_kernels *fs_kernels_for(int dtype);
/* Switch every table to an instruction set: "avx512", "avx2", "baseline",
 * "best" (the widest the CPU has) or "auto" (the fastest, timed at first use:
 * what the kernels start with unless FASTSOFTMAX_FORCE_ISA names another);
 * returns 0, or -1 when this build or CPU does not have it. */
int fs_use_isa(const char *name);
/* The choice by speed: given a cost per element for each variant (index 0
 * baseline, 1 avx2, 2 avx512; 0 = not timed) and the widest one the CPU has,
 * the index of the variant to use: the widest, unless a narrower one is
 * faster by a clear margin (core.c). */
int fs_pick_isa(const double *cost, int widest);
/* The variant in use, in words, and why it was chosen, for diagnostics. */
const char *fs_simd_target(void);

void fs_params_init(int dtype, double temperature, fs_params *p);

void fs_stats_init(fs_stats *s);
/* Fold a chunk's statistics into its row's; call in chunk order. */
void fs_stats_merge(const fs_stats *chunk, const fs_params *p, fs_stats *row);
/* Turn a row's statistics into what the write pass of `op` needs. */
void fs_row_finish(int op, const fs_stats *row, ptrdiff_t n, const fs_params *p, fs_row_result *r);

/* a + b * c and a * b - c, each product rounded before the addition: the
 * losses' scalar steps, compiled outside the instruction-set variants so that
 * none of them fuses the two into a multiply-add (the results stay the same
 * in every variant). */
double fs_add_product(double a, double b, double c);
double fs_product_minus(double a, double b, double c);

/* Convenience entry points on the current table (C harnesses, tools). */
void fs_rows_f32(int op, const float *x, float *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p);
void fs_rows_f64(int op, const double *x, double *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p);
void fs_params_init_f32(double temperature, fs_params *p);
void fs_params_init_f64(double temperature, fs_params *p);

#ifdef __cplusplus
}
#endif
#endif
