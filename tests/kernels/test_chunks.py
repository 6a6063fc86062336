"""The kernel table's ``chunk_stats`` and ``chunk_write`` entries, for every
instruction-set variant (the ``isa`` fixture): rows longer than 65536
elements, cut into chunks whose statistics are merged in order, with and
without a where= selection; and the same kernels driven piece by piece
through ``fastsoftmax._rows.row_stats``, ``merge_row_stats`` and
``write_from_stats`` (what fastsoftmax.dask runs on each block)."""
import functools
import math

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _rows, reference
from util import DTYPES, FUNCTIONS, assert_close, logits, oracle, read_only_cache

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf, nan = math.inf, math.nan
TEMPS = [0.0, 0.5, 1.0, 3.0, inf]
OPS = {"softmax": _rows.SOFTMAX, "log_softmax": _rows.LOG_SOFTMAX, "logsumexp": _rows.LOGSUMEXP}


@read_only_cache
def _long_rows(dtype, n):
    x = logits((3, n), dtype, seed=n)
    x[0, [10, 40_000, n - 1]] = x[0].max() + 1     # ties for the maximum in three chunks
    x[1, ::5] = -inf
    x[2, 50_000] = nan
    return x


@read_only_cache
def _long_selection(n):
    """A where= selection for _long_rows(dtype, n): random, with every entry
    of row 0 at the maximum kept, and none of a chunk-sized stretch of row 1."""
    mask = np.random.default_rng(n).random((3, n)) < 0.7
    mask[0, [10, 40_000, n - 1]] = True
    mask[1, 1_000:67_000] = False
    mask[1, 0] = True
    return mask


@functools.lru_cache(maxsize=None)
def _long_want(name, dtype, n, t, selected=False):
    """The first two rows of _long_rows(dtype, n), with -inf where
    _long_selection(n) does not select if ``selected``: the long-double
    oracle's result at 0 < t < inf, else the reference's."""
    x = _long_rows(dtype, n)
    if selected:
        x = np.where(_long_selection(n), x, -inf).astype(dtype)
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
            got = fast(x, temperature=t, num_threads=1)
            assert_close(name, got[:2], _long_want(name, dtype, n, t), dtype, f"{isa} n={n} T={t}")
            assert np.isnan(got[2]).all(), f"{isa} {name} NaN row n={n} T={t}"
            # one thread takes the kernels' own chunk loop, two the pieces path: the same bits
            np.testing.assert_array_equal(fast(x, temperature=t, num_threads=2), got)

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [65_536 + 3, 3 * 32_768 + 5])
def test_long_rows_with_a_selection_every_variant(isa, dtype, n):
    """Rows longer than 65536 elements under where=: the chunks count only
    the selected entries (a chunk may have none), against the long-double
    oracle of the rows with -inf where not selected."""
    x, mask = _long_rows(dtype, n), _long_selection(n)
    for t in (0.5, 3.0):
        for name, (fast, _) in FUNCTIONS.items():
            got = fast(x, temperature=t, where=mask, num_threads=1)
            assert_close(name, got[:2], _long_want(name, dtype, n, t, selected=True), dtype, f"{isa} n={n} T={t}")
            nan_selected = mask[2, 50_000]
            assert np.isnan(got[2]).all() == nan_selected, f"{isa} {name} NaN row n={n} T={t}"
            np.testing.assert_array_equal(fast(x, temperature=t, where=mask, num_threads=2), got)


def _pieces(a, cuts):
    return [None if a is None else np.ascontiguousarray(a[:, start:stop]) for start, stop in zip(cuts, cuts[1:])]


@pytest.mark.parametrize("masked", [False, True], ids=["all", "where"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_statistics_by_pieces_every_variant(isa, dtype, masked):
    """row_stats of each piece of the rows (chunk_stats), merged in order,
    then write_from_stats (chunk_write): the reference's result for the
    whole rows, in float32 and float64, with and without a selection.  Piece
    widths cover vector tails; rows hold -inf, a NaN, +inf, nothing
    selected."""
    rows, n = 6, 300
    cuts = [0, 1, 17, 64, 65, 200, 300]
    x = logits((rows, n), dtype, seed=21)
    x[1, :40] = -inf
    x[2, 150] = nan
    x[3, 299] = inf
    mask = None
    if masked:
        mask = np.random.default_rng(21).random((rows, n)) < 0.7
        mask[4] = False
        mask[5, :] = False
        mask[5, 64] = True
    for t in (0.5, 1.0):
        for name, op in OPS.items():
            parts = np.stack([_rows.row_stats(op, xp, t, 1, mp)
                              for xp, mp in zip(_pieces(x, cuts), _pieces(mask, cuts))], axis=1)
            merged = _rows.merge_row_stats(parts, dtype, t)
            want = FUNCTIONS[name][1](x, temperature=t, where=mask)
            context = f"{isa} masked={masked} T={t}"
            if name == "logsumexp":
                out = np.empty(rows, dtype)
                _rows.write_from_stats(op, None, merged, n, t, out, 1)
                assert_close(name, out, want, dtype, context)
                continue
            out = np.empty_like(x)
            for (start, stop), xp, mp in zip(zip(cuts, cuts[1:]), _pieces(x, cuts), _pieces(mask, cuts)):
                piece = np.empty_like(xp)
                _rows.write_from_stats(op, xp, merged, n, t, piece, 1, mp)
                out[:, start:stop] = piece
            assert_close(name, out, want, dtype, context)


@pytest.mark.parametrize("op", [_rows.SOFTMAX, _rows.LOG_SOFTMAX])
def test_row_stats_merged_in_any_split_equal_the_whole_row(isa, op):
    x = np.random.default_rng(8).standard_normal((4, 50)).astype(np.float64) * 10
    x[1, :30] = -inf
    x[2, 7] = nan
    x[3, 49] = inf
    whole = _rows.row_stats(op, x, 1.0, 1)
    cuts = [0, 1, 1, 17, 30, 50]
    parts = np.stack([_rows.row_stats(op, np.ascontiguousarray(x[:, a:b]), 1.0, 1)
                      for a, b in zip(cuts, cuts[1:])], axis=1)
    merged = _rows.merge_row_stats(parts, np.float64, 1.0)
    np.testing.assert_array_equal(merged["max"], whole["max"])
    np.testing.assert_array_equal(merged["has_nan"], whole["has_nan"])
    assert merged["max"].tolist()[:1] == [x[0].max()]
    for row in (0, 1):               # S = count + rest relative to the maximum, against math.fsum
        m = x[row].max()
        want = math.fsum(math.exp(v - m) for v in x[row])
        assert merged["count"][row] + merged["rest"][row] + merged["rest_comp"][row] == pytest.approx(want, rel=1e-14)
    out = np.empty_like(x)
    _rows.write_from_stats(op, x, merged, 50, 1.0, out, 1)
    assert_close("softmax" if op == _rows.SOFTMAX else "log_softmax", out,
                 (reference.softmax if op == _rows.SOFTMAX else reference.log_softmax)(x), np.float64)


def test_row_stats_with_a_mask_equal_the_masked_row_in_memory(isa):
    """Masked entries take no part whatever they hold; a piece with no kept
    entry adds nothing, and a row with none comes out masked."""
    x = np.random.default_rng(10).standard_normal((3, 40))
    mask = np.ones((3, 40), bool)
    mask[0, 5:25] = False
    x[0, 5:25] = [nan, inf] * 10
    mask[1] = False
    x[2, 3] = -inf
    parts = np.stack([_rows.row_stats(_rows.LOG_SOFTMAX, np.ascontiguousarray(x[:, a:b]), 1.0, 1,
                                      np.ascontiguousarray(mask[:, a:b]))
                      for a, b in [(0, 5), (5, 25), (25, 40)]], axis=1)
    assert parts["any_entry"][0].tolist() == [1, 0, 1]
    merged = _rows.merge_row_stats(parts, np.float64, 1.0)
    assert merged["any_entry"].tolist() == [1, 0, 1] and merged["has_nan"].tolist() == [0, 0, 0]
    out = np.empty_like(x)
    _rows.write_from_stats(_rows.LOG_SOFTMAX, x, merged, 40, 1.0, out, 1, mask)
    np.testing.assert_allclose(out, fs.log_softmax(x, where=mask), rtol=1e-14)
    with pytest.raises(ValueError, match="mask"):
        _rows.row_stats(_rows.SOFTMAX, x, 1.0, 1, mask=mask[:, :5])
    with pytest.raises(ValueError, match="mask"):
        _rows.write_from_stats(_rows.SOFTMAX, x, merged, 40, 1.0, out, 1, mask.astype(np.uint8))
