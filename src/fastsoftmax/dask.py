"""Softmax, log_softmax and logsumexp of Dask arrays: lazy, and exact for any chunking.

This module's :func:`softmax`, :func:`log_softmax` and :func:`logsumexp`
always give a lazy result; :func:`fastsoftmax.softmax`,
:func:`~fastsoftmax.log_softmax` and :func:`~fastsoftmax.logsumexp` come
here too when given a ``dask.array.Array``, after :mod:`fastsoftmax._api`
has checked every argument.  The module is imported only then, or when
``fastsoftmax.dask`` is first used, so ``import fastsoftmax`` does not import
Dask.  The functions that compute in memory (the losses, the backward
functions, ``sample``, ``special.logsumexp`` with ``b`` or ``return_sign``)
raise TypeError for a Dask array rather than compute it.

Nothing is computed when the functions are called; the result is a Dask array
with the input's chunks (logsumexp: without the reduced axes, or with them of
length 1 under ``keepdims``).  Two plans:

* Each reduced axis lies in one chunk, so every block holds whole rows: the
  compiled loops run on each block (``map_blocks``), one pass over the data,
  with results identical to computing the whole array in memory.
* A reduced axis is split over several chunks: a ``dask.array.reduction``
  computes each block's statistics of its piece of every row with the
  compiled kernels (maximum, sum of exponentials relative to it, NaN flag,
  count: the kernels' ``fs_stats``) and merges them in block order, exactly
  as the kernels merge the chunks of a long row.  logsumexp is the finished
  merged statistics; softmax and log_softmax write each block from its rows'
  merged statistics.  Results equal the in-memory ones within the accuracy
  bounds of the contract, special values included.

``where=`` (a NumPy or Dask bool array) is broadcast lazily to the input's
shape and chunks, so each block reads only its own block of the mask; the
kernels take it as they do for NumPy input, in both plans.

Each block is computed on one thread unless ``num_threads`` asks for more:
Dask already runs blocks in parallel.

>>> import dask.array as da
>>> import numpy as np
>>> import fastsoftmax as fs
>>> x = da.from_array(np.array([[1.0, 2.0, 3.0, 4.0]]), chunks=(1, 2))
>>> y = fs.softmax(x)              # lazy: nothing computed yet
>>> y.chunks
((1,), (2, 2))
>>> y.compute().round(3)
array([[0.032, 0.087, 0.237, 0.644]])
"""
from __future__ import annotations

import functools
import math

from typing import TYPE_CHECKING, Any

import numpy as np

try:
    import dask.array as da
except ImportError as error:        # pragma: no cover - dask is an optional dependency
    raise ImportError("fastsoftmax.dask needs Dask's arrays: pip install 'dask[array]'") from error

from fastsoftmax import _api, _layout, _rows
from fastsoftmax._typing import plain_signatures

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._typing import Axis, Temperature, Threads

__all__ = ["softmax", "log_softmax", "logsumexp"]


# ---- public functions: always lazy ------------------------------------------------

def _lazy_input(x: Any, name: str) -> Any:
    """A Dask array as it is; anything else as a Dask array of one chunk."""
    if _api._is_dask_array(x):
        return x
    if x is None:
        raise TypeError(f"fastsoftmax.dask.{name}(): x is None, not an array")
    return da.asarray(x)


def softmax(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0, where: ArrayLike | None = None,
            num_threads: Threads = None) -> da.Array:
    """Lazy :func:`fastsoftmax.softmax` of a Dask array: a Dask array with ``x``'s chunks.

    The same arguments and results as :func:`fastsoftmax.softmax` (which
    comes here when given a Dask array), without ``out`` and ``dtype``;
    ``temperature`` is a scalar.  ``x`` that is not a Dask array is wrapped
    as one chunk (``dask.array.asarray``).  Exact for any chunking.

    >>> import dask.array as da, numpy as np, fastsoftmax.dask as fsd
    >>> y = fsd.softmax(da.from_array(np.array([[0.0, 1.0, 2.0]]), chunks=(1, 2)))
    >>> y.compute().round(3)
    array([[0.09 , 0.245, 0.665]])
    """
    return _api._lazy(_rows.SOFTMAX, _lazy_input(x, "softmax"), axis, temperature, None, num_threads, False,
                      where)


def log_softmax(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0,
                where: ArrayLike | None = None, num_threads: Threads = None) -> da.Array:
    """Lazy :func:`fastsoftmax.log_softmax` of a Dask array, as :func:`softmax`.

    >>> import dask.array as da, numpy as np, fastsoftmax.dask as fsd
    >>> fsd.log_softmax(da.from_array(np.array([1000.0, 1.0]), chunks=1)).compute()
    array([   0., -999.])
    """
    return _api._lazy(_rows.LOG_SOFTMAX, _lazy_input(x, "log_softmax"), axis, temperature, None, num_threads,
                      False, where)


def logsumexp(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0, where: ArrayLike | None = None,
              keepdims: bool = False, num_threads: Threads = None) -> da.Array:
    """Lazy :func:`fastsoftmax.logsumexp` of a Dask array, as :func:`softmax`;
    the reduced axes are dropped (kept with length 1 under ``keepdims``).

    >>> import dask.array as da, numpy as np, fastsoftmax.dask as fsd
    >>> float(fsd.logsumexp(da.from_array(np.zeros(4), chunks=2)).compute()) == float(np.log(4))
    True
    """
    return _api._lazy(_rows.LOGSUMEXP, _lazy_input(x, "logsumexp"), axis, temperature, None, num_threads,
                      bool(keepdims), where)

_NAMES = {_rows.SOFTMAX: "softmax", _rows.LOG_SOFTMAX: "log_softmax", _rows.LOGSUMEXP: "logsumexp"}


def apply(op: int, x, axes: tuple[int, ...], temperature: float, num_threads: int, keepdims: bool,
          compute_dtype: np.dtype, result_dtype: np.dtype, where=None):
    """The lazy result of ``op`` over ``axes`` of the Dask array ``x``.

    Arguments are already checked and normalised by ``fastsoftmax._api``:
    ``axes`` sorted and non-negative, ``num_threads`` 0 for the default (one
    thread per block here), ``compute_dtype`` float32 or float64, ``where``
    None or a bool NumPy or Dask array that broadcasts to ``x``'s shape.
    """
    # the mask in x's blocks: one more array beside x in each blockwise step
    masks = () if where is None else (da.broadcast_to(da.asarray(where), x.shape).rechunk(x.chunks),)
    if x.ndim == 0:
        # one row of one element, as for NumPy input
        flat = apply(op, x.reshape((1,)), (0,), temperature, num_threads, False, compute_dtype,
                     result_dtype, masks[0].reshape((1,)) if masks else None)
        return flat.reshape(())
    plan = dict(op=op, axes=axes, dtype=np.dtype(compute_dtype), result_dtype=np.dtype(result_dtype),
                temperature=float(temperature), threads=num_threads or 1)
    name = _NAMES[op]
    if all(x.numblocks[a] == 1 for a in axes):
        if op != _rows.LOGSUMEXP:
            return da.map_blocks(functools.partial(_whole_rows, keepdims=False, **plan), x, *masks,
                                 dtype=result_dtype, meta=np.empty((0,) * x.ndim, result_dtype), token=name)
        chunks = tuple((1,) if a in axes else c for a, c in enumerate(x.chunks))
        if not keepdims:
            chunks = tuple(c for a, c in enumerate(chunks) if a not in axes)
        return da.map_blocks(functools.partial(_whole_rows, keepdims=keepdims, **plan), x, *masks,
                             dtype=result_dtype, chunks=chunks, drop_axis=() if keepdims else axes,
                             meta=np.empty((0,) * len(chunks), result_dtype), token=name)

    # The length of whole rows only tells empty rows apart; an unknown chunk
    # size (NaN) along a reduced axis is a row of elements, or an empty row
    # whose logsumexp is -inf either way.
    length = math.prod(x.shape[a] for a in axes)
    plan["row_length"] = 1 if math.isnan(length) else int(length)
    stats_plan = dict(op=op, dtype=plan["dtype"], temperature=plan["temperature"])
    merge = functools.partial(_merge_stats, dtype=plan["dtype"], temperature=plan["temperature"])
    chunk = functools.partial(_chunk_stats, threads=plan["threads"], **stats_plan)
    if op == _rows.LOGSUMEXP:
        # dtype is that of the intermediate statistics (Dask casts them to it);
        # meta gives the result's
        return da.reduction(x, chunk, functools.partial(_finish_logsumexp, **plan), combine=merge,
                            axis=axes, keepdims=keepdims, dtype=_rows.STATS_DTYPE,
                            meta=np.empty((0,) * (x.ndim if keepdims else x.ndim - len(axes)), result_dtype),
                            name=name, weights=masks[0] if masks else None)
    # the mask reaches the chunk statistics as the reduction's weights
    stats = da.reduction(x, chunk, merge, combine=merge, axis=axes, keepdims=True, dtype=_rows.STATS_DTYPE,
                         meta=np.empty((0,) * x.ndim, _rows.STATS_DTYPE), name=f"{name}-stats",
                         weights=masks[0] if masks else None)
    return da.map_blocks(functools.partial(_write_block, **plan), x, stats, *masks, dtype=result_dtype,
                         meta=np.empty((0,) * x.ndim, result_dtype), token=name)


plain_signatures(softmax, log_softmax, logsumexp)     # help() shows names and defaults, as the docs do


# ---- block functions (run by the Dask workers; module-level, so they pickle) ----

def _as_rows(block: np.ndarray, axes, dtype) -> np.ndarray:
    """The block as C-contiguous (rows, n): the kept axes in order, then the
    reduced ones flattened.  Copies only when the layout or dtype asks for it."""
    return _layout.to_rows(block, tuple(axes), None if dtype is None else np.dtype(dtype))[0]


def _from_rows(rows: np.ndarray, shape: tuple[int, ...], axes, result_dtype) -> np.ndarray:
    """Undo :func:`_as_rows` for a result of the block's shape; C-contiguous, in ``result_dtype``."""
    return _layout.from_rows(rows, shape, _layout.row_order(len(shape), tuple(axes))[1], result_dtype)


def _lse_shape(shape: tuple[int, ...], axes, keepdims: bool) -> tuple[int, ...]:
    if keepdims:
        return tuple(1 if a in axes else s for a, s in enumerate(shape))
    return tuple(s for a, s in enumerate(shape) if a not in axes)


def _whole_rows(block, mask=None, *, op, axes, dtype, result_dtype, temperature, threads, keepdims):
    """``op`` of a block that holds whole rows (entries where ``mask``, the
    block's piece of where=, is True)."""
    if mask is not None:
        x = _as_rows(block, axes, dtype)
        out = _rows.empty(x.shape[:1] if op == _rows.LOGSUMEXP else x.shape, dtype.name)
        _rows.compute_where(op, x, _as_rows(mask, axes, np.bool_), x.shape[:1], out, temperature, threads)
        if op != _rows.LOGSUMEXP:
            return _from_rows(out, block.shape, axes, result_dtype)
        with np.errstate(over="ignore"):
            return out.reshape(_lse_shape(block.shape, axes, keepdims)).astype(result_dtype, copy=False)
    if len(axes) == 1:
        # one axis: the compiled loops reduce it where it lies, without a copy
        x = _layout.contiguous(block, dtype)
        axis = axes[0]
    else:
        x, axis = _as_rows(block, axes, dtype), 1
    if op == _rows.LOGSUMEXP:
        out = _rows.empty(tuple(s for a, s in enumerate(x.shape) if a != axis), dtype.name)
        _rows.compute(op, x, out, axis, temperature, threads)
        with np.errstate(over="ignore"):
            return out.reshape(_lse_shape(block.shape, axes, keepdims)).astype(result_dtype, copy=False)
    out = _rows.empty(x.shape, dtype.name)
    _rows.compute(op, x, out, axis, temperature, threads)
    if len(axes) == 1:
        with np.errstate(over="ignore"):
            return out.astype(result_dtype, copy=False)
    return _from_rows(out, block.shape, axes, result_dtype)


def _chunk_stats(block, mask=None, axis=None, keepdims=True, *, op, dtype, temperature, threads):
    """Statistics of the block's piece of each row (of its entries where
    ``mask`` is True), the reduced axes kept with length 1."""
    sel = None if mask is None else _as_rows(mask, axis, np.bool_)
    stats = _rows.row_stats(op, _as_rows(block, axis, dtype), temperature, threads, sel)
    return stats.reshape(_lse_shape(block.shape, axis, True))


def _merge_stats(parts, axis, keepdims, *, dtype, temperature):
    """Merge statistics concatenated along the reduced axes, in block order."""
    merged = _rows.merge_row_stats(_as_rows(parts, axis, None), dtype, temperature)
    return merged.reshape(_lse_shape(parts.shape, axis, True))


def _finish_logsumexp(parts, axis, keepdims, *, op, axes, dtype, result_dtype, temperature, threads,
                      row_length):
    merged = _rows.merge_row_stats(_as_rows(parts, axis, None), dtype, temperature)
    out = np.empty(merged.shape, dtype)
    _rows.write_from_stats(op, None, merged, row_length, temperature, out, threads)
    with np.errstate(over="ignore"):
        return out.reshape(_lse_shape(parts.shape, axis, keepdims)).astype(result_dtype, copy=False)


def _write_block(block, stats, mask=None, *, op, axes, dtype, result_dtype, temperature, threads, row_length):
    """softmax or log_softmax of a block from its rows' merged statistics."""
    x = _as_rows(block, axes, dtype)
    out = _rows.empty(x.shape, dtype.name)
    _rows.write_from_stats(op, x, np.ascontiguousarray(stats).reshape(-1), row_length, temperature, out,
                           threads, None if mask is None else _as_rows(mask, axes, np.bool_))
    return _from_rows(out, block.shape, axes, result_dtype)
