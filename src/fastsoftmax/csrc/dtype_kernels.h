/* The kernels of one dtype in one instruction set, by concern; included twice
 * (float, double) by kernel_template.h, which defines the parameters: FS_R
 * (the dtype), FS_VR / FS_VI / FS_VU (vectors of it and of same-width ints),
 * FS_VACC and FS_ACCUMULATE (double accumulation), FS_NAME (symbol
 * suffixes), FS_TREE (lane reductions), the optional FS_MASKED_* /
 * FS_VMAX_INTRINSIC / FS_FMA / FS_STREAM / FS_SEL_LANES / FS_LOAD_SEL /
 * FS_ALL_SET, and the FS_EXP_* constants; all undefined at the end, so the
 * next dtype starts clean.  No include guard on purpose. */

#include "vexp.h"             /* the vectorised exp */
#include "vectors_impl.h"     /* loads, stores, lane reductions */
#include "selection_impl.h"   /* where= selections as lanes */
#include "passes_impl.h"      /* max, exp-sum and write passes; statistics of a row or chunk */
#include "chunks_impl.h"      /* long rows in chunks; chunk_stats, chunk_write */
#include "rows_impl.h"        /* short rows, tiles, whole rows; rows, rows_where */
#include "columns_impl.h"     /* strided axes; columns */
#include "backward_impl.h"    /* backward */
#include "losses_impl.h"      /* row_stats, weighted_gap, combine; the losses' rows */
#include "weighted_impl.h"    /* weighted_stats (SciPy's logsumexp with b=) */
#include "half_impl.h"        /* staged_rows (bfloat16, float16) */

FS_HIDDEN const fs_kernels FS_NAME(kernels) = {
    FS_NAME(rows), FS_NAME(chunk_stats), FS_NAME(chunk_write), FS_NAME(columns),
    FS_NAME(rows_where), FS_NAME(row_stats), FS_NAME(backward), FS_NAME(weighted_gap), FS_NAME(combine),
    FS_NAME(weighted_stats), FS_NAME(staged_rows), FS_NAME(cross_entropy_row), FS_NAME(kl_div_row),
    FS_NAME(contrastive_row), FS_NAME(row_max)
};

/* The template's parameters, so the next instantiation starts clean. */
#undef FS_R
#undef FS_DTYPE
#undef FS_VR
#undef FS_VI
#undef FS_VU
#undef FS_VACC
#undef FS_ACCUMULATE
#undef FS_BLOCK_FOLD
#undef FS_ROW_FOLD
#undef FS_COLUMN_SUMS
#undef FS_NAME
#undef FS_MASKED_LOAD
#undef FS_MASKED_STORE
#undef FS_VMAX_INTRINSIC
#undef FS_FMA
#undef FS_STREAM
#undef FS_SEL_LANES
#undef FS_LOAD_SEL
#undef FS_VMAX
#undef FS_TREE
#undef FS_TRANSPOSE
#undef FS_ALL_SET
#undef FS_EXP_MAGIC
#undef FS_EXP_MANT_BITS
#undef FS_EXP_POLY
#undef FS_EXP_TABLE
#undef FS_EXP_TABLE_LOOKUP
#undef FS_EXP_TABLE_BITS
#undef FS_EXP_TABLE_SIZE
#undef FS_EXP_TABLE_MAGIC
#undef FS_EXP_TABLE_POLY
#undef FS_W
#undef FS_SUB
#undef FS_UNROLL
#undef FS_SHORT
#undef FS_SCRATCH
#undef FS_COLS
#undef FS_ALL_LANES
#undef FS_UNROLL_ALL
#undef FS_COL_SUB
#undef FS_ADD_OP
