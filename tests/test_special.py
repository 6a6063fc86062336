"""fastsoftmax.special: SciPy's signatures and semantics, checked against
SciPy and against the exact reference (fastsoftmax.reference.special_logsumexp):
weights (negative, zero, broadcast), signs, keepdims, softmax and log_softmax
over the whole array, and what is out of scope.  The weighted kernel itself,
per instruction-set variant (special values, row lengths, threads), is
tested in tests/kernels/test_weighted.py."""
import inspect
import math

import numpy as np
import pytest

from fastsoftmax import reference, special
from util import logits, logsumexp_weights, weighted_tolerance

scipy_special = pytest.importorskip("scipy.special")

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
inf, nan = math.inf, math.nan


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_signatures_are_scipys(name):
    def shape_of(func):
        return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]

    assert shape_of(getattr(special, name)) == shape_of(getattr(scipy_special, name))


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
    b = logsumexp_weights(b_shape, seed=3, negative=dtype == np.float64).astype(dtype)
    value, sign = special.logsumexp(a, axis, b, False, True)
    want_value, want_sign = reference.special_logsumexp(a, axis=axis, b=b, return_sign=True)
    assert np.asarray(value).dtype == np.dtype(dtype) and np.asarray(sign).dtype == np.dtype(dtype)
    assert np.shape(value) == np.shape(want_value) and np.array_equal(sign, want_sign)
    got, want = np.atleast_1d(np.float64(value)), np.atleast_1d(want_value)
    finite = np.isfinite(want)
    assert np.array_equal(got[~finite], want[~finite])
    tol = np.atleast_1d(weighted_tolerance(a, b, axis, dtype))[finite]
    assert np.all(np.abs(got[finite] - want[finite]) <= tol * np.maximum(1.0, np.abs(want[finite])))
    scipy_value, scipy_sign = scipy_special.logsumexp(a, axis=axis, b=b, return_sign=True)
    assert np.array_equal(sign, scipy_sign)
    np.testing.assert_allclose(value, scipy_value, rtol=1e-4 if dtype == np.float32 else 1e-10)
    # without return_sign, negative sums are NaN
    plain = special.logsumexp(a, axis=axis, b=b)
    assert np.array_equal(plain, np.where(want_sign < 0, nan, value), equal_nan=True)


def test_keepdims_and_positional_arguments():
    a = logits((3, 4, 5), np.float64, seed=1)
    b = logsumexp_weights((4, 1), seed=2, negative=False)
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
