"""Reference backward functions and losses.

Float64 whatever the input dtype: the exact value rounded once, where the
only inexact steps are ``math.exp`` / ``math.log`` of single values.
Gradients are formed with :class:`fractions.Fraction` from those
exponentials and rounded once, so no cancellation (``p - 1`` of a confident
row) is lost.

>>> import numpy as np
>>> from fastsoftmax import reference
>>> loss, grad = reference.cross_entropy(np.array([[0.0, 0.0]]), np.array([1]), return_grad=True)
>>> round(float(loss), 12), grad.tolist()
(0.69314718056, [[0.5, -0.5]])
"""
from __future__ import annotations

import math
import operator
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal, Union, overload

import numpy as np

from .. import _args
from .forward import _INF, _dtypes, _from_rows, _mask, _row_terms, _rows_of

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from .._typing import Axis, RealScalar, Temperature

    # The training functions' results: float64 whatever the input; a 0-d result is a scalar
    Float64Result = Union[NDArray[np.float64], np.float64]

__all__ = ["softmax_backward", "log_softmax_backward", "cross_entropy", "kl_div", "contrastive_loss"]


# ---- exact arithmetic helpers for the training functions ----------------------

def _exp(v: float) -> float:
    try:
        return math.exp(v)
    except OverflowError:
        return _INF


def _to_float(q: Fraction) -> float:
    """q correctly rounded to a double (int / int division rounds correctly)."""
    try:
        return q.numerator / q.denominator
    except OverflowError:
        return _INF if q > 0 else -_INF


def _float_sum(values) -> float:
    """math.fsum with IEEE results where it raises (inf - inf, intermediate overflow)."""
    values = list(values)
    try:
        return math.fsum(values)
    except ValueError:
        return math.nan
    except OverflowError:
        return sum(values)


def _all_finite(*groups) -> bool:
    return all(math.isfinite(v) for group in groups for v in group)


def _training_temperature(temperature, name: str) -> float:
    temperature = _args.scalar(temperature)
    if not _args.is_real(temperature):
        raise TypeError(f"{name}(): temperature must be a real scalar, got "
                        f"{type(temperature).__name__} {temperature!r:.60}")
    t = float(temperature)
    if not 0.0 < t < _INF:
        raise ValueError(f"{name}(): temperature must be finite and > 0, got {temperature!r}")
    return t


def _class_axis(axis, ndim: int, name: str) -> int:
    from numpy.exceptions import AxisError

    try:
        a = None if _args.is_bool(axis) else operator.index(axis)
    except TypeError:
        a = None
    if a is None:
        raise TypeError(f"{name}(): axis must be an int, got {axis!r:.60}")
    if ndim == 0:
        raise ValueError(f"{name}(): the input must have at least one dimension (the class axis)")
    if not -ndim <= a < ndim:
        raise AxisError(f"{name}(): axis {a} is out of bounds for an array of dimension {ndim}")
    return a % ndim


def _check_reduction(reduction, accepted, name: str) -> None:
    if not isinstance(reduction, str) or reduction not in accepted:
        raise ValueError(f"{name}(): reduction must be one of {', '.join(map(repr, accepted))}, "
                         f"got {reduction!r:.60}")


def _reduce(row_values, reduction, denominator):
    """Per-row values (Fraction where finite, float otherwise) reduced: a
    float64 array for "none", else a float64 scalar rounded once.  A zero
    denominator of "mean" with nothing to average gives 0.0 (the caller
    passes None for that case)."""
    if reduction == "none":
        return np.array([_to_float(v) if isinstance(v, Fraction) else v for v in row_values],
                        dtype=np.float64)
    if denominator is None:
        return np.float64(0.0)
    if all(isinstance(v, Fraction) for v in row_values) and isinstance(denominator, Fraction) \
            and denominator != 0:
        return np.float64(_to_float(sum(row_values, Fraction(0)) / denominator))
    total = _float_sum(_to_float(v) if isinstance(v, Fraction) else v for v in row_values)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.float64(total) / np.float64(float(denominator))


def _loss_result(losses, grads, reduction, denominator, kept_shape, shape, axes):
    """The reduced loss ("none": in ``kept_shape``, a scalar for 1-d logits),
    and with ``grads`` (the rows' gradients) ``(loss, gradient in shape)``."""
    loss = _reduce(losses, reduction, denominator)
    if reduction == "none":
        loss = loss.reshape(kept_shape)
        loss = loss[()] if loss.ndim == 0 else loss
    if grads is None:
        return loss
    return loss, _from_rows(grads, shape, axes, np.float64)


# ---- backward functions ---------------------------------------------------------

def _softmax_backward_row(g, y, keep, t):
    kept = [(gi, yi) for gi, yi, k in zip(g, y, keep) if k]
    if not _all_finite(*kept):
        dot = _float_sum(gi * yi for gi, yi in kept)
        return [yi * (gi - dot) / t if k else 0.0 for gi, yi, k in zip(g, y, keep)]
    dot = sum((Fraction(gi) * Fraction(yi) for gi, yi in kept), Fraction(0))
    ft = Fraction(t)
    return [_to_float(Fraction(yi) * (Fraction(gi) - dot) / ft) if k else 0.0
            for gi, yi, k in zip(g, y, keep)]


def _log_softmax_backward_row(g, y, keep, t):
    kept_g = [gi for gi, k in zip(g, keep) if k]
    probs = [_exp(yi) for yi in y]
    kept_p = [p for p, k in zip(probs, keep) if k]
    if not _all_finite(kept_g, kept_p):
        total = _float_sum(kept_g)
        return [(gi - p * total) / t if k else 0.0 for gi, p, k in zip(g, probs, keep)]
    total = sum((Fraction(gi) for gi in kept_g), Fraction(0))
    ft = Fraction(t)
    return [_to_float((Fraction(gi) - Fraction(p) * total) / ft) if k else 0.0
            for gi, p, k in zip(g, probs, keep)]


def _pair(name: str, first, second, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Two inputs of one shape, in float64."""
    a = _dtypes(np.asarray(first))[0]
    b = _dtypes(np.asarray(second))[0]
    if a.shape != b.shape:
        raise ValueError(f"{name}(): {names[0]} has shape {a.shape} and {names[1]} has shape {b.shape}; "
                         "they must be equal")
    return a, b


def _backward(row_fn, name, grad, y, axis, temperature, where):
    g, yv = _pair(name, grad, y, ("grad", "y"))
    t = _training_temperature(temperature, name)
    mask = _mask(where, g.shape, name)
    if mask is None:
        mask = np.ones(g.shape, dtype=bool)
    g_rows, _, axes = _rows_of(g, axis)
    y_rows = _rows_of(yv, axis)[0]
    keep_rows = _rows_of(mask, axis)[0]
    values = [row_fn(gr, yr, kr, t) for gr, yr, kr in zip(g_rows, y_rows, keep_rows)]
    return _from_rows(values, g.shape, axes, np.float64)


def softmax_backward(grad: ArrayLike, y: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0,
                     where: ArrayLike | None = None) -> Float64Result:
    """Reference softmax_backward; see :func:`fastsoftmax.softmax_backward`.

    ``y * (grad - sum(grad * y)) / T`` along ``axis``, the sum over the
    entries ``where`` keeps; masked entries and fully masked rows give 0.
    Exact (fractions) for finite inputs, float64 result."""
    return _backward(_softmax_backward_row, "softmax_backward", grad, y, axis, temperature, where)


def log_softmax_backward(grad: ArrayLike, y: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0,
                         where: ArrayLike | None = None) -> Float64Result:
    """Reference log_softmax_backward; see :func:`fastsoftmax.log_softmax_backward`.

    ``(grad - exp(y) * sum(grad)) / T`` along ``axis``, the sum over the
    entries ``where`` keeps; masked entries and fully masked rows give 0.
    Exact (fractions) apart from ``math.exp``, float64 result."""
    return _backward(_log_softmax_backward_row, "log_softmax_backward", grad, y, axis, temperature,
                     where)


# ---- losses -------------------------------------------------------------------

def _row_loss(coefs, terms):
    """sum_c coefs[c] * -log_softmax_c: a Fraction where finite, else a float.
    A class with coefficient 0 contributes exactly 0, even at log-probability -inf."""
    shifts, _, log_sum = terms
    exact = Fraction(0)
    infinite = []
    for a, d in zip(coefs, shifts):
        if a == 0:
            continue
        if math.isfinite(d):
            exact += a * (Fraction(log_sum) - Fraction(d))
        else:                              # d = -inf: probability 0
            infinite.append(a * _INF)
    if infinite:
        return _float_sum(infinite)
    return exact


def _row_grad(coefs, terms, scale):
    """d/dx of sum_c coefs[c] * -log_softmax_c(x / T), times ``scale`` = 1 / (T * D):
    (p_j * sum(coefs) - coefs[j]) * scale, formed exactly and rounded once."""
    _, exps, _ = terms
    if not (isinstance(scale, Fraction) and all(isinstance(a, Fraction) for a in coefs)):
        total_e = math.fsum(exps)
        total_a = _float_sum(float(a) for a in coefs)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return [float((np.float64(e) / total_e * total_a - float(a)) * np.float64(float(scale)))
                    for e, a in zip(exps, coefs)]
    total_e = sum((Fraction(e) for e in exps), Fraction(0))
    total_a = sum(coefs, Fraction(0))
    return [_to_float((Fraction(e) * total_a - a * total_e) * scale / total_e)
            for e, a in zip(exps, coefs)]


def _as_fraction(v: float):
    return Fraction(v) if math.isfinite(v) else v


def _class_weights(weight, n_classes: int, name: str):
    if weight is None:
        return [Fraction(1)] * n_classes
    w = _args.class_weights(weight, n_classes, name)
    return [_as_fraction(float(v)) for v in w.astype(np.float64).tolist()]


def _check_smoothing(label_smoothing, name: str) -> Fraction:
    if not _args.is_real(label_smoothing):
        raise TypeError(f"{name}(): label_smoothing must be a real scalar, got "
                        f"{type(label_smoothing).__name__} {label_smoothing!r:.60}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"{name}(): label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return Fraction(float(label_smoothing))


# The losses return (loss, gradient) with return_grad=True.
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = ..., *, temperature: Temperature = ...,
                  weight: ArrayLike | None = ..., ignore_index: int = ..., label_smoothing: RealScalar = ...,
                  reduction: str = ..., return_grad: Literal[False] = ...) -> Float64Result: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = ..., *, temperature: Temperature = ...,
                  weight: ArrayLike | None = ..., ignore_index: int = ..., label_smoothing: RealScalar = ...,
                  reduction: str = ..., return_grad: Literal[True]
                  ) -> tuple[Float64Result, NDArray[np.float64]]: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = ..., *, temperature: Temperature = ...,
                  weight: ArrayLike | None = ..., ignore_index: int = ..., label_smoothing: RealScalar = ...,
                  reduction: str = ..., return_grad: bool = ...
                  ) -> Float64Result | tuple[Float64Result, NDArray[np.float64]]: ...
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = -1, *, temperature: Temperature = 1.0,
                  weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: RealScalar = 0.0,
                  reduction: str = "mean", return_grad: bool = False) -> Any:
    """Reference cross-entropy; see :func:`fastsoftmax.cross_entropy`.

    PyTorch's ``F.cross_entropy(logits / T, target, ...)`` with the class axis
    at ``axis``: per row ``sum_c a_c * -log_softmax_c(x / T)`` with
    ``a_c = (1 - eps) * w[y] * [c == y] + eps / C * w[c]`` for a class index y
    (``a = 0`` for an ignored row) and ``a_c = w[c] * ((1 - eps) * q_c + eps / C)``
    for probabilities q.  "mean" divides by the sum of ``w[y]`` over the rows
    not ignored (class indices) or by the number of rows (probabilities), and
    is 0.0 when there is nothing to average.  A class whose coefficient is 0
    contributes 0 even where its logit is -inf (PyTorch gives NaN there).
    The gradient is ``(softmax(x / T) * sum(a) - a) / T``, divided by the same
    denominator for "mean"; for "none" it is the gradient of the losses' sum.
    Ignored rows get loss 0 and gradient 0.  Results are float64."""
    name = "cross_entropy"
    x = _dtypes(np.asarray(logits))[0]
    axis = _class_axis(axis, x.ndim, name)
    t = _training_temperature(temperature, name)
    _check_reduction(reduction, ("mean", "sum", "none"), name)
    eps = _check_smoothing(label_smoothing, name)
    n_classes = x.shape[axis]
    weights = _class_weights(weight, n_classes, name)
    target = np.asarray(target)
    kept_shape = x.shape[:axis] + x.shape[axis + 1:]
    rows, _, axes = _rows_of(x, axis)

    if target.dtype.kind in "iu":
        if target.shape != kept_shape:
            raise ValueError(f"{name}(): class-index target has shape {target.shape}, expected "
                             f"{kept_shape} (logits' shape {x.shape} without axis {axis})")
        labels = target.reshape(-1).tolist()
        for position, label in zip(np.ndindex(*kept_shape), labels):
            if label != ignore_index and not 0 <= label < n_classes:
                raise ValueError(f"{name}(): target value {label} at position {position} is not a "
                                 f"class index in [0, {n_classes}) nor ignore_index ({ignore_index})")
        smooth = [eps * w / n_classes if isinstance(w, Fraction) else float(eps) * w / n_classes
                  for w in weights]
        coefs = []
        for label in labels:
            if label == ignore_index:
                coefs.append(None)
                continue
            row = list(smooth)
            row[label] = row[label] + (1 - eps) * weights[label]
            coefs.append(row)
        live = [weights[label] for label in labels if label != ignore_index]
        if not live:
            denominator = None
        elif all(isinstance(w, Fraction) for w in live):
            denominator = sum(live, Fraction(0))
        else:
            denominator = _float_sum(float(w) for w in live)
    elif target.dtype.kind == "f":
        if target.shape != x.shape:
            raise ValueError(f"{name}(): probability target has shape {target.shape}, expected "
                             f"logits' shape {x.shape}")
        coefs = []
        for q_row in _rows_of(target.astype(np.float64), axis)[0]:
            coefs.append([w * ((1 - eps) * Fraction(q) + eps / n_classes)
                          if isinstance(w, Fraction) and math.isfinite(q)
                          else float(w) * ((1 - float(eps)) * q + float(eps) / n_classes)
                          for w, q in zip(weights, q_row)])
        denominator = Fraction(len(rows)) if rows else None
    else:
        raise TypeError(f"{name}(): target must hold integer class indices or floating class "
                        f"probabilities, got dtype {target.dtype}")

    ft = Fraction(t)
    if reduction != "mean":
        scale = 1 / ft
    elif denominator is None:
        scale = Fraction(0)
    elif isinstance(denominator, Fraction) and denominator != 0:
        scale = 1 / (ft * denominator)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = float(np.float64(1.0) / (np.float64(t) * np.float64(float(denominator))))
    losses, grads = [], []
    for row, a in zip(rows, coefs):
        if a is None:
            losses.append(Fraction(0))
            grads.append([0.0] * n_classes)
            continue
        terms = _row_terms(row, t)
        if terms is None:
            losses.append(math.nan)
            grads.append([math.nan] * n_classes)
            continue
        losses.append(_row_loss(a, terms))
        if return_grad:
            grads.append(_row_grad(a, terms, scale))
    return _loss_result(losses, grads if return_grad else None, reduction,
                        denominator if reduction == "mean" else Fraction(1), kept_shape, x.shape, axes)


@overload
def kl_div(student_logits: ArrayLike, teacher_logits: ArrayLike, axis: int = ..., *,
           temperature: Temperature = ..., reduction: str = ...,
           return_grad: Literal[False] = ...) -> Float64Result: ...
@overload
def kl_div(student_logits: ArrayLike, teacher_logits: ArrayLike, axis: int = ..., *,
           temperature: Temperature = ..., reduction: str = ...,
           return_grad: Literal[True]) -> tuple[Float64Result, NDArray[np.float64]]: ...
@overload
def kl_div(student_logits: ArrayLike, teacher_logits: ArrayLike, axis: int = ..., *,
           temperature: Temperature = ..., reduction: str = ...,
           return_grad: bool = ...) -> Float64Result | tuple[Float64Result, NDArray[np.float64]]: ...
def kl_div(student_logits: ArrayLike, teacher_logits: ArrayLike, axis: int = -1, *,
           temperature: Temperature = 1.0, reduction: str = "batchmean", return_grad: bool = False) -> Any:
    """Reference distillation loss; see :func:`fastsoftmax.kl_div`.

    Per row ``T**2 * sum_c q_c * (log q_c - log p_c)`` with
    ``q = softmax(teacher / T)`` and ``p = softmax(student / T)``; classes
    with ``q_c = 0`` contribute 0, ``q_c > 0`` where ``p_c = 0`` gives +inf;
    a row where either softmax is undefined (NaN, +inf, only -inf) is NaN.
    The gradient with respect to the student logits is ``T * (p - q)``.
    "batchmean" divides by the number of rows (0.0 without rows).  Float64."""
    name = "kl_div"
    s, tl = _pair(name, student_logits, teacher_logits, ("student_logits", "teacher_logits"))
    axis = _class_axis(axis, s.ndim, name)
    t = _training_temperature(temperature, name)
    _check_reduction(reduction, ("batchmean", "sum", "none"), name)
    s_rows, _, axes = _rows_of(s, axis)
    t_rows = _rows_of(tl, axis)[0]
    n_rows, n_classes = len(s_rows), s.shape[axis]
    ft = Fraction(t)
    if reduction == "batchmean":
        denominator = Fraction(n_rows) if n_rows else None
        scale = ft / denominator if n_rows else Fraction(0)
    else:
        denominator, scale = Fraction(1), ft
    losses, grads = [], []
    for s_row, t_row in zip(s_rows, t_rows):
        student, teacher = _row_terms(s_row, t), _row_terms(t_row, t)
        if student is None or teacher is None:
            losses.append(math.nan)
            grads.append([math.nan] * n_classes)
            continue
        s_shift, s_exp, s_log_sum = student
        t_shift, t_exp, t_log_sum = teacher
        s_total = sum((Fraction(e) for e in s_exp), Fraction(0))
        t_total = sum((Fraction(e) for e in t_exp), Fraction(0))
        loss, infinite = Fraction(0), False
        for ds, es, dt, et in zip(s_shift, s_exp, t_shift, t_exp):
            if dt == -_INF:
                continue                      # teacher probability 0: contributes 0
            if ds == -_INF:
                infinite = True
                continue
            log_ratio = (Fraction(dt) - Fraction(t_log_sum)) - (Fraction(ds) - Fraction(s_log_sum))
            loss += Fraction(et) / t_total * log_ratio
        losses.append(_INF if infinite else ft * ft * loss)
        if return_grad:
            grads.append([_to_float((Fraction(es) * t_total - Fraction(et) * s_total) * scale
                                    / (s_total * t_total))
                          for es, et in zip(s_exp, t_exp)])
    return _loss_result(losses, grads if return_grad else None, reduction, denominator,
                        s.shape[:axis] + s.shape[axis + 1:], s.shape, axes)


@overload
def contrastive_loss(similarity: ArrayLike, *, temperature: Temperature = ..., symmetric: bool = ...,
                     reduction: str = ..., return_grad: Literal[False] = ...) -> Float64Result: ...
@overload
def contrastive_loss(similarity: ArrayLike, *, temperature: Temperature = ..., symmetric: bool = ...,
                     reduction: str = ..., return_grad: Literal[True]
                     ) -> tuple[Float64Result, NDArray[np.float64]]: ...
@overload
def contrastive_loss(similarity: ArrayLike, *, temperature: Temperature = ..., symmetric: bool = ...,
                     reduction: str = ..., return_grad: bool = ...
                     ) -> Float64Result | tuple[Float64Result, NDArray[np.float64]]: ...
def contrastive_loss(similarity: ArrayLike, *, temperature: Temperature = 0.07, symmetric: bool = True,
                     reduction: str = "mean", return_grad: bool = False) -> Any:
    """Reference contrastive (InfoNCE / CLIP) loss; see :func:`fastsoftmax.contrastive_loss`.

    Row loss i: ``cross_entropy`` of row i of ``similarity / T`` against
    class i; column loss i: the same down column i.  ``symmetric=True``
    averages the two directions: "none" gives ``(row_i + column_i) / 2`` per
    pair (shape (N,)), "sum" their sum and "mean" their mean, so that "mean"
    is CLIP's ``(CE_rows + CE_columns) / 2``.  The gradient is that of the
    returned loss ("none": of its sum) with respect to ``similarity``.  Float64."""
    name = "contrastive_loss"
    sim = _dtypes(np.asarray(similarity))[0]
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"{name}(): similarity must be a square (N, N) matrix, got shape {sim.shape}")
    _training_temperature(temperature, name)
    _check_reduction(reduction, ("mean", "sum", "none"), name)
    _args.flag(symmetric, "symmetric", name)
    n = sim.shape[0]
    labels = np.arange(n)
    directions = [1, 0] if symmetric else [1]
    parts = [cross_entropy(sim, labels, axis, temperature=temperature, reduction="none",
                           return_grad=True) for axis in directions]
    share = Fraction(1, len(directions))
    per_pair = [share * sum((Fraction(float(p[0][i])) for p in parts), Fraction(0))
                if all(math.isfinite(p[0][i]) for p in parts)
                else float(share) * _float_sum(float(p[0][i]) for p in parts)
                for i in range(n)]
    loss = _reduce(per_pair, reduction, (Fraction(n) if n else None) if reduction == "mean"
                   else Fraction(1))
    if not return_grad:
        return loss
    scale = share / n if reduction == "mean" and n else share
    grads = [p[1].ravel().tolist() for p in parts]
    grad = [_to_float(scale * sum((Fraction(g) for g in entry), Fraction(0)))
            if _all_finite(entry) else float(scale) * _float_sum(entry)
            for entry in zip(*grads)]
    return loss, np.array(grad, dtype=np.float64).reshape(sim.shape)
