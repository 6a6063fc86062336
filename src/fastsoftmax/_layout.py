"""To rows and back: the one layout the compiled loops read.

The kernels work on C-contiguous ``(rows, n)`` arrays.  :func:`to_rows` moves
the reduced axes of an array to the end (the kept axes keep their order) and
flattens both groups; :func:`from_rows` undoes it for a result.  An array that
is only broadcast against the input (a ``where=`` mask, sampling's mask,
SciPy's weights ``b``) is never expanded to the input's size:
:func:`broadcast_rows` gives it in the same row layout with its broadcast
dimensions still of length 1, and :func:`row_starts` where each row begins in
it, for the loops that read it in place.
"""
from __future__ import annotations

import math

import numpy as np


def row_order(ndim: int, axes) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
    """(the kept axes, the permutation putting the reduced ``axes`` last, or
    None where they are last already)."""
    kept = tuple(a for a in range(ndim) if a not in axes)
    perm = kept + tuple(axes)
    return kept, (None if perm == tuple(range(ndim)) else perm)


def contiguous(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``x`` as a C-contiguous, aligned array of ``dtype``: ``x`` itself where
    it is one already, else a copy."""
    if x.flags.c_contiguous and x.flags.aligned and x.dtype == dtype:
        return x
    return np.array(x, dtype=dtype, order="C")


def to_rows(x: np.ndarray, axes, dtype: np.dtype | None):
    """``x`` with the reduced ``axes`` moved to the end and flattened: (the
    C-contiguous, aligned (rows, n) array of ``dtype`` (None: x's own), the
    permutation or None, the row index's shape, the reduced shape).  Copies
    only where the layout or the dtype asks for it."""
    kept, perm = row_order(x.ndim, axes)
    xt = contiguous(x if perm is None else x.transpose(perm), x.dtype if dtype is None else dtype)
    outer = tuple(x.shape[a] for a in kept)
    reduced = tuple(x.shape[a] for a in axes)
    return xt.reshape(math.prod(outer), math.prod(reduced)), perm, outer, reduced


def from_rows(rows: np.ndarray, shape: tuple, perm, dtype: np.dtype) -> np.ndarray:
    """A (rows, n) result back in the caller's axis order (C-contiguous) and
    ``dtype``; values beyond a narrower dtype's range become inf, silently."""
    if perm is None:
        res = rows.reshape(shape)
    else:
        res = np.ascontiguousarray(rows.reshape([shape[a] for a in perm]).transpose(np.argsort(perm)))
    if res.dtype != dtype:
        with np.errstate(over="ignore"):
            res = res.astype(dtype)
    return res


def into(out: np.ndarray, rows: np.ndarray, perm) -> None:
    """Copy a result computed in rows into ``out``, the caller's array of the
    result's shape (``perm``: as for :func:`from_rows`), casting to its dtype."""
    target = out if perm is None else out.transpose(perm)
    with np.errstate(over="ignore"):
        np.copyto(target, rows.reshape(target.shape), casting="unsafe")


def broadcast_rows(array: np.ndarray, perm, kept: int, reduced_shape: tuple) -> np.ndarray:
    """An array broadcast against the input (same number of dimensions,
    length 1 where it broadcasts) in the row layout: the row index's
    dimensions (still length 1 where it broadcasts, never expanded), then the
    row as ``n`` entries with stride 1, or as one entry when the array is
    constant along the row."""
    m = array if perm is None else array.transpose(perm)
    outer = m.shape[:kept]
    if all(d == 1 for d in m.shape[kept:]):
        return m.reshape(outer + (1,))
    n = math.prod(reduced_shape)
    # Expanded along the row only where it broadcasts there (never along the
    # row index); usually a view.
    if m.shape[kept:] != tuple(reduced_shape):
        m = np.broadcast_to(m, outer + tuple(reduced_shape))
    rows = m.reshape(outer + (n,))
    return rows if rows.strides[-1] == 1 or n <= 1 else np.ascontiguousarray(rows)


def row_starts(rows: np.ndarray, outer_shape: tuple, unit: int = 1) -> np.ndarray:
    """Offset of each row's start in an array from :func:`broadcast_rows`, in
    bytes (``unit=1``) or elements (``unit``: the itemsize), one per row of
    the input (``outer_shape``, the row index's shape), in row order: a
    contiguous intp array."""
    dims = rows.shape[:-1]
    offsets = None
    for d, (size, stride) in enumerate(zip(dims, rows.strides[:-1])):
        if size > 1 and stride != 0:
            step = [1] * len(dims)
            step[d] = size
            along = np.arange(0, size * (stride // unit), stride // unit, dtype=np.intp).reshape(step)
            offsets = along if offsets is None else offsets + along
    if offsets is None:         # every row starts at the same place
        return np.zeros(math.prod(outer_shape), dtype=np.intp)
    return np.ascontiguousarray(np.broadcast_to(offsets, outer_shape)).reshape(-1)
