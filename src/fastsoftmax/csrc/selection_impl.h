/* where= selections: one byte per entry, read as vector lanes.
 * Part of the kernel template (dtype_kernels.h), with its parameters
 * defined.  No include guard on purpose. */

/* ---- where= selections ------------------------------------------------- */

/* A selection is one byte per entry, nonzero where the entry takes part
 * (NumPy's bool).  Every pass takes one, or NULL for none: the passes are
 * inlined, so a NULL literal compiles the selection away. */
FS_INLINE FS_VI FS_NAME(sel_lanes)(const uint8_t *sel)
{
#ifdef FS_SEL_LANES
    return FS_SEL_LANES(sel);
#else
    typedef uint8_t sel_bytes __attribute__((vector_size(sizeof(FS_VR) / sizeof(FS_R))));
    sel_bytes b;
    memcpy(&b, sel, sizeof b);
    return __builtin_convertvector(b, FS_VI) != (FS_VI){0};
#endif
}

FS_INLINE FS_VI FS_NAME(sel_lanes_n)(const uint8_t *sel, ptrdiff_t n)
{
    uint8_t buf[sizeof(FS_VR) / sizeof(FS_R)] = {0};
    memcpy(buf, sel, (size_t)n);
    return FS_NAME(sel_lanes)(buf);
}

/* The vector at x + at, with -inf where not selected. */
FS_INLINE FS_VR FS_NAME(vload_sel)(const FS_R *x, const uint8_t *sel, ptrdiff_t at)
{
    if (!sel) return FS_NAME(vload)(x + at);
    FS_VR v = FS_NAME(vload)(x + at);
    return FS_NAME(vselect)(FS_NAME(sel_lanes)(sel + at), v, FS_NAME(vbroadcast)((FS_R)-INFINITY));
}

/* The len < FS_W entries at x + at, -inf in the missing and unselected lanes. */
FS_INLINE FS_VR FS_NAME(vload_tail_sel)(const FS_R *x, const uint8_t *sel, ptrdiff_t at, ptrdiff_t len)
{
    FS_VR v = FS_NAME(vload_tail)(x + at, len, (FS_R)-INFINITY);
    if (!sel) return v;
    return FS_NAME(vselect)(FS_NAME(sel_lanes_n)(sel + at, len), v, FS_NAME(vbroadcast)((FS_R)-INFINITY));
}

/* One entry, -inf where not selected. */
FS_INLINE FS_R FS_NAME(entry_sel)(const FS_R *x, const uint8_t *sel, ptrdiff_t i)
{
    return sel && !sel[i] ? (FS_R)-INFINITY : x[i];
}

/* Whether a selection has any entry: asked only of rows whose maximum is
 * -inf, since a larger maximum proves it. */
FS_INLINE int FS_NAME(any_selected)(const uint8_t *sel, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        if (sel[i]) return 1;
    return 0;
}

