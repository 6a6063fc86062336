"""Every compiled instruction-set variant (AVX-512, AVX2+FMA, baseline) the
CPU has passes a representative set of checks, switched in-process with
``fastsoftmax._rows._use_isa`` by the ``isa`` fixture (tests/conftest.py),
which switches back afterwards: equivalence with the reference over the
array zoo (shapes, axes, memory layouts, tiles of tiny rows, strided axes),
long rows split into chunks, the special-value table and the temperatures
0, 0.5, 1, 3 and inf.  test_tiles.py and test_columns.py run their own
checks per variant as well.

One subprocess checks that FASTSOFTMAX_FORCE_ISA still picks the variant at
import time."""
import functools
import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _rows
from util import (DTYPES, FUNCTIONS, ISA_WORDS, ISAS, SPECIAL_TABLE, assert_close, axes_for, layouts, logits,
                  oracle, variant_in_use)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf, nan = math.inf, math.nan
TEMPS = [0.0, 0.5, 1.0, 3.0, inf]
# (33, n): tiles of tiny rows and the rows after them; (n, 70) and (2, n, 130): strided axes
ZOO = [(), (1,), (7,), (3, 1), (4, 17), (2, 3, 5), (3, 0), (0, 4), (2, 1000), (33, 1), (33, 3), (33, 8),
       (33, 16), (33, 17), (64, 5), (9, 70), (2, 5, 130)]


@functools.lru_cache(maxsize=None)
def _zoo_input(shape, dtype):
    x = logits(shape, dtype, seed=len(shape) + sum(shape))
    if x.ndim == 2 and min(x.shape) > 2:
        x[1, 1] = -inf
        x[2, 2] = x[2, 0]           # a tie for the maximum, or near it
    x.flags.writeable = False
    return x


@functools.lru_cache(maxsize=None)
def _zoo_want(name, shape, dtype, axis, t):
    return FUNCTIONS[name][1](_zoo_input(shape, dtype), axis=axis, temperature=t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ZOO, ids=str)
def test_zoo_every_variant(isa, shape, dtype):
    base = _zoo_input(shape, dtype)
    for (layout, x), axis in itertools.product(layouts(base), axes_for(len(shape))):
        for t in TEMPS if layout in ("C", "F") else [1.0]:
            for name, (fast, _) in FUNCTIONS.items():
                assert_close(name, fast(x, axis=axis, temperature=t), _zoo_want(name, shape, dtype, axis, t), dtype,
                             f"{isa} shape={shape} axis={axis} layout={layout} T={t}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_lengths_and_misaligned_starts_every_variant(isa, dtype):
    for n in list(range(1, 70)) + [127, 128, 129, 255, 257]:
        buf = logits(3 * n + 1, dtype, seed=n)
        x = buf[1:].reshape(3, n)                  # rows start off the vector alignment
        x[1, n // 2] = -inf
        for t in (1.0, 0.5):
            for name, (fast, ref) in FUNCTIONS.items():
                assert_close(name, fast(x, temperature=t), ref(x, temperature=t), dtype, f"{isa} n={n} T={t}")


@functools.lru_cache(maxsize=None)
def _long_rows(dtype, n):
    x = logits((3, n), dtype, seed=n)
    x[0, [10, 40_000, n - 1]] = x[0].max() + 1     # ties for the maximum in three chunks
    x[1, ::5] = -inf
    x[2, 50_000] = nan
    x.flags.writeable = False
    return x


@functools.lru_cache(maxsize=None)
def _long_want(name, dtype, n, t):
    x = _long_rows(dtype, n)
    if 0 < t < inf:
        return oracle(name, x[:2], temperature=t)
    return FUNCTIONS[name][1](x[:2], temperature=t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [65_536 + 3, 3 * 32_768 + 5])
def test_long_rows_every_variant(isa, dtype, n):
    """Rows longer than 65536 elements: chunk statistics merged in order."""
    x = _long_rows(dtype, n)
    for t in TEMPS:
        for name, (fast, _) in FUNCTIONS.items():
            got = fast(x, temperature=t)
            assert_close(name, got[:2], _long_want(name, dtype, n, t), dtype, f"{isa} n={n} T={t}")
            assert np.isnan(got[2]).all(), f"{isa} {name} NaN row n={n} T={t}"
            np.testing.assert_array_equal(fast(x, temperature=t, num_threads=2), got)


TABLE = SPECIAL_TABLE


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_value_table_every_variant(isa, dtype):
    for row, sm, lsm, lse in TABLE:
        x = np.array([row, [1.0, 2.0, 3.0][: len(row)]], dtype=dtype)
        np.testing.assert_allclose(fs.softmax(x)[0], np.array(sm, dtype), rtol=1e-6, err_msg=f"{isa} {row}")
        np.testing.assert_allclose(fs.log_softmax(x)[0], np.array(lsm, dtype), rtol=1e-6, err_msg=f"{isa} {row}")
        np.testing.assert_allclose(fs.logsumexp(x)[0], lse, rtol=1e-6, err_msg=f"{isa} {row}")
        # the special row every other row of a batch (tiles), padded with -inf
        # entries (longer rows), and down a strided axis
        for n_pad in (0, 1, 13, 100):
            pad = [] if row == [-inf, -inf] else [-inf] * n_pad
            x = np.array([row + pad, [1.0, 2.0, 3.0][: len(row)] + [0.5] * len(pad)] * 20, dtype=dtype)
            for name, (fast, ref) in FUNCTIONS.items():
                want = ref(x)
                assert_close(name, fast(x), want, dtype, f"{isa} {row} pad={n_pad}")
                assert_close(name, fast(np.ascontiguousarray(x.T), axis=0), want.T, dtype,
                             f"{isa} {row} pad={n_pad} strided")


@pytest.mark.parametrize("dtype", DTYPES)
def test_temperature_limits_every_variant(isa, dtype):
    x = np.array([[2.0, 1.0, 0.5], [3.0, -1.0, 3.0], [inf, 1.0, inf], [1.0, nan, 2.0], [5.0, -inf, 1.0]] * 7,
                 dtype=dtype)
    for t in TEMPS:
        for axis, xx in ((-1, x), (0, np.ascontiguousarray(x.T))):
            for name, (fast, ref) in FUNCTIONS.items():
                assert_close(name, fast(xx, axis=axis, temperature=t), ref(xx, axis=axis, temperature=t), dtype,
                             f"{isa} T={t} axis={axis}")


def test_unavailable_variant_raises_and_changes_nothing():
    before, previous = _rows.simd_target(), variant_in_use()
    with pytest.raises(ValueError, match="not available"):
        _rows._use_isa("sse9")
    assert _rows.simd_target() == before
    available = []
    try:
        for name in ISAS:
            try:
                _rows._use_isa(name)
                available.append(name)
            except ValueError:
                pass
        _rows._use_isa("best")
        assert ISA_WORDS[available[0]] in _rows.simd_target()    # "best" is the best one available
    finally:
        _rows._use_isa(previous)
    assert "baseline" in available
    # the variants form a ladder: a CPU with one has every one below it
    assert available == list(ISAS[ISAS.index(available[0]):])


FORCED_SCRIPT = r"""
import numpy as np, fastsoftmax as fs
from fastsoftmax import reference
x = (np.random.default_rng(0).standard_normal((40, 5)) * 4).astype(np.float32)
x[3, 1] = -np.inf
y = np.ascontiguousarray(x[:, :4].T)
for t in (1.0, 0.5, 0.0):
    for f, r in ((fs.softmax, reference.softmax), (fs.log_softmax, reference.log_softmax),
                 (fs.logsumexp, reference.logsumexp)):
        for a, axis in ((x, -1), (y, 0)):
            got, want = f(a, axis=axis, temperature=t), r(a, axis=axis, temperature=t)
            assert np.allclose(got, want, rtol=1e-5, atol=1e-30, equal_nan=True), (f.__name__, t, axis)
print(fs.build_info()["simd"])
"""


def test_forced_baseline_by_environment():
    env = dict(os.environ, FASTSOFTMAX_FORCE_ISA="baseline")
    proc = subprocess.run([sys.executable, "-c", FORCED_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "baseline" in proc.stdout, proc.stdout
