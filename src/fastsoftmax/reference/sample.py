"""Reference for :func:`fastsoftmax.sample`: the exact distribution each
row's index is drawn from, after the same filters in the same order.
"""
from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from .. import _args
from .forward import _INF, _from_rows, _rows_of, _scaled_diff

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from .._typing import RealScalar

__all__ = ["sample_distribution"]


def _sample_weights(row: list[float], t: float, top_k, top_p, min_p) -> list:
    """Exact unnormalised weights (Fractions; 0 outside the kept set) of one
    row whose masked entries are already -inf.  Raises ValueError (with a
    message that the caller completes with the row) for a row with nothing to
    draw."""
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


def sample_distribution(logits: ArrayLike, axis: int = -1, *, temperature: ArrayLike = 1.0,
                        top_k: int | None = None, top_p: RealScalar | None = None, min_p: RealScalar | None = None,
                        where: ArrayLike | None = None) -> NDArray[np.float64]:
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
    axis = _args.one_axis(axis, x.ndim, "sample_distribution")
    mask = np.ones(x.shape, dtype=bool) if where is None else np.broadcast_to(np.asarray(where, dtype=bool), x.shape)
    rows, batch, axes = _rows_of(x, axis)
    keep = _rows_of(mask, axis)[0]
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
    probs = _from_rows(out, x.shape, axes, np.float64)
    return probs if np.ndim(logits) else probs.reshape(())
