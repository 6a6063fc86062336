"""Reference softmax, log_softmax and logsumexp, and the row maths the other
reference modules share.

Each row's exponentials come from ``math.exp`` in double precision and are
summed exactly with ``math.fsum``; the results have the result dtype of the
compiled functions.

>>> import numpy as np
>>> from fastsoftmax import reference
>>> reference.softmax(np.array([1.0, 1.0, -np.inf], np.float32))
array([0.5, 0.5, 0. ], dtype=float32)
>>> reference.log_softmax([[0.0, 0.0]], where=[[True, False]]).tolist()
[[0.0, -inf]]
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .. import _args, _layout

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

    from .._typing import Axis, FloatResult, Temperature

__all__ = ["softmax", "log_softmax", "logsumexp"]

_INF = math.inf


# ---- one row ------------------------------------------------------------------

def _row_summary(row: list[float], t: float):
    """(kind, max, count, rest) of a row; kind is 'empty', 'nan' or 'ok'.

    For 0 < T < inf, count is the number of entries at the maximum and rest is
    the exact sum of exp((x - max) / T) over the others.  At T = 0 count is the
    number of maxima; at T = inf the number of entries that are not -inf."""
    if not row:
        return "empty", -_INF, 0, 0.0
    if any(math.isnan(v) for v in row):
        return "nan", math.nan, 0, 0.0
    m = max(row)
    if t == 0.0:
        if m == -_INF:              # only -inf: there is nothing to pick
            return "nan", m, 0, 0.0
        return "ok", m, sum(1 for v in row if v == m), 0.0
    if math.isinf(m):
        return "nan", m, 0, 0.0
    if math.isinf(t):
        return "ok", m, sum(1 for v in row if v != -_INF), 0.0
    count = sum(1 for v in row if v == m)
    rest = math.fsum(math.exp(_scaled_diff(v, m, t)) for v in row if v != m)
    return "ok", m, count, rest


def _scaled_diff(v: float, m: float, t: float) -> float:
    """(v - m) / t, also where v - m alone would overflow (huge v, m and t)."""
    d = v - m
    if math.isinf(d) and math.isfinite(v):
        return v / t - m / t
    return d / t


def _log_sum(count: int, rest: float) -> float:
    return math.log1p(rest) if count == 1 else math.log(count + rest)


def _softmax_row(row, t, log=False):
    """softmax of a row, or with ``log`` its log_softmax."""
    kind, m, count, rest = _row_summary(row, t)
    if kind != "ok":
        return [math.nan] * len(row)
    if t == 0.0 or math.isinf(t):
        # 1/k on the k entries that count (the maxima at T = 0, those not
        # -inf at T = inf), 0 elsewhere
        share, nothing = (-math.log(count), -_INF) if log else (1.0 / count, 0.0)
        if t == 0.0:
            return [share if v == m else nothing for v in row]
        return [share if v != -_INF else nothing for v in row]
    if log:
        log_sum = _log_sum(count, rest)
        return [_scaled_diff(v, m, t) - log_sum for v in row]
    total = count + rest
    return [math.exp(_scaled_diff(v, m, t)) / total for v in row]


def _log_softmax_row(row, t):
    return _softmax_row(row, t, log=True)


def _logsumexp_row(row, t):
    kind, m, count, rest = _row_summary(row, t)
    if kind != "ok":
        return m                      # -inf (empty), NaN, +inf or -inf
    if t == 0.0 or (math.isinf(t) and count == 1):
        return m
    if math.isinf(t):
        return _INF
    log_sum = _log_sum(count, rest)
    lse = m + t * log_sum
    if math.isinf(lse):             # t * log_sum alone may overflow where the sum does not
        lse = t * (m / t + log_sum)
    return lse


def _row_terms(row, t):
    """For 0 < t < inf and a row whose softmax is defined: the shifts
    (x - max) / t, their exponentials and the log of the exponentials' sum.
    None for a row with a NaN, a +inf or only -inf (and an empty row)."""
    kind, m, count, rest = _row_summary(row, t)
    if kind != "ok":
        return None
    shifts = [_scaled_diff(v, m, t) for v in row]
    return shifts, [math.exp(d) for d in shifts], _log_sum(count, rest)


# ---- rows, where= and results ---------------------------------------------------

def _dtypes(x: np.ndarray, dtype=None) -> tuple[np.ndarray, np.dtype]:
    """(x in float64, the result dtype of the compiled functions or ``dtype``)."""
    kind = x.dtype.kind
    if kind == "f" and x.dtype.itemsize in (2, 4, 8):
        result = np.dtype(f"f{x.dtype.itemsize}")
    elif kind in "biu":
        result = np.dtype(np.float64)
    elif x.dtype.name == "bfloat16":      # ml_dtypes.bfloat16
        result = x.dtype
    else:
        raise TypeError(f"unsupported input dtype {x.dtype}")
    return x.astype(np.float64), (result if dtype is None else np.dtype(dtype))


def _rows_of(x: np.ndarray, axis):
    """(the rows as a list of lists of floats, shape of the kept axes, the
    reduced axes), in fastsoftmax's row layout (:mod:`fastsoftmax._layout`)."""
    if not x.ndim:
        axes: tuple[int, ...] = ()
    elif axis is None:
        axes = tuple(range(x.ndim))
    else:
        axes = tuple(sorted({a % x.ndim for a in (axis if isinstance(axis, tuple) else (axis,))}))
    rows, _, outer, _ = _layout.to_rows(x, axes, None)
    return rows.tolist(), outer, axes


def _from_rows(values, shape, axes, dtype):
    """Rows computed in the row layout, back in ``shape`` (C-contiguous) as
    ``dtype``; results beyond the dtype's range round to inf."""
    perm = _layout.row_order(len(shape), axes)[1]
    result = _layout.from_rows(np.array(values, dtype=np.float64), shape, perm, np.dtype(dtype))
    return result[()] if result.ndim == 0 else result


def _mask(where, shape, name):
    """``where`` as a boolean array of ``shape`` (a broadcast view), or None."""
    if where is None:
        return None
    return np.broadcast_to(_args.where(where, shape, name), shape)


def _masked_rows(x, where, axis, name):
    """(rows of x with masked entries set to -inf, rows of the mask or None
    (everything kept), shape of the kept axes, the reduced axes)."""
    mask = _mask(where, x.shape, name)
    rows, outer, axes = _rows_of(x, axis)
    if mask is None:
        return rows, None, outer, axes
    keep = _rows_of(mask, axis)[0]
    rows = [[v if k else -_INF for v, k in zip(row, kept)] for row, kept in zip(rows, keep)]
    return rows, keep, outer, axes


def _temperatures(temperature, outer: tuple) -> list[float]:
    """One temperature per row: a scalar for every row, or an array
    broadcast to the shape of the kept axes, in row order."""
    return np.broadcast_to(np.asarray(temperature, dtype=np.float64), outer).reshape(-1).tolist()


def _elementwise(row_fn, x, axis, temperature, where, fully_masked, name, dtype=None):
    x, result_dtype = _dtypes(np.asarray(x), dtype)
    rows, keep, outer, axes = _masked_rows(x, where, axis, name)
    ts = _temperatures(temperature, outer)
    if keep is None:
        values = [row_fn(row, t) for row, t in zip(rows, ts)]
    else:
        values = [row_fn(row, t) if any(kept) else [fully_masked] * len(row)
                  for row, kept, t in zip(rows, keep, ts)]
    return _from_rows(values, x.shape, axes, result_dtype)


def softmax(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0, where: ArrayLike | None = None,
            dtype: DTypeLike | None = None) -> FloatResult:
    """Reference softmax; see :func:`fastsoftmax.softmax`."""
    return _elementwise(_softmax_row, x, axis, temperature, where, 0.0, "softmax", dtype)


def log_softmax(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0,
                where: ArrayLike | None = None, dtype: DTypeLike | None = None) -> FloatResult:
    """Reference log-softmax; see :func:`fastsoftmax.log_softmax`."""
    return _elementwise(_log_softmax_row, x, axis, temperature, where, -_INF, "log_softmax", dtype)


def logsumexp(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0, keepdims: bool = False,
              where: ArrayLike | None = None, dtype: DTypeLike | None = None) -> FloatResult:
    """Reference log-sum-exp; see :func:`fastsoftmax.logsumexp`."""
    x, result_dtype = _dtypes(np.asarray(x), dtype)
    rows, keep, outer, axes = _masked_rows(x, where, axis, "logsumexp")
    ts = _temperatures(temperature, outer)
    out = np.array([_logsumexp_row(r, ts[i]) if keep is None or any(keep[i]) else -_INF
                    for i, r in enumerate(rows)], dtype=np.float64).reshape(outer)
    if keepdims and x.ndim:
        out = out.reshape([1 if a in axes else s for a, s in enumerate(x.shape)])
    with np.errstate(over="ignore"):
        out = out.astype(result_dtype)
    return out[()] if out.ndim == 0 else out
