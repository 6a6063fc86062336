"""Every check of a user-facing argument, in one place.

The front ends (:mod:`fastsoftmax._api`, ``_training``, ``_sample``,
``special``) call these before they lay out the rows; each check raises with
the function's name, the argument, what was given and what is accepted
(TypeError for a wrong type, ValueError for a wrong value) and returns the
argument in the form the compiled loops take.  The compiled fast path
(:func:`fastsoftmax._rows.try_fast`) only declines calls it cannot take, so
every error is raised from here.
"""
from __future__ import annotations

import math
import numbers
import operator
import sys

import numpy as np
from numpy.exceptions import AxisError

from . import _rows

F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
_SUPPORTED_DTYPES = "float16, bfloat16 (ml_dtypes), float32, float64, bool and integer dtypes"
_RESULT_DTYPES = "float16, bfloat16 (ml_dtypes), float32 or float64"


# ---- numbers ------------------------------------------------------------------

def is_bool(value) -> bool:
    """A Python or NumPy bool (``True`` is also an Integral to Python)."""
    return isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """A real number, not a bool."""
    return isinstance(value, numbers.Real) and not is_bool(value)


def is_integer(value) -> bool:
    """An integer, not a bool."""
    return isinstance(value, numbers.Integral) and not is_bool(value)


def scalar(value):
    """A 0-d array as the scalar it holds; anything else unchanged."""
    return value[()] if isinstance(value, np.ndarray) and value.ndim == 0 else value


# ---- dtypes -------------------------------------------------------------------

def dtypes(dtype: np.dtype, name: str) -> tuple[np.dtype, np.dtype]:
    """(dtype the kernels compute in, dtype of the result) for an input dtype."""
    if dtype == F32 or dtype == F64:
        return dtype, dtype
    kind = dtype.kind
    if kind == "f":
        if dtype.itemsize == 4:
            return F32, F32          # non-native byte order
        if dtype.itemsize == 8:
            return F64, F64
        if dtype.itemsize == 2:
            return F32, F16
    elif kind in "biu":
        return F64, F64
    elif is_bfloat16(dtype):
        return F32, dtype
    raise TypeError(
        f"{name}(): unsupported input dtype {dtype}; supported are {_SUPPORTED_DTYPES}"
    )


def is_bfloat16(dtype: np.dtype) -> bool:
    """ml_dtypes' bfloat16, recognised without importing ml_dtypes."""
    return (dtype.kind == "V" and dtype.itemsize == 2 and dtype.name == "bfloat16"
            and dtype.type.__module__.split(".")[0] == "ml_dtypes")


def requested_dtypes(requested, compute_dt: np.dtype, name: str) -> tuple[np.dtype, np.dtype]:
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
    if dt is None or not ((dt.kind == "f" and dt.itemsize in (2, 4, 8)) or is_bfloat16(dt)):
        raise TypeError(f"{name}(): dtype must be None or {_RESULT_DTYPES}, got {requested!r:.60}")
    return (F64 if dt.itemsize == 8 else compute_dt), dt


# ---- temperature and threads --------------------------------------------------

def temperature(value, name: str) -> float:
    """``T >= 0`` (0 and inf allowed) as a float."""
    value = scalar(value)
    if not is_real(value):
        raise TypeError(
            f"{name}(): temperature must be a real scalar, got {type(value).__name__} "
            f"{value!r:.60}"
        )
    try:
        t = float(value)
    except OverflowError:           # a Python int beyond the float range
        t = math.inf if value > 0 else -math.inf
    if not t >= 0.0:
        raise ValueError(
            f"{name}(): temperature must be >= 0 (0 and inf allowed), got {value!r}"
        )
    return t


def training_temperature(value, name: str) -> float:
    """A temperature with a gradient: finite and > 0."""
    t = temperature(value, name)
    if not 0.0 < t < math.inf:
        raise ValueError(f"{name}(): temperature must be finite and > 0 here, got {value!r}")
    return t


def thread_count(num_threads, name: str) -> int:
    """The requested thread count (an int >= 1); the caller caps it."""
    if not is_integer(num_threads):
        raise TypeError(
            f"{name}(): num_threads must be None or an int >= 1, "
            f"got {type(num_threads).__name__} {num_threads!r:.60}"
        )
    n = int(num_threads)
    if n < 1:
        raise ValueError(f"{name}(): num_threads must be None or an int >= 1, got {n}")
    return n


# ---- axes ---------------------------------------------------------------------

def axes(axis, ndim: int, name: str) -> tuple[int, ...]:
    """Sorted tuple of the reduced axes (non-negative)."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    found = []
    for item in items:
        if is_bool(item):
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
        found.append(a % ndim)
    if len(set(found)) != len(found):
        raise ValueError(f"{name}(): repeated axis in {axis!r}")
    return tuple(sorted(found))


def one_axis(axis, ndim: int, name: str) -> int:
    """One int axis (the axis of classes or tokens), made non-negative; a 0-d
    input counts as one entry along axis 0."""
    if not is_integer(axis):
        raise TypeError(f"{name}(): axis must be an int, got {type(axis).__name__} {axis!r:.60}")
    return axes(int(axis), max(ndim, 1), name)[0]


def class_axis(axis, ndim: int, name: str) -> int:
    """The class axis of logits, which need one."""
    if ndim == 0:
        raise ValueError(f"{name}(): the logits need at least one dimension (the classes)")
    return one_axis(axis, ndim, name)


# ---- arrays -------------------------------------------------------------------

def logits(x, name: str, what: str, other=None):
    """(x as an ndarray, dtype the kernels compute in, result dtype); the
    result dtype also covers ``other`` (a second input of the same job)."""
    if x is None:
        raise TypeError(f"{name}(): {what} is None, not an array")
    in_memory(x, what, name)
    x = x if type(x) is np.ndarray else np.asarray(x)
    dtype = x.dtype if other is None else np.result_type(x.dtype, np.asarray(other).dtype)
    compute_dt, result_dt = dtypes(dtype, name)
    return x, compute_dt, result_dt


def where(mask_like, shape: tuple, name: str, target: str = "") -> np.ndarray:
    """The where= mask as a bool array with x's number of dimensions (a view:
    broadcast dimensions stay length 1, nothing is expanded).  ``target``
    names the input in the shape error the way sample() words it."""
    in_memory(mask_like, "where", name)
    mask = mask_like if type(mask_like) is np.ndarray else np.asarray(mask_like)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name}(): where must be a boolean array_like, got dtype {mask.dtype}")
    if mask.ndim > len(shape) or any(m not in (1, s) for m, s in zip(mask.shape[::-1], shape[::-1])):
        if target:
            raise ValueError(f"{name}(): where of shape {mask.shape} does not broadcast to the {target} "
                             f"shape {shape}")
        raise ValueError(f"{name}(): where has shape {mask.shape}, which does not broadcast to "
                         f"the input's shape {shape}")
    return mask.reshape((1,) * (len(shape) - mask.ndim) + mask.shape)


# ---- out= -----------------------------------------------------------------------

def out(array, shape: tuple, dtype: np.dtype, name: str) -> None:
    """``out=``: an ndarray of exactly the result's shape and dtype, writable."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name}(): out must be a numpy.ndarray, got {type(array).__name__}")
    if array.shape != shape:
        raise ValueError(f"{name}(): out has shape {array.shape}, the result has shape {shape}")
    if array.dtype != dtype:
        raise TypeError(
            f"{name}(): out has dtype {array.dtype}, the result has dtype {dtype}"
        )
    if not array.flags.writeable:
        raise ValueError(f"{name}(): out is read-only")


def out_rows(array, perm, rows_shape: tuple, result_dt: np.dtype, compute_dt: np.dtype, x2: np.ndarray,
             others: tuple = ()):
    """A checked ``out`` as the C-contiguous rows the kernels write in place,
    or None when they must write a buffer that the caller copies into it.

    In place (``out`` is ``x2``: same start, same layout) is exact: each entry
    of a row is read before it is written.  Any other overlap with ``x2``, and
    any overlap with ``others`` (inputs read after the row is written), goes
    through the buffer."""
    if result_dt != compute_dt:
        return None
    target = array if perm is None else array.transpose(perm)
    if not (target.flags.c_contiguous and target.flags.aligned):
        return None
    view = target.reshape(rows_shape)
    if any(_rows.overlap(view, other) != 0 for other in others):
        return None
    relation = _rows.overlap(view, x2)
    if relation == 0 or (relation == 1 and view.shape == x2.shape):
        return view
    return None


# ---- losses ---------------------------------------------------------------------

def fraction(value, what: str, name: str) -> float:
    """A real number in [0, 1] (label smoothing)."""
    if not is_real(value):
        raise TypeError(f"{name}(): {what} must be a real number, got {type(value).__name__}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}(): {what} must be in [0, 1], got {value!r}")
    return float(value)


def class_weights(weight, classes: int, name: str) -> np.ndarray:
    """cross_entropy's ``weight``: a real array of one weight per class."""
    in_memory(weight, "weight", name)
    w = np.asarray(weight)
    if w.dtype.kind not in "fiub":
        raise TypeError(f"{name}(): weight must be a real array, got dtype {w.dtype}")
    if w.shape != (classes,):
        raise ValueError(f"{name}(): weight has shape {w.shape}, the logits have {classes} classes")
    return w


def reduction(value, accepted: tuple, name: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name}(): reduction must be a str, got {type(value).__name__}")
    if value not in accepted:
        raise ValueError(f"{name}(): reduction must be one of {', '.join(map(repr, accepted))}, "
                         f"got {value!r}")


def ignore_index(value, name: str) -> None:
    if not is_integer(value):
        raise TypeError(f"{name}(): ignore_index must be an int, got {type(value).__name__}")


def flag(value, what: str, name: str) -> None:
    """A bool argument (``symmetric``): a Python or NumPy bool, nothing else."""
    if not is_bool(value):
        raise TypeError(f"{name}(): {what} must be a bool, got {type(value).__name__}")


# ---- sampling -------------------------------------------------------------------

def temperatures(value, batch_shape: tuple, name: str) -> np.ndarray:
    """float64 temperatures: one value for every row, or one per row."""
    in_memory(value, "temperature", name)
    if np.ndim(value) == 0:
        return np.array([temperature(value, name)])
    t = np.asarray(value)
    if t.dtype.kind not in "fiu":
        raise TypeError(f"{name}(): temperature must be a real scalar or an array of real numbers, "
                        f"got an array of dtype {t.dtype}")
    with np.errstate(over="ignore"):
        t = t.astype(np.float64)
    if not (t >= 0.0).all():
        raise ValueError(f"{name}(): temperature must be >= 0 (0 and inf allowed) in every row; "
                         f"got {float(t[~(t >= 0.0)].flat[0])!r}")
    try:
        t = np.broadcast_to(t, batch_shape)
    except ValueError:
        raise ValueError(f"{name}(): temperature of shape {t.shape} does not broadcast to the batch shape "
                         f"{batch_shape} (the logits' shape without axis)") from None
    return np.ascontiguousarray(t).reshape(-1)


# ---- SciPy's signatures -----------------------------------------------------------

def not_complex(value, argument: str, name: str) -> np.ndarray:
    """``value`` as an ndarray; complex input is out of scope of fastsoftmax.special."""
    in_memory(value, argument, f"fastsoftmax.special.{name}")
    array = value if type(value) is np.ndarray else np.asarray(value)
    if array.dtype.kind == "c":
        raise TypeError(
            f"fastsoftmax.special.{name}(): complex input is out of scope ({argument} has dtype "
            f"{array.dtype}); use scipy.special.{name} for complex {argument}"
        )
    return array


# ---- lazy arrays ------------------------------------------------------------------

def is_lazy(value) -> bool:
    """A Dask collection (``dask.array.Array`` and the like), told by its
    type's module, so without importing Dask."""
    return type(value).__module__.partition(".")[0] == "dask"


def in_memory(value, argument: str, name: str) -> None:
    """TypeError for a Dask array given to a function that computes in memory:
    ``np.asarray`` would compute it silently (the whole array, at once)."""
    if is_lazy(value):
        raise TypeError(
            f"{name}(): {argument} is a Dask array ({type(value).__module__}.{type(value).__qualname__}); "
            f"{name} computes in memory and does not compute a Dask array silently. Use fastsoftmax.dask "
            f"(softmax, log_softmax and logsumexp stay lazy), or pass {argument}.compute() to compute it "
            "yourself")


# ---- one temperature per row --------------------------------------------------------

def row_temperatures(value, batch_shape: tuple, name: str, training: bool = False):
    """``temperature`` as the compiled loops take it: a float where every row
    has the same one (a scalar, or an array of equal entries), else a
    C-contiguous float64 array of one per row (``value`` broadcast to
    ``batch_shape``, the input's shape without the reduced axes, in C order).
    ``training``: the temperatures must be finite and > 0 (they have a
    gradient)."""
    in_memory(value, "temperature", name)
    if np.ndim(value) == 0:
        return training_temperature(value, name) if training else temperature(value, name)
    t = temperatures(value, batch_shape, name)
    usable = np.isfinite(t) & (t > 0.0)
    if training and not usable.all():
        bad = float(t[~usable][0])
        raise ValueError(f"{name}(): temperature must be finite and > 0 here, in every row; got {bad!r}")
    if t.size == 0:
        return 1.0
    return float(t[0]) if (t == t[0]).all() else t


# ---- sampling: per-row settings, penalties, log-probabilities, generators (issue 18) ----

def row_setting(value, what: str, accepted: str, ok, batch_shape: tuple, name: str,
                integer: bool = False) -> np.ndarray:
    """A per-row setting of sample() / verify_draft(): a number (an int when
    ``integer``) or an array of them that broadcasts to ``batch_shape``, each
    in ``accepted`` (``ok`` tells, elementwise).  Returns a C-contiguous
    float64 (int64) array of one value for every row, or one per row."""
    kind = "an int" if integer else "a real number"
    if np.ndim(value) == 0:
        v = scalar(value)
        if not (is_integer(v) if integer else is_real(v)):
            raise TypeError(f"{name}(): {what} must be None, {kind} {accepted} or an array of them, "
                            f"got {type(v).__name__} {v!r:.60}")
        if integer:
            setting = np.array([min(int(v), sys.maxsize)], dtype=np.int64) if v >= 0 else np.array([-1])
        else:
            try:
                setting = np.array([float(v)])
            except OverflowError:           # a Python int beyond the float range
                setting = np.array([math.inf if v > 0 else -math.inf])
        if not ok(setting)[0]:
            raise ValueError(f"{name}(): {what} must be None, {kind} {accepted} or an array of them, got {v!r}")
        return setting
    array = np.asarray(value)
    if array.dtype.kind not in ("iu" if integer else "fiu"):
        raise TypeError(f"{name}(): {what} must be None, {kind} {accepted} or an array of them, "
                        f"got an array of dtype {array.dtype}")
    if integer:
        array = np.minimum(array, sys.maxsize).astype(np.int64) if array.dtype.kind == "u" else array
        array = array.astype(np.int64)
    else:
        with np.errstate(over="ignore"):
            array = array.astype(np.float64)
    try:
        array = np.broadcast_to(array, batch_shape)
    except ValueError:
        raise ValueError(f"{name}(): {what} of shape {array.shape} does not broadcast to the batch shape "
                         f"{batch_shape} (the logits' shape without axis)") from None
    setting = np.ascontiguousarray(array).reshape(-1)
    bad = ~ok(setting)
    if bad.any():
        raise ValueError(f"{name}(): {what} must be {accepted} in every row, got {setting[bad][0]!r}")
    return setting


def history(value, batch_shape: tuple, n: int, name: str) -> np.ndarray:
    """sample()'s history: integer ids (-1: padding) of the batch shape plus
    a trailing axis (broadcast over the batch shape: an (L,) history is every
    row's); C-contiguous int64 (rows, L).  Ids outside [-1, n) are reported
    by the kernels, per row."""
    h = value if type(value) is np.ndarray else np.asarray(value)
    if h.dtype.kind not in "iu":
        raise TypeError(f"{name}(): history must be an array of integer token ids, got dtype {h.dtype}")
    if not 1 <= h.ndim <= len(batch_shape) + 1:
        raise ValueError(f"{name}(): history must have the batch shape {batch_shape} plus one axis of token "
                         f"ids, got shape {h.shape}")
    try:
        h = np.broadcast_to(h, batch_shape + h.shape[-1:])
    except ValueError:
        raise ValueError(f"{name}(): history of shape {h.shape} does not broadcast to the batch shape "
                         f"{batch_shape} plus one axis of token ids") from None
    if h.dtype == np.uint64 and h.size and h.max() > sys.maxsize:
        raise ValueError(f"{name}(): history holds token id {int(h.max())}, outside [-1, {n})")
    return np.ascontiguousarray(h, dtype=np.int64).reshape(math.prod(batch_shape), h.shape[-1])


def logit_bias(value, shape: tuple, dtype: np.dtype, name: str) -> np.ndarray:
    """sample()'s logit_bias: real numbers broadcastable to the logits, in
    the kernels' dtype, with the logits' number of dimensions (a view where
    it can be: broadcast dimensions stay length 1, nothing is expanded)."""
    bias = value if type(value) is np.ndarray else np.asarray(value)
    if bias.dtype.kind not in "fiu":
        raise TypeError(f"{name}(): logit_bias must be an array of real numbers, got dtype {bias.dtype}")
    if bias.ndim > len(shape) or any(b not in (1, s) for b, s in zip(bias.shape[::-1], shape[::-1])):
        raise ValueError(f"{name}(): logit_bias of shape {bias.shape} does not broadcast to the logits' "
                         f"shape {shape}")
    with np.errstate(over="ignore"):
        bias = bias.astype(dtype, copy=False)
    return bias.reshape((1,) * (len(shape) - bias.ndim) + bias.shape)


LOGPROBS = ("raw", "processed")


def logprobs(value, top: object, name: str) -> tuple[str | None, int]:
    """sample()'s logprobs (None, "raw" or "processed") and top_logprobs (an
    int >= 0, only with logprobs)."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name}(): logprobs must be None, 'raw' or 'processed', got {type(value).__name__}")
    if value is not None and value not in LOGPROBS:
        raise ValueError(f"{name}(): logprobs must be None, 'raw' or 'processed', got {value!r}")
    if not is_integer(top):
        raise TypeError(f"{name}(): top_logprobs must be an int >= 0, got {type(top).__name__} {top!r:.60}")
    if top < 0:
        raise ValueError(f"{name}(): top_logprobs must be an int >= 0, got {top}")
    if top > 0 and value is None:
        raise ValueError(f"{name}(): top_logprobs={top} needs logprobs='raw' or 'processed'")
    return value, int(top)


def sample_rng(value, rows: int, name: str):
    """sample()'s and verify_draft()'s rng: None, an int seed >= 0, a
    numpy Generator, or a list or tuple of ``rows`` Generators (one per
    row, C order of the batch shape), returned as a list."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    if is_integer(value):
        if value < 0:
            raise ValueError(f"{name}(): an int rng is a seed and must be >= 0, got {value}")
        return value
    if isinstance(value, (list, tuple)):
        generators = list(value)
        if len(generators) != rows:
            raise ValueError(f"{name}(): rng holds {len(generators)} generators, one per row needs {rows}")
        for i, g in enumerate(generators):
            if not isinstance(g, np.random.Generator):
                raise TypeError(f"{name}(): rng[{i}] must be a numpy.random.Generator, got {type(g).__name__}")
        return generators
    raise TypeError(f"{name}(): rng must be None, an int seed, a numpy.random.Generator or a sequence of "
                    f"Generators (one per row), got {type(value).__name__}")


# ---- linear_cross_entropy (fastsoftmax._linear) and fastsoftmax.torch -------------

def class_indices(target, shape: tuple, classes: int, ignore_index: int, name: str) -> np.ndarray:
    """Class-index targets of ``shape`` as a C-contiguous int64 vector: each in
    ``[0, classes)`` or equal to ``ignore_index`` (ValueError naming the first
    other value and its position)."""
    target_array = target if type(target) is np.ndarray else np.asarray(target)
    if target_array.dtype.kind not in "iu":
        raise TypeError(f"{name}(): target must hold integer class indices, got dtype {target_array.dtype}")
    if target_array.shape != shape:
        raise ValueError(f"{name}(): target has shape {target_array.shape}; it must have shape {shape}")
    indices = np.ascontiguousarray(target_array.reshape(-1), dtype=np.int64)
    bad = (indices != ignore_index) & ((indices < 0) | (indices >= classes))
    if bad.any():
        first = int(np.argmax(bad))
        position = tuple(int(i) for i in np.unravel_index(first, shape)) if shape else ()
        raise ValueError(f"{name}(): target value {int(indices[first])} at position {position} is "
                         f"not a class index in [0, {classes}) nor ignore_index ({ignore_index})")
    return indices


def nonnegative(value, what: str, name: str) -> float:
    """A finite real number >= 0 (z_loss)."""
    value = scalar(value)
    if not is_real(value):
        raise TypeError(f"{name}(): {what} must be a real number, got {type(value).__name__} {value!r:.60}")
    v = float(value)
    if not 0.0 <= v < math.inf:
        raise ValueError(f"{name}(): {what} must be finite and >= 0, got {value!r}")
    return v


def optional_positive(value, what: str, name: str):
    """None, or a finite real number > 0 (softcap) as a float."""
    if value is None:
        return None
    value = scalar(value)
    if not is_real(value):
        raise TypeError(f"{name}(): {what} must be None or a real number > 0, "
                        f"got {type(value).__name__} {value!r:.60}")
    v = float(value)
    if not 0.0 < v < math.inf:
        raise ValueError(f"{name}(): {what} must be None or finite and > 0, got {value!r}")
    return v


def optional_count(value, what: str, name: str):
    """None, or an int >= 1 (chunk_size) as an int."""
    if value is None:
        return None
    if not is_integer(value):
        raise TypeError(f"{name}(): {what} must be None or an int >= 1, got {type(value).__name__} {value!r:.60}")
    if value < 1:
        raise ValueError(f"{name}(): {what} must be None or an int >= 1, got {value}")
    return int(value)
