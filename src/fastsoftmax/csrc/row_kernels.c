/* Row kernels: dtype-independent bookkeeping here, the per-dtype loops in
 * row_kernels_impl.h, instantiated below for float and double. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "row_kernels.h"
#include "simd.h"

/* Runtime dispatch (x86-64 with GCC or Clang).  Every kernel is compiled
 * three times from the same source: AVX-512 with 64-byte vectors, AVX2+FMA
 * with 32-byte vectors, and the portable baseline; the CPU is asked once which
 * one to run.  Each variant is compiled under a target pragma rather than a
 * per-function attribute so that the inline helpers are compiled for that
 * instruction set too (otherwise their vector code is lowered for the
 * baseline before it is inlined).  setup.py defines FASTSOFTMAX_X86_DISPATCH
 * only where it saw this work; elsewhere only the baseline is built. */
#if defined(FASTSOFTMAX_X86_DISPATCH)
#include <immintrin.h>
#if defined(__clang__)
#define FS_TARGET_PUSH(isa) _Pragma(FS_STR(clang attribute push(__attribute__((target(isa))), apply_to = function)))
#define FS_TARGET_POP _Pragma("clang attribute pop")
#else
#define FS_TARGET_PUSH(isa) _Pragma("GCC push_options") _Pragma(FS_STR(GCC target(isa)))
#define FS_TARGET_POP _Pragma("GCC pop_options")
#endif
#define FS_STR_(x) #x
#define FS_STR(x) FS_STR_(x)
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
     * maximum even when that maximum is infinite.  Any T > 0, however small
     * (FS_MODE_ZERO is also used for those), follows the ordinary table. */
    if (p->temperature != 0.0 && isinf(row->max)) return FS_ROW_NAN;
    return FS_ROW_NORMAL;
}

/* max + T * log_sum; T * log_sum alone may overflow where the sum does not. */
static double fs_max_plus_t_log(double max, double t, double log_sum)
{
    double lse = max + t * log_sum;
    if (isinf(lse) && isfinite(max) && isfinite(t)) lse = t * (max / t + log_sum);
    return lse;
}

void fs_row_finish(int op, const fs_stats *row, ptrdiff_t n, const fs_params *p, fs_row_result *r)
{
    r->kind = fs_row_kind_after_scan(row, n, p);
    r->log_sum = r->inv_sum = r->logsumexp = NAN;
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
    if (p->mode != FS_MODE_GENERAL) {
        /* T = 0: the maximum.  T -> inf: T * log(count) grows without bound
         * unless a single finite entry is left. */
        r->inv_sum = 1.0 / count;
        r->log_sum = log(count);
        if (p->temperature == 0.0 || row->count == 1) r->logsumexp = row->max;
        else r->logsumexp = fs_max_plus_t_log(row->max, p->temperature, r->log_sum);
        return;
    }
    double rest = row->rest + row->rest_comp;
    if (op == FS_SOFTMAX) {
        r->inv_sum = 1.0 / (count + rest);
        return;
    }
    /* log1p keeps log(1 + tiny) exact when the maximum is unique */
    r->log_sum = row->count == 1 ? log1p(rest) : log(count + rest);
    r->logsumexp = fs_max_plus_t_log(row->max, p->temperature, r->log_sum);
}

/* ---- temperature ------------------------------------------------------ */

typedef struct {
    double k_floor;          /* 2**k_floor rounds to 0 in the dtype */
    int c_hi_bits;           /* |k| stays below 2**(mantissa bits - c_hi_bits) */
    int e_min, e_max;        /* powers of two that scale exactly in the dtype */
    double tm_zero, tm_inf;  /* beyond these every exp rounds to 0 or 1 in the dtype */
    int is_float;
} fs_dtype_limits;

static const fs_dtype_limits fs_limits_f32 = {-155.0, 15, -126, 126, 0x1p-100, 0x1p100, 1};
static const fs_dtype_limits fs_limits_f64 = {-1090.0, 40, -1022, 1022, 0.0, INFINITY, 0};

static void fs_params_init(double temperature, fs_params *p, const fs_dtype_limits *lim)
{
    memset(p, 0, sizeof *p);
    p->temperature = temperature;
    if (temperature == 0.0) { p->mode = FS_MODE_ZERO; return; }
    if (isinf(temperature)) { p->mode = FS_MODE_INF; return; }

    int e = ilogb(temperature);
    if (e < lim->e_min) e = lim->e_min;
    if (e > lim->e_max) e = lim->e_max;
    double tm = ldexp(temperature, -e);
    if (tm < lim->tm_zero) { p->mode = FS_MODE_ZERO; return; }
    if (tm > lim->tm_inf) { p->mode = FS_MODE_INF; return; }

    p->mode = FS_MODE_GENERAL;
    p->s_pre = e > 0 ? ldexp(1.0, -e) : 1.0;
    p->s_post = e < 0 ? ldexp(1.0, -e) : 1.0;
    p->k_scale = 1.4426950408889634 / tm;
    p->inv_tm = 1.0 / tm;
    /* ln2 * tm in double-double, then split so c_hi keeps c_hi_bits bits. */
    const double ln2_hi = 0.6931471805599453, ln2_lo = 2.3190468138462996e-17;
    double c = ln2_hi * tm;
    double c_err = fma(ln2_hi, tm, -c) + ln2_lo * tm;
    int ce = ilogb(c);
    double c_hi = ldexp(nearbyint(ldexp(c, lim->c_hi_bits - 1 - ce)), ce - (lim->c_hi_bits - 1));
    p->c_hi = c_hi;
    p->c_lo = (c - c_hi) + c_err;
    if (lim->is_float) {
        p->k_scale = (float)p->k_scale;
        p->inv_tm = (float)p->inv_tm;
        p->c_lo = (float)p->c_lo;
    }
    p->d_floor = lim->k_floor / p->k_scale;
    if (lim->is_float) p->d_floor = (float)p->d_floor;
}

void fs_params_init_f32(double temperature, fs_params *p) { fs_params_init(temperature, p, &fs_limits_f32); }
void fs_params_init_f64(double temperature, fs_params *p) { fs_params_init(temperature, p, &fs_limits_f64); }

/* ---- instruction-set variants ------------------------------------------ */

#if defined(FASTSOFTMAX_X86_DISPATCH)
FS_TARGET_PUSH("arch=x86-64-v4")
#define FS_ISA avx512
#define FS_ISA_IS_AVX512
#define FS_VBYTES 64
#include "row_kernels_isa.h"
#undef FS_ISA
#undef FS_ISA_IS_AVX512
#undef FS_VBYTES
FS_TARGET_POP

FS_TARGET_PUSH("arch=x86-64-v3")
#define FS_ISA avx2
#define FS_ISA_IS_AVX2
#define FS_VBYTES 32
#include "row_kernels_isa.h"
#undef FS_ISA
#undef FS_ISA_IS_AVX2
#undef FS_VBYTES
FS_TARGET_POP
#endif

#define FS_ISA baseline
#define FS_VBYTES 32
#include "row_kernels_isa.h"
#undef FS_ISA
#undef FS_VBYTES

/* ---- dispatch ------------------------------------------------------------ */

enum { FS_ISA_BASELINE = 0, FS_ISA_AVX2 = 1, FS_ISA_AVX512 = 2 };

#if defined(FASTSOFTMAX_X86_DISPATCH)
static int fs_isa_level = -1;   /* -1: not checked yet; set once, then only read */

/* The best variant this CPU runs, lowered by FASTSOFTMAX_FORCE_ISA
 * ("baseline", "avx2"): lets tests and benchmarks exercise every variant. */
static int fs_isa(void)
{
    if (fs_isa_level < 0) {
        int level = FS_ISA_BASELINE;
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
            level = FS_ISA_AVX512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            level = FS_ISA_AVX2;
        const char *force = getenv("FASTSOFTMAX_FORCE_ISA");
        if (force && strcmp(force, "baseline") == 0) level = FS_ISA_BASELINE;
        else if (force && strcmp(force, "avx2") == 0 && level > FS_ISA_AVX2) level = FS_ISA_AVX2;
        fs_isa_level = level;
    }
    return fs_isa_level;
}
#define FS_DISPATCH(name, args)                                        \
    switch (fs_isa()) {                                                \
    case FS_ISA_AVX512: FS_GLUE(name, _avx512) args; break;            \
    case FS_ISA_AVX2: FS_GLUE(name, _avx2) args; break;                \
    default: FS_GLUE(name, _baseline) args; break;                     \
    }
#else
static int fs_isa(void) { return FS_ISA_BASELINE; }
#define FS_DISPATCH(name, args) FS_GLUE(name, _baseline) args
#endif

void fs_dispatch_init(void) { (void)fs_isa(); }

void fs_scan_f32(const float *x, ptrdiff_t n, fs_stats *s) { FS_DISPATCH(fs_scan_f32, (x, n, s)); }
void fs_scan_f64(const double *x, ptrdiff_t n, fs_stats *s) { FS_DISPATCH(fs_scan_f64, (x, n, s)); }

void fs_reduce_f32(int op, const float *x, float *out, ptrdiff_t n, double max, const fs_params *p, fs_stats *s)
{
    FS_DISPATCH(fs_reduce_f32, (op, x, out, n, max, p, s));
}
void fs_reduce_f64(int op, const double *x, double *out, ptrdiff_t n, double max, const fs_params *p, fs_stats *s)
{
    FS_DISPATCH(fs_reduce_f64, (op, x, out, n, max, p, s));
}

void fs_write_f32(int op, const float *x, float *out, ptrdiff_t n, double max, const fs_params *p,
                  const fs_row_result *r)
{
    FS_DISPATCH(fs_write_f32, (op, x, out, n, max, p, r));
}
void fs_write_f64(int op, const double *x, double *out, ptrdiff_t n, double max, const fs_params *p,
                  const fs_row_result *r)
{
    FS_DISPATCH(fs_write_f64, (op, x, out, n, max, p, r));
}

void fs_rows_f32(int op, const float *x, float *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p)
{
    FS_DISPATCH(fs_rows_f32, (op, x, out, rows, n, p));
}
void fs_rows_f64(int op, const double *x, double *out, ptrdiff_t rows, ptrdiff_t n, const fs_params *p)
{
    FS_DISPATCH(fs_rows_f64, (op, x, out, rows, n, p));
}

const char *fs_simd_target(void)
{
    switch (fs_isa()) {
    case FS_ISA_AVX512: return "AVX-512 (x86-64-v4, 64-byte vectors)";
    case FS_ISA_AVX2: return "AVX2+FMA (x86-64-v3, 32-byte vectors)";
    default:
#if defined(FASTSOFTMAX_X86_DISPATCH)
        return "x86-64 baseline (SSE2)";
#else
        return "portable baseline (no runtime dispatch in this build)";
#endif
    }
}
