"""The kernel table's ``rows`` entry: softmax, log_softmax and logsumexp of
C-contiguous rows, for every compiled instruction-set variant (the ``isa``
fixture): every row length up to a few vectors with misaligned starts, the
special-value table, the temperature limits, and tiles of tiny rows.

Tiles of tiny rows (row_kernels_impl.h ``tile_softmax``): softmax over rows
of n <= lanes-per-vector elements (16 float32 / 8 float64 with AVX-512, 8 / 4
with AVX2, 4 / 2 baseline) takes groups of that many rows, counted from the
first row, transposes them in registers and computes them together;
full-width loads and stores run into the following rows of the tile and only
rows near the tile's end are masked.  A tile with a NaN, +inf or all -inf row
falls back to row by row.  Every test runs once per compiled instruction-set
variant, since the tile height differs between them."""
import functools
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference
from util import (DTYPES, FUNCTIONS, ROW_SUM_BOUND, SPECIAL_KINDS, SPECIAL_TABLE, assert_close, lanes, logits,
                  oracle, read_only_cache, special_values)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf, nan = math.inf, math.nan
TEMPS = [0.0, 0.5, 1.0, 3.0, inf]


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_lengths_and_misaligned_starts_every_variant(isa, dtype):
    for n in list(range(1, 70)) + [127, 128, 129, 255, 257]:
        buf = logits(3 * n + 1, dtype, seed=n)
        x = buf[1:].reshape(3, n)                  # rows start off the vector alignment
        x[1, n // 2] = -inf
        for t in (1.0, 0.5):
            for name, (fast, ref) in FUNCTIONS.items():
                assert_close(name, fast(x, temperature=t), ref(x, temperature=t), dtype, f"{isa} n={n} T={t}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_value_table_every_variant(isa, dtype):
    for row, sm, lsm, lse in SPECIAL_TABLE:
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


# ---- tiles of tiny rows -----------------------------------------------------------

TINY = range(1, 18)                                 # every tile width of every variant, and just past 16
ROW_COUNTS = [15, 16, 17, 31, 32, 33, 47, 64]       # around multiples of the tile heights
SENTINEL = -1234.5                                  # fills memory around `out`: must survive


@read_only_cache
def _case(dtype, rows, n, seed):
    return logits((rows, n), dtype, seed=seed)


@functools.lru_cache(maxsize=None)
def _want(name, dtype, rows, n, seed, t):
    """The reference for _case(...): computed once, shared by every variant."""
    return FUNCTIONS[name][1](_case(dtype, rows, n, seed), temperature=t)


def _guarded(count, dtype, offset):
    """(big, view): `view` is `count` elements of `big` starting at `offset`;
    the rest of `big` holds SENTINEL."""
    big = np.full(count + offset + 37, SENTINEL, dtype=dtype)
    return big, big[offset:offset + count]


def _untouched(big, offset, count):
    return bool(np.all(big[:offset] == SENTINEL) and np.all(big[offset + count:] == SENTINEL))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiles_match_the_reference_and_write_only_inside_out(isa, dtype):
    for n in TINY:
        for rows in ROW_COUNTS:
            x = _case(dtype, rows, n, n)
            for t in (1.0, 0.5):
                for name, (fast, _) in FUNCTIONS.items():
                    want = _want(name, dtype, rows, n, n, t)
                    offset = (3 * n + rows) % 7                    # out starts at every alignment
                    big, flat = _guarded(want.size, dtype, offset)
                    out = flat.reshape(want.shape)
                    context = f"{isa} n={n} rows={rows} T={t}"
                    assert fast(x, temperature=t, out=out) is out
                    assert_close(name, out, want, dtype, context)
                    assert _untouched(big, offset, want.size), f"{name} {context}: wrote outside out"
                    # a new result array gives the same bits as out=
                    np.testing.assert_array_equal(fast(x, temperature=t), out, err_msg=context)
                    if name == "softmax":            # rows sum to 1 within 2e-6 (float32 too)
                        sums = out.astype(np.float64).sum(axis=-1)
                        assert np.all(np.abs(sums - 1) <= ROW_SUM_BOUND), f"{context}: row sums {sums - 1}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiles_in_place(isa, dtype):
    for n in TINY:
        for rows in (16, 17, 33, 64):
            x = _case(dtype, rows, n, n)
            for t in (1.0, 0.5):
                want = fs.softmax(x, temperature=t)
                assert_close("softmax", want, _want("softmax", dtype, rows, n, n, t), dtype, f"n={n}")
                offset = n % 3
                big, flat = _guarded(x.size, dtype, offset)
                y = flat.reshape(x.shape)
                y[...] = x
                assert fs.softmax(y, temperature=t, out=y) is y
                np.testing.assert_array_equal(y, want, err_msg=f"{isa} in place n={n} rows={rows} T={t}")
                assert _untouched(big, offset, x.size), f"{isa} in place n={n} rows={rows}: wrote outside x"


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_rows_inside_tiles(isa, dtype):
    """A special row at the start, inside, at the end of a tile or past the
    last whole tile: its own row follows the special-value table, and every
    other row (of the same tile too) is still correct."""
    w = lanes(isa, dtype)
    rows = 2 * w + 3                     # two whole tiles and three rows after them
    positions = sorted({0, 1, w // 2, w - 1, w, 2 * w - 1, 2 * w, rows - 1})
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17):
        base = logits((rows, n), dtype, seed=100 + n)
        for kind in SPECIAL_KINDS:
            for r in positions:
                x = base.copy()
                x[r] = special_values(kind, n, r, dtype, rng)
                if kind == "nan":        # and a second special row in the same tile
                    x[r ^ 1 if r ^ 1 < rows else r - 1] = special_values("all -inf", n, 0, dtype, rng)
                for t in (1.0, 0.05):
                    got = fs.softmax(x, temperature=t)
                    assert_close("softmax", got, reference.softmax(x, temperature=t), dtype,
                                 f"{isa} n={n} special row {r} ({kind}) of {rows} T={t}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 4, 5, 8, 13, 16])
def test_tiles_are_counted_from_the_first_row(isa, dtype, n):
    """The thread loops split rows into blocks that start and end at
    multiples of 16 rows (the last one at the array's end): rows computed
    from such a block give the bits they have in the whole array.  (Rows
    after the last whole tile are computed one by one, so a block that ends
    inside a tile may differ in the last bits: allowed, and not what threads
    do.)"""
    x = logits((200, n), dtype, seed=n)
    x[[40, 77, 130]] = -np.inf                       # tiles that fall back to rows
    x[41, 0] = np.nan
    whole = fs.softmax(x)
    assert_close("softmax", whole, reference.softmax(x), dtype, f"{isa} n={n}")
    for start in (16, 32, 48, 112):
        for stop in (start + 16, start + 48, 200):
            np.testing.assert_array_equal(fs.softmax(x[start:stop]), whole[start:stop],
                                          err_msg=f"{isa} n={n} rows {start}:{stop}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 8, 16])
def test_tiles_do_not_depend_on_the_thread_count(dtype, n):
    """>= 40000 rows: above the size where calls use threads (32768
    elements).  Where the process may use only one CPU (taskset), num_threads
    is capped to 1 and this checks one thread only; the test above checks the
    row split the threads use."""
    rows = 40_000 + 7
    x = logits((rows, n), dtype, seed=n)
    special = [5, 16 * 700 + 3, rows - 2]
    x[special[0]] = np.nan
    x[special[1]] = -np.inf
    x[special[2], 0] = np.inf
    one = fs.softmax(x, num_threads=1)
    np.testing.assert_array_equal(fs.softmax(x, num_threads=2), one)
    np.testing.assert_array_equal(fs.softmax(x), one)
    assert np.isnan(one[special]).all()
    normal = np.ones(rows, bool)
    normal[special] = False
    assert_close("softmax", one[normal], oracle("softmax", x[normal]), dtype, f"n={n}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiles_with_a_streamed_output(dtype):
    """An output of >= 8 MiB is written with non-temporal stores where the
    kernels stream; tiles write the same values."""
    n = 5
    rows = (8 << 20) // (n * np.dtype(dtype).itemsize) + 21
    x = logits((rows, n), dtype, seed=3)
    got = fs.softmax(x)
    assert_close("softmax", got, oracle("softmax", x), dtype, "streamed")
    np.testing.assert_array_equal(fs.softmax(x[:64]), got[:64])
    tail = rows // 16 * 16 - 32                                        # rows is not a multiple of 16
    np.testing.assert_array_equal(fs.softmax(x[tail:]), got[tail:])


GUARD_PAGE_SCRIPT = r"""
import ctypes, mmap, sys
import numpy as np
import fastsoftmax as fs
from fastsoftmax import _rows

libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
PAGE = mmap.PAGESIZE
regions = {}

def at_page_end(count, dtype, slot):
    # `count` elements that end exactly where an unreadable, unwritable page starts
    nbytes = count * np.dtype(dtype).itemsize
    pages = nbytes // PAGE + 2
    key = (pages, slot)
    if key not in regions:
        mm = mmap.mmap(-1, pages * PAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
        if libc.mprotect(base + (pages - 1) * PAGE, PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")
        regions[key] = mm
    return np.ndarray((count,), dtype, buffer=regions[key], offset=(pages - 1) * PAGE - nbytes)

checked = 0
for isa in ("avx512", "avx2", "baseline"):
    try:
        _rows._use_isa(isa)
    except ValueError:
        continue
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(0)
        for n in range(1, 18):
            for rows in (1, 2, 15, 16, 17, 31, 32, 33, 64):
                x = at_page_end(rows * n, dtype, 0).reshape(rows, n)
                x[...] = rng.standard_normal((rows, n)) * 4
                for name in ("softmax", "log_softmax", "logsumexp"):
                    fn = getattr(fs, name)
                    want = fn(np.array(x))
                    out = at_page_end(want.size, dtype, 1).reshape(want.shape)
                    fn(x, out=out)
                    assert np.array_equal(out, want, equal_nan=True), (isa, dtype, n, rows, name)
                    checked += 1
                y = at_page_end(rows * n, dtype, 2).reshape(rows, n)
                y[...] = x
                fs.softmax(y, out=y)
                assert np.array_equal(y, fs.softmax(np.array(x))), (isa, dtype, n, rows, "in place")
        for n in (1, 2, 3, 17):                      # strided axis: the last row of columns
            for inner in list(range(2, 41)) + [127, 129]:
                x = at_page_end(n * inner, dtype, 0).reshape(n, inner)
                x[...] = rng.standard_normal((n, inner)) * 4
                for name in ("softmax", "log_softmax", "logsumexp"):
                    fn = getattr(fs, name)
                    want = fn(np.array(x), axis=0)
                    out = at_page_end(want.size, dtype, 1).reshape(want.shape)
                    fn(x, axis=0, out=out)
                    assert np.array_equal(out, want, equal_nan=True), (isa, dtype, n, inner, name)
                    checked += 1
print("checked", checked)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses mmap + mprotect through ctypes (Linux)")
def test_no_access_past_the_end_of_x_or_out():
    """x and out end right where a PROT_NONE page begins: a load or store
    past their last element (a full-width vector where a masked one is
    due) crashes the child process.  Run in a subprocess for that reason."""
    proc = subprocess.run([sys.executable, "-c", GUARD_PAGE_SCRIPT], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, FASTSOFTMAX_FORCE_ISA=""))
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert int(proc.stdout.split()[-1]) > 1000, proc.stdout
