/* The end of a weighted log-sum-exp: a row's merged statistics (see
 * weighted_impl.h) give log |S| + max and the sign of S, where
 * S = sum_i b_i exp(x_i - max).  Header-only: it is dtype-independent and
 * runs once per row, in the code that drives the kernels. */
#ifndef FASTSOFTMAX_WEIGHTED_H
#define FASTSOFTMAX_WEIGHTED_H

#include <math.h>

#include "row_kernels.h"

/* value = max + T * log|S| and sign = +1, -1 or 0 (S == 0, value -inf), or
 * both NaN.  As in SciPy: a +inf entry gives +inf with the sign of its
 * weight (NaN if weights of both signs meet there), and a row with no entry
 * taking part, or only -inf entries, gives -inf with sign 0. */
static inline void fs_weighted_finish(const fs_stats *s, double temperature, double *value, double *sign)
{
    if (s->has_nan) {
        *value = *sign = NAN;
        return;
    }
    if (s->max == -INFINITY) {
        *value = -INFINITY;
        *sign = 0.0;
        return;
    }
    /* S as hi + lo with lo below half an ulp of hi (an error-free sum) */
    double hi = s->rest + s->rest_comp;
    const double comp_part = hi - s->rest;
    double lo = (s->rest - (hi - comp_part)) + (s->rest_comp - comp_part);
    if (!isfinite(s->rest) || !isfinite(hi)) hi = s->rest, lo = 0.0;   /* infinite weights */
    if (isnan(hi)) {
        *value = *sign = NAN;
        return;
    }
    if (hi == 0.0) {
        *value = -INFINITY;
        *sign = 0.0;
        return;
    }
    *sign = hi > 0.0 ? 1.0 : -1.0;
    if (isinf(hi)) {
        *value = INFINITY;
        return;
    }
    const double magnitude = fabs(hi), magnitude_lo = hi > 0.0 ? lo : -lo;
    /* near 1, log1p of the exact difference keeps a sum 1 + tiny exact */
    const double log_sum = magnitude >= 0.5 && magnitude <= 2.0 ? log1p((magnitude - 1.0) + magnitude_lo)
                                                                 : log(magnitude);
    double result = s->max + temperature * log_sum;
    if (isinf(result) && isfinite(s->max)) result = temperature * (s->max / temperature + log_sum);
    *value = result;
}

#endif
