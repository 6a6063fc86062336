/* One instruction-set variant of all kernels: vector types of FS_VBYTES bytes,
 * functions suffixed with FS_ISA, for float and double.
 * Included by row_kernels.c once per variant; no include guard on purpose. */

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

/* Loads and stores of a row's last partial vector: masked instructions where
 * the instruction set has them, a padded buffer otherwise. */
#if defined(FS_ISA_IS_AVX512)
#define FS_MASKED_LOAD_F32(p, n, pad) \
    ((FS_VR)_mm512_mask_loadu_ps(_mm512_set1_ps(pad), (__mmask16)((1u << (n)) - 1), (p)))
#define FS_MASKED_STORE_F32(p, n, v) _mm512_mask_storeu_ps((p), (__mmask16)((1u << (n)) - 1), (__m512)(v))
#define FS_MASKED_LOAD_F64(p, n, pad) \
    ((FS_VR)_mm512_mask_loadu_pd(_mm512_set1_pd(pad), (__mmask8)((1u << (n)) - 1), (p)))
#define FS_MASKED_STORE_F64(p, n, v) _mm512_mask_storeu_pd((p), (__mmask8)((1u << (n)) - 1), (__m512d)(v))
#define FS_ALL_SET_F32(m) (_mm512_movepi32_mask((__m512i)(m)) == 0xffff)
#define FS_ALL_SET_F64(m) (_mm512_movepi64_mask((__m512i)(m)) == 0xff)
#define FS_VMAX_F32(a, b) _mm512_max_ps((__m512)(a), (__m512)(b))
#define FS_VMAX_F64(a, b) _mm512_max_pd((__m512d)(a), (__m512d)(b))
#define FS_FMA_F32(a, b, c) ((FS_VR)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define FS_FMA_F64(a, b, c) ((FS_VR)_mm512_fmadd_pd((__m512d)(a), (__m512d)(b), (__m512d)(c)))
/* one vpermt2pd reads the 16-entry table of the float64 exp */
#define FS_EXP_TABLE_F64 1
#define FS_EXP_TABLE_LOOKUP_F64(idx) ((FS_VR)_mm512_permutex2var_pd(_mm512_loadu_pd(fs_exp2_sixteenths), \
    (__m512i)(idx), _mm512_loadu_pd(fs_exp2_sixteenths + 8)))
#define FS_STREAM_F32(p, v) _mm512_stream_ps((p), (__m512)(v))
#define FS_STREAM_F64(p, v) _mm512_stream_pd((p), (__m512d)(v))
/* where= bytes to lanes: one byte test into a mask register, spread to lanes */
#define FS_SEL_LANES_F32(p) ({ __m128i b_ = _mm_loadu_si128((const __m128i *)(p)); \
    (FS_VI)_mm512_movm_epi32(_mm_test_epi8_mask(b_, b_)); })
#define FS_SEL_LANES_F64(p) ({ __m128i b_ = _mm_loadl_epi64((const __m128i *)(p)); \
    (FS_VI)_mm512_movm_epi64((__mmask8)_mm_test_epi8_mask(b_, b_)); })
/* x where selected, -inf elsewhere: a masked load straight from the byte test */
#define FS_LOAD_SEL_F32(x, sel) ({ __m128i b_ = _mm_loadu_si128((const __m128i *)(sel)); \
    (FS_VR)_mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), _mm_test_epi8_mask(b_, b_), (x)); })
#define FS_LOAD_SEL_F64(x, sel) ({ __m128i b_ = _mm_loadl_epi64((const __m128i *)(sel)); \
    (FS_VR)_mm512_mask_loadu_pd(_mm512_set1_pd(-INFINITY), (__mmask8)_mm_test_epi8_mask(b_, b_), (x)); })
#elif defined(FS_ISA_IS_AVX2)
#define FS_TAIL_MASK_F32(n) ((FS_VI){0, 1, 2, 3, 4, 5, 6, 7} < (FS_VI){0} + (int32_t)(n))
#define FS_TAIL_MASK_F64(n) ((FS_VI){0, 1, 2, 3} < (FS_VI){0} + (int64_t)(n))
#define FS_MASKED_LOAD_F32(p, n, pad) FS_NAME(vselect)(FS_TAIL_MASK_F32(n), \
    (FS_VR)_mm256_maskload_ps((p), (__m256i)FS_TAIL_MASK_F32(n)), FS_NAME(vbroadcast)(pad))
#define FS_MASKED_STORE_F32(p, n, v) _mm256_maskstore_ps((p), (__m256i)FS_TAIL_MASK_F32(n), (__m256)(v))
#define FS_MASKED_LOAD_F64(p, n, pad) FS_NAME(vselect)(FS_TAIL_MASK_F64(n), \
    (FS_VR)_mm256_maskload_pd((p), (__m256i)FS_TAIL_MASK_F64(n)), FS_NAME(vbroadcast)(pad))
#define FS_MASKED_STORE_F64(p, n, v) _mm256_maskstore_pd((p), (__m256i)FS_TAIL_MASK_F64(n), (__m256d)(v))
#define FS_ALL_SET_F32(m) (_mm256_movemask_ps((__m256)(m)) == 0xff)
#define FS_ALL_SET_F64(m) (_mm256_movemask_pd((__m256d)(m)) == 0xf)
#define FS_VMAX_F32(a, b) _mm256_max_ps((__m256)(a), (__m256)(b))
#define FS_VMAX_F64(a, b) _mm256_max_pd((__m256d)(a), (__m256d)(b))
#define FS_FMA_F32(a, b, c) ((FS_VR)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define FS_FMA_F64(a, b, c) ((FS_VR)_mm256_fmadd_pd((__m256d)(a), (__m256d)(b), (__m256d)(c)))
#define FS_STREAM_F32(p, v) _mm256_stream_ps((p), (__m256)(v))
#define FS_STREAM_F64(p, v) _mm256_stream_pd((p), (__m256d)(v))
/* where= bytes to lanes: widen, then compare with 0 */
#define FS_SEL_LANES_F32(p) ((FS_VI)_mm256_cmpgt_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p))), \
    _mm256_setzero_si256()))
#define FS_SEL_LANES_F64(p) ({ int32_t w_; memcpy(&w_, (p), 4); \
    (FS_VI)_mm256_cmpgt_epi64(_mm256_cvtepu8_epi64(_mm_cvtsi32_si128(w_)), _mm256_setzero_si256()); })
#elif defined(__SSE2__)
#define FS_VMAX_F32(a, b) _mm_max_ps((__m128)(a), (__m128)(b))
#define FS_VMAX_F64(a, b) _mm_max_pd((__m128d)(a), (__m128d)(b))
#define FS_ALL_SET_F32(m) (_mm_movemask_ps((__m128)(m)) == 0xf)
#define FS_ALL_SET_F64(m) (_mm_movemask_pd((__m128d)(m)) == 0x3)
#define FS_STREAM_F32(p, v) _mm_stream_ps((p), (__m128)(v))
#define FS_STREAM_F64(p, v) _mm_stream_pd((p), (__m128d)(v))
#define FS_SEL_LANES_F32(p) ({ int32_t w_; memcpy(&w_, (p), 4); __m128i z_ = _mm_setzero_si128(); \
    (FS_VI)_mm_cmpgt_epi32(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(w_), z_), z_), z_); })
#elif defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
/* NEON always has a fused multiply-add; the generic expression contracts to it */
#define FS_FMA_F32(a, b, c) ((a) * (b) + (c))
#define FS_FMA_F64(a, b, c) ((a) * (b) + (c))
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
#include "row_kernels_impl.h"   /* undefines its parameters */

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
#ifdef FS_EXP_TABLE_F64
#define FS_EXP_TABLE 1
#define FS_EXP_TABLE_LOOKUP FS_EXP_TABLE_LOOKUP_F64
/* 1.5 * 2**52 + 16 * (bias + shift): low bits of shifted read 16 (k + bias + shift) + j */
#define FS_EXP_TABLE_MAGIC (6755399441055744.0 + 16.0 * (1023.0 + 600.0))
/* p(r) = 1 + r q(r) interpolating exp at Chebyshev nodes of |r| <= ln2/32 (tools/fit_exp.py) */
#define FS_EXP_TABLE_POLY {0x1.6c17ed4cc4834p-10, 0x1.11123cf1dba3ap-7, 0x1.55555554e9468p-5, \
                           0x1.555555547d378p-3, 0x1.0000000000001p-1, 0x1.0000000000003p+0}
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
#include "row_kernels_impl.h"   /* undefines its parameters */

#undef FS_T
#undef FS_HALF_LO
#undef FS_HALF_HI
#undef FS_MASKED_LOAD_F32
#undef FS_MASKED_STORE_F32
#undef FS_MASKED_LOAD_F64
#undef FS_MASKED_STORE_F64
#undef FS_TAIL_MASK_F32
#undef FS_TAIL_MASK_F64
#undef FS_VMAX_F32
#undef FS_VMAX_F64
#undef FS_FMA_F32
#undef FS_FMA_F64
#undef FS_EXP_TABLE_F64
#undef FS_EXP_TABLE_LOOKUP_F64
#undef FS_STREAM_F32
#undef FS_STREAM_F64
#undef FS_SEL_LANES_F32
#undef FS_SEL_LANES_F64
#undef FS_LOAD_SEL_F32
#undef FS_LOAD_SEL_F64
#undef FS_TREE2
#undef FS_TREE4
#undef FS_TREE8
#undef FS_TREE16
#undef FS_TREE_F32
#undef FS_TREE_F64
#undef FS_TRANSPOSE_F32
#undef FS_TRANSPOSE_F64
#undef FS_ALL_SET_F32
#undef FS_ALL_SET_F64
