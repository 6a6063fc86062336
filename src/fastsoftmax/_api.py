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

    from numpy.typing import ArrayLike, DTypeLike, NDArray

    from ._typing import ArrayT, Axis, Float64Like, FloatT, Temperature, Threads

__all__ = ["softmax", "log_softmax", "logsumexp"]

SOFTMAX = _rows.SOFTMAX
LOG_SOFTMAX = _rows.LOG_SOFTMAX
LOGSUMEXP = _rows.LOGSUMEXP
_NAMES = {SOFTMAX: "softmax", LOG_SOFTMAX: "log_softmax", LOGSUMEXP: "logsumexp"}

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_SUPPORTED_DTYPES = "float16, bfloat16 (ml_dtypes), float32, float64, bool and integer dtypes"
_RESULT_DTYPES = "float16, bfloat16 (ml_dtypes), float32 or float64"


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
    elif _is_bfloat16(dtype):
        return _F32, dtype
    raise TypeError(
        f"{name}(): unsupported input dtype {dtype}; supported are {_SUPPORTED_DTYPES}"
    )


def _is_bfloat16(dtype: np.dtype) -> bool:
    """ml_dtypes' bfloat16, recognised without importing ml_dtypes."""
    return (dtype.kind == "V" and dtype.itemsize == 2 and dtype.name == "bfloat16"
            and dtype.type.__module__.split(".")[0] == "ml_dtypes")


def _requested_dtypes(requested, compute_dt: np.dtype, name: str) -> tuple[np.dtype, np.dtype]:
    """(dtype computed in, result dtype) for ``dtype=requested``: float64 is
    computed in float64, the others in what the input computes in."""
    if isinstance(requested, str) and requested == "bfloat16":
        try:
            import ml_dtypes  # noqa: F401  (registers the name "bfloat16" with NumPy)
        except ImportError:
            raise TypeError(f"{name}(): dtype='bfloat16' needs the ml_dtypes package") from None
    try:
        dt = np.dtype(requested)
    except TypeError:
        dt = None
    if dt is None or not ((dt.kind == "f" and dt.itemsize in (2, 4, 8)) or _is_bfloat16(dt)):
        raise TypeError(f"{name}(): dtype must be None or {_RESULT_DTYPES}, got {requested!r:.60}")
    return (_F64 if dt.itemsize == 8 else compute_dt), dt


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


def _one_axis(axis, ndim: int, name: str) -> int:
    """One int axis (the axis of classes or tokens), made non-negative; a 0-d
    input counts as one entry along axis 0."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name}(): axis must be an int, got {type(axis).__name__} {axis!r:.60}")
    return _normalize_axes(int(axis), max(ndim, 1), name)[0]


def _check_where(where, shape: tuple, name: str) -> np.ndarray:
    """The where= mask as a bool array with x's number of dimensions (a view:
    broadcast dimensions stay length 1, nothing is expanded)."""
    mask = where if type(where) is np.ndarray else np.asarray(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name}(): where must be a boolean array_like, got dtype {mask.dtype}")
    if mask.ndim > len(shape) or any(m not in (1, s) for m, s in zip(mask.shape[::-1], shape[::-1])):
        raise ValueError(f"{name}(): where has shape {mask.shape}, which does not broadcast to "
                         f"the input's shape {shape}")
    return mask.reshape((1,) * (len(shape) - mask.ndim) + mask.shape)


def _row_mask(mask: np.ndarray, perm, kept: int, reduced_shape: tuple) -> np.ndarray:
    """The mask in the layout of the kernels' rows: the row index's dimensions
    (length 1 where it broadcasts), then the row as n contiguous bytes, or as
    one byte when the mask is constant along the row."""
    m = mask if perm is None else mask.transpose(perm)
    outer = m.shape[:kept]
    if all(d == 1 for d in m.shape[kept:]):
        return m.reshape(outer + (1,))
    n = math.prod(reduced_shape)
    # Expanded along the row only where it broadcasts there (never along the
    # row index); usually a view.
    rows = np.broadcast_to(m, outer + tuple(reduced_shape)).reshape(outer + (n,))
    return rows if rows.strides[-1] == 1 or n <= 1 else np.ascontiguousarray(rows)


def _rows_layout(x: np.ndarray, axes: tuple, compute_dt: np.dtype):
    """x with the reduced axes moved to the end and flattened: (the
    C-contiguous (rows, n) array, the permutation or None, the row index's
    shape, the reduced shape)."""
    ndim = x.ndim
    kept = tuple(a for a in range(ndim) if a not in axes)
    perm = None if kept + axes == tuple(range(ndim)) else kept + axes
    xt = x if perm is None else x.transpose(perm)
    if not (xt.flags.c_contiguous and xt.flags.aligned and xt.dtype == compute_dt):
        xt = np.array(xt, dtype=compute_dt, order="C")
    outer = tuple(x.shape[a] for a in kept)
    reduced = tuple(x.shape[a] for a in axes)
    return xt.reshape(math.prod(outer), math.prod(reduced)), perm, outer, reduced


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

def _apply(op: int, x, axis, temperature, out, num_threads, keepdims: bool = False, where=None,
           dtype=None):
    name = _NAMES[op]
    if type(x) is not np.ndarray:
        if x is None:
            raise TypeError(f"{name}(): x is None, not an array; pass an array_like of numbers")
        if _is_dask_array(x):
            return _lazy(op, x, axis, temperature, out, num_threads, keepdims, where)
        x = np.asarray(x)
    compute_dt, result_dt = _dtypes(x.dtype, name)
    if dtype is not None:
        compute_dt, result_dt = _requested_dtypes(dtype, compute_dt, name)
    if type(temperature) is not float or temperature != 1.0:
        temperature = _check_temperature(temperature, name)
    threads = 0 if num_threads is None else _check_threads(num_threads, name)

    ndim = x.ndim
    if type(axis) is int and axis == -1 and ndim >= 1:
        axes = (ndim - 1,)
    else:
        axes = _normalize_axes(axis, ndim, name)
    mask = None if where is None else _check_where(where, x.shape, name)

    if mask is None and x.dtype.itemsize == 2 and axes == (ndim - 1,) and result_dt.itemsize <= compute_dt.itemsize:
        staged = _staged(op, x, compute_dt, result_dt, out, keepdims, temperature, threads, name)
        if staged is not None:
            return staged

    if len(axes) == 1 and mask is None:
        # One axis: the kernels reduce it in place, whatever its position.
        axis_c = axes[0]
        xt, perm, kept = x, None, None
        buffer_shape = None
    else:
        # Several axes, a 0-d input or a mask: the reduced axes are moved to
        # the end and flattened into rows (kept axes keep their order).
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

    def run(o2):
        if mask is None:
            _rows.compute(op, x2, o2, axis_c, temperature, threads)
        else:
            _rows.compute_where(op, x2, _row_mask(mask, perm, len(kept), xt.shape[len(kept):]), outer, o2,
                                temperature, threads)

    if op == LOGSUMEXP:
        o2, direct = _output(out, lse_shape, buffer_shape, result_dt, compute_dt, x2, name, None)
        run(o2)
        if out is not None:
            if not direct:
                _copy_into(out, o2.reshape(lse_shape))
            return out
        res = o2.reshape(lse_shape)
    else:
        shape = x.shape
        o2, direct = _output(out, shape, buffer_shape, result_dt, compute_dt, x2, name, perm)
        run(o2)
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


def _is_dask_array(x) -> bool:
    """Whether ``x`` is a Dask array, asked without importing Dask: nothing can
    be one unless ``dask.array`` is imported already."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(x, module.Array)


def _lazy(op: int, x, axis, temperature, out, num_threads, keepdims: bool, where=None):
    """The same checks for a Dask array, then its lazy result (fastsoftmax.dask)."""
    name = _NAMES[op]
    compute_dt, result_dt = _dtypes(x.dtype, name)
    temperature = _check_temperature(temperature, name)
    threads = _check_threads(num_threads, name)
    axes = _normalize_axes(axis, x.ndim, name)
    if out is not None:
        raise TypeError(f"{name}(): out must be None for a Dask array input (the result is lazy; "
                        f"store it with dask.array.store), got {type(out).__name__}")
    if where is not None:
        if _is_dask_array(where):
            # checked on a stand-in of its dtype and shape: nothing is computed
            _check_where(np.broadcast_to(np.zeros((), where.dtype), where.shape), x.shape, name)
        else:
            where = _check_where(where, x.shape, name)
    from . import dask as lazy

    return lazy.apply(op, x, axes, temperature, threads, keepdims, compute_dt, result_dt, where)


def _half_format(dtype: np.dtype):
    """The compiled loops' name for a native 16-bit float format, or None."""
    if dtype == _F16 and dtype.isnative:
        return _rows.HALF_F16
    return _rows.HALF_BF16 if _is_bfloat16(dtype) else None


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
        _check_out(out, shape, result_dt, name)
        if not (out.flags.c_contiguous and out.flags.aligned) or np.may_share_memory(out, x):
            return None
        result = out
    if not _rows.compute_staged(op, x, result, in_format, out_format, temperature, threads):
        return None
    if out is not None:
        return out
    return result[()] if result.ndim == 0 else result


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
def softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
            out: ArrayT, num_threads: Threads = ..., dtype: DTypeLike = ...) -> ArrayT: ...
@overload
def softmax(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperature = ...,
            where: ArrayLike | None = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...
            ) -> NDArray[FloatT]: ...
@overload
def softmax(x: FloatT, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> FloatT: ...
@overload
def softmax(x: Float64Like, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> NDArray[np.float64]: ...
@overload
def softmax(x: float, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> np.float64: ...
@overload
def softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: None = ...
            ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
@overload
def softmax(x: NDArray[Any], axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: type[FloatT] | np.dtype[FloatT]
            ) -> NDArray[FloatT]: ...
@overload
def softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
            out: None = ..., num_threads: Threads = ..., dtype: DTypeLike
            ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
def softmax(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0, where: ArrayLike | None = None,
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
    temperature : float, default 1.0
        ``T`` with ``0 <= T <= inf``.  ``T = 0`` is the limit ``T -> 0+``:
        ``1/k`` on the ``k`` entries equal to the maximum, 0 elsewhere (greedy
        decoding).  ``T = inf`` is uniform over the entries that are not -inf.
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
    return _apply(SOFTMAX, x, axis, temperature, out, num_threads) if fast is None else fast


@overload
def log_softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
                out: ArrayT, num_threads: Threads = ..., dtype: DTypeLike = ...) -> ArrayT: ...
@overload
def log_softmax(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperature = ...,
                where: ArrayLike | None = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...
                ) -> NDArray[FloatT]: ...
@overload
def log_softmax(x: FloatT, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
                out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> FloatT: ...
@overload
def log_softmax(x: Float64Like, axis: Axis = ..., *, temperature: Temperature = ...,
                where: ArrayLike | None = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...
                ) -> NDArray[np.float64]: ...
@overload
def log_softmax(x: float, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
                out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> np.float64: ...
@overload
def log_softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
                out: None = ..., num_threads: Threads = ..., dtype: None = ...
                ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
@overload
def log_softmax(x: NDArray[Any], axis: Axis = ..., *, temperature: Temperature = ...,
                where: ArrayLike | None = ..., out: None = ..., num_threads: Threads = ...,
                dtype: type[FloatT] | np.dtype[FloatT]) -> NDArray[FloatT]: ...
@overload
def log_softmax(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
                out: None = ..., num_threads: Threads = ..., dtype: DTypeLike
                ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
def log_softmax(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0, where: ArrayLike | None = None,
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
    return _apply(LOG_SOFTMAX, x, axis, temperature, out, num_threads) if fast is None else fast


# A 1-d input, or axis=None, reduces to a scalar: where the number of
# dimensions is unknown statically, the result is an array or a scalar.  (The
# ignored overlaps pair different dtypes of the constrained FloatT, which no
# call can match at once.)
@overload
def logsumexp(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
              keepdims: bool = ..., out: ArrayT, num_threads: Threads = ..., dtype: DTypeLike = ...) -> ArrayT: ...
@overload
def logsumexp(x: NDArray[FloatT] | FloatT, axis: None, *, temperature: Temperature = ...,  # type: ignore[overload-overlap]
              where: ArrayLike | None = ..., keepdims: Literal[False] = ..., out: None = ...,
              num_threads: Threads = ..., dtype: None = ...) -> FloatT: ...
@overload
def logsumexp(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperature = ...,  # type: ignore[overload-overlap]
              where: ArrayLike | None = ..., keepdims: Literal[True], out: None = ..., num_threads: Threads = ...,
              dtype: None = ...) -> NDArray[FloatT]: ...
@overload
def logsumexp(x: FloatT, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
              keepdims: bool = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...) -> FloatT: ...
@overload
def logsumexp(x: NDArray[FloatT], axis: Axis = ..., *, temperature: Temperature = ...,
              where: ArrayLike | None = ..., keepdims: bool = ..., out: None = ..., num_threads: Threads = ...,
              dtype: None = ...) -> NDArray[FloatT] | FloatT: ...
@overload
def logsumexp(x: float | Sequence[float], axis: Axis = ..., *, temperature: Temperature = ...,
              where: ArrayLike | None = ..., keepdims: Literal[False] = ..., out: None = ...,
              num_threads: Threads = ..., dtype: None = ...) -> np.float64: ...
@overload
def logsumexp(x: Float64Like, axis: None, *, temperature: Temperature = ..., where: ArrayLike | None = ...,
              keepdims: Literal[False] = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...
              ) -> np.float64: ...
@overload
def logsumexp(x: Float64Like, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
              keepdims: Literal[True], out: None = ..., num_threads: Threads = ..., dtype: None = ...
              ) -> NDArray[np.float64]: ...
@overload
def logsumexp(x: Float64Like | float, axis: Axis = ..., *, temperature: Temperature = ...,
              where: ArrayLike | None = ..., keepdims: bool = ..., out: None = ..., num_threads: Threads = ...,
              dtype: None = ...) -> NDArray[np.float64] | np.float64: ...
@overload
def logsumexp(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
              keepdims: bool = ..., out: None = ..., num_threads: Threads = ..., dtype: None = ...
              ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
@overload
def logsumexp(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
              keepdims: bool = ..., out: None = ..., num_threads: Threads = ...,
              dtype: type[FloatT] | np.dtype[FloatT]) -> NDArray[FloatT] | FloatT: ...
@overload
def logsumexp(x: ArrayLike, axis: Axis = ..., *, temperature: Temperature = ..., where: ArrayLike | None = ...,
              keepdims: bool = ..., out: None = ..., num_threads: Threads = ..., dtype: DTypeLike
              ) -> NDArray[np.floating[Any]] | np.floating[Any]: ...
def logsumexp(x: ArrayLike, axis: Axis = -1, *, temperature: Temperature = 1.0, where: ArrayLike | None = None,
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
        if fast is not None:
            return fast
    return _apply(LOGSUMEXP, x, axis, temperature, out, num_threads, keepdims=bool(keepdims), where=where,
                  dtype=dtype)
