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

__all__ = ["softmax", "log_softmax", "logsumexp", "sample_distribution"]

_INF = math.inf


def _dtypes(x: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    kind = x.dtype.kind
    if kind == "f" and x.dtype.itemsize in (2, 4, 8):
        result = np.dtype(f"f{x.dtype.itemsize}")
    elif kind in "biu":
        result = np.dtype(np.float64)
    else:
        raise TypeError(f"unsupported input dtype {x.dtype}")
    return x.astype(np.float64), result


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


def _elementwise(row_fn, x, axis, temperature):
    x, result_dtype = _dtypes(np.asarray(x))
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


def softmax(x, axis=-1, *, temperature=1.0):
    """Reference softmax; see :func:`fastsoftmax.softmax`."""
    return _elementwise(_softmax_row, x, axis, temperature)


def log_softmax(x, axis=-1, *, temperature=1.0):
    """Reference log-softmax; see :func:`fastsoftmax.log_softmax`."""
    return _elementwise(_log_softmax_row, x, axis, temperature)


def logsumexp(x, axis=-1, *, temperature=1.0, keepdims=False):
    """Reference log-sum-exp; see :func:`fastsoftmax.logsumexp`."""
    x, result_dtype = _dtypes(np.asarray(x))
    t = float(temperature)
    rows, outer, order = _rows_of(x, axis)
    out = np.array([_logsumexp_row(r, t) for r in rows], dtype=np.float64).reshape(outer)
    if keepdims and x.ndim:
        reduced = order[len(outer):]
        out = out.reshape([1 if a in reduced else s for a, s in enumerate(x.shape)])
    with np.errstate(over="ignore"):
        out = out.astype(result_dtype)
    return out[()] if out.ndim == 0 else out


# ---- sampling: the distribution fastsoftmax.sample draws from ----------------

def _sample_weights(row: list[float], t: float, top_k, top_p, min_p) -> list:
    """Exact unnormalised weights (Fractions; 0 outside the kept set) of one
    row whose masked entries are already -inf.  Raises ValueError (with a
    message that the caller completes with the row) for a row with nothing to
    draw."""
    from collections import Counter
    from fractions import Fraction

    if any(math.isnan(v) for v in row):
        raise ValueError("contains NaN")
    if not row or max(row) == -_INF:
        raise ValueError("has nothing to draw")
    m = max(row)
    if t == 0.0:
        first = row.index(m)
        return [Fraction(1) if i == first else Fraction(0) for i in range(len(row))]
    if m == _INF:
        raise ValueError("contains +inf")
    kept = [True] * len(row)
    # 2. top-k on the logits: ties with the k-th largest are kept
    if top_k is not None and top_k < len(row):
        kth = sorted(row, reverse=True)[top_k - 1]
        kept = [v >= kth for v in row]
    # 1. temperature: exp((x - max) / T) in double, exactly summed from here on
    if math.isinf(t):
        weights = [Fraction(1) if k and v != -_INF else Fraction(0) for v, k in zip(row, kept)]
    else:
        weights = [Fraction(math.exp(_scaled_diff(v, m, t))) if k else Fraction(0) for v, k in zip(row, kept)]
    # 3. top-p: the smallest most likely set reaching top_p of the mass, ties kept
    if top_p is not None and top_p < 1.0:
        goal = Fraction(top_p) * sum(weights)
        running = Fraction(0)
        for w, ties in sorted(Counter(weights).items(), reverse=True):
            running += w * ties
            if running >= goal:
                weights = [v if v >= w else Fraction(0) for v in weights]
                break
    # 4. min-p, relative to the largest probability
    if min_p is not None and min_p > 0.0:
        cut = Fraction(min_p) * max(weights)
        weights = [v if v >= cut else Fraction(0) for v in weights]
    return weights


def sample_distribution(logits, axis=-1, *, temperature=1.0, top_k=None, top_p=None, min_p=None, where=None):
    """The distribution :func:`fastsoftmax.sample` draws each row's index from.

    Returns float64 probabilities of ``logits``' shape, summing to 1 along
    ``axis`` (exactly renormalised over the kept entries, 0 elsewhere).  The
    filters run in the order of :func:`fastsoftmax.sample`; ``temperature``
    may be one value per row (broadcastable to the batch shape).  A row with
    ``T = 0`` is one-hot on its first maximum.  Weights are ``math.exp`` in
    double; every sum, comparison and the renormalisation are exact
    (``fractions.Fraction``).  Raises ValueError naming the first row with
    nothing to draw, as ``sample`` does.

    >>> from fastsoftmax import reference
    >>> reference.sample_distribution([0.0, 0.0, -math.inf], top_k=1).tolist()
    [0.5, 0.5, 0.0]
    """
    x = np.asarray(logits)
    x = x.astype(np.float64) if x.ndim else x.reshape(1).astype(np.float64)
    mask = np.ones(x.shape, dtype=bool) if where is None else np.broadcast_to(np.asarray(where, dtype=bool), x.shape)
    moved = np.moveaxis(x, axis, -1)
    batch = moved.shape[:-1]
    rows = moved.reshape(-1, moved.shape[-1]).tolist()
    keep = np.moveaxis(mask, axis, -1).reshape(len(rows), -1).tolist()
    temps = np.broadcast_to(np.asarray(temperature, dtype=np.float64), batch).reshape(-1).tolist()
    out = []
    for r, (row, k, t) in enumerate(zip(rows, keep, temps)):
        row = [v if take else -_INF for v, take in zip(row, k)]
        try:
            weights = _sample_weights(row, t, top_k, top_p, min_p)
        except ValueError as e:
            where_ = tuple(int(i) for i in np.unravel_index(r, batch)) if batch else ()
            raise ValueError(f"sample_distribution(): row {where_} {e}") from None
        total = sum(weights)
        out.append([float(w / total) for w in weights])
    probs = np.array(out, dtype=np.float64).reshape(moved.shape)
    probs = np.moveaxis(probs, -1, axis)
    return probs if np.ndim(logits) else probs.reshape(())
