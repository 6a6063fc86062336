"""Fuzzing against the reference: every public function with random shapes
(empty batches and zero-length rows included), layouts (Fortran, transposed,
strided, negative steps, offsets, byte-swapped, 0-d), dtypes and values
(subnormals, +-0, +-inf, NaN, values near the dtype's max), axes, masks,
temperatures (0 and inf where allowed), out= modes and thread counts.

Each family is a strategy drawing a case and a check comparing fastsoftmax
with ``fastsoftmax.reference`` under the contract's bounds (those of the
test support modules, imported below, never copied):

* ``forward``: softmax, log_softmax, logsumexp without a mask (the first fuzzer)
* ``masked``: the same with where= (full-shape or broadcast) and keepdims
* ``backward``: softmax_backward and log_softmax_backward
* ``cross_entropy``, ``kl_div``, ``contrastive_loss``: losses and gradients
* ``sample``: T = 0 draws the reference's one-hot argmax; T > 0 draws an
  index in the support of ``reference.sample_distribution``
* ``special``: fastsoftmax.special's softmax, log_softmax, logsumexp (b=, signs)
* ``dask``: the Dask front end, random chunks

A short derandomized run is part of the test suite; the long run is
``python tools/fuzz.py --minutes 10`` (see that script).
"""
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastsoftmax as fs
from fastsoftmax import reference, special
# The contract's bounds and the error scales of each function: kept in the test support modules.
from util import (FUNCTIONS, assert_close, assert_relative_close, assert_scaled_close, ce_grad_scale,
                  contrastive_grad_scale, kl_scales, layouts, log_softmax_backward_scale, softmax_backward_scale)
from util import weighted_tolerance as weighted_logsumexp_tolerance

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

DTYPES = ["float32", "float64", "float16", ">f4", ">f8", "int32", "int8", "uint16", "bool"]
FLOAT_DTYPES = ["float32", "float64"]
THREADS = [None, 1, 2]


def _values(dtype):
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return st.booleans()
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return st.integers(int(info.min), int(info.max))
    info = np.finfo(dt)
    special = st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, float(info.max), -float(info.max),
                               float(info.max) / 2, float(info.smallest_subnormal), -float(info.smallest_subnormal),
                               float(info.tiny), 1.0])
    width = dt.itemsize * 8
    return st.one_of(st.floats(-30, 30, width=width), st.floats(-30, 30, width=width),
                     st.floats(allow_nan=True, allow_infinity=True, width=width), special)


def _mostly_finite(dtype, huge=4.0):
    """Logits for sampling: mostly moderate, with a few special values, so
    that most rows have a defined softmax; ``max / huge`` is the largest."""
    dt = np.dtype(dtype)
    width = dt.itemsize * 8
    special = [-math.inf, math.inf, math.nan, 0.0, -0.0]
    if huge:
        special.append(float(dt.type(np.finfo(dt).max / huge)))     # exact in the dtype
    return st.one_of(*[st.floats(-20, 20, width=width)] * 6, st.sampled_from(special))


def _loss_logits(dtype):
    """Logits for the losses: huge ones only so far below the dtype's max that
    the losses, sums of x / T over a few rows, stay finite (beyond, the
    exactly rounded sums of the reference and the sums of rounded row losses
    part at the overflow threshold)."""
    return _mostly_finite(dtype, huge=1e6)


def _gradients(dtype):
    """Incoming gradients: as the logits, but none so large that their sum
    overflows the dtype (outside the contract's bounds, which scale with the terms)."""
    return _mostly_finite(dtype, huge=0)


def shapes(min_dims=0, max_dims=3, max_side=5):
    """An array shape, sides of 0 included."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side)


def dtypes_and_shapes(dtypes=FLOAT_DTYPES, **shape_bounds):
    """The (dtype, shape) of a case's arrays."""
    return st.tuples(st.sampled_from(dtypes), shapes(**shape_bounds))


@st.composite
def float_arrays(draw, shape=None, dtype=None, values=_values, min_dims=0, max_dims=3, max_side=5):
    """A float32/float64 array in one of the layouts of util.layouts (C,
    Fortran, transposed view, negative stride, strided, offset, byte-swapped)."""
    dtype = dtype or draw(st.sampled_from(FLOAT_DTYPES))
    if shape is None:
        shape = draw(shapes(min_dims, max_dims, max_side))
    base = draw(hnp.arrays(np.dtype(dtype), shape, elements=values(dtype)))
    return draw(st.sampled_from([x for _, x in layouts(base)]))


@st.composite
def masks(draw, shape):
    """A bool mask of ``shape`` or of a shape that broadcasts to it (sides of
    1, fewer leading dimensions)."""
    mask_shape = tuple(draw(st.sampled_from([1, side])) for side in shape)
    mask_shape = mask_shape[draw(st.integers(0, len(shape))):]
    return draw(hnp.arrays(np.bool_, mask_shape))


def axes(ndim: int):
    """An int axis, None or a tuple of axes (empty included)."""
    if ndim == 0:
        return st.sampled_from([-1, None])
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), max_size=ndim, unique=True).map(tuple))


def temperatures(zero_and_inf=True):
    finite = st.one_of(st.just(1.0), st.floats(1e-3, 1e3), st.floats(min_value=5e-324, max_value=1.7e308))
    return st.one_of(finite, st.sampled_from([0.0, math.inf])) if zero_and_inf else st.one_of(
        st.just(1.0), st.floats(0.05, 20.0))


# ---- forward, without a mask ---------------------------------------------------------

@st.composite
def fuzz_cases(draw):
    dtype, shape = draw(dtypes_and_shapes(DTYPES, max_dims=4, max_side=7))
    base = draw(hnp.arrays(np.dtype(dtype), shape, elements=_values(dtype)))
    x = base
    # a random view: reversed / strided axes or a transpose, over a bigger buffer
    if x.ndim:
        step = draw(st.sampled_from([1, 1, 2, -1, -2]))
        axis = draw(st.integers(0, x.ndim - 1))
        big_shape = list(x.shape)
        big_shape[axis] = x.shape[axis] * abs(step)
        big = np.zeros(big_shape, dtype=x.dtype)
        index = [slice(None)] * x.ndim
        index[axis] = slice(None, None, step) if step > 0 else slice(None, None, step)
        view = big[tuple(index)]
        if view.shape == x.shape:
            view[...] = x
            x = view
        if draw(st.booleans()) and x.ndim >= 2:
            x = np.ascontiguousarray(np.swapaxes(x, 0, -1)).swapaxes(0, -1)
    if x.ndim == 0:
        axis = draw(st.sampled_from([-1, None]))
    else:
        axis = draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1),
                              st.lists(st.integers(0, x.ndim - 1), min_size=0, max_size=x.ndim,
                                       unique=True).map(tuple)))
    t = draw(st.one_of(st.just(1.0), st.just(0.0), st.just(math.inf), st.floats(1e-3, 1e3),
                       st.floats(min_value=5e-324, max_value=1.7e308)))
    name = draw(st.sampled_from(sorted(FUNCTIONS)))
    out_mode = draw(st.sampled_from(["new", "out", "inplace"]))
    threads = draw(st.sampled_from([None, 1, 2]))
    return name, x, axis, t, out_mode, threads


def check(case):
    check_forward(*case)


def check_forward(name, x, axis, t, out_mode, threads, where=None, keepdims=False):
    fast, ref = FUNCTIONS[name]
    extra = {"where": where}
    if name == "logsumexp":
        extra["keepdims"] = keepdims
    x_before = np.array(x, copy=True)
    want = ref(x_before, axis=axis, temperature=t, **extra)
    context = (f"dtype={x.dtype.str} shape={x.shape} strides={x.strides} axis={axis} T={t} out={out_mode} "
               f"where={None if where is None else where.shape} keepdims={keepdims}")
    result_dtype = np.asarray(want).dtype
    if out_mode == "new" or (out_mode == "inplace" and (name == "logsumexp" or x.dtype != result_dtype)):
        got = fast(x, axis=axis, temperature=t, num_threads=threads, **extra)
        np.testing.assert_array_equal(x, x_before, err_msg=f"input modified: {context}")
    elif out_mode == "out":
        out = np.full(np.shape(want), 123, dtype=result_dtype)
        got = fast(x, axis=axis, temperature=t, out=out, num_threads=threads, **extra)
        assert got is out, context
    else:
        got = fast(x, axis=axis, temperature=t, out=x, num_threads=threads, **extra)
        assert got is x, context
    # logsumexp = max + T * log(S) cancels when both terms are huge: the error
    # then scales with T * log(S), not with the result.
    scale = 1.0
    if name == "logsumexp" and 0 < t < math.inf and x.size:
        scale = t * math.log(max(2, x.size))
    if result_dtype == np.float16:
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=3e-3,
                                   atol=1e-7, equal_nan=True, err_msg=context)
    else:
        assert_close(name, got, want, result_dtype, context, scale=scale)


# ---- forward with where= --------------------------------------------------------------

@st.composite
def masked_cases(draw):
    x = draw(float_arrays())
    where = draw(masks(x.shape))
    return dict(name=draw(st.sampled_from(sorted(FUNCTIONS))), x=x, axis=draw(axes(x.ndim)), t=draw(temperatures()),
                out_mode=draw(st.sampled_from(["new", "out", "inplace"])), threads=draw(st.sampled_from(THREADS)),
                where=where, keepdims=draw(st.booleans()))


def check_masked(case):
    check_forward(**case)


# ---- backward -----------------------------------------------------------------------

BACKWARD = {"softmax_backward": ("softmax", softmax_backward_scale, 0.0),
            "log_softmax_backward": ("log_softmax", log_softmax_backward_scale, -math.inf)}


@st.composite
def backward_cases(draw):
    name = draw(st.sampled_from(sorted(BACKWARD)))
    dtype, shape = draw(dtypes_and_shapes())
    x = draw(float_arrays(shape, dtype, _mostly_finite))
    axis = draw(axes(len(shape)))
    t = draw(temperatures(zero_and_inf=False))
    where = draw(st.none() | masks(shape))
    with np.errstate(all="ignore"):
        y = getattr(reference, BACKWARD[name][0])(x, axis, temperature=t, where=where).astype(dtype)
    y = draw(st.sampled_from([v for _, v in layouts(np.asarray(y))]))
    grad = draw(float_arrays(shape, dtype, _gradients))
    return dict(name=name, grad=grad, y=y, axis=axis, t=t, where=where,
                out_mode=draw(st.sampled_from(["new", "out", "inplace"])), threads=draw(st.sampled_from(THREADS)))


def check_backward(case):
    name, grad, y, axis, t, where = (case[k] for k in ("name", "grad", "y", "axis", "t", "where"))
    function = getattr(fs, name)
    dtype = np.result_type(native(grad.dtype), native(y.dtype))
    with np.errstate(all="ignore"):
        want = getattr(reference, name)(grad, y, axis, temperature=t, where=where)
    context = f"{name} dtype={dtype} shape={grad.shape} axis={axis} T={t} where={where is not None} {case['out_mode']}"
    arguments = dict(temperature=t, where=where, num_threads=case["threads"])
    if case["out_mode"] == "new":
        got = function(grad, y, axis, **arguments)
    else:
        # in place: out= is the gradient it reads (a copy: the reference's grad stays as it was)
        inplace = case["out_mode"] == "inplace" and grad.dtype == dtype
        out = grad.copy() if inplace else np.full(grad.shape, 123, dtype)
        got = function(out if inplace else grad, y, axis, out=out, **arguments)
        assert got is out, context
    g, yy = np.asarray(grad, np.float64), np.asarray(y, np.float64)
    if where is not None:       # masked entries take no part: their values make no error
        keep = np.broadcast_to(where, g.shape)
        g, yy = np.where(keep, g, 0.0), np.where(keep, yy, BACKWARD[name][2])
    with np.errstate(all="ignore"):     # the bounds' arithmetic, not fastsoftmax's
        scale = BACKWARD[name][1](g, yy, axis if axis is not None else tuple(range(g.ndim)), t)
        scale = np.where(np.isnan(scale), np.inf, scale)    # inf * 0 in the terms: no finite bound
        assert_scaled_close(got, want, scale, dtype, context)


# ---- losses ---------------------------------------------------------------------------

def split_case(case, *names):
    """The named entries of a drawn case, in order, then the rest as the call's keyword arguments."""
    kwargs = dict(case)
    return (*(kwargs.pop(name) for name in names), kwargs)


def native(dtype):
    """The dtype in the machine's byte order: the dtype results come back in."""
    return np.dtype(np.dtype(dtype).newbyteorder("="))


def dtype_and_context(what, x, kwargs, **details):
    """The dtype results come back in (``x``'s, in native byte order), and the
    case described for failure messages."""
    dtype = native(x.dtype)
    details = [f"{key}={value}" for key, value in details.items()]
    return dtype, " ".join([what, f"dtype={dtype}", *details, str(kwargs)])


def rounded(want, dtype):
    """The reference's float64 results rounded to the result dtype, as
    fastsoftmax rounds them: beyond float32's range that is +-inf."""
    with np.errstate(over="ignore"):
        return np.asarray(want).astype(dtype)


@st.composite
def cross_entropy_cases(draw):
    dtype, shape = draw(dtypes_and_shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    classes = shape[axis]
    batch = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    x = draw(float_arrays(shape, dtype, _loss_logits))
    kwargs = dict(reduction=draw(st.sampled_from(["mean", "sum", "none"])),
                  temperature=draw(temperatures(zero_and_inf=False)))
    if draw(st.booleans()):
        kwargs["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 1.0]) | st.floats(0.0, 1.0))
    if classes and draw(st.booleans()):
        # weights exact in the dtype (fastsoftmax computes with them in it) and not subnormal (their
        # products with the probabilities would lose relative precision, outside the contract)
        weights = st.floats(0.0, 4.0, width=8 * np.dtype(dtype).itemsize, allow_subnormal=False)
        kwargs["weight"] = draw(hnp.arrays(dtype, (classes,), elements=weights))
    if draw(st.booleans()):
        labels = st.integers(0, classes - 1) | st.just(-100) if classes else st.just(-100)
        target = draw(hnp.arrays(np.int64, batch, elements=labels))
    else:
        with np.errstate(all="ignore"):
            target = reference.softmax(draw(hnp.arrays(np.float64, shape, elements=st.floats(-5, 5))), axis)
        target = target.astype(dtype)
    return dict(logits=x, target=target, axis=axis, threads=draw(st.sampled_from(THREADS)), **kwargs)


def check_cross_entropy(case):
    x, target, threads, kwargs = split_case(case, "logits", "target", "threads")
    dtype, context = dtype_and_context("cross_entropy", x, kwargs, shape=x.shape, target=target.dtype)
    loss, grad = fs.cross_entropy(x, target, return_grad=True, num_threads=threads, **kwargs)
    with np.errstate(all="ignore"):     # the oracle's and the bounds' arithmetic, not fastsoftmax's
        want_loss, want_grad = (rounded(w, dtype) for w in reference.cross_entropy(x, target, return_grad=True,
                                                                                   **kwargs))
        assert_relative_close(loss, want_loss, dtype, f"loss {context}")
        if x.shape[kwargs["axis"]] == 0:
            assert grad.shape == x.shape and grad.dtype == dtype, context
            return
        assert_scaled_close(grad, want_grad, ce_grad_scale(x, target, **kwargs), dtype, f"grad {context}")


@st.composite
def kl_div_cases(draw):
    dtype, shape = draw(dtypes_and_shapes(min_dims=1))
    return dict(student=draw(float_arrays(shape, dtype, _loss_logits)),
                teacher=draw(float_arrays(shape, dtype, _loss_logits)),
                axis=draw(st.integers(-len(shape), len(shape) - 1)),
                temperature=draw(temperatures(zero_and_inf=False)),
                reduction=draw(st.sampled_from(["batchmean", "sum", "none"])), threads=draw(st.sampled_from(THREADS)))


def check_kl_div(case):
    s, t, axis, temperature, reduction = (case[k] for k in ("student", "teacher", "axis", "temperature", "reduction"))
    dtype = native(s.dtype)
    context = f"kl_div dtype={dtype} shape={s.shape} axis={axis} T={temperature} {reduction}"
    loss, grad = fs.kl_div(s, t, axis, temperature=temperature, reduction=reduction, return_grad=True,
                           num_threads=case["threads"])
    with np.errstate(all="ignore"):     # the oracle's and the bounds' arithmetic, not fastsoftmax's
        # A teacher probability that rounds to 0 in the dtype is probability 0, as documented
        # (it contributes 0 even where the student is -inf): so for the oracle too.
        t_oracle = np.asarray(t, dtype=np.float64)
        if t_oracle.ndim and t_oracle.size:
            vanishing = (rounded(reference.softmax(t, axis, temperature=temperature), dtype) == 0) & np.isfinite(t_oracle)
            t_oracle = np.where(vanishing, -np.inf, t_oracle).astype(t.dtype)
        else:
            t_oracle = t
        want_loss, want_grad = (rounded(w, dtype) for w in reference.kl_div(
            s, t_oracle, axis, temperature=temperature, reduction=reduction, return_grad=True))
        loss_scale, grad_scale = kl_scales(s, t, axis, temperature, reduction)
        assert_scaled_close(loss, want_loss, np.nan_to_num(loss_scale, nan=0.0), dtype, f"loss {context}")
        assert_scaled_close(grad, want_grad, np.nan_to_num(grad_scale, nan=0.0), dtype, f"grad {context}")


@st.composite
def contrastive_cases(draw):
    n = draw(st.integers(0, 5))
    return dict(similarity=draw(float_arrays((n, n), values=_loss_logits)),
                temperature=draw(st.sampled_from([0.07, 1.0]) | st.floats(0.05, 5.0)),
                symmetric=draw(st.booleans()), reduction=draw(st.sampled_from(["mean", "sum", "none"])),
                threads=draw(st.sampled_from(THREADS)))


def check_contrastive(case):
    sim, threads, kwargs = split_case(case, "similarity", "threads")
    dtype, context = dtype_and_context("contrastive_loss", sim, kwargs, n=sim.shape[0])
    loss, grad = fs.contrastive_loss(sim, return_grad=True, num_threads=threads, **kwargs)
    with np.errstate(all="ignore"):     # the oracle's and the bounds' arithmetic, not fastsoftmax's
        want_loss, want_grad = (rounded(w, dtype) for w in reference.contrastive_loss(sim, return_grad=True,
                                                                                      **kwargs))
        # the column direction's documented term: the column log-sum-exp rounded to the dtype
        column_term = 0.0
        if kwargs["symmetric"] and sim.size:
            finite = np.abs(np.where(np.isfinite(sim), sim, 0).astype(np.float64))
            column_term = (finite.max(axis=0) / kwargs["temperature"] + np.log(sim.shape[0]) + 1) / 2
            column_term = (column_term if kwargs["reduction"] == "none" else
                           column_term.sum() / (sim.shape[0] if kwargs["reduction"] == "mean" else 1))
        assert_scaled_close(loss, want_loss, np.abs(np.asarray(want_loss, np.float64)) + column_term, dtype,
                            f"loss {context}")
        scale = contrastive_grad_scale(sim, kwargs["temperature"], kwargs["symmetric"], kwargs["reduction"])
        assert_scaled_close(grad, want_grad, np.nan_to_num(scale, nan=0.0), dtype, f"grad {context}")


# ---- sample ---------------------------------------------------------------------------

@st.composite
def sample_cases(draw):
    shape = draw(shapes())
    x = draw(float_arrays(shape, values=_mostly_finite))
    axis = draw(st.integers(-max(len(shape), 1), max(len(shape), 1) - 1))
    batch = np.delete(np.array(shape if shape else (1,)), axis % max(len(shape), 1)).tolist()
    one_t = st.sampled_from([0.0, 1.0, math.inf]) | st.floats(0.05, 20.0)
    t = draw(one_t | hnp.arrays(np.float64, tuple(batch), elements=one_t))
    filters = {}
    if draw(st.booleans()):
        filters["top_k"] = draw(st.integers(1, 6))
    if draw(st.booleans()):
        filters["top_p"] = draw(st.sampled_from([1.0, 0.5]) | st.floats(0.01, 1.0))
    if draw(st.booleans()):
        filters["min_p"] = draw(st.sampled_from([0.0, 0.2]) | st.floats(0.0, 1.0))
    return dict(logits=x, axis=axis, temperature=t, where=draw(st.none() | masks(shape)),
                threads=draw(st.sampled_from(THREADS)), seed=draw(st.integers(0, 2**32)), **filters)


def check_sample(case):
    x, axis, threads, seed, kwargs = split_case(case, "logits", "axis", "threads", "seed")
    context = f"sample dtype={x.dtype} shape={x.shape} axis={axis} {kwargs}"
    batch = np.delete(np.array(x.shape if x.ndim else (1,)), axis % max(x.ndim, 1)).tolist()
    if math.prod(batch) == 0:     # no rows: nothing drawn, nothing to check
        got = fs.sample(x, axis, rng=seed, num_threads=threads, **kwargs)
        assert got.shape == tuple(batch) and got.dtype == np.int64, context
        return
    try:
        probs = reference.sample_distribution(x, axis, **kwargs)
    except ValueError:
        with pytest.raises(ValueError, match="sample"):
            fs.sample(x, axis, rng=seed, num_threads=threads, **kwargs)
        return
    got = fs.sample(x, axis, rng=seed, num_threads=threads, **kwargs)
    assert np.shape(got) == tuple(batch) and np.asarray(got).dtype == np.int64, context
    # The kept set may differ from the exact one for probabilities within rounding of a filter's
    # boundary (documented): the support is that of the filters widened by a rounding margin.
    margin = SAMPLE_BOUNDARY_MARGIN[native(x.dtype).name]
    widened = dict(kwargs)
    if widened.get("top_p") is not None:
        widened["top_p"] = min(1.0, widened["top_p"] * (1 + margin))
    if widened.get("min_p") is not None:
        widened["min_p"] = widened["min_p"] * (1 - margin)
    support = reference.sample_distribution(x, axis, **widened)

    def along_last(distribution):
        return np.moveaxis(distribution, axis, -1) if x.ndim else distribution.reshape(1)

    drawn = np.asarray(got)[..., None]
    drawn_probability = np.take_along_axis(along_last(support), drawn, axis=-1)[..., 0]
    assert np.all(drawn_probability > 0), f"{context}: drew an index outside the support"
    # T = 0: the distribution is one-hot on the first maximum, and so is the draw
    greedy = np.broadcast_to(np.asarray(kwargs["temperature"]), drawn_probability.shape) == 0
    np.testing.assert_array_equal(drawn[..., 0][greedy], np.argmax(along_last(probs), axis=-1)[greedy],
                                  err_msg=f"{context}: not the first maximum")


# relative rounding of the probabilities fastsoftmax.sample filters on, by dtype it computes in
SAMPLE_BOUNDARY_MARGIN = {"float32": 1e-4, "float64": 1e-10}


# ---- fastsoftmax.special ------------------------------------------------------------

@st.composite
def special_cases(draw):
    name = draw(st.sampled_from(["softmax", "log_softmax", "logsumexp"]))
    a = draw(float_arrays())
    case = dict(name=name, a=a, axis=draw(axes(a.ndim)))
    if name == "logsumexp":
        b_shape = draw(hnp.broadcastable_shapes(a.shape, min_dims=0, max_dims=a.ndim, min_side=0))
        # weights exact in a's dtype (any NumPy: older ones refuse a value the dtype rounds)
        width = 8 * a.dtype.itemsize if a.dtype.kind == "f" else 64
        weights = st.sampled_from([0.0, 1.0, -1.0]) | st.floats(-3, 3, width=width, allow_subnormal=False)
        case["b"] = draw(st.none() | hnp.arrays(a.dtype.newbyteorder("="), b_shape, elements=weights))
        case.update(keepdims=draw(st.booleans()), return_sign=draw(st.booleans()))
    return case


def check_special(case):
    name, a, kwargs = split_case(case, "name", "a")
    dtype, context = dtype_and_context(f"special.{name}", a, kwargs, shape=a.shape)
    if name != "logsumexp":
        got = getattr(special, name)(a, kwargs["axis"])
        assert_close(name, got, getattr(reference, name)(a, kwargs["axis"]), dtype, context)
        return
    got = special.logsumexp(a, **kwargs)
    want = reference.special_logsumexp(a, **kwargs)
    value, want_value = (got[0], want[0]) if kwargs["return_sign"] else (got, want)
    assert np.shape(value) == np.shape(want_value) and np.asarray(value).dtype == dtype, context
    if 0 in np.broadcast_shapes(a.shape, np.shape(kwargs["b"])):
        # SciPy's empty sum: -inf with the sign -1 of -inf (documented)
        assert np.all(np.asarray(value) == -np.inf), context
        assert not kwargs["return_sign"] or np.all(np.asarray(got[1]) == -1), context
        return
    if kwargs["return_sign"]:
        np.testing.assert_array_equal(got[1], want[1], err_msg=f"sign {context}")
    b = np.ones((), dtype) if kwargs["b"] is None else kwargs["b"]
    with np.errstate(all="ignore"):
        tolerance = weighted_logsumexp_tolerance(np.asarray(a), b, kwargs["axis"], dtype)
    got64, want64 = np.asarray(value, np.float64), np.asarray(want_value, np.float64)
    if kwargs["keepdims"] and np.ndim(tolerance):
        tolerance = np.reshape(tolerance, got64.shape)
    np.testing.assert_array_equal(np.isfinite(got64), np.isfinite(want64), err_msg=context)
    finite = np.isfinite(want64)
    np.testing.assert_array_equal(got64[~finite], want64[~finite], err_msg=context)
    allowed = np.broadcast_to(tolerance, got64.shape)[finite] * np.maximum(1.0, np.abs(want64[finite]))
    assert np.all(np.abs(got64[finite] - want64[finite]) <= allowed), context


# ---- Dask ---------------------------------------------------------------------------

@st.composite
def dask_cases(draw):
    x = draw(float_arrays(min_dims=1))
    chunks = tuple(draw(st.integers(1, max(side, 1))) for side in x.shape)
    return dict(name=draw(st.sampled_from(sorted(FUNCTIONS))), x=x, chunks=chunks, axis=draw(axes(x.ndim)),
                t=draw(temperatures()), where=draw(st.none() | masks(x.shape)), threads=draw(st.sampled_from(THREADS)))


def check_dask(case):
    import dask.array as da

    name, x, axis, t, where = (case[k] for k in ("name", "x", "axis", "t", "where"))
    fast, ref = FUNCTIONS[name]
    lazy = fast(da.from_array(np.ascontiguousarray(x), chunks=case["chunks"]), axis, temperature=t, where=where,
                num_threads=case["threads"])
    want = ref(x, axis, temperature=t, where=where)
    scale = t * math.log(max(2, x.size)) if name == "logsumexp" and 0 < t < math.inf and x.size else 1.0
    got = lazy.compute()
    assert_close(name, got if np.ndim(want) else np.asarray(got)[()], want, np.asarray(want).dtype,
                 f"dask {name} shape={x.shape} chunks={case['chunks']} axis={axis} T={t}", scale=scale)


# ---- the families, and the short run in the test suite ------------------------------

# family name -> (strategy, check, examples in the short run)
FAMILIES = {
    "forward": (fuzz_cases, check, int(os.environ.get("FASTSOFTMAX_FUZZ_EXAMPLES", "300"))),
    "masked": (masked_cases, check_masked, 150),
    "backward": (backward_cases, check_backward, 100),
    "cross_entropy": (cross_entropy_cases, check_cross_entropy, 80),
    "kl_div": (kl_div_cases, check_kl_div, 60),
    "contrastive_loss": (contrastive_cases, check_contrastive, 40),
    "sample": (sample_cases, check_sample, 100),
    "special": (special_cases, check_special, 120),
    "dask": (dask_cases, check_dask, 30),
}

SHORT_RUN = dict(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])


@settings(max_examples=FAMILIES["forward"][2], **SHORT_RUN)
@given(case=fuzz_cases())
def test_fuzz_against_reference(case):
    check(case)


# Cases the fuzzer found, kept so that every run checks them: (family, case)
_INF = math.inf
_F32 = np.float32
FOUND = [
    # "mean" when the rows' classes all weigh 0: ZeroDivisionError (reference and PyTorch: NaN)
    ("cross_entropy", dict(logits=np.array([0.0], _F32), target=np.array(0), axis=0, threads=None,
                           reduction="mean", temperature=1.0, weight=np.array([0.0], _F32))),
    # a float32 loss beyond float32's range: inf, without a RuntimeWarning (overflow in the cast)
    ("cross_entropy", dict(logits=np.array([8.5070587e37, 0.0, 0.0], _F32), target=np.full(3, 1 / 3, _F32),
                           axis=0, threads=None, reduction="mean", temperature=0.125)),
    # a student row of only -inf has no softmax: NaN (the reference), not +inf
    ("kl_div", dict(student=np.array([-_INF], _F32), teacher=np.array([0.0], _F32), axis=0, temperature=1.0,
                    reduction="batchmean", threads=None)),
    # a column holding +inf has no softmax: its loss, and the pair's, is NaN, not +inf
    ("contrastive_loss", dict(similarity=np.array([[0.0, _INF], [0.0, 0.0]], _F32), temperature=0.07,
                              symmetric=True, reduction="none", threads=None)),
    # column losses of large float32 similarities: within the documented term of the column log-sum-exp
    ("contrastive_loss", dict(similarity=np.full((2, 2), 100.0, _F32), temperature=0.07, symmetric=True,
                              reduction="none", threads=None)),
    # only -inf: NaN without a RuntimeWarning (-inf - -inf)
    ("contrastive_loss", dict(similarity=np.array([[-_INF]], _F32), temperature=0.07, symmetric=True,
                              reduction="mean", threads=None)),
    # an empty batch: SIGFPE (0 threads for 0 rows)
    ("backward", dict(name="softmax_backward", grad=np.zeros((0, 3)), y=np.zeros((0, 3)), axis=-1, t=1.0,
                      where=None, out_mode="new", threads=None)),
    # zero rows and a mask broadcast along them: SIGFPE
    ("masked", dict(name="softmax", x=np.zeros((0, 5, 2), _F32), axis=-1, t=1.0, out_mode="new", threads=None,
                    where=np.ones((1, 5, 2), bool), keepdims=False)),
    # a zero-size mask block (zero strides), through Dask: ValueError from the selection
    ("dask", dict(name="log_softmax", x=np.zeros((0, 2), _F32), chunks=(1, 2), axis=1, t=1.0,
                  where=np.array([[False]]), threads=None)),
]


@pytest.mark.parametrize("family, case", FOUND, ids=[f"{family}-{i}" for i, (family, _) in enumerate(FOUND)])
def test_fuzz_found(family, case):
    FAMILIES[family][1](case)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "forward"])
def test_fuzz_family(family):
    strategy, check_case, examples = FAMILIES[family]

    @settings(max_examples=examples, **SHORT_RUN)
    @given(case=strategy())
    def run(case):
        check_case(case)

    run()
