/* What the kernels share with the bookkeeping in core.c, inside the kernels
 * only (the Cython layer and the C harness use row_kernels.h).
 *
 * The kernels are compiled once per instruction set, each in its own
 * translation unit (isa_avx512.c, isa_avx2.c, isa_baseline.c), from one
 * template (kernel_template.h); core.c holds what is compiled once: the
 * temperature constants, the statistics' merge and finish, and the choice of
 * variant at run time. */
#ifndef FASTSOFTMAX_CORE_H
#define FASTSOFTMAX_CORE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "row_kernels.h"
#include "simd.h"

/* Compensated (Neumaier) addition of v to *sum + *comp. */
FS_INLINE void fs_neumaier_add(double *sum, double *comp, double v)
{
    double t = *sum + v;
    if (fabs(*sum) >= fabs(v)) *comp += (*sum - t) + v;
    else *comp += (v - t) + *sum;
    *sum = t;
}

/* max + T * log_sum; T * log_sum alone may overflow where the sum does not.
 * Inline: the short-row kernels take logsumexp from it directly. */
static inline double fs_max_plus_t_log(double max, double t, double log_sum)
{
    double lse = max + t * log_sum;
    if (isinf(lse) && isfinite(max) && isfinite(t)) lse = t * (max / t + log_sum);
    return lse;
}

/* a + b * c and a * b - c, each product rounded before the addition: the
 * losses' scalar steps, compiled in core.c, outside the instruction-set
 * variants, so that none of them fuses the two into a multiply-add (the
 * results stay the same in every variant). */
/* Not exported from the extension module: shared between its own files only. */
#define FS_HIDDEN __attribute__((visibility("hidden")))

FS_HIDDEN double fs_add_product(double a, double b, double c);
FS_HIDDEN double fs_product_minus(double a, double b, double c);

/* Each instruction-set translation unit's tables (baseline always; the x86
 * variants where FASTSOFTMAX_X86_DISPATCH is defined). */
FS_HIDDEN extern const fs_kernels fs_kernels_f32_baseline, fs_kernels_f64_baseline;
#if defined(FASTSOFTMAX_X86_DISPATCH)
FS_HIDDEN extern const fs_kernels fs_kernels_f32_avx2, fs_kernels_f64_avx2;
FS_HIDDEN extern const fs_kernels fs_kernels_f32_avx512, fs_kernels_f64_avx512;
#endif

#endif
