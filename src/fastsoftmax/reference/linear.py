"""Reference ``linear_cross_entropy``: the float64 oracle of
:func:`fastsoftmax.linear_cross_entropy`.

Everything in float64, the whole ``(rows, V)`` logits at once, written as
the definition reads: the logits, the cap, the temperature, each row's
log-sum-exp (shifted by the row maximum, summed with ``math.fsum``), the
coefficients ``a_c`` of :func:`fastsoftmax.reference.cross_entropy`, the
z-loss, and the gradients by the chain rule.  Independent of the kernels;
use it on small and medium sizes only (it holds the logits twice).

>>> import numpy as np
>>> from fastsoftmax import reference
>>> round(float(reference.linear_cross_entropy(np.eye(2), np.eye(2), np.array([0, 1]))), 12)
0.313261687518
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _args

__all__ = ["linear_cross_entropy"]


def _as_float64(value) -> np.ndarray:
    array = np.asarray(value)
    return array.astype(np.float32).astype(np.float64) if array.dtype.itemsize == 2 and array.dtype.kind != "f" \
        else array.astype(np.float64)


def linear_cross_entropy(input: Any, linear_weight: Any, target: Any, *, linear_bias: Any = None,
                         weight: Any = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                         reduction: str = "mean", temperature: float = 1.0, z_loss: float = 0.0,
                         softcap: float | None = None, return_grad: bool = False) -> Any:
    """Reference of :func:`fastsoftmax.linear_cross_entropy`, in float64.

    ``logits = input @ linear_weight.T + linear_bias``, capped to
    ``softcap * tanh(logits / softcap)``, divided by ``T``; per row not
    ignored, with ``lse`` its log-sum-exp and
    ``a_c = (1 - eps) * w[y] * [c == y] + eps / V * w[c]``, the loss is
    ``sum_c a_c * (lse - z_c) + z_loss * sum(a) * lse**2`` (classes with
    ``a_c = 0`` take no part).  "mean" divides by the sum of ``w[y]`` over
    the rows not ignored, 0.0 when there are none.  The gradient with
    respect to the logits before the cap is ``s / T * ((1 + 2 z_loss lse) *
    sum(a) * p - a) * (1 - tanh(logits / softcap)**2)``, with ``s`` the
    reduction's scale; ``grad_input = G @ W``, ``grad_linear_weight = G.T @
    input``, ``grad_linear_bias = G.sum(0)``.  Results are float64."""
    name = "linear_cross_entropy"
    x = _as_float64(input)
    w = _as_float64(linear_weight)
    classes, hidden = w.shape
    if x.shape[-1:] != (hidden,):
        raise ValueError(f"{name}(): linear_weight must be (V, H) with H = input's last dimension")
    t = float(temperature)
    eps = float(label_smoothing)
    outer = x.shape[:-1]
    x2 = x.reshape(-1, hidden)
    labels = _args.class_indices(target, outer, classes, ignore_index, name)
    class_weight = np.ones(classes) if weight is None else _as_float64(weight)

    raw = x2 @ w.T
    if linear_bias is not None:
        raw = raw + _as_float64(linear_bias)
    capped = raw if softcap is None else softcap * np.tanh(raw / softcap)
    z = capped / t

    rows = x2.shape[0]
    losses = [0.0] * rows
    grads = np.zeros((rows, classes))
    lses = [0.0] * rows
    live_weights = []
    for r in range(rows):
        label = int(labels[r])
        if label == ignore_index:
            continue
        live_weights.append(class_weight[label])
        a = eps / classes * class_weight
        a[label] += (1 - eps) * class_weight[label]
        row = z[r]
        top = row.max() if classes else -math.inf
        if not math.isfinite(top) or np.isnan(row).any():
            losses[r] = math.nan
            grads[r] = math.nan
            continue
        exps = np.exp(row - top)
        log_sum = math.log(math.fsum(exps))
        lse = top + log_sum
        total = math.fsum(a)
        used = a != 0
        with np.errstate(invalid="ignore"):
            losses[r] = math.fsum(a[used] * (lse - row[used])) + z_loss * total * lse * lse
        lses[r] = lse
        grads[r] = (1 + 2 * z_loss * lse) * total * exps / math.fsum(exps) - a
    if reduction == "mean":
        denominator = math.fsum(live_weights)
        scale = 0.0 if not live_weights else 1.0 / denominator if denominator else math.inf
        loss = np.float64(0.0 if not live_weights else math.fsum(losses) * scale)
    elif reduction == "sum":
        scale = 1.0
        loss = np.float64(math.fsum(losses))
    else:
        scale = 1.0
        loss = np.array(losses).reshape(outer)
        loss = loss[()] if loss.ndim == 0 else loss
    if not return_grad:
        return loss
    g = grads * (scale / t)
    if softcap is not None:
        g = g * (1 - np.tanh(raw / softcap) ** 2)
    grad_bias = None if linear_bias is None else g.sum(axis=0)
    return loss, (g @ w).reshape(x.shape), g.T @ x2, grad_bias
