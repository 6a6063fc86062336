"""fastsoftmax.special: SciPy's signatures and semantics, checked against
SciPy and against the exact reference (fastsoftmax.reference.special_logsumexp):
weights (negative, zero, broadcast), signs, special values, long rows split
into chunks, every instruction-set variant, and results that do not depend
on the thread count."""
import inspect
import math

import numpy as np
import pytest

from fastsoftmax import _rows, reference, special
from util import logits, rng

scipy_special = pytest.importorskip("scipy.special")
import scipy  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
inf, nan = math.inf, math.nan


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_signatures_are_scipys(name):
    def shape_of(func):
        return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]

    assert shape_of(getattr(special, name)) == shape_of(getattr(scipy_special, name))


def _weights(shape, seed, negative=True):
    w = rng(seed).standard_normal(shape) if negative else rng(seed).uniform(0.1, 2.0, shape)
    w = np.asarray(w)
    if w.size > 3:
        w.reshape(-1)[::7] = 0.0
    return w


def _tolerance(a, b, axis, dtype):
    """Error bound of log|S| for S = sum b exp(a - max): the dtype's bound
    times the sum's condition number sum|terms| / |sum|."""
    x = np.broadcast_to(np.asarray(a, np.float64), np.broadcast_shapes(np.shape(a), np.shape(b)))
    w = np.broadcast_to(np.asarray(b, np.float64), x.shape)
    with np.errstate(all="ignore"):   # rows with no weight: nothing to bound
        m = np.max(np.where(w != 0, x, -inf), axis=axis, keepdims=True)
        terms = np.where(w != 0, w * np.exp(x - m), 0.0)
        cond = np.sum(np.abs(terms), axis=axis) / np.abs(np.sum(terms, axis=axis))
    return (8e-6 if np.dtype(dtype) == np.float32 else 1e-14) * np.maximum(np.nan_to_num(cond, nan=1.0), 1.0)


SHAPES = [  # (a's shape, b's shape, axis)
    ((7,), (7,), None), ((4, 9), (4, 9), -1), ((4, 9), (9,), -1), ((4, 9), (4, 1), -1), ((4, 9), (4, 1), 0),
    ((4, 9), (), None), ((3, 4, 5), (4, 1), (0, 2)), ((3, 4, 5), (3, 4, 5), 1), ((2, 3, 40), (3, 40), (1, 2)),
    ((4, 1, 2, 1), (3, 1, 5), None), ((4, 1, 2, 1), (3, 1, 5), (0, 2)), ((33, 17), (33, 17), 1),
    ((2, 70000), (2, 70000), -1), ((1, 140000), (140000,), None), ((3, 1), (1, 5000), 1),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("a_shape, b_shape, axis", SHAPES, ids=str)
def test_weighted_against_reference_and_scipy(a_shape, b_shape, axis, dtype):
    a = logits(a_shape, dtype, seed=len(a_shape))
    b = _weights(b_shape, seed=3, negative=dtype == np.float64).astype(dtype)
    value, sign = special.logsumexp(a, axis, b, False, True)
    want_value, want_sign = reference.special_logsumexp(a, axis=axis, b=b, return_sign=True)
    assert np.asarray(value).dtype == np.dtype(dtype) and np.asarray(sign).dtype == np.dtype(dtype)
    assert np.shape(value) == np.shape(want_value) and np.array_equal(sign, want_sign)
    got, want = np.atleast_1d(np.float64(value)), np.atleast_1d(want_value)
    finite = np.isfinite(want)
    assert np.array_equal(got[~finite], want[~finite])
    tol = np.atleast_1d(_tolerance(a, b, axis, dtype))[finite]
    assert np.all(np.abs(got[finite] - want[finite]) <= tol * np.maximum(1.0, np.abs(want[finite])))
    scipy_value, scipy_sign = scipy_special.logsumexp(a, axis=axis, b=b, return_sign=True)
    assert np.array_equal(sign, scipy_sign)
    np.testing.assert_allclose(value, scipy_value, rtol=1e-4 if dtype == np.float32 else 1e-10)
    # without return_sign, negative sums are NaN
    plain = special.logsumexp(a, axis=axis, b=b)
    assert np.array_equal(plain, np.where(want_sign < 0, nan, value), equal_nan=True)


def test_keepdims_and_positional_arguments():
    a = logits((3, 4, 5), np.float64, seed=1)
    b = _weights((4, 1), seed=2, negative=False)
    value = special.logsumexp(a, (0, 2), b, True)
    assert value.shape == (1, 4, 1)
    np.testing.assert_allclose(value, scipy_special.logsumexp(a, (0, 2), b, True), rtol=1e-13)
    assert special.logsumexp(5.0, 0, None, True).shape == (1,)
    assert isinstance(special.logsumexp([1.0, 2.0]), np.float64)
    assert isinstance(special.logsumexp([1.0, 2.0], b=[1.0, 2.0], return_sign=True)[1], np.float64)


def test_near_one_keeps_the_tiny_part():
    # log(1 + e^-40) is 4.2e-18, not 0: the term at the maximum is summed apart
    assert special.logsumexp([0.0, -40.0], b=[1.0, 1.0]) == math.log1p(math.exp(-40.0))
    assert special.logsumexp([0.0, -40.0, 0.0], b=[3.0, 1.0, -2.0]) == math.log1p(math.exp(-40.0))


# (a, b, value, sign): each as SciPy gives it
SPECIAL = [
    ([1.0, 2.0], [0.0, 0.0], -inf, 0.0),
    ([1.0, inf, nan, -inf, 2.0], [1.0, 0.0, 0.0, 0.0, 1.0], math.log(math.e + math.e ** 2), 1.0),
    ([-inf, -inf], [1.0, 1.0], -inf, 0.0),
    ([-inf, 1.0], [nan, 1.0], nan, nan),
    ([-inf, 1.0], [inf, 1.0], nan, nan),
    ([nan, 1.0], [1.0, 1.0], nan, nan),
    ([inf, 1.0], [1.0, 1.0], inf, 1.0),
    ([inf, 1.0], [-1.0, 1.0], inf, -1.0),
    ([inf, inf], [1.0, -1.0], nan, nan),
    ([1.0, 1.0], [1.0, -1.0], -inf, 0.0),
    ([1.0, 2.0], [inf, 1.0], inf, 1.0),
    ([1.0, 2.0], [1.0, -inf], inf, -1.0),
    ([5.0], [-2.0], 5.0 + math.log(2.0), -1.0),
    ([], [], -inf, -1.0),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # SciPy's own warnings
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("a, b, value, sign", SPECIAL, ids=str)
def test_special_values(isa, a, b, value, sign, dtype):
    a, b = np.array(a, dtype), np.array(b, dtype)
    rtol = 2e-6 if dtype == np.float32 else 1e-15

    def check(got, context):
        assert np.asarray(got[0]).dtype == np.dtype(dtype), context
        np.testing.assert_allclose(np.array(got, np.float64), [value, sign], rtol=rtol, err_msg=context)

    check(special.logsumexp(a, b=b, return_sign=True), "fastsoftmax")
    check(reference.special_logsumexp(a, b=b, return_sign=True), "reference")
    if np.lib.NumpyVersion(scipy.__version__) >= "1.17.0" or np.isfinite(a).all() and np.isfinite(b).all():
        # older SciPy (the one NumPy 1.x installs) differs at infinite entries and weights
        check(scipy_special.logsumexp(a, b=b, return_sign=True), "scipy")
    if a.size:
        # the same entries at the end of a row of a vector's width and of a
        # long row (chunks), the rest left out by zero weights
        for n in (16, 70000):
            x, w = np.full(n, -inf, dtype), np.zeros(n, dtype)
            x[n - a.size:], w[n - b.size:] = a, b
            check(special.logsumexp(x, b=w, return_sign=True), f"row of {n}")


def test_every_variant_agrees_with_the_reference(isa):
    for dtype in (np.float32, np.float64):
        a = logits((5, 301), dtype, seed=5)
        b = _weights((5, 301), seed=6, negative=False).astype(dtype)
        value = special.logsumexp(a, axis=1, b=b)
        want = reference.special_logsumexp(a, axis=1, b=b)
        assert np.all(np.abs(np.float64(value) - want) <= _tolerance(a, b, 1, dtype) * np.maximum(1, np.abs(want)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_row_length_every_variant(isa, dtype):
    """The weighted statistics over every row length up to a few vectors,
    weights of both signs (float64) or positive (float32), some zero."""
    for n in list(range(1, 34)) + [64, 65, 130]:
        a = logits((3, n), dtype, seed=n)
        b = _weights((3, n), seed=n + 1, negative=dtype == np.float64).astype(dtype)
        value, sign = special.logsumexp(a, axis=1, b=b, return_sign=True)
        want_value, want_sign = reference.special_logsumexp(a, axis=1, b=b, return_sign=True)
        assert np.array_equal(sign, want_sign), (isa, n)
        finite = np.isfinite(want_value)
        assert np.array_equal(np.float64(value)[~finite], want_value[~finite]), (isa, n)
        tol = _tolerance(a, b, 1, dtype)[finite]
        err = np.abs(np.float64(value)[finite] - want_value[finite])
        assert np.all(err <= tol * np.maximum(1.0, np.abs(want_value[finite]))), (isa, n)


@pytest.mark.parametrize("shape, b_varies", [((3, 200000), True), ((64, 5000), True), ((5, 100000), False)])
def test_results_do_not_depend_on_threads(shape, b_varies):
    x = logits(shape, np.float64, seed=7)
    b = _weights(shape if b_varies else shape[:1], seed=8)
    results = []
    for threads in (1, 2, 3):
        value, sign = np.empty(shape[0]), np.empty(shape[0])
        _rows.weighted_logsumexp(x, b, None, b_varies, value, sign, threads)
        results.append((value, sign))
    for value, sign in results[1:]:
        assert np.array_equal(value, results[0][0]) and np.array_equal(sign, results[0][1])


def test_weights_outside_b_are_refused():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="outside b"):
        _rows.weighted_logsumexp(x, np.ones(5), None, True, np.empty(2), None, 1)
    with pytest.raises(ValueError, match="outside b"):
        _rows.weighted_logsumexp(x, np.ones(3), np.array([0, 1]), True, np.empty(2), None, 1)


def test_softmax_and_log_softmax_default_to_the_whole_array():
    x = logits((3, 4), np.float64, seed=9)
    np.testing.assert_allclose(special.softmax(x), reference.softmax(x, axis=None), rtol=1e-14)
    np.testing.assert_allclose(special.log_softmax(x), reference.log_softmax(x, axis=None), rtol=1e-14)
    np.testing.assert_allclose(special.softmax(x, axis=0), scipy_special.softmax(x, axis=0), rtol=1e-13)
    assert special.softmax([1, 2, 3]).dtype == np.float64


@pytest.mark.parametrize("call", [
    lambda: special.softmax(np.ones(3, complex)),
    lambda: special.log_softmax([1j, 2.0]),
    lambda: special.logsumexp(np.ones(3, np.complex64)),
    lambda: special.logsumexp(np.ones(3), b=np.ones(3, complex)),
])
def test_complex_is_out_of_scope(call):
    with pytest.raises(TypeError, match="complex input is out of scope"):
        call()


def test_unsupported_dtypes_name_the_argument():
    with pytest.raises(TypeError, match="unsupported input dtype"):
        special.logsumexp(np.array(["a"]), b=[1.0])


@pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) < "2.0.0",
                    reason="NumPy 1.x prints scalars without their type")
def test_docstring_examples():
    import doctest

    result = doctest.testmod(special, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
