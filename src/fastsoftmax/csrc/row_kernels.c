/* Row kernels: dtype-independent bookkeeping here, the per-dtype loops in
 * row_kernels_impl.h, instantiated below for float and double. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "row_kernels.h"
#include "simd.h"

/* Function multiversioning: each exported kernel is compiled for AVX-512,
 * AVX2+FMA and the baseline, and the loader picks one per CPU (ifunc).
 * setup.py defines FASTSOFTMAX_TARGET_CLONES only where it saw this work. */
#if defined(FASTSOFTMAX_TARGET_CLONES)
#define FS_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FS_CLONES
#endif

FS_INLINE void fs_neumaier_add(double *sum, double *comp, double v)
{
    double t = *sum + v;
    if (fabs(*sum) >= fabs(v)) *comp += (*sum - t) + v;
    else *comp += (v - t) + *sum;
    *sum = t;
}

void fs_stats_init(fs_stats *s)
{
    s->max = -INFINITY;
    s->has_nan = 0;
    s->count = 0;
    s->rest = 0.0;
    s->rest_comp = 0.0;
}

void fs_stats_merge_scan(fs_stats *row, const fs_stats *chunk)
{
    if (chunk->max > row->max) row->max = chunk->max;
    row->has_nan |= chunk->has_nan;
}

void fs_stats_merge_reduce(fs_stats *row, const fs_stats *chunk)
{
    row->count += chunk->count;
    fs_neumaier_add(&row->rest, &row->rest_comp, chunk->rest + chunk->rest_comp);
}

int fs_row_kind_after_scan(const fs_stats *row, ptrdiff_t n, const fs_params *p)
{
    if (n == 0) return FS_ROW_EMPTY;
    if (row->has_nan) return FS_ROW_NAN;
    /* At T = 0 only NaN spoils a row: the limit picks the entries at the
     * maximum even when that maximum is infinite. */
    if (p->mode != FS_MODE_ZERO && isinf(row->max)) return FS_ROW_NAN;
    return FS_ROW_NORMAL;
}

void fs_row_finish(const fs_stats *row, ptrdiff_t n, const fs_params *p, fs_row_result *r)
{
    r->kind = fs_row_kind_after_scan(row, n, p);
    r->log_sum = r->inv_sum = NAN;
    switch (r->kind) {
    case FS_ROW_EMPTY:
        r->logsumexp = -INFINITY;
        return;
    case FS_ROW_NAN:
        r->logsumexp = row->has_nan ? NAN : row->max;
        return;
    default:
        break;
    }
    double count = (double)row->count;
    if (p->mode == FS_MODE_GENERAL) {
        double rest = row->rest + row->rest_comp;
        /* log1p keeps log(1 + tiny) exact when the maximum is unique */
        r->log_sum = row->count == 1 ? log1p(rest) : log(count + rest);
        r->inv_sum = 1.0 / (count + rest);
        r->logsumexp = row->max + p->temperature * r->log_sum;
    } else {
        r->log_sum = log(count);
        r->inv_sum = 1.0 / count;
        /* T -> 0: the maximum.  T -> inf: T * log(count) grows without bound
         * unless a single finite entry is left. */
        if (p->mode == FS_MODE_ZERO || row->count == 1) r->logsumexp = row->max;
        else r->logsumexp = row->max + p->temperature * r->log_sum;
    }
}

const char *fs_simd_target(void)
{
#if defined(FASTSOFTMAX_TARGET_CLONES)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2+FMA)";
    return "baseline (x86-64)";
#else
    return "baseline (no function multiversioning)";
#endif
}

/* ---- float32: float lanes, sums in double ---------------------------- */
#define FS_R float
#define FS_VR fs_vf32
#define FS_VI fs_vi32
#define FS_VU fs_vu32
#define FS_NAME(name) fs_##name##_f32
#define FS_ACCUMULATE(lo, hi, v)                                              \
    do {                                                                      \
        union { fs_vf32 all; fs_vf32_half half[2]; } fs_split_ = {(v)};       \
        (lo) += __builtin_convertvector(fs_split_.half[0], fs_vf64);          \
        (hi) += __builtin_convertvector(fs_split_.half[1], fs_vf64);          \
    } while (0)
#define FS_EXP_MAGIC 12582912.0f           /* 1.5 * 2**23: adding it rounds to an integer */
#define FS_EXP_K_FLOOR -160.0f             /* 2**-160 is far below the smallest subnormal */
#define FS_EXP_K_OFFSET 256
#define FS_EXP_BIAS 127
#define FS_EXP_MANT_BITS 23
#define FS_EXP_C_HI_BITS 15                /* |k| < 2**8, so k * c_hi fits 23 bits */
#define FS_EXP_E_MIN -126
#define FS_EXP_E_MAX 126
/* Beyond these, every exp((x - max) / T) of float data rounds to 0 or 1. */
#define FS_EXP_TM_ZERO 0x1p-100
#define FS_EXP_TM_INF 0x1p100
#define FS_EXP_TAYLOR {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}
#include "row_kernels_impl.h"
#undef FS_R
#undef FS_VR
#undef FS_VI
#undef FS_VU
#undef FS_NAME
#undef FS_ACCUMULATE
#undef FS_EXP_MAGIC
#undef FS_EXP_K_FLOOR
#undef FS_EXP_K_OFFSET
#undef FS_EXP_BIAS
#undef FS_EXP_MANT_BITS
#undef FS_EXP_C_HI_BITS
#undef FS_EXP_E_MIN
#undef FS_EXP_E_MAX
#undef FS_EXP_TM_ZERO
#undef FS_EXP_TM_INF
#undef FS_EXP_TAYLOR

/* ---- float64 ----------------------------------------------------------- */
#define FS_R double
#define FS_VR fs_vf64
#define FS_VI fs_vi64
#define FS_VU fs_vu64
#define FS_NAME(name) fs_##name##_f64
#define FS_ACCUMULATE(lo, hi, v) ((void)(hi), (lo) += (v))
#define FS_EXP_MAGIC 6755399441055744.0    /* 1.5 * 2**52 */
#define FS_EXP_K_FLOOR -1100.0
#define FS_EXP_K_OFFSET 2048
#define FS_EXP_BIAS 1023
#define FS_EXP_MANT_BITS 52
#define FS_EXP_C_HI_BITS 40                /* |k| < 2**11 */
#define FS_EXP_E_MIN -1022
#define FS_EXP_E_MAX 1022
#define FS_EXP_TM_ZERO 0.0                 /* never: double temperatures all fit */
#define FS_EXP_TM_INF INFINITY
#define FS_EXP_TAYLOR {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, \
                       1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0,   \
                       1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0}
#include "row_kernels_impl.h"
