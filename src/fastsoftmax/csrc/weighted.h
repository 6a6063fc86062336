/* The end of a weighted log-sum-exp: a row's merged statistics (see
 * weighted_impl.h) give log |S| + max and the sign of S, where
 * S = sum_i b_i exp(x_i - max).  Dtype-independent and run once per row, by
 * the code that drives the kernels; defined in core.c beside fs_row_finish,
 * whose max + T * log S it shares. */
#ifndef FASTSOFTMAX_WEIGHTED_H
#define FASTSOFTMAX_WEIGHTED_H

#include "row_kernels.h"

/* value = max + T * log|S| and sign = +1, -1 or 0 (S == 0, value -inf), or
 * both NaN.  As in SciPy: a +inf entry gives +inf with the sign of its
 * weight (NaN if weights of both signs meet there), and a row with no entry
 * taking part, or only -inf entries, gives -inf with sign 0. */
void fs_weighted_finish(const fs_stats *s, double temperature, double *value, double *sign);

#endif
