/* Portable SIMD vocabulary on GCC/Clang vector extensions.
 *
 * Vectors are 32 bytes: one AVX2 register, two SSE2/NEON registers.  The same
 * source is compiled once per target by the multiversioning in row_kernels.c,
 * so a plain baseline build and an AVX2/FMA clone share every line of code.
 */
#ifndef FASTSOFTMAX_SIMD_H
#define FASTSOFTMAX_SIMD_H

#include <stdint.h>
#include <string.h>

#if !defined(__GNUC__)
#error "fastsoftmax's kernels need GCC or Clang vector extensions (on Windows, build with clang-cl)"
#endif

#define FS_INLINE static inline __attribute__((always_inline))

typedef float fs_vf32 __attribute__((vector_size(32)));
typedef int32_t fs_vi32 __attribute__((vector_size(32)));
typedef uint32_t fs_vu32 __attribute__((vector_size(32)));
typedef double fs_vf64 __attribute__((vector_size(32)));
typedef int64_t fs_vi64 __attribute__((vector_size(32)));
typedef uint64_t fs_vu64 __attribute__((vector_size(32)));
typedef float fs_vf32_half __attribute__((vector_size(16)));

/* Sums of exponentials are always accumulated in double lanes. */
typedef fs_vf64 fs_vacc;

FS_INLINE double fs_vacc_hsum(fs_vacc a) { return (a[0] + a[1]) + (a[2] + a[3]); }

#endif
