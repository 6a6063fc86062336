/* Nanoseconds per element of each pass of the float32 softmax kernels (max,
 * exp+sum with the exps stored, scale) on rows of n elements, for every
 * instruction-set variant this CPU runs.  The passes are the kernels' own
 * static functions: this file includes row_kernels.c.  Each pass runs over
 * one row `rows` times in a row, so the figures are for data in L1, which
 * is where the kernels run their second and third passes.
 *
 *   cc -O3 -ffp-contract=fast -fno-math-errno -Wno-psabi -DFASTSOFTMAX_X86_DISPATCH \
 *      -Isrc/fastsoftmax/csrc tools/pass_timing.c -lm -o /tmp/pass_timing
 *   taskset -c 0 /tmp/pass_timing [rows] [n]
 */
#include "../src/fastsoftmax/csrc/row_kernels.c"
#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define PASSES(ISA)                                                                        \
    static void passes_##ISA(const float *x, float *out, long rows, long n, const fs_params *p, \
                             double t[3])                                                  \
    {                                                                                      \
        float m[4096];                                                                     \
        fs_stats s[4096];                                                                  \
        double t0 = now();                                                                 \
        for (long r = 0; r < rows; r++) {                                                  \
            int nan;                                                                       \
            m[r] = fs_max_pass_f32_##ISA(x, n, &nan);                                      \
            if (nan) m[r] = 0;                                                             \
        }                                                                                  \
        double t1 = now();                                                                 \
        for (long r = 0; r < rows; r++) {                                                  \
            fs_stats_init(&s[r]);                                                          \
            fs_exp_sum_pass_f32_##ISA(FS_SOFTMAX, x, out, 1, n, m[r], p, 1, &s[r], NULL, 0); \
        }                                                                                  \
        double t2 = now();                                                                 \
        for (long r = 0; r < rows; r++)                                                    \
            fs_map_pass_f32_##ISA(FS_MAP_SCALE, out, out, n, 0, (float)(1.0 / s[r].rest), p, 1, 0); \
        double t3 = now();                                                                 \
        t[0] += t1 - t0; t[1] += t2 - t1; t[2] += t3 - t2;                                 \
    }

#if defined(FASTSOFTMAX_X86_DISPATCH)
FS_TARGET_PUSH("arch=x86-64-v4")
PASSES(avx512)
FS_TARGET_POP
FS_TARGET_PUSH("arch=x86-64-v3")
PASSES(avx2)
FS_TARGET_POP
#endif
PASSES(baseline)

int main(int argc, char **argv)
{
    long rows = argc > 1 ? atol(argv[1]) : 256, n = argc > 2 ? atol(argv[2]) : 1000;
    if (rows > 4096) rows = 4096;
    float *x = malloc(sizeof(float) * rows * n), *out = malloc(sizeof(float) * rows * n);
    unsigned s = 12345;
    for (long i = 0; i < rows * n; i++) { s = s * 1103515245u + 12345u; x[i] = ((s >> 8) / 16777216.0f - 0.5f) * 16; }
    fs_params p;
    fs_params_init(FS_F32, 1.0, &p);
    struct { const char *name; void (*run)(const float *, float *, long, long, const fs_params *, double *); int level; } v[] = {
#if defined(FASTSOFTMAX_X86_DISPATCH)
        {"avx512", passes_avx512, FS_ISA_AVX512}, {"avx2", passes_avx2, FS_ISA_AVX2},
#endif
        {"baseline", passes_baseline, FS_ISA_BASELINE}};
    printf("float32 softmax passes, %ld rows x %ld, ns per element (median of 201 runs)\n", rows, n);
    for (unsigned k = 0; k < sizeof v / sizeof v[0]; k++) {
        if (v[k].level > fs_best_isa()) continue;
        static double samples[3][201];
        for (int it = 0; it < 201; it++) {
            double t[3] = {0, 0, 0};
            v[k].run(x, out, rows, n, &p, t);
            for (int j = 0; j < 3; j++) samples[j][it] = t[j] * 1e9 / (rows * n);
        }
        double med[3];
        for (int j = 0; j < 3; j++) {   /* median by partial selection sort */
            for (int a = 0; a <= 100; a++)
                for (int b = a + 1; b < 201; b++)
                    if (samples[j][b] < samples[j][a]) { double tmp = samples[j][a]; samples[j][a] = samples[j][b]; samples[j][b] = tmp; }
            med[j] = samples[j][100];
        }
        printf("  %-8s max %.3f  exp+sum %.3f  scale %.3f  total %.3f\n", v[k].name, med[0], med[1], med[2],
               med[0] + med[1] + med[2]);
    }
    return 0;
}
