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

__all__ = ["sample_distribution", "verify_draft_distribution"]


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


def _edit_row(row: list[float], history, repetition: float, presence: float, frequency: float,
              bias) -> list[float]:
    """The penalties of ``history`` on the raw logits (repetition, then
    presence and frequency), then the bias."""
    out = list(row)
    for v, c in Counter(int(v) for v in history if v != -1).items():
        if not -1 <= v < len(row):
            raise ValueError(f"has token id {v} in its history, outside [-1, {len(row)})")
        z = row[v]
        z = z / repetition if z > 0 else z * repetition
        out[v] = z - presence - frequency * c
    if bias is not None:
        out = [z + b for z, b in zip(out, bias)]
    return out


def _per_row(value, batch: tuple, off) -> list:
    """A scalar or per-row setting as one value per row (None: ``off``)."""
    if value is None:
        value = off
    return np.broadcast_to(np.asarray(value), batch).reshape(-1).tolist()


def _processed_rows(logits, axis, temperature, top_k, top_p, min_p, where, history, repetition_penalty,
                    presence_penalty, frequency_penalty, logit_bias, name):
    """(the rows' exact weights (lists of Fractions), x's float64 array, the
    batch shape, the reduced axes): every step of sample() on every row."""
    x = np.asarray(logits)
    x = x.astype(np.float64) if x.ndim else x.reshape(1).astype(np.float64)
    axis = _args.one_axis(axis, x.ndim, name)
    mask = np.ones(x.shape, dtype=bool) if where is None else np.broadcast_to(np.asarray(where, dtype=bool), x.shape)
    rows, batch, axes = _rows_of(x, axis)
    keep = _rows_of(mask, axis)[0]
    biases = [None] * len(rows) if logit_bias is None else \
        _rows_of(np.broadcast_to(np.asarray(logit_bias, dtype=np.float64), x.shape), axis)[0]
    histories = [[]] * len(rows) if history is None else \
        np.asarray(history).reshape(-1, np.shape(history)[-1]) if np.shape(history)[:-1] == batch else \
        np.broadcast_to(np.asarray(history), batch + np.shape(history)[-1:]).reshape(len(rows), -1)
    settings = zip(_per_row(temperature, batch, 1.0), _per_row(top_k, batch, 0), _per_row(top_p, batch, 1.0),
                   _per_row(min_p, batch, 0.0), _per_row(repetition_penalty, batch, 1.0),
                   _per_row(presence_penalty, batch, 0.0), _per_row(frequency_penalty, batch, 0.0))
    out = []
    for r, (row, k, bias, hist, (t, top_k_r, top_p_r, min_p_r, rep, pres, freq)) in enumerate(
            zip(rows, keep, biases, histories, settings)):
        try:
            row = _edit_row(row, hist, rep, pres, freq, bias)
            row = [v if take else -_INF for v, take in zip(row, k)]
            out.append(_sample_weights(row, t, top_k_r or None, top_p_r, min_p_r))
        except ValueError as e:
            where_ = tuple(int(i) for i in np.unravel_index(r, batch)) if batch else ()
            raise ValueError(f"{name}(): row {where_} {e}") from None
    return out, x, axes


def sample_distribution(logits: ArrayLike, axis: int = -1, *, temperature: ArrayLike = 1.0,
                        top_k: ArrayLike | None = None, top_p: ArrayLike | None = None,
                        min_p: ArrayLike | None = None, where: ArrayLike | None = None,
                        history: ArrayLike | None = None, repetition_penalty: ArrayLike | None = None,
                        presence_penalty: ArrayLike | None = None, frequency_penalty: ArrayLike | None = None,
                        logit_bias: ArrayLike | None = None) -> NDArray[np.float64]:
    """The distribution :func:`fastsoftmax.sample` draws each row's index from.

    Returns float64 probabilities of ``logits``' shape, summing to 1 along
    ``axis`` (exactly renormalised over the kept entries, 0 elsewhere).  The
    steps run in the order of :func:`fastsoftmax.sample`: the penalties of
    ``history`` on the raw logits, ``logit_bias``, ``where``, temperature,
    top-k, top-p, min-p.  Every setting may be one value per row
    (broadcastable to the batch shape); ``top_k`` 0 is off.  A row with
    ``T = 0`` is one-hot on its first maximum.  The edited logits and the
    weights ``math.exp`` are in double; every sum, comparison and the
    renormalisation are exact (``fractions.Fraction``).  Raises ValueError
    naming the first row with nothing to draw, as ``sample`` does.  The
    log-probabilities of ``sample(logprobs="processed")`` are the logarithms
    of this distribution.

    >>> from fastsoftmax import reference
    >>> reference.sample_distribution([0.0, 0.0, -math.inf], top_k=1).tolist()
    [0.5, 0.5, 0.0]
    >>> reference.sample_distribution([1.0, 1.0], history=[0, 0, -1], frequency_penalty=math.log(2) / 2).tolist()
    [0.3333333333333333, 0.6666666666666666]
    """
    weights, x, axes = _processed_rows(logits, axis, temperature, top_k, top_p, min_p, where, history,
                                       repetition_penalty, presence_penalty, frequency_penalty, logit_bias,
                                       "sample_distribution")
    out = []
    for w in weights:
        total = sum(w)
        out.append([float(v / total) for v in w])
    probs = _from_rows(out, x.shape, axes, np.float64)
    return probs if np.ndim(logits) else probs.reshape(())


def verify_draft_distribution(target_logits: ArrayLike, draft_tokens: ArrayLike,
                              draft_probs: ArrayLike | None = None, *, temperature: ArrayLike = 1.0,
                              top_k: ArrayLike | None = None, top_p: ArrayLike | None = None,
                              min_p: ArrayLike | None = None) -> NDArray[np.float64]:
    """The exact distribution of :func:`fastsoftmax.verify_draft`'s tokens.

    Returns float64 of shape (B, K + 1, V + 1): entry ``[b, i, v]`` is the
    probability that ``tokens[b, i] == v``, and ``[b, i, V]`` that it is
    ``-1`` (the request stopped before position ``i``).  The target
    distribution of each position is :func:`sample_distribution`'s with the
    same settings (one value or one per request); a draft is accepted with
    probability ``min(1, p / q)``, a rejection draws from ``max(0, p - q)``
    renormalised, all accepted draw the bonus token from position K; at
    ``T = 0`` a draft is accepted if it is the target's first maximum, which
    is emitted otherwise.  Exact arithmetic (``fractions.Fraction``) on the
    weights and probabilities.

    >>> from fastsoftmax import reference
    >>> target = np.log([[[0.5, 0.5], [0.25, 0.75]]])
    >>> reference.verify_draft_distribution(target, [[0]], [[[0.8, 0.2]]])[0].round(6).tolist()
    [[0.625, 0.375, 0.0], [0.15625, 0.46875, 0.375]]
    """
    x = np.asarray(target_logits, dtype=np.float64)
    draft = np.asarray(draft_tokens)
    batch, positions, n = x.shape
    settings = list(zip(_per_row(temperature, (batch,), 1.0), _per_row(top_k, (batch,), 0),
                        _per_row(top_p, (batch,), 1.0), _per_row(min_p, (batch,), 0.0)))
    out = np.zeros((batch, positions, n + 1))
    for b in range(batch):
        t, k, p_top, p_min = settings[b]
        reach = Fraction(1)
        for i in range(positions):
            w = _sample_weights(x[b, i].tolist(), t, k or None, p_top, p_min)
            total = sum(w)
            p = [v / total for v in w]
            if i == positions - 1:
                emitted = [reach * v for v in p]
                accept = Fraction(0)
            else:
                d = int(draft[b, i])
                if t == 0.0:
                    q = [Fraction(int(v == d)) for v in range(n)]
                    accept = Fraction(int(p[d] == 1))
                    residual = p
                else:
                    q = [Fraction(int(v == d)) for v in range(n)] if draft_probs is None else \
                        [Fraction(float(v)) for v in np.asarray(draft_probs, dtype=np.float64)[b, i]]
                    accept = Fraction(1) if q[d] == 0 else min(Fraction(1), p[d] / q[d])
                    residual = [max(Fraction(0), pv - qv) for pv, qv in zip(p, q)]
                    left = sum(residual)
                    residual = p if left == 0 else [v / left for v in residual]
                emitted = [reach * (1 - accept) * v for v in residual]
                emitted[d] += reach * accept
            out[b, i, :n] = [float(v) for v in emitted]
            out[b, i, n] = float(1 - reach)
            reach *= accept
    return out
