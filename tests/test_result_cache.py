"""The result buffer cache (csrc/result_cache.h).

Results of at least 1 MiB are allocated through a NumPy memory handler that
keeps up to 4 freed buffers (at most 1 GiB in all) and hands them to later
results that fit; ``fastsoftmax._rows.release_result_cache(keep_caching=True)``
frees them and returns the bytes that were held, and the environment
variable FASTSOFTMAX_RESULT_CACHE=0 turns the cache off."""
import concurrent.futures
import copy
import pickle

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _rows
from util import DTYPES, FUNCTIONS, assert_close, logits, oracle, run_python

MIB = 1 << 20

try:   # NumPy >= 2
    from numpy._core.multiarray import get_handler_name
except ImportError:   # pragma: no cover - NumPy 1.22 .. 1.26
    from numpy.core.multiarray import get_handler_name

CACHE_HANDLER = "fastsoftmax_result_cache"

# inputs whose results are >= 1 MiB (in float32): rows for softmax / log_softmax,
# a strided axis for logsumexp (whose result has one entry per column)
SHAPES = {"softmax": ((512, 1024), -1), "log_softmax": ((512, 1024), -1), "logsumexp": ((3, 300_000), 0)}


@pytest.fixture
def empty_cache():
    """Start from an empty, enabled cache and leave it empty."""
    _rows.release_result_cache(keep_caching=True)
    try:
        yield
    finally:
        _rows.release_result_cache(keep_caching=True)


def _with_special_rows(x, axis):
    """x with a NaN, a +inf and an all -inf row (column for axis 0) and the
    indices of those; the other rows are ordinary."""
    x = np.array(x)
    moved = np.moveaxis(x, axis, -1)
    special = [1, 17, moved.shape[0] - 1]
    moved[special[0], 1] = np.nan
    moved[special[1], 0] = np.inf
    moved[special[2], :] = -np.inf
    return x, special


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_reused_buffer_gives_correct_values(empty_cache, name, dtype):
    fast = FUNCTIONS[name][0]
    shape, axis = SHAPES[name]
    first = fast(logits(shape, dtype, seed=1), axis=axis)
    assert first.nbytes >= MIB and get_handler_name(first) == CACHE_HANDLER
    address = first.ctypes.data
    first[...] = 7.0                       # stale values a lazy write would leave behind
    del first
    x, special = _with_special_rows(logits(shape, dtype, seed=2), axis)
    second = fast(x, axis=axis)
    assert second.ctypes.data == address, "the freed result's buffer was not reused"
    fresh = np.empty_like(second)
    fast(x, axis=axis, out=fresh)
    np.testing.assert_array_equal(second, fresh)
    moved_x, moved_r = np.moveaxis(x, axis, -1), second if name == "logsumexp" else np.moveaxis(second, axis, -1)
    normal = np.setdiff1d(np.arange(moved_x.shape[0]), special)
    assert_close(name, moved_r[normal], oracle(name, moved_x[normal]), dtype, "reused buffer")
    if name == "logsumexp":
        np.testing.assert_array_equal(moved_r[special], np.array([np.nan, np.inf, -np.inf], dtype))
    else:
        assert np.isnan(moved_r[special]).all()
    # a smaller result that fits the kept buffer (at most a quarter wasted) gets it too
    address = second.ctypes.data
    del second, moved_r
    smaller = tuple(s * 7 // 8 if a == (0 if axis == -1 else 1) else s for a, s in enumerate(shape))
    y = logits(smaller, dtype, seed=3)
    third = fast(y, axis=axis)
    assert third.ctypes.data == address and third.shape == (smaller if name != "logsumexp" else smaller[1:])
    assert_close(name, third, oracle(name, y, axis=axis), dtype, "smaller result in a reused buffer")


def test_general_path_and_fortran_results_reuse_buffers_correctly(empty_cache):
    x = logits((64, 32, 160), np.float32, seed=4)          # 1.25 MiB of float32
    for _ in range(3):
        np.testing.assert_array_equal(fs.softmax(x, axis=(1, 2)),
                                      fs.softmax(x.reshape(64, -1)).reshape(x.shape))
        xf = np.asfortranarray(x)
        r = fs.log_softmax(xf, axis=1)
        assert r.flags.f_contiguous
        assert_close("log_softmax", r, oracle("log_softmax", x, axis=1), np.float32, "F order")
        x = x[::-1].copy()


def test_results_are_ordinary_arrays(empty_cache):
    x = logits((300, 1000), np.float64, seed=5)            # 2.3 MB result
    r = fs.softmax(x)
    assert get_handler_name(r) == CACHE_HANDLER
    assert get_handler_name(fs.softmax(x[:10])) != CACHE_HANDLER   # small results: NumPy's own memory
    assert r.flags.owndata and r.flags.writeable and r.flags.c_contiguous and r.flags.aligned
    # 64-byte aligned, half a page from the page offsets of NumPy's own large arrays (no 4K aliasing)
    assert r.ctypes.data % 4096 == 2048
    assert r.base is None and np.asarray(r) is r and np.asarray(r).base is None
    assert r[3:].base is r
    want = r.copy()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(r)), want)
    np.testing.assert_array_equal(copy.deepcopy(r), want)
    r[0, 0] = 5.0
    assert r[0, 0] == 5.0
    r[0, 0] = want[0, 0]
    # resize (realloc through the handler) keeps the data and zero-fills the rest
    r.resize((400, 1000), refcheck=False)
    np.testing.assert_array_equal(r[:300], want)
    assert np.all(r[300:] == 0)
    r.resize((100, 1000), refcheck=False)
    np.testing.assert_array_equal(r, want[:100])
    del r
    assert _rows.release_result_cache() > 0
    # an F-ordered result (a transposed view of a cached C buffer) is usable too
    f = fs.softmax(np.asfortranarray(x), axis=0)
    owner = f if f.base is None else f.base
    assert owner.flags.owndata and f.flags.writeable and f.flags.f_contiguous
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(f)), f)


def test_release_reports_the_bytes_held(empty_cache):
    x = logits((256, 1024), np.float32, seed=6)            # 1 MiB results
    r = fs.softmax(x)
    nbytes = r.nbytes
    assert nbytes >= MIB
    assert _rows.release_result_cache() == 0                # r is alive: nothing kept yet
    del r
    assert _rows.release_result_cache() == nbytes
    assert _rows.release_result_cache() == 0
    # at most four buffers are kept
    alive = [fs.log_softmax(x) for _ in range(6)]
    del alive
    assert _rows.release_result_cache() == 4 * nbytes
    # keep_caching=False: freed buffers go back to the system until caching is turned on again
    try:
        assert _rows.release_result_cache(keep_caching=False) == 0
        r = fs.softmax(x)
        del r
        assert _rows.release_result_cache(keep_caching=False) == 0
    finally:
        _rows.release_result_cache(keep_caching=True)
    r = fs.softmax(x)
    del r
    assert _rows.release_result_cache() == nbytes


def test_concurrent_python_threads_share_the_cache(empty_cache):
    xs = [logits((300, 1000), dt, seed=s) for s, dt in enumerate([np.float32, np.float64] * 3)]
    serial = [fs.softmax(x) for x in xs]

    def work(i):
        for _ in range(8):
            r = fs.softmax(xs[i], num_threads=1)
            if not np.array_equal(r, serial[i]):
                return False
            del r
        return True

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(xs)) as pool:
        assert all(pool.map(work, range(len(xs))))
    assert 0 < _rows.release_result_cache() <= 4 * max(s.nbytes for s in serial)


CACHE_OFF_SCRIPT = r"""
import numpy as np, fastsoftmax as fs
from fastsoftmax import _rows
x = (np.random.default_rng(0).standard_normal((512, 1024)) * 4).astype(np.float32)
want = np.exp(x.astype(np.float64) - x.max(axis=-1, keepdims=True))
want /= want.sum(axis=-1, keepdims=True)
for _ in range(3):
    r = fs.softmax(x)
    err = np.abs(r - want) / want
    assert err[want >= 1e-8].max() <= 2e-6, err.max()
    del r
print(_rows.release_result_cache())
"""


def test_cache_turned_off_by_environment():
    printed = run_python(CACHE_OFF_SCRIPT, FASTSOFTMAX_RESULT_CACHE="0")
    assert printed.split()[-1] == "0", printed


def test_public_release_result_cache_reports_and_frees():
    x = np.zeros((1024, 512), np.float32)      # a 2 MiB result, cached when dropped
    y = fs.softmax(x)
    np.testing.assert_array_equal(y, np.full_like(x, 1 / 512))
    del y
    assert fs.release_result_cache() >= x.nbytes
    assert fs.release_result_cache() == 0
    assert "release_result_cache" in fs.__all__
