"""Every public function on empty input: zero rows, zero-length rows, both.

Issue 16 found two bugs on empty batches (the first two tests).  The rest runs
every public function over the shapes (0, 3), (0, 5, 2) (zero rows), (3, 0)
(zero-length rows), (5, 0, 0) and (2, 0, 3) (both, depending on the axis),
along every axis, axis tuples and None where the function takes them, with no
mask, a full-shape where= mask and a broadcast one, with a new result, out=
and in place, in float32 and float64, on 1 and 2 threads.

What the results must be, by the conventions of NumPy, SciPy and PyTorch:

* softmax, log_softmax and their backward functions of an empty array: an
  empty array of the same shape and the result dtype.
* logsumexp over a zero-length axis: -inf, the log of an empty sum (as
  ``numpy.log(numpy.sum(...))``, ``scipy.special.logsumexp`` and
  ``torch.logsumexp`` give); over zero rows: an empty array.  SciPy's
  ``return_sign`` gives an empty sum the sign -1 (the sign of -inf).
* The losses: "sum" of no rows is 0 and "none" an empty array, as PyTorch.
  "mean" (and kl_div's "batchmean") with nothing to average is 0.0, as the
  functions document for all-ignored rows and as ``fastsoftmax.reference``
  gives; PyTorch gives NaN there.  A row of zero classes has no softmax: its
  loss is NaN, as the reference gives, unless the row is ignored (PyTorch:
  an empty sum, -0.0, with reduction "none"; NaN for "mean").
* sample of zero rows: an empty int64 array; a zero-length row in a non-empty
  batch has nothing to draw: ValueError, as documented.

Every result is also compared with ``fastsoftmax.reference``.
"""
from __future__ import annotations

import itertools
import math

import dask.array as da
import numpy as np
import pytest
import scipy.special

try:   # PyTorch, a second oracle, is in its own extra (fastsoftmax[torch]): without it those comparisons skip
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

import fastsoftmax as fs
from fastsoftmax import reference, special

DTYPES = [np.float32, np.float64]
THREADS = (1, 2)
SHAPES = [(0, 3), (0, 5, 2), (3, 0), (5, 0, 0), (2, 0, 3)]


def axis_choices(ndim: int) -> list:
    """Every single axis (the last one as -1), None, and every pair of axes."""
    return list(range(ndim - 1)) + [-1, None] + list(itertools.combinations(range(ndim), 2))


# (shape, axis) for the functions that take any axis, a tuple of axes or None
CASES = [(shape, axis) for shape in SHAPES for axis in axis_choices(len(shape))]
# (shape, axis) for the functions of one int axis (losses, sample)
ONE_AXIS_CASES = [(shape, axis) for shape in SHAPES for axis in list(range(len(shape) - 1)) + [-1]]
MASKS = [None, "full", "broadcast"]
SAMPLE_FILTERS = [{}, {"top_k": 2, "top_p": 0.9, "min_p": 0.05}]


def case_id(case) -> str:
    shape, axis = case
    return f"{'x'.join(map(str, shape))}-axis{axis}".replace(" ", "")


def make_mask(kind, shape):
    """None, a bool mask of ``shape``, or one of shape (1, *shape[1:]) that broadcasts."""
    if kind is None:
        return None
    mask_shape = shape if kind == "full" else (1,) + shape[1:]
    return np.random.default_rng(0).random(mask_shape) < 0.5


def assert_same(actual, expected, what: str) -> None:
    """The same kind of result (ndarray or NumPy scalar), shape, dtype and values (NaN equal)."""
    assert type(actual) is type(expected), f"{what}: {type(actual).__name__}, expected {type(expected).__name__}"
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, expected {expected.dtype}"
    np.testing.assert_array_equal(actual, expected, err_msg=what)


def assert_values_equal(actual, expected, what: str) -> None:
    """Same shape and values (NaN equal) whatever the dtypes: against the
    reference, whose training functions return float64."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, reference {expected.shape}"
    np.testing.assert_array_equal(actual.astype(np.float64), expected.astype(np.float64), err_msg=what)


def numpy_logsumexp(x, axis, keepdims=False, where=None):
    """log(sum(exp(x))) in NumPy: -inf over an empty (or fully masked) axis, empty over zero rows."""
    mask = True if where is None else np.broadcast_to(where, x.shape)
    with np.errstate(divide="ignore"):
        total = np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims, where=mask))
    return total[()] if total.ndim == 0 else total


def fresh_out(shape, dtype):
    return np.full(shape, 7.0, dtype=dtype)


# ---- issue 16: the two bugs ----------------------------------------------------

def test_issue16_softmax_backward_of_zero_rows_does_not_crash():
    # the process died with SIGFPE: 0 threads for 0 rows, then rows // (4 * threads)
    g = np.zeros((0, 3))
    result = fs.softmax_backward(g, fs.softmax(g))
    assert_same(result, np.zeros((0, 3)), "softmax_backward((0, 3))")


def test_issue16_softmax_of_zero_rows_with_a_full_mask():
    # ValueError "selection: the mask's last dimension must be contiguous, or 1":
    # NumPy gives zero-size arrays zero strides
    result = fs.softmax(np.zeros((0, 3)), where=np.ones((0, 3), bool))
    assert_same(result, np.zeros((0, 3)), "softmax((0, 3), where=(0, 3))")


# ---- softmax, log_softmax, logsumexp ----------------------------------------------

# the functions whose result has the input's shape, and how many arrays of that shape they take
SAME_SHAPE = {"softmax": 1, "log_softmax": 1, "softmax_backward": 2, "log_softmax_backward": 2}


@pytest.mark.parametrize("out_mode", ["new", "out", "inplace"])
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("name", list(SAME_SHAPE))
def test_same_shape(name, case, mask_kind, out_mode):
    """softmax, log_softmax and the backward functions (grad, y): NumPy's
    exp(x) / sum(exp(x)) or y * (g - sum(g * y)) of an empty array is empty."""
    shape, axis = case
    function = getattr(fs, name)
    where = make_mask(mask_kind, shape)
    for dtype, threads in itertools.product(DTYPES, THREADS):
        what = f"{name}{shape} {np.dtype(dtype).name} axis={axis} where={mask_kind} {out_mode} threads={threads}"
        arrays = [np.zeros(shape, dtype) for _ in range(SAME_SHAPE[name])]
        if out_mode == "new":
            result = function(*arrays, axis, where=where, num_threads=threads)
        else:
            out = arrays[0] if out_mode == "inplace" else fresh_out(shape, dtype)
            result = function(*arrays, axis, where=where, out=out, num_threads=threads)
            assert result is out, f"{what}: not the out= array"
        assert_same(result, np.zeros(shape, dtype), what)
        assert_values_equal(getattr(reference, name)(*arrays, axis, where=where), result, f"reference {what}")


@pytest.mark.parametrize("out_mode", ["new", "out"])
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_logsumexp(case, mask_kind, out_mode):
    """logsumexp of an empty array: NumPy's log(sum(exp(x))) of it, -inf for
    every empty or fully masked row, with keepdims=, out= and threads."""
    shape, axis = case
    where = make_mask(mask_kind, shape)
    for dtype, keepdims, threads in itertools.product(DTYPES, (False, True), THREADS):
        x = np.zeros(shape, dtype)
        what = (f"logsumexp{shape} {np.dtype(dtype).name} axis={axis} keepdims={keepdims} where={mask_kind} "
                f"{out_mode} threads={threads}")
        expected = numpy_logsumexp(x, axis, keepdims, where)     # a NumPy scalar where every axis is reduced
        assert np.all(expected == -np.inf), what                 # every row is empty or fully masked
        assert_same(reference.logsumexp(x, axis, keepdims=keepdims, where=where), expected, f"reference {what}")
        if out_mode == "new":
            result = fs.logsumexp(x, axis, where=where, keepdims=keepdims, num_threads=threads)
        else:
            expected = np.asarray(expected)                      # out= is returned, even 0-d
            out = fresh_out(expected.shape, dtype)
            result = fs.logsumexp(x, axis, where=where, keepdims=keepdims, out=out, num_threads=threads)
            assert result is out, f"{what}: not the out= array"
        assert_same(result, expected, what)


@pytest.fixture(params=[c for c in CASES if isinstance(c[1], int)], ids=case_id)
def zeros_along_one_axis(request):
    """(zeros of an empty shape, a single int axis): the cases SciPy and
    PyTorch themselves take."""
    shape, axis = request.param
    return np.zeros(shape), axis


def test_logsumexp_of_empty_axes_as_scipy_and_torch(zeros_along_one_axis):
    """The convention itself, from SciPy and PyTorch: -inf over a zero-length axis, empty over zero rows."""
    x, axis = zeros_along_one_axis
    result = fs.logsumexp(x, axis)
    if torch is not None:
        np.testing.assert_array_equal(result, torch.logsumexp(torch.zeros(x.shape, dtype=torch.float64),
                                                              axis).numpy())
    np.testing.assert_array_equal(result, scipy.special.logsumexp(x, axis))


# ---- losses --------------------------------------------------------------------------

def expected_loss(per_row: np.ndarray, reduction: str, dtype):
    """The reduced loss of float64 per-row losses: a NumPy scalar of ``dtype``
    for "mean"/"batchmean"/"sum" (0.0 without rows), else the per-row array."""
    if reduction == "none":
        return per_row.astype(dtype)
    if per_row.size == 0:
        return np.dtype(dtype).type(0.0)
    total = per_row.sum()
    return np.dtype(dtype).type(total if reduction == "sum" else total / per_row.size)


def loss_shapes(shape, axis):
    axis = axis % len(shape)
    return shape[:axis] + shape[axis + 1:], shape[axis]


def torch_cross_entropy(logits, target, axis, reduction, **options):
    """PyTorch's cross_entropy with the class axis moved to position 1."""
    if target.dtype.kind == "f":
        target = np.moveaxis(target, axis, 1)
    if options.get("weight") is not None:
        options["weight"] = torch.from_numpy(options["weight"])
    return F.cross_entropy(torch.from_numpy(np.moveaxis(logits, axis, 1)), torch.from_numpy(target),
                           reduction=reduction, **options).numpy()


@pytest.mark.parametrize("options", [{}, {"weight": "ones", "label_smoothing": 0.1}], ids=["plain", "weighted"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target_kind", ["index", "ignored", "probabilities"])
@pytest.mark.parametrize("case", ONE_AXIS_CASES, ids=case_id)
def test_cross_entropy(case, target_kind, reduction, options):
    # every case has zero rows or zero classes (or both)
    shape, axis = case
    batch, classes = loss_shapes(shape, axis)
    rows = math.prod(batch)
    if target_kind == "probabilities":
        target = np.zeros(shape)
        per_row = np.full(batch, math.nan)      # a row of zero classes has no softmax
    else:
        target = np.full(batch, 0 if target_kind == "index" else -100, np.int64)
        per_row = np.zeros(batch)               # ignored rows
    if rows and target_kind == "index":
        # no class index exists among zero classes: as documented, a ValueError naming the value
        with pytest.raises(ValueError, match=r"target value 0 at position \(0,( 0)?\) is not a class index"):
            fs.cross_entropy(np.zeros(shape), target, axis, **options)
        return
    for dtype, threads in itertools.product(DTYPES, THREADS):
        logits, expected = np.zeros(shape, dtype), expected_loss(per_row, reduction, dtype)
        options = {key: np.ones(classes, dtype) if key == "weight" else value for key, value in options.items()}
        what = (f"cross_entropy{shape} {np.dtype(dtype).name} axis={axis} {target_kind} {reduction} "
                f"threads={threads}")
        loss, grad = fs.cross_entropy(logits, target, axis, reduction=reduction, return_grad=True,
                                      num_threads=threads, **options)
        assert_same(loss, expected, what)
        assert_same(grad, np.zeros(shape, dtype), f"{what} gradient")
        ref_loss, ref_grad = reference.cross_entropy(logits, target, axis, reduction=reduction, return_grad=True,
                                                     **options)
        assert_values_equal(loss, ref_loss, f"reference {what}")
        assert_values_equal(grad, ref_grad, f"reference {what} gradient")
    if classes and reduction != "mean" and torch is not None:
        # PyTorch agrees on no rows, except for "mean" (NaN there, 0.0 here as documented); on rows of
        # zero classes it gives 0 (an empty sum) or NaN (eps / 0), the reference NaN unless ignored
        torch_loss = torch_cross_entropy(logits, target, axis, reduction, **options)
        assert_values_equal(loss, torch_loss, f"torch {what}")


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
@pytest.mark.parametrize("case", ONE_AXIS_CASES, ids=case_id)
def test_kl_div(case, reduction):
    shape, axis = case
    batch, classes = loss_shapes(shape, axis)
    # equal logits: KL 0 per row; a row of zero classes has no softmax: NaN
    per_row = np.full(batch, math.nan if classes == 0 else 0.0)
    for dtype, threads in itertools.product(DTYPES, THREADS):
        student, teacher = np.zeros(shape, dtype), np.zeros(shape, dtype)
        expected = expected_loss(per_row, reduction, dtype)
        what = f"kl_div{shape} {np.dtype(dtype).name} axis={axis} {reduction} threads={threads}"
        loss, grad = fs.kl_div(student, teacher, axis, reduction=reduction, return_grad=True, num_threads=threads)
        assert_same(loss, expected, what)
        assert_same(grad, np.zeros(shape, dtype), f"{what} gradient")
        ref_loss, ref_grad = reference.kl_div(student, teacher, axis, reduction=reduction, return_grad=True)
        assert_values_equal(loss, ref_loss, f"reference {what}")
        assert_values_equal(grad, ref_grad, f"reference {what} gradient")


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_contrastive_loss_of_no_pairs(reduction, symmetric):
    for dtype, threads in itertools.product(DTYPES, THREADS):
        similarity, expected = np.zeros((0, 0), dtype), expected_loss(np.zeros(0), reduction, dtype)
        what = f"contrastive_loss {np.dtype(dtype).name} {reduction} symmetric={symmetric} threads={threads}"
        loss, grad = fs.contrastive_loss(similarity, symmetric=symmetric, reduction=reduction, return_grad=True,
                                         num_threads=threads)
        assert_same(loss, expected, what)
        assert_same(grad, np.zeros((0, 0), dtype), f"{what} gradient")
        ref_loss, ref_grad = reference.contrastive_loss(similarity, symmetric=symmetric, reduction=reduction,
                                                        return_grad=True)
        assert_values_equal(loss, ref_loss, f"reference {what}")
        assert_values_equal(grad, ref_grad, f"reference {what} gradient")


# ---- sample ----------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.0, 1.0, math.inf, "per-row"])
@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("case", ONE_AXIS_CASES, ids=case_id)
def test_sample(case, mask_kind, temperature):
    shape, axis = case
    batch, _ = loss_shapes(shape, axis)
    where = make_mask(mask_kind, shape)
    t = np.ones(batch) if temperature == "per-row" else temperature
    for dtype, threads, filters in itertools.product(DTYPES, THREADS, SAMPLE_FILTERS):
        what = (f"sample{shape} {np.dtype(dtype).name} axis={axis} T={temperature} where={mask_kind} {filters} "
                f"threads={threads}")
        arguments = dict(temperature=t, where=where, rng=0, num_threads=threads, **filters)
        if math.prod(batch) == 0:
            assert_same(fs.sample(np.zeros(shape, dtype), axis, **arguments), np.zeros(batch, np.int64), what)
        else:
            # rows of length 0 have nothing to draw
            with pytest.raises(ValueError, match=r"row (0|\(0, 0\)) has nothing to draw: it is empty"):
                fs.sample(np.zeros(shape, dtype), axis, **arguments)


@pytest.mark.parametrize("case", ONE_AXIS_CASES, ids=case_id)
def test_reference_sample_distribution(case):
    """The distribution of an empty batch is an empty float64 array of the logits' shape."""
    shape, axis = case
    batch, _ = loss_shapes(shape, axis)
    for mask_kind in MASKS:
        where = make_mask(mask_kind, shape)
        what = f"reference.sample_distribution{shape} axis={axis} where={mask_kind}"
        if math.prod(batch) == 0:
            assert_same(reference.sample_distribution(np.zeros(shape), axis, where=where), np.zeros(shape), what)
        else:
            with pytest.raises(ValueError, match="has nothing to draw"):
                reference.sample_distribution(np.zeros(shape), axis, where=where)


# ---- fastsoftmax.special -----------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_special_elementwise(name, case):
    shape, axis = case
    for dtype in DTYPES:
        x = np.zeros(shape, dtype)
        assert_same(getattr(special, name)(x, axis), np.zeros(shape, dtype), f"special.{name}{shape} axis={axis}")
        if axis is None:
            assert_same(getattr(special, name)(x), np.zeros(shape, dtype), f"special.{name}{shape} default axis")


@pytest.mark.parametrize("return_sign", [False, True])
@pytest.mark.parametrize("weights", [None, "full", "broadcast"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_special_logsumexp(case, weights, return_sign):
    shape, axis = case
    for dtype, keepdims in itertools.product(DTYPES, (False, True)):
        a = np.zeros(shape, dtype)
        b = None if weights is None else np.where(make_mask(weights, shape), 2.0, -0.5).astype(dtype)
        what = f"special.logsumexp{shape} {np.dtype(dtype).name} axis={axis} b={weights} keepdims={keepdims}"
        # SciPy's empty sum: -inf, with the sign -1 of -inf
        value = numpy_logsumexp(a, axis, keepdims)
        sign = np.full(np.shape(value), -1.0, dtype)
        sign = sign[()] if sign.ndim == 0 else sign
        expected = (value, sign) if return_sign else value
        result = special.logsumexp(a, axis, b=b, keepdims=keepdims, return_sign=return_sign)
        ref = reference.special_logsumexp(a, axis, b=b, keepdims=keepdims, return_sign=return_sign)
        if return_sign:
            assert_same(result[0], expected[0], what)
            assert_same(result[1], expected[1], f"{what} sign")
            assert_same(ref[0], expected[0], f"reference {what}")
            assert_same(ref[1], expected[1], f"reference {what} sign")
        else:
            assert_same(result, expected, what)
            assert_same(ref, expected, f"reference {what}")


def test_special_logsumexp_as_scipy(zeros_along_one_axis):
    """Where SciPy itself handles the empty input (single axes), the same (value, sign)."""
    a, axis = zeros_along_one_axis
    for b in (None, np.ones(a.shape)):
        ours = special.logsumexp(a, axis, b=b, return_sign=True)
        theirs = scipy.special.logsumexp(a, axis, b=b, return_sign=True)
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1])


# ---- Dask --------------------------------------------------------------------------

@pytest.mark.parametrize("chunks", ["whole", 2], ids=["one-block", "chunks-of-2"])
@pytest.mark.parametrize("mask_kind", [None, "full", "broadcast-dask"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_dask(name, case, mask_kind, chunks):
    """The Dask front end: lazy results that compute to what NumPy input gives."""
    shape, axis = case
    function = getattr(fs, name)
    where = make_mask(mask_kind and mask_kind.split("-")[0], shape)
    if mask_kind == "broadcast-dask":
        where = da.from_array(where, chunks=1)
    for dtype, threads in itertools.product(DTYPES, (None, 2)):
        what = f"dask {name}{shape} {np.dtype(dtype).name} axis={axis} where={mask_kind} chunks={chunks}"
        x = np.zeros(shape, dtype)
        lazy = da.from_array(x, chunks=-1 if chunks == "whole" else chunks)
        if name == "logsumexp":
            expected = np.asarray(numpy_logsumexp(x, axis, where=None if where is None else np.asarray(where)))
        else:
            expected = np.zeros(shape, dtype)
        result = function(lazy, axis, where=where, num_threads=threads)
        assert isinstance(result, da.Array), f"{what}: {type(result).__name__}, not lazy"
        assert_same(np.asarray(result.compute()), expected, what)
