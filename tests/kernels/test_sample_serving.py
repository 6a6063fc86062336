"""fastsoftmax.sample as a serving step (per-row settings, penalties, logit
bias, log-probabilities, per-row generators) and fastsoftmax.verify_draft,
against fastsoftmax.reference.

Distributions are checked as in test_sample.py: many copies of a row in one
call, fixed seeds, a chi-square test of the counts against the exact
distribution (p > 1e-4).
"""
import math
import tracemalloc

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference
from test_sample import ROW, assert_matches

DRAWS = 40_000
INF = math.inf

HISTORY = [2, 4, 4, -1, 1, 4, -1]             # 4 three times, padding
PENALTIES = dict(history=HISTORY, repetition_penalty=1.4, presence_penalty=0.3, frequency_penalty=0.2)
BIAS = np.array([0.0, -INF, 0.5, 0.0, 1.0, 0.0, -0.7, 0.0])


def tiled(row, count=DRAWS, dtype=np.float64):
    return np.tile(np.asarray(row, dtype=dtype), (count, 1))


def hand_edited(row, history, repetition, presence, frequency, bias):
    """The penalties and bias by their definitions, in NumPy (an oracle for
    the reference itself)."""
    z = np.array(row, dtype=np.float64)
    ids, counts = np.unique([v for v in history if v != -1], return_counts=True)
    raw = z[ids]
    z[ids] = np.where(raw > 0, raw / repetition, raw * repetition) - presence - frequency * counts
    return z + bias


# ---- per-row settings ---------------------------------------------------------

def test_per_row_filters_mixed_in_one_batch():
    settings = [dict(top_k=0, top_p=1.0, min_p=0.0, temperature=1.0),
                dict(top_k=2, top_p=1.0, min_p=0.0, temperature=0.7),
                dict(top_k=5, top_p=0.8, min_p=0.1, temperature=1.5),
                dict(top_k=0, top_p=0.5, min_p=0.0, temperature=1.0),
                dict(top_k=7, top_p=1.0, min_p=0.3, temperature=0.0)]
    arrays = {key: np.resize([s[key] for s in settings], DRAWS) for key in settings[0]}
    got = fs.sample(tiled(ROW), rng=1, **arrays)
    for i, s in enumerate(settings):
        expected = reference.sample_distribution(ROW, **{k: (v or None) if k == "top_k" else v for k, v in s.items()})
        assert_matches(got[i::len(settings)], expected)
    # the reference takes the same arrays
    five = reference.sample_distribution(tiled(ROW, 5), **{k: v[:5] for k, v in arrays.items()})
    for i, s in enumerate(settings):
        np.testing.assert_array_equal(five[i], reference.sample_distribution(ROW, **s))


def test_top_k_zero_is_off():
    x = tiled(ROW, 1000)
    np.testing.assert_array_equal(fs.sample(x, top_k=0, rng=2), fs.sample(x, rng=2))
    np.testing.assert_array_equal(fs.sample(x, top_k=[0] * 1000, top_p=[1.0] * 1000, rng=2), fs.sample(x, rng=2))
    np.testing.assert_array_equal(reference.sample_distribution(ROW, top_k=0), reference.sample_distribution(ROW))


def test_settings_broadcast_to_the_batch_shape():
    x = np.tile(np.asarray(ROW), (2, DRAWS // 2, 1))
    got = fs.sample(x, top_k=[[1], [0]], min_p=np.array([0.0, 0.0])[:, None], rng=3)
    assert (got[0] == np.argmax(ROW)).all()
    assert_matches(got[1], reference.sample_distribution(ROW))
    with pytest.raises(ValueError, match="top_k of shape"):
        fs.sample(x, top_k=[1, 2, 3])


# ---- penalties and logit_bias --------------------------------------------------

def test_reference_penalties_follow_their_definitions():
    for kw in (dict(repetition_penalty=1.4), dict(presence_penalty=0.3), dict(frequency_penalty=0.2),
               {k: v for k, v in PENALTIES.items() if k != "history"}):
        full = {**dict(repetition_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0), **kw}
        z = hand_edited(ROW, HISTORY, full["repetition_penalty"], full["presence_penalty"],
                        full["frequency_penalty"], np.zeros(len(ROW)))
        got = reference.sample_distribution(ROW, history=HISTORY, **kw)
        np.testing.assert_allclose(got, reference.softmax(z), rtol=1e-13)
        assert fs.sample(np.asarray(ROW), temperature=0, history=HISTORY, **kw) == np.argmax(z)
    z = hand_edited(ROW, HISTORY, 1.4, 0.3, 0.2, BIAS)
    np.testing.assert_allclose(reference.sample_distribution(ROW, logit_bias=BIAS, **PENALTIES),
                               reference.softmax(z), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_penalties_and_bias_distribution(dtype):
    kw = dict(logit_bias=BIAS, top_k=6, top_p=0.95, **PENALTIES)
    expected = reference.sample_distribution(np.asarray(ROW, dtype=dtype), **kw)
    assert expected[1] == 0                               # banned by the bias
    assert_matches(fs.sample(tiled(ROW, dtype=dtype), rng=4, **kw), expected)


def test_penalties_per_row_with_padded_histories():
    rows = 4
    x = tiled(ROW, DRAWS)
    history = np.resize(np.array([[4, 4, 4, -1], [-1, -1, -1, -1], [0, 1, 2, 3], [7, -1, 7, -1]]), (DRAWS, 4))
    repetition = np.resize([1.0, 2.0, 0.5, 1.3], DRAWS)
    frequency = np.resize([0.5, 1.0, 0.0, 0.4], DRAWS)
    bias = np.zeros((DRAWS, len(ROW)))
    bias[2::rows, 0] = -INF
    got = fs.sample(x, history=history, repetition_penalty=repetition, frequency_penalty=frequency,
                    logit_bias=bias, rng=5)
    for i in range(rows):
        expected = reference.sample_distribution(ROW, history=history[i], repetition_penalty=repetition[i],
                                                 frequency_penalty=frequency[i], logit_bias=bias[i])
        assert_matches(got[i::rows], expected)


def test_order_penalties_bias_where():
    # the penalty acts on the raw logit: 2.5 / 2 = 1.25, then the bias makes it 3.25;
    # the bias first would give (2.5 + 2) / 2 = 2.25 < 3.0 (entry 4)
    row = [0.0, 2.5, 0.0, 0.0, 3.0]
    bias = [0.0, 2.0, 0.0, 0.0, 0.0]
    assert fs.sample(row, temperature=0, history=[1], repetition_penalty=2.0, logit_bias=bias) == 1
    # where= removes an entry whatever its bias
    assert fs.sample(row, temperature=0, logit_bias=[0, 0, 9.0, 0, 0], where=[1, 1, 0, 1, 1] == np.ones(5)) == 4


def test_logits_are_never_modified_and_not_expanded():
    x = np.random.default_rng(6).standard_normal((1000, 4000))
    before = x.copy()
    history = np.random.default_rng(7).integers(-1, 4000, (1000, 64))
    bias = np.zeros(4000)
    bias[::3] = -1.0
    tracemalloc.start()
    try:
        fs.sample(x, history=history, repetition_penalty=1.2, frequency_penalty=0.1, logit_bias=bias, rng=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(x, before)
    assert peak < x.nbytes // 8, peak


def test_penalty_and_history_errors():
    x = np.zeros((3, 5))
    with pytest.raises(ValueError, match=r"history of row 1 holds token id 5, outside \[-1, 5\)"):
        fs.sample(x, history=[[0, 1], [5, 0], [1, 1]], presence_penalty=1.0)
    with pytest.raises(ValueError, match="token id -2"):
        fs.sample(x, history=[[0, -2], [0, 0], [1, 1]], repetition_penalty=1.5, temperature=0)
    with pytest.raises(ValueError, match="frequency_penalty needs history"):
        fs.sample(x, frequency_penalty=0.5)
    with pytest.raises(TypeError, match="history"):
        fs.sample(x, history=[[0.5]] * 3, presence_penalty=1.0)
    with pytest.raises(ValueError, match="history must have the batch shape"):
        fs.sample(x, history=np.zeros((1, 3, 2), dtype=int), presence_penalty=1.0)
    with pytest.raises(ValueError, match="history of shape"):
        fs.sample(x, history=np.zeros((2, 2), dtype=int), presence_penalty=1.0)
    with pytest.raises(ValueError, match="repetition_penalty"):
        fs.sample(x, history=[[0]] * 3, repetition_penalty=0.0)
    with pytest.raises(ValueError, match="presence_penalty"):
        fs.sample(x, history=[[0]] * 3, presence_penalty=[0.0, INF, 0.0])
    with pytest.raises(ValueError, match="logit_bias of shape"):
        fs.sample(x, logit_bias=np.zeros(4))
    with pytest.raises(TypeError, match="logit_bias"):
        fs.sample(x, logit_bias=np.zeros(5, dtype=bool))
    # the counts start at zero again after a bad row: the next call is unaffected
    np.testing.assert_array_equal(fs.sample(x, temperature=0, history=[[0, 0], [0, 0], [0, 0]], presence_penalty=1.0),
                                  [1, 1, 1])


# ---- log-probabilities -------------------------------------------------------

def expected_top(probs, count):
    """The `count` most likely entries (ties by lower index) and their logs,
    -1 and -inf past the nonzero ones."""
    order = np.argsort(-probs, kind="stable")[:count]
    order = order[probs[order] > 0]
    tokens = np.full(count, -1)
    logs = np.full(count, -INF)
    tokens[:order.size] = order
    logs[:order.size] = np.log(probs[order])
    return tokens, logs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_processed_logprobs(dtype):
    x = np.random.default_rng(9).standard_normal((6, 300)).astype(dtype) * 2
    kw = dict(temperature=np.array([1.0, 0.7, 1.3, 0.0, 1.0, INF]), top_k=[0, 40, 0, 5, 3, 0],
              top_p=[1.0, 0.9, 0.6, 1.0, 1.0, 1.0], min_p=[0.0, 0.0, 0.05, 0.0, 0.0, 0.0],
              history=np.arange(60).reshape(6, 10), presence_penalty=0.5, logit_bias=np.linspace(-1, 1, 300))
    out = fs.sample(x, logprobs="processed", top_logprobs=8, rng=10, **kw)
    assert out.logprobs.dtype == dtype and out.top_logprobs.dtype == dtype and out.top_tokens.dtype == np.int64
    probs = reference.sample_distribution(x, **kw)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for r in range(6):
        assert probs[r, out.tokens[r]] > 0
        np.testing.assert_allclose(out.logprobs[r], np.log(probs[r, out.tokens[r]]), atol=tol)
        tokens, logs = expected_top(probs[r], 8)
        np.testing.assert_array_equal(out.top_tokens[r], tokens)
        np.testing.assert_allclose(out.top_logprobs[r], logs, atol=tol)
    assert out.logprobs[3] == 0 and out.top_tokens[3].tolist() == [out.tokens[3]] + [-1] * 7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_raw_logprobs(dtype):
    x = np.random.default_rng(11).standard_normal((4, 200)).astype(dtype)
    x[1, 50:] = -INF                                      # fewer finite entries than asked for
    out = fs.sample(x, logprobs="raw", top_logprobs=160, top_k=3, history=np.zeros((4, 1), dtype=int),
                    repetition_penalty=3.0, where=np.arange(200) != 7, temperature=0.5, rng=12)
    lsm = reference.log_softmax(x.astype(np.float64))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.logprobs, lsm[np.arange(4), out.tokens], atol=tol)
    for r in range(4):
        tokens, logs = expected_top(np.exp(lsm[r]), 160)
        np.testing.assert_array_equal(out.top_tokens[r], tokens)
        np.testing.assert_allclose(out.top_logprobs[r], logs, atol=tol)
    assert (out.top_tokens[1, 50:] == -1).all() and (out.top_logprobs[1, 50:] == -INF).all()


def test_logprobs_shapes_ties_and_checks():
    out = fs.sample([1.0, 3.0, 3.0, 0.0], temperature=INF, logprobs="processed", top_logprobs=3, rng=13)
    assert type(out.tokens) is np.int64 and out.logprobs.shape == () and out.top_tokens.shape == (3,)
    assert out.top_tokens.tolist() == [0, 1, 2]          # one probability: ties by lower index
    np.testing.assert_allclose(out.top_logprobs, np.log([0.25] * 3), atol=1e-15)
    out = fs.sample(np.zeros((2, 3, 4)), axis=1, logprobs="raw", rng=13)
    assert out.tokens.shape == (2, 4) and out.top_tokens.shape == (2, 4, 0)
    np.testing.assert_allclose(out.logprobs, np.log(1 / 3))
    with pytest.raises(ValueError, match="logprobs"):
        fs.sample([1.0, 2.0], logprobs="sampled")
    with pytest.raises(TypeError, match="logprobs"):
        fs.sample([1.0, 2.0], logprobs=True)
    with pytest.raises(ValueError, match="top_logprobs"):
        fs.sample([1.0, 2.0], top_logprobs=2)
    with pytest.raises(ValueError, match="top_logprobs"):
        fs.sample([1.0, 2.0], logprobs="raw", top_logprobs=-1)


# ---- generators ----------------------------------------------------------------

def seeded(seeds):
    return [np.random.default_rng(s) for s in seeds]


def test_per_row_generators_are_independent_of_the_batch():
    x = np.random.default_rng(14).standard_normal((6, 50))
    t = np.array([1.0, 0.0, 0.8, 1.2, 0.0, 1.0])
    kw = dict(top_p=0.9, history=np.arange(6 * 5).reshape(6, 5) % 50, presence_penalty=0.4)
    steps = [fs.sample(x, temperature=t, rng=gens, **kw) for gens in [seeded(range(6))] * 1]
    gens = seeded(range(6))
    first = np.stack([fs.sample(x, temperature=t, rng=gens, **kw) for _ in range(20)])
    perm = np.array([3, 0, 5, 1, 4, 2])
    gens = seeded(perm)
    permuted = np.stack([fs.sample(x[perm], temperature=t[perm], rng=gens, history=kw["history"][perm],
                                   top_p=0.9, presence_penalty=0.4) for _ in range(20)])
    np.testing.assert_array_equal(permuted, first[:, perm])
    gens = seeded([2, 3])                                 # a smaller batch: rows 2 and 3 alone
    alone = np.stack([fs.sample(x[2:4], temperature=t[2:4], rng=gens, history=kw["history"][2:4],
                                top_p=0.9, presence_penalty=0.4) for _ in range(20)])
    np.testing.assert_array_equal(alone, first[:, 2:4])
    assert steps[0].tolist() == first[0].tolist()
    assert len(set(first[:, 0].tolist())) > 1             # the draws do vary


def test_zero_temperature_rows_leave_their_generator_alone():
    gens = seeded([1, 2, 3])
    before = [g.bit_generator.state for g in gens]
    fs.sample(np.zeros((3, 4)), temperature=[0.0, 1.0, 0.0], rng=gens)
    after = [g.bit_generator.state for g in gens]
    assert after[0] == before[0] and after[2] == before[2] and after[1] != before[1]
    fresh = np.random.default_rng(2)
    fresh.random()
    assert after[1] == fresh.bit_generator.state


def test_generators_draw_what_random_draws():
    """One Generator: one random() per row with T > 0, in row order, on the
    fast path and on the general one alike."""
    x = np.random.default_rng(15).standard_normal((30, 40)).astype(np.float32)
    fast = fs.sample(x, rng=np.random.default_rng(16))
    general = fs.sample(x, rng=np.random.default_rng(16), where=np.ones(40, dtype=bool))
    np.testing.assert_array_equal(fast, general)
    gens = seeded([16] * 30)
    u = np.random.default_rng(16).random()
    per_row = fs.sample(x, rng=gens)
    cdf = np.cumsum(reference.sample_distribution(x), axis=-1)
    np.testing.assert_array_equal(per_row, (cdf <= u).sum(axis=-1))


def test_generator_sequence_checks():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="one per row needs 3"):
        fs.sample(x, rng=seeded([1, 2]))
    with pytest.raises(TypeError, match=r"rng\[1\]"):
        fs.sample(x, rng=[np.random.default_rng(1), 5, np.random.default_rng(2)])
    with pytest.raises(TypeError, match="rng"):
        fs.sample(x, rng="seed")


def test_same_results_for_any_thread_count():
    x = np.random.default_rng(25).standard_normal((400, 300)).astype(np.float32)
    kw = dict(temperature=np.linspace(0, 2, 400), top_k=np.resize([0, 20], 400), top_p=0.9,
              history=np.random.default_rng(26).integers(-1, 300, (400, 30)), repetition_penalty=1.2,
              frequency_penalty=0.1, logit_bias=np.linspace(-1, 0, 300), logprobs="processed", top_logprobs=3)
    one = fs.sample(x, rng=seeded(range(400)), num_threads=1, **kw)
    two = fs.sample(x, rng=seeded(range(400)), num_threads=2, **kw)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    target = np.tile(x[:, None, :], (1, 3, 1))[:100]
    draft = np.tile([1, 2], (100, 1))
    np.testing.assert_array_equal(fs.verify_draft(target, draft, rng=27, num_threads=1)[0],
                                  fs.verify_draft(target, draft, rng=27, num_threads=2)[0])


# ---- verify_draft ------------------------------------------------------------------

TARGET = np.log(np.array([[0.30, 0.25, 0.20, 0.15, 0.10],
                          [0.05, 0.50, 0.20, 0.15, 0.10],
                          [0.20, 0.20, 0.20, 0.20, 0.20]]))       # K = 2, V = 5
Q = np.array([[0.10, 0.60, 0.10, 0.10, 0.10],
              [0.25, 0.25, 0.25, 0.15, 0.10]])


def assert_positions_match(tokens, expected):
    """Each position's tokens (-1 as category V) against the reference."""
    for i in range(tokens.shape[1]):
        assert_matches(np.where(tokens[:, i] < 0, expected.shape[-1] - 1, tokens[:, i]), expected[i])


@pytest.mark.parametrize("kw", [dict(), dict(temperature=0.7, top_k=4, top_p=0.9)], ids=str)
def test_verify_draft_against_the_reference(kw):
    draft = np.tile([1, 2], (DRAWS, 1))
    for q in (None, Q):
        target = np.tile(TARGET, (DRAWS, 1, 1))
        probs = None if q is None else np.tile(q, (DRAWS, 1, 1))
        tokens, accepted = fs.verify_draft(target, draft, probs, rng=17, **kw)
        assert tokens.shape == (DRAWS, 3) and accepted.shape == (DRAWS,)
        np.testing.assert_array_equal(accepted, (tokens >= 0).sum(axis=1) - 1)
        expected = reference.verify_draft_distribution(TARGET[None], [[1, 2]], None if q is None else q[None], **kw)[0]
        assert_positions_match(tokens, expected)


def test_verify_draft_emits_the_target_distribution():
    """Drafts drawn from q: the first token follows the target at position
    0, and the second, once the first is accepted, the target at position 1."""
    gen = np.random.default_rng(18)
    draft = np.stack([gen.choice(5, DRAWS, p=Q[0]), gen.choice(5, DRAWS, p=Q[1])], axis=1)
    kw = dict(temperature=1.3, top_p=0.95)
    tokens, accepted = fs.verify_draft(np.tile(TARGET, (DRAWS, 1, 1)), draft, np.tile(Q, (DRAWS, 1, 1)), rng=19,
                                       **kw)
    p0 = reference.sample_distribution(TARGET[0], **kw)
    p1 = reference.sample_distribution(TARGET[1], **kw)
    assert_matches(tokens[:, 0], p0)
    assert_matches(tokens[accepted >= 1, 1], p1)
    for b in range(3):                                   # and the reference says so for every draft
        d = reference.verify_draft_distribution(TARGET[None], [[b, 0]], Q[None], **kw)
        assert np.isclose(d[0, 0, 5], 0)
    mixture = sum(Q[0, b] * reference.verify_draft_distribution(TARGET[None], [[b, 0]], Q[None], **kw)[0, 0, :5]
                  for b in range(5))
    np.testing.assert_allclose(mixture, p0, atol=1e-12)


def test_verify_draft_greedy():
    target = np.stack([TARGET, TARGET[::-1]])            # argmaxes 0, 1, 0 and 0, 1, 0... per position
    argmax = target.argmax(axis=-1)
    draft = np.array([argmax[0, :2], [argmax[1, 0], (argmax[1, 1] + 1) % 5]])
    gen = np.random.default_rng(20)
    before = gen.bit_generator.state
    tokens, accepted = fs.verify_draft(target, draft, np.tile(Q, (2, 1, 1)), temperature=0, rng=gen)
    assert gen.bit_generator.state == before
    np.testing.assert_array_equal(tokens, [argmax[0], [argmax[1, 0], argmax[1, 1], -1]])
    np.testing.assert_array_equal(accepted, [2, 1])
    expected = reference.verify_draft_distribution(target, draft, temperature=0)
    for b in range(2):
        for i in range(3):
            assert expected[b, i, tokens[b, i]] == 1


def test_verify_draft_per_request_settings_and_generators():
    target = np.tile(TARGET, (4, 1, 1))
    draft = np.tile([1, 2], (4, 1))
    t = [0.0, 1.0, 0.5, 1.0]
    one = fs.verify_draft(target, draft, temperature=t, top_k=[0, 2, 0, 1], rng=seeded([1, 2, 3, 4]))
    two = fs.verify_draft(target[[3, 1]], draft[[3, 1]], temperature=[1.0, 1.0], top_k=[1, 2], rng=seeded([4, 2]))
    np.testing.assert_array_equal(two[0], one[0][[3, 1]])
    assert one[0][3].tolist() == [0, -1, -1]              # top_k=1: p(1) = 0 rejects, emits the argmax


def test_verify_draft_errors():
    target = np.zeros((2, 3, 5))
    draft = np.zeros((2, 2), dtype=int)
    q = np.full((2, 2, 5), 0.2)
    with pytest.raises(ValueError, match="target_logits"):
        fs.verify_draft(np.zeros((3, 5)), draft)
    with pytest.raises(ValueError, match="draft_tokens must have shape"):
        fs.verify_draft(target, np.zeros((2, 3), dtype=int))
    with pytest.raises(TypeError, match="draft_tokens"):
        fs.verify_draft(target, draft.astype(float))
    with pytest.raises(ValueError, match=r"draft_tokens\[1, 0\] = 5 is outside \[0, 5\)"):
        fs.verify_draft(target, [[0, 0], [5, 0]])
    with pytest.raises(ValueError, match="draft_probs must have shape"):
        fs.verify_draft(target, draft, q[:, :1])
    bad = q.copy()
    bad[1, 1, 0] = -0.1
    bad[1, 1, 1] = 0.5
    with pytest.raises(ValueError, match=r"draft_probs\[1, 1\]"):
        fs.verify_draft(target, draft, bad)
    bad = q.copy()
    bad[0, 1] *= 1.01
    with pytest.raises(ValueError, match=r"draft_probs\[0, 1\]"):
        fs.verify_draft(target, draft, bad, rng=0)
    target[1, 2] = np.nan
    with pytest.raises(ValueError, match="verify_draft.*row 1 contains NaN"):
        fs.verify_draft(target, draft, q, rng=0)
    with pytest.raises(ValueError, match="top_k"):
        fs.verify_draft(np.zeros((2, 3, 5)), draft, top_k=-1)


# ---- every instruction-set variant ---------------------------------------------------

def test_serving_arguments_on_every_instruction_set(isa):
    """Penalties, bias, per-row filters, log-probabilities and verify_draft
    run on the softmax kernels of the variant in use."""
    for dtype in (np.float32, np.float64):
        kw = dict(logit_bias=BIAS, top_k=np.resize([6, 0], 20_000), top_p=0.95, **PENALTIES)
        got = fs.sample(tiled(ROW, 20_000, dtype), rng=21, **kw)
        for i, k in enumerate((6, 0)):
            expected = reference.sample_distribution(np.asarray(ROW, dtype=dtype), **dict(kw, top_k=k))
            assert_matches(got[i::2], expected)
        x = np.random.default_rng(22).standard_normal((3, 700)).astype(dtype)
        out = fs.sample(x, logprobs="processed", top_logprobs=4, top_p=0.9, rng=23, **PENALTIES)
        probs = reference.sample_distribution(x, top_p=0.9, **PENALTIES)
        raw = fs.sample(x, logprobs="raw", top_logprobs=4, top_p=0.9, rng=23, **PENALTIES)
        np.testing.assert_array_equal(raw.tokens, out.tokens)
        lsm = reference.log_softmax(x.astype(np.float64))
        for r in range(3):
            tokens, logs = expected_top(probs[r], 4)
            np.testing.assert_array_equal(out.top_tokens[r], tokens)
            np.testing.assert_allclose(out.top_logprobs[r], logs, atol=1e-5)
            tokens, logs = expected_top(np.exp(lsm[r]), 4)
            np.testing.assert_array_equal(raw.top_tokens[r], tokens)
            np.testing.assert_allclose(raw.top_logprobs[r], logs, atol=1e-5)
        np.testing.assert_allclose(raw.logprobs, lsm[np.arange(3), raw.tokens], atol=1e-5)
        tokens, _ = fs.verify_draft(np.tile(TARGET, (20_000, 1, 1)).astype(dtype), np.tile([1, 2], (20_000, 1)),
                                    np.tile(Q, (20_000, 1, 1)).astype(dtype), rng=24)
        assert_positions_match(tokens, reference.verify_draft_distribution(TARGET[None], [[1, 2]], Q[None])[0])


def test_verify_draft_empty_batch_and_no_drafts():
    """Zero requests give (0, K+1) tokens and (0,) counts, as the reference's
    (0, K+1, V+1) distribution says; zero drafts (K = 0) emit only the bonus
    token, drawn from position 0 (T = 0: its argmax)."""
    target = np.zeros((0, 3, 5), np.float32)
    drafts = np.zeros((0, 2), np.int64)
    assert fs.reference.verify_draft_distribution(target, drafts).shape == (0, 3, 6)
    for probs in (None, np.zeros((0, 2, 5), np.float32)):
        tokens, accepted = fs.verify_draft(target, drafts, probs, rng=0)
        assert tokens.shape == (0, 3) and tokens.dtype == np.int64
        assert accepted.shape == (0,)
    logits = np.array([[[0.0, 3.0, 1.0]], [[2.0, 0.0, 1.0]]])
    tokens, accepted = fs.verify_draft(logits, np.zeros((2, 0), np.int64), temperature=0)
    np.testing.assert_array_equal(tokens, [[1], [0]])
    np.testing.assert_array_equal(accepted, [0, 0])
