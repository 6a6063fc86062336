"""``fastsoftmax.sample``: one index per row drawn from logits, the decoding
step of a language model in one call (temperature, greedy, top-k, top-p,
min-p).

The arguments are checked by :mod:`fastsoftmax._args`; the rows are filtered and drawn in compiled
code (:func:`fastsoftmax._rows.sample`, csrc/sample_kernels.h), with the
probabilities of the softmax kernels.  The uniform numbers of the draws come
from a NumPy Generator here, one per row that needs one, so that a seed gives
the same tokens for any number of threads.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _api, _args, _layout, _rows

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ._typing import RandomSource, RealScalar, Threads

__all__ = ["sample"]

_NAME = "sample"


def _uniforms(rng, temperatures: np.ndarray, rows: int) -> np.ndarray:
    """One uniform number in [0, 1) per row with T > 0, in row order; 0 for
    the others.  A generator is only made when some row needs a number."""
    drawing = temperatures > 0.0
    count = rows if temperatures.size == 1 and drawing[0] else int(np.count_nonzero(drawing))
    if count == 0:
        return np.zeros(rows)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if count == rows:
        return generator.random(rows)
    uniforms = np.zeros(rows)
    uniforms[drawing] = generator.random(count)
    return uniforms


def _row_label(row: int, batch_shape: tuple) -> str:
    if not batch_shape:
        return "the row"
    if len(batch_shape) == 1:
        return f"row {row}"
    return f"row {tuple(int(i) for i in np.unravel_index(row, batch_shape))}"


def _raise_for(codes: np.ndarray, batch_shape: tuple, temperatures: np.ndarray) -> None:
    row = int(np.flatnonzero(codes < 0)[0])
    code = int(codes[row])
    label = _row_label(row, batch_shape)
    if code == _rows.SAMPLE_NO_MEMORY:
        raise MemoryError(f"{_NAME}(): no memory for the scratch rows")
    if code == _rows.SAMPLE_NAN:
        raise ValueError(f"{_NAME}(): {label} contains NaN, so it has no probabilities to draw from")
    if code == _rows.SAMPLE_POS_INF:
        t = temperatures[row if temperatures.size > 1 else 0]
        raise ValueError(f"{_NAME}(): {label} contains +inf, so its probabilities are undefined at "
                         f"temperature {t!r} (only temperature 0 takes such a row: its first +inf)")
    raise ValueError(f"{_NAME}(): {label} has nothing to draw: it is empty, or every entry is -inf or masked")


# ---- the public function ----------------------------------------------------

def sample(logits: ArrayLike, axis: int = -1, *, temperature: ArrayLike = 1.0,
           top_k: int | np.integer[Any] | None = None, top_p: RealScalar | None = None,
           min_p: RealScalar | None = None, where: ArrayLike | None = None, rng: RandomSource = None,
           num_threads: Threads = None) -> NDArray[np.int64] | np.int64:
    """Draw one index per row from ``softmax(logits / temperature)``, after the
    top-k, top-p and min-p filters: the decoding step of a language model.

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
    top_k : int, optional
        Keep the entries ``>=`` the ``top_k``-th largest logit of the row
        (ties at the boundary are all kept).  ``top_k >= 1``.
    top_p : float, optional
        Nucleus sampling: keep the smallest set of most likely entries whose
        probability sum reaches ``top_p``, ``0 < top_p <= 1``; entries equal in
        probability to the last one admitted are kept too.  ``1`` keeps all.
    min_p : float, optional
        Keep the entries with ``p >= min_p * p_max``, ``0 <= min_p <= 1``.
    where : array_like of bool, optional
        Broadcastable to ``logits``: only the True entries take part; masked
        entries are never drawn, whatever their value (NaN included).  A
        broadcast mask is read in place, never expanded.
    rng : None, int or numpy.random.Generator, optional
        Source of the uniform numbers, one per row with ``T > 0``: a
        Generator, a seed for :func:`numpy.random.default_rng`, or None for
        a fresh unseeded one.
    num_threads : int, optional
        Cap on OpenMP threads, as in :func:`fastsoftmax.softmax`.  The same
        rng gives the same indices for any thread count.

    Returns
    -------
    numpy.int64 or ndarray of int64
        One index per row, with ``logits``' shape without ``axis`` (a NumPy
        int64 scalar for a 1-D input).

    Raises
    ------
    ValueError
        An invalid filter value (``top_k < 1``, ``top_p`` outside ``(0, 1]``,
        ``min_p`` outside ``[0, 1]``), a negative or NaN temperature, or a
        row with nothing to draw: one with a NaN, one whose entries are all
        ``-inf`` or masked, an empty one, or one with ``+inf`` at ``T > 0``.
        The message names the first such row.
    TypeError
        An argument of the wrong type (a float ``top_k``, a non-boolean
        ``where``, an unsupported dtype...).

    Notes
    -----
    The steps, each on what the one before left, as in Hugging Face's
    logits warpers:

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
    """
    x = logits if type(logits) is np.ndarray else np.asarray(logits)
    compute_dt, _ = _args.dtypes(x.dtype, _NAME)
    ax = _args.one_axis(axis, x.ndim, _NAME)
    k = _args.top_k(top_k, _NAME)
    p = 1.0 if top_p is None else _args.filter_fraction(top_p, "top_p", "(0, 1]", lambda v: 0.0 < v <= 1.0, _NAME)
    mp = 0.0 if min_p is None else _args.filter_fraction(min_p, "min_p", "[0, 1]", lambda v: 0.0 <= v <= 1.0,
                                                         _NAME)
    threads = _api._check_threads(num_threads, _NAME)
    _args.rng(rng, _NAME)

    shape = x.shape if x.ndim else (1,)
    batch_shape = shape[:ax] + shape[ax + 1:]
    temperatures = _args.temperatures(temperature, batch_shape, _NAME)
    mask = None if where is None else _args.where(np.asarray(where), shape, _NAME, target="logits'")

    rows_x, perm, _, _ = _layout.to_rows(x.reshape(shape), (ax,), compute_dt)
    rows = rows_x.shape[0]
    if mask is not None:
        # read in place through the mask's broadcast strides, never expanded
        mask = _layout.broadcast_rows(mask, perm, len(batch_shape), (shape[ax],))

    uniforms = _uniforms(rng, temperatures, rows)
    codes = _rows.sample(rows_x, temperatures, uniforms, k, p, mp, mask, batch_shape, threads)
    if rows and codes.min() < 0:
        _raise_for(codes, batch_shape, temperatures)
    result = codes.reshape(batch_shape)
    return result[()] if result.ndim == 0 else result
