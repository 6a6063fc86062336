"""The kernel table's ``columns`` entry: the strided-axis kernel.

Reducing one axis that is not the last of a C-contiguous array (axis 0, a
middle axis), or any single axis of a Fortran-ordered array (computed as its
C-ordered transpose; the result is Fortran-ordered too), reduces bands of
adjacent columns side by side: each vector lane is one column, walked down
the strided axis.  Full bands are 8 vectors wide (128 float32 / 64 float64
lanes with AVX-512), the rest goes one vector at a time, the last one
partial.  Widths here run 1..70 and around 128 and 256 lanes; lengths of the
reduced axis 0..300."""
import functools
import math

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference
from util import (DTYPES, FUNCTIONS, ROW_SUM_BOUND, SPECIAL_KINDS, assert_close, logits, oracle, read_only_cache,
                  special_values)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf = math.inf
TEMPS = [0.0, 0.5, 1.0, 3.0, inf]
INNERS = list(range(1, 71)) + [127, 128, 129, 255, 256, 257]
LENGTHS = [0, 1, 2, 3, 5, 8, 9, 16, 17, 31, 33, 64, 100, 300]


def _cases():
    """(shape, axis, T, seed): every width in INNERS with two lengths of the
    reduced axis, as axis 0 of a 2-D array or axis 1 of a 3-D one, the
    temperatures in turn."""
    out = []
    for i, inner in enumerate(INNERS):
        for j, n in enumerate((LENGTHS[i % len(LENGTHS)], LENGTHS[(5 * i + 3) % len(LENGTHS)])):
            t = TEMPS[(i + 2 * j) % len(TEMPS)]
            shape, axis = ((n, inner), 0) if (i + j) % 2 else ((2, n, inner), 1)
            out.append((shape, axis, t, 10 * i + j))
    return out


CASES = _cases()


@read_only_cache
def _input(dtype, shape, seed):
    """Logits with ties for the maximum (multiples of 1/4) in every other
    array and about one -inf in 20 entries."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 4
    if seed % 2:
        x = np.round(x * 4) / 4
    x[rng.random(shape) < 0.05] = -inf
    return x.astype(dtype)


@functools.lru_cache(maxsize=None)
def _want(name, dtype, shape, seed, axis, t):
    return FUNCTIONS[name][1](_input(dtype, shape, seed), axis=axis, temperature=t)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_axis_matches_the_reference(isa, name, dtype):
    for shape, axis, t, seed in CASES:
        got = FUNCTIONS[name][0](_input(dtype, shape, seed), axis=axis, temperature=t)
        assert_close(name, got, _want(name, dtype, shape, seed, axis, t), dtype,
                     f"{isa} shape={shape} axis={axis} T={t}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_per_column(isa, dtype):
    """Columns of every special kind (NaN, +inf, all -inf, some -inf, huge
    finite values, ties) in full bands, in the one-vector rest and in its
    partial last vector: each follows the special-value table, and the
    ordinary columns around them are unaffected."""
    rng = np.random.default_rng(1)
    for inner in (37, 133):
        for n in (1, 2, 9, 17, 300):
            x = logits((n, inner), dtype, seed=n + inner)
            cols = sorted({c for c in (0, 1, 2, 3, 5, 8, 9, 16, 63, 64, 127, 128, 130, inner - 2, inner - 1)
                           if c < inner})
            for k, c in enumerate(cols):
                x[:, c] = special_values(SPECIAL_KINDS[k % len(SPECIAL_KINDS)], n, 7 * c, dtype, rng)
            for t in TEMPS:
                for name, (fast, ref) in FUNCTIONS.items():
                    want = _special_want(name, dtype, inner, n, t, x.tobytes())
                    assert_close(name, fast(x, axis=0, temperature=t), want, dtype,
                                 f"{isa} special columns n={n} inner={inner} T={t}")
                    xf = np.asfortranarray(x.T)          # the same columns, reduced along axis 1 of F order
                    assert_close(name, fast(xf, axis=1, temperature=t), want.T, dtype,
                                 f"{isa} F order, special columns n={n} inner={inner} T={t}")


@functools.lru_cache(maxsize=None)
def _special_want(name, dtype, inner, n, t, data):
    x = np.frombuffer(data, dtype=dtype).reshape(n, inner)
    return FUNCTIONS[name][1](x, axis=0, temperature=t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("inner", [1, 2, 5, 16, 130])
def test_empty_reduced_axis(dtype, inner):
    for shape, axis in (((0, inner), 0), ((3, 0, inner), 1)):
        for order in "CF":
            x = np.zeros(shape, dtype=dtype, order=order)
            reduced = tuple(s for a, s in enumerate(shape) if a != axis)
            for t in TEMPS:
                for name in ("softmax", "log_softmax"):
                    r = FUNCTIONS[name][0](x, axis=axis, temperature=t)
                    assert r.shape == shape and r.dtype == dtype, (name, shape, order)
                lse = fs.logsumexp(x, axis=axis, temperature=t)
                np.testing.assert_array_equal(lse, np.full(reduced, -inf, dtype=dtype))
                np.testing.assert_array_equal(lse, reference.logsumexp(x, axis=axis, temperature=t))
                kept = fs.logsumexp(x, axis=axis, temperature=t, keepdims=True)
                assert kept.shape == tuple(1 if a == axis else s for a, s in enumerate(shape))
                assert np.all(kept == -inf) and kept.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 7, 9), (40, 3, 130), (2, 70, 3), (1, 1, 129)], ids=str)
def test_fortran_order_any_axis(dtype, shape):
    """Every single axis of a Fortran-ordered array: the reference's values,
    and a Fortran-ordered result, as NumPy's ufuncs keep the layout."""
    base = logits(shape, dtype, seed=sum(shape))
    base[0, ..., 0] = -inf
    x = np.asfortranarray(base)
    for axis in range(len(shape)):
        for t in (1.0, 0.5, 0.0):
            for name, (fast, ref) in FUNCTIONS.items():
                r = fast(x, axis=axis, temperature=t)
                assert_close(name, r, ref(base, axis=axis, temperature=t), dtype, f"F order axis={axis} T={t}")
                assert r.flags.f_contiguous, (name, axis)
        kept = fs.logsumexp(x, axis=axis, keepdims=True)
        assert_close("logsumexp", kept, reference.logsumexp(base, axis=axis, keepdims=True), dtype, f"axis={axis}")
    np.testing.assert_array_equal(x, base)                # x untouched


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_keepdims_along_a_strided_axis(dtype):
    x = logits((3, 45, 70), dtype, seed=2)
    for axis in (0, 1):
        for t in TEMPS:
            flat = fs.logsumexp(x, axis=axis, temperature=t)
            kept = fs.logsumexp(x, axis=axis, temperature=t, keepdims=True)
            assert kept.shape == tuple(1 if a == axis else s for a, s in enumerate(x.shape))
            np.testing.assert_array_equal(kept, np.expand_dims(flat, axis))
            assert_close("logsumexp", kept, reference.logsumexp(x, axis=axis, temperature=t, keepdims=True), dtype,
                         f"axis={axis} T={t}")
            out = np.empty_like(kept)
            assert fs.logsumexp(x, axis=axis, temperature=t, keepdims=True, out=out) is out
            np.testing.assert_array_equal(out, kept)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_out_layouts(name, dtype):
    """out= along a strided axis: the result's own layout (C for a C input,
    F for an F input) is written directly; another layout or a
    non-contiguous view still gets the right values, through a copy."""
    fast, ref = FUNCTIONS[name]
    base = logits((33, 130), dtype, seed=4)
    base[:, 7] = -inf
    base[3, 8] = np.nan
    for x, axis in ((base, 0), (np.asfortranarray(base), 0), (np.ascontiguousarray(base.T), 1),
                    (np.asfortranarray(base.T), 1)):
        want = ref(x, axis=axis)
        shape = want.shape
        outs = [np.empty(shape, dtype, order="C"), np.empty(shape, dtype, order="F"),
                np.empty(shape + (2,), dtype)[..., 1]]
        for out in outs:
            out[...] = 99.0
            assert fast(x, axis=axis, out=out) is out
            context = f"x {'F' if x.flags.f_contiguous and not x.flags.c_contiguous else 'C'} axis={axis} out " \
                      f"C={out.flags.c_contiguous} F={out.flags.f_contiguous}"
            assert_close(name, out, want, dtype, context)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_and_overlapping_out(name, dtype):
    fast, ref = FUNCTIONS[name]
    base = logits((40, 70), dtype, seed=5)
    base[:, 3] = -inf
    for order, axis in (("C", 0), ("F", 1), ("C", 0)):
        x = np.array(base, order=order)
        want = fast(x, axis=axis)
        assert_close(name, want, ref(base, axis=axis), dtype, f"{order} axis={axis}")
        y = x.copy(order="K")
        assert fast(y, axis=axis, out=y) is y
        np.testing.assert_array_equal(y, want, err_msg=f"in place, {order} axis={axis}")
    # out is x shifted by one row or one element in a shared buffer: a copy makes it exact
    for shift in (70, 1, -1, -70):
        buf = np.zeros(base.size + abs(shift), dtype)
        src = buf[max(0, -shift):][: base.size].reshape(base.shape)
        dst = buf[max(0, shift):][: base.size].reshape(base.shape)
        src[...] = base
        assert fast(src, axis=0, out=dst) is dst
        np.testing.assert_array_equal(dst, fast(base, axis=0), err_msg=f"shift {shift}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_columns_do_not_depend_on_their_band(isa, dtype):
    """Each column is its own reduction: computed in a narrower array (other
    bands, a partial last vector, another stride) it has the same bits.  The
    thread loops split columns into bands the same way."""
    x = logits((50, 300), dtype, seed=6)
    x[::4, 100:140] = -inf
    x[7, 3] = np.nan
    for name, (fast, _) in FUNCTIONS.items():
        for t in (1.0, 0.5, 0.0):
            whole = fast(x, axis=0, temperature=t)
            for j0, k in ((0, 129), (1, 64), (5, 3), (127, 2), (100, 157), (290, 10), (255, 45)):
                part = fast(np.ascontiguousarray(x[:, j0:j0 + k]), axis=0, temperature=t)
                np.testing.assert_array_equal(part, whole[..., j0:j0 + k], err_msg=f"{isa} {name} T={t} {j0}+{k}")


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,axis", [((400, 2000), 0), ((6, 300, 500), 1), ((3000, 40), 0)], ids=str)
def test_thread_count_does_not_change_strided_results(name, shape, axis):
    """Large arrays (above the 32768 elements from which calls use threads);
    where the process may use only one CPU (taskset) num_threads is capped
    to 1 and only the values are checked."""
    fast = FUNCTIONS[name][0]
    x = logits(shape, np.float32, seed=8)
    one = fast(x, axis=axis, num_threads=1)
    np.testing.assert_array_equal(fast(x, axis=axis, num_threads=2), one)
    np.testing.assert_array_equal(fast(x, axis=axis), one)
    assert_close(name, one, oracle(name, x, axis=axis), np.float32, f"shape={shape}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_strided_axis(dtype):
    """200,000 entries down each column: float32 sums of the softmax stay
    within 2e-6 of 1 (entries all equal: where a plain float32 running sum
    drifts), values within the bounds."""
    n = 200_000
    x = logits((n, 3), dtype, seed=9)
    x[:, 1] = 0.5
    for name in FUNCTIONS:
        for t in (1.0, 0.7):
            assert_close(name, FUNCTIONS[name][0](x, axis=0, temperature=t), oracle(name, x, axis=0, temperature=t),
                         dtype, f"n={n} T={t}")
    sums = fs.softmax(x, axis=0).astype(np.float64).sum(axis=0)
    assert np.all(np.abs(sums - 1) <= ROW_SUM_BOUND), sums - 1
