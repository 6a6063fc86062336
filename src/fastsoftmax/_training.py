"""Functions for training built on the row kernels: the backward passes
(vector-Jacobian products) of softmax and log_softmax, cross-entropy,
distillation (KL divergence at a temperature) and contrastive loss.

Arguments are checked by :mod:`fastsoftmax._args` and laid out in rows by
:mod:`fastsoftmax._layout`; the loops and kernels live in
:mod:`fastsoftmax._rows` and reuse the forward functions' row statistics and
exp.  Each has a pure-Python counterpart in
:mod:`fastsoftmax.reference`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from . import _args, _layout, _rows
from ._api import LOG_SOFTMAX, SOFTMAX, _check_threads

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ._typing import (AnyKLReduction, AnyLossReduction, ArrayT, Axis, FloatResult, FloatT, KLReduction,
                          LossReduction, RealScalar, Temperature, Temperatures, Threads)

__all__ = ["softmax_backward", "log_softmax_backward", "cross_entropy", "kl_div", "contrastive_loss"]


def _reduce(losses: np.ndarray, reduction: str, denominator: float, nothing: bool, shape: tuple,
            result_dt: np.dtype):
    """Per-row float64 losses reduced: an exact sum, divided for "mean" (0.0
    when there is nothing to average); "none" keeps them in ``shape``."""
    if reduction == "none":
        with np.errstate(over="ignore"):     # a float32 loss beyond float32's range is inf
            per_row = losses.reshape(shape).astype(result_dt)
        return per_row[()] if per_row.ndim == 0 else per_row
    total = math.fsum(losses)
    if reduction == "mean":
        # rows whose classes all weigh 0: 0 / 0, NaN as in PyTorch
        total = 0.0 if nothing else total / denominator if denominator else math.nan
    with np.errstate(over="ignore"):     # a float32 loss beyond float32's range is inf
        return result_dt.type(total)


def _with_grad(loss, grad, shape: tuple, perm, result_dt: np.dtype):
    """``loss``, or ``(loss, gradient)`` with the gradient back in the logits' layout."""
    if grad is None:            # return_grad=False
        return loss
    return loss, _layout.from_rows(grad, shape, perm, result_dt)


# ---- backward ------------------------------------------------------------------

def _backward(op: int, name: str, grad, y, axis, temperature, where, out, num_threads):
    _args.in_memory(grad, "grad", name)
    _args.in_memory(y, "y", name)
    g = grad if type(grad) is np.ndarray else np.asarray(grad)
    yv = y if type(y) is np.ndarray else np.asarray(y)
    if g.shape != yv.shape:
        raise ValueError(f"{name}(): grad has shape {g.shape} and y has shape {yv.shape}; they must match")
    compute_dt, result_dt = _args.dtypes(np.result_type(g.dtype, yv.dtype), name)
    threads = 0 if num_threads is None else _check_threads(num_threads, name)
    axes = _args.axes(axis, g.ndim, name)
    t = _args.row_temperatures(temperature, tuple(s for a, s in enumerate(g.shape) if a not in axes), name,
                               training=True)
    mask = None if where is None else _args.where(where, g.shape, name)
    if out is not None:
        _args.out(out, g.shape, result_dt, name)
    g2, perm, outer, reduced = _layout.to_rows(g, axes, compute_dt)
    y2 = _layout.to_rows(yv, axes, compute_dt)[0]
    # out=grad (in place) is exact: each entry is read before it is written;
    # y is read after, so out must not overlap it
    o2 = None if out is None else _args.out_rows(out, perm, g2.shape, result_dt, compute_dt, g2, (y2,))
    direct = o2 is not None
    if o2 is None:
        o2 = _rows.empty(g2.shape, compute_dt.name)
    if g2.size:                 # no entries: nothing to compute, and no rows to share out
        rows_mask = None if mask is None else _layout.broadcast_rows(mask, perm, len(outer), reduced)
        _rows.compute_backward(op, g2, y2, rows_mask, outer if g.ndim else (), o2, t, threads)
    if out is None:
        res = _layout.from_rows(o2, g.shape, perm, result_dt)
        return res[()] if res.ndim == 0 else res
    if not direct:
        _layout.into(out, o2, perm)
    return out


# ---- public functions -------------------------------------------------------------

@overload
def softmax_backward(grad: ArrayLike, y: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ...,
                     where: ArrayLike | None = ..., out: ArrayT, num_threads: Threads = ...) -> ArrayT: ...
@overload
def softmax_backward(grad: NDArray[FloatT], y: NDArray[FloatT], axis: Axis = ..., *,
                     temperature: Temperatures = ..., where: ArrayLike | None = ..., out: None = ...,
                     num_threads: Threads = ...) -> NDArray[FloatT]: ...
@overload
def softmax_backward(grad: ArrayLike, y: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ...,
                     where: ArrayLike | None = ..., out: None = ..., num_threads: Threads = ...
                     ) -> FloatResult: ...
def softmax_backward(grad: ArrayLike, y: ArrayLike, axis: Axis = -1, *, temperature: Temperatures = 1.0,
                     where: ArrayLike | None = None, out: NDArray[Any] | None = None,
                     num_threads: Threads = None) -> Any:
    """Gradient of softmax: ``dL/dx`` from ``dL/dy`` and ``y = softmax(x, axis, temperature=T)``.

    Computes the vector-Jacobian product
    ``y * (grad - sum(grad * y, axis, keepdims=True)) / T`` in two fused
    passes over each row, without forming the Jacobian.

    Parameters
    ----------
    grad : array_like
        ``dL/dy``, the gradient of the loss with respect to the softmax
        output.  Same shape as ``y``.
    y : array_like
        The output of :func:`softmax` for the same ``axis``, ``temperature``
        and ``where``.
    axis : int, tuple of ints or None, default -1
        The axis (or axes) of the forward call.
    temperature : float or array_like, default 1.0
        ``T`` of the forward call; finite and ``> 0`` (``T = 0`` and
        ``T = inf`` have no gradient: ValueError).  An array gives one ``T``
        per row: it broadcasts to the batch shape (``grad``'s shape without
        the reduced axes), as in :func:`fastsoftmax.softmax`.
    where : array_like of bool, optional
        The mask of the forward call.  Masked entries, and every entry of a
        fully masked row, get exactly 0; the sum runs over the kept entries
        only, so whatever ``grad`` and ``y`` hold at masked entries (NaN
        included) is ignored.  Broadcast rules and errors as in
        :func:`softmax`.
    out : ndarray, optional
        Where to write the result: ``grad``'s shape and the result dtype.
        May be ``grad`` (or ``y``) itself.
    num_threads : int, optional
        As in :func:`softmax`; results do not depend on it.

    Returns
    -------
    ndarray
        ``dL/dx``, of ``grad``'s shape, in the result dtype of ``grad`` and
        ``y`` (float32 for float32, float64 for float64); ``out`` if given.

    See Also
    --------
    log_softmax_backward, softmax

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> x = np.array([[1.0, 2.0, 3.0]])
    >>> y = fs.softmax(x, temperature=2.0)
    >>> dy = np.array([[0.0, 0.0, 1.0]])           # L = y[0, 2]
    >>> fs.softmax_backward(dy, y, temperature=2.0).round(4)
    array([[-0.0472, -0.0778,  0.125 ]])
    """
    return _backward(SOFTMAX, "softmax_backward", grad, y, axis, temperature, where, out, num_threads)


@overload
def log_softmax_backward(grad: ArrayLike, y: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ...,
                         where: ArrayLike | None = ..., out: ArrayT, num_threads: Threads = ...) -> ArrayT: ...
@overload
def log_softmax_backward(grad: NDArray[FloatT], y: NDArray[FloatT], axis: Axis = ..., *,
                         temperature: Temperatures = ..., where: ArrayLike | None = ..., out: None = ...,
                         num_threads: Threads = ...) -> NDArray[FloatT]: ...
@overload
def log_softmax_backward(grad: ArrayLike, y: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ...,
                         where: ArrayLike | None = ..., out: None = ..., num_threads: Threads = ...
                         ) -> FloatResult: ...
def log_softmax_backward(grad: ArrayLike, y: ArrayLike, axis: Axis = -1, *, temperature: Temperatures = 1.0,
                         where: ArrayLike | None = None, out: NDArray[Any] | None = None,
                         num_threads: Threads = None) -> Any:
    """Gradient of log_softmax: ``dL/dx`` from ``dL/dy`` and ``y = log_softmax(x, axis, temperature=T)``.

    Computes ``(grad - exp(y) * sum(grad, axis, keepdims=True)) / T`` in two
    fused passes over each row.

    Parameters
    ----------
    grad : array_like
        ``dL/dy``, same shape as ``y``.
    y : array_like
        The output of :func:`log_softmax` for the same ``axis``,
        ``temperature`` and ``where``; ``-inf`` entries are probability 0.
    axis : int, tuple of ints or None, default -1
        The axis (or axes) of the forward call.
    temperature : float or array_like, default 1.0
        ``T`` of the forward call; finite and ``> 0`` (ValueError otherwise);
        an array gives one per row, as for :func:`softmax_backward`.
    where : array_like of bool, optional
        The mask of the forward call.  Masked entries and fully masked rows
        get exactly 0, and ``sum(grad)`` runs over the kept entries only.
    out : ndarray, optional
        ``grad``'s shape and the result dtype; may be ``grad`` itself.
    num_threads : int, optional
        As in :func:`softmax`.

    Returns
    -------
    ndarray
        ``dL/dx``, of ``grad``'s shape; ``out`` if given.

    See Also
    --------
    softmax_backward, log_softmax, cross_entropy

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> x = np.array([[1.0, 2.0, 3.0]])
    >>> dy = np.array([[0.0, 0.0, 1.0]])
    >>> fs.log_softmax_backward(dy, fs.log_softmax(x)).round(4)
    array([[-0.09  , -0.2447,  0.3348]])
    """
    return _backward(LOG_SOFTMAX, "log_softmax_backward", grad, y, axis, temperature, where, out, num_threads)


# The losses' overloads: a float16/32/64 array keeps its dtype; "mean", "sum"
# and "batchmean" give one number, "none" one per row (a scalar for 1-d
# logits); return_grad=True adds the gradient.
@overload
def cross_entropy(logits: NDArray[FloatT], target: ArrayLike, axis: int = ..., *,
                  temperature: Temperatures = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  label_smoothing: RealScalar = ..., reduction: LossReduction = ...,
                  return_grad: Literal[False] = ..., num_threads: Threads = ...) -> FloatT: ...
@overload
def cross_entropy(logits: NDArray[FloatT], target: ArrayLike, axis: int = ..., *,
                  temperature: Temperatures = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  label_smoothing: RealScalar = ..., reduction: LossReduction = ...,
                  return_grad: Literal[True], num_threads: Threads = ...) -> tuple[FloatT, NDArray[FloatT]]: ...
@overload
def cross_entropy(logits: NDArray[FloatT], target: ArrayLike, axis: int = ..., *,
                  temperature: Temperatures = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  label_smoothing: RealScalar = ..., reduction: Literal["none"],
                  return_grad: Literal[False] = ..., num_threads: Threads = ...) -> NDArray[FloatT] | FloatT: ...
@overload
def cross_entropy(logits: NDArray[FloatT], target: ArrayLike, axis: int = ..., *,
                  temperature: Temperatures = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  label_smoothing: RealScalar = ..., reduction: Literal["none"],
                  return_grad: Literal[True], num_threads: Threads = ...
                  ) -> tuple[NDArray[FloatT] | FloatT, NDArray[FloatT]]: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = ..., *,
                  temperature: Temperatures = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  label_smoothing: RealScalar = ..., reduction: LossReduction = ...,
                  return_grad: Literal[False] = ..., num_threads: Threads = ...) -> np.floating[Any]: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = ..., *,
                  temperature: Temperatures = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  label_smoothing: RealScalar = ..., reduction: LossReduction = ...,
                  return_grad: Literal[True], num_threads: Threads = ...
                  ) -> tuple[np.floating[Any], NDArray[np.floating[Any]]]: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = ..., *,
                  temperature: Temperatures = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  label_smoothing: RealScalar = ..., reduction: Literal["none"],
                  return_grad: Literal[False] = ..., num_threads: Threads = ...) -> FloatResult: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = ..., *,
                  temperature: Temperatures = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  label_smoothing: RealScalar = ..., reduction: Literal["none"],
                  return_grad: Literal[True], num_threads: Threads = ...
                  ) -> tuple[FloatResult, NDArray[np.floating[Any]]]: ...
@overload
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = ..., *,
                  temperature: Temperatures = ..., weight: ArrayLike | None = ..., ignore_index: int = ...,
                  label_smoothing: RealScalar = ..., reduction: AnyLossReduction = ...,
                  return_grad: bool = ..., num_threads: Threads = ...
                  ) -> FloatResult | tuple[FloatResult, NDArray[np.floating[Any]]]: ...
def cross_entropy(logits: ArrayLike, target: ArrayLike, axis: int = -1, *, temperature: Temperatures = 1.0,
                  weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: RealScalar = 0.0,
                  reduction: AnyLossReduction = "mean", return_grad: bool = False, num_threads: Threads = None) -> Any:
    """Cross-entropy loss from logits, optionally with its gradient.

    The same value as ``torch.nn.functional.cross_entropy(logits / T, target,
    weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
    reduction=reduction)`` with the class axis (``axis`` here) at position 1
    for PyTorch.  For a row with class index ``y``, ``C`` classes, weights
    ``w`` and smoothing ``eps`` the loss is
    ``(1 - eps) * w[y] * -log p[y] + eps / C * sum_c w[c] * -log p[c]`` with
    ``log p = log_softmax(logits / T)``; for class probabilities ``q`` it is
    ``sum_c w[c] * ((1 - eps) * q[c] + eps / C) * -log p[c]``.

    Parameters
    ----------
    logits : array_like
        Unnormalised scores, classes along ``axis``.  Dtype rules as in
        :func:`softmax`; any layout.
    target : array_like
        Either integer class indices, of ``logits``' shape without ``axis``,
        each in ``[0, C)`` or equal to ``ignore_index`` (any other value
        raises ValueError naming the value and its position); or floating
        class probabilities (soft labels) of ``logits``' shape.
    axis : int, default -1
        The class axis.
    temperature : float or array_like, default 1.0
        ``T``, finite and ``> 0``: the loss is that of ``logits / T``.  An
        array gives one ``T`` per row: it broadcasts to the batch shape (the
        logits' shape without ``axis``).
    weight : array_like, optional
        One weight per class (shape ``(C,)``), as in PyTorch.
    ignore_index : int, default -100
        Rows whose class index equals it have loss 0 and gradient 0 and are
        left out of "mean".  Not used with probability targets.
    label_smoothing : float, default 0.0
        ``eps`` in ``[0, 1]``: mixes the target with the uniform distribution.
    reduction : {"mean", "sum", "none"}, default "mean"
        "mean" divides the sum of the row losses by the sum of ``w[y]`` over
        the rows not ignored (by the number of rows for probability
        targets), as PyTorch does; when every row is ignored it returns 0.0
        (PyTorch gives NaN).  "sum" adds the row losses; "none" returns them.
    return_grad : bool, default False
        Also return the gradient with respect to ``logits``.
    num_threads : int, optional
        As in :func:`softmax`; results do not depend on it.

    Returns
    -------
    loss : NumPy scalar or ndarray
        A NumPy scalar of the logits' result dtype for "mean" and "sum"; the
        per-row losses (``logits``' shape without ``axis``, 0 at ignored
        rows) for "none".  Accumulated in double.
    grad : ndarray
        Only with ``return_grad=True``: ``d(loss)/d(logits)`` in ``logits``'
        shape and result dtype, ``(softmax(logits / T) - onehot) / T`` for a
        plain row, weighted, smoothed and reduced as the loss is (for
        "none", the gradient of the losses' sum); 0 at ignored rows.

    Notes
    -----
    The loss is computed in the log-sum-exp form, never as
    ``log(softmax)``: for a confident row, ``-log p`` near 0 keeps its full
    precision.  A class whose coefficient is 0 (probability 0 in a soft
    target, or weight 0) contributes 0 even where its logit is ``-inf``
    (PyTorch gives NaN there); a ``-inf`` logit where the target puts weight
    gives ``+inf``.  No ``(rows, classes)`` temporary is allocated besides
    the returned gradient.

    See Also
    --------
    log_softmax, kl_div, contrastive_loss

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 1.0]])
    >>> target = np.array([0, 2, -100])               # the last row is ignored
    >>> loss, grad = fs.cross_entropy(logits, target, return_grad=True)
    >>> round(float(loss), 6)
    0.175456
    >>> grad.round(4)
    array([[-0.1072,  0.0876,  0.0196],
           [ 0.0247,  0.0272, -0.0519],
           [ 0.    ,  0.    ,  0.    ]])
    >>> float(fs.cross_entropy(np.array([[0.0, -40.0, -45.0]]), np.array([0])))
    4.2769794410970824e-18
    """
    name = "cross_entropy"
    x, compute_dt, result_dt = _args.logits(logits, name, "logits")
    threads = 0 if num_threads is None else _check_threads(num_threads, name)
    axis_c = _args.class_axis(axis, x.ndim, name)
    t = _args.row_temperatures(temperature, x.shape[:axis_c] + x.shape[axis_c + 1:], name, training=True)
    smoothing = _args.fraction(label_smoothing, "label_smoothing", name)
    _args.reduction(reduction, ("mean", "sum", "none"), name)
    _args.ignore_index(ignore_index, name)
    x2, perm, outer, _ = _layout.to_rows(x, (axis_c,), compute_dt)
    classes = x.shape[axis_c]
    rows = x2.shape[0]

    _args.in_memory(target, "target", name)
    target_array = np.asarray(target)
    kind = target_array.dtype.kind
    hard = kind in "iu"
    if not hard and kind != "f":
        raise TypeError(f"{name}(): target must hold integer class indices or floating class "
                        f"probabilities, got dtype {target_array.dtype}")
    if hard:
        if target_array.shape != outer:
            raise ValueError(f"{name}(): class-index target has shape {target_array.shape}; logits of shape "
                             f"{x.shape} with class axis {axis_c} need {outer}")
        indices = target_array.reshape(-1).astype(np.int64)
        ignored = indices == ignore_index
        bad = ~ignored & ((indices < 0) | (indices >= classes))
        if bad.any():
            position = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), outer)) if outer else ()
            raise ValueError(f"{name}(): target value {int(indices[np.argmax(bad)])} at position {position} is "
                             f"not a class index in [0, {classes}) nor ignore_index ({ignore_index})")
        soft = None
    else:
        if target_array.shape != x.shape:
            hint = ""
            if target_array.shape == outer:
                # the shape of class indices: float labels such as 0.0, 3.0
                hint = (f"; a target of shape {outer} holds one class index per row: pass integer class "
                        f"indices (target.astype(int)), or class probabilities of shape {x.shape}")
            raise ValueError(f"{name}(): probability target has shape {target_array.shape}, "
                             f"the logits have shape {x.shape}{hint}")
        soft = _layout.to_rows(target_array, (axis_c,), compute_dt)[0]
        indices, ignored = None, np.zeros(rows, dtype=bool)
    if weight is not None:
        w = np.ascontiguousarray(_args.class_weights(weight, classes, name), dtype=compute_dt)
    else:
        w = None

    # torch's "mean": divide by the summed weight of the rows' classes (class
    # indices) or by the number of rows (probabilities)
    if hard:
        kept = indices[~ignored]
        denominator = float(kept.size if w is None else math.fsum(w[kept].astype(np.float64)))
        all_ignored = kept.size == 0
    else:
        denominator, all_ignored = float(rows), rows == 0
    scale = 1.0 if reduction != "mean" or all_ignored else 1.0 / denominator if denominator else math.inf
    grad = _rows.empty((rows, classes), compute_dt.name) if return_grad else None
    losses = _rows.cross_entropy_rows(x2, indices, soft, w, int(ignore_index) if hard else -1, smoothing, t,
                                      grad, scale, threads)
    loss = _reduce(losses, reduction, denominator, all_ignored, outer, result_dt)
    return _with_grad(loss, grad, x.shape, perm, result_dt)


@overload
def kl_div(student_logits: NDArray[FloatT], teacher_logits: NDArray[FloatT], axis: int = ..., *,
           temperature: Temperatures = ..., reduction: KLReduction = ...,
           return_grad: Literal[False] = ..., num_threads: Threads = ...) -> FloatT: ...
@overload
def kl_div(student_logits: NDArray[FloatT], teacher_logits: NDArray[FloatT], axis: int = ..., *,
           temperature: Temperatures = ..., reduction: KLReduction = ...,
           return_grad: Literal[True], num_threads: Threads = ...) -> tuple[FloatT, NDArray[FloatT]]: ...
@overload
def kl_div(student_logits: NDArray[FloatT], teacher_logits: NDArray[FloatT], axis: int = ..., *,
           temperature: Temperatures = ..., reduction: Literal["none"],
           return_grad: Literal[False] = ..., num_threads: Threads = ...) -> NDArray[FloatT] | FloatT: ...
@overload
def kl_div(student_logits: NDArray[FloatT], teacher_logits: NDArray[FloatT], axis: int = ..., *,
           temperature: Temperatures = ..., reduction: Literal["none"],
           return_grad: Literal[True], num_threads: Threads = ...
           ) -> tuple[NDArray[FloatT] | FloatT, NDArray[FloatT]]: ...
@overload
def kl_div(student_logits: ArrayLike, teacher_logits: ArrayLike, axis: int = ..., *,
           temperature: Temperatures = ..., reduction: KLReduction = ...,
           return_grad: Literal[False] = ..., num_threads: Threads = ...) -> np.floating[Any]: ...
@overload
def kl_div(student_logits: ArrayLike, teacher_logits: ArrayLike, axis: int = ..., *,
           temperature: Temperatures = ..., reduction: KLReduction = ...,
           return_grad: Literal[True], num_threads: Threads = ...
           ) -> tuple[np.floating[Any], NDArray[np.floating[Any]]]: ...
@overload
def kl_div(student_logits: ArrayLike, teacher_logits: ArrayLike, axis: int = ..., *,
           temperature: Temperatures = ..., reduction: Literal["none"],
           return_grad: Literal[False] = ..., num_threads: Threads = ...) -> FloatResult: ...
@overload
def kl_div(student_logits: ArrayLike, teacher_logits: ArrayLike, axis: int = ..., *,
           temperature: Temperatures = ..., reduction: Literal["none"],
           return_grad: Literal[True], num_threads: Threads = ...
           ) -> tuple[FloatResult, NDArray[np.floating[Any]]]: ...
@overload
def kl_div(student_logits: ArrayLike, teacher_logits: ArrayLike, axis: int = ..., *,
           temperature: Temperatures = ..., reduction: AnyKLReduction = ...,
           return_grad: bool = ..., num_threads: Threads = ...
           ) -> FloatResult | tuple[FloatResult, NDArray[np.floating[Any]]]: ...
def kl_div(student_logits: ArrayLike, teacher_logits: ArrayLike, axis: int = -1, *,
           temperature: Temperatures = 1.0, reduction: AnyKLReduction = "batchmean", return_grad: bool = False,
           num_threads: Threads = None) -> Any:
    """Distillation loss: ``T**2 * KL(softmax(teacher / T) || softmax(student / T))``.

    Summed along ``axis``.  The ``T**2`` factor is Hinton's scaling: the
    gradients of the softened distributions shrink like ``1 / T**2``, and the
    factor keeps them the size of a hard-label loss's at any temperature, so
    ``alpha * cross_entropy(...) + (1 - alpha) * kl_div(..., temperature=T)``
    does not need ``alpha`` retuned when ``T`` changes.

    Parameters
    ----------
    student_logits, teacher_logits : array_like
        Logits of the same shape, classes along ``axis``.  Dtype rules as in
        :func:`softmax`; any layout.
    axis : int, default -1
        The class axis.
    temperature : float or array_like, default 1.0
        ``T``, finite and ``> 0`` (distillation typically uses 4 to 20).  An
        array gives one ``T`` per row (broadcast to the logits' shape without
        ``axis``); each row's loss is scaled by its own ``T**2``.
    reduction : {"batchmean", "sum", "none"}, default "batchmean"
        "batchmean": the mean over rows (every position other than ``axis``;
        0.0 when there are none); "sum": their sum; "none": one value per
        row, of the logits' shape without ``axis``.
    return_grad : bool, default False
        Also return the gradient with respect to ``student_logits``.
    num_threads : int, optional
        As in :func:`softmax`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        A NumPy scalar of the result dtype for "batchmean" and "sum".
    grad : ndarray
        Only with ``return_grad=True``:
        ``T * (softmax(student / T) - softmax(teacher / T))``, reduced as the
        loss, in ``student_logits``' shape.

    Notes
    -----
    Teacher entries of ``-inf`` (probability 0) contribute exactly 0, never
    ``0 * inf = NaN``, also where the student is ``-inf`` too; a teacher
    probability > 0 where the student logit is ``-inf`` gives ``+inf``.
    A row where either softmax is undefined (a NaN, a ``+inf``, or only
    ``-inf``, as in a student row of only ``-inf``) gives NaN.
    For 2-D inputs the result equals ``T**2 *
    torch.nn.functional.kl_div(log_softmax(s / T), log_softmax(t / T),
    reduction="batchmean", log_target=True)``; for more dimensions PyTorch's
    "batchmean" divides by the first dimension only, this one by the number
    of rows.

    See Also
    --------
    cross_entropy, log_softmax

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> student = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]])
    >>> teacher = np.array([[3.0, 0.0, -np.inf], [0.0, 1.0, 2.5]])
    >>> loss, grad = fs.kl_div(student, teacher, temperature=4.0, return_grad=True)
    >>> round(float(loss), 6)
    2.624103
    >>> grad.round(4)
    array([[-0.5199,  0.0113,  0.5086],
           [ 0.0972, -0.0396, -0.0576]])
    """
    name = "kl_div"
    _args.in_memory(teacher_logits, "teacher_logits", name)
    s, compute_dt, result_dt = _args.logits(student_logits, name, "student_logits", teacher_logits)
    tl = np.asarray(teacher_logits)
    if tl.shape != s.shape:
        raise ValueError(f"{name}(): teacher_logits has shape {tl.shape}, student_logits has shape {s.shape}")
    threads = 0 if num_threads is None else _check_threads(num_threads, name)
    axis_c = _args.class_axis(axis, s.ndim, name)
    t = _args.row_temperatures(temperature, s.shape[:axis_c] + s.shape[axis_c + 1:], name, training=True)
    _args.reduction(reduction, ("batchmean", "sum", "none"), name)
    s2, perm, outer, _ = _layout.to_rows(s, (axis_c,), compute_dt)
    t2 = _layout.to_rows(tl, (axis_c,), compute_dt)[0]
    rows = s2.shape[0]
    scale = 1.0 / rows if reduction == "batchmean" and rows else 1.0
    grad = _rows.empty(s2.shape, compute_dt.name) if return_grad else None
    losses = _rows.kl_div_rows(s2, t2, t, grad, scale, threads)
    loss = _reduce(losses, "mean" if reduction == "batchmean" else reduction, float(rows), rows == 0, outer,
                   result_dt)
    return _with_grad(loss, grad, s.shape, perm, result_dt)


@overload
def contrastive_loss(similarity: NDArray[FloatT], *,
                     temperature: Temperature = ..., symmetric: bool = ..., reduction: LossReduction = ...,
                     return_grad: Literal[False] = ..., num_threads: Threads = ...) -> FloatT: ...
@overload
def contrastive_loss(similarity: NDArray[FloatT], *,
                     temperature: Temperature = ..., symmetric: bool = ..., reduction: LossReduction = ...,
                     return_grad: Literal[True], num_threads: Threads = ...) -> tuple[FloatT, NDArray[FloatT]]: ...
@overload
def contrastive_loss(similarity: NDArray[FloatT], *,
                     temperature: Temperature = ..., symmetric: bool = ..., reduction: Literal["none"],
                     return_grad: Literal[False] = ..., num_threads: Threads = ...) -> NDArray[FloatT]: ...
@overload
def contrastive_loss(similarity: NDArray[FloatT], *,
                     temperature: Temperature = ..., symmetric: bool = ..., reduction: Literal["none"],
                     return_grad: Literal[True], num_threads: Threads = ...
                     ) -> tuple[NDArray[FloatT], NDArray[FloatT]]: ...
@overload
def contrastive_loss(similarity: ArrayLike, *,
                     temperature: Temperature = ..., symmetric: bool = ..., reduction: LossReduction = ...,
                     return_grad: Literal[False] = ..., num_threads: Threads = ...) -> np.floating[Any]: ...
@overload
def contrastive_loss(similarity: ArrayLike, *,
                     temperature: Temperature = ..., symmetric: bool = ..., reduction: LossReduction = ...,
                     return_grad: Literal[True], num_threads: Threads = ...
                     ) -> tuple[np.floating[Any], NDArray[np.floating[Any]]]: ...
@overload
def contrastive_loss(similarity: ArrayLike, *,
                     temperature: Temperature = ..., symmetric: bool = ..., reduction: Literal["none"],
                     return_grad: Literal[False] = ..., num_threads: Threads = ...
                     ) -> NDArray[np.floating[Any]]: ...
@overload
def contrastive_loss(similarity: ArrayLike, *,
                     temperature: Temperature = ..., symmetric: bool = ..., reduction: Literal["none"],
                     return_grad: Literal[True], num_threads: Threads = ...
                     ) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]: ...
@overload
def contrastive_loss(similarity: ArrayLike, *,
                     temperature: Temperature = ..., symmetric: bool = ..., reduction: AnyLossReduction = ...,
                     return_grad: bool = ..., num_threads: Threads = ...
                     ) -> FloatResult | tuple[FloatResult, NDArray[np.floating[Any]]]: ...
def contrastive_loss(similarity: ArrayLike, *, temperature: Temperature = 0.07, symmetric: bool = True,
                     reduction: AnyLossReduction = "mean", return_grad: bool = False,
                     num_threads: Threads = None) -> Any:
    """Contrastive (InfoNCE / CLIP) loss of an ``(N, N)`` similarity matrix.

    Row loss ``i`` is the cross-entropy of row ``i`` of ``similarity / T``
    against class ``i`` (the diagonal holds the positive pairs); column loss
    ``i`` the same down column ``i``, computed along the strided axis with no
    transposed copy.

    Parameters
    ----------
    similarity : array_like
        ``(N, N)``: entry ``(i, j)`` is the similarity of query ``i`` and key
        ``j`` (for CLIP, of image ``i`` and text ``j``).  Dtype rules as in
        :func:`softmax`; any layout.
    temperature : float, default 0.07
        ``T``, finite and ``> 0``; CLIP's ``logit_scale`` is ``1 / T`` and
        starts at ``1 / 0.07``.  One scalar: the column direction mixes
        every row, so there is no temperature per row here.
    symmetric : bool, default True
        True: the mean of the row and column directions (CLIP's loss).
        False: the row direction only (InfoNCE with queries as rows).
    reduction : {"mean", "sum", "none"}, default "mean"
        "none" gives the per-pair losses, shape ``(N,)``: with
        ``symmetric=True`` ``(row_loss_i + column_loss_i) / 2``, else
        ``row_loss_i``.  "mean" and "sum" are their mean and sum, so "mean"
        with ``symmetric=True`` is CLIP's ``(CE(rows) + CE(columns)) / 2``.
    return_grad : bool, default False
        Also return ``d(loss)/d(similarity)`` (for "none": of the losses'
        sum).
    num_threads : int, optional
        As in :func:`softmax`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        A NumPy scalar of the result dtype, or shape ``(N,)`` for "none".
    grad : ndarray
        Only with ``return_grad=True``: ``(N, N)``, for "mean" and
        ``symmetric=True`` equal to
        ``(softmax(S / T, 1) + softmax(S / T, 0) - 2 * I) / (2 * N * T)``.

    Notes
    -----
    The column direction runs through the strided-axis kernels, without a
    transposed copy, as ``logsumexp(S[:, j] / T) - S[j, j] / T`` with the
    column's log-sum-exp rounded to the input dtype.  In float32 a column
    loss therefore carries an absolute error of up to about
    ``6e-8 * max(|logsumexp(S[:, j] / T)|, 1)`` (float64: ``1.1e-16``
    times the same), which is large next to the loss only for a confident
    column of large similarities.  The row direction has no such term.

    See Also
    --------
    cross_entropy

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> rng = np.random.default_rng(0)
    >>> image = rng.standard_normal((4, 8))
    >>> image /= np.linalg.norm(image, axis=1, keepdims=True)
    >>> text = image + 0.3 * rng.standard_normal((4, 8))
    >>> text /= np.linalg.norm(text, axis=1, keepdims=True)
    >>> loss, dsim = fs.contrastive_loss(image @ text.T, return_grad=True)
    >>> round(float(loss), 6)
    0.059328
    >>> dsim.shape
    (4, 4)
    """
    name = "contrastive_loss"
    x, compute_dt, result_dt = _args.logits(similarity, name, "similarity")
    if x.ndim != 2 or x.shape[0] != x.shape[1]:
        raise ValueError(f"{name}(): similarity must be a square (N, N) matrix, got shape {x.shape}")
    if np.ndim(temperature) > 0 and not _args.is_lazy(temperature):
        raise TypeError(f"{name}(): temperature must be a real scalar here, got an array of shape "
                        f"{np.shape(temperature)}: the column direction mixes every row, so there is no "
                        "temperature per row (the other losses take one)")
    t = _args.training_temperature(temperature, name)
    threads = 0 if num_threads is None else _check_threads(num_threads, name)
    _args.reduction(reduction, ("mean", "sum", "none"), name)
    _args.flag(symmetric, "symmetric", name)
    n = x.shape[0]
    x2 = _layout.to_rows(x, (1,), compute_dt)[0]
    directions = 2 if symmetric else 1
    scale = (1.0 / (directions * n) if n else 0.0) if reduction == "mean" else 1.0 / directions
    grad = _rows.empty((n, n), compute_dt.name) if return_grad else None
    row_losses, column_losses = _rows.contrastive_rows(x2, t, bool(symmetric), grad, scale, scale, threads)
    losses = row_losses if column_losses is None else (row_losses + column_losses) / 2
    loss = _reduce(losses, reduction, float(n), n == 0, (n,), result_dt)
    return _with_grad(loss, grad, (n, n), None, result_dt)
