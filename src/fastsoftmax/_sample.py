"""``fastsoftmax.sample``: one index per row drawn from logits, the decoding
step of a language model in one call (penalties, logit bias, temperature,
greedy, top-k, top-p, min-p, log-probabilities), and
``fastsoftmax.verify_draft``, speculative decoding's rejection sampling.

The common call is taken whole by :func:`fastsoftmax._rows.try_sample`;
the others are checked by :mod:`fastsoftmax._args` here, and their rows
edited, filtered and drawn in compiled code (:func:`fastsoftmax._rows.sample`,
csrc/sample_kernels.h), with the probabilities of the softmax kernels.  The
uniform numbers of the draws are drawn before the rows run, from one NumPy
Generator in row order or from each row's own, one per row that needs one,
so that a seed gives the same tokens for any number of threads.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, overload

import numpy as np

from . import _api, _args, _layout, _rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

    from ._typing import RandomSource, Threads

__all__ = ["sample", "verify_draft", "SampleLogprobs"]

_NAME = "sample"


class SampleLogprobs(NamedTuple):
    """What :func:`fastsoftmax.sample` returns with ``logprobs``."""

    tokens: Any
    """The drawn indices (int64, the batch shape; a scalar for a 1-D input)."""
    logprobs: Any
    """The log-probability of each drawn index (the batch shape)."""
    top_tokens: Any
    """The ``top_logprobs`` most likely indices (int64), most likely first; -1 past the last."""
    top_logprobs: Any
    """Their log-probabilities; -inf past the last."""


def _row_label(row: int, batch_shape: tuple[int, ...]) -> str:
    if not batch_shape:
        return "the row"
    if len(batch_shape) == 1:
        return f"row {row}"
    return f"row {tuple(int(i) for i in np.unravel_index(row, batch_shape))}"


def _raise_for(codes: np.ndarray, batch_shape: tuple[int, ...], temperatures: np.ndarray, history: np.ndarray | None = None,
               n: int = 0, name: str = _NAME) -> None:
    row = int(np.flatnonzero(codes < 0)[0])
    code = int(codes[row])
    label = _row_label(row, batch_shape)
    if code == _rows.SAMPLE_NO_MEMORY:
        raise MemoryError(f"{name}(): no memory for the scratch rows")
    if code == _rows.SAMPLE_BAD_TOKEN and history is not None:
        ids = history[row]
        bad = ids[(ids < -1) | (ids >= n)][0]
        raise ValueError(f"{name}(): history of {label} holds token id {int(bad)}, outside [-1, {n}) "
                         f"(-1 is padding)")
    if code == _rows.SAMPLE_NAN:
        raise ValueError(f"{name}(): {label} contains NaN, so it has no probabilities to draw from")
    if code == _rows.SAMPLE_POS_INF:
        t = temperatures[row if temperatures.size > 1 else 0]
        raise ValueError(f"{name}(): {label} contains +inf, so its probabilities are undefined at "
                         f"temperature {t!r} (only temperature 0 takes such a row: its first +inf)")
    raise ValueError(f"{name}(): {label} has nothing to draw: it is empty, or every entry is -inf or masked")


def _settings(batch_shape: tuple[int, ...], temperature: Any, top_k: Any, top_p: Any, min_p: Any,
              repetition_penalty: Any = None, presence_penalty: Any = None, frequency_penalty: Any = None,
              name: str = _NAME) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """The per-row settings as the compiled sampler takes them: (float64
    arrays of temperature, top_p, min_p, repetition, presence and frequency,
    int64 top_k), each one value for every row or one per row."""
    def setting(value: Any, what: str, accepted: str, ok: Any, off: float) -> np.ndarray:
        if value is None:
            return np.array([off])
        return _args.row_setting(value, what, accepted, ok, batch_shape, name)
    t = _args.temperatures(temperature, batch_shape, name)
    settings = (
        t,
        setting(top_p, "top_p", "in (0, 1]", lambda v: (v > 0.0) & (v <= 1.0), 1.0),
        setting(min_p, "min_p", "in [0, 1]", lambda v: (v >= 0.0) & (v <= 1.0), 0.0),
        setting(repetition_penalty, "repetition_penalty", "> 0 and finite", lambda v: (v > 0.0) & np.isfinite(v),
                1.0),
        setting(presence_penalty, "presence_penalty", "finite", np.isfinite, 0.0),
        setting(frequency_penalty, "frequency_penalty", "finite", np.isfinite, 0.0),
    )
    k = np.zeros(1, dtype=np.int64) if top_k is None else _args.row_setting(
        top_k, "top_k", ">= 0 (0: off)", lambda v: v >= 0, batch_shape, name, integer=True)
    return settings, k


# ---- the public function ----------------------------------------------------

@overload
def sample(logits: ArrayLike, axis: int = -1, *, temperature: ArrayLike = 1.0,
           top_k: ArrayLike | None = None, top_p: ArrayLike | None = None,
           min_p: ArrayLike | None = None, where: ArrayLike | None = None, history: ArrayLike | None = None,
           repetition_penalty: ArrayLike | None = None, presence_penalty: ArrayLike | None = None,
           frequency_penalty: ArrayLike | None = None, logit_bias: ArrayLike | None = None,
           logprobs: None = None, top_logprobs: int = 0, rng: RandomSource | Sequence[np.random.Generator] = None,
           num_threads: Threads = None) -> NDArray[np.int64] | np.int64: ...


@overload
def sample(logits: ArrayLike, axis: int = -1, *, temperature: ArrayLike = 1.0,
           top_k: ArrayLike | None = None, top_p: ArrayLike | None = None,
           min_p: ArrayLike | None = None, where: ArrayLike | None = None, history: ArrayLike | None = None,
           repetition_penalty: ArrayLike | None = None, presence_penalty: ArrayLike | None = None,
           frequency_penalty: ArrayLike | None = None, logit_bias: ArrayLike | None = None,
           logprobs: str, top_logprobs: int = 0, rng: RandomSource | Sequence[np.random.Generator] = None,
           num_threads: Threads = None) -> SampleLogprobs: ...


def sample(logits: ArrayLike, axis: int = -1, *, temperature: ArrayLike = 1.0,
           top_k: ArrayLike | None = None, top_p: ArrayLike | None = None,
           min_p: ArrayLike | None = None, where: ArrayLike | None = None, history: ArrayLike | None = None,
           repetition_penalty: ArrayLike | None = None, presence_penalty: ArrayLike | None = None,
           frequency_penalty: ArrayLike | None = None, logit_bias: ArrayLike | None = None,
           logprobs: str | None = None, top_logprobs: int = 0, rng: RandomSource | Sequence[np.random.Generator] = None,
           num_threads: Threads = None) -> NDArray[np.int64] | np.int64 | SampleLogprobs:
    """Draw one index per row from ``softmax(logits / temperature)``, after the
    penalties, the logit bias and the top-k, top-p and min-p filters: the
    decoding step of a language model, one request per row.

    Parameters
    ----------
    logits : array_like
        Logits; the rows run along ``axis``.  float16, float32, float64, bool
        and integer dtypes as in :func:`fastsoftmax.softmax` (float16 is
        computed in float32, integers and bool in float64).
    axis : int, default -1
        The axis the indices run along (the vocabulary).
    temperature : float or array_like, default 1.0
        ``T >= 0``: one for every row, or an array broadcastable to the batch
        shape (``logits``' shape without ``axis``): one per row.  A row with
        ``T = 0`` takes its first maximal entry, as :func:`numpy.argmax`
        (greedy decoding), and uses no random number; ``T = inf`` draws
        uniformly among the entries that are not ``-inf``.
    top_k : int or array_like of int, optional
        Keep the entries ``>=`` the ``top_k``-th largest logit of the row
        (ties at the boundary are all kept).  ``top_k >= 0``; ``0`` turns the
        filter off (as in Hugging Face and vLLM).
    top_p : float or array_like, optional
        Nucleus sampling: keep the smallest set of most likely entries whose
        probability sum reaches ``top_p``, ``0 < top_p <= 1``; entries equal in
        probability to the last one admitted are kept too.  ``1`` keeps all.
    min_p : float or array_like, optional
        Keep the entries with ``p >= min_p * p_max``, ``0 <= min_p <= 1``;
        ``0`` keeps all.
    where : array_like of bool, optional
        Broadcastable to ``logits``: only the True entries take part; masked
        entries are never drawn, whatever their value (NaN included).  A
        broadcast mask is read in place, never expanded.
    history : array_like of int, optional
        The token ids each row has seen (the caller decides: prompt and
        output, or output only): the batch shape plus one trailing axis of
        length L; ``-1`` is padding.  Needed by the three penalties.
    repetition_penalty : float or array_like, optional
        ``r > 0``: every id ``v`` in the row's history has its logit ``z``
        divided by ``r`` if ``z > 0``, else multiplied by ``r`` (Hugging
        Face's and vLLM's definition).  ``1`` is off.
    presence_penalty, frequency_penalty : float or array_like, optional
        Subtract ``presence`` from the logit of every id in the history and
        ``frequency * c[v]``, ``c[v]`` its number of occurrences (the OpenAI
        definition).  ``0`` is off; negative values encourage repetition.
    logit_bias : array_like of float, optional
        Broadcastable to ``logits`` (a (V,) bias is shared by every row):
        added to the logits after the penalties; ``-inf`` bans a token.  Read
        in place, never expanded; added in the kernels' dtype (float32 for
        float16/float32 logits).
    logprobs : {None, "raw", "processed"}, optional
        Also return log-probabilities (see Returns): ``"raw"``, the
        log-softmax of ``logits`` as given (T = 1, no penalty, bias, mask or
        filter); ``"processed"``, the distribution the index was drawn from
        (after every step; at ``T = 0`` the greedy one-hot).
    top_logprobs : int, default 0
        With ``logprobs``: also the ``top_logprobs`` most likely indices of
        each row under the same distribution.
    rng : None, int, numpy.random.Generator or sequence of Generators, optional
        Source of the uniform numbers, one per row with ``T > 0``: a
        Generator (drawn in row order), a seed for
        :func:`numpy.random.default_rng`, None for a fresh unseeded one, or
        a list or tuple of Generators, one per row in C order of the batch
        shape: each row then draws from its own only, so a seeded request
        gets the same tokens whatever batch it is in and wherever.
    num_threads : int, optional
        Cap on OpenMP threads, as in :func:`fastsoftmax.softmax`.  The same
        rng gives the same indices for any thread count.

    Returns
    -------
    numpy.int64 or ndarray of int64, or SampleLogprobs
        One index per row, with ``logits``' shape without ``axis`` (a NumPy
        int64 scalar for a 1-D input).  With ``logprobs``, a named tuple
        ``(tokens, logprobs, top_tokens, top_logprobs)``: the indices; the
        log-probability of each (the batch shape; never ``-inf`` for
        "processed"); the ``top_logprobs`` most likely indices (int64, the
        batch shape plus ``top_logprobs``; most likely first, ties by lower
        index) and their log-probabilities, filled with ``-1`` and ``-inf``
        past the entries of nonzero probability.  Log-probabilities are in
        the dtype the kernels compute in (float32 for float16, bfloat16 and
        float32 logits, else float64); "raw" ones of a row holding NaN or ``+inf``
        are NaN, as ``log_softmax`` gives.

    Raises
    ------
    ValueError
        An invalid setting (``top_k < 0``, ``top_p`` outside ``(0, 1]``,
        ``min_p`` outside ``[0, 1]``, a repetition penalty ``<= 0``, a
        non-finite penalty, a negative or NaN temperature), a penalty
        without ``history``, a history id outside ``[-1, V)``, or a row with
        nothing to draw: one with a NaN, one whose entries are all ``-inf``
        or masked, an empty one, or one with ``+inf`` at ``T > 0``.  The
        message names the first such row.
    TypeError
        An argument of the wrong type (a float ``top_k``, a non-boolean
        ``where``, an unsupported dtype...).

    Notes
    -----
    The steps, each on what the one before left, as in Hugging Face's
    logits processors and vLLM's sampler:

    0. the penalties (on the raw logits, from ``history``), then
       ``logit_bias``, then ``where=``, into a scratch row of the thread
       (``logits`` itself is never modified, and no (batch, V) array is
       made);
    1. temperature;
    2. ``top_k``, on the logits;
    3. ``top_p``, on the probabilities renormalised over what top-k kept;
    4. ``min_p``, relative to the largest probability;
    5. the draw: inverse CDF over the kept entries in index order, with
       their probabilities renormalised.

    The most likely entry is always kept.  Top-k uses partial selection and
    top-p a weighted selection, never a sort of the whole row.  Probability
    sums are taken in double precision; a kept set differs from the exact
    one only for probabilities within rounding of a filter's boundary.
    :func:`fastsoftmax.reference.sample_distribution` gives the exact
    distribution a row is drawn from.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoftmax as fs
    >>> logits = np.array([[2.0, 1.0, 0.1, -1.0],
    ...                    [0.0, 3.0, 3.0, 1.0]])
    >>> fs.sample(logits, temperature=0.0)        # greedy: the first maximum
    array([0, 1])
    >>> rng = np.random.default_rng(0)           # seeded: reproducible draws
    >>> fs.sample(logits, temperature=0.7, top_k=2, top_p=0.9, rng=rng)
    array([0, 1])
    >>> fs.sample(logits, temperature=[0.0, 1.0], rng=rng)   # one T per row
    array([0, 1])
    >>> type(fs.sample([0.5, 2.5, 1.0], temperature=0))
    <class 'numpy.int64'>
    >>> out = fs.sample(logits, temperature=0, history=[[0, -1], [1, 1]], presence_penalty=2.5,
    ...                 logprobs="raw", top_logprobs=2)
    >>> out.tokens                                # penalties moved both rows off their maximum
    array([1, 2])
    >>> out.top_tokens
    array([[0, 1],
           [1, 2]])
    """
    if (where is None and history is None and logit_bias is None and logprobs is None
            and repetition_penalty is None and presence_penalty is None and frequency_penalty is None):
        fast = _rows.try_sample(logits, axis, temperature, top_k, top_p, min_p, rng, num_threads)
        if fast is not None:
            return fast  # type: ignore[no-any-return]
    for argument, value in (("logits", logits), ("where", where), ("history", history),
                            ("logit_bias", logit_bias), ("temperature", temperature)):
        _args.in_memory(value, argument, _NAME)
    x = logits if type(logits) is np.ndarray else np.asarray(logits)
    compute_dt, _ = _args.dtypes(x.dtype, _NAME)
    ax = _args.one_axis(axis, x.ndim, _NAME)
    threads = _api._check_threads(num_threads, _NAME)
    kind, top_n = _args.logprobs(logprobs, top_logprobs, _NAME)

    shape = x.shape if x.ndim else (1,)
    batch_shape = shape[:ax] + shape[ax + 1:]
    n = shape[ax]
    settings, k = _settings(batch_shape, temperature, top_k, top_p, min_p, repetition_penalty, presence_penalty,
                            frequency_penalty)
    penalties = [name for name, v in (("repetition_penalty", repetition_penalty),
                                      ("presence_penalty", presence_penalty),
                                      ("frequency_penalty", frequency_penalty)) if v is not None]
    if penalties and history is None:
        raise ValueError(f"{_NAME}(): {penalties[0]} needs history= (the token ids each row has seen)")
    rows_history = None if history is None else _args.history(history, batch_shape, n, _NAME)
    mask = None if where is None else _args.where(np.asarray(where), shape, _NAME, target="logits'")
    bias = None if logit_bias is None else _args.logit_bias(logit_bias, shape, compute_dt, _NAME)

    rows_x, perm, _, _ = _layout.to_rows(x.reshape(shape), (ax,), compute_dt)
    rows = rows_x.shape[0]
    generators = _args.sample_rng(rng, rows, _NAME)
    # read in place through broadcast strides, never expanded
    if mask is not None:
        mask = _layout.broadcast_rows(mask, perm, len(batch_shape), (n,))
    if bias is not None:
        bias = _layout.broadcast_rows(bias, perm, len(batch_shape), (n,))

    code = 0 if kind is None else (_rows.LOGPROBS_RAW if kind == "raw" else _rows.LOGPROBS_PROCESSED)
    result = _rows.sample(rows_x, settings, k, generators, mask, bias, rows_history, code, top_n, batch_shape,
                          threads)
    codes = result if kind is None else result[0]
    if rows and codes.min() < 0:
        _raise_for(codes, batch_shape, settings[0], rows_history, n)
    tokens = codes.reshape(batch_shape)
    tokens = tokens[()] if tokens.ndim == 0 else tokens
    if kind is None:
        return tokens  # type: ignore[no-any-return]
    _, logprob, top_tokens, top_lp = result
    logprob = logprob.reshape(batch_shape).astype(compute_dt, copy=False)
    return SampleLogprobs(tokens, logprob[()] if logprob.ndim == 0 else logprob,
                          top_tokens.reshape(batch_shape + (top_n,)),
                          top_lp.reshape(batch_shape + (top_n,)).astype(compute_dt, copy=False))


# ---- speculative decoding -----------------------------------------------------

def verify_draft(target_logits: ArrayLike, draft_tokens: ArrayLike, draft_probs: ArrayLike | None = None, *,
                 temperature: ArrayLike = 1.0, top_k: ArrayLike | None = None, top_p: ArrayLike | None = None,
                 min_p: ArrayLike | None = None, rng: RandomSource | Sequence[np.random.Generator] = None,
                 num_threads: Threads = None) -> tuple[Any, Any]:
    """Verify the draft tokens of speculative decoding by rejection sampling.

    For each request (row) ``b`` and position ``i = 0, 1, ...``, the draft
    token ``t = draft_tokens[b, i]`` is accepted with probability
    ``min(1, p(t) / q(t))``, where ``p`` is the distribution
    :func:`fastsoftmax.sample` draws from ``target_logits[b, i]`` with the
    same settings and ``q = draft_probs[b, i]``.  At the first rejection a
    token is drawn from ``max(0, p - q)`` renormalised, and the request
    stops; when all ``K`` drafts are accepted a bonus token is drawn from
    position ``K``.  The emitted tokens then follow the target distribution
    exactly, whatever the draft (Leviathan et al. 2023; Chen et al. 2023).

    Parameters
    ----------
    target_logits : array_like, shape (B, K + 1, V)
        The target model's logits at the K draft positions plus one.
        float16, float32, float64, bool and integer dtypes as in
        :func:`fastsoftmax.sample`.
    draft_tokens : array_like of int, shape (B, K)
        The proposed ids, in ``[0, V)``.
    draft_probs : array_like, shape (B, K, V), optional
        The draft model's probabilities (each row non-negative, summing to
        1 within 1e-3), computed in the kernels' dtype.  None: each proposal
        was deterministic (n-gram or prompt lookup), a one-hot draft: ``t``
        is accepted with probability ``p(t)``, and a rejection draws from
        ``p`` without ``t``.
    temperature, top_k, top_p, min_p : float, int or array_like, optional
        As in :func:`fastsoftmax.sample`, one value for every request or an
        array that broadcasts to ``(B,)``.  At ``T = 0`` drafts are accepted
        while they equal the target's first maximum, which is then emitted;
        such a request uses no random number.
    rng : None, int, numpy.random.Generator or sequence of Generators, optional
        As in :func:`fastsoftmax.sample`: ``K + 1`` uniform numbers per
        request with ``T > 0`` (requests in order), or each request's from
        its own Generator.
    num_threads : int, optional
        Cap on OpenMP threads; the result does not depend on it.

    Returns
    -------
    tokens : ndarray of int64, shape (B, K + 1)
        The emitted tokens: the accepted drafts, then the token drawn at the
        rejection (or the bonus token); ``-1`` after the last.
    num_accepted : ndarray of int64, shape (B,)
        The number of drafts accepted; request ``b`` emitted
        ``num_accepted[b] + 1`` tokens.

    Raises
    ------
    ValueError
        Shapes that do not match, a draft id outside ``[0, V)``, draft
        probabilities that are negative, NaN or do not sum to 1 within 1e-3
        (naming the request and position), invalid settings, or a target row
        with nothing to draw.
    TypeError
        An argument of the wrong type.

    Notes
    -----
    :func:`fastsoftmax.reference.verify_draft_distribution` gives the exact
    distribution of every emitted position.

    Examples
    --------
    >>> import numpy as np
    >>> import fastsoftmax as fs
    >>> target = np.log([[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]])   # B=1, K=2, V=3
    >>> fs.verify_draft(target, [[0, 1]], temperature=0)        # greedy: both drafts are the argmax
    (array([[0, 1, 2]]), array([2]))
    >>> fs.verify_draft(target, [[0, 2]], temperature=0)        # the second is rejected
    (array([[ 0,  1, -1]]), array([1]))
    """
    name = "verify_draft"
    for argument, value in (("target_logits", target_logits), ("draft_tokens", draft_tokens),
                            ("draft_probs", draft_probs)):
        _args.in_memory(value, argument, "verify_draft")
    x = target_logits if type(target_logits) is np.ndarray else np.asarray(target_logits)
    compute_dt, _ = _args.dtypes(x.dtype, name)
    threads = _api._check_threads(num_threads, name)
    if x.ndim != 3:
        raise ValueError(f"{name}(): target_logits must have shape (B, K + 1, V), got shape {x.shape}")
    batch, positions, n = x.shape
    draft = np.asarray(draft_tokens)
    if draft.dtype.kind not in "iu":
        raise TypeError(f"{name}(): draft_tokens must be an array of integer ids, got dtype {draft.dtype}")
    if draft.shape != (batch, positions - 1):
        raise ValueError(f"{name}(): draft_tokens must have shape (B, K) = {(batch, positions - 1)} beside "
                         f"target_logits of shape {x.shape}, got shape {draft.shape}")
    bad = (draft < 0) | (draft >= n)
    if bad.any():
        b, i = (int(j) for j in np.argwhere(bad)[0])
        raise ValueError(f"{name}(): draft_tokens[{b}, {i}] = {int(draft[b, i])} is outside [0, {n})")
    q = None
    if draft_probs is not None:
        q = draft_probs if type(draft_probs) is np.ndarray else np.asarray(draft_probs)
        if q.dtype.kind not in "fiu":
            raise TypeError(f"{name}(): draft_probs must be an array of real numbers, got dtype {q.dtype}")
        if q.shape != (batch, positions - 1, n):
            raise ValueError(f"{name}(): draft_probs must have shape (B, K, V) = {(batch, positions - 1, n)}, "
                             f"got shape {q.shape}")
        q = _layout.contiguous(q, compute_dt).reshape(batch * (positions - 1), n)
    settings, k = _settings((batch,), temperature, top_k, top_p, min_p, name=name)
    generators = _args.sample_rng(rng, batch, name)
    rows_x = _layout.contiguous(x, compute_dt).reshape(batch * positions, n)
    tokens, status = _rows.verify_draft(rows_x, _layout.contiguous(draft, np.dtype(np.int64)), q, settings, k,
                                        generators, threads)
    if batch and status.min() < 0:
        b = int(np.flatnonzero(status < 0)[0])
        if status[b] == _rows.SAMPLE_BAD_PROBS and q is not None:
            rows_q = q.reshape(batch, positions - 1, n)[b].astype(np.float64)
            sums = rows_q.sum(axis=-1)
            i = int(np.flatnonzero(~((rows_q >= 0).all(axis=-1) & (np.abs(sums - 1.0) <= 1e-3)))[0])
            raise ValueError(f"{name}(): draft_probs[{b}, {i}] must be probabilities (non-negative, summing to 1 "
                             f"within 1e-3); it sums to {sums[i]!r} and its smallest entry is {rows_q[i].min()!r}")
        codes = np.zeros(batch, dtype=np.int64)
        codes[b] = status[b]
        _raise_for(codes, (batch,), settings[0], name=name)
    return tokens, status
