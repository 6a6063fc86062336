"""``linear_cross_entropy``: the output layer and its cross-entropy, without
the ``(rows, vocabulary)`` logits.

The rows go in chunks.  For each chunk the logits are one BLAS product
(NumPy's ``matmul``) into a buffer that every chunk reuses; the soft cap,
if any, is applied there; then the fused cross-entropy kernel of
:func:`fastsoftmax.cross_entropy` (``_rows.cross_entropy_rows``: one exp per
logit, reused for the loss and for the gradient) gives the row losses and
the gradient with respect to the chunk's logits, in a second buffer; two
more products turn that gradient into the chunk's rows of ``grad_input``
and its share of ``grad_linear_weight``.  Arguments are checked by
:mod:`fastsoftmax._args`; the float64 oracle is
:func:`fastsoftmax.reference.linear_cross_entropy`.
"""
from __future__ import annotations

import contextlib
import math
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from . import _args, _rows
from ._api import _check_threads
from ._training import _reduce

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ._typing import FloatResult, FloatT, LossReduction, RealScalar, Temperature, Threads

__all__ = ["linear_cross_entropy"]

# The default cap on the memory used besides the results: the chunk buffers.
MAX_EXTRA_BYTES = 64 << 20
# ... and at most this fraction of the float32 logits (rows * V * 4 bytes).
MAX_EXTRA_FRACTION = 8
# The block of grad_linear_weight computed at a time before it is added in:
# small enough to stay in the L2 cache.
_BLOCK_BYTES = 1 << 20


def _chunk_rows(rows: int, classes: int, hidden: int, itemsize: int, buffers: int, staged: bool,
                chunk_size: int | None) -> int:
    """Rows per chunk: ``chunk_size`` if given, else as many as the memory
    cap allows (at least one).  Each row of a chunk holds ``buffers`` rows of
    logits (the logits and their gradient) and, when the input is converted
    to the compute dtype, a row of it and of its gradient."""
    if chunk_size is not None:
        return max(1, min(chunk_size, rows))
    budget = min(MAX_EXTRA_BYTES, rows * classes * 4 // MAX_EXTRA_FRACTION)
    budget -= min(_BLOCK_BYTES, budget // 8)
    per_row = buffers * classes * itemsize + (2 * hidden * itemsize if staged else 0)
    return max(1, min(rows, budget // max(per_row, 1)))


def _blas_controller(num_threads, threads: int):
    """threadpoolctl's controller of the BLAS libraries, when installed and
    needed: to cap BLAS at ``num_threads``, or to split products over
    ``threads > 1`` Python threads (see _split_product)."""
    if num_threads is None and threads <= 1:
        return None
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def _blas_threads(controller, num_threads):
    """A context that caps BLAS's threads at ``num_threads`` (without
    threadpoolctl, BLAS keeps its own setting)."""
    if controller is None or num_threads is None:
        return contextlib.nullcontext()
    return controller.limit(limits=int(num_threads), user_api="blas")


def _split_product(left: np.ndarray, right: np.ndarray, out: np.ndarray, pool, parts: int, controller) -> None:
    """``out = left @ right``, its rows split over the pool's threads, each
    product on one BLAS thread.  For ``grad_logits @ W`` (K = V, large):
    OpenBLAS's own threads split that shape poorly (measured: two threads no
    faster than one), while halves of the rows run side by side."""
    if pool is None or left.shape[0] < parts:
        np.matmul(left, right, out=out)
        return
    bounds = [left.shape[0] * i // parts for i in range(parts + 1)]
    with controller.limit(limits=1, user_api="blas"):
        futures = [pool.submit(np.matmul, left[a:b], right, out=out[a:b]) for a, b in zip(bounds, bounds[1:])]
        for future in futures:
            future.result()


def _scipy_gemm(dtype: np.dtype):
    """SciPy's BLAS ``gemm`` of ``dtype`` (which accumulates into its output
    in place), or None without SciPy."""
    try:
        from scipy.linalg import blas
    except ImportError:
        return None
    return blas.sgemm if dtype == np.float32 else blas.dgemm


def _add_product(grad_weight: np.ndarray, grad_logits: np.ndarray, rows: np.ndarray, first: bool, gemm,
                 partial) -> None:
    """``grad_weight += grad_logits.T @ rows`` (``=`` for the first chunk).

    With SciPy, one BLAS ``gemm`` with ``beta = 1`` into ``grad_weight`` (as
    ``grad_weight.T += rows.T @ grad_logits``: every operand is then
    Fortran-ordered, so nothing is copied).  Without it, NumPy's ``matmul``
    has no ``beta``: the product goes in blocks of classes through
    ``partial`` (small, cache-resident) and is added in."""
    if first or grad_weight.size == 0:
        np.matmul(grad_logits.T, rows, out=grad_weight)
        return
    if gemm is not None:
        result = gemm(1.0, rows.T, grad_logits.T, beta=1.0, c=grad_weight.T, trans_b=1, overwrite_c=1)
        if not np.shares_memory(result, grad_weight):   # f2py had to copy (not expected): write it back
            grad_weight.T[...] = result
        return
    block = partial.shape[0]
    for v in range(0, grad_weight.shape[0], block):
        stop = min(v + block, grad_weight.shape[0])
        part = partial[:stop - v]
        np.matmul(grad_logits[:, v:stop].T, rows, out=part)
        np.add(grad_weight[v:stop], part, out=grad_weight[v:stop])


def _as_compute(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` in ``dtype``, in a layout BLAS takes (C or Fortran order)
    without copying it on every product; no copy when it already is."""
    if array.dtype == dtype and (array.flags.c_contiguous or array.flags.f_contiguous):
        return array
    return np.ascontiguousarray(array, dtype=dtype)


def _z_loss_rows(losses, logits, indices, kept, weight, weight_sum, smoothing, temperature, z_loss, grad,
                 grad_scale):
    """Add the z-loss of a chunk: ``z * a * lse**2`` per row, with ``lse`` the
    log-sum-exp of ``logits / T`` and ``a`` the row's summed cross-entropy
    coefficients (``w[y]``, 1 without class weights); and its gradient into
    ``grad`` (the cross-entropy gradient of the logits, or None).

    ``lse`` comes from the kernel's row loss, without a second exp pass:
    ``loss = a * lse - sum_c a_c * x_c / T`` with the kernel's coefficients
    ``a_c = w_c * ((1 - eps) * onehot_c + eps / V)``.  The gradient of
    ``z * a * lse**2`` is ``2 z lse * a * p / T``, and ``a * p`` is recovered
    from the cross-entropy gradient ``g = s / T * (a * p - a_c)`` (s: the
    reduction's scale) as ``g * T / s + a_c``, so the total gradient is
    ``(1 + k) * g + k * s / T * a_c`` with ``k = 2 z lse``."""
    rows, classes = logits.shape
    r = np.arange(rows)
    y = np.where(kept, indices, 0)
    picked = logits[r, y].astype(np.float64)
    w_y = np.ones(rows) if weight is None else weight[y].astype(np.float64)
    hard = (1.0 - smoothing) * w_y
    uniform = smoothing / classes if classes else 0.0
    total = np.where(kept, hard + uniform * weight_sum, 0.0)
    gap = hard * picked
    if uniform:
        with np.errstate(invalid="ignore", over="ignore"):
            dots = (logits @ weight if weight is not None else logits.sum(axis=1, dtype=np.float64)
                    ).astype(np.float64)
        # a -inf logit of a class of weight 0 takes no part (the kernel skips it; 0 * -inf is NaN here)
        for i in np.flatnonzero(~np.isfinite(dots) & kept):
            row = logits[i].astype(np.float64)
            coefficients = np.ones(classes) if weight is None else weight.astype(np.float64)
            nonzero = coefficients != 0
            dots[i] = math.fsum(row[nonzero] * coefficients[nonzero])
        gap = gap + uniform * dots
    live = kept & (total != 0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        lse = np.where(live, (losses + gap / temperature) / np.where(live, total, 1.0), 0.0)
        losses += np.where(live, z_loss * total * lse * lse, 0.0)
    if grad is None:
        return
    k = np.where(live, 2.0 * z_loss * lse, 0.0)
    dt = grad.dtype
    with np.errstate(invalid="ignore", over="ignore"):
        grad *= (1.0 + k).astype(dt)[:, None]
        shift = k * (grad_scale / temperature)
        if uniform:
            if weight is None:
                grad += (shift * uniform).astype(dt)[:, None]
            else:
                for i in np.flatnonzero(shift):
                    grad[i] += (shift[i] * uniform) * weight
        grad[r[live], y[live]] += (shift * hard)[live].astype(dt)


# The overloads: float16/32/64 arrays keep their dtype; "mean" and "sum" give
# one number, "none" one per row; return_grad=True adds the three gradients.
@overload
def linear_cross_entropy(input: NDArray[FloatT], linear_weight: NDArray[FloatT], target: ArrayLike, *,
                         linear_bias: ArrayLike | None = ..., weight: ArrayLike | None = ...,
                         ignore_index: int = ..., label_smoothing: RealScalar = ...,
                         reduction: LossReduction = ..., temperature: Temperature = ..., z_loss: RealScalar = ...,
                         softcap: RealScalar | None = ..., return_grad: Literal[False] = ...,
                         chunk_size: int | None = ..., num_threads: Threads = ...) -> FloatT: ...
@overload
def linear_cross_entropy(input: NDArray[FloatT], linear_weight: NDArray[FloatT], target: ArrayLike, *,
                         linear_bias: ArrayLike | None = ..., weight: ArrayLike | None = ...,
                         ignore_index: int = ..., label_smoothing: RealScalar = ...,
                         reduction: LossReduction = ..., temperature: Temperature = ..., z_loss: RealScalar = ...,
                         softcap: RealScalar | None = ..., return_grad: Literal[True],
                         chunk_size: int | None = ..., num_threads: Threads = ...
                         ) -> tuple[FloatT, NDArray[FloatT], NDArray[FloatT], NDArray[FloatT] | None]: ...
@overload
def linear_cross_entropy(input: NDArray[FloatT], linear_weight: NDArray[FloatT], target: ArrayLike, *,
                         linear_bias: ArrayLike | None = ..., weight: ArrayLike | None = ...,
                         ignore_index: int = ..., label_smoothing: RealScalar = ...,
                         reduction: Literal["none"], temperature: Temperature = ..., z_loss: RealScalar = ...,
                         softcap: RealScalar | None = ..., return_grad: Literal[False] = ...,
                         chunk_size: int | None = ..., num_threads: Threads = ...) -> NDArray[FloatT] | FloatT: ...
@overload
def linear_cross_entropy(input: ArrayLike, linear_weight: ArrayLike, target: ArrayLike, *,
                         linear_bias: ArrayLike | None = ..., weight: ArrayLike | None = ...,
                         ignore_index: int = ..., label_smoothing: RealScalar = ...,
                         reduction: str = ..., temperature: Temperature = ..., z_loss: RealScalar = ...,
                         softcap: RealScalar | None = ..., return_grad: bool = ...,
                         chunk_size: int | None = ..., num_threads: Threads = ...
                         ) -> FloatResult | tuple[FloatResult, NDArray[np.floating[Any]], NDArray[np.floating[Any]],
                                                  NDArray[np.floating[Any]] | None]: ...
def linear_cross_entropy(input: ArrayLike, linear_weight: ArrayLike, target: ArrayLike, *,
                         linear_bias: ArrayLike | None = None, weight: ArrayLike | None = None,
                         ignore_index: int = -100, label_smoothing: RealScalar = 0.0, reduction: str = "mean",
                         temperature: Temperature = 1.0, z_loss: RealScalar = 0.0, softcap: RealScalar | None = None,
                         return_grad: bool = False, chunk_size: int | None = None,
                         num_threads: Threads = None) -> Any:
    """Cross-entropy of a linear layer's output, without forming its logits.

    The value of ``cross_entropy(logits, target, ...)`` plus a z-loss, where
    ``logits = input @ linear_weight.T + linear_bias``, soft-capped as
    ``softcap * tanh(logits / softcap)`` when ``softcap`` is set and then
    divided by ``temperature``.  This is the output layer of a language model
    and its loss: the ``(rows, V)`` logits (4 GB in float32 for 8192 tokens
    and a 128k vocabulary) are never held; the rows go in chunks, each
    through BLAS (NumPy's ``matmul``) and the fused cross-entropy kernel of
    :func:`cross_entropy`.  Arguments named as in
    ``torch.nn.functional.linear_cross_entropy`` mean what they mean there.

    Parameters
    ----------
    input : array_like
        ``(..., H)``: one row of hidden features per token.
    linear_weight : array_like
        ``(V, H)``: the output layer's weight, one row per class.
    target : array_like of int
        Class indices, of ``input``'s shape without ``H``; each in ``[0, V)``
        or equal to ``ignore_index`` (else ValueError naming the value and
        its position).  Class probabilities are not accepted (they would be
        ``(rows, V)`` themselves): TypeError.
    linear_bias : array_like, optional
        ``(V,)``, added to the logits.  A ``-inf`` entry takes that class
        out of every row.
    weight : array_like, optional
        ``(V,)``: one weight per class, as in :func:`cross_entropy`.
    ignore_index : int, default -100
        Rows whose target equals it have loss 0 (z-loss included), gradient 0,
        and are left out of "mean".
    label_smoothing : float, default 0.0
        ``eps`` in ``[0, 1]``, as in :func:`cross_entropy`.
    reduction : {"mean", "sum", "none"}, default "mean"
        As in :func:`cross_entropy`: "mean" divides by the summed ``w[y]`` of
        the rows not ignored and is 0.0 when every row is ignored; "none"
        returns the row losses in ``target``'s shape.
    temperature : float, default 1.0
        ``T``, finite and ``> 0``; divides the (soft-capped) logits.
    z_loss : float, default 0.0
        ``z >= 0``: adds ``z * logsumexp(logits)**2`` to each row's loss
        (PaLM's auxiliary loss, with the logits after the cap and ``T``),
        weighted like the row's cross-entropy: by ``w[y]`` with class
        weights (``(1 - eps) w[y] + eps * mean(w)`` with smoothing), so it
        is reduced exactly as the loss is.
    softcap : float, optional
        ``c > 0``: the logits become ``c * tanh(logits / c)`` (Gemma 2's
        final-logit soft-capping), before ``T``.
    return_grad : bool, default False
        Also return the gradients.
    chunk_size : int, optional
        Rows per chunk.  By default as many as keep the chunk buffers within
        64 MiB and within 1/8 of the float32 logits (``rows * V * 4 / 8``
        bytes), and at least one row.
    num_threads : int, optional
        Threads of the kernels and of BLAS (through ``threadpoolctl`` when it
        is installed; without it BLAS keeps its own setting, e.g.
        ``OPENBLAS_NUM_THREADS``).  The result does not depend on the
        kernels' thread count; BLAS may round differently with another.

    Returns
    -------
    loss : NumPy scalar or ndarray
        A NumPy scalar of the result dtype (that of ``input`` and
        ``linear_weight`` together, float16 and bfloat16 kept) for "mean" and
        "sum", the row losses for "none".  Row losses and their sum are
        accumulated in double.
    grad_input, grad_linear_weight, grad_linear_bias : ndarray
        Only with ``return_grad=True``: the gradients of the loss (for
        "none", of the losses' sum) with respect to ``input``,
        ``linear_weight`` and ``linear_bias`` (None without a bias), in their
        shapes and the result dtype.

    Notes
    -----
    Memory besides the results: two chunks of logits (the logits and their
    gradient, one without ``return_grad``), a 1 MiB block of
    ``grad_linear_weight`` and O(rows + V) vectors.  With 16 rows or more
    of float32 (32 of float64) that is within the cap above; with fewer
    rows it is two rows of logits, whatever the cap.  Inputs that must be
    converted (float16 and bfloat16 are computed in float32; a
    ``linear_weight`` that is neither C- nor Fortran-ordered) are converted
    once: a float32 copy of ``linear_weight`` (and for 16-bit results a
    float32 ``grad_linear_weight``) then comes on top.

    Ignored rows, class weights and label smoothing follow
    :func:`cross_entropy` (PyTorch's meaning).  Without ``softcap``,
    ``temperature``, ``z_loss`` and with ``ignore_index`` kept, the value is
    that of ``torch.nn.functional.linear_cross_entropy``, except the
    all-ignored "mean" (0.0 here, NaN in PyTorch).

    See Also
    --------
    cross_entropy, fastsoftmax.reference.linear_cross_entropy

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> rng = np.random.default_rng(0)
    >>> hidden = rng.standard_normal((6, 4))          # 6 tokens, 4 features
    >>> head = rng.standard_normal((10, 4))           # a vocabulary of 10
    >>> target = np.array([1, 3, 3, 9, 0, -100])
    >>> loss, d_hidden, d_head, _ = fs.linear_cross_entropy(hidden, head, target, return_grad=True)
    >>> logits = hidden @ head.T
    >>> bool(np.isclose(loss, fs.cross_entropy(logits, target)))
    True
    >>> d_head.shape
    (10, 4)
    """
    return _linear_cross_entropy(input, linear_weight, target, linear_bias, weight, ignore_index, label_smoothing,
                                 reduction, temperature, z_loss, softcap, return_grad, chunk_size, num_threads)


def _linear_cross_entropy(input, linear_weight, target, linear_bias, weight, ignore_index, label_smoothing, reduction,
                          temperature, z_loss, softcap, return_grad, chunk_size, num_threads, row_scale=None):
    """linear_cross_entropy; ``row_scale`` (rows,), when given, multiplies
    each row's gradient: the gradient of ``sum(row_scale * row losses)``
    (fastsoftmax.torch's backward of ``reduction="none"``)."""
    name = "linear_cross_entropy"
    x, compute_dt, result_dt = _args.logits(input, name, "input", linear_weight)
    w_in = linear_weight if type(linear_weight) is np.ndarray else np.asarray(linear_weight)
    if x.ndim == 0:
        raise ValueError(f"{name}(): input needs at least one dimension (the features H), got a 0-d array")
    if w_in.ndim != 2 or w_in.shape[1] != x.shape[-1]:
        raise ValueError(f"{name}(): linear_weight must be (V, H) with H = {x.shape[-1]} (input's last "
                         f"dimension), got shape {w_in.shape}")
    classes, hidden = w_in.shape
    bias = None
    if linear_bias is not None:
        bias = np.asarray(linear_bias)
        if bias.dtype.kind not in "fiub" and not _args.is_bfloat16(bias.dtype):
            raise TypeError(f"{name}(): linear_bias must be a real array, got dtype {bias.dtype}")
        if bias.shape != (classes,):
            raise ValueError(f"{name}(): linear_bias has shape {bias.shape}, linear_weight has {classes} classes")
    t = _args.training_temperature(temperature, name)
    threads = _check_threads(num_threads, name)
    smoothing = _args.fraction(label_smoothing, "label_smoothing", name)
    _args.reduction(reduction, ("mean", "sum", "none"), name)
    _args.ignore_index(ignore_index, name)
    z = _args.nonnegative(z_loss, "z_loss", name)
    cap = _args.optional_positive(softcap, "softcap", name)
    chunk = _args.optional_count(chunk_size, "chunk_size", name)
    outer = x.shape[:-1]
    indices = _args.class_indices(target, outer, classes, int(ignore_index), name)
    class_weight = None
    if weight is not None:
        class_weight = np.ascontiguousarray(_args.class_weights(weight, classes, name), dtype=compute_dt)

    rows = math.prod(outer)
    kept = indices != ignore_index
    kept_indices = indices[kept]
    denominator = float(kept_indices.size if class_weight is None
                        else math.fsum(class_weight[kept_indices].astype(np.float64)))
    all_ignored = kept_indices.size == 0
    scale = 1.0 if reduction != "mean" or all_ignored else 1.0 / denominator if denominator else math.inf
    weight_sum = float(classes) if class_weight is None else math.fsum(class_weight.astype(np.float64))

    x2 = x.reshape(rows, hidden)
    staged = x2.dtype != compute_dt
    w = _as_compute(w_in, compute_dt)
    b = None if bias is None else np.ascontiguousarray(bias, dtype=compute_dt)
    itemsize = compute_dt.itemsize
    m = _chunk_rows(rows, classes, hidden, itemsize, 2 if return_grad else 1, staged, chunk)

    losses = np.zeros(rows)
    grad_input = grad_weight = grad_bias = None
    if return_grad:
        grad_input = np.empty((rows, hidden), result_dt)
        # accumulated in the compute dtype; bias sums in double
        grad_weight = np.zeros((classes, hidden), compute_dt)
        grad_bias = None if b is None else np.zeros(classes)
    if rows and classes:
        logits = np.empty((m, classes), compute_dt)
        grad_logits = np.empty((m, classes), compute_dt) if return_grad else None
        gemm = _scipy_gemm(compute_dt) if return_grad and m < rows else None
        block = max(1, min(classes, _BLOCK_BYTES // max(hidden * itemsize, 1)))
        partial = np.empty((block, hidden), compute_dt) if return_grad and m < rows and gemm is None else None
        staged_rows = np.empty((m, hidden), compute_dt) if staged else None
        staged_grad = np.empty((m, hidden), compute_dt) if return_grad and result_dt != compute_dt else None
        parallel = threads if threads else _rows.default_threads()
        controller = _blas_controller(num_threads, parallel)
        pool = ThreadPoolExecutor(parallel) if controller is not None and parallel > 1 and return_grad else None
        with _blas_threads(controller, num_threads), pool or contextlib.nullcontext():
            for start in range(0, rows, m):
                stop = min(start + m, rows)
                n = stop - start
                xc = x2[start:stop]
                if staged:
                    xc = staged_rows[:n]
                    xc[...] = x2[start:stop]
                lc = logits[:n]
                np.matmul(xc, w.T, out=lc)
                if b is not None:
                    lc += b
                if cap is not None:
                    np.divide(lc, cap, out=lc)
                    np.tanh(lc, out=lc)
                    np.multiply(lc, cap, out=lc)
                gc = None if grad_logits is None else grad_logits[:n]
                losses[start:stop] = _rows.cross_entropy_rows(lc, indices[start:stop], None, class_weight,
                                                              int(ignore_index), smoothing, t, gc, scale, threads)
                if z:
                    _z_loss_rows(losses[start:stop], lc, indices[start:stop], kept[start:stop], class_weight,
                                 weight_sum, smoothing, t, z, gc, scale)
                if gc is None:
                    continue
                if row_scale is not None:
                    np.multiply(gc, row_scale[start:stop, None].astype(compute_dt), out=gc)
                if cap is not None:
                    # d(c tanh(l / c))/dl = 1 - tanh(l / c)**2, from the capped logits
                    np.divide(lc, cap, out=lc)
                    np.square(lc, out=lc)
                    np.subtract(1.0, lc, out=lc)
                    np.multiply(gc, lc, out=gc)
                if staged_grad is None:
                    _split_product(gc, w, grad_input[start:stop], pool, parallel, controller)
                else:
                    _split_product(gc, w, staged_grad[:n], pool, parallel, controller)
                    grad_input[start:stop] = staged_grad[:n]
                _add_product(grad_weight, gc, xc, start == 0, gemm, partial)
                if grad_bias is not None:
                    grad_bias += gc.sum(axis=0, dtype=np.float64)
    elif return_grad:
        grad_input[...] = 0

    loss = _reduce(losses, reduction, denominator, all_ignored, outer, result_dt)
    if not return_grad:
        return loss
    grad_input = grad_input.reshape(x.shape)
    grad_weight = grad_weight.astype(result_dt, copy=False)
    grad_bias = None if grad_bias is None else grad_bias.astype(result_dt)
    return loss, grad_input, grad_weight, grad_bias
