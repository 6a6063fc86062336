/* The kernels for AVX-512 (x86-64-v4): 64-byte vectors, masked loads and
 * stores for the last partial vector of a row, the table-driven float64 exp
 * (one vpermt2pd reads its table), F16C conversions.  Chosen at run time
 * when the CPU has AVX-512 F, DQ, VL and BW (core.c). */
#if defined(FASTSOFTMAX_X86_DISPATCH)
#include "isa_x86.h"
#include "core.h"

/* 2**(j/16) * 2**-600, j = 0..15, correctly rounded: the table of the
 * table-driven float64 exp (vexp.h), its 2**-600 undone by 2**(k + 600). */
static const double fs_exp2_sixteenths[16] = {
    0x1.0000000000000p-600, 0x1.0b5586cf9890fp-600, 0x1.172b83c7d517bp-600, 0x1.2387a6e756238p-600,
    0x1.306fe0a31b715p-600, 0x1.3dea64c123422p-600, 0x1.4bfdad5362a27p-600, 0x1.5ab07dd485429p-600,
    0x1.6a09e667f3bcdp-600, 0x1.7a11473eb0187p-600, 0x1.8ace5422aa0dbp-600, 0x1.9c49182a3f090p-600,
    0x1.ae89f995ad3adp-600, 0x1.c199bdd85529cp-600, 0x1.d5818dcfba487p-600, 0x1.ea4afa2a490dap-600};

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
#include "kernel_template.h"
FS_TARGET_POP
#else
typedef int fs_no_avx512_in_this_build;   /* ISO C wants something in a file */
#endif
