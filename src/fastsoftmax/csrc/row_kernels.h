/* Kernels for one contiguous row (or one chunk of a row), float32 and float64.
 *
 * A row is processed in three steps, each of which can run on a whole row or on
 * independent chunks of it (so one huge row can be split across threads):
 *   1. scan:    row maximum and whether a NaN is present            (fs_scan_*)
 *   2. reduce:  sum of exp((x - max) / T) (for the log functions without
 *               the maximum's own terms, which are counted instead);
 *               stores exps or (x - max) / T into the output         (fs_reduce_*)
 *   3. write:   softmax / log_softmax values                        (fs_write_*)
 * fs_rows_* chains the three for whole rows.  Sums are always
 * formed per FS_CHUNK elements and combined in chunk order, so a row gives
 * bit-identical results whether it is processed whole or chunk by chunk on
 * many threads.  Rows of at most four vectors (64 float32 with AVX-512) take a
 * register path with the same math instead; they are never split.
 */
#ifndef FASTSOFTMAX_ROW_KERNELS_H
#define FASTSOFTMAX_ROW_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Elements per chunk; sums of longer rows are combined chunk by chunk. */
#define FS_CHUNK ((ptrdiff_t)1 << 15)

enum fs_op { FS_SOFTMAX = 0, FS_LOG_SOFTMAX = 1, FS_LOGSUMEXP = 2 };

/* How the temperature is applied.  FS_MODE_ZERO / FS_MODE_INF are the exact
 * limits T -> 0+ and T -> inf; they are also used for finite temperatures so
 * extreme that the dtype cannot tell them apart from those limits. */
enum fs_mode { FS_MODE_GENERAL = 0, FS_MODE_ZERO = 1, FS_MODE_INF = 2 };

/* What a row turned out to be once its maximum is known. */
enum fs_row_kind {
    FS_ROW_EMPTY = 0,   /* no elements */
    FS_ROW_NAN = 1,     /* every output NaN (NaN, +inf or only -inf present) */
    FS_ROW_NORMAL = 2   /* computed through reduce + write */
};

/* Per-call constants derived from the temperature T = tm * 2**e.
 * Values are stored as double but chosen so they are exact in the row dtype. */
typedef struct {
    int mode;
    double temperature;  /* T itself, used for logsumexp = max + T * log(S) */
    double s_pre, s_post; /* 2**-e split as min(2**-e, 1) and max(2**-e, 1):
                             (x * s_pre - max * s_pre) * s_post / tm == (x - max) / T
                             and no step overflows unless the result does */
    double k_scale;      /* log2(e) / tm, picks the power of two in exp */
    double c_hi, c_lo;   /* ln(2) * tm split so that k * c_hi is exact */
    double inv_tm;       /* 1 / tm */
    double d_floor;      /* scaled differences below this have an exp that rounds to 0 */
} fs_params;

/* Statistics of a row (or of one chunk of it). */
typedef struct {
    double max;          /* row maximum (exact in the row dtype) */
    int has_nan;
    int64_t count;       /* entries at the maximum (FS_MODE_ZERO / GENERAL) or finite entries (FS_MODE_INF) */
    double rest;         /* sum of exp((x - max) / T) over entries below the maximum */
    double rest_comp;    /* running compensation of rest (Neumaier) */
} fs_stats;

/* Per-row results needed by the write step. */
typedef struct {
    int kind;
    double log_sum;      /* log(S), S = count + rest */
    double inv_sum;      /* 1 / S */
    double logsumexp;    /* max + T * log(S), with every special case resolved */
} fs_row_result;

void fs_params_init_f32(double temperature, fs_params *p);
void fs_params_init_f64(double temperature, fs_params *p);

void fs_stats_init(fs_stats *s);
/* Fold a chunk's scan statistics into a row's (order-independent). */
void fs_stats_merge_scan(fs_stats *row, const fs_stats *chunk);
/* Fold a chunk's reduce statistics into a row's; call in chunk order. */
void fs_stats_merge_reduce(fs_stats *row, const fs_stats *chunk);
/* Turn a row's statistics into what the write step of `op` needs. */
void fs_row_finish(int op, const fs_stats *row, ptrdiff_t n, const fs_params *p, fs_row_result *r);
/* Kind of row known after the scan, before the reduce step. */
int fs_row_kind_after_scan(const fs_stats *row, ptrdiff_t n, const fs_params *p);

void fs_scan_f32(const float *x, ptrdiff_t n, fs_stats *chunk);
void fs_scan_f64(const double *x, ptrdiff_t n, fs_stats *chunk);

/* The reduce step for one chunk.  In FS_MODE_GENERAL it also stores into out
 * what the write step needs: exps (softmax) or (x - max) / T (log_softmax);
 * out is unused for logsumexp and may be NULL there.  out may be x. */
void fs_reduce_f32(int op, const float *x, float *out, ptrdiff_t n, double max, const fs_params *p, fs_stats *chunk);
void fs_reduce_f64(int op, const double *x, double *out, ptrdiff_t n, double max, const fs_params *p, fs_stats *chunk);

/* The write step: in FS_MODE_GENERAL it finishes in place what fs_reduce
 * stored in out; in the limit modes it computes from x (out may be x). */
void fs_write_f32(int op, const float *x, float *out, ptrdiff_t n, double max, const fs_params *p, const fs_row_result *r);
void fs_write_f64(int op, const double *x, double *out, ptrdiff_t n, double max, const fs_params *p, const fs_row_result *r);

/* `rows` consecutive rows of length n, each chaining scan, reduce and write;
 * out has n elements per row (softmax, log_softmax) or one (logsumexp). */
void fs_rows_f32(int op, const float *x, float *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p);
void fs_rows_f64(int op, const double *x, double *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p);

/* Pick the instruction-set variant for this CPU (also done lazily on first use). */
void fs_dispatch_init(void);
/* Which SIMD variant the dispatcher picked on this CPU, for diagnostics. */
const char *fs_simd_target(void);

#ifdef __cplusplus
}
#endif
#endif
