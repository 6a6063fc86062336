/* The kernels for AVX2 with FMA (x86-64-v3): 32-byte vectors, masked loads
 * and stores for the last partial vector of a row, the table-driven float32
 * exp (one vpermd reads its table), F16C conversions.  Chosen at run time
 * when the CPU has AVX2 and FMA but not AVX-512, or when it has AVX-512 and
 * these timed clearly faster at first use (core.c). */
#if defined(FASTSOFTMAX_X86_DISPATCH)
#include "isa_x86.h"
#include "core.h"

/* The table of the table-driven float32 exp (vexp.h): the mantissa bits of
 * 2**(j/8), j = 0..7, correctly rounded (tools/fit_exp.py), read by one
 * vpermd; vexp.h puts the exponent in front. */
static const uint32_t fs_exp2_eighths_f32[8] = {
    0x000000, 0x0b95c2, 0x1837f0, 0x25fed7,
    0x3504f3, 0x45672a, 0x5744fd, 0x6ac0c7,
};

FS_TARGET_PUSH("arch=x86-64-v3")
#define FS_ISA avx2
#define FS_VBYTES 32
#define FS_HAS_F16C 1
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
/* the table-driven float32 exp: one vpermd reads its 8 entries */
#define FS_EXP_TABLE_BITS_F32 3
#define FS_EXP_TABLE_LOOKUP_F32(idx) \
    ((FS_VU)_mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i *)fs_exp2_eighths_f32), (__m256i)(idx)))
#define FS_STREAM_F32(p, v) _mm256_stream_ps((p), (__m256)(v))
#define FS_STREAM_F64(p, v) _mm256_stream_pd((p), (__m256d)(v))
/* where= bytes to lanes: widen, then compare with 0 */
#define FS_SEL_LANES_F32(p) ((FS_VI)_mm256_cmpgt_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p))), \
    _mm256_setzero_si256()))
#define FS_SEL_LANES_F64(p) ({ int32_t w_; memcpy(&w_, (p), 4); \
    (FS_VI)_mm256_cmpgt_epi64(_mm256_cvtepu8_epi64(_mm_cvtsi32_si128(w_)), _mm256_setzero_si256()); })
#include "kernel_template.h"
FS_TARGET_POP
#else
typedef int fs_no_avx2_in_this_build;   /* ISO C wants something in a file */
#endif
