"""fastsoftmax.sample (the sampling kernels) against reference.sample_distribution.

Each distribution test draws 200,000 indices (many copies of a row in one
call, fixed seeds) and compares the counts with the exact filtered
distribution by a chi-square test (p > 1e-4): no index outside its support,
and the counts inside it as the probabilities say.
"""
import doctest
import io
import math
import tracemalloc

import numpy as np
import pytest
from numpy.exceptions import AxisError

import fastsoftmax as fs
from fastsoftmax import _sample, reference
from fastsoftmax.__main__ import sample_demo

chisquare = pytest.importorskip("scipy.stats").chisquare

DRAWS = 200_000
P_MIN = 1e-4
INF = math.inf

ROW = [1.0, 2.5, -0.5, 0.3, 2.0, -1.2, 0.9, 1.7]


def assert_matches(indices, probs):
    """The draws `indices` (any shape) follow `probs` (one row): none outside
    its support, and a chi-square test on the counts, with the entries
    expected fewer than 5 times pooled into one category."""
    probs = np.asarray(probs, dtype=np.float64)
    counts = np.bincount(np.ravel(indices), minlength=probs.size)
    assert counts.size == probs.size, "an index beyond the row"
    support = probs > 0
    assert counts[~support].sum() == 0, f"drew outside the support: {np.flatnonzero(counts * ~support)}"
    if support.sum() == 1:
        return
    drawn = counts.sum()
    expected = probs[support] / probs[support].sum() * drawn
    observed = counts[support]
    rare = expected < 5
    if rare.any():
        expected = np.append(expected[~rare], expected[rare].sum())
        observed = np.append(observed[~rare], observed[rare].sum())
    pvalue = chisquare(observed, expected).pvalue
    assert pvalue > P_MIN, (pvalue, observed.tolist(), expected.round(1).tolist())


def draws(row, seed, dtype=np.float64, n_draws=DRAWS, **kw):
    """n_draws indices from copies of `row`, in one call."""
    x = np.tile(np.asarray(row, dtype=dtype), (n_draws, 1))
    return fs.sample(x, rng=seed, **kw)


def check(row, seed, dtype=np.float64, **kw):
    filters = {k: v for k, v in kw.items() if k != "num_threads"}
    expected = reference.sample_distribution(np.asarray(row, dtype=dtype), **filters)
    assert_matches(draws(row, seed, dtype, **kw), expected)
    return expected


# ---- distributions ------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0, 1e-3, 30.0, INF])
def test_temperature(temperature):
    check(ROW, 1, temperature=temperature)


@pytest.mark.parametrize("top_k", [1, 2, 3, 7, 8, 50])
def test_top_k(top_k):
    expected = check(ROW, 2, top_k=top_k)
    assert np.count_nonzero(expected) == min(top_k, len(ROW))


@pytest.mark.parametrize("top_p", [0.05, 0.4, 0.7, 0.9, 0.99, 1.0])
def test_top_p(top_p):
    check(ROW, 3, top_p=top_p)


@pytest.mark.parametrize("min_p", [0.0, 0.1, 0.3, 0.6, 1.0])
def test_min_p(min_p):
    check(ROW, 4, min_p=min_p)


@pytest.mark.parametrize("kw", [
    dict(top_k=5, top_p=0.8),
    dict(top_k=4, min_p=0.3),
    dict(top_p=0.9, min_p=0.1),
    dict(temperature=0.7, top_k=6, top_p=0.85, min_p=0.05),
    dict(temperature=1.6, top_k=7, top_p=0.95, min_p=0.2),
    dict(temperature=INF, top_k=3, top_p=0.5),
], ids=str)
def test_filter_combinations(kw):
    check(ROW, 5, **kw)


def test_ties_at_the_top_k_boundary_are_kept():
    expected = check([1.0, 3.0, 2.0, 2.0, 0.0, 2.0], 6, top_k=2)
    assert np.count_nonzero(expected) == 4


def test_ties_at_the_top_p_boundary_are_kept():
    # probabilities 0.4, 0.2, 0.2, 0.2: 0.5 is reached inside the tied group
    row = np.log([0.4, 0.2, 0.2, 0.2])
    expected = check(row, 7, top_p=0.5)
    assert np.count_nonzero(expected) == 4
    flat = check(np.zeros(6), 8, top_p=0.3)
    assert np.count_nonzero(flat) == 6


@pytest.mark.parametrize("kw", [dict(), dict(top_k=40, top_p=0.9), dict(top_p=0.6), dict(top_k=300, min_p=0.02),
                                dict(top_p=0.97, min_p=0.001), dict(temperature=INF, top_p=0.5)], ids=str)
def test_long_rows(kw):
    """Rows of several draw blocks, selections of many partition rounds, and
    the heap and quickselect paths of top-k."""
    row = np.random.default_rng(9).standard_normal(700) * 1.5
    row[::7] = row[3]                                   # many ties
    expected = reference.sample_distribution(row, **kw)
    x = np.tile(row, (DRAWS // 10, 1))
    gen = np.random.default_rng(10)
    assert_matches([fs.sample(x, rng=gen, **kw) for _ in range(10)], expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["head-and-tail", "dense"])
def test_top_p_on_long_rows(case, dtype):
    """Rows long enough for top-p to sum the mass by exponent first, with the
    boundary among a few likely entries or inside a dense cluster; 20,000
    draws."""
    n = 5000
    gen = np.random.default_rng(40)
    if case == "head-and-tail":
        row = gen.uniform(-25.0, -20.0, n)
        row[gen.choice(n, 30, replace=False)] = gen.uniform(0.0, 3.0, 30)
        kw = dict(top_p=0.8)
    else:
        row = gen.uniform(0.0, 0.05, n)
        kw = dict(top_p=0.5, temperature=0.5)
    row = row.astype(dtype)
    expected = reference.sample_distribution(row, **kw)
    x = np.tile(row, (2000, 1))
    draw_gen = np.random.default_rng(41)
    assert_matches([fs.sample(x, rng=draw_gen, **kw) for _ in range(10)], expected)


@pytest.mark.parametrize("kw", [dict(top_k=50), dict(top_k=100, top_p=0.99), dict(top_k=3000)], ids=str)
def test_top_k_with_many_ties_at_the_boundary(kw):
    """Most of the row ties at the k-th largest value (0, or -inf): all kept."""
    row = np.zeros(5000)
    row[::250] = 8.0
    row[1::3] = -INF
    expected = reference.sample_distribution(row, **kw)
    assert np.count_nonzero(expected) > 3000
    x = np.tile(row, (2000, 1))
    draw_gen = np.random.default_rng(42)
    assert_matches([fs.sample(x, rng=draw_gen, **kw) for _ in range(10)], expected)


@pytest.mark.parametrize("pattern", ["ascending", "descending", "two-values", "equal"])
def test_selection_on_structured_rows(pattern):
    n = 500
    row = {"ascending": np.linspace(-3, 3, n), "descending": np.linspace(3, -3, n),
           "two-values": np.where(np.arange(n) % 3 == 0, 1.0, 0.0), "equal": np.zeros(n)}[pattern]
    for kw in (dict(top_p=0.5), dict(top_k=260), dict(top_k=20)):
        expected = reference.sample_distribution(row, **kw)
        assert_matches(draws(row, 11, n_draws=DRAWS // 4, **kw), expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64, np.int8])
def test_dtypes(dtype):
    row = np.array([3, 1, 0, 2, -2, 1, 4], dtype=dtype)
    check(row, 12, dtype=dtype, top_k=5, top_p=0.95, temperature=1.3)


def test_bool_logits():
    row = np.array([True, False, True, False])
    check(row, 13, dtype=bool, temperature=0.5)


def test_minus_inf_entries_are_never_drawn():
    row = [-INF, 0.0, -INF, 1.0, -INF]
    for kw in (dict(), dict(top_k=4), dict(temperature=INF), dict(top_p=1.0)):
        expected = check(row, 14, **kw)
        assert expected[[0, 2, 4]].sum() == 0


# ---- the order of the filters -----------------------------------------------

def test_order_top_k_then_top_p():
    # top-k first: [0.4, 0.3] renormalised is [0.571, 0.429], top-p 0.5 keeps {0}.
    # top-p first would keep {0, 1} (0.4 < 0.5 <= 0.7).
    expected = check(np.log([0.4, 0.3, 0.2, 0.1]), 15, top_k=2, top_p=0.5)
    assert np.flatnonzero(expected).tolist() == [0]


def test_order_top_p_then_min_p():
    # top-p 0.6 keeps {0, 1} of [0.5, 0.3, 0.2], min-p 0.5 keeps both (0.3 >= 0.25).
    # min-p first keeps {0, 1} renormalised to [0.625, 0.375]: top-p 0.6 would keep {0}.
    expected = check(np.log([0.5, 0.3, 0.2]), 16, top_p=0.6, min_p=0.5)
    assert np.flatnonzero(expected).tolist() == [0, 1]


def test_order_temperature_then_top_p():
    # at T = 2 the probabilities are [0.42, 0.33, 0.25]: top-p 0.45 keeps {0, 1};
    # top-p at T = 1 ([0.5, 0.3, 0.2]) would keep {0}.
    expected = check(np.log([0.5, 0.3, 0.2]), 17, temperature=2.0, top_p=0.45)
    assert np.flatnonzero(expected).tolist() == [0, 1]


def test_order_temperature_then_min_p():
    # at T = 2 the cut is 0.5 * 0.42 = 0.21 and all three stay; at T = 1 it is 0.25.
    expected = check(np.log([0.5, 0.3, 0.2]), 18, temperature=2.0, min_p=0.5)
    assert np.flatnonzero(expected).tolist() == [0, 1, 2]


def test_order_top_k_then_min_p_on_the_renormalised_set():
    # min_p is relative to p_max, so it is unaffected by the renormalisation of
    # top-k; the union must still respect both
    expected = check(np.log([0.4, 0.3, 0.2, 0.1]), 19, top_k=3, min_p=0.6)
    assert np.flatnonzero(expected).tolist() == [0, 1]


# ---- T = 0 ------------------------------------------------------------------

def test_zero_temperature_is_argmax():
    gen = np.random.default_rng(20)
    x = np.round(gen.standard_normal((500, 37)) * 2)      # many ties
    x[gen.random(x.shape) < 0.2] = -INF
    x[7] = -5.0
    x[9, :] = -INF
    x[9, 30] = 1.0
    for dtype in (np.float32, np.float64):
        xd = x.astype(dtype)
        np.testing.assert_array_equal(fs.sample(xd, temperature=0.0), np.argmax(xd, axis=-1))
        np.testing.assert_array_equal(fs.sample(xd, temperature=0.0, top_k=3, top_p=0.1, min_p=0.9),
                                      np.argmax(xd, axis=-1))


def test_zero_temperature_takes_the_first_plus_inf():
    assert fs.sample([1.0, INF, 3.0, INF], temperature=0) == 1


def test_zero_temperature_draws_no_random_numbers():
    gen = np.random.default_rng(21)
    before = gen.bit_generator.state
    fs.sample(np.zeros((50, 4)), temperature=0.0, rng=gen)
    assert gen.bit_generator.state == before
    # per-row temperatures: one number per row with T > 0
    t = np.array([0.0, 1.0, 0.0, 2.0, 0.0])
    fs.sample(np.zeros((5, 4)), temperature=t, rng=gen)
    fresh = np.random.default_rng(21)
    fresh.random(2)
    assert gen.bit_generator.state == fresh.bit_generator.state


def test_zero_temperature_with_where():
    x = np.array([[5.0, 1.0, 3.0, 3.0], [np.nan, 2.0, 0.0, 2.0]])
    mask = np.array([[False, True, True, True], [False, True, True, True]])
    np.testing.assert_array_equal(fs.sample(x, temperature=0, where=mask), [2, 1])


# ---- per-row temperatures -----------------------------------------------------

def test_per_row_temperatures():
    temps = np.array([0.0, 0.5, 1.0, 3.0, INF])
    x = np.tile(np.asarray(ROW), (DRAWS, 1))
    t = np.resize(temps, DRAWS)
    got = fs.sample(x, temperature=t, top_p=0.95, rng=22)
    for i, temperature in enumerate(temps):
        expected = reference.sample_distribution(ROW, temperature=temperature, top_p=0.95)
        assert_matches(got[i::len(temps)], expected)


def test_temperatures_broadcast_to_the_batch_shape():
    x = np.tile(np.asarray(ROW), (2, DRAWS // 2, 1))
    got = fs.sample(x, temperature=[[0.0], [1.0]], rng=23)
    assert got.shape == (2, DRAWS // 2)
    assert (got[0] == np.argmax(ROW)).all()
    assert_matches(got[1], reference.sample_distribution(ROW))
    with pytest.raises(ValueError, match="temperature"):
        fs.sample(x, temperature=[1.0, 2.0, 3.0])


def test_reference_per_row_temperatures():
    x = np.array([ROW, ROW])
    got = reference.sample_distribution(x, temperature=[0.0, 1.0])
    np.testing.assert_array_equal(got[0], np.eye(len(ROW))[np.argmax(ROW)])
    np.testing.assert_allclose(got[1], fs.softmax(np.asarray(ROW)), rtol=1e-14)


# ---- where= -------------------------------------------------------------------

def test_where_broadcast_mask():
    mask = np.array([True, False, True, True, False, True, True, True])
    expected = reference.sample_distribution(ROW, where=mask, top_k=4)
    assert expected[[1, 4]].sum() == 0
    x = np.tile(np.asarray(ROW), (DRAWS, 1))
    assert_matches(fs.sample(x, where=mask, top_k=4, rng=24), expected)


def test_where_ignores_masked_values():
    row = [np.nan, 1.0, INF, 0.5, -INF]
    mask = [False, True, False, True, True]
    expected = check(row, 25, where=mask)
    assert np.flatnonzero(expected).tolist() == [1, 3]


def test_where_per_row_and_strided():
    gen = np.random.default_rng(26)
    x = gen.standard_normal((3, 4, 6))
    big = gen.random((3, 1, 12)) < 0.6
    big[..., 0] = True
    mask = big[..., ::2]                                  # strided, broadcast over axis 1
    x_rep = np.repeat(x[:, :, None, :], DRAWS // 20, axis=2)
    got = fs.sample(x_rep, where=mask[:, :, None, :], top_p=0.9, rng=27)
    assert got.shape == (3, 4, DRAWS // 20)
    for i in range(3):
        for j in range(4):
            expected = reference.sample_distribution(x[i, j], where=mask[i, 0], top_p=0.9)
            counts = np.bincount(got[i, j], minlength=6)
            assert counts[expected == 0].sum() == 0


def test_where_is_not_expanded():
    x = np.zeros((2000, 5000))
    mask = np.ones((1, 5000), dtype=bool)
    tracemalloc.start()
    try:
        fs.sample(x, where=mask, rng=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < mask.size * 2000 // 4, peak


def test_where_checks():
    with pytest.raises(TypeError, match="where"):
        fs.sample([1.0, 2.0], where=[1, 0])
    with pytest.raises(ValueError, match="where"):
        fs.sample([1.0, 2.0], where=[True, False, True])


# ---- shapes, axes, threads ----------------------------------------------------

def test_one_dimensional_input_gives_a_scalar():
    got = fs.sample([0.1, 0.5, 0.2], rng=0)
    assert type(got) is np.int64 and 0 <= got < 3
    assert type(fs.sample(np.float64(2.0))) is np.int64


def test_result_shape_and_dtype():
    got = fs.sample(np.zeros((2, 3, 4)), axis=1, rng=0)
    assert got.shape == (2, 4) and got.dtype == np.int64
    assert fs.sample(np.zeros((0, 5)), rng=0).shape == (0,)


@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_axis(axis):
    x = np.random.default_rng(28).standard_normal((5, 6, 7))
    moved = np.moveaxis(x, axis, -1)
    np.testing.assert_array_equal(fs.sample(x, axis=axis, top_p=0.8, rng=29),
                                  fs.sample(moved, top_p=0.8, rng=29))
    np.testing.assert_array_equal(fs.sample(x, axis=axis, temperature=0), np.argmax(x, axis=axis))
    assert_matches(fs.sample(np.repeat(x[:1, :1], DRAWS // 10, axis=1)[..., :], rng=30).ravel(),
                   reference.sample_distribution(x[0, 0]))


def test_same_tokens_for_any_thread_count():
    x = np.random.default_rng(31).standard_normal((3000, 500)).astype(np.float32)
    kw = dict(temperature=np.linspace(0, 2, 3000), top_k=40, top_p=0.9, min_p=0.01)
    one = fs.sample(x, rng=32, num_threads=1, **kw)
    np.testing.assert_array_equal(one, fs.sample(x, rng=32, num_threads=2, **kw))
    np.testing.assert_array_equal(one, fs.sample(x, rng=32, **kw))
    gen = np.random.default_rng(32)
    np.testing.assert_array_equal(one, fs.sample(x, rng=gen, **kw))


def test_rng_kinds():
    x = np.zeros((100, 10))
    np.testing.assert_array_equal(fs.sample(x, rng=5), fs.sample(x, rng=np.random.default_rng(5)))
    assert fs.sample(x).shape == (100,)
    with pytest.raises(TypeError, match="rng"):
        fs.sample(x, rng="seed")
    with pytest.raises(TypeError, match="rng"):
        fs.sample(x, rng=np.random.RandomState(0))


# ---- errors -------------------------------------------------------------------

@pytest.mark.parametrize("kw, error, name", [
    (dict(top_k=-3), ValueError, "top_k"),
    (dict(top_k=2.0), TypeError, "top_k"),
    (dict(top_k=True), TypeError, "top_k"),
    (dict(top_p=0.0), ValueError, "top_p"),
    (dict(top_p=1.5), ValueError, "top_p"),
    (dict(top_p=math.nan), ValueError, "top_p"),
    (dict(top_p="0.5"), TypeError, "top_p"),
    (dict(min_p=-0.1), ValueError, "min_p"),
    (dict(min_p=1.01), ValueError, "min_p"),
    (dict(min_p="0.1"), TypeError, "min_p"),
    (dict(min_p=[0.1, 0.2, 0.3]), ValueError, "min_p"),
    (dict(top_k=[1, -1]), ValueError, "top_k"),
    (dict(top_k=[1.0, 2.0]), TypeError, "top_k"),
    (dict(top_p=[0.5, 0.0]), ValueError, "top_p"),
    (dict(temperature=-1.0), ValueError, "temperature"),
    (dict(temperature=math.nan), ValueError, "temperature"),
    (dict(temperature=[1.0, -1.0]), ValueError, "temperature"),
    (dict(temperature="hot"), TypeError, "temperature"),
    (dict(temperature=[True, False]), TypeError, "temperature"),
    (dict(num_threads=0), ValueError, "num_threads"),
    (dict(axis=1.0), TypeError, "axis"),
], ids=str)
def test_argument_errors(kw, error, name):
    with pytest.raises(error, match=name):
        fs.sample(np.zeros((2, 3)), **kw)


def test_axis_out_of_range():
    with pytest.raises(AxisError):
        fs.sample(np.zeros((2, 3)), axis=2)


def test_unsupported_dtype():
    with pytest.raises(TypeError, match="complex"):
        fs.sample(np.zeros(3, dtype=complex))


@pytest.mark.parametrize("row, message", [
    ([0.0, math.nan, 1.0], "contains NaN"),
    ([-INF, -INF], "has nothing to draw"),
    ([1.0, INF], r"contains \+inf"),
], ids=["nan", "all-minus-inf", "plus-inf"])
def test_bad_rows_are_named(row, message):
    x = np.zeros((3, 4, len(row)))
    x[2, 1] = row
    for kw in (dict(), dict(top_k=1), dict(top_k=300), dict(top_p=0.5)):
        with pytest.raises(ValueError, match=r"row \(2, 1\) " + message):
            fs.sample(x, **kw)
    with pytest.raises(ValueError, match=r"row 1 " + message):
        fs.sample(x[2], **kw)
    with pytest.raises(ValueError, match=message):
        reference.sample_distribution(x)


def test_all_masked_and_empty_rows():
    with pytest.raises(ValueError, match="row 1 has nothing to draw"):
        fs.sample(np.zeros((2, 3)), where=[[True, True, True], [False, False, False]])
    with pytest.raises(ValueError, match="nothing to draw"):
        fs.sample(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="nothing to draw"):
        fs.sample([-INF, -INF], temperature=0.0)
    with pytest.raises(ValueError, match="NaN"):
        fs.sample([1.0, math.nan], temperature=0.0)


def test_docstring_examples():
    for module in (_sample, reference):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0


def test_demo_shows_sampling():
    out = io.StringIO()
    sample_demo(out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()[2:] if line.strip()}
    assert "[1.0000, 0.0000, 0.0000, 0.0000]" in lines["temperature=0"]
    assert lines["top_k=2"].split("]")[0].endswith("0.0000, 0.0000")


def test_huge_top_k_keeps_everything():
    row = np.array(ROW)
    x = np.tile(row, (1000, 1))
    np.testing.assert_array_equal(fs.sample(x, top_k=10**30, rng=43), fs.sample(x, rng=43))


def test_every_instruction_set(isa):
    """The probabilities come from the softmax kernels of the variant in use."""
    check(ROW, 44, top_k=6, top_p=0.9, temperature=0.8)
    check(ROW, 45, dtype=np.float32, min_p=0.1, temperature=1.3)
