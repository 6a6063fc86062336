/* The portable baseline kernels: 16-byte vectors, what SSE2 and NEON
 * registers hold, so no helper passes vectors through memory.  The only
 * variant off x86-64 (or where the build has no runtime dispatch); on x86-64
 * the fallback for CPUs without AVX2.  Compiled with the build's own flags,
 * no target pragma: x86-64 SSE2, aarch64 NEON. */
#include "core.h"
#if defined(__SSE2__)
#include <emmintrin.h>   /* SSE2 maximum, lane masks and non-temporal stores */
#endif

#define FS_ISA baseline
#define FS_VBYTES 16
#if defined(__SSE2__)
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
#include "kernel_template.h"
