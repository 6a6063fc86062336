"""Argument handling: dtype rules, errors, out=, keepdims, threads."""
import concurrent.futures
import math

import numpy as np
import pytest

import fastsoftmax as fs
from util import FUNCTIONS, assert_close, logits

ALL = list(FUNCTIONS)


def call(name, *args, **kwargs):
    return FUNCTIONS[name][0](*args, **kwargs)


def result_shape(name, shape):
    return shape[:-1] if name == "logsumexp" else shape


# Every error path is swept in test_hardening.py; here: the accepted forms.

@pytest.mark.parametrize("name", ALL)
def test_temperature_accepted_forms(name):
    x = np.zeros(3)
    want = call(name, x, temperature=2.0)
    for t in (2, np.float32(2.0), np.int64(2), np.array(2.0)):
        np.testing.assert_array_equal(call(name, x, temperature=t), want)
    # a Python int beyond the float range is +inf
    np.testing.assert_array_equal(call(name, np.arange(3.0), temperature=10**400),
                                  call(name, np.arange(3.0), temperature=math.inf))


@pytest.mark.parametrize("name", ALL)
def test_num_threads_huge_is_capped(name):
    x = np.zeros(3)
    np.testing.assert_array_equal(call(name, x, num_threads=10**12), call(name, x))
    np.testing.assert_array_equal(call(name, x, num_threads=np.int64(3)), call(name, x))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_out_is_filled_and_returned(name, dtype):
    x = logits((5, 6), dtype)
    want = call(name, x)
    out = np.empty(result_shape(name, x.shape), dtype=dtype)
    assert call(name, x, out=out) is out
    np.testing.assert_array_equal(out, want)
    # non-contiguous out
    big = np.empty(result_shape(name, x.shape) + (2,), dtype=dtype)
    view = big[..., 1]
    assert call(name, x, out=view) is view
    np.testing.assert_array_equal(view, want)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_in_place_and_partial_overlap(name, axis):
    x = logits((6, 40), np.float64, seed=3)
    want = call(name, x.copy(), axis=axis)
    y = x.copy()
    assert call(name, y, axis=axis, out=y) is y
    np.testing.assert_allclose(y, want, rtol=1e-15, atol=0)
    # out is x shifted by one row / by one element inside a shared buffer
    for shift in (40, 1, -40, -1):
        buf = np.zeros(6 * 40 + abs(shift))
        src = buf[max(0, -shift):][: 6 * 40].reshape(6, 40)
        dst = buf[max(0, shift):][: 6 * 40].reshape(6, 40)
        src[...] = x
        assert call(name, src, axis=axis, out=dst) is dst
        np.testing.assert_allclose(dst, want, rtol=1e-15, atol=0, err_msg=f"shift {shift}")
    # out is x transposed (same memory, different layout)
    sq = logits((8, 8), np.float64, seed=4)
    want_sq = call(name, sq.copy(), axis=axis)
    call(name, sq, axis=axis, out=sq.T)
    np.testing.assert_allclose(sq.T, want_sq, rtol=1e-15)


def test_logsumexp_out_overlapping_input():
    x = logits((8, 8), np.float64, seed=6)
    want = fs.logsumexp(x.copy())
    fs.logsumexp(x, out=x[0])
    np.testing.assert_allclose(x[0], want, rtol=1e-15)


@pytest.mark.parametrize("name", ALL)
def test_input_never_modified_and_result_layouts(name):
    """New results are C-contiguous, except that a Fortran-ordered input
    reduced over one axis gives a Fortran-ordered result (NumPy's ufuncs keep
    the layout the same way), computed without a transposed copy."""
    xc = logits((7, 9, 3), np.float32)
    x = np.asfortranarray(xc)
    x0 = x.copy()
    for axis in (0, 1, (0, 2), None, -1):
        r = call(name, x, axis=axis)
        np.testing.assert_allclose(r, call(name, xc, axis=axis), rtol=8e-6, atol=1e-7)
        if isinstance(r, np.ndarray):
            if isinstance(axis, int):
                assert r.flags.f_contiguous and r.flags.owndata
            else:
                assert r.flags.c_contiguous
        if isinstance(axis, int) and isinstance(r, np.ndarray):
            assert call(name, xc, axis=axis).flags.c_contiguous
    np.testing.assert_array_equal(x, x0)


def test_keepdims_and_log_softmax_identity():
    x = logits((3, 4, 5), np.float64)
    for axis in (-1, 0, (0, 2), None):
        for t in (1.0, 0.5, 3.0):
            lse = fs.logsumexp(x, axis=axis, temperature=t, keepdims=True)
            assert lse.ndim == 3
            np.testing.assert_allclose(fs.log_softmax(x, axis=axis, temperature=t), (x - lse) / t,
                                       rtol=1e-13, atol=1e-13)
            assert fs.logsumexp(x, axis=axis, temperature=t).shape == np.sum(x, axis=axis).shape


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(4096, 64), (3, 200_000), (1, 300_001), (50, 5000)])
def test_results_do_not_depend_on_thread_count(name, shape):
    x = logits(shape, np.float32, seed=7)
    x[0, ::7] = -np.inf
    one = call(name, x, num_threads=1)
    for n in (2, 3, 8):
        np.testing.assert_array_equal(call(name, x, num_threads=n), one, err_msg=f"{n} threads")
    np.testing.assert_array_equal(call(name, x), one)


def test_concurrent_python_threads():
    xs = [logits((64, 3000), dt, seed=s) for s, dt in enumerate([np.float32, np.float64] * 4)]
    jobs = [(name, x) for name in ALL for x in xs]
    serial = [call(name, x) for name, x in jobs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            results = list(pool.map(lambda job: call(job[0], job[1], num_threads=2), jobs))
            for got, want in zip(results, serial):
                np.testing.assert_array_equal(got, want)


def test_build_info():
    info = fs.build_info()
    assert info["version"] == fs.__version__
    assert isinstance(info["openmp"], bool) and info["default_threads"] >= 1
    assert isinstance(info["simd"], str)


def test_openmp_default_follows_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not fs.build_info()["openmp"]:
        pytest.skip("built without OpenMP")
    x = logits((64, 4096), np.float32)
    want = fs.softmax(x, num_threads=1)
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fs.build_info()["default_threads"] == 1
        np.testing.assert_array_equal(fs.softmax(x), want)


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)])
def test_drop_in_for_scipy_special(axis):
    special = pytest.importorskip("scipy.special")
    x = logits((3, 4, 5), np.float64, seed=11)
    np.testing.assert_allclose(fs.softmax(x, axis=axis), special.softmax(x, axis=axis), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(fs.log_softmax(x, axis=axis), special.log_softmax(x, axis=axis), rtol=1e-13)
    np.testing.assert_allclose(fs.logsumexp(x, axis=axis), special.logsumexp(x, axis=axis), rtol=1e-13)
    np.testing.assert_allclose(fs.logsumexp(x, axis=axis, keepdims=True),
                               special.logsumexp(x, axis=axis, keepdims=True), rtol=1e-13)


@pytest.mark.parametrize("t", [1.0, 0.5, 0.0, np.inf])
def test_chunked_long_rows_with_special_values(t):
    """Rows long enough to be split into chunks across threads, with NaN, +inf
    and -inf sitting in different chunks: same as one thread and the reference."""
    n = 3 * 32768 + 5
    x = logits((6, n), np.float32, seed=3)
    x[0, 40000] = np.nan
    x[1, 70000] = np.inf
    x[2, :] = -np.inf
    x[3, ::3] = -np.inf
    x[4, [10, 50000, n - 1]] = x[4].max() + 1     # ties for the maximum in three chunks
    for name in ALL:
        fast, ref = FUNCTIONS[name]
        one = fast(x, temperature=t, num_threads=1)
        np.testing.assert_array_equal(fast(x, temperature=t, num_threads=2), one, err_msg=name)
        assert_close(name, one, ref(x, temperature=t), np.float32, f"T={t}")


# ---- out= in the compiled fast path (fastsoftmax._rows.try_fast) ----------------

@pytest.fixture
def general_calls(monkeypatch):
    """Ops that went through fastsoftmax._api._apply (the general path) rather
    than the compiled fast path, in call order."""
    from fastsoftmax import _api

    calls = []
    real = _api._apply

    def spy(op, *args, **kwargs):
        calls.append(_api._NAMES[op])
        return real(op, *args, **kwargs)

    monkeypatch.setattr(_api, "_apply", spy)
    return calls


def _fast_path_cases(dtype):
    """(x, axis, keepdims) whose results the fast path writes straight into a
    matching out: C inputs along the last, first and a middle axis, Fortran
    inputs along every axis."""
    c2 = logits((6, 40), dtype, seed=1)
    c2[2, ::3] = -np.inf
    c3 = logits((3, 17, 5), dtype, seed=2)
    for x in (c2, c3, np.asfortranarray(c2), np.asfortranarray(c3)):
        for axis in range(-1, x.ndim - 1):
            yield x, axis


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_fast_path_matching_layout(general_calls, name, dtype):
    fast, ref = FUNCTIONS[name]
    for x, axis in _fast_path_cases(dtype):
        order = "F" if not x.flags.c_contiguous else "C"
        plain = fast(x, axis=axis)
        want = ref(x, axis=axis)
        for keepdims in ((False, True) if name == "logsumexp" else (False,)):
            shape = want.shape if not keepdims else tuple(1 if a == axis % x.ndim else s
                                                          for a, s in enumerate(x.shape))
            out = np.full(shape, 99.0, dtype=dtype, order=order)
            kw = {"keepdims": True} if keepdims else {}
            assert fast(x, axis=axis, out=out, **kw) is out
            np.testing.assert_array_equal(out.reshape(plain.shape), plain, err_msg=f"{order} axis={axis}")
            assert_close(name, out.reshape(want.shape), want, dtype, f"{order} axis={axis}")
    assert general_calls == [], "a matching out= left the fast path"
    # a 0-d out for logsumexp over a 1-D input
    if name == "logsumexp":
        v = logits(9, dtype)
        out0 = np.zeros((), dtype)
        assert fs.logsumexp(v, out=out0) is out0
        assert out0 == fs.logsumexp(v)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_fast_path_in_place(general_calls, name, dtype):
    fast = FUNCTIONS[name][0]
    for x, axis in _fast_path_cases(dtype):
        want = fast(x, axis=axis)
        y = x.copy(order="K")
        assert fast(y, axis=axis, out=y) is y
        np.testing.assert_array_equal(y, want, err_msg=f"axis={axis} C={x.flags.c_contiguous}")
    assert general_calls == []


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_partly_overlapping_x_is_exact(general_calls, name, dtype):
    """out overlapping x without being x goes to the general path, which
    computes into a fresh buffer and copies: for a C input exactly the plain
    result (the same kernel); for an F input, which the general path copies
    to C order first, the reference's values within the bounds."""
    fast, ref = FUNCTIONS[name]
    x0 = logits((6, 40), dtype, seed=3)
    for order in "CF":
        x0 = np.array(x0, order=order)
        for axis in (-1, 0):
            want = fast(x0, axis=axis) if order == "C" else ref(x0, axis=axis)
            for shift in (1, 40, -1, -6):
                buf = np.zeros(x0.size + abs(shift), dtype)
                src = np.ndarray(x0.shape, dtype, buf, max(0, -shift) * buf.itemsize, order=order)
                dst = np.ndarray(x0.shape, dtype, buf, max(0, shift) * buf.itemsize, order=order)
                src[...] = x0
                del general_calls[:]
                assert fast(src, axis=axis, out=dst) is dst
                assert general_calls == [name]
                if order == "C":
                    np.testing.assert_array_equal(dst, want, err_msg=f"axis={axis} shift={shift}")
                else:
                    assert_close(name, dst, want, dtype, f"F axis={axis} shift={shift}")


@pytest.mark.parametrize("name", ALL)
def test_out_of_another_layout_takes_the_general_path(general_calls, name):
    fast, ref = FUNCTIONS[name]
    for x, axis in _fast_path_cases(np.float32):
        want = ref(x, axis=axis)
        if want.ndim < 2:
            continue                     # 0-d and 1-D results are both C and F ordered
        other = "C" if not x.flags.c_contiguous else "F"
        out = np.full(want.shape, 99.0, np.float32, order=other)
        del general_calls[:]
        assert fast(x, axis=axis, out=out) is out
        assert general_calls == [name]
        assert_close(name, out, want, np.float32, f"out {other} axis={axis}")


@pytest.mark.parametrize("name", ALL)
def test_bad_out_with_fast_path_inputs_raises_and_writes_nothing(general_calls, name):
    """Inputs the fast path would take, with an out it must refuse: the same
    errors as the general path, nothing written."""
    fast = FUNCTIONS[name][0]
    for x, axis in _fast_path_cases(np.float32):
        shape = fast(x, axis=axis).shape
        order = "F" if not x.flags.c_contiguous else "C"
        readonly = np.zeros(shape, np.float32, order=order)
        readonly.flags.writeable = False
        wrong_shape = shape[:-1] + (shape[-1] + 1,) if shape else (1,)
        cases = [(np.zeros(shape, np.float64, order=order), TypeError, "out has dtype"),
                 (np.zeros(wrong_shape, np.float32, order=order), ValueError, "out has shape"),
                 (readonly, ValueError, "read-only")]
        if name != "logsumexp":            # x's own memory, seen with the wrong dtype
            cases.append((x.view(np.int32), TypeError, "out has dtype"))
        for out, exc, msg in cases:
            before = out.copy()
            del general_calls[:]
            with pytest.raises(exc, match=msg):
                fast(x, axis=axis, out=out)
            assert general_calls == [name]
            np.testing.assert_array_equal(out, before)
