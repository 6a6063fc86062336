/* The kernels for AVX-512 (x86-64-v4): 64-byte vectors, masked loads and
 * stores for the last partial vector of a row, the table-driven exp (one
 * permute reads its table, float32 and float64), F16C conversions.  Chosen
 * at run time when the CPU has AVX-512 F, DQ, VL and BW, unless the AVX2
 * kernels timed clearly faster at first use (core.c). */
#if defined(FASTSOFTMAX_X86_DISPATCH)
#include "isa_x86.h"
#include "core.h"

/* The tables of the table-driven exp (vexp.h): the mantissa bits of 2**(j/16),
 * j = 0..15, correctly rounded (tools/fit_exp.py), each read by one permute;
 * vexp.h puts the exponent in front. */
static const uint64_t fs_exp2_sixteenths_f64[16] = {
    0x0000000000000ull, 0x0b5586cf9890full, 0x172b83c7d517bull, 0x2387a6e756238ull,
    0x306fe0a31b715ull, 0x3dea64c123422ull, 0x4bfdad5362a27ull, 0x5ab07dd485429ull,
    0x6a09e667f3bcdull, 0x7a11473eb0187ull, 0x8ace5422aa0dbull, 0x9c49182a3f090ull,
    0xae89f995ad3adull, 0xc199bdd85529cull, 0xd5818dcfba487ull, 0xea4afa2a490daull,
};
static const uint32_t fs_exp2_sixteenths_f32[16] = {
    0x000000, 0x05aac3, 0x0b95c2, 0x11c3d3,
    0x1837f0, 0x1ef532, 0x25fed7, 0x2d583f,
    0x3504f3, 0x3d08a4, 0x45672a, 0x4e248c,
    0x5744fd, 0x60ccdf, 0x6ac0c7, 0x75257d,
};

FS_TARGET_PUSH("arch=x86-64-v4")
#define FS_ISA avx512
#define FS_VBYTES 64
#define FS_HAS_F16C 1
#define FS_HAS_AVX512 1
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
/* the table-driven exp: one vpermd reads the float32 table (16 entries, one
 * register), one vpermt2q the float64 table (16 entries, two registers) */
#define FS_EXP_TABLE_BITS_F32 4
#define FS_EXP_TABLE_LOOKUP_F32(idx) \
    ((FS_VU)_mm512_permutexvar_epi32((__m512i)(idx), _mm512_loadu_si512(fs_exp2_sixteenths_f32)))
#define FS_EXP_TABLE_LOOKUP_F64(idx) ((FS_VU)_mm512_permutex2var_epi64(_mm512_loadu_si512(fs_exp2_sixteenths_f64), \
    (__m512i)(idx), _mm512_loadu_si512(fs_exp2_sixteenths_f64 + 8)))
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
#include "kernel_template.h"
FS_TARGET_POP
#else
typedef int fs_no_avx512_in_this_build;   /* ISO C wants something in a file */
#endif
