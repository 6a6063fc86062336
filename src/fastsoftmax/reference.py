"""Pure-Python reference implementation: the oracle for the tests.

The same functions and the same special-value rules as the compiled ones,
written as plainly as possible with the ``math`` module: each row's exponentials
come from ``math.exp`` in double precision and are summed exactly with
``math.fsum``.  NumPy is used only to walk rows and to build the result array.
Slow on purpose; never use it on large data.

softmax, log_softmax and logsumexp return the result dtype of the compiled
functions.  The training functions (the backward functions and the losses)
return float64 whatever the input dtype: the exact value rounded once, where
the only inexact steps are ``math.exp`` / ``math.log`` of single values.
Gradients are formed with :class:`fractions.Fraction` from those exponentials
and rounded once, so no cancellation (``p - 1`` of a confident row) is lost.
"""
from __future__ import annotations

import math
import numbers
import operator
from fractions import Fraction

from typing import TYPE_CHECKING, Any, Literal, Union, overload

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike, NDArray

    from ._typing import Axis, FloatResult, RealScalar, Temperature

    # The training functions' results: float64 whatever the input; a 0-d result is a scalar
    Float64Result = Union[NDArray[np.float64], np.float64]

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
           "cross_entropy", "kl_div", "contrastive_loss", "special_logsumexp",
           "sample_distribution"]

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


def _row_terms(row, t):
    """For 0 < t < inf and a row whose softmax is defined: the shifts
    (x - max) / t, their exponentials and the log of the exponentials' sum.
    None for a row with a NaN, a +inf or only -inf (and an empty row)."""
    kind, m, count, rest = _row_summary(row, t)
    if kind != "ok":
        return None
    shifts = [_scaled_diff(v, m, t) for v in row]
    return shifts, [math.exp(d) for d in shifts], _log_sum(count, rest)


# ---- where= -----------------------------------------------------------------

def _mask(where, shape, name):
    """``where`` as a boolean array of ``shape`` (a broadcast view), or None."""
    if where is None:
        return None
    mask = np.asarray(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name}(): where must be a boolean array_like, got dtype {mask.dtype}")
    try:
        fits = np.broadcast_shapes(mask.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}(): where has shape {mask.shape}, which does not broadcast to "
                         f"the input's shape {shape}")
    return np.broadcast_to(mask, shape)


def _masked_rows(x, where, axis, name):
    """(rows of x with masked entries set to -inf, rows of the mask or None
    (everything kept), shape of the kept axes, axis order)."""
    mask = _mask(where, x.shape, name)
    rows, outer, order = _rows_of(x, axis)
    if mask is None:
        return rows, None, outer, order
    keep = _rows_of(mask, axis)[0]
    rows = [[v if k else -_INF for v, k in zip(row, kept)] for row, kept in zip(rows, keep)]
    return rows, keep, outer, order


def _from_rows(values, shape, order, dtype):
    """Rows computed in the moved axis order, back in ``shape`` (C-contiguous) as ``dtype``."""
    values = np.array(values, dtype=np.float64)
    with np.errstate(over="ignore"):   # results beyond the dtype's range round to inf
        if not shape:
            return values.reshape(()).astype(dtype)[()]
        moved = values.reshape([shape[a] for a in order]).transpose(np.argsort(order))
        return np.ascontiguousarray(moved, dtype=dtype)


def _elementwise(row_fn, x, axis, temperature, where, fully_masked, name, dtype=None):
    x, result_dtype = _dtypes(np.asarray(x), dtype)
    t = float(temperature)
    rows, keep, _, order = _masked_rows(x, where, axis, name)
    if keep is None:
        values = [row_fn(row, t) for row in rows]
    else:
        values = [row_fn(row, t) if any(kept) else [fully_masked] * len(row)
                  for row, kept in zip(rows, keep)]
    return _from_rows(values, x.shape, order, result_dtype)


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
    t = float(temperature)
    rows, keep, outer, order = _masked_rows(x, where, axis, "logsumexp")
    out = np.array([_logsumexp_row(r, t) if keep is None or any(keep[i]) else -_INF
                    for i, r in enumerate(rows)], dtype=np.float64).reshape(outer)
    if keepdims and x.ndim:
        reduced = order[len(outer):]
        out = out.reshape([1 if a in reduced else s for a, s in enumerate(x.shape)])
    with np.errstate(over="ignore"):
        out = out.astype(result_dtype)
    return out[()] if out.ndim == 0 else out


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
    if isinstance(temperature, np.ndarray) and temperature.ndim == 0:
        temperature = temperature[()]
    if isinstance(temperature, (bool, np.bool_)) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"{name}(): temperature must be a real scalar, got "
                        f"{type(temperature).__name__} {temperature!r:.60}")
    t = float(temperature)
    if not 0.0 < t < _INF:
        raise ValueError(f"{name}(): temperature must be finite and > 0, got {temperature!r}")
    return t


def _class_axis(axis, ndim: int, name: str) -> int:
    from numpy.exceptions import AxisError

    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{name}(): axis must be an int, got {axis!r}")
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name}(): axis must be an int, got {axis!r:.60}") from None
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


def _backward(row_fn, name, grad, y, axis, temperature, where):
    g = _dtypes(np.asarray(grad))[0]
    yv = _dtypes(np.asarray(y))[0]
    if g.shape != yv.shape:
        raise ValueError(f"{name}(): grad has shape {g.shape} and y has shape {yv.shape}; "
                         "they must be equal")
    t = _training_temperature(temperature, name)
    mask = _mask(where, g.shape, name)
    if mask is None:
        mask = np.ones(g.shape, dtype=bool)
    g_rows, _, order = _rows_of(g, axis)
    y_rows = _rows_of(yv, axis)[0]
    keep_rows = _rows_of(mask, axis)[0]
    values = [row_fn(gr, yr, kr, t) for gr, yr, kr in zip(g_rows, y_rows, keep_rows)]
    return _from_rows(values, g.shape, order, np.float64)


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
    w = np.asarray(weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{name}(): weight must be a real array_like, got dtype {w.dtype}")
    if w.shape != (n_classes,):
        raise ValueError(f"{name}(): weight has shape {w.shape}, expected ({n_classes},): "
                         "one weight per class")
    return [_as_fraction(float(v)) for v in w.astype(np.float64).tolist()]


def _check_smoothing(label_smoothing, name: str) -> Fraction:
    if isinstance(label_smoothing, (bool, np.bool_)) or not isinstance(label_smoothing, numbers.Real):
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
    rows, _, order = _rows_of(x, axis)

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
    loss = _reduce(losses, reduction, denominator if reduction == "mean" else Fraction(1))
    if reduction == "none":
        loss = loss.reshape(kept_shape)
        loss = loss[()] if loss.ndim == 0 else loss
    if not return_grad:
        return loss
    return loss, _from_rows(grads, x.shape, order, np.float64)


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
    s = _dtypes(np.asarray(student_logits))[0]
    tl = _dtypes(np.asarray(teacher_logits))[0]
    if s.shape != tl.shape:
        raise ValueError(f"{name}(): student_logits has shape {s.shape} and teacher_logits has "
                         f"shape {tl.shape}; they must be equal")
    axis = _class_axis(axis, s.ndim, name)
    t = _training_temperature(temperature, name)
    _check_reduction(reduction, ("batchmean", "sum", "none"), name)
    s_rows, _, order = _rows_of(s, axis)
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
    loss = _reduce(losses, reduction, denominator)
    if reduction == "none":
        loss = loss.reshape(s.shape[:axis] + s.shape[axis + 1:])
        loss = loss[()] if loss.ndim == 0 else loss
    if not return_grad:
        return loss
    return loss, _from_rows(grads, s.shape, order, np.float64)


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
    if not isinstance(symmetric, (bool, np.bool_)):
        raise TypeError(f"{name}(): symmetric must be a bool, got {type(symmetric).__name__}")
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
