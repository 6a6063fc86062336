/* Shared parts of the standalone C check of the kernels (the files of tests/c, built
 * and run by tools/check_kernels.sh): the two dtypes, the bookkeeping of
 * groups of cases, the long-double oracle of softmax / log_softmax /
 * logsumexp, the error measures and the seeded data.
 *
 * Every check calls an entry of the kernel table (fs_kernels_for) of the
 * instruction-set variant in use (main switches with fs_use_isa) and compares
 * each output with values worked out here in long double, following the
 * package contract (CONTRACT.md) and fastsoftmax/reference.py. */
#ifndef CHECK_KERNELS_CHECK_H
#define CHECK_KERNELS_CHECK_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "row_kernels.h"

typedef long double wide;

/* ---- the two dtypes ------------------------------------------------------ */

typedef struct {
    const char *name;
    int id;           /* FS_F32 / FS_F64 */
    size_t size;
    double bound;     /* softmax entries >= 1e-8: relative error; log values 4x, relative to max(1, |v|) */
    double tail;      /* softmax entries from the smallest normal up to 1e-8 */
    wide tiny, max;   /* smallest normal, largest finite */
    wide eps;         /* spacing of 1 */
    wide (*get)(const void *, ptrdiff_t);
    void (*set)(void *, ptrdiff_t, wide);   /* rounds to the dtype: beyond its range gives inf */
    wide (*exp_w)(wide), (*log_w)(wide), (*log1p_w)(wide);
} dtype;

extern const dtype F32, F64;

/* The table of the variant in use, for d. */
const fs_kernels *kernels(const dtype *d);
void params(const dtype *d, double temperature, fs_params *p);

static const double TEMPS[] = {1.0, 0.5, 3.0, 0.0, INFINITY};
#define N_TEMPS (sizeof TEMPS / sizeof TEMPS[0])
/* ordinary temperatures, for the entries that only run in the general mode */
static const double GENERAL_TEMPS[] = {1.0, 0.5, 3.0};
#define N_GENERAL_TEMPS (sizeof GENERAL_TEMPS / sizeof GENERAL_TEMPS[0])
extern const char *const OP_NAMES[];

/* ---- bookkeeping ---------------------------------------------------------- */

typedef struct {
    const dtype *d;
    const char *name;
    long cases, failed;
    double worst;   /* largest error seen, in units of its bound */
} group;

/* One case of a group: starts passing; note() fails it. */
typedef struct {
    group *g;
    int ok;
} check_case;

check_case case_begin(group *g);
void case_end(check_case *c);
/* Records an error measured in units of its bound (<= 1 passes; NaN or
 * INFINITY fails); on failure prints the formatted context (a few times). */
void note(check_case *c, double err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void group_done(const group *g);
/* totals of the variant in use, reset by variant_begin */
void variant_begin(const char *isa);
void variant_done(const char *isa);
long failures_so_far(void);
long total_cases(void);

void *xcalloc(ptrdiff_t count, size_t size);

/* ---- the oracle -------------------------------------------------------------- */

/* softmax (sm), log_softmax (lsm) and logsumexp (*lse) of the row x[base ..
 * base+n) at temperature t, the rules of fastsoftmax.reference; with sel (not
 * NULL), entries where sel[i] == 0 count as -inf and a row with none
 * selected gives softmax 0, log_softmax and logsumexp -inf. */
void expected_row(const dtype *d, const void *x, ptrdiff_t base, ptrdiff_t n, wide t, const uint8_t *sel,
                  wide *sm, wide *lsm, wide *lse);

/* The statistics of a row in long double: the maximum over the entries
 * taking part, how many sit at it (T = 0) or are finite (T = inf), the rest
 * of S, and the kind (enum fs_row_kind). */
typedef struct {
    int kind;
    wide max, count, rest;
} expected_stats;
expected_stats expected_row_stats(const dtype *d, const void *x, ptrdiff_t n, wide t, const uint8_t *sel);

/* Error of one forward output in units of its bound (see check_kernels.c). */
double value_error(const dtype *d, int op, wide got, wide want, int near_zero);
/* |got - want| in units of factor * 4 * bound * scale (the contract's bound
 * for log values and gradients, relative to the size of the terms); NaN and
 * infinities must match exactly; a few spacings of the dtype's subnormals
 * are always allowed. */
double scaled_error(const dtype *d, wide got, wide want, wide scale, double factor);
/* whether two values are the same special value (NaN, or equal) */
int same_special(wide got, wide want);

/* The loop "for each element n of a static array", in order. */
#define FOR_EACH(n, array)                                                        \
    for (size_t n##_at = 0; n##_at < sizeof(array) / sizeof((array)[0]); n##_at++) \
        for (ptrdiff_t n = (array)[n##_at], n##_once = 1; n##_once; n##_once = 0)

#define GUARD 12345.0L   /* written just past an output: the kernels must leave it */

/* ---- data ------------------------------------------------------------------ */

uint64_t rng_u64(void);
double rng_uniform(void);
double rng_normal(void);
void *new_rows(const dtype *d, ptrdiff_t count);
void free_rows(const dtype *d, void *x);
void fill_random(const dtype *d, void *x, ptrdiff_t off, ptrdiff_t n, double scale, int ties, int masked);
enum { SOME_NEG_INF, ONLY_NEG_INF, POS_INF, POS_AND_NEG_INF, ONE_NAN, NAN_AND_INFS, TWO_POS_INF, ALL_EQUAL,
       N_KINDS };
void make_special(const dtype *d, void *s, ptrdiff_t n, int kind, ptrdiff_t pos);
/* a selection of n entries: about one in `sparsity` cleared (0: all set, -1: none set) */
uint8_t *new_selection(ptrdiff_t n, int sparsity);

/* ---- the groups, one file per part of the table ------------------------------ */

void check_rows_entry(const dtype *d);        /* check_kernels.c: rows */
void check_chunks(const dtype *d);             /* check_entries.c: chunk_stats + chunk_write, rows_where */
void check_rows_where(const dtype *d);
void check_columns(const dtype *d);
void check_row_stats(const dtype *d);
void check_backward(const dtype *d);
void check_weighted_gap(const dtype *d);       /* check_helpers.c */
void check_combine(const dtype *d);
void check_weighted_stats(const dtype *d);
void check_staged_rows(const dtype *d);
void check_loss_rows(const dtype *d);          /* check_losses.c */

#endif
