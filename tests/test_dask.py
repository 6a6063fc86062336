"""Dask arrays in, lazy Dask arrays out: exact for any chunking, on the
threaded scheduler and on a cluster of worker processes."""
import doctest
import logging
import math

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from numpy.exceptions import AxisError  # noqa: E402

import fastsoftmax as fs  # noqa: E402
from util import FUNCTIONS, SPECIAL_TABLE, assert_close, run_python, special_values  # noqa: E402

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf, nan = math.inf, math.nan
OPS = list(FUNCTIONS)
TEMPERATURES = [1.0, 0.0, inf, 0.5, 3.0]


def compute(lazy, scheduler="threads"):
    assert isinstance(lazy, da.Array), type(lazy)
    return lazy.compute(scheduler=scheduler)


def function_and_arguments(name, axis, temperature, keepdims):
    """``name``'s function, its reference, and the keyword arguments both take
    (keepdims= only for logsumexp)."""
    fn, ref = FUNCTIONS[name]
    kwargs = dict(axis=axis, temperature=temperature)
    if name == "logsumexp":
        kwargs["keepdims"] = keepdims
    return fn, ref, kwargs


def check_against_memory(name, x, chunks, axis=-1, temperature=1.0, keepdims=False, scheduler="threads",
                         against_reference=True):
    """The Dask result of ``name`` equals the in-memory one (and the
    reference) within the contract's bounds, with the documented chunks."""
    fn, ref, kwargs = function_and_arguments(name, axis, temperature, keepdims)
    lazy = fn(da.from_array(x, chunks=chunks), **kwargs)
    in_memory = np.asarray(fn(x, **kwargs))
    assert lazy.shape == in_memory.shape and lazy.dtype == in_memory.dtype, (lazy, in_memory.shape)
    got = compute(lazy, scheduler)
    context = f"chunks={da.from_array(x, chunks=chunks).chunks} axis={axis} T={temperature}"
    assert_close(name, got, in_memory, x.dtype, context + " vs in-memory")
    if against_reference:
        ref_kwargs = dict(kwargs)
        want = np.asarray(ref(x, **ref_kwargs))
        assert_close(name, got, want, x.dtype, context + " vs reference")
    return lazy, got


# ---- import and laziness --------------------------------------------------------

def test_import_fastsoftmax_does_not_import_dask():
    code = ("import sys, numpy as np, fastsoftmax as fs\n"
            "fs.softmax(np.ones((2, 3))); fs.log_softmax([1.0, 2.0]); fs.logsumexp([[1.0]], axis=None)\n"
            "loaded = sorted(m for m in sys.modules if m == 'dask' or m.startswith('dask.'))\n"
            "assert not loaded, loaded\n")
    run_python(code)


class BlockComputed(Exception):
    pass


def explode(block):
    raise BlockComputed("a block was computed")


@pytest.mark.parametrize("chunks", [(2, 5), (2, 2)], ids=["whole-rows", "split-rows"])
@pytest.mark.parametrize("name", OPS)
def test_nothing_is_computed_until_asked(name, chunks):
    base = da.from_array(np.ones((4, 5), np.float32), chunks=chunks)
    x = base.map_blocks(explode, dtype=np.float32, meta=np.empty((0, 0), np.float32))
    fn = FUNCTIONS[name][0]
    lazy = fn(x, temperature=0.5)
    lazy_all = fn(x, axis=None)
    assert isinstance(lazy, da.Array) and isinstance(lazy_all, da.Array)
    with pytest.raises(BlockComputed):      # the blocks are really there, and only compute reaches them
        compute(lazy)


def test_map_blocks_is_wrong_and_fastsoftmax_is_not():
    """What the issue saw: softmax per block of rows split over chunks does
    not sum to 1; fastsoftmax.softmax of the Dask array does."""
    x = np.random.default_rng(1).standard_normal((3, 8))
    d = da.from_array(x, chunks=(3, 2))
    per_block = compute(d.map_blocks(fs.softmax)).sum(axis=1)
    np.testing.assert_allclose(per_block, 4.0)
    np.testing.assert_allclose(compute(fs.softmax(d)).sum(axis=1), 1.0, rtol=1e-14)


def test_module_docstring_examples():
    import fastsoftmax.dask as lazy_module

    result = doctest.testmod(lazy_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


# ---- any chunking -----------------------------------------------------------------

CHUNKINGS_2D = {
    "one block": (6, 9),
    "rows in blocks": (2, 9),
    "split rows": (6, 4),
    "one element per chunk": (1, 1),
    "uneven": ((1, 5), (2, 1, 6)),
    "empty chunks": ((0, 3, 0, 3), (0, 4, 0, 0, 5, 0)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32])
@pytest.mark.parametrize("chunking", list(CHUNKINGS_2D))
@pytest.mark.parametrize("name", OPS)
def test_chunkings_2d(name, chunking, dtype):
    x = (np.random.default_rng(2).standard_normal((6, 9)) * 5).astype(dtype)
    for axis in (-1, 0, None, ()):
        for temperature in (1.0, 0.0, inf, 0.7):
            lazy, got = check_against_memory(name, x, CHUNKINGS_2D[chunking], axis, temperature,
                                             against_reference=temperature == 0.7)
            assert got.dtype == np.asarray(FUNCTIONS[name][0](x, axis=axis)).dtype


@pytest.mark.parametrize("name", OPS)
def test_chunks_of_the_result(name):
    d = da.from_array(np.zeros((6, 9, 4)), chunks=((1, 5), (2, 1, 6), (4,)))
    fn = FUNCTIONS[name][0]
    if name != "logsumexp":
        for axis in (-1, 1, (0, 2), None):
            assert fn(d, axis=axis).chunks == d.chunks
        return
    assert fn(d, axis=1).chunks == ((1, 5), (4,))
    assert fn(d, axis=-1).chunks == ((1, 5), (2, 1, 6))
    assert fn(d, axis=(0, 2)).chunks == ((2, 1, 6),)
    assert fn(d, axis=1, keepdims=True).chunks == ((1, 5), (1,), (4,))
    assert fn(d, axis=(0, 1), keepdims=True).chunks == ((1,), (1,), (4,))
    assert fn(d, axis=None).chunks == ()


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", OPS)
def test_three_dimensions_every_axis(name, keepdims):
    x = (np.random.default_rng(3).standard_normal((4, 5, 6)) * 3).astype(np.float32)
    x = np.asfortranarray(x)        # blocks in Fortran order, too
    for chunks in [(2, 2, 3), (4, 1, 6), (1, 5, (0, 1, 5))]:
        for axis in (-1, 0, 1, (0, 2), (1, 2), (0, 1, 2), None):
            check_against_memory(name, x, chunks, axis, 1.0, keepdims, against_reference=False)


def partition(n):
    """Strategy: chunk sizes along an axis of length n, empty chunks allowed."""
    return st.lists(st.integers(0, n), max_size=4).map(
        lambda cuts: tuple(np.diff([0] + sorted(cuts) + [n]).tolist()))


@st.composite
def chunked_case(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
    chunks = tuple(draw(partition(n)) for n in shape)
    axis = draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                          st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)
                          .map(tuple)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16]))
    seed = draw(st.integers(0, 2**32 - 1))
    special = draw(st.sampled_from([0.0, 0.1, 0.5]))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 6
    picks = rng.random(shape) < special
    x[picks] = rng.choice([inf, -inf, -inf, -inf, nan], size=int(picks.sum()))
    return (x.astype(dtype), chunks, axis, draw(st.sampled_from(TEMPERATURES)), draw(st.booleans()),
            draw(st.sampled_from(OPS)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked_case())
def test_any_chunking_matches_memory_and_reference(case):
    x, chunks, axis, temperature, keepdims, name = case
    check_against_memory(name, x, chunks, axis, temperature, keepdims)


# ---- special values spread over chunks ------------------------------------------------

@pytest.mark.parametrize("piece", [1, 2, 3])
@pytest.mark.parametrize("row,sm,lsm,lse", SPECIAL_TABLE)
def test_special_value_table_over_chunks(row, sm, lsm, lse, piece):
    for dtype in (np.float32, np.float64):
        x = np.array([row, [1.0, 2.0, 3.0][: len(row)]], dtype=dtype)
        d = da.from_array(x, chunks=(1, piece))
        for fn, want in ((fs.softmax, sm), (fs.log_softmax, lsm)):
            got = compute(fn(d))
            np.testing.assert_allclose(got[0], np.array(want, dtype=dtype), rtol=1e-6, err_msg=f"{fn.__name__} {row}")
            assert_close(fn.__name__, got[1], fn(x[1]), dtype, "the other row")
        np.testing.assert_allclose(compute(fs.logsumexp(d))[0], lse, rtol=1e-6)


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("name", OPS)
def test_special_rows_over_chunks(name, temperature):
    """Every special kind, at every position, in rows cut into chunks of 1,
    2 and 5 elements; a chunk holding only -inf does not spoil its row."""
    kinds = ["nan", "+inf", "all -inf", "some -inf", "+inf and -inf", "nan and +inf", "huge", "ties"]
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(4)
        rows = [special_values(kind, 10, pos, dtype, rng) for kind in kinds for pos in (0, 4, 9)]
        minus_inf_chunk = rng.standard_normal(10).astype(dtype)
        minus_inf_chunk[:5] = -inf                   # the whole first chunk of 5
        xd = np.array(rows + [minus_inf_chunk])
        for piece in (1, 2, 5):
            check_against_memory(name, xd, (7, piece), -1, temperature)
            check_against_memory(name, xd.T.copy(), (piece, 7), 0, temperature, against_reference=False)


def test_minus_inf_chunk_does_not_spoil_the_row():
    x = np.array([[-inf, -inf, -inf, 0.0, math.log(3.0)]])
    d = da.from_array(x, chunks=(1, 3))
    np.testing.assert_allclose(compute(fs.softmax(d)), [[0, 0, 0, 0.25, 0.75]], rtol=1e-15)
    np.testing.assert_allclose(compute(fs.logsumexp(d)), [math.log(4.0)], rtol=1e-15)


# ---- shapes, dtypes, arguments ------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_zero_d_and_empty(dtype):
    z = da.from_array(np.array(3.5, dtype=dtype))
    for fn, want in ((fs.softmax, 1.0), (fs.log_softmax, 0.0), (fs.logsumexp, 3.5)):
        lazy = fn(z)
        assert lazy.shape == () and lazy.dtype == dtype
        assert compute(lazy) == want
    empty_rows = da.from_array(np.empty((3, 0), dtype), chunks=(2, 1))
    assert compute(fs.softmax(empty_rows)).shape == (3, 0)
    np.testing.assert_array_equal(compute(fs.logsumexp(empty_rows)), np.full(3, -inf, dtype))
    no_rows = da.from_array(np.empty((0, 5), dtype), chunks=(1, 2))
    assert compute(fs.log_softmax(no_rows)).shape == (0, 5)
    assert compute(fs.logsumexp(no_rows)).shape == (0,)
    both = da.from_array(np.empty((2, 0, 3), dtype), chunks=(1, 1, 2))
    assert compute(fs.logsumexp(both, axis=(1, 2))).tolist() == [-inf, -inf]


def test_unknown_chunk_sizes():
    x = np.random.default_rng(5).standard_normal((4, 9))
    d = da.from_array(x, chunks=(2, 3))
    keep = da.from_array(np.array([True, False, True, True, True, False, True, True, True]), chunks=3)
    unknown = d[:, keep]                 # chunk sizes along the rows are NaN
    assert any(math.isnan(c) for c in unknown.chunks[1])
    want = x[:, keep.compute()]
    np.testing.assert_allclose(compute(fs.log_softmax(unknown)), fs.log_softmax(want), rtol=1e-14)
    np.testing.assert_allclose(compute(fs.logsumexp(unknown)), fs.logsumexp(want), rtol=1e-14)


def test_threads_per_block_do_not_change_results():
    x = np.random.default_rng(6).standard_normal((5, 200_000)).astype(np.float32)
    d = da.from_array(x, chunks=(5, 70_000))
    one = compute(fs.log_softmax(d, num_threads=1))
    two = compute(fs.log_softmax(d, num_threads=2))
    np.testing.assert_array_equal(one, two)
    assert_close("log_softmax", one, fs.log_softmax(x), np.float32)


def test_long_rows_in_a_block_match_memory_bit_for_bit():
    """A block holding whole long rows (longer than the kernels' chunk) runs
    the same compiled loops as in memory."""
    x = np.random.default_rng(7).standard_normal((3, 150_000)).astype(np.float32)
    for fn in (fs.softmax, fs.log_softmax, fs.logsumexp):
        np.testing.assert_array_equal(compute(fn(da.from_array(x, chunks=(1, -1)))), fn(x))


def test_errors_are_those_of_numpy_input_and_compute_nothing():
    d = da.from_array(np.ones((2, 3), np.float32), chunks=1).map_blocks(explode, dtype=np.float32)
    with pytest.raises(TypeError, match="out must be None for a Dask array"):
        fs.softmax(d, out=np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="temperature"):
        fs.log_softmax(d, temperature=-1.0)
    with pytest.raises(AxisError):
        fs.logsumexp(d, axis=2)
    with pytest.raises(ValueError, match="repeated axis"):
        fs.softmax(d, axis=(0, 0))
    with pytest.raises(ValueError, match="num_threads"):
        fs.softmax(d, num_threads=0)
    with pytest.raises(TypeError, match="complex"):
        fs.softmax(da.ones(3, dtype=np.complex64))


# ---- where= ----------------------------------------------------------------------------------

def check_where(name, x, where, chunks, axis=-1, temperature=1.0, keepdims=False):
    """The Dask result with ``where`` (NumPy or Dask) equals the in-memory one
    and the reference, with the input's chunks."""
    fn, ref, kwargs = function_and_arguments(name, axis, temperature, keepdims)
    lazy = fn(da.from_array(x, chunks=chunks), where=where, **kwargs)
    plain = where.compute() if isinstance(where, da.Array) else where
    in_memory = np.asarray(fn(x, where=plain, **kwargs))
    assert lazy.shape == in_memory.shape and lazy.dtype == in_memory.dtype
    if name != "logsumexp":
        assert lazy.chunks == da.from_array(x, chunks=chunks).chunks
    got = compute(lazy)
    context = f"chunks={chunks} axis={axis} T={temperature}"
    assert_close(name, got, in_memory, x.dtype, context + " vs in-memory")
    assert_close(name, got, np.asarray(ref(x, where=plain, **kwargs)), x.dtype, context + " vs reference")
    return got


@pytest.mark.parametrize("temperature", [1.0, 0.0, inf, 0.5])
@pytest.mark.parametrize("chunks", [(2, 12), (2, 5), (3, 1), (6, 4)], ids=["whole", "split", "ones", "mixed"])
@pytest.mark.parametrize("name", OPS)
def test_where_over_chunks(name, chunks, temperature):
    """Masked entries holding NaN and +inf, rows with no kept entry, rows
    whose kept entries are all -inf, and a chunk that is entirely masked."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, 12)) * 3
    mask = rng.random((6, 12)) < 0.6
    x[0, ~mask[0]] = nan
    x[1, ~mask[1]] = inf
    mask[2] = False                      # no kept entry: 0, -inf, -inf at every temperature
    mask[3, :] = True
    x[3, mask[3]] = -inf                 # kept entries all -inf: NaN for softmax / log_softmax
    mask[4, :8], mask[4, 8:] = False, True
    x[4, :8] = [nan, inf] * 4            # masked over whole chunks
    got = check_where(name, x, mask, chunks, temperature=temperature)
    masked_row = {"softmax": 0.0, "log_softmax": -inf, "logsumexp": -inf}[name]
    assert np.all(got[2] == masked_row)
    if name != "logsumexp":
        assert np.all(np.isnan(got[3]))
        assert np.all(got[4, :8] == masked_row)
    if name == "softmax":
        assert got[4].sum() == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize("name", OPS)
def test_where_causal_mask_broadcast_over_batch_and_heads(name):
    """An (S, S) causal mask under (B, H, S, S) scores, split along the rows
    and along the batch, and as a Dask array chunked unlike the scores."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 7, 7)).astype(np.float32)
    causal = np.tril(np.ones((7, 7), bool))
    for chunks in [(1, 3, 7, 7), (1, 2, 4, 3)]:
        check_where(name, x, causal, chunks)
        check_where(name, x, da.from_array(causal, chunks=(2, 5)), chunks)
    full = da.from_array(rng.random(x.shape) < 0.5, chunks=(2, 1, 3, 2))
    check_where(name, x, full, (1, 2, 4, 3), keepdims=True)
    check_where(name, x, causal[None, None, :, :], (1, 3, 7, 2), axis=(2, 3))
    check_where(name, x, np.array([True, False, True]).reshape(3, 1, 1), (2, 2, 3, 7), axis=(0, 3))


def test_where_zero_d_and_whole_array():
    d = da.from_array(np.array(2.0))
    assert compute(fs.softmax(d, where=np.array(False))).tolist() == 0.0
    assert compute(fs.logsumexp(d, where=True)).tolist() == 2.0
    x = np.arange(12.0).reshape(3, 4)
    mask = x % 5 != 0
    for name in OPS:
        check_where(name, x, mask, (2, 3), axis=None)


def test_where_errors_are_those_of_numpy_input_and_compute_nothing():
    d = da.from_array(np.ones((2, 3), np.float32), chunks=1).map_blocks(explode, dtype=np.float32)
    lazy_mask = da.ones((2, 3), dtype=bool, chunks=1).map_blocks(explode, dtype=bool)
    fs.softmax(d, where=lazy_mask)
    with pytest.raises(TypeError, match="where must be a boolean"):
        fs.softmax(d, where=np.ones((2, 3)))
    with pytest.raises(TypeError, match="where must be a boolean"):
        fs.log_softmax(d, where=da.ones((2, 3), chunks=1))
    with pytest.raises(ValueError, match="does not broadcast"):
        fs.logsumexp(d, where=np.ones((2,), bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        fs.logsumexp(d, where=da.ones((4, 3), dtype=bool, chunks=2))


# ---- worker processes -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def process_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            yield client


@pytest.mark.parametrize("name", OPS)
def test_worker_processes(process_cluster, name):
    """Partial statistics and block functions pickle and run in other processes."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((8, 30)) * 4).astype(np.float32)
    x[0, 3] = nan
    x[1, :] = -inf
    x[2, 10:20] = -inf
    x[3, 29] = inf
    for chunks, axis in [((4, 7), -1), ((3, 30), -1), ((8, 1), 0), ((2, 9), None), ((5, 11), (0, 1))]:
        for temperature in (1.0, 0.0, 2.5):
            check_against_memory(name, x, chunks, axis, temperature, keepdims=True, scheduler=process_cluster,
                                 against_reference=False)
    mask = da.from_array(rng.random((8, 30)) < 0.7, chunks=(3, 8))
    fn = FUNCTIONS[name][0]
    for chunks in [(4, 7), (3, 30)]:
        got = fn(da.from_array(x, chunks=chunks), where=mask).compute(scheduler=process_cluster)
        assert_close(name, got, fn(x, where=mask.compute()), np.float32, f"where chunks={chunks}")
