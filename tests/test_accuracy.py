"""The contract's accuracy bounds, against a higher-precision NumPy oracle
(long double where it is wider than double) on rows up to 1,000,000 elements."""
import math

import numpy as np
import pytest

import fastsoftmax as fs
from util import LONG_DOUBLE_IS_WIDER, ROW_SUM_BOUND, SOFTMAX_REL, TAIL_REL, oracle

WIDE = np.longdouble
needs_wide = pytest.mark.skipif(not LONG_DOUBLE_IS_WIDER, reason="long double is not wider than double here")


def wide_results(x, t):
    """softmax, log_softmax, logsumexp of one row in long double."""
    return tuple(oracle(name, x, temperature=t, rounded=False) for name in ("softmax", "log_softmax", "logsumexp"))


@needs_wide
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,scale,t", [(1_000_000, 4.0, 1.0), (1_000_000, 4.0, 0.7), (100_000, 30.0, 1.0),
                                       (1000, 4.0, 0.07), (50257, 8.0, 1.3)])
def test_accuracy_bounds(dtype, n, scale, t):
    x = (np.random.default_rng(n).standard_normal(n) * scale).astype(dtype)
    sm, lsm, lse = wide_results(x, t)
    got = fs.softmax(x, temperature=t).astype(WIDE)
    big = sm >= 1e-8
    rel = np.abs(got - sm) / sm
    assert rel[big].max() <= SOFTMAX_REL[np.dtype(dtype)], f"softmax n={n}: {float(rel[big].max()):.3g}"
    tail = (sm < 1e-8) & (sm >= np.finfo(dtype).tiny)
    if tail.any():
        assert rel[tail].max() <= TAIL_REL[np.dtype(dtype)], f"tail n={n}: {float(rel[tail].max()):.3g}"
    err = np.abs(fs.log_softmax(x, temperature=t).astype(WIDE) - lsm) / np.maximum(1, np.abs(lsm))
    assert err.max() <= 4 * SOFTMAX_REL[np.dtype(dtype)], f"log_softmax n={n}: {float(err.max()):.3g}"
    lerr = abs(WIDE(fs.logsumexp(x, temperature=t)) - lse) / max(1, abs(lse))
    assert lerr <= 4 * SOFTMAX_REL[np.dtype(dtype)], f"logsumexp n={n}: {float(lerr):.3g}"


@pytest.mark.parametrize("n", [10, 1000, 100_000, 1_000_000, 3_000_001])
def test_float32_rows_sum_to_one(n):
    x = (np.random.default_rng(1).standard_normal((2, n)) * 4).astype(np.float32)
    x[1] = 0.0    # every entry equal: a plain float32 running sum drifts far off on long rows
    p = fs.softmax(x)
    sums = p.astype(np.float64).sum(axis=-1)
    assert np.all(np.abs(sums - 1) <= ROW_SUM_BOUND), sums - 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_near_zero_keep_full_precision(dtype):
    x = np.array([0.0, -40.0], dtype=dtype)
    want = math.log1p(math.exp(-40.0))            # 4.248354255291589e-18
    assert fs.logsumexp(x) == pytest.approx(want, rel=4 * SOFTMAX_REL[np.dtype(dtype)])
    assert fs.log_softmax(x)[0] == pytest.approx(-want, rel=4 * SOFTMAX_REL[np.dtype(dtype)])
    y = np.array([5.0, -30.0, -35.0], dtype=dtype)   # max != 0: still exact relative to 1
    want_lsm0 = -math.log1p(math.exp(-35.0) + math.exp(-40.0))
    assert fs.log_softmax(y)[0] == pytest.approx(want_lsm0, rel=4 * SOFTMAX_REL[np.dtype(dtype)])


@needs_wide
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_tail_is_not_flushed(dtype):
    info = np.finfo(dtype)
    depth = -math.log(float(info.tiny)) + 3      # exp(-depth) is subnormal
    x = np.array([0.0, -depth, -depth / 2], dtype=dtype)
    sm, _, _ = wide_results(x, 1.0)
    got = fs.softmax(x)
    assert got[1] > 0
    assert abs(WIDE(got[1]) - sm[1]) <= WIDE(info.smallest_subnormal)
