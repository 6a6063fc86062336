/* Nanoseconds per element of the passes of the row kernels, for every
 * instruction-set variant this build and CPU have, through the kernel table
 * (row_kernels.h) only, so the tool builds whatever the kernels' files are:
 *
 *   stats      chunk_stats: the maximum, then the exp-sum (passes 1 and 2)
 *   row_stats  row_stats with the exps kept (passes 1 and 2, storing)
 *   write      chunk_write of softmax: the exps again, times 1/S (pass 3)
 *   softmax, log_softmax, logsumexp   whole rows through `rows`
 *
 * Each entry runs over the same `rows` rows of n elements `repeats` times;
 * the median is printed.  With rows * n small the figures are for data in
 * L1/L2, which is where the kernels run their second and third passes.
 *
 *   cc -O3 -ffp-contract=fast -fno-math-errno -Wno-psabi -DFASTSOFTMAX_X86_DISPATCH \
 *      -Isrc/fastsoftmax/csrc tools/pass_timing.c src/fastsoftmax/csrc/*.c -lm -o /tmp/pass_timing
 *   taskset -c 0 /tmp/pass_timing [rows] [n] [repeats]
 *
 * Output: a header line, then one line per variant and dtype:
 *   "  <variant> <dtype> <name> <ns> <name> <ns> ..." */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "row_kernels.h"

enum { STATS, ROW_STATS, WRITE, SOFTMAX, LOG_SOFTMAX, LOGSUMEXP, N_TIMES };
static const char *const TIME_NAMES[N_TIMES] = {"stats", "row_stats", "write", "softmax", "log_softmax", "logsumexp"};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Seconds of one run of `what` over the rows. */
static double run_once(int what, const fs_kernels *k, const char *x, char *out, long rows, long n, size_t size,
                       const fs_params *p)
{
    double t0 = now();
    if (what >= SOFTMAX) {
        k->rows(what - SOFTMAX + FS_SOFTMAX, x, out, rows, n, p, 0);
        return now() - t0;
    }
    double seconds = 0;
    for (long r = 0; r < rows; r++) {
        const char *xr = x + (size_t)(r * n) * size;
        char *outr = out + (size_t)(r * n) * size;
        fs_stats s;
        fs_row_result res;
        if (what == STATS) {
            k->chunk_stats(FS_SOFTMAX, xr, NULL, n, p, &s);
        } else if (what == ROW_STATS) {
            k->row_stats(xr, NULL, n, p, outr, &res);
        } else {
            /* only the write is timed: the statistics come first, untimed */
            seconds += now() - t0;
            k->chunk_stats(FS_SOFTMAX, xr, NULL, n, p, &s);
            fs_row_finish(FS_SOFTMAX, &s, n, p, &res);
            t0 = now();
            k->chunk_write(FS_SOFTMAX, xr, NULL, outr, n, p, &res, 0);
        }
    }
    return seconds + (now() - t0);
}

int main(int argc, char **argv)
{
    const long rows = argc > 1 ? atol(argv[1]) : 256, n = argc > 2 ? atol(argv[2]) : 1000;
    const int repeats = argc > 3 ? atoi(argv[3]) : 201;
    if (rows < 1 || n < 1 || repeats < 1 || argc > 4) {
        fprintf(stderr, "usage: %s [rows >= 1] [n >= 1] [repeats >= 1]\n", argv[0]);
        return 2;
    }
    static const char *const isas[] = {"avx512", "avx2", "baseline"};
    const int dtypes[] = {FS_F32, FS_F64};
    double *samples = malloc(sizeof(double) * (size_t)repeats);
    char *x = malloc(sizeof(double) * (size_t)(rows * n)), *out = malloc(sizeof(double) * (size_t)(rows * n));
    if (!samples || !x || !out) return 3;
    printf("row kernels, %ld rows x %ld, ns per element (median of %d runs)\n", rows, n, repeats);
    for (size_t v = 0; v < sizeof isas / sizeof isas[0]; v++) {
        if (fs_use_isa(isas[v]) != 0) continue;
        for (int j = 0; j < 2; j++) {
            const int dtype = dtypes[j];
            const size_t size = dtype == FS_F32 ? sizeof(float) : sizeof(double);
            unsigned seed = 12345;
            for (long i = 0; i < rows * n; i++) {
                seed = seed * 1103515245u + 12345u;
                const double value = ((seed >> 8) / 16777216.0 - 0.5) * 16;
                if (dtype == FS_F32) ((float *)x)[i] = (float)value;
                else ((double *)x)[i] = value;
            }
            fs_params p;
            fs_params_init(dtype, 1.0, &p);
            const fs_kernels *k = fs_kernels_for(dtype);
            printf("  %-8s %s", isas[v], dtype == FS_F32 ? "float32" : "float64");
            for (int what = 0; what < N_TIMES; what++) {
                for (int it = 0; it < repeats; it++)
                    samples[it] = run_once(what, k, x, out, rows, n, size, &p) * 1e9 / (double)(rows * n);
                qsort(samples, (size_t)repeats, sizeof(double), by_value);
                printf("  %s %.3f", TIME_NAMES[what], samples[repeats / 2]);
            }
            printf("\n");
        }
    }
    fs_use_isa("best");
    free(samples); free(x); free(out);
    return 0;
}
