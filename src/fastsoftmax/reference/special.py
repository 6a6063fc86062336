"""Reference for :mod:`fastsoftmax.special`: SciPy's ``logsumexp`` with
weights and signs, exactly summed.  (``special.softmax`` and
``special.log_softmax`` are :func:`fastsoftmax.reference.softmax` and
:func:`~fastsoftmax.reference.log_softmax` with ``axis=None``.)

>>> from fastsoftmax import reference
>>> value, sign = reference.special_logsumexp([0.0, 0.0], b=[1.0, -2.0], return_sign=True)
>>> float(value), float(sign)
(0.0, -1.0)
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from .forward import _INF, _rows_of

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from .._typing import Axis, FloatResult

__all__ = ["special_logsumexp"]


#: A weighted sum whose size is at most this fraction of the sum of its terms'
#: sizes has no significant digit left after cancellation (64 ulp of float64):
#: its value and sign are NaN.
NO_DIGITS_LEFT = 64 * 2.0 ** -52


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
        # Entries of one value add their weights exactly: where those cancel
        # (b = 1 and -1 at the same x), the entries take no part, and the
        # maximum is that of the rest.
        groups: dict[float, list[float]] = {}
        for v, w in pairs:
            groups.setdefault(v, []).append(w)
        pairs = [(v, math.fsum(ws) if all(map(math.isfinite, ws)) else sum(ws)) for v, ws in groups.items()]
        pairs = [(v, w) for v, w in pairs if w != 0]
        if not pairs:
            return -_INF, 0.0
        m = max(v for v, _ in pairs)
        terms = [w * math.exp(v - m) for v, w in pairs]
        infinite = [t for t in terms if not math.isfinite(t)]
    if infinite:
        total = sum(infinite)          # +inf, -inf, or NaN where they meet
        return (math.nan, math.nan) if math.isnan(total) else (_INF, math.copysign(1.0, total))
    s = math.fsum(terms)
    if abs(s) <= NO_DIGITS_LEFT * math.fsum(abs(t) for t in terms):
        # the terms' own rounding is as large as what is left of the sum
        return math.nan, math.nan
    if s == 0:
        return -_INF, 0.0
    sign = math.copysign(1.0, s)
    # log |S| to full precision near |S| = 1: log1p of the exactly rounded |S| - 1
    if 0.5 <= abs(s) <= 2:
        log_s = math.log1p(math.fsum([sign * t for t in terms] + [-1.0]))
    else:
        log_s = math.log(abs(s))
    return m + log_s, sign


@overload
def special_logsumexp(a: ArrayLike, axis: Axis = ..., b: ArrayLike | None = ..., keepdims: bool = ...,
                      return_sign: Literal[False] = ...) -> FloatResult: ...
@overload
def special_logsumexp(a: ArrayLike, axis: Axis = ..., b: ArrayLike | None = ..., keepdims: bool = ..., *,
                      return_sign: Literal[True]) -> tuple[FloatResult, FloatResult]: ...
@overload
def special_logsumexp(a: ArrayLike, axis: Axis, b: ArrayLike | None, keepdims: bool,
                      return_sign: Literal[True]) -> tuple[FloatResult, FloatResult]: ...
@overload
def special_logsumexp(a: ArrayLike, axis: Axis = ..., b: ArrayLike | None = ..., keepdims: bool = ...,
                      return_sign: bool = ...) -> FloatResult | tuple[FloatResult, FloatResult]: ...
def special_logsumexp(a: ArrayLike, axis: Axis = None, b: ArrayLike | None = None, keepdims: bool = False,
                      return_sign: bool = False) -> Any:
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
    rows, outer, axes = _rows_of(x, axis)
    weights, _, _ = _rows_of(w, axis)
    if x.size == 0:      # SciPy: -inf with the sign of -inf
        pairs = [(-_INF, -1.0)] * math.prod(outer)
    else:
        pairs = [_weighted_row(r, ws) for r, ws in zip(rows, weights)]
    value = np.array([p[0] for p in pairs], dtype=np.float64).reshape(outer)
    sign = np.array([p[1] for p in pairs], dtype=np.float64).reshape(outer)
    if keepdims:
        value = value.reshape([1 if d in axes else n for d, n in enumerate(shape)])
        sign = sign.reshape(value.shape)
    if not return_sign and x.size:
        # a negative sum has no log; an empty one is -inf (its sign, -1, only says so)
        value = np.where(sign < 0, math.nan, value)
    with np.errstate(over="ignore"):
        value, sign = value.astype(result_dtype), sign.astype(result_dtype)
    value, sign = value[()] if value.ndim == 0 else value, sign[()] if sign.ndim == 0 else sign
    return (value, sign) if return_sign else value
