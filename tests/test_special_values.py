"""The contract's special-value table, the temperature limits, empty and 0-d
inputs, and overflow: exact expected values, no RuntimeWarning."""
import math
import warnings

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference
from util import DTYPES, FUNCTIONS, SOFTMAX_REL, SPECIAL_TABLE, assert_close

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf, nan = math.inf, math.nan

TABLE = SPECIAL_TABLE


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("row,sm,lsm,lse", TABLE)
def test_special_value_table(dtype, row, sm, lsm, lse):
    x = np.array([row, [1.0, 2.0, 3.0][: len(row)]], dtype=dtype)
    for fn, want in ((fs.softmax, sm), (fs.log_softmax, lsm)):
        got = fn(x)
        np.testing.assert_allclose(got[0], np.array(want, dtype=dtype), rtol=1e-6, err_msg=f"{fn.__name__} {row}")
        # the other row is unaffected
        np.testing.assert_allclose(got[1], fn(x[1]), rtol=0, atol=0)
    got = fs.logsumexp(x)
    np.testing.assert_allclose(got[0], lse, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_rows(dtype):
    x = np.empty((3, 0), dtype=dtype)
    assert fs.softmax(x).shape == (3, 0)
    assert fs.log_softmax(x).shape == (3, 0)
    np.testing.assert_array_equal(fs.logsumexp(x), np.full(3, -inf, dtype=dtype))
    assert fs.logsumexp(np.empty((0, 5), dtype=dtype)).shape == (0,)
    assert fs.softmax(np.empty((0, 5), dtype=dtype)).shape == (0, 5)
    assert fs.logsumexp(np.empty(0, dtype=dtype)) == -inf
    assert fs.logsumexp(np.empty((2, 0, 3), dtype=dtype), axis=(1, 2)).tolist() == [-inf, -inf]


@pytest.mark.parametrize("dtype", DTYPES + [np.float16])
def test_zero_d_inputs_give_scalars(dtype):
    x = np.array(3.5, dtype=dtype)
    for fn, want in ((fs.softmax, 1.0), (fs.log_softmax, 0.0), (fs.logsumexp, 3.5)):
        r = fn(x)
        assert type(r) is np.dtype(dtype).type, fn.__name__
        assert r == want
    r = fs.logsumexp(np.ones((2, 3), dtype=dtype), axis=None)
    assert type(r) is np.dtype(dtype).type
    assert r == pytest.approx(1 + math.log(6), rel=1e-3)
    assert fs.logsumexp(np.ones((2, 3), dtype=dtype), axis=None, keepdims=True).shape == (1, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_temperature_zero_is_the_limit(dtype):
    x = np.array([[2.0, 1.0, 0.5], [3.0, -1.0, 3.0], [inf, 1.0, inf], [-inf, -inf, -inf], [1.0, nan, 2.0]],
                 dtype=dtype)
    sm = fs.softmax(x, temperature=0)
    np.testing.assert_array_equal(sm[:3], np.array([[1, 0, 0], [0.5, 0, 0.5], [0.5, 0, 0.5]], dtype=dtype))
    assert np.isnan(sm[3:]).all()       # only -inf: nothing to pick, as at every other T
    lsm = fs.log_softmax(x, temperature=0)
    np.testing.assert_allclose(lsm[:3], [[0, -inf, -inf], [-math.log(2), -inf, -math.log(2)],
                                         [-math.log(2), -inf, -math.log(2)]], rtol=1e-7)
    assert np.isnan(lsm[3:]).all()
    lse = fs.logsumexp(x, temperature=0)
    np.testing.assert_array_equal(lse, np.array([2.0, 3.0, inf, -inf, nan], dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_temperature_inf_is_uniform(dtype):
    x = np.array([[2.0, 1.0, 0.5, -3.0], [5.0, -inf, 1.0, -inf], [7.0, -inf, -inf, -inf]], dtype=dtype)
    np.testing.assert_allclose(fs.softmax(x, temperature=inf), [[0.25] * 4, [0.5, 0, 0.5, 0], [1, 0, 0, 0]])
    np.testing.assert_allclose(fs.log_softmax(x, temperature=inf),
                               [[-math.log(4)] * 4, [-math.log(2), -inf, -math.log(2), -inf], [0, -inf, -inf, -inf]],
                               rtol=1e-7)
    np.testing.assert_array_equal(fs.logsumexp(x, temperature=inf), np.array([inf, inf, 7.0], dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_finite_temperatures_approach_the_limits(dtype):
    x = np.array([3.0, 1.0, 3.0, -2.0], dtype=dtype)
    np.testing.assert_allclose(fs.softmax(x, temperature=1e-300), [0.5, 0, 0.5, 0])
    np.testing.assert_allclose(fs.softmax(x, temperature=1e300), [0.25] * 4)
    np.testing.assert_allclose(fs.softmax(x, temperature=5e-324), [0.5, 0, 0.5, 0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_examples(dtype):
    np.testing.assert_allclose(fs.softmax(np.array([2.0, 1.0, 0.1], dtype=dtype)),
                               [0.6590011388859679, 0.2424329707047139, 0.09856589040931818], rtol=1e-6)
    # log-softmax of [100, 101, 102]: the naive formula overflows in float32
    np.testing.assert_allclose(fs.log_softmax(np.array([100, 101, 102], dtype=dtype)),
                               [-2.40760596444438, -1.40760596444438, -0.40760596444438], rtol=1e-6)
    np.testing.assert_allclose(fs.softmax(np.array([3.0, 3.0, 3.0], dtype=dtype)), [1 / 3] * 3, rtol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits_never_overflow(dtype):
    big = np.finfo(dtype).max
    x = np.array([[big, big, -big], [big, big * 0.5, 0.0], [-big, -big, -big * 0.5]], dtype=dtype)
    for name, (fast, ref) in FUNCTIONS.items():
        assert_close(name, fast(x), ref(x), dtype, "near dtype max")
    np.testing.assert_allclose(fs.softmax(x)[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(fs.logsumexp(x)[0], big, rtol=1e-6)   # big + log(2) rounds to big
    np.testing.assert_allclose(fs.softmax(x)[2], [0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_negative_logits(dtype):
    x = np.array([-1e30, -1e30 - 1e24, -1e30 + 5e23], dtype=dtype)
    for name, (fast, ref) in FUNCTIONS.items():
        assert_close(name, fast(x), ref(x), dtype, "huge negative")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shift", [1e3, -1e4, 3e4])
def test_shift_invariance(dtype, shift):
    x = np.array([[0.5, -1.0, 2.0, 0.25, -3.0]] * 2, dtype=dtype)
    y = x + dtype(shift)         # exactly representable shifts of these values
    assert np.array_equal(y - dtype(shift), x)
    np.testing.assert_allclose(fs.softmax(y), fs.softmax(x), rtol=SOFTMAX_REL[np.dtype(dtype)])
    np.testing.assert_allclose(fs.log_softmax(y), fs.log_softmax(x), rtol=4 * SOFTMAX_REL[np.dtype(dtype)])
    np.testing.assert_allclose(fs.logsumexp(y) - dtype(shift), fs.logsumexp(x), rtol=1e-3 if dtype == np.float32 else 1e-10)


def test_no_warnings_from_special_rows():
    x = np.array([[nan, 1.0], [inf, 1.0], [-inf, -inf], [-inf, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in (0.0, 1.0, inf):
            fs.softmax(x, temperature=t)
            fs.log_softmax(x, temperature=t)
            fs.logsumexp(x, temperature=t)


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits_with_huge_temperature(dtype):
    """Regression (found by fuzzing): x - max overflows although (x - max) / T
    is moderate; the kernels scale before subtracting."""
    big = float(np.finfo(dtype).max)
    cases = [([-big, big / 2], big / 12.3), ([big, -big], big / 43.7), ([big, -big], 2.0), ([-big, big], 1e300)]
    for row, t in cases:
        x = np.array(row, dtype=dtype)
        for name, (fast, ref) in FUNCTIONS.items():
            assert_close(name, fast(x, temperature=t), ref(x, temperature=t), dtype, f"{row} T={t}")


def test_log_softmax_just_below_overflow():
    """Regression (found by fuzzing): (x - max) / T close to the largest double
    must not overflow in an intermediate step."""
    x = np.array([1.7555597e305, 0.0])
    for name, (fast, ref) in FUNCTIONS.items():
        assert_close(name, fast(x, temperature=0.001), ref(x, temperature=0.001), np.float64, "T=0.001")
    assert np.isfinite(fs.log_softmax(x, temperature=0.001)[1])


def test_log_softmax_at_tiny_temperature_keeps_finite_values():
    """Found by fuzzing: at a temperature so small that every exp but the
    maximum's is 0 (the kernels then take the T -> 0 limit), log_softmax of a
    subnormal gap is still (x - max) / T - log(count), finite, not -inf."""
    x = np.array([0.0, 1e-45, -3e-45], dtype=np.float32)
    t = 8.327652255816858e-70
    want = np.asarray(reference.log_softmax(x.astype(np.float64), temperature=t))
    for got in (fs.log_softmax(x, temperature=t),
                fs.log_softmax(np.stack([x] * 5, axis=1), axis=0, temperature=t)[:, 2]):
        assert np.all(np.isfinite(got[[0, 2]]))
        np.testing.assert_allclose(got, want.astype(np.float32), rtol=1e-6)
    # T = 0 itself is the exact limit: -inf off the maximum
    np.testing.assert_array_equal(fs.log_softmax(x, temperature=0.0), [-np.inf, 0.0, -np.inf])
