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

#endif
