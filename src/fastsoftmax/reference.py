"""Pure-Python reference implementation: the oracle for the tests.

The same functions and the same special-value rules as the compiled ones,
written as plainly as possible with the ``math`` module: each row's exponentials
come from ``math.exp`` in double precision and are summed exactly with
``math.fsum``.  NumPy is used only to walk rows and to build the result array.
Slow on purpose; never use it on large data.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["softmax", "log_softmax", "logsumexp", "special_logsumexp"]

_INF = math.inf


def _dtypes(x: np.ndarray, dtype=None) -> tuple[np.ndarray, np.dtype]:
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


def _order(ndim: int, axis) -> tuple[list[int], int]:
    """(axis order with the reduced axes last, number of reduced axes)."""
    if axis is None:
        axes = list(range(ndim))
    else:
        axes = sorted({a % ndim for a in (axis if isinstance(axis, tuple) else (axis,))})
    return [a for a in range(ndim) if a not in axes] + axes, len(axes)


def _rows_of(x: np.ndarray, axis):
    """(the rows as a list of lists of floats, shape of the kept axes, axis order)."""
    if x.ndim == 0:
        return [[float(x)]], (), []
    order, k = _order(x.ndim, axis)
    moved = np.transpose(x, order)
    outer = moved.shape[: x.ndim - k]
    rows = moved.reshape(math.prod(outer), math.prod(moved.shape[x.ndim - k:]))
    return rows.tolist(), outer, order


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


def _softmax_row(row, t):
    kind, m, count, rest = _row_summary(row, t)
    if kind != "ok":
        return [math.nan] * len(row)
    if t == 0.0:
        return [1.0 / count if v == m else 0.0 for v in row]
    if math.isinf(t):
        return [1.0 / count if v != -_INF else 0.0 for v in row]
    total = count + rest
    return [math.exp(_scaled_diff(v, m, t)) / total for v in row]


def _log_softmax_row(row, t):
    kind, m, count, rest = _row_summary(row, t)
    if kind != "ok":
        return [math.nan] * len(row)
    if t == 0.0:
        return [-math.log(count) if v == m else -_INF for v in row]
    if math.isinf(t):
        return [-math.log(count) if v != -_INF else -_INF for v in row]
    log_sum = _log_sum(count, rest)
    return [_scaled_diff(v, m, t) - log_sum for v in row]


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


def _elementwise(row_fn, x, axis, temperature, dtype):
    x, result_dtype = _dtypes(np.asarray(x), dtype)
    t = float(temperature)
    rows, _, order = _rows_of(x, axis)
    values = np.array([row_fn(r, t) for r in rows], dtype=np.float64)
    if x.ndim == 0:
        with np.errstate(over="ignore"):
            return values.reshape(()).astype(result_dtype)[()]
    moved_shape = [x.shape[a] for a in order]
    out = values.reshape(moved_shape).transpose(np.argsort(order))
    with np.errstate(over="ignore"):   # results beyond the dtype's range round to inf
        return np.ascontiguousarray(out, dtype=result_dtype)


def softmax(x, axis=-1, *, temperature=1.0, dtype=None):
    """Reference softmax; see :func:`fastsoftmax.softmax`."""
    return _elementwise(_softmax_row, x, axis, temperature, dtype)


def log_softmax(x, axis=-1, *, temperature=1.0, dtype=None):
    """Reference log-softmax; see :func:`fastsoftmax.log_softmax`."""
    return _elementwise(_log_softmax_row, x, axis, temperature, dtype)


def logsumexp(x, axis=-1, *, temperature=1.0, keepdims=False, dtype=None):
    """Reference log-sum-exp; see :func:`fastsoftmax.logsumexp`."""
    x, result_dtype = _dtypes(np.asarray(x), dtype)
    t = float(temperature)
    rows, outer, order = _rows_of(x, axis)
    out = np.array([_logsumexp_row(r, t) for r in rows], dtype=np.float64).reshape(outer)
    if keepdims and x.ndim:
        reduced = order[len(outer):]
        out = out.reshape([1 if a in reduced else s for a, s in enumerate(x.shape)])
    with np.errstate(over="ignore"):
        out = out.astype(result_dtype)
    return out[()] if out.ndim == 0 else out


# ---- fastsoftmax.special.logsumexp: SciPy's signature, weights and signs ----

def _weighted_row(row: list[float], weights: list[float]) -> tuple[float, float]:
    """(log |S| + max, sign of S) for S = sum w exp(x) over the entries with w != 0."""
    pairs = [(v, w) for v, w in zip(row, weights) if w != 0]
    if any(math.isnan(v) or math.isnan(w) or (math.isinf(w) and v == -_INF) for v, w in pairs):
        return math.nan, math.nan
    m = max((v for v, _ in pairs), default=-_INF)
    if m == -_INF:
        return -_INF, 0.0
    if m == _INF:
        # the +inf entries decide (with any infinite weight elsewhere)
        infinite = [w * _INF if v == _INF else w for v, w in pairs if v == _INF or math.isinf(w)]
    else:
        terms = [w * math.exp(v - m) for v, w in pairs]
        infinite = [t for t in terms if not math.isfinite(t)]
    if infinite:
        total = sum(infinite)          # +inf, -inf, or NaN where they meet
        return (math.nan, math.nan) if math.isnan(total) else (_INF, math.copysign(1.0, total))
    s = math.fsum(terms)
    if s == 0:
        return -_INF, 0.0
    sign = math.copysign(1.0, s)
    # log |S| to full precision near |S| = 1: log1p of the exactly rounded |S| - 1
    if 0.5 <= abs(s) <= 2:
        log_s = math.log1p(math.fsum([sign * t for t in terms] + [-1.0]))
    else:
        log_s = math.log(abs(s))
    return m + log_s, sign


def special_logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """Reference for :func:`fastsoftmax.special.logsumexp` (SciPy's signature):
    ``log(sum(b * exp(a)))`` with the sign of the sum, exactly summed with
    ``math.fsum``; entries with ``b == 0`` take no part."""
    a = np.atleast_1d(np.asarray(a))
    b = np.ones((), a.dtype) if b is None else np.atleast_1d(np.asarray(b))
    result_dtype = np.result_type(a.dtype, b.dtype)
    if result_dtype.kind in "biu":
        result_dtype = np.dtype(np.float64)
    shape = np.broadcast_shapes(a.shape, b.shape)
    x = np.broadcast_to(a, shape).astype(np.float64)
    w = np.broadcast_to(b, shape).astype(np.float64)
    if isinstance(axis, list):
        axis = tuple(axis)
    rows, outer, order = _rows_of(x, axis)
    weights, _, _ = _rows_of(w, axis)
    if x.size == 0:      # SciPy: -inf with the sign of -inf
        pairs = [(-_INF, -1.0)] * math.prod(outer)
    else:
        pairs = [_weighted_row(r, ws) for r, ws in zip(rows, weights)]
    value = np.array([p[0] for p in pairs], dtype=np.float64).reshape(outer)
    sign = np.array([p[1] for p in pairs], dtype=np.float64).reshape(outer)
    if keepdims:
        reduced = order[len(outer):]
        value = value.reshape([1 if d in reduced else n for d, n in enumerate(shape)])
        sign = sign.reshape(value.shape)
    if not return_sign:
        value = np.where(sign < 0, math.nan, value)
    with np.errstate(over="ignore"):
        value, sign = value.astype(result_dtype), sign.astype(result_dtype)
    value, sign = value[()] if value.ndim == 0 else value, sign[()] if sign.ndim == 0 else sign
    return (value, sign) if return_sign else value
