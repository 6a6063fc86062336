"""The kernel table's ``weighted_stats`` entry: SciPy's weighted logsumexp
(fastsoftmax.special.logsumexp with b=) for every instruction-set variant
(the ``isa`` fixture), against the exact reference
(fastsoftmax.reference.special_logsumexp) and SciPy: the special values
(also at the end of a vector's width and of a long row split into chunks),
every row length up to a few vectors, and results that do not depend on the
thread count."""
import math

import numpy as np
import pytest

from fastsoftmax import _rows, reference, special
from util import logits, logsumexp_weights, weighted_tolerance

scipy_special = pytest.importorskip("scipy.special")
import scipy  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
inf, nan = math.inf, math.nan


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
        b = logsumexp_weights((5, 301), seed=6, negative=False).astype(dtype)
        value = special.logsumexp(a, axis=1, b=b)
        want = reference.special_logsumexp(a, axis=1, b=b)
        tolerance = weighted_tolerance(a, b, 1, dtype)
        assert np.all(np.abs(np.float64(value) - want) <= tolerance * np.maximum(1, np.abs(want)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_row_length_every_variant(isa, dtype):
    """The weighted statistics over every row length up to a few vectors,
    weights of both signs (float64) or positive (float32), some zero."""
    for n in list(range(1, 34)) + [64, 65, 130]:
        a = logits((3, n), dtype, seed=n)
        b = logsumexp_weights((3, n), seed=n + 1, negative=dtype == np.float64).astype(dtype)
        value, sign = special.logsumexp(a, axis=1, b=b, return_sign=True)
        want_value, want_sign = reference.special_logsumexp(a, axis=1, b=b, return_sign=True)
        assert np.array_equal(sign, want_sign), (isa, n)
        finite = np.isfinite(want_value)
        assert np.array_equal(np.float64(value)[~finite], want_value[~finite]), (isa, n)
        tol = weighted_tolerance(a, b, 1, dtype)[finite]
        err = np.abs(np.float64(value)[finite] - want_value[finite])
        assert np.all(err <= tol * np.maximum(1.0, np.abs(want_value[finite]))), (isa, n)


@pytest.mark.parametrize("shape, b_varies", [((3, 200000), True), ((64, 5000), True), ((5, 100000), False)])
def test_results_do_not_depend_on_threads(shape, b_varies):
    x = logits(shape, np.float64, seed=7)
    b = logsumexp_weights(shape if b_varies else shape[:1], seed=8)
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


@pytest.mark.parametrize("weight", [-np.inf, np.inf])
@pytest.mark.parametrize("threads", [1, 2])
def test_an_infinite_weight_before_a_larger_maximum_of_a_long_row(isa, weight, threads):
    """A long row is folded in pieces: an infinite weight in one piece and a
    larger maximum in a later one give (+inf, sign of the weight), as SciPy
    and the reference give (this once came out NaN)."""
    x = np.zeros(200000)
    b = np.ones(200000)
    b[10] = weight
    x[150000] = 5.0
    value, sign = special.logsumexp(x, b=b, return_sign=True)
    want_value, want_sign = reference.special_logsumexp(x, b=b, return_sign=True)
    assert (value, sign) == (want_value, want_sign) == (np.inf, np.sign(weight))
    rows_value, rows_sign = np.empty(1), np.empty(1)
    _rows.weighted_logsumexp(x.reshape(1, -1), b, None, True, rows_value, rows_sign, threads)
    assert (rows_value[0], rows_sign[0]) == (np.inf, np.sign(weight))
