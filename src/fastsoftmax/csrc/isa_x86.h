/* What the x86-64 variants (isa_avx512.c, isa_avx2.c) share: the intrinsics,
 * and the pragmas that compile a whole file for one instruction set.
 *
 * A target pragma rather than a per-function attribute, so that the inline
 * helpers are compiled for that instruction set too (otherwise their vector
 * code is lowered for the baseline before it is inlined); and a pragma
 * rather than per-file compiler flags, so that every file of the kernels
 * builds with the same flags (setup.py, tools/check_kernels.sh).  setup.py
 * defines FASTSOFTMAX_X86_DISPATCH only where it saw this work; elsewhere
 * these files compile to nothing. */
#ifndef FASTSOFTMAX_ISA_X86_H
#define FASTSOFTMAX_ISA_X86_H

#include <immintrin.h>

#define FS_STR_(x) #x
#define FS_STR(x) FS_STR_(x)
#if defined(__clang__)
#define FS_TARGET_PUSH(isa) _Pragma(FS_STR(clang attribute push(__attribute__((target(isa))), apply_to = function)))
#define FS_TARGET_POP _Pragma("clang attribute pop")
#else
#define FS_TARGET_PUSH(isa) _Pragma("GCC push_options") _Pragma(FS_STR(GCC target(isa)))
#define FS_TARGET_POP _Pragma("GCC pop_options")
#endif

#endif
