"""Hardening: bad input never crashes and never touches data, 64-bit sizes,
threads inside pools and after fork, no leaks."""
import concurrent.futures
import gc
import math
import multiprocessing
import os
import sys
import tracemalloc

import numpy as np
import pytest
from numpy.exceptions import AxisError

import fastsoftmax as fs
from util import FUNCTIONS, LONG_DOUBLE_IS_WIDER, assert_close, logits

ALL = list(FUNCTIONS)


def call(name, *args, **kwargs):
    return FUNCTIONS[name][0](*args, **kwargs)


# ---- 1. bad input: documented exception, message names the argument, nothing touched

def _readonly(shape, dtype=np.float32):
    a = np.zeros(shape, dtype)
    a.flags.writeable = False
    return a


BAD_X = [
    (None, TypeError, "x is None, not an array"), ("logits", TypeError, "dtype"), ({"a": 1}, TypeError, "dtype"),
    (np.array([object()]), TypeError, "dtype"), (np.array([1 + 1j]), TypeError, "dtype"),
    (np.array(["2020-01-01"], "datetime64[D]"), TypeError, "dtype"),
    (np.array([1], "timedelta64[s]"), TypeError, "dtype"),
    (np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]), TypeError, "dtype"),
    (np.array([b"ab"]), TypeError, "dtype"), ([[1.0, 2.0], [3.0]], ValueError, "inhomogeneous"),
] + ([(np.array([1.0], dtype=np.longdouble), TypeError, "supported are float16, bfloat16 \\(ml_dtypes\\), float32, float64")]
     if LONG_DOUBLE_IS_WIDER else [])
BAD_AXIS = [(2, AxisError), (-3, AxisError), (10**100, AxisError), ((0, 5), AxisError), ((0, 0), ValueError),
            ((1, -1), ValueError), (1.0, TypeError), ("1", TypeError), (True, TypeError), ([0.5], TypeError),
            ((0, 1.5), TypeError), (np.float64(1), TypeError)]
BAD_T = [(-1.0, ValueError), (-1e-300, ValueError), (math.nan, ValueError), (np.float32("nan"), ValueError),
         (-math.inf, ValueError), (np.array([True, False]), TypeError),
         ("1", TypeError), (True, TypeError), (np.bool_(True), TypeError), (None, TypeError), (2j, TypeError),
         ([1.0, 1.0, 1.0], ValueError), (np.array([1.0, -1.0]), ValueError)]   # one per row: x has 2 rows
# a wrong value is a ValueError, a wrong type a TypeError (as for temperature)
BAD_THREADS = [(0, ValueError), (-1, ValueError), (-(2**70), ValueError), (np.int64(0), ValueError),
               (1.0, TypeError), (2.5, TypeError), ("2", TypeError), (True, TypeError),
               (np.array([2]), TypeError), (object(), TypeError)]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad,exc,msg", BAD_X, ids=lambda v: repr(v)[:30])
def test_bad_x(name, bad, exc, msg):
    with pytest.raises(exc, match=msg):
        call(name, bad)


@pytest.mark.parametrize("name", ALL)
def test_bad_arguments_leave_x_and_out_untouched(name):
    x = logits((2, 3), np.float32)
    x_before = x.copy()
    out = np.full(x.shape[:-1] if name == "logsumexp" else x.shape, 7.0, np.float32)
    for axis, exc in BAD_AXIS:
        with pytest.raises(exc, match="axis"):
            call(name, x, axis=axis, out=out)
    for t, exc in BAD_T:
        with pytest.raises(exc, match="temperature"):
            call(name, x, temperature=t, out=out)
    for threads, exc in BAD_THREADS:
        with pytest.raises(exc, match="num_threads must be None or an int >= 1"):
            call(name, x, num_threads=threads, out=out)
        with pytest.raises(exc, match="num_threads"):
            call(name, x, num_threads=threads)          # the compiled fast path's input
    np.testing.assert_array_equal(x, x_before)
    assert np.all(out == 7.0)
    with pytest.raises(AxisError, match="0-d input"):
        call(name, np.float64(1.0), axis=1)


@pytest.mark.parametrize("name", ALL)
def test_bad_out(name):
    x = logits((4, 5), np.float64)
    good = (4,) if name == "logsumexp" else (4, 5)
    base = np.zeros(64)
    view_of_readonly = np.frombuffer(bytes(8 * 20), dtype=np.float64)[: math.prod(good)].reshape(good)
    cases = [
        (np.zeros((5, 4)), ValueError, "out has shape"), (np.zeros(good[:-1] + (good[-1] + 1,)), ValueError, "shape"),
        (np.zeros(good, np.float32), TypeError, "out has dtype"), (np.zeros(good, ">f8"), TypeError, "dtype"),
        (np.zeros(good, np.int64), TypeError, "dtype"), (_readonly(good, np.float64), ValueError, "read-only"),
        (view_of_readonly, ValueError, "read-only"), ([0.0] * 4, TypeError, "out must be a numpy.ndarray"),
        (base[: math.prod(good)].reshape(good).tolist(), TypeError, "out"), ("out", TypeError, "out"),
    ]
    x_before = x.copy()
    for out, exc, msg in cases:
        before = np.array(out, copy=True) if isinstance(out, np.ndarray) else None
        with pytest.raises(exc, match=msg):
            call(name, x, out=out)
        if before is not None:
            np.testing.assert_array_equal(out, before)
        np.testing.assert_array_equal(x, x_before)


def test_compute_rejects_misuse_without_crashing():
    from fastsoftmax import _rows
    a = np.zeros((3, 4), np.float32)
    for x, out in [(a, np.zeros((3, 4))), (a.T, a), (a, a[:, :2]), (np.zeros(4, np.float32), a), (a, _readonly((3, 4)))]:
        with pytest.raises(ValueError):
            _rows.compute(0, x, out, 1, 1.0, 1)
    with pytest.raises(ValueError):
        _rows.compute(7, a, a, 1, 1.0, 1)


# ---- 2. sizes and layouts

@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_row_length_to_130_and_misaligned_starts(name, dtype):
    fast, ref = FUNCTIONS[name]
    for n in range(1, 131):
        buf = logits(2 * n + 1, dtype, seed=n)
        x = buf[1:].reshape(2, n)                       # starts one element in
        assert_close(name, fast(x), ref(x), dtype, f"n={n} offset-by-one")


@pytest.mark.parametrize("name", ALL)
def test_byte_misaligned_buffer(name):
    raw = np.zeros(8 * 33 + 1, np.uint8)
    y = np.ndarray((3, 11), np.float64, buffer=raw.data, offset=1)   # starts one byte in
    assert not y.flags.aligned
    y[...] = logits((3, 11), np.float64)
    fast, ref = FUNCTIONS[name]
    assert_close(name, fast(y), ref(np.array(y)), np.float64, "byte-misaligned")
    if name != "logsumexp":
        want = ref(np.array(y))
        assert fast(y, out=y) is y                                   # misaligned out, in place
        assert_close(name, y, want, np.float64, "byte-misaligned out")


def _available_memory():
    try:
        import psutil
        return psutil.virtual_memory().available
    except ImportError:
        return 0


@pytest.mark.skipif(_available_memory() < 12 * 2**30,
                    reason="needs ~12 GiB of free memory: one 8.6 GB float32 array at a time")
def test_rows_and_arrays_beyond_2_to_the_31():
    n = 2**31 + 17
    x = np.zeros(n, np.float32)
    x[[0, 2**31 - 1, 2**31 + 5, n - 1]] = [3.0, 1.0, 3.0, -np.inf]
    lse = fs.logsumexp(x)
    s = (n - 4) + 2 * math.exp(3.0) + math.exp(1.0)
    assert lse == pytest.approx(math.log(s), rel=1e-6)
    fs.softmax(x, out=x)                               # in place: one 8.6 GB buffer
    assert x[0] == pytest.approx(math.exp(3.0) / s, rel=2e-6)
    assert x[2**31 + 5] == pytest.approx(math.exp(3.0) / s, rel=2e-6)
    assert x[2**31 - 1] == pytest.approx(math.exp(1.0) / s, rel=2e-6)
    assert x[n - 1] == 0.0 and x[12345] == pytest.approx(1 / s, rel=2e-6)
    del x
    # more than 2**31 elements in total, spread over rows
    y = np.zeros((2**16 + 1, 2**15), np.float32)
    y[-1, -1] = 5.0
    lse = fs.logsumexp(y)
    assert lse[0] == pytest.approx(math.log(2**15), rel=1e-6)
    assert lse[-1] == pytest.approx(math.log(2**15 - 1 + math.exp(5.0)), rel=1e-6)


# ---- 3. concurrency

def test_many_python_threads_with_openmp_inside():
    xs = [logits((300, 700), dt, seed=s) for s, dt in enumerate([np.float32, np.float64])]
    jobs = [(name, x, t) for name in ALL for x in xs for t in (1.0, 0.5)]
    serial = [call(name, x, temperature=t, num_threads=1) for name, x, t in jobs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(call, name, x, temperature=t, num_threads=2) for name, x, t in jobs * 8]
        for f, want in zip(futures, serial * 8):
            np.testing.assert_array_equal(f.result(timeout=120), want)


def _child_softmax(x):
    return fs.softmax(x, num_threads=2)


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX only")
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pools_and_fork_do_not_deadlock(method):
    x = logits((256, 4096), np.float32)
    want = fs.softmax(x, num_threads=2)       # the parent's OpenMP pool exists now
    ctx = multiprocessing.get_context(method)
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        for got in pool.map(_child_softmax, [x] * 4, timeout=120):
            np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_plain_fork_child_computes():
    x = logits((128, 4096), np.float32)
    want = fs.softmax(x, num_threads=2)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                # child: must not hang in OpenMP
        ok = np.array_equal(fs.softmax(x, num_threads=2), want) and fs.build_info()["default_threads"] == 1
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1" and status == 0


# ---- 4. memory

def _exercise(n_calls):
    x32 = logits((3, 5), np.float32)
    x64 = logits((2, 7), np.float64)
    out = np.empty_like(x32)
    for i in range(n_calls):
        fs.softmax(x32)
        fs.log_softmax(x64, axis=0, temperature=0.5)
        fs.logsumexp(x32, keepdims=True)
        fs.softmax(x32, out=out)
        fs.logsumexp(x64[:, ::2].T, axis=None)
        try:
            fs.softmax(x32, axis=5)
        except AxisError:
            pass
        try:
            fs.log_softmax(x32, temperature=-1.0)
        except ValueError:
            pass
        try:
            fs.logsumexp(x32, out=out)
        except ValueError:
            pass


def test_no_leaks_rss_tracemalloc_refcounts():
    psutil = pytest.importorskip("psutil")
    proc = psutil.Process()
    x = logits((3, 5), np.float32)
    refs = sys.getrefcount(x)
    _exercise(2000)                                  # warm up caches and allocators
    gc.collect()
    rss0 = proc.memory_info().rss
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    _exercise(100_000 // 8)                          # 100,000 calls in all (8 per round)
    for name in ALL:
        call(name, x)
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename") if s.size_diff > 0)
    assert grown < 256 * 1024, f"tracemalloc grew by {grown} bytes"
    rss_growth = proc.memory_info().rss - rss0
    if "asan" not in os.environ.get("LD_PRELOAD", ""):   # ASan's quarantine keeps freed memory
        assert rss_growth < 8 * 2**20, f"RSS grew by {rss_growth / 2**20:.1f} MiB"
    assert sys.getrefcount(x) == refs
