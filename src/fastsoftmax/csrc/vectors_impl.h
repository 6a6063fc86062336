/* Vector loads and stores (whole, partial, streamed, aligned), lane
 * reductions and the other small helpers every kernel uses.
 * Part of the kernel template (dtype_kernels.h), with its parameters
 * defined.  No include guard on purpose. */

#define FS_W ((ptrdiff_t)(sizeof(FS_VR) / sizeof(FS_R)))

FS_INLINE FS_VR FS_NAME(vload)(const FS_R *p) { FS_VR v; memcpy(&v, p, sizeof v); return v; }
FS_INLINE void FS_NAME(vstore)(FS_R *p, FS_VR v) { memcpy(p, &v, sizeof v); }

/* The first n < FS_W elements as a full vector; the missing lanes read `pad`. */
FS_INLINE FS_VR FS_NAME(vload_tail)(const FS_R *p, ptrdiff_t n, FS_R pad)
{
#ifdef FS_MASKED_LOAD
    return FS_MASKED_LOAD(p, n, pad);
#else
    FS_R buf[sizeof(FS_VR) / sizeof(FS_R)];
    for (ptrdiff_t i = 0; i < FS_W; i++) buf[i] = pad;
    memcpy(buf, p, (size_t)n * sizeof(FS_R));
    return FS_NAME(vload)(buf);
#endif
}

FS_INLINE void FS_NAME(vstore_tail)(FS_R *p, ptrdiff_t n, FS_VR v)
{
#ifdef FS_MASKED_STORE
    FS_MASKED_STORE(p, n, v);
#else
    FS_R buf[sizeof(FS_VR) / sizeof(FS_R)];
    FS_NAME(vstore)(buf, v);
    memcpy(p, buf, (size_t)n * sizeof(FS_R));
#endif
}

/* Loads and stores of n <= FS_W elements. */
FS_INLINE FS_VR FS_NAME(vload_n)(const FS_R *p, ptrdiff_t n, FS_R pad)
{
    return n == FS_W ? FS_NAME(vload)(p) : FS_NAME(vload_tail)(p, n, pad);
}
FS_INLINE void FS_NAME(vstore_n)(FS_R *p, ptrdiff_t n, FS_VR v)
{
    if (n == FS_W) FS_NAME(vstore)(p, v);
    else FS_NAME(vstore_tail)(p, n, v);
}

FS_INLINE FS_VI FS_NAME(and_op)(FS_VI a, FS_VI b) { return a & b; }

/* Loops over a fixed handful of vectors are unrolled, so that the vectors
 * live in registers rather than in an array on the stack. */
#if defined(__clang__)
#define FS_UNROLL_ALL _Pragma("clang loop unroll(full)")
#else
#define FS_UNROLL_ALL _Pragma("GCC unroll 16")
#endif

/* Whether every lane of a comparison result is true. */
FS_INLINE int FS_NAME(all_set)(FS_VI m)
{
#ifdef FS_ALL_SET
    return FS_ALL_SET(m);
#else
    return FS_TREE(m, FS_NAME(and_op)) != 0;
#endif
}

/* Lanes that are neither NaN nor infinite. */
FS_INLINE FS_VI FS_NAME(finite)(FS_VR v) { return (v - v) == (v - v); }
#define FS_ADD_OP(a, b) ((a) + (b))

/* NaN-blind maximum: scans track NaN separately. */
FS_INLINE FS_VR FS_NAME(vmax)(FS_VR a, FS_VR b) { return FS_VMAX(a, b); }

FS_INLINE FS_R FS_NAME(lane_max)(FS_VR v)
{
#define FS_OP_MAX(a, b) FS_VMAX(a, b)
    return FS_TREE(v, FS_OP_MAX);
#undef FS_OP_MAX
}

/* Sum of a vector's lanes in double. */
FS_INLINE double FS_NAME(lane_sum)(FS_VR v)
{
    FS_VACC lo = {0}, hi = {0};
    FS_ACCUMULATE(lo, hi, v);
    lo += hi;
    return FS_TREE_F64(lo, FS_ADD_OP);
}

/* Stores of a write pass: non-temporal when asked (an output much larger than
 * the caches, so the stores neither read the lines first nor evict x). */
FS_INLINE void FS_NAME(vstore_out)(FS_R *p, FS_VR v, const int stream)
{
#ifdef FS_STREAM
    if (stream) { FS_STREAM(p, v); return; }
#endif
    (void)stream;
    FS_NAME(vstore)(p, v);
}

/* Elements before p reaches a whole vector's alignment: the write passes
 * store aligned vectors, since a store that straddles two cache lines costs
 * two (NumPy's own buffers are only 16-byte aligned), and non-temporal
 * stores need the alignment.  Short rows are not worth the extra head. */
FS_INLINE ptrdiff_t FS_NAME(head_to_align)(const FS_R *p, ptrdiff_t n, const int stream)
{
    const ptrdiff_t head = (ptrdiff_t)(((sizeof(FS_VR) - ((uintptr_t)p % sizeof(FS_VR))) % sizeof(FS_VR)) / sizeof(FS_R));
    if (stream) return (uintptr_t)p % sizeof(FS_R) || head > n ? n : head;
    return n >= 4 * FS_W && (uintptr_t)p % sizeof(FS_R) == 0 ? head : 0;
}

FS_INLINE void FS_NAME(stream_fence)(const int stream)
{
#ifdef FS_STREAM
    if (stream) _mm_sfence();
#endif
    (void)stream;
}

/* Rows of at least FS_W elements end with a full vector over their last FS_W
 * elements, overlapping the vector before, rather than with a masked one
 * (masked stores are slow on some CPUs, AMD Zen 4 among them).  Lanes
 * already counted are masked out of sums; stores rewrite the overlapped
 * lanes with the same values; and the last vector of x is loaded before
 * anything is stored, so in-place calls (out == x) still read the input. */
FS_INLINE FS_VI FS_NAME(last_lanes)(ptrdiff_t len)
{
    FS_VI lane;
    for (ptrdiff_t l = 0; l < FS_W; l++) lane[l] = (__typeof__(lane[0]))l;
    return lane >= (FS_VI){0} + (__typeof__(lane[0]))(FS_W - len);
}

