"""The public functions softmax, log_softmax and logsumexp.

A call first tries :func:`fastsoftmax._rows.try_fast`, which computes the
common calls (an aligned float32/float64 array in C or Fortran order, one
axis, valid arguments, ``out`` None or an exact match) without any Python-level
work.  Everything else, every error included, goes through :func:`_apply`:
it checks the arguments (:mod:`fastsoftmax._args`), converts the input to a
C-contiguous float32/float64 array (reduced over one axis in place, or over
several axes moved to the end and flattened into rows by
:mod:`fastsoftmax._layout`), picks or makes a matching output buffer, and
hands both to the compiled loops in :mod:`fastsoftmax._rows`.  Dask arrays
go on to :mod:`fastsoftmax.dask` after the same checks.
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from . import _args, _layout, _rows

if TYPE_CHECKING:
    from typing import Sequence

    from numpy.typing import ArrayLike, DTypeLike, NDArray

    from ._typing import ArrayT, Axis, Float64Like, FloatT, Temperatures, Threads

__all__ = ["softmax", "log_softmax", "logsumexp"]

SOFTMAX = _rows.SOFTMAX
LOG_SOFTMAX = _rows.LOG_SOFTMAX
LOGSUMEXP = _rows.LOGSUMEXP
_NAMES = {SOFTMAX: "softmax", LOG_SOFTMAX: "log_softmax", LOGSUMEXP: "logsumexp"}


# ---- threads: the build's warning ---------------------------------------------

def _check_threads(num_threads, name: str) -> int:
    """0 for the OpenMP default, else the requested thread count, capped."""
    if num_threads is None:
        return 0
    n = _args.thread_count(num_threads, name)
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


# ---- the one path every call takes ------------------------------------------

def _apply(op: int, x, axis, temperature, out, num_threads, keepdims: bool = False, where=None,
           dtype=None):
    name = _NAMES[op]
    if type(x) is not np.ndarray:
        if x is None:
            raise TypeError(f"{name}(): x is None, not an array; pass an array_like of numbers")
        if _is_dask_array(x):
            return _lazy(op, x, axis, temperature, out, num_threads, keepdims, where, dtype)
        _args.in_memory(x, "x", name)
        x = np.asarray(x)
    compute_dt, result_dt = _args.dtypes(x.dtype, name)
    if dtype is not None:
        compute_dt, result_dt = _args.requested_dtypes(dtype, compute_dt, name)
    per_row = False
    if type(temperature) is not float or temperature != 1.0:
        per_row = np.ndim(temperature) > 0      # checked below, against the rows
        if not per_row:
            temperature = _args.temperature(temperature, name)
    threads = 0 if num_threads is None else _check_threads(num_threads, name)

    ndim = x.ndim
    if type(axis) is int and axis == -1 and ndim >= 1:
        axes = (ndim - 1,)
    else:
        axes = _args.axes(axis, ndim, name)
    if per_row:
        # one temperature per row: a float when they are all equal, else an array
        temperature = _args.row_temperatures(temperature, tuple(s for a, s in enumerate(x.shape) if a not in axes),
                                             name)
        per_row = type(temperature) is not float
    mask = None if where is None else _args.where(where, x.shape, name)
    if mask is not None and x.size == 0:
        mask = None             # no entry to select: the result is that of the empty rows

    if (mask is None and not per_row and x.dtype.itemsize == 2 and axes == (ndim - 1,)
            and result_dt.itemsize <= compute_dt.itemsize):
        staged = _staged(op, x, compute_dt, result_dt, out, keepdims, temperature, threads, name)
        if staged is not None:
            return staged

    if len(axes) == 1 and mask is None and not (per_row and axes[0] != ndim - 1):
        # One axis: the kernels reduce it in place, whatever its position.
        axis_c, perm = axes[0], None
        x2 = _layout.contiguous(x, compute_dt)
        outer = tuple(s for a, s in enumerate(x.shape) if a != axis_c)
        buffer_shape = outer if op == LOGSUMEXP else x.shape
    else:
        # Several axes, a 0-d input, a mask, or one temperature per row along
        # an axis that is not the last (the strided-axis kernels reduce
        # several rows at once, at one temperature): the reduced axes are
        # moved to the end and flattened into rows (kept axes keep their
        # order), one copy.
        x2, perm, outer, reduced = _layout.to_rows(x, axes, compute_dt)
        axis_c = 1
        buffer_shape = x2.shape[:1] if op == LOGSUMEXP else x2.shape
    if op == LOGSUMEXP:
        # one value per row, in the result's order already
        shape = tuple(1 if a in axes else s for a, s in enumerate(x.shape)) if keepdims else outer
        result_perm = None
    else:
        shape, result_perm = x.shape, perm

    o2 = None
    if out is not None:
        _args.out(out, shape, result_dt, name)
        o2 = _args.out_rows(out, result_perm, buffer_shape, result_dt, compute_dt, x2)
    direct = o2 is not None
    if o2 is None:
        o2 = _rows.empty(buffer_shape, compute_dt.name)
    if mask is None:
        _rows.compute(op, x2, o2, axis_c, temperature, threads)
    else:
        _rows.compute_where(op, x2, _layout.broadcast_rows(mask, perm, len(outer), reduced), outer, o2,
                            temperature, threads)

    if out is not None:
        if not direct:
            _layout.into(out, o2, result_perm)
        return out
    res = _layout.from_rows(o2, shape, result_perm, result_dt)
    return res[()] if res.ndim == 0 else res


def _merged_axes(op: int, x: np.ndarray, axis, temperature, num_threads, keepdims: bool = False):
    """The compiled fast path for ``axis=None`` or a tuple of axes that lie
    next to each other in a C-contiguous array (all its axes, its trailing
    or leading axes, a run of middle axes): they are merged into one axis of
    a view, with no copy, and that axis is reduced by ``_rows.try_fast``.
    None where the layout does not allow it, or for anything try_fast
    declines (every error is raised by ``_apply``)."""
    ndim = x.ndim
    if ndim == 1 and axis is None:
        return _rows.try_fast(op, x, 0, temperature, None, num_threads, keepdims)
    if ndim == 0:
        return None
    if axis is None:
        first, last = 0, ndim - 1
    else:
        if type(axis) is not tuple or not axis or any(type(a) is not int or not -ndim <= a < ndim for a in axis):
            return None
        axes = sorted(a % ndim for a in axis)
        first, last = axes[0], axes[-1]
        if last - first + 1 != len(axes) or len(set(axes)) != len(axes):
            return None
    if not x.flags.c_contiguous:
        # A Fortran-ordered x would give a Fortran-ordered result, which the
        # contract keeps for one reduced axis; but its logsumexp over every
        # axis is one number: the same row, read through the transpose.
        if not (op == LOGSUMEXP and first == 0 and last == ndim - 1 and x.flags.f_contiguous):
            return None
        x = x.T
    shape = x.shape
    view = x if first == last else x.reshape(shape[:first] + (math.prod(shape[first:last + 1]),) + shape[last + 1:])
    result = _rows.try_fast(op, view, first, temperature, None, num_threads, keepdims)
    if result is None:
        return None
    if first != last:
        if op != LOGSUMEXP:
            result = result.reshape(shape)
        elif keepdims:
            result = result.reshape(shape[:first] + (1,) * (last - first + 1) + shape[last + 1:])
    return result


def _is_dask_array(x) -> bool:
    """Whether ``x`` is a Dask array, asked without importing Dask: nothing can
    be one unless ``dask.array`` is imported already."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(x, module.Array)


def _lazy(op: int, x, axis, temperature, out, num_threads, keepdims: bool, where=None, dtype=None):
    """The same checks for a Dask array, then its lazy result (fastsoftmax.dask)."""
    name = _NAMES[op]
    compute_dt, result_dt = _args.dtypes(x.dtype, name)
    if dtype is not None:
        compute_dt, result_dt = _args.requested_dtypes(dtype, compute_dt, name)
    if np.ndim(temperature) > 0:
        raise TypeError(f"{name}(): temperature must be a real scalar for a Dask array input (one temperature "
                        f"per row is for NumPy input), got an array of shape {np.shape(temperature)}")
    temperature = _args.temperature(temperature, name)
    threads = _check_threads(num_threads, name)
    axes = _args.axes(axis, x.ndim, name)
    if out is not None:
        raise TypeError(f"{name}(): out must be None for a Dask array input (the result is lazy; "
                        f"store it with dask.array.store), got {type(out).__name__}")
    if where is not None:
        if _is_dask_array(where):
            # checked on a stand-in of its dtype and shape: nothing is computed
            _args.where(np.broadcast_to(np.zeros((), where.dtype), where.shape), x.shape, name)
        else:
            where = _args.where(where, x.shape, name)
    from . import dask as lazy

    return lazy.apply(op, x, axes, temperature, threads, keepdims, compute_dt, result_dt, where)


def _half_format(dtype: np.dtype):
    """The compiled loops' name for a native 16-bit float format, or None."""
    if dtype == _args.F16 and dtype.isnative:
        return _rows.HALF_F16
    return _rows.HALF_BF16 if _args.is_bfloat16(dtype) else None


def _staged(op, x, compute_dt, result_dt, out, keepdims, temperature, threads, name):
    """A 16-bit input reduced along its last axis: the compiled loop converts
    it block by block through a buffer in cache (no pass over memory in the
    wider dtype).  None when the call takes the general path."""
    in_format = _half_format(x.dtype)
    out_format = -1 if result_dt == compute_dt else _half_format(result_dt)
    if (in_format is None or out_format is None or not (x.flags.c_contiguous and x.flags.aligned)
            or (out_format == -1 and not result_dt.isnative)):
        return None
    shape = x.shape
    if op == LOGSUMEXP:
        shape = shape[:-1] + (1,) if keepdims else shape[:-1]
    if out is None:
        result = _rows.empty_cached(shape, result_dt)
    else:
        _args.out(out, shape, result_dt, name)
        if not (out.flags.c_contiguous and out.flags.aligned) or np.may_share_memory(out, x):
            return None
        result = out
    if not _rows.compute_staged(op, x, result, in_format, out_format, temperature, threads):
        return None
    if out is not None:
        return out
    return result[()] if result.ndim == 0 else result


# ---- public functions -------------------------------------------------------

@overload
def softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
            out: ArrayT, num_threads: Threads = ..., dtype: DTypeLike = ...) -> ArrayT: ...
@overload
def softmax(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperatures = ...,
            where: ArrayLike | None = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...
            ) -> NDArray[FloatT]: ...
@overload
def softmax(x: FloatT, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> FloatT: ...
@overload
def softmax(x: Float64Like, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> NDArray[np.float64]: ...
@overload
def softmax(x: float, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> np.float64: ...
@overload
def softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: None = ...
            ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
@overload
def softmax(x: NDArray[Any], axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: type[FloatT] | np.dtype[FloatT]
            ) -> NDArray[FloatT]: ...
@overload
def softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: DTypeLike
            ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
def softmax(x: ArrayLike, axis: Axis = -1, *, temperature: Temperatures = 1.0, where: ArrayLike | None = None,
            out: NDArray[Any] | None = None, num_threads: Threads = None,
            dtype: DTypeLike | None = None) -> Any:
    """Softmax along ``axis``: ``exp(x / T) / sum(exp(x / T))``, row by row.

    Computed as ``exp((x - max) / T) / sum(exp((x - max) / T))`` so huge logits
    never overflow.

    Parameters
    ----------
    x : array_like
        Logits.  float32 gives float32, float64 gives float64, float16 and
        ``ml_dtypes.bfloat16`` give their own dtype (computed in float32),
        bool and integers give float64.  Any memory layout is accepted;
        C-contiguous rows along the last axis are the fast path.  A
        ``dask.array.Array`` gives a lazy Dask array with its chunks, exact
        for any chunking (:mod:`fastsoftmax.dask`).
    axis : int, tuple of ints or None, default -1
        Axis (or axes, reduced jointly) the probabilities sum over.  ``None``
        means all axes.  Note: ``scipy.special.softmax`` defaults to
        ``axis=None``; this package defaults to rows, like JAX.
    temperature : float or array_like, default 1.0
        ``T`` with ``0 <= T <= inf``.  ``T = 0`` is the limit ``T -> 0+``:
        ``1/k`` on the ``k`` entries equal to the maximum, 0 elsewhere (greedy
        decoding).  ``T = inf`` is uniform over the entries that are not -inf.
        An array gives one ``T`` per row, with the same meanings: it
        broadcasts to the batch shape (``x``'s shape without the reduced
        axes), as in :func:`fastsoftmax.sample`.  The kernels take each row's
        own ``T``; rows along an axis other than the last are first laid out
        contiguously (a copy of ``x``, and the result is copied back into
        ``x``'s layout), since the strided-axis kernels reduce several rows
        at one temperature.  An array of equal entries is
        that one temperature.  A Dask array input takes a scalar.
    where : array_like of bool, optional
        Which entries take part: True keeps an entry, False masks it out.
        Broadcast to ``x``'s shape (a ``(B, 1, 1, S)`` padding mask or an
        ``(S, S)`` causal mask under ``(B, H, S, S)`` scores), never expanded
        or copied to that size.  Masked entries count as ``-inf`` whatever
        they hold (a NaN or ``+inf`` there is ignored).  A row with no True
        entry gives softmax 0, log_softmax ``-inf`` and logsumexp ``-inf``, at
        every temperature.  A dtype other than bool raises TypeError; a shape
        that does not broadcast to ``x``'s shape raises ValueError.
    out : ndarray, optional
        Where to write the result: exactly ``x``'s shape and the result dtype.
        May be ``x`` itself (in-place) or overlap it.
    num_threads : int, optional
        Cap on OpenMP threads for this call (at most the number of
        processors).  ``None`` uses the OpenMP default, so ``OMP_NUM_THREADS``
        and ``threadpoolctl`` apply.  Results do not depend on it.  A build
        without OpenMP runs every call on one thread, and the first call
        asking for more emits a ``RuntimeWarning`` saying how to fix that.
    dtype : dtype, optional
        The result's dtype instead of the one ``x`` gives: float16, bfloat16
        (``ml_dtypes.bfloat16`` or ``"bfloat16"``), float32 or float64.  The
        computation runs in float64 when ``x`` or ``dtype`` is float64, else
        in float32.  A float16 or bfloat16 ``x`` with ``dtype=np.float32``
        gives the float32 result directly, with no extra pass over it.

    Returns
    -------
    ndarray
        Same shape as ``x`` (a NumPy scalar for a 0-d input); ``out`` if given.
        A new result is C-contiguous, or Fortran-ordered when ``x`` is
        Fortran-ordered and one axis is reduced (as NumPy's ufuncs keep it).

    Notes
    -----
    Per row: a NaN, a ``+inf`` or only ``-inf`` entries give a NaN row;
    ``-inf`` entries get probability 0.  At ``T = 0`` a NaN, or a row of only
    ``-inf``, gives a NaN row (there is nothing to pick).  No warnings are
    emitted.

    With ``where=``, the rules above apply to the kept entries: a row whose
    kept entries are all ``-inf`` is NaN, a row with no kept entry is 0
    (softmax) or ``-inf`` (log_softmax, logsumexp).

    Examples
    --------
    >>> import fastsoftmax as fs
    >>> fs.softmax([2.0, 1.0, 0.1]).round(2)
    array([0.66, 0.24, 0.1 ])
    >>> fs.softmax([2.0, 1.0, 0.5], temperature=0.0)
    array([1., 0., 0.])
    >>> fs.softmax([[2.0, 1.0], [2.0, 1.0]], temperature=[1.0, 0.0]).round(3)
    array([[0.731, 0.269],
           [1.   , 0.   ]])
    >>> import numpy as np
    >>> scores = np.array([[2.0, 1.0, 9.0], [0.5, np.nan, 1.0]])
    >>> keep = np.array([[True, True, False], [False, False, False]])
    >>> fs.softmax(scores, where=keep).round(3)
    array([[0.731, 0.269, 0.   ],
           [0.   , 0.   , 0.   ]])
    """
    if where is not None or dtype is not None:
        return _apply(SOFTMAX, x, axis, temperature, out, num_threads, where=where, dtype=dtype)
    fast = _rows.try_fast(SOFTMAX, x, axis, temperature, out, num_threads)
    if fast is None and type(axis) is not int and out is None and type(x) is np.ndarray:
        fast = _merged_axes(SOFTMAX, x, axis, temperature, num_threads)
    return _apply(SOFTMAX, x, axis, temperature, out, num_threads) if fast is None else fast


@overload
def log_softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
                out: ArrayT, num_threads: Threads = ..., dtype: DTypeLike = ...) -> ArrayT: ...
@overload
def log_softmax(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperatures = ...,
                where: ArrayLike | None = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...
                ) -> NDArray[FloatT]: ...
@overload
def log_softmax(x: FloatT, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
                out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> FloatT: ...
@overload
def log_softmax(x: Float64Like, axis: Axis = ..., *, temperature: Temperatures = ...,
                where: ArrayLike | None = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...
                ) -> NDArray[np.float64]: ...
@overload
def log_softmax(x: float, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
                out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> np.float64: ...
@overload
def log_softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
                out: None = ..., num_threads: Threads = ..., dtype: None = ...
                ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
@overload
def log_softmax(x: NDArray[Any], axis: Axis = ..., *, temperature: Temperatures = ...,
                where: ArrayLike | None = ..., out: None = ..., num_threads: Threads = ...,
                dtype: type[FloatT] | np.dtype[FloatT]) -> NDArray[FloatT]: ...
@overload
def log_softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
                out: None = ..., num_threads: Threads = ..., dtype: DTypeLike
                ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
def log_softmax(x: ArrayLike, axis: Axis = -1, *, temperature: Temperatures = 1.0, where: ArrayLike | None = None,
                out: NDArray[Any] | None = None, num_threads: Threads = None,
                dtype: DTypeLike | None = None) -> Any:
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
    if where is not None or dtype is not None:
        return _apply(LOG_SOFTMAX, x, axis, temperature, out, num_threads, where=where, dtype=dtype)
    fast = _rows.try_fast(LOG_SOFTMAX, x, axis, temperature, out, num_threads)
    if fast is None and type(axis) is not int and out is None and type(x) is np.ndarray:
        fast = _merged_axes(LOG_SOFTMAX, x, axis, temperature, num_threads)
    return _apply(LOG_SOFTMAX, x, axis, temperature, out, num_threads) if fast is None else fast


# A 1-d input, or axis=None, reduces to a scalar: where the number of
# dimensions is unknown statically, the result is an array or a scalar.  (The
# ignored overlaps pair different dtypes of the constrained FloatT, which no
# call can match at once.)
@overload
def logsumexp(x: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
              keepdims: bool = ..., out: ArrayT, num_threads: Threads = ..., dtype: DTypeLike = ...) -> ArrayT: ...
@overload
def logsumexp(x: NDArray[FloatT] | FloatT, axis: None, *, temperature: Temperatures = ...,  # type: ignore[overload-overlap]
              where: ArrayLike | None = ..., keepdims: Literal[False] = ..., out: None = ...,
              num_threads: Threads = ..., dtype: None = ...) -> FloatT: ...
@overload
def logsumexp(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperatures = ...,  # type: ignore[overload-overlap]
              where: ArrayLike | None = ..., keepdims: Literal[True], out: None = ..., num_threads: Threads = ...,
              dtype: None = ...) -> NDArray[FloatT]: ...
@overload
def logsumexp(x: FloatT, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
              keepdims: bool = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> FloatT: ...
@overload
def logsumexp(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperatures = ...,
              where: ArrayLike | None = ..., keepdims: bool = ..., out: None = ..., num_threads: Threads = ...,
              dtype: None = ...) -> NDArray[FloatT] | FloatT: ...
@overload
def logsumexp(x: float | Sequence[float], axis: Axis = ..., *, temperature: Temperatures = ...,
              where: ArrayLike | None = ..., keepdims: Literal[False] = ..., out: None = ...,
              num_threads: Threads = ..., dtype: None = ...) -> np.float64: ...
@overload
def logsumexp(x: Float64Like, axis: None, *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
              keepdims: Literal[False] = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...
              ) -> np.float64: ...
@overload
def logsumexp(x: Float64Like, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
              keepdims: Literal[True], out: None = ..., num_threads: Threads = ..., dtype: None = ...
              ) -> NDArray[np.float64]: ...
@overload
def logsumexp(x: Float64Like | float, axis: Axis = ..., *, temperature: Temperatures = ...,
              where: ArrayLike | None = ..., keepdims: bool = ..., out: None = ..., num_threads: Threads = ...,
              dtype: None = ...) -> NDArray[np.float64] | np.float64: ...
@overload
def logsumexp(x: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
              keepdims: bool = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...
              ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
@overload
def logsumexp(x: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
              keepdims: bool = ..., out: None = ..., num_threads: Threads = ...,
              dtype: type[FloatT] | np.dtype[FloatT]) -> NDArray[FloatT] | FloatT: ...
@overload
def logsumexp(x: ArrayLike, axis: Axis = ..., *, temperature: Temperatures = ..., where: ArrayLike | None = ...,
              keepdims: bool = ..., out: None = ..., num_threads: Threads = ..., dtype: DTypeLike
              ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
def logsumexp(x: ArrayLike, axis: Axis = -1, *, temperature: Temperatures = 1.0, where: ArrayLike | None = None,
              keepdims: bool = False, out: NDArray[Any] | None = None, num_threads: Threads = None,
              dtype: DTypeLike | None = None) -> Any:
    """``T * log(sum(exp(x / T)))`` along ``axis``: the smooth maximum, in ``x``'s units.

    At ``T = 1`` the ordinary log-sum-exp; ``log_softmax(x, temperature=T) ==
    (x - logsumexp(x, temperature=T, keepdims=True)) / T``.  ``T = 0`` gives the maximum;
    ``T = inf`` gives ``+inf`` (or the single entry when only one is not
    ``-inf``).

    Per row: a NaN gives NaN, a ``+inf`` gives ``+inf``, only ``-inf`` entries,
    an empty row or a row with no entry kept by ``where`` give ``-inf``.

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
    if where is None and dtype is None and (keepdims is True or keepdims is False):
        fast = _rows.try_fast(LOGSUMEXP, x, axis, temperature, out, num_threads, keepdims)
        if fast is None and type(axis) is not int and out is None and type(x) is np.ndarray:
            fast = _merged_axes(LOGSUMEXP, x, axis, temperature, num_threads, keepdims)
        if fast is not None:
            return fast
    return _apply(LOGSUMEXP, x, axis, temperature, out, num_threads, keepdims=bool(keepdims), where=where,
                  dtype=dtype)
