/* All the kernels of one instruction set, for float and double: vector types
 * of FS_VBYTES bytes, functions suffixed with FS_ISA.  Included once by each
 * isa_*.c file, after it has defined FS_ISA, FS_VBYTES and its vector
 * vocabulary: the optional per-dtype capabilities FS_MASKED_LOAD_F32 /
 * FS_MASKED_STORE_F32, FS_VMAX_F32, FS_FMA_F32, FS_STREAM_F32,
 * FS_SEL_LANES_F32, FS_LOAD_SEL_F32, FS_ALL_SET_F32 (and _F64 alike),
 * FS_EXP_TABLE_BITS_F32 / FS_EXP_TABLE_LOOKUP_F32 and FS_EXP_TABLE_LOOKUP_F64
 * (the table-driven exp: a permute reading the mantissas of 2**(j/N) from a
 * register, N = 2**bits; 16 entries for float64), and FS_HAS_F16C /
 * FS_HAS_AVX512 for the 16-bit conversions.  Whatever is not defined falls
 * back to generic vector code.  Each variant is its own translation unit, so
 * nothing here is undefined for the next one; dtype_kernels.h undefines its
 * per-dtype parameters between float and double. */
#ifndef FASTSOFTMAX_KERNEL_TEMPLATE_H
#define FASTSOFTMAX_KERNEL_TEMPLATE_H

#include "core.h"
#include "transpose.h"

#define FS_T(name) FS_GLUE(FS_GLUE(fs_, name), FS_GLUE(_, FS_ISA))

typedef float FS_T(vf32) __attribute__((vector_size(FS_VBYTES)));
typedef int32_t FS_T(vi32) __attribute__((vector_size(FS_VBYTES)));
typedef uint32_t FS_T(vu32) __attribute__((vector_size(FS_VBYTES)));
typedef double FS_T(vf64) __attribute__((vector_size(FS_VBYTES)));
typedef int64_t FS_T(vi64) __attribute__((vector_size(FS_VBYTES)));
typedef uint64_t FS_T(vu64) __attribute__((vector_size(FS_VBYTES)));
typedef float FS_T(vf32half) __attribute__((vector_size(FS_VBYTES / 2)));

/* Sums of float32 exps are accumulated in double lanes: each half of a float
 * vector widens to one double vector. */
#if FS_VBYTES == 64
#define FS_HALF_LO(v) __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
#define FS_HALF_HI(v) __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15)
#elif FS_VBYTES == 32
#define FS_HALF_LO(v) __builtin_shufflevector(v, v, 0, 1, 2, 3)
#define FS_HALF_HI(v) __builtin_shufflevector(v, v, 4, 5, 6, 7)
#else
#define FS_HALF_LO(v) __builtin_shufflevector(v, v, 0, 1)
#define FS_HALF_HI(v) __builtin_shufflevector(v, v, 2, 3)
#endif

/* Tree reductions over the lanes of a vector: value of lane 0 after folding
 * halves, quarters, ... together with OP(a, b). */
#define FS_TREE2(v, OP) ({ __typeof__(v) t_ = (v);                                      \
    t_ = OP(t_, __builtin_shufflevector(t_, t_, 1, 0)); t_[0]; })
#define FS_TREE4(v, OP) ({ __typeof__(v) t_ = (v);                                      \
    t_ = OP(t_, __builtin_shufflevector(t_, t_, 2, 3, 0, 1));                           \
    t_ = OP(t_, __builtin_shufflevector(t_, t_, 1, 0, 3, 2)); t_[0]; })
#define FS_TREE8(v, OP) ({ __typeof__(v) t_ = (v);                                      \
    t_ = OP(t_, __builtin_shufflevector(t_, t_, 4, 5, 6, 7, 0, 1, 2, 3));               \
    t_ = OP(t_, __builtin_shufflevector(t_, t_, 2, 3, 0, 1, 6, 7, 4, 5));               \
    t_ = OP(t_, __builtin_shufflevector(t_, t_, 1, 0, 3, 2, 5, 4, 7, 6)); t_[0]; })
#define FS_TREE16(v, OP) ({ __typeof__(v) t_ = (v);                                     \
    t_ = OP(t_, __builtin_shufflevector(t_, t_, 8, 9, 10, 11, 12, 13, 14, 15,           \
                                        0, 1, 2, 3, 4, 5, 6, 7));                       \
    t_ = OP(t_, __builtin_shufflevector(t_, t_, 4, 5, 6, 7, 0, 1, 2, 3,                 \
                                        12, 13, 14, 15, 8, 9, 10, 11));                 \
    t_ = OP(t_, __builtin_shufflevector(t_, t_, 2, 3, 0, 1, 6, 7, 4, 5,                 \
                                        10, 11, 8, 9, 14, 15, 12, 13));                 \
    t_ = OP(t_, __builtin_shufflevector(t_, t_, 1, 0, 3, 2, 5, 4, 7, 6,                 \
                                        9, 8, 11, 10, 13, 12, 15, 14)); t_[0]; })
#if FS_VBYTES == 64
#define FS_TREE_F32 FS_TREE16
#define FS_TREE_F64 FS_TREE8
#define FS_TRANSPOSE_F32 FS_TRANSPOSE16
#define FS_TRANSPOSE_F64 FS_TRANSPOSE8
#elif FS_VBYTES == 32
#define FS_TREE_F32 FS_TREE8
#define FS_TREE_F64 FS_TREE4
#define FS_TRANSPOSE_F32 FS_TRANSPOSE8
#define FS_TRANSPOSE_F64 FS_TRANSPOSE4
#else
#define FS_TREE_F32 FS_TREE4
#define FS_TREE_F64 FS_TREE2
#define FS_TRANSPOSE_F32 FS_TRANSPOSE4
#define FS_TRANSPOSE_F64 FS_TRANSPOSE2
#endif

/* ---- float32 ---- */
#define FS_R float
#define FS_DTYPE FS_F32
#define FS_VR FS_T(vf32)
#define FS_VI FS_T(vi32)
#define FS_VU FS_T(vu32)
#define FS_VACC FS_T(vf64)
#define FS_ACCUMULATE(lo, hi, v)                                            \
    ((lo) += __builtin_convertvector(FS_HALF_LO(v), FS_VACC),                \
     (hi) += __builtin_convertvector(FS_HALF_HI(v), FS_VACC))
/* Block sums (few float terms per lane) are widened into double lanes, which
 * are summed once per row. */
#define FS_BLOCK_FOLD(lo, hi, v, s) FS_ACCUMULATE(lo, hi, v)
#define FS_ROW_FOLD(lo, hi, s) \
    ((lo) += (hi), fs_neumaier_add(&(s)->rest, &(s)->rest_comp, FS_TREE_F64(lo, FS_ADD_OP)))
/* double lanes of a column block: the low half of the float lanes in lo */
#define FS_COLUMN_SUMS(lo, hi, dst) do {                                      \
    for (ptrdiff_t l_ = 0; l_ < FS_W / 2; l_++) {                             \
        (dst)[l_] = (lo)[l_];                                                 \
        (dst)[l_ + FS_W / 2] = (hi)[l_];                                      \
    } } while (0)
#define FS_NAME(name) FS_GLUE(FS_GLUE(fs_, name), FS_GLUE(_f32_, FS_ISA))
#ifdef FS_MASKED_LOAD_F32
#define FS_MASKED_LOAD FS_MASKED_LOAD_F32
#define FS_MASKED_STORE FS_MASKED_STORE_F32
#endif
#ifdef FS_VMAX_F32
#define FS_VMAX_INTRINSIC FS_VMAX_F32
#endif
#ifdef FS_FMA_F32
#define FS_FMA FS_FMA_F32
#endif
#ifdef FS_STREAM_F32
#define FS_STREAM FS_STREAM_F32
#endif
#ifdef FS_SEL_LANES_F32
#define FS_SEL_LANES FS_SEL_LANES_F32
#endif
#ifdef FS_LOAD_SEL_F32
#define FS_LOAD_SEL FS_LOAD_SEL_F32
#endif
#define FS_TREE FS_TREE_F32
#define FS_TRANSPOSE FS_TRANSPOSE_F32
#ifdef FS_ALL_SET_F32
#define FS_ALL_SET FS_ALL_SET_F32
#endif
/* shifted = t + MAGIC rounds t to an integer k, and its low bits, moved into
 * the exponent field, read 2**(k + EXP_SHIFT). */
#define FS_EXP_MAGIC (12582912.0f + 127.0f + 64.0f)   /* 1.5 * 2**23 + bias + shift */
#define FS_EXP_MANT_BITS 23
/* minimax fit of exp on [-ln2/2, ln2/2] with exp(0) == 1 exactly (tools/fit_exp.py),
 * times 2**-64 */
#define FS_EXP_POLY {0x1.0fa834p-7f * 0x1p-64f, 0x1.573a54p-5f * 0x1p-64f, 0x1.555a6ap-3f * 0x1p-64f, \
                     0x1.fffdc6p-2f * 0x1p-64f, 0x1.fffff6p-1f * 0x1p-64f, 0x1p-64f}
#ifdef FS_EXP_TABLE_LOOKUP_F32
/* the table-driven exp (vexp.h): N = 2**FS_EXP_TABLE_BITS_F32 entries */
#define FS_EXP_TABLE 1
#define FS_EXP_TABLE_BITS FS_EXP_TABLE_BITS_F32
#define FS_EXP_TABLE_SIZE (1 << FS_EXP_TABLE_BITS_F32)
#define FS_EXP_TABLE_LOOKUP FS_EXP_TABLE_LOOKUP_F32
/* 1.5 * 2**23 + N * (bias + shift): low bits of shifted read N (k + bias + shift) + j */
#define FS_EXP_TABLE_MAGIC (12582912.0f + FS_EXP_TABLE_SIZE * (127.0f + 64.0f))
/* p(r) = 1 + r q(r), minimax on |r| <= ln2 / 2N (tools/fit_exp.py), times 2**-64 */
#if FS_EXP_TABLE_BITS_F32 == 4
#define FS_EXP_TABLE_POLY {0x1.55523ap-3f * 0x1p-64f, 0x1.000220p-1f * 0x1p-64f, 0x1p-64f, 0x1p-64f}
#elif FS_EXP_TABLE_BITS_F32 == 3
#define FS_EXP_TABLE_POLY {0x1.5548eap-3f * 0x1p-64f, 0x1.00087ep-1f * 0x1p-64f, 0x1p-64f, 0x1p-64f}
#else
#error "the float32 table-driven exp has polynomials for tables of 8 and 16 entries"
#endif
#endif
#include "dtype_kernels.h"   /* undefines its parameters */

/* ---- float64 ---- */
#define FS_R double
#define FS_DTYPE FS_F64
#define FS_VR FS_T(vf64)
#define FS_VI FS_T(vi64)
#define FS_VU FS_T(vu64)
#define FS_VACC FS_T(vf64)
#define FS_ACCUMULATE(lo, hi, v) ((void)(hi), (lo) += (v))
/* Block sums go into a compensated scalar sum: double lanes alone would
 * let the error grow with the row length. */
#define FS_BLOCK_FOLD(lo, hi, v, s) fs_neumaier_add(&(s)->rest, &(s)->rest_comp, FS_TREE_F64(v, FS_ADD_OP))
#define FS_ROW_FOLD(lo, hi, s) ((void)(lo), (void)(hi))
#define FS_COLUMN_SUMS(lo, hi, dst) do {                                      \
    for (ptrdiff_t l_ = 0; l_ < FS_W; l_++) (dst)[l_] = (lo)[l_];             \
    } while (0)
#define FS_NAME(name) FS_GLUE(FS_GLUE(fs_, name), FS_GLUE(_f64_, FS_ISA))
#ifdef FS_MASKED_LOAD_F64
#define FS_MASKED_LOAD FS_MASKED_LOAD_F64
#define FS_MASKED_STORE FS_MASKED_STORE_F64
#endif
#ifdef FS_VMAX_F64
#define FS_VMAX_INTRINSIC FS_VMAX_F64
#endif
#ifdef FS_FMA_F64
#define FS_FMA FS_FMA_F64
#endif
#ifdef FS_STREAM_F64
#define FS_STREAM FS_STREAM_F64
#endif
#ifdef FS_SEL_LANES_F64
#define FS_SEL_LANES FS_SEL_LANES_F64
#endif
#ifdef FS_LOAD_SEL_F64
#define FS_LOAD_SEL FS_LOAD_SEL_F64
#endif
#define FS_TREE FS_TREE_F64
#define FS_TRANSPOSE FS_TRANSPOSE_F64
#ifdef FS_EXP_TABLE_LOOKUP_F64
#define FS_EXP_TABLE 1
#define FS_EXP_TABLE_BITS 4
#define FS_EXP_TABLE_SIZE 16
#define FS_EXP_TABLE_LOOKUP FS_EXP_TABLE_LOOKUP_F64
/* 1.5 * 2**52 + 16 * (bias + shift): low bits of shifted read 16 (k + bias + shift) + j */
#define FS_EXP_TABLE_MAGIC (6755399441055744.0 + 16.0 * (1023.0 + 600.0))
/* p(r) = 1 + r q(r) interpolating exp at Chebyshev nodes of |r| <= ln2/32 (tools/fit_exp.py),
 * times 2**-600 */
#define FS_EXP_TABLE_POLY {0x1.6c17ed4cc4834p-10 * 0x1p-600, 0x1.11123cf1dba3ap-7 * 0x1p-600,         \
                           0x1.55555554e9468p-5 * 0x1p-600, 0x1.555555547d378p-3 * 0x1p-600,          \
                           0x1.0000000000001p-1 * 0x1p-600, 0x1.0000000000003p+0 * 0x1p-600, 0x1p-600}
#endif
#ifdef FS_ALL_SET_F64
#define FS_ALL_SET FS_ALL_SET_F64
#endif
#define FS_EXP_MAGIC (6755399441055744.0 + 1023.0 + 600.0)  /* 1.5 * 2**52 + bias + shift */
#define FS_EXP_MANT_BITS 52
/* Chebyshev fit of exp on [-ln2/2, ln2/2] (error 2e-17) with exp(0) == 1
 * exactly, degree 11, times 2**-600 */
#define FS_EXP_POLY {0x1.af52906239de4p-26 * 0x1p-600, 0x1.28a6924913659p-22 * 0x1p-600,      \
                     0x1.71ddffef9e7b1p-19 * 0x1p-600, 0x1.a019a2b5a03cap-16 * 0x1p-600,      \
                     0x1.a01a01aca0134p-13 * 0x1p-600, 0x1.6c16c18071d1ep-10 * 0x1p-600,      \
                     0x1.111111110ff87p-7 * 0x1p-600, 0x1.5555555551c52p-5 * 0x1p-600,        \
                     0x1.5555555555557p-3 * 0x1p-600, 0x1.0000000000006p-1 * 0x1p-600,        \
                     0x1p-600, 0x1p-600}
#include "dtype_kernels.h"   /* undefines its parameters */

#endif
