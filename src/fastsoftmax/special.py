"""SciPy's ``softmax``, ``log_softmax`` and ``logsumexp`` with SciPy's signatures.

A drop-in for the three functions of :mod:`scipy.special`: the same
signatures, defaults (``axis=None``: the whole array) and semantics, computed
by fastsoftmax's kernels::

    from fastsoftmax import special      # instead of: from scipy import special
    special.logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False)

``logsumexp``'s weights ``b`` are applied inside the kernels, entry by entry
(``b`` is never turned into ``log(b)`` added to ``a``), and may be negative;
``return_sign=True`` returns ``(value, sign)``.  Entries whose weight is 0 are
left out even where ``a`` is ``inf`` or NaN.

``axis=None`` (the default) and tuple axes take the compiled path, with no
copy, whenever the reduced axes lie next to each other in a C-contiguous
array (any axes of a 1-D array, all axes, the trailing or the leading ones).

A Dask array stays lazy in ``softmax``, ``log_softmax`` and ``logsumexp``
without ``b`` and ``return_sign`` (through :mod:`fastsoftmax.dask`); with
``b`` or ``return_sign`` it raises TypeError rather than being computed.

Differences from SciPy: NumPy input only (no other array-API backends);
complex input raises ``TypeError``; ``ml_dtypes.bfloat16`` input is accepted.
Where SciPy's recipe gives an artifact of its arithmetic, these functions
follow fastsoftmax's table of special values (a row holding ``+inf`` is NaN in
``log_softmax``, where SciPy gives NaN at the ``+inf`` and ``-inf``
elsewhere) and reduce an empty axis to an empty result instead of raising.

>>> from fastsoftmax import special
>>> special.softmax([[1.0, 1.0], [1.0, 1.0]])
array([[0.25, 0.25],
       [0.25, 0.25]])
>>> special.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
(np.float64(1.5413248546129181), np.float64(-1.0))
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from . import _api, _args, _layout, _rows
from ._typing import plain_signatures

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ._typing import Axis, Float64Like, FloatResult, FloatT

__all__ = ["softmax", "log_softmax", "logsumexp"]


def _compiled(op: int, x: Any, axis: Any) -> Any:
    """The compiled path of softmax/log_softmax, with no copy: an ndarray and
    one axis, or axes that lie next to each other in memory; None otherwise."""
    if type(x) is not np.ndarray:
        return None
    if type(axis) is int:
        return _rows.try_fast(op, x, axis, 1.0, None, None)
    return _api._merged_axes(op, x, axis, 1.0, None)


# Result types as for fastsoftmax.softmax: the result has x's shape whatever
# the axes.
@overload
def softmax(x: NDArray[FloatT], axis: Axis = ...) -> NDArray[FloatT]: ...
@overload
def softmax(x: FloatT, axis: Axis = ...) -> FloatT: ...
@overload
def softmax(x: Float64Like, axis: Axis = ...) -> NDArray[np.float64]: ...
@overload
def softmax(x: float, axis: Axis = ...) -> np.float64: ...
@overload
def softmax(x: ArrayLike, axis: Axis = ...) -> FloatResult: ...
def softmax(x: ArrayLike, axis: Axis = None) -> Any:
    """Softmax over ``axis`` (default: the whole array), as :func:`scipy.special.softmax`.

    Parameters
    ----------
    x : array_like
        Input.  Real dtypes only: float16, bfloat16, float32 and float64 keep
        their dtype; bool and integers give float64.
    axis : int or tuple of ints, optional
        Axis or axes the probabilities sum over.  Default None: all of them.

    Returns
    -------
    ndarray
        An array of ``x``'s shape (a NumPy scalar for a scalar ``x``) that
        sums to 1 over ``axis``.

    Examples
    --------
    >>> from fastsoftmax import special
    >>> special.softmax([0.0, 1.0], axis=0).round(4)
    array([0.2689, 0.7311])
    """
    fast = _compiled(_rows.SOFTMAX, x, axis)
    if fast is not None:
        return fast
    return _api.softmax(_real(x, "x", "softmax"), axis=axis)


@overload
def log_softmax(x: NDArray[FloatT], axis: Axis = ...) -> NDArray[FloatT]: ...
@overload
def log_softmax(x: FloatT, axis: Axis = ...) -> FloatT: ...
@overload
def log_softmax(x: Float64Like, axis: Axis = ...) -> NDArray[np.float64]: ...
@overload
def log_softmax(x: float, axis: Axis = ...) -> np.float64: ...
@overload
def log_softmax(x: ArrayLike, axis: Axis = ...) -> FloatResult: ...
def log_softmax(x: ArrayLike, axis: Axis = None) -> Any:
    """Log of the softmax over ``axis`` (default: the whole array), as
    :func:`scipy.special.log_softmax`; computed directly, never as
    ``log(softmax(x))``.

    Parameters
    ----------
    x : array_like
        Input, as for :func:`softmax`.
    axis : int or tuple of ints, optional
        Axis or axes the softmax is taken over.  Default None: all of them.

    Returns
    -------
    ndarray
        An array of ``x``'s shape (a NumPy scalar for a scalar ``x``).

    Examples
    --------
    >>> from fastsoftmax import special
    >>> special.log_softmax([1000.0, 1.0])
    array([   0., -999.])
    """
    fast = _compiled(_rows.LOG_SOFTMAX, x, axis)
    if fast is not None:
        return fast
    return _api.log_softmax(_real(x, "x", "log_softmax"), axis=axis)


# With the defaults (axis=None, keepdims=False) the result is a scalar of
# a's dtype; return_sign=True gives (value, sign), as a keyword or as the
# fifth positional argument.
@overload
def logsumexp(a: NDArray[FloatT] | FloatT, axis: None = ..., b: None = ..., keepdims: Literal[False] = ...,
              return_sign: Literal[False] = ...) -> FloatT: ...
@overload
def logsumexp(a: NDArray[FloatT] | FloatT, axis: None = ..., b: None = ..., keepdims: Literal[False] = ..., *,
              return_sign: Literal[True]) -> tuple[FloatT, FloatT]: ...
@overload
def logsumexp(a: Float64Like | float, axis: None = ..., b: Float64Like | float | None = ...,
              keepdims: Literal[False] = ..., return_sign: Literal[False] = ...) -> np.float64: ...
@overload
def logsumexp(a: Float64Like | float, axis: None = ..., b: Float64Like | float | None = ...,
              keepdims: Literal[False] = ..., *, return_sign: Literal[True]) -> tuple[np.float64, np.float64]: ...
@overload
def logsumexp(a: ArrayLike, axis: Axis = ..., b: ArrayLike | None = ..., keepdims: bool = ...,
              return_sign: Literal[False] = ...) -> FloatResult: ...
@overload
def logsumexp(a: ArrayLike, axis: Axis = ..., b: ArrayLike | None = ..., keepdims: bool = ..., *,
              return_sign: Literal[True]) -> tuple[FloatResult, FloatResult]: ...
@overload
def logsumexp(a: ArrayLike, axis: Axis, b: ArrayLike | None, keepdims: bool,
              return_sign: Literal[True]) -> tuple[FloatResult, FloatResult]: ...
@overload
def logsumexp(a: ArrayLike, axis: Axis = ..., b: ArrayLike | None = ..., keepdims: bool = ...,
              return_sign: bool = ...) -> FloatResult | tuple[FloatResult, FloatResult]: ...
def logsumexp(a: ArrayLike, axis: Axis = None, b: ArrayLike | None = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    """``log(sum(b * exp(a)))`` over ``axis``, as :func:`scipy.special.logsumexp`.

    Parameters
    ----------
    a : array_like
        Input.  Real dtypes only.
    axis : int or tuple of ints, optional
        Axis or axes summed over.  Default None: all of them.
    b : array_like, optional
        Weights of ``exp(a)``, broadcastable with ``a``; may be negative.
        Entries with ``b == 0`` are left out, even where ``a`` is inf or NaN.
    keepdims : bool, default False
        Keep the reduced axes with length 1.
    return_sign : bool, default False
        Return ``(value, sign)``: ``value = log|sum|`` and the sign of the
        sum (+1, -1, or 0 where the sum is 0 and ``value`` is -inf).  Without
        it a negative sum gives NaN.

    Notes
    -----
    Weights of both signs can cancel.  A row whose sum comes out within 64
    ulp (of the dtype computed in) of the sum of its terms' sizes is
    recomputed exactly, in float64: the weights of equal entries are added
    exactly, so entries whose weights cancel exactly (``b = 1`` and ``-1``
    at the same ``a``) take no part and the sum is that of the rest, and
    the remaining terms are summed exactly.  Where even that leaves no
    significant digit (the sum is within 64 ulp of float64 of the sum of the
    terms' sizes), value and sign are NaN, as SciPy gives NaN; a sum that is
    exactly 0 gives ``-inf`` with sign 0.  So ``logsumexp([1, 2, 3, 1000,
    1000, 0], b=[1, -1, 0.5, 1, -1, 0.5])`` is ``log(e - e**2 + e**3 / 2 +
    1 / 2)``, not ``-inf``.  The check costs one more pass, and only when
    ``b`` has negative entries.

    Returns
    -------
    value : ndarray or scalar
        The result; a NumPy scalar when every axis is reduced.  Its dtype is
        that of ``a`` and ``b`` together (``numpy.result_type``), float64 for
        integers and bool.
    sign : ndarray or scalar
        Only with ``return_sign``: the signs, in the same dtype.  An empty
        ``a`` gives ``-inf`` with sign ``-1``, as SciPy does.

    Examples
    --------
    >>> import numpy as np
    >>> from fastsoftmax import special
    >>> float(special.logsumexp(np.arange(10.0)))
    9.45862974442671
    >>> float(special.logsumexp([1.0, 10000.0], b=[1.0, 0.0]))
    1.0
    >>> value, sign = special.logsumexp([[1, 2, 3], [1000, 1000, 0]], b=[1, -1, 0.5], return_sign=True)
    >>> round(float(value), 6), float(sign)      # log(5.87...): the e**1000 terms cancel exactly
    (1.770194, 1.0)
    """
    if b is None and not return_sign and type(a) is np.ndarray and (keepdims is False or keepdims is True):
        if type(axis) is int:
            fast = _rows.try_fast(_rows.LOGSUMEXP, a, axis, 1.0, None, None, keepdims)
        else:
            fast = _api._merged_axes(_rows.LOGSUMEXP, a, axis, 1.0, None, keepdims)
        if fast is not None:
            return fast
    if b is None and not return_sign and _api._is_dask_array(a):
        return _api.logsumexp(a, axis=axis, keepdims=keepdims)     # lazy
    a = _args.not_complex(a, "a", "logsumexp")     # a Dask array: TypeError (b= and signs are not lazy)
    if b is not None:
        b = _args.not_complex(b, "b", "logsumexp")
    a = a.reshape(1) if a.ndim == 0 else a
    if b is None:
        value = _api.logsumexp(a, axis=axis, keepdims=keepdims)
        if not return_sign:
            return value
        # SciPy's signs: -inf has sign 0 (an empty sum: the sign of -inf, -1)
        sign = np.where(np.isnan(value), np.nan, np.where(value == -np.inf, 0.0 if a.size else -1.0, 1.0))
        return value, sign.astype(value.dtype)[()]
    return _weighted(a, axis, b.reshape(1) if b.ndim == 0 else b, bool(keepdims), bool(return_sign))


plain_signatures(softmax, log_softmax, logsumexp)     # help() shows names and defaults, as the docs do


def _real(x: Any, argument: str, name: str) -> Any:
    """``x`` as a real ndarray (complex input raises TypeError), or a Dask
    array as it is, for the lazy path of :mod:`fastsoftmax.dask`."""
    if type(x) is np.ndarray and x.dtype.kind != "c":
        return x
    if _api._is_dask_array(x):
        return x
    return _args.not_complex(x, argument, name)


def _weighted(a: np.ndarray, axis: Axis, b: np.ndarray, keepdims: bool, return_sign: bool) -> Any:
    """logsumexp with weights: rows of ``a`` and, per row, a pointer into ``b``
    kept in its own (broadcast) shape, for the weighted kernel."""
    name = "logsumexp"
    _args.dtypes(a.dtype, name)   # TypeError for what the kernels do not take
    _args.dtypes(b.dtype, name)
    result_dt = np.result_type(a.dtype, b.dtype)    # SciPy: promoted, integers to float64
    if result_dt.kind in "biu":
        result_dt = np.dtype(np.float64)
    compute_dt, _ = _args.dtypes(result_dt, name)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{name}(): b has shape {b.shape}, which does not broadcast with a's shape {a.shape}; "
                         "b holds the weights of exp(a) and must broadcast with a") from None
    ndim = len(shape)
    axes = _args.axes(axis, ndim, name)
    x, perm, kept_shape, reduced_shape = _layout.to_rows(a if a.shape == shape else np.broadcast_to(a, shape), axes,
                                                         compute_dt)
    result_shape = (tuple(1 if d in axes else s for d, s in enumerate(shape)) if keepdims else kept_shape)
    rows, n = x.shape

    if rows * n == 0:
        # SciPy: an empty input sums to -inf, with the sign of -inf
        value = np.full(result_shape, -np.inf, result_dt)
        return (value[()], np.full(result_shape, -1.0, result_dt)[()]) if return_sign else value[()]

    # b in its own shape, in a's row layout: per row either one weight
    # (constant along the row) or the whole row
    weights = b.reshape((1,) * (ndim - b.ndim) + b.shape)
    weights = _layout.contiguous(_layout.broadcast_rows(weights, perm, len(kept_shape), reduced_shape), compute_dt)
    b_varies = weights.shape[-1] != 1
    b_rows = None
    if weights.shape[:-1] != kept_shape:
        b_rows = _layout.row_starts(weights, kept_shape, weights.itemsize)

    value = np.empty(rows, compute_dt)
    negative = bool((weights < 0).any())        # (weights of one sign cannot cancel)
    sign = np.empty(rows, compute_dt) if return_sign or negative else None
    _rows.weighted_logsumexp(x, weights, b_rows, b_varies, value, sign, 0)
    if negative:
        _cancelled_rows(x, weights, b_rows, b_varies, value, sign)
        if not return_sign:
            value[sign < 0] = np.nan
            sign = None

    value = value.reshape(result_shape).astype(result_dt, copy=False)
    if sign is None:            # return_sign=False
        return value[()]
    return value[()], sign.reshape(result_shape).astype(result_dt, copy=False)[()]


# A row whose weighted sum S came out within this many ulp (of the dtype the
# kernels computed in) of the sum of its terms' sizes may have lost every
# digit to cancellation: it is recomputed exactly.
_CANCELLATION_ULPS = 64


def _cancelled_rows(x: np.ndarray, weights: np.ndarray, b_rows: Any, b_varies: bool, value: np.ndarray,
                    sign: np.ndarray) -> None:
    """Rows whose weights of both signs cancelled the sum down to its
    rounding: recomputed exactly, in place, or NaN where no digit is left.

    The kernels' sum of the sizes of the terms (``|b|`` for ``b``) tells
    those rows apart.  Each is redone by :func:`_exact_row`; this runs only
    for those rows, and only for weights with negative entries."""
    size = np.empty_like(value)
    _rows.weighted_logsumexp(x, np.abs(weights), b_rows, b_varies, size, None, 0)
    bound = math.log(_CANCELLATION_ULPS * float(np.finfo(x.dtype).eps))
    with np.errstate(invalid="ignore"):
        suspect = np.isfinite(size) & ~(value > size + bound)
    n = x.shape[1]
    flat = weights.reshape(-1)
    for r in np.flatnonzero(suspect):
        start = (r * n if b_varies else r) if b_rows is None else b_rows[r]
        row_weights = flat[start:start + n] if b_varies else np.broadcast_to(flat[start], (n,))
        value[r], sign[r] = _exact_row(x[r].tolist(), row_weights.tolist())


def _exact_row(row: list[float], weights: list[float]) -> tuple[float, float]:
    """(log |S|, sign of S) for S = sum(w * exp(v)) over finite ``row``,
    exactly: the weights of equal entries are added exactly (``math.fsum``),
    entries whose weights cancel exactly take no part, and the rest is
    summed exactly in float64.  NaN, NaN where the terms' rounding is as
    large as what the sum keeps (no significant digit left)."""
    groups: dict[float, list[float]] = {}
    for v, w in zip(row, weights):
        if w != 0:
            groups.setdefault(v, []).append(w)
    pairs = [(v, math.fsum(ws)) for v, ws in groups.items()]
    pairs = [(v, w) for v, w in pairs if w != 0]
    if not pairs:
        return -math.inf, 0.0
    top = max(v for v, _ in pairs)
    terms = [w * math.exp(v - top) for v, w in pairs]
    total = math.fsum(terms)
    if abs(total) <= _CANCELLATION_ULPS * 2.0 ** -52 * math.fsum(map(abs, terms)):
        return math.nan, math.nan
    return top + math.log(abs(total)), math.copysign(1.0, total)
