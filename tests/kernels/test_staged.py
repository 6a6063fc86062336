"""The kernel table's ``staged_rows`` entry: 16-bit inputs (ml_dtypes.bfloat16
and float16), computed in float32 through a buffer in cache, and the
``dtype=`` keyword.

A 16-bit result is the float32 computation rounded once (to nearest even):
bit-identical to computing from the widened input and rounding with
ml_dtypes / NumPy, on every instruction-set variant, for any thread count;
and within the 16-bit dtype's rounding of the exact reference."""
import math
import subprocess
import sys

import numpy as np
import pytest

import fastsoftmax as fs
from util import FUNCTIONS, logits

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
HALVES = [BF16, F16]
inf, nan = math.inf, math.nan
# short rows (tiles, registers), rows one at a time, a long row (chunks)
SHAPES = [(5,), (33, 3), (40, 16), (17, 300), (2, 4, 257), (3, 70000)]

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def _input(shape, dtype, seed=0):
    x = logits(shape, np.float32, seed=seed)
    if x.ndim == 2 and x.shape[1] > 2:
        x[1, 1] = -inf
        x[2 % x.shape[0], 0] = x[2 % x.shape[0], 2]
    return x.astype(dtype)


def _bits(a):
    return np.asarray(a).view(np.uint16 if np.asarray(a).dtype.itemsize == 2 else np.uint32)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_rounded_float32_result(isa, shape, name, dtype):
    fast, ref = FUNCTIONS[name]
    x = _input(shape, dtype)
    wide = fast(x.astype(np.float32))
    got = fast(x)
    assert got.dtype == dtype
    assert np.array_equal(_bits(got), _bits(np.asarray(wide).astype(dtype)))
    assert np.array_equal(fast(x, dtype=np.float32), wide)
    # against the exact reference: one rounding of the 16-bit dtype, after float32's error
    want = np.asarray(ref(x), np.float64)
    got = np.asarray(got, np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.array_equal(np.isinf(got), np.isinf(want))
    assert np.array_equal(got[np.isinf(want)], want[np.isinf(want)])
    finite = np.isfinite(want)
    got, want = got[finite], want[finite]
    ulp = 2.0 ** -8 if dtype == BF16 else 2.0 ** -11
    scale = np.abs(want) if name == "softmax" else np.maximum(1.0, np.abs(want))
    assert np.all(np.abs(got - want) <= (ulp + 1e-5) * scale + 1e-30)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_float64_result_is_computed_in_float64(dtype):
    x = _input((6, 300), dtype)
    for name, (fast, ref) in FUNCTIONS.items():
        got = fast(x, dtype=np.float64)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, ref(x.astype(np.float64)), rtol=1e-13, atol=1e-300, err_msg=name)


@pytest.mark.parametrize("shape", [(256, 300), (40, 5), (9, 3000), (2, 70000), (3, 1)], ids=str)
def test_threads_do_not_change_results(shape):
    for dtype in HALVES:
        x = _input(shape, dtype, seed=3)
        for fast, _ in FUNCTIONS.values():
            one = fast(x, num_threads=1)
            for threads in (2, 3):
                assert np.array_equal(_bits(fast(x, num_threads=threads)), _bits(one))


def test_conversions_are_exact_and_round_to_nearest_even(isa):
    # logsumexp over rows of one entry returns the entry: a pure conversion
    f16_bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    f16 = f16_bits.view(np.float16)
    f16 = f16[~np.isnan(f16) & ~((f16 == 0) & np.signbit(f16))].reshape(-1, 1)   # logsumexp(-0) is +0
    assert np.array_equal(fs.logsumexp(f16, dtype=np.float32), f16[:, 0].astype(np.float32))
    assert np.array_equal(_bits(fs.logsumexp(f16)), _bits(f16[:, 0]))
    # float16 -> bfloat16 rounds 3 bits off (ties included); bfloat16 -> float16 overflows and underflows
    assert np.array_equal(_bits(fs.logsumexp(f16, dtype=BF16)), _bits(f16[:, 0].astype(np.float32).astype(BF16)))
    bf16 = f16_bits.view(BF16)
    wide = bf16.astype(np.float32)
    bf16 = bf16[~np.isnan(wide) & ~((wide == 0) & np.signbit(wide))].reshape(-1, 1)
    assert np.array_equal(fs.logsumexp(bf16, dtype=np.float32), bf16[:, 0].astype(np.float32))
    with np.errstate(over="ignore"):
        assert np.array_equal(_bits(fs.logsumexp(bf16, dtype=F16)), _bits(bf16[:, 0].astype(np.float32).astype(F16)))


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_special_value_rows(dtype):
    rows = np.array([[1.0, nan, 2.0], [1.0, inf, 2.0], [-inf, -inf, -inf], [0.0, -inf, 1.0]], np.float32)
    x = rows.astype(dtype)
    for name, (fast, _) in FUNCTIONS.items():
        got = np.asarray(fast(x), np.float32)
        want = np.asarray(fast(x.astype(np.float32))).astype(dtype).astype(np.float32)
        assert np.array_equal(got, want, equal_nan=True), name
        assert np.isnan(got[:3]).all() if name != "logsumexp" else np.array_equal(got[:3], [nan, inf, -inf], equal_nan=True)


def test_dtype_keyword():
    x = logits((4, 50), np.float64, seed=4)
    assert np.array_equal(fs.softmax(x, dtype=np.float32), fs.softmax(x).astype(np.float32))
    assert np.array_equal(_bits(fs.log_softmax(x, dtype="bfloat16")), _bits(fs.log_softmax(x).astype(BF16)))
    assert fs.logsumexp(x.astype(np.float32), dtype=np.float64).dtype == np.float64
    out = np.empty((4, 50), np.float32)
    assert fs.softmax(x.astype(BF16), dtype=np.float32, out=out) is out
    assert np.array_equal(out, fs.softmax(x.astype(BF16).astype(np.float32)))
    for bad in (np.int32, "complex64", "not a dtype"):
        with pytest.raises(TypeError, match="dtype must be None or float16, bfloat16"):
            fs.softmax(x, dtype=bad)


def test_out_of_the_wrong_dtype_is_refused():
    x = _input((3, 5), BF16)
    with pytest.raises(TypeError, match="out has dtype"):
        fs.softmax(x, out=np.empty((3, 5), np.float32))


def test_importing_fastsoftmax_does_not_import_ml_dtypes():
    code = ("import sys, numpy, fastsoftmax\n"
            "fastsoftmax.softmax(numpy.ones((2, 3), numpy.float16))\n"
            "assert 'ml_dtypes' not in sys.modules, 'ml_dtypes was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
