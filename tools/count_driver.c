/* Driver for tools/count_instructions.sh: one call of fs_rows_f32 / fs_rows_f64
 * (temperature 1) on seeded random data, so that an instruction counter can
 * measure the kernels.
 *
 *   count_driver DTYPE OP N ROWS FILL_ROWS [SEED]
 *     DTYPE      f32 | f64
 *     OP         softmax | log_softmax | logsumexp
 *     N          elements per row
 *     ROWS       rows passed to the kernel
 *     FILL_ROWS  rows allocated and filled (>= ROWS).  The script keeps this the
 *                same for both runs of a difference, so that generating the data
 *                costs the same instructions in both and cancels out.
 *
 * Values are N(0, 4) (mean 0, standard deviation 2) from splitmix64 + Box-Muller.
 * Works with both the 0.1 C API and the current one (same fs_rows_* /
 * fs_params_init_* signatures).  Prints the variant in use to stderr so the
 * script can check that FASTSOFTMAX_FORCE_ISA (or the CPU model an emulator
 * reports) gave the variant it meant to measure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "row_kernels.h"

static uint64_t rng_state;

static uint64_t splitmix64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* uniform in (0, 1) */
static double uniform(void) { return ((double)(splitmix64() >> 11) + 0.5) * 0x1p-53; }

static double normal(double sd)
{
    return sd * sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform());
}

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: %s f32|f64 softmax|log_softmax|logsumexp N ROWS FILL_ROWS [SEED]\n", argv[0]);
        return 2;
    }
    int f64 = strcmp(argv[1], "f64") == 0;
    int op = strcmp(argv[2], "softmax") == 0       ? FS_SOFTMAX
             : strcmp(argv[2], "log_softmax") == 0 ? FS_LOG_SOFTMAX
             : strcmp(argv[2], "logsumexp") == 0   ? FS_LOGSUMEXP
                                                   : -1;
    long n = atol(argv[3]), rows = atol(argv[4]), fill = atol(argv[5]);
    rng_state = argc > 6 ? strtoull(argv[6], NULL, 0) : 12345;
    if ((!f64 && strcmp(argv[1], "f32") != 0) || op < 0 || n < 1 || rows < 1 || fill < rows) {
        fprintf(stderr, "count_driver: bad arguments\n");
        return 2;
    }

    size_t total = (size_t)n * (size_t)fill, size = f64 ? sizeof(double) : sizeof(float);
    void *x = malloc(total * size), *out = malloc(total * size);
    if (!x || !out) return 3;
    for (size_t i = 0; i < total; i++) {
        double v = normal(2.0);
        if (f64) ((double *)x)[i] = v;
        else ((float *)x)[i] = (float)v;
    }

    fs_params p;
    double check;
    if (f64) {
        fs_params_init_f64(1.0, &p);
        fs_rows_f64(op, x, out, rows, n, &p);
        check = ((double *)out)[0];
    } else {
        fs_params_init_f32(1.0, &p);
        fs_rows_f32(op, x, out, rows, n, &p);
        check = ((float *)out)[0];
    }
    fprintf(stderr, "variant: %s\n", fs_simd_target());
    /* use the result so nothing can be dropped */
    return isnan(check) ? 1 : 0;
}
