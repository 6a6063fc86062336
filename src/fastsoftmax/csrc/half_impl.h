/* Conversions between the 16-bit storage formats (enum fs_half: bfloat16 and
 * IEEE float16) and the row dtype: part of the kernel template, included from
 * dtype_kernels.h with its parameters defined.  No include guard on
 * purpose.
 *
 * 16-bit rows are computed in float32 (or float64): the compiled loop
 * converts a block of rows into a buffer that stays in cache, runs the
 * kernels there and converts the results back while they are still in cache,
 * so a 16-bit call never makes a pass over memory in the wider dtype.
 *   bfloat16 is the upper half of a float32: widening is a shift, narrowing
 *   rounds to nearest even on the 16 bits dropped (NaN stays NaN).
 *   float16 uses the F16C instructions where the variant has them (AVX2,
 *   AVX-512), and integer arithmetic on the bit fields elsewhere; both round
 *   to nearest even, as NumPy's astype does.
 * Narrowing float64 goes through float32 (two roundings); the package only
 * narrows float32 results. */

typedef uint16_t FS_NAME(vh) __attribute__((vector_size(sizeof(FS_VR) / sizeof(FS_R) * 2)));
typedef uint32_t FS_NAME(vw) __attribute__((vector_size(sizeof(FS_VR) / sizeof(FS_R) * 4)));
typedef float FS_NAME(vs) __attribute__((vector_size(sizeof(FS_VR) / sizeof(FS_R) * 4)));

/* Bytes of FS_W float16 values, when F16C converts them in one instruction. */
#if defined(FS_HAS_F16C)
#define FS_F16C_BYTES (FS_EXP_MANT_BITS == 23 ? FS_VBYTES / 2 : FS_VBYTES / 4)
#else
#define FS_F16C_BYTES 0
#endif

FS_INLINE FS_NAME(vs) FS_NAME(single_from_half)(const int format, FS_NAME(vh) h)
{
    const FS_NAME(vw) u = __builtin_convertvector(h, FS_NAME(vw));
    if (format == FS_BF16) return (FS_NAME(vs))(u << 16);
#if FS_F16C_BYTES == 32
    return (FS_NAME(vs))_mm512_cvtph_ps((__m256i)h);
#elif FS_F16C_BYTES == 16
    return (FS_NAME(vs))_mm256_cvtph_ps((__m128i)h);
#elif FS_F16C_BYTES == 8
    long long bits;
    memcpy(&bits, &h, sizeof bits);
    return (FS_NAME(vs))_mm_cvtph_ps(_mm_cvtsi64_si128(bits));
#else
    /* exponent and mantissa moved into float32's fields: times 2**112
     * rebiases normal numbers and turns subnormal ones into the normal
     * float32 values they stand for; inf and NaN (payload kept) apart */
    const FS_NAME(vw) magnitude = (u & 0x7fff) << 13;
    const FS_NAME(vw) finite = (FS_NAME(vw))((FS_NAME(vs))magnitude * 0x1p112f);
    const FS_NAME(vw) special = (FS_NAME(vw))(magnitude >= (0x7c00u << 13));
    return (FS_NAME(vs))((finite & ~special) | ((magnitude | 0x7f800000) & special) | ((u & 0x8000) << 16));
#endif
}

FS_INLINE FS_NAME(vh) FS_NAME(half_from_single)(const int format, FS_NAME(vs) f)
{
    const FS_NAME(vw) u = (FS_NAME(vw))f;
    if (format == FS_BF16) {
        /* a NaN keeps its upper half, with the quiet bit set (rounding could
         * carry it into inf) */
#if defined(FS_HAS_AVX512) && FS_EXP_MANT_BITS == 23
        const __m512i w = (__m512i)u;
        __m512i rounded = _mm512_add_epi32(_mm512_add_epi32(w, _mm512_set1_epi32(0x7fff)),
                                           _mm512_and_si512(_mm512_srli_epi32(w, 16), _mm512_set1_epi32(1)));
        rounded = _mm512_mask_or_epi32(rounded, _mm512_cmp_ps_mask((__m512)f, (__m512)f, _CMP_UNORD_Q), w,
                                       _mm512_set1_epi32(0x400000));
        return (FS_NAME(vh))_mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
#else
        const FS_NAME(vw) ordered = (FS_NAME(vw))(f == f);
        const FS_NAME(vw) rounded = u + 0x7fff + ((u >> 16) & 1);
        return __builtin_convertvector(((rounded & ordered) | ((u | 0x400000) & ~ordered)) >> 16, FS_NAME(vh));
#endif
    }
#if FS_F16C_BYTES == 32
    return (FS_NAME(vh))_mm512_cvtps_ph((__m512)f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#elif FS_F16C_BYTES == 16
    return (FS_NAME(vh))_mm256_cvtps_ph((__m256)f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#elif FS_F16C_BYTES == 8
    const __m128i r = _mm_cvtps_ph((__m128)f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    FS_NAME(vh) h;
    memcpy(&h, &r, sizeof h);
    return h;
#else
    const FS_NAME(vw) a = u & 0x7fffffff;
    /* normal halves: exponent rebiased (127 - 15 = 112), the 13 bits dropped
     * rounded to nearest even; a carry moves into the exponent as it should */
    const FS_NAME(vw) normal = (a - (112u << 23) + 0xfff + ((a >> 13) & 1)) >> 13;
    /* below 2**-14 (subnormal halves, zero): adding 0.5 leaves the value in
     * units of 2**-24 at the end of the mantissa, rounded by the addition */
    const FS_NAME(vw) subnormal = (FS_NAME(vw))((FS_NAME(vs))a + 0.5f) - 0x3f000000;
    const FS_NAME(vw) nan = (FS_NAME(vw))(a > 0x7f800000);
    const FS_NAME(vw) huge = (FS_NAME(vw))(a >= 0x477ff000);   /* rounds to inf: 65520 and up */
    const FS_NAME(vw) small = (FS_NAME(vw))(a < 0x38800000);
    const FS_NAME(vw) r = (normal & ~(huge | small)) | (subnormal & small) | (0x7c00 & huge & ~nan) |
                          ((0x7e00 | ((a >> 13) & 0x3ff)) & nan);
    return __builtin_convertvector(r | ((u >> 16) & 0x8000), FS_NAME(vh));
#endif
}

FS_INLINE void FS_NAME(from_half_loop)(const int format, const uint16_t *src, FS_R *dst, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + FS_W <= n; i += FS_W) {
        FS_NAME(vh) h;
        memcpy(&h, src + i, sizeof h);
        FS_NAME(vstore)(dst + i, __builtin_convertvector(FS_NAME(single_from_half)(format, h), FS_VR));
    }
    if (i < n) {
        FS_NAME(vh) h = {0};
        memcpy(&h, src + i, (size_t)(n - i) * sizeof(uint16_t));
        FS_NAME(vstore_tail)(dst + i, n - i, __builtin_convertvector(FS_NAME(single_from_half)(format, h), FS_VR));
    }
}

FS_INLINE void FS_NAME(to_half_loop)(const int format, const FS_R *src, uint16_t *dst, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + FS_W <= n; i += FS_W) {
        const FS_NAME(vh) h = FS_NAME(half_from_single)(
            format, __builtin_convertvector(FS_NAME(vload)(src + i), FS_NAME(vs)));
        memcpy(dst + i, &h, sizeof h);
    }
    if (i < n) {
        const FS_NAME(vh) h = FS_NAME(half_from_single)(
            format, __builtin_convertvector(FS_NAME(vload_tail)(src + i, n - i, 0), FS_NAME(vs)));
        memcpy(dst + i, &h, (size_t)(n - i) * sizeof(uint16_t));
    }
}

FS_INLINE void FS_NAME(from_half)(int format, const uint16_t *src, FS_R *dst, ptrdiff_t n)
{
    if (format == FS_BF16) FS_NAME(from_half_loop)(FS_BF16, src, dst, n);
    else FS_NAME(from_half_loop)(FS_F16, src, dst, n);
}

FS_INLINE void FS_NAME(to_half)(int format, const FS_R *src, uint16_t *dst, ptrdiff_t n)
{
    if (format == FS_BF16) FS_NAME(to_half_loop)(FS_BF16, src, dst, n);
    else FS_NAME(to_half_loop)(FS_F16, src, dst, n);
}

/* The kernels on rows of 16-bit values: widened into buf, computed there, the
 * results narrowed into out (out_format < 0: out has the row dtype, and the
 * kernels write it directly).  Rows of at most FS_STAGE_BY_ROW elements are
 * widened all at once (buf: rows * (n + 1) elements) and keep the kernels'
 * paths for short rows.  Longer rows go one at a time (buf: n + 1 elements),
 * computed as `rows` computes them; up to FS_LONG_ROW elements, the exp pass
 * of a row fetches the next row's 16-bit values into the caches, as the
 * kernels do for rows of their own dtype. */
static void FS_NAME(staged_rows)(int op, int in_format, int out_format, const void *xv, void *outv,
                                 ptrdiff_t rows, ptrdiff_t n, const fs_params *p, void *bufv)
{
    const uint16_t *x = (const uint16_t *)xv;
    FS_R *buf = (FS_R *)bufv;
    const ptrdiff_t out_n = op == FS_LOGSUMEXP ? 1 : n;
    if (n <= FS_STAGE_BY_ROW) {
        FS_R *results = out_format < 0 ? (FS_R *)outv : op == FS_LOGSUMEXP ? buf + rows * n : buf;
        FS_NAME(from_half)(in_format, x, buf, rows * n);
        FS_NAME(rows)(op, buf, results, rows, n, p, 0);
        if (out_format >= 0) FS_NAME(to_half)(out_format, results, (uint16_t *)outv, rows * out_n);
        return;
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        const uint16_t *xr = x + r * n;
        FS_R *results = out_format < 0 ? (FS_R *)outv + r * out_n : op == FS_LOGSUMEXP ? buf + n : buf;
        FS_NAME(from_half)(in_format, xr, buf, n);
        if (n > FS_LONG_ROW) {
            FS_NAME(rows)(op, buf, results, 1, n, p, 0);
        } else {
            fs_stats s;
            fs_row_result res;
            /* prefetch only: n 16-bit values are n * 2 / sizeof(FS_R) row elements */
            const FS_R *ahead = r + 1 < rows ? (const FS_R *)(xr + n) : NULL;
            FS_R *exps = op == FS_SOFTMAX ? results : NULL;
            FS_NAME(stats_pass)(op, buf, NULL, exps, n, p, &s, ahead, ahead ? n * 2 / (ptrdiff_t)sizeof(FS_R) : 0);
            fs_row_finish(op, &s, n, p, &res);
            if (op == FS_LOGSUMEXP) *results = (FS_R)res.logsumexp;
            else FS_NAME(write_row)(op, buf, NULL, exps, results, n, p, &res, 0);
        }
        if (out_format >= 0) FS_NAME(to_half)(out_format, results, (uint16_t *)outv + r * out_n, out_n);
    }
}

#undef FS_F16C_BYTES
