"""fastsoftmax against the pure-Python reference over shapes, dtypes, axes,
temperatures and memory layouts."""
import itertools
import math

import numpy as np
import pytest

from util import DTYPES, FUNCTIONS, assert_close, axes_for, layouts, logits

TEMPERATURES = [1.0, 0.7, 2.0, 0.05, 0.0, math.inf]
SHAPES = [(), (1,), (7,), (3, 1), (4, 17), (2, 3, 5), (3, 0), (0, 4), (2, 1000)]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_shapes_axes_layouts(name, dtype, shape):
    fast, ref = FUNCTIONS[name]
    base = logits(shape, dtype, seed=len(shape))
    for (layout, x), axis in itertools.product(layouts(base), axes_for(len(shape))):
        for t in TEMPERATURES if len(shape) < 3 else [1.0]:
            context = f"shape={shape} axis={axis} layout={layout} T={t}"
            assert_close(name, fast(x, axis=axis, temperature=t), ref(base, axis=axis, temperature=t),
                         dtype, context)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_row_length_covers_simd_tails(name, dtype):
    fast, ref = FUNCTIONS[name]
    for n in range(1, 66):
        x = logits((3, n), dtype, seed=n)
        x[1, n // 2] = -np.inf            # a masked entry somewhere in the row
        for t in (1.0, 0.3):
            assert_close(name, fast(x, temperature=t), ref(x, temperature=t), dtype, f"n={n} T={t}")


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [65536 + 3, 3 * 32768])   # several kernel chunks per row
def test_long_rows(name, dtype, n):
    fast, ref = FUNCTIONS[name]
    x = logits((2, n), dtype, seed=5)
    for t in (1.0, 3.0):
        assert_close(name, fast(x, temperature=t), ref(x, temperature=t), dtype, f"n={n} T={t}")


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
