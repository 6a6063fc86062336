"""fastsoftmax against the pure-Python reference over the array zoo (shapes,
axes, memory layouts, tiles of tiny rows, strided axes) and the temperatures
0, 0.5, 1, 3 and inf, for every compiled instruction-set variant (AVX-512,
AVX2+FMA, baseline) the CPU has, switched in-process with
``fastsoftmax._rows._use_isa`` by the ``isa`` fixture (tests/conftest.py),
which switches back afterwards; float16, integer, list and scalar inputs.
Each kernel-table entry has its own per-variant tests in tests/kernels/.

One subprocess checks that FASTSOFTMAX_FORCE_ISA still picks the variant at
import time."""
import functools
import itertools
import math

import numpy as np
import pytest

from fastsoftmax import _rows
from util import (DTYPES, FUNCTIONS, ISA_WORDS, ISAS, assert_close, axes_for, layouts, logits, read_only_cache,
                  run_python, variant_in_use)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf, nan = math.inf, math.nan
TEMPS = [0.0, 0.5, 1.0, 3.0, inf]
# (33, n): tiles of tiny rows and the rows after them; (n, 70) and (2, n, 130): strided axes
ZOO = [(), (1,), (7,), (3, 1), (4, 17), (2, 3, 5), (3, 0), (0, 4), (2, 1000), (33, 1), (33, 3), (33, 8),
       (33, 16), (33, 17), (64, 5), (9, 70), (2, 5, 130)]


@read_only_cache
def _zoo_input(shape, dtype):
    x = logits(shape, dtype, seed=len(shape) + sum(shape))
    if x.ndim == 2 and min(x.shape) > 2:
        x[1, 1] = -inf
        x[2, 2] = x[2, 0]           # a tie for the maximum, or near it
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


@pytest.mark.parametrize("name", FUNCTIONS)
def test_float16_and_integer_inputs(name):
    fast, ref = FUNCTIONS[name]
    x16 = logits((4, 33), np.float16, seed=2, scale=2.0)
    got = fast(x16)
    assert got.dtype == np.float16
    # computed in float32, rounded once to float16
    want = ref(x16.astype(np.float32)).astype(np.float16)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=2e-3, atol=1e-7)
    for dt in (np.int8, np.int32, np.uint16, np.int64, np.bool_):
        xi = (np.arange(12).reshape(3, 4) % 5).astype(dt)
        assert_close(name, fast(xi), ref(xi), np.float64, f"input dtype {np.dtype(dt)}")
        assert fast(xi).dtype == np.float64


@pytest.mark.parametrize("name", FUNCTIONS)
def test_python_lists_and_scalars(name):
    fast, ref = FUNCTIONS[name]
    assert_close(name, fast([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), ref([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]),
                 np.float64)
    r = fast(2.5)
    assert isinstance(r, np.float64) and not isinstance(r, np.ndarray)


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
    printed = run_python(FORCED_SCRIPT, FASTSOFTMAX_FORCE_ISA="baseline")
    assert "baseline" in printed, printed
