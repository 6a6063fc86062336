"""The public functions: argument checks, dtype rules, axis and ``out=`` handling.

A call first tries :func:`fastsoftmax._rows.try_fast`, which computes the
common calls (an aligned float32/float64 array in C or Fortran order, one
axis, valid arguments, ``out`` None or an exact match) without any Python-level
work.  Everything else, every error included, goes through :func:`_apply`:
it converts the input to a C-contiguous float32/float64 array (reduced over
one axis in place, or over several axes moved to the end and flattened into
rows), picks or makes a matching output buffer, and hands both to the
compiled loops in :mod:`fastsoftmax._rows`.
"""
from __future__ import annotations

import math
import numbers
import operator
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.exceptions import AxisError

from . import _rows

if TYPE_CHECKING:
    from typing import Sequence

    from numpy.typing import ArrayLike, NDArray

    from ._typing import ArrayT, Axis, Float64Like, FloatT, Temperature, Threads

__all__ = ["softmax", "log_softmax", "logsumexp"]

SOFTMAX = _rows.SOFTMAX
LOG_SOFTMAX = _rows.LOG_SOFTMAX
LOGSUMEXP = _rows.LOGSUMEXP
_NAMES = {SOFTMAX: "softmax", LOG_SOFTMAX: "log_softmax", LOGSUMEXP: "logsumexp"}

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_SUPPORTED_DTYPES = "float16, float32, float64, bool and integer dtypes"


# ---- argument checks --------------------------------------------------------

def _dtypes(dtype: np.dtype, name: str) -> tuple[np.dtype, np.dtype]:
    """(dtype the kernels compute in, dtype of the result) for an input dtype."""
    if dtype == _F32 or dtype == _F64:
        return dtype, dtype
    kind = dtype.kind
    if kind == "f":
        if dtype.itemsize == 4:
            return _F32, _F32          # non-native byte order
        if dtype.itemsize == 8:
            return _F64, _F64
        if dtype.itemsize == 2:
            return _F32, _F16
    elif kind in "biu":
        return _F64, _F64
    raise TypeError(
        f"{name}(): unsupported input dtype {dtype}; supported are {_SUPPORTED_DTYPES}"
    )


def _check_temperature(temperature, name: str) -> float:
    if isinstance(temperature, np.ndarray) and temperature.ndim == 0:
        temperature = temperature[()]
    if isinstance(temperature, (bool, np.bool_)) or not isinstance(temperature, numbers.Real):
        raise TypeError(
            f"{name}(): temperature must be a real scalar, got {type(temperature).__name__} "
            f"{temperature!r:.60}"
        )
    try:
        t = float(temperature)
    except OverflowError:           # a Python int beyond the float range
        t = math.inf if temperature > 0 else -math.inf
    if not t >= 0.0:
        raise ValueError(
            f"{name}(): temperature must be >= 0 (0 and inf allowed), got {temperature!r}"
        )
    return t


def _check_threads(num_threads, name: str) -> int:
    """0 for the OpenMP default, else the requested thread count."""
    if num_threads is None:
        return 0
    if isinstance(num_threads, (bool, np.bool_)) or not isinstance(num_threads, numbers.Integral):
        raise TypeError(
            f"{name}(): num_threads must be None or an int >= 1, "
            f"got {type(num_threads).__name__} {num_threads!r:.60}"
        )
    n = int(num_threads)
    if n < 1:
        raise ValueError(f"{name}(): num_threads must be None or an int >= 1, got {n}")
    if n > 1 and not _OPENMP:
        _warn_no_openmp(n)
    return min(n, _rows.MAX_THREADS)


# Whether this build has threads.  Without OpenMP, _rows.try_fast leaves calls
# asking for num_threads > 1 to this path, so the first one warns.
_OPENMP = _rows.openmp_enabled()
_warned_no_openmp = False


def _warn_no_openmp(requested: int) -> None:
    global _warned_no_openmp
    if _warned_no_openmp:
        return
    _warned_no_openmp = True
    warnings.warn(
        f"num_threads={requested} has no effect: this fastsoftmax was built without OpenMP, so every "
        "call runs on one thread (fastsoftmax.build_info()['openmp'] is False). To get threads, "
        "install an OpenMP runtime for the compiler (libgomp for GCC, libomp for Clang) and "
        "reinstall fastsoftmax from source: pip install --force-reinstall --no-binary fastsoftmax "
        "fastsoftmax (or pip install . in a checkout). This warning is shown once.",
        RuntimeWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """``stacklevel`` of the innermost caller outside this package, for warnings."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def _normalize_axes(axis, ndim: int, name: str) -> tuple[int, ...]:
    """Sorted tuple of the reduced axes (non-negative)."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    axes = []
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise TypeError(f"{name}(): axis must be an int, a tuple of ints or None, got {axis!r}")
        try:
            a = operator.index(item)
        except TypeError:
            raise TypeError(
                f"{name}(): axis must be an int, a tuple of ints or None, got {axis!r:.60}"
            ) from None
        if ndim == 0:
            # A 0-d array behaves as one row of one element: axis 0 / -1 name it.
            if a not in (0, -1):
                raise AxisError(f"{name}(): axis {a} is out of bounds for a 0-d input "
                                "(which accepts axis 0, -1, () or None)")
            continue
        if not -ndim <= a < ndim:
            raise AxisError(
                f"{name}(): axis {a} is out of bounds for an array of dimension {ndim}"
            )
        axes.append(a % ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name}(): repeated axis in {axis!r}")
    return tuple(sorted(axes))


def _check_out(out, shape: tuple, dtype: np.dtype, name: str) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}(): out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{name}(): out has shape {out.shape}, the result has shape {shape}")
    if out.dtype != dtype:
        raise TypeError(
            f"{name}(): out has dtype {out.dtype}, the result has dtype {dtype}"
        )
    if not out.flags.writeable:
        raise ValueError(f"{name}(): out is read-only")


# ---- the one path every call takes ------------------------------------------

def _apply(op: int, x, axis, temperature, out, num_threads, keepdims: bool = False):
    name = _NAMES[op]
    if type(x) is not np.ndarray:
        if x is None:
            raise TypeError(f"{name}(): x is None, not an array; pass an array_like of numbers")
        x = np.asarray(x)
    compute_dt, result_dt = _dtypes(x.dtype, name)
    if type(temperature) is not float or temperature != 1.0:
        temperature = _check_temperature(temperature, name)
    threads = 0 if num_threads is None else _check_threads(num_threads, name)

    ndim = x.ndim
    if type(axis) is int and axis == -1 and ndim >= 1:
        axes = (ndim - 1,)
    else:
        axes = _normalize_axes(axis, ndim, name)

    if len(axes) == 1:
        # One axis: the kernels reduce it in place, whatever its position.
        axis_c = axes[0]
        xt, perm, kept = x, None, None
        buffer_shape = None
    else:
        # Several axes (or a 0-d input): they are moved to the end and
        # flattened into rows (kept axes keep their order).
        kept = tuple(a for a in range(ndim) if a not in axes)
        perm = None if kept + axes == tuple(range(ndim)) else kept + axes
        xt = x if perm is None else x.transpose(perm)
        axis_c = 1
    if not (xt.flags.c_contiguous and xt.flags.aligned and xt.dtype == compute_dt):
        xt = np.array(xt, dtype=compute_dt, order="C")
    if kept is None:
        x2 = xt
        reduced = tuple(s for a, s in enumerate(x.shape) if a != axis_c)
        buffer_shape = reduced if op == LOGSUMEXP else x.shape
        lse_shape = (tuple(1 if a == axis_c else s for a, s in enumerate(x.shape)) if keepdims
                     else reduced)
    else:
        outer = xt.shape[: len(kept)]
        rows = math.prod(outer)
        x2 = xt.reshape(rows, math.prod(xt.shape[len(kept):]))
        buffer_shape = (rows,) if op == LOGSUMEXP else x2.shape
        lse_shape = (tuple(1 if a in axes else s for a, s in enumerate(x.shape)) if keepdims
                     else outer)
        if ndim == 0:
            lse_shape = ()

    if op == LOGSUMEXP:
        o2, direct = _output(out, lse_shape, buffer_shape, result_dt, compute_dt, x2, name, None)
        _rows.compute(op, x2, o2, axis_c, temperature, threads)
        if out is not None:
            if not direct:
                _copy_into(out, o2.reshape(lse_shape))
            return out
        res = o2.reshape(lse_shape)
    else:
        shape = x.shape
        o2, direct = _output(out, shape, buffer_shape, result_dt, compute_dt, x2, name, perm)
        _rows.compute(op, x2, o2, axis_c, temperature, threads)
        if out is not None:
            if not direct:
                target = out if perm is None else out.transpose(perm)
                _copy_into(target, o2.reshape(target.shape))
            return out
        res = o2.reshape(xt.shape)
        if perm is not None:
            res = np.ascontiguousarray(res.transpose(np.argsort(perm)))
    if res.dtype != result_dt:
        with np.errstate(over="ignore"):    # float16 results beyond its range are inf
            res = res.astype(result_dt)
    return res[()] if res.ndim == 0 else res


def _copy_into(target: np.ndarray, values: np.ndarray) -> None:
    with np.errstate(over="ignore"):
        np.copyto(target, values, casting="unsafe")


def _output(out, shape, shape2, result_dt, compute_dt, x2, name, perm):
    """The C-contiguous (rows, n) or (rows,) buffer the kernels write, and
    whether it is a view of ``out``.  When it is not, the caller copies it
    into ``out`` afterwards."""
    if out is None:
        return _rows.empty(shape2, compute_dt.name), False
    _check_out(out, shape, result_dt, name)
    target = out if perm is None else out.transpose(perm)
    if (result_dt == compute_dt and target.flags.c_contiguous and target.flags.aligned):
        view = target.reshape(shape2)
        relation = _rows.overlap(view, x2)
        # In-place (same start, same layout) is exact: each element of a row is
        # read before it is written.  Any other overlap goes through a copy.
        if relation == 0 or (relation == 1 and view.shape == x2.shape):
            return view, True
    return _rows.empty(shape2, compute_dt.name), False


# ---- public functions -------------------------------------------------------

@overload
def softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ...,
            out: ArrayT, num_threads: Threads = ...) -> ArrayT: ...
@overload
def softmax(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperature = ...,
            out: None = ..., num_threads: Threads = ...) -> NDArray[FloatT]: ...
@overload
def softmax(x: FloatT, axis: Axis = ..., *, temperature: Temperature = ...,
            out: None = ..., num_threads: Threads = ...) -> FloatT: ...
@overload
def softmax(x: Float64Like, axis: Axis = ..., *, temperature: Temperature = ...,
            out: None = ..., num_threads: Threads = ...) -> NDArray[np.float64]: ...
@overload
def softmax(x: float, axis: Axis = ..., *, temperature: Temperature = ...,
            out: None = ..., num_threads: Threads = ...) -> np.float64: ...
@overload
def softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ...,
            out: None = ..., num_threads: Threads = ...
            ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
def softmax(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0,
            out: NDArray[Any] | None = None, num_threads: Threads = None) -> Any:
    """Softmax along ``axis``: ``exp(x / T) / sum(exp(x / T))``, row by row.

    Computed as ``exp((x - max) / T) / sum(exp((x - max) / T))`` so huge logits
    never overflow.

    Parameters
    ----------
    x : array_like
        Logits.  float32 gives float32, float64 gives float64, float16 gives
        float16 (computed in float32), bool and integers give float64.  Any
        memory layout is accepted; C-contiguous rows along the last axis are
        the fast path.
    axis : int, tuple of ints or None, default -1
        Axis (or axes, reduced jointly) the probabilities sum over.  ``None``
        means all axes.  Note: ``scipy.special.softmax`` defaults to
        ``axis=None``; this package defaults to rows, like JAX.
    temperature : float, default 1.0
        ``T`` with ``0 <= T <= inf``.  ``T = 0`` is the limit ``T -> 0+``:
        ``1/k`` on the ``k`` entries equal to the maximum, 0 elsewhere (greedy
        decoding).  ``T = inf`` is uniform over the entries that are not -inf.
    out : ndarray, optional
        Where to write the result: exactly ``x``'s shape and the result dtype.
        May be ``x`` itself (in-place) or overlap it.
    num_threads : int, optional
        Cap on OpenMP threads for this call (at most the number of
        processors).  ``None`` uses the OpenMP default, so ``OMP_NUM_THREADS``
        and ``threadpoolctl`` apply.  Results do not depend on it.  A build
        without OpenMP runs every call on one thread, and the first call
        asking for more emits a ``RuntimeWarning`` saying how to fix that.

    Returns
    -------
    ndarray
        Same shape as ``x`` (a NumPy scalar for a 0-d input); ``out`` if given.
        A new result is C-contiguous, or Fortran-ordered when ``x`` is
        Fortran-ordered and one axis is reduced (as NumPy's ufuncs keep it).

    Notes
    -----
    Per row: a NaN, a ``+inf`` or only ``-inf`` entries give a NaN row;
    ``-inf`` entries get probability 0.  At ``T = 0`` only a NaN gives a NaN
    row.  No warnings are emitted.

    Examples
    --------
    >>> import fastsoftmax as fs
    >>> fs.softmax([2.0, 1.0, 0.1]).round(2)
    array([0.66, 0.24, 0.1 ])
    >>> fs.softmax([2.0, 1.0, 0.5], temperature=0.0)
    array([1., 0., 0.])
    """
    fast = _rows.try_fast(SOFTMAX, x, axis, temperature, out, num_threads)
    return _apply(SOFTMAX, x, axis, temperature, out, num_threads) if fast is None else fast


@overload
def log_softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ...,
                out: ArrayT, num_threads: Threads = ...) -> ArrayT: ...
@overload
def log_softmax(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperature = ...,
                out: None = ..., num_threads: Threads = ...) -> NDArray[FloatT]: ...
@overload
def log_softmax(x: FloatT, axis: Axis = ..., *, temperature: Temperature = ...,
                out: None = ..., num_threads: Threads = ...) -> FloatT: ...
@overload
def log_softmax(x: Float64Like, axis: Axis = ..., *, temperature: Temperature = ...,
                out: None = ..., num_threads: Threads = ...) -> NDArray[np.float64]: ...
@overload
def log_softmax(x: float, axis: Axis = ..., *, temperature: Temperature = ...,
                out: None = ..., num_threads: Threads = ...) -> np.float64: ...
@overload
def log_softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ...,
                out: None = ..., num_threads: Threads = ...
            ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
def log_softmax(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0,
                out: NDArray[Any] | None = None, num_threads: Threads = None) -> Any:
    """Log-softmax along ``axis``: ``(x - max) / T - log(sum(exp((x - max) / T)))``.

    Computed directly, never as ``log(softmax(x))``, so tiny probabilities keep
    their full precision instead of underflowing to ``-inf``; the row
    maximum's own term is taken out of the sum and ``log1p`` used, so values
    near 0 are exact too.  Arguments, special values and results as in
    :func:`softmax`: NaN rows where softmax gives NaN, ``-inf`` where it gives
    0.  At ``T = 0``: ``-log(k)`` at the ``k`` maxima, ``-inf`` elsewhere; at
    ``T = inf``: ``-log(k)`` at the ``k`` entries that are not ``-inf``.

    Examples
    --------
    >>> import fastsoftmax as fs
    >>> fs.log_softmax([100.0, 101.0, 102.0]).round(4)
    array([-2.4076, -1.4076, -0.4076])
    """
    fast = _rows.try_fast(LOG_SOFTMAX, x, axis, temperature, out, num_threads)
    return _apply(LOG_SOFTMAX, x, axis, temperature, out, num_threads) if fast is None else fast


# A 1-d input, or axis=None, reduces to a scalar: where the number of
# dimensions is unknown statically, the result is an array or a scalar.
@overload
def logsumexp(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., keepdims: bool = ...,
              out: ArrayT, num_threads: Threads = ...) -> ArrayT: ...
@overload
def logsumexp(x: NDArray[FloatT] | FloatT, axis: None, *, temperature: Temperature = ...,
              keepdims: Literal[False] = ..., out: None = ..., num_threads: Threads = ...) -> FloatT: ...
@overload
def logsumexp(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperature = ..., keepdims: Literal[True],
              out: None = ..., num_threads: Threads = ...) -> NDArray[FloatT]: ...
@overload
def logsumexp(x: FloatT, axis: Axis = ..., *, temperature: Temperature = ..., keepdims: bool = ...,
              out: None = ..., num_threads: Threads = ...) -> FloatT: ...
@overload
def logsumexp(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperature = ..., keepdims: bool = ...,
              out: None = ..., num_threads: Threads = ...) -> NDArray[FloatT] | FloatT: ...
@overload
def logsumexp(x: float | Sequence[float], axis: Axis = ..., *, temperature: Temperature = ...,
              keepdims: Literal[False] = ..., out: None = ..., num_threads: Threads = ...) -> np.float64: ...
@overload
def logsumexp(x: Float64Like, axis: None, *, temperature: Temperature = ...,
              keepdims: Literal[False] = ..., out: None = ..., num_threads: Threads = ...) -> np.float64: ...
@overload
def logsumexp(x: Float64Like, axis: Axis = ..., *, temperature: Temperature = ..., keepdims: Literal[True],
              out: None = ..., num_threads: Threads = ...) -> NDArray[np.float64]: ...
@overload
def logsumexp(x: Float64Like | float, axis: Axis = ..., *, temperature: Temperature = ..., keepdims: bool = ...,
              out: None = ..., num_threads: Threads = ...) -> NDArray[np.float64] | np.float64: ...
@overload
def logsumexp(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., keepdims: bool = ...,
              out: None = ..., num_threads: Threads = ...) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
def logsumexp(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0, keepdims: bool = False,
              out: NDArray[Any] | None = None, num_threads: Threads = None) -> Any:
    """``T * log(sum(exp(x / T)))`` along ``axis``: the smooth maximum, in ``x``'s units.

    At ``T = 1`` the ordinary log-sum-exp; ``log_softmax(x, temperature=T) ==
    (x - logsumexp(x, temperature=T, keepdims=True)) / T``.  ``T = 0`` gives the maximum;
    ``T = inf`` gives ``+inf`` (or the single entry when only one is not
    ``-inf``).

    Per row: a NaN gives NaN, a ``+inf`` gives ``+inf``, only ``-inf`` entries
    or an empty row give ``-inf``.

    Parameters are those of :func:`softmax`, plus ``keepdims`` (keep the
    reduced axes with length 1).  The result has the reduced shape; a 0-d
    result is returned as a NumPy scalar of the result dtype, like
    :func:`numpy.sum`, unless ``out`` is given.

    Examples
    --------
    >>> import fastsoftmax as fs
    >>> float(fs.logsumexp([0.0, -40.0]))
    4.248354255291589e-18
    """
    if keepdims is True or keepdims is False:
        fast = _rows.try_fast(LOGSUMEXP, x, axis, temperature, out, num_threads, keepdims)
        if fast is not None:
            return fast
    return _apply(LOGSUMEXP, x, axis, temperature, out, num_threads, keepdims=bool(keepdims))
