# The choice of instruction-set variant by speed (csrc/core.c), open to the
# tests: the rule alone, on given timings, apart from the timing itself.

_VARIANT_ORDER = ("baseline", "avx2", "avx512")


def _pick_isa(costs, widest):
    """The variant the kernels would choose, given ``costs`` (a dict from
    variant name to its time per element, for the variants timed) on a CPU
    whose widest variant is ``widest``: the widest, unless a narrower one is
    faster by a clear margin (10%).  For tests of the rule."""
    cdef double c[3]
    if widest not in _VARIANT_ORDER:
        raise ValueError(f"_pick_isa: widest must be one of {_VARIANT_ORDER}, got {widest!r}")
    for i, name in enumerate(_VARIANT_ORDER):
        c[i] = float(costs.get(name, 0.0))
    return _VARIANT_ORDER[fs_pick_isa(c, _VARIANT_ORDER.index(widest))]
