/* Portable SIMD vocabulary on GCC/Clang vector extensions.
 *
 * Kernels are written once against FS_VR/FS_VI (a vector of the row dtype and
 * the matching integer vector) and compiled once per instruction-set variant
 * with the vector width that suits it; see kernel_template.h and isa_*.c.
 */
#ifndef FASTSOFTMAX_SIMD_H
#define FASTSOFTMAX_SIMD_H

#include <stdint.h>
#include <string.h>

#if !defined(__GNUC__)
#error "fastsoftmax's kernels need GCC 12 or newer, or Clang (their vector extensions); MSVC is not supported"
#elif !defined(__clang__) && __GNUC__ < 12
#error "fastsoftmax's kernels need GCC 12 or newer (for __builtin_shufflevector), or Clang"
#endif

#define FS_INLINE static inline __attribute__((always_inline))
#define FS_GLUE_(a, b) a##b
#define FS_GLUE(a, b) FS_GLUE_(a, b)

/* v, rounded: an empty asm the compiler cannot see through, so a product
 * that made v is never fused (-ffp-contract=fast) into the addition that
 * uses v next.  Whether GCC fuses depends on the code around an inlined
 * copy (the prefetching long-row pass fused the exp's last multiplication
 * into the running sum, the chunk entry did not: 1 ulp of the sum between 1
 * and 2 threads); with the barrier every copy sums the same rounded terms. */
#if defined(__x86_64__) || defined(__i386__)
#define FS_ROUNDED(v) __asm__("" : "+v"(v))
#elif defined(__aarch64__)
#define FS_ROUNDED(v) __asm__("" : "+w"(v))
#else
#define FS_ROUNDED(v) __asm__("" : "+m"(v))
#endif

#endif
