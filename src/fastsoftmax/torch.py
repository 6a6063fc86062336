"""fastsoftmax as PyTorch operators, with autograd and ``torch.compile``.

``import fastsoftmax.torch as fst`` gives :func:`softmax`, :func:`log_softmax`,
:func:`logsumexp`, :func:`cross_entropy`, :func:`kl_div`,
:func:`linear_cross_entropy` and :func:`sample` for tensors, with PyTorch's
argument names (``dim``, ``keepdim``; cross_entropy's class axis 1).

How they work:

- Each is a custom operator in the ``fastsoftmax`` namespace
  (``torch.ops.fastsoftmax.*``, registered with ``torch.library.custom_op``)
  with a fake implementation, so ``torch.compile(fullgraph=True)`` traces
  through it without a graph break, and an autograd formula that calls
  fastsoftmax's own backward kernels (the losses compute their gradient in
  the same pass as the loss, and backward only scales it).
- A CPU tensor is handed to the kernels without a copy, whatever its strides;
  bfloat16 and float16 too (bfloat16 through its raw bits as
  ``ml_dtypes.bfloat16``, never through ``.float()``).  Results are new
  tensors of the input's dtype, computed as the NumPy functions compute them
  (16-bit in float32).  The kernels use ``torch.get_num_threads()`` threads.
- Tensors on any other device (CUDA, MPS, meta...) run PyTorch's own
  functions with the same meaning; :func:`sample` runs on a CPU copy.
- The semantics are those of the NumPy functions: ``where=`` masks, the
  special values, the all-ignored "mean" of 0.0.  Each docstring says where
  PyTorch's own function differs.

PyTorch stays optional: ``import fastsoftmax`` never imports it.

>>> import torch, fastsoftmax.torch as fst
>>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], requires_grad=True)
>>> loss = fst.cross_entropy(logits, torch.tensor([0, 2]))
>>> loss.backward()
>>> round(loss.item(), 6), logits.grad.abs().sum().item() > 0
(0.175456, True)
"""
from __future__ import annotations

try:
    import torch
except ImportError as error:          # pragma: no cover - the tests run with torch installed
    raise ImportError("fastsoftmax.torch needs PyTorch: install it with `pip install torch` "
                      "(or `pip install fastsoftmax[torch]`)") from error

import math
from typing import Optional

import numpy as np

from . import _args, _rows
from ._api import log_softmax as _np_log_softmax
from ._api import logsumexp as _np_logsumexp
from ._api import softmax as _np_softmax
from ._linear import _linear_cross_entropy
from ._sample import sample as _np_sample
from ._training import cross_entropy as _np_cross_entropy
from ._training import kl_div as _np_kl_div
from ._training import log_softmax_backward as _np_log_softmax_backward
from ._training import softmax_backward as _np_softmax_backward

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "kl_div", "linear_cross_entropy", "sample"]

Tensor = torch.Tensor
_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


# ---- tensors to arrays and back, without copies ------------------------------------

def _bfloat16():
    try:
        import ml_dtypes
    except ImportError:
        return None
    return ml_dtypes.bfloat16


def _array(t: Optional[Tensor]):
    """The CPU tensor's memory as an ndarray (same strides); bfloat16 as
    ml_dtypes.bfloat16 through the raw bits."""
    if t is None:
        return None
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(_bfloat16())
    return t.numpy()


def _tensor(a) -> Tensor:
    """An ndarray (or NumPy scalar) result as a tensor sharing its memory."""
    a = np.asarray(a)
    if _args.is_bfloat16(a.dtype):
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _threads() -> int:
    return max(1, torch.get_num_threads())


def _on_kernels(*tensors: Optional[Tensor]) -> bool:
    """Whether the call runs on fastsoftmax's kernels: CPU tensors (and
    bfloat16 only with ml_dtypes installed)."""
    for t in tensors:
        if t is None:
            continue
        if t.device.type != "cpu" or (t.dtype == torch.bfloat16 and _bfloat16() is None):
            return False
    return True


def _check_floating(t, what: str, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}(): {what} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _FLOATS:
        raise TypeError(f"{name}(): {what} has dtype {t.dtype}; supported are float32, float64, float16 and "
                        "bfloat16")


def _wants_grad(*tensors: Optional[Tensor]) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _dim(dim, t: Tensor, name: str) -> int:
    """``dim`` checked and made non-negative (the NumPy checks, torch's name)."""
    if not _args.is_integer(dim):
        raise TypeError(f"{name}(): dim must be an int, got {type(dim).__name__} {dim!r:.60}")
    return _args.class_axis(int(dim), t.dim(), name)


# ---- softmax, log_softmax, logsumexp ----------------------------------------------

@torch.library.custom_op("fastsoftmax::softmax", mutates_args=())
def _softmax_op(x: Tensor, dim: int, temperature: float, where: Optional[Tensor]) -> Tensor:
    return _tensor(_np_softmax(_array(x), dim, temperature=temperature, where=_array(where),
                               num_threads=_threads()))


@torch.library.custom_op("fastsoftmax::log_softmax", mutates_args=())
def _log_softmax_op(x: Tensor, dim: int, temperature: float, where: Optional[Tensor]) -> Tensor:
    return _tensor(_np_log_softmax(_array(x), dim, temperature=temperature, where=_array(where),
                                   num_threads=_threads()))


@torch.library.custom_op("fastsoftmax::softmax_backward", mutates_args=())
def _softmax_backward_op(grad: Tensor, y: Tensor, dim: int, temperature: float, where: Optional[Tensor]) -> Tensor:
    return _tensor(_np_softmax_backward(_array(grad), _array(y), dim, temperature=temperature,
                                        where=_array(where), num_threads=_threads()))


@torch.library.custom_op("fastsoftmax::log_softmax_backward", mutates_args=())
def _log_softmax_backward_op(grad: Tensor, y: Tensor, dim: int, temperature: float,
                             where: Optional[Tensor]) -> Tensor:
    return _tensor(_np_log_softmax_backward(_array(grad), _array(y), dim, temperature=temperature,
                                            where=_array(where), num_threads=_threads()))


@torch.library.custom_op("fastsoftmax::logsumexp", mutates_args=())
def _logsumexp_op(x: Tensor, dim: int, keepdim: bool, temperature: float, where: Optional[Tensor]) -> Tensor:
    return _tensor(_np_logsumexp(_array(x), dim, temperature=temperature, where=_array(where), keepdims=keepdim,
                                 num_threads=_threads()))


def _same_as_input(x, *args):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


for _op in (_softmax_op, _log_softmax_op):
    _op.register_fake(_same_as_input)
_softmax_backward_op.register_fake(lambda grad, y, dim, temperature, where: torch.empty_like(grad))
_log_softmax_backward_op.register_fake(lambda grad, y, dim, temperature, where: torch.empty_like(grad))


@_logsumexp_op.register_fake
def _(x, dim, keepdim, temperature, where):
    shape = list(x.shape)
    if keepdim:
        shape[dim] = 1
    else:
        del shape[dim]
    return x.new_empty(shape)


def _save_output(ctx, inputs, output):
    x, dim, temperature, where = inputs
    ctx.save_for_backward(output, where)
    ctx.dim, ctx.temperature = dim, temperature


def _softmax_grad(ctx, grad):
    y, where = ctx.saved_tensors
    return _softmax_backward_op(grad, y, ctx.dim, ctx.temperature, where), None, None, None


def _log_softmax_grad(ctx, grad):
    y, where = ctx.saved_tensors
    return _log_softmax_backward_op(grad, y, ctx.dim, ctx.temperature, where), None, None, None


def _save_logsumexp(ctx, inputs, output):
    x, dim, keepdim, temperature, where = inputs
    ctx.save_for_backward(x, where)
    ctx.dim, ctx.keepdim, ctx.temperature = dim, keepdim, temperature


def _logsumexp_grad(ctx, grad):
    # d(T log sum exp(x / T)) / dx = softmax(x / T); 0 at masked entries
    x, where = ctx.saved_tensors
    g = grad if ctx.keepdim else grad.unsqueeze(ctx.dim)
    return g * _softmax_op(x, ctx.dim, ctx.temperature, where), None, None, None, None


_softmax_op.register_autograd(_softmax_grad, setup_context=_save_output)
_log_softmax_op.register_autograd(_log_softmax_grad, setup_context=_save_output)
_logsumexp_op.register_autograd(_logsumexp_grad, setup_context=_save_logsumexp)


def _masked(x: Tensor, where: Optional[Tensor]) -> Tensor:
    return x if where is None else x.masked_fill(~where, -math.inf)


def _forward_args(name, x, dim, temperature, where):
    _check_floating(x, "input", name)
    d = _dim(dim, x, name)
    t = _args.temperature(temperature, name)
    if where is not None:
        if not isinstance(where, torch.Tensor) or where.dtype != torch.bool:
            raise TypeError(f"{name}(): where must be None or a bool tensor, got "
                            f"{getattr(where, 'dtype', type(where).__name__)}")
        if where.dim() > x.dim() or any(m not in (1, n) for m, n in zip(where.shape[::-1], x.shape[::-1])):
            raise ValueError(f"{name}(): where has shape {tuple(where.shape)}, which does not broadcast to the "
                             f"input's shape {tuple(x.shape)}")
    return d, t


def softmax(input: Tensor, dim: int = -1, *, temperature: float = 1.0, where: Optional[Tensor] = None) -> Tensor:
    """:func:`fastsoftmax.softmax` of a tensor along ``dim``, with autograd.

    ``temperature`` ``T >= 0`` (``0`` and ``inf`` are the limits; the
    gradient needs ``0 < T < inf``); ``where`` a bool tensor broadcastable
    to ``input``, True where the entry takes part.  Unlike
    ``torch.softmax(x.masked_fill(~where, -inf) / T, dim)``, a row with no
    entry kept gives 0 (and gradient 0) rather than NaN.

    >>> import torch, fastsoftmax.torch as fst
    >>> fst.softmax(torch.tensor([1.0, 2.0, 3.0]), temperature=2.0)
    tensor([0.1863, 0.3072, 0.5065])
    """
    d, t = _forward_args("softmax", input, dim, temperature, where)
    if _on_kernels(input, where):
        return _softmax_op(input, d, t, where)
    y = torch.softmax(_masked(input, where) / t, d)
    return y if where is None else torch.where(where.expand_as(y).any(d, keepdim=True), y, 0).masked_fill(~where, 0)


def log_softmax(input: Tensor, dim: int = -1, *, temperature: float = 1.0,
                where: Optional[Tensor] = None) -> Tensor:
    """:func:`fastsoftmax.log_softmax` of a tensor along ``dim``, with autograd.

    Arguments as in :func:`softmax`.  A row with no entry kept gives
    ``-inf`` everywhere (PyTorch's recipe gives NaN).

    >>> import torch, fastsoftmax.torch as fst
    >>> fst.log_softmax(torch.tensor([[0.0, 0.0]], dtype=torch.float64))
    tensor([[-0.6931, -0.6931]], dtype=torch.float64)
    """
    d, t = _forward_args("log_softmax", input, dim, temperature, where)
    if _on_kernels(input, where):
        return _log_softmax_op(input, d, t, where)
    y = torch.log_softmax(_masked(input, where) / t, d)
    if where is None:
        return y
    return torch.where(where.expand_as(y).any(d, keepdim=True), y, -math.inf).masked_fill(~where, -math.inf)


def logsumexp(input: Tensor, dim: int = -1, keepdim: bool = False, *, temperature: float = 1.0,
              where: Optional[Tensor] = None) -> Tensor:
    """:func:`fastsoftmax.logsumexp` of a tensor along ``dim``, with autograd.

    ``T * log(sum(exp(input / T)))``, in ``input``'s units; the gradient is
    ``softmax(input / T)``.  Same as ``torch.logsumexp`` at ``T = 1``
    without a mask; a row with no entry kept gives ``-inf``.

    >>> import torch, fastsoftmax.torch as fst
    >>> fst.logsumexp(torch.tensor([[0.0, 0.0], [1.0, -math.inf]]))
    tensor([0.6931, 1.0000])
    """
    d, t = _forward_args("logsumexp", input, dim, temperature, where)
    _args.flag(keepdim, "keepdim", "logsumexp")
    if _on_kernels(input, where):
        return _logsumexp_op(input, d, bool(keepdim), t, where)
    if t == 0:
        return _masked(input, where).amax(d, keepdim=keepdim)
    return t * torch.logsumexp(_masked(input, where) / t, d, keepdim=keepdim)


# ---- losses -------------------------------------------------------------------------

def _loss_shape(x: Tensor, reduction: str, axis: int):
    if reduction != "none":
        return ()
    return tuple(s for i, s in enumerate(x.shape) if i != axis)


@torch.library.custom_op("fastsoftmax::scale_gradient", mutates_args=())
def _scale_op(saved: Tensor, grad: Tensor) -> Tensor:
    """``saved * grad`` into a buffer of fastsoftmax's result cache: a fresh
    (rows, classes) tensor from PyTorch's allocator costs its page faults on
    every step, more than the loss itself."""
    array = _array(saved)
    out = _tensor(_rows.empty_cached(array.shape, array.dtype))
    return torch.mul(saved, grad, out=out)


_scale_op.register_fake(lambda saved, grad: torch.empty_like(saved, memory_format=torch.contiguous_format))


def _is_one(grad: Tensor) -> bool:
    """Whether the incoming gradient is the scalar 1 (``loss.backward()``),
    checked in eager mode only: a traced backward (torch.compile, whose
    tensors are fake or functional subclasses) always scales."""
    return (type(grad) is torch.Tensor and not torch.compiler.is_compiling() and grad.numel() == 1
            and bool(grad.reshape(()) == 1))


def _scaled(saved: Tensor, grad: Tensor, reduction: str, axis: int) -> Tensor:
    """The saved gradient (of the loss, or of the row losses' sum) times the
    incoming one: per row for "none".  For ``loss.backward()`` the saved
    gradient is returned as it is: autograd then takes it as ``.grad``
    without a copy once the graph has let it go (with ``retain_graph=True``
    it copies it, and the saved one stays intact)."""
    if _is_one(grad):
        return saved
    if reduction == "none" and grad.dim():
        grad = grad.unsqueeze(axis)
    return _scale_op(saved, grad)


@torch.library.custom_op("fastsoftmax::cross_entropy", mutates_args=())
def _cross_entropy_op(input: Tensor, target: Tensor, weight: Optional[Tensor], ignore_index: int, reduction: str,
                      label_smoothing: float, temperature: float, with_grad: bool) -> tuple[Tensor, Tensor]:
    axis = 1 if input.dim() > 1 else 0
    result = _np_cross_entropy(_array(input), _array(target), axis, temperature=temperature, weight=_array(weight),
                               ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction,
                               return_grad=with_grad, num_threads=_threads())
    loss, grad = result if with_grad else (result, None)
    return _tensor(loss), (_tensor(grad) if with_grad else input.new_empty(0))


@_cross_entropy_op.register_fake
def _(input, target, weight, ignore_index, reduction, label_smoothing, temperature, with_grad):
    axis = 1 if input.dim() > 1 else 0
    loss = input.new_empty(_loss_shape(input, reduction, axis))
    return loss, (torch.empty_like(input, memory_format=torch.contiguous_format) if with_grad
                  else input.new_empty(0))


def _save_loss_grad(ctx, inputs, output):
    # no zero (rows, classes) tensor for the gradient output's own (absent) gradient
    ctx.set_materialize_grads(False)
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(output[1])
    ctx.reduction, ctx.axis = inputs[4], (1 if inputs[0].dim() > 1 else 0)


def _cross_entropy_grad(ctx, grad, _unused):
    if grad is None:
        return (None,) * 8
    (saved,) = ctx.saved_tensors
    return _scaled(saved, grad, ctx.reduction, ctx.axis), None, None, None, None, None, None, None


_cross_entropy_op.register_autograd(_cross_entropy_grad, setup_context=_save_loss_grad)


def cross_entropy(input: Tensor, target: Tensor, *, weight: Optional[Tensor] = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0, temperature: float = 1.0) -> Tensor:
    """:func:`fastsoftmax.cross_entropy` with PyTorch's layout: classes along dim 1.

    ``input`` is ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``; ``target``
    class indices (``(N, d1, ...)``, int64) or class probabilities of
    ``input``'s shape; the value of ``F.cross_entropy(input / T, target,
    weight=weight, ignore_index=ignore_index, reduction=reduction,
    label_smoothing=label_smoothing)``.  The loss and its gradient come from
    one pass over the logits; backward only scales the gradient.

    Differences from ``F.cross_entropy``: when every row is ignored "mean"
    gives 0.0 (PyTorch: NaN); a class whose coefficient is 0 contributes 0
    where its logit is ``-inf`` (PyTorch: NaN).  Probability targets get no
    gradient here: with ``target.requires_grad`` the call runs PyTorch's
    own function.

    >>> import torch, fastsoftmax.torch as fst
    >>> fst.cross_entropy(torch.tensor([[2.0, 0.5, -1.0]]), torch.tensor([0]))
    tensor(0.2413)
    """
    name = "cross_entropy"
    _check_floating(input, "input", name)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"{name}(): target must be a torch.Tensor, got {type(target).__name__}")
    t = _args.training_temperature(temperature, name)
    if _on_kernels(input, target, weight) and not (target.requires_grad or _wants_grad(weight)):
        return _cross_entropy_op(input, target, weight, int(ignore_index), reduction, float(label_smoothing), t,
                                 _wants_grad(input))[0]
    import torch.nn.functional as F
    return F.cross_entropy(input / t, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)


@torch.library.custom_op("fastsoftmax::kl_div", mutates_args=())
def _kl_div_op(student: Tensor, teacher: Tensor, reduction: str, temperature: float,
               with_grad: bool) -> tuple[Tensor, Tensor]:
    result = _np_kl_div(_array(student), _array(teacher), -1, temperature=temperature, reduction=reduction,
                        return_grad=with_grad, num_threads=_threads())
    loss, grad = result if with_grad else (result, None)
    return _tensor(loss), (_tensor(grad) if with_grad else student.new_empty(0))


@_kl_div_op.register_fake
def _(student, teacher, reduction, temperature, with_grad):
    loss = student.new_empty(_loss_shape(student, reduction, student.dim() - 1))
    return loss, (torch.empty_like(student, memory_format=torch.contiguous_format) if with_grad
                  else student.new_empty(0))


def _save_kl(ctx, inputs, output):
    ctx.set_materialize_grads(False)           # as _save_loss_grad
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(output[1])
    ctx.reduction, ctx.axis = inputs[2], inputs[0].dim() - 1


def _kl_div_grad(ctx, grad, _unused):
    if grad is None:
        return (None,) * 5
    (saved,) = ctx.saved_tensors
    return _scaled(saved, grad, ctx.reduction, ctx.axis), None, None, None, None


_kl_div_op.register_autograd(_kl_div_grad, setup_context=_save_kl)


def kl_div(student_logits: Tensor, teacher_logits: Tensor, *, temperature: float = 1.0,
           reduction: str = "batchmean") -> Tensor:
    """:func:`fastsoftmax.kl_div`: ``T**2 * KL(softmax(teacher / T) || softmax(student / T))``.

    Classes along the last dimension; "batchmean" divides by the number of
    rows (every position but the last dimension; PyTorch's
    ``F.kl_div(..., "batchmean")`` divides by the first dimension only),
    "sum" adds the rows, "none" returns them.  The gradient goes to
    ``student_logits``; when ``teacher_logits`` requires a gradient too the
    call runs PyTorch's own functions, which give both.

    >>> import torch, fastsoftmax.torch as fst
    >>> s, t = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[3.0, 0.0, -2.0]])
    >>> fst.kl_div(s, t, temperature=4.0)
    tensor(0.7715)
    """
    name = "kl_div"
    _check_floating(student_logits, "student_logits", name)
    _check_floating(teacher_logits, "teacher_logits", name)
    t = _args.training_temperature(temperature, name)
    _args.reduction(reduction, ("batchmean", "sum", "none"), name)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"{name}(): teacher_logits has shape {tuple(teacher_logits.shape)}, student_logits has "
                         f"shape {tuple(student_logits.shape)}")
    if student_logits.dim() == 0:
        raise ValueError(f"{name}(): the logits need at least one dimension (the classes)")
    if _on_kernels(student_logits, teacher_logits) and not _wants_grad(teacher_logits):
        return _kl_div_op(student_logits, teacher_logits, reduction, t, _wants_grad(student_logits))[0]
    s = torch.log_softmax(student_logits / t, -1)
    q = torch.log_softmax(teacher_logits / t, -1)
    rows = (q.exp() * (q - s)).nan_to_num(0.0).sum(-1) * t * t
    if reduction == "none":
        return rows
    return rows.sum() / max(rows.numel(), 1) if reduction == "batchmean" else rows.sum()


# ---- linear_cross_entropy ---------------------------------------------------------------

def _no_bias(x: Tensor) -> Tensor:
    return x.new_empty(0)


@torch.library.custom_op("fastsoftmax::linear_cross_entropy", mutates_args=())
def _linear_op(input: Tensor, linear_weight: Tensor, target: Tensor, linear_bias: Optional[Tensor],
               weight: Optional[Tensor], ignore_index: int, label_smoothing: float, reduction: str,
               temperature: float, z_loss: float, softcap: Optional[float], chunk_size: Optional[int],
               with_grad: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    result = _linear_cross_entropy(_array(input), _array(linear_weight), _array(target), _array(linear_bias),
                                   _array(weight), ignore_index, label_smoothing, reduction, temperature, z_loss,
                                   softcap, with_grad, chunk_size, _threads())
    if not with_grad:
        return _tensor(result), _no_bias(input), _no_bias(input), _no_bias(input)
    loss, gx, gw, gb = result
    return _tensor(loss), _tensor(gx), _tensor(gw), (_no_bias(input) if gb is None else _tensor(gb))


@_linear_op.register_fake
def _(input, linear_weight, target, linear_bias, weight, ignore_index, label_smoothing, reduction, temperature,
      z_loss, softcap, chunk_size, with_grad):
    loss = input.new_empty(tuple(input.shape[:-1]) if reduction == "none" else ())
    if not with_grad:
        return loss, _no_bias(input), _no_bias(input), _no_bias(input)
    bias = _no_bias(input) if linear_bias is None else torch.empty_like(linear_bias)
    return loss, torch.empty_like(input, memory_format=torch.contiguous_format), \
        torch.empty_like(linear_weight, memory_format=torch.contiguous_format), bias


@torch.library.custom_op("fastsoftmax::linear_cross_entropy_backward", mutates_args=())
def _linear_backward_op(grad: Tensor, input: Tensor, linear_weight: Tensor, target: Tensor,
                        linear_bias: Optional[Tensor], weight: Optional[Tensor], ignore_index: int,
                        label_smoothing: float, temperature: float, z_loss: float, softcap: Optional[float],
                        chunk_size: Optional[int]) -> tuple[Tensor, Tensor, Tensor]:
    """The gradients of sum(grad * row losses): reduction "none"'s backward,
    a second pass with each row's gradient scaled by its incoming one."""
    _, gx, gw, gb = _linear_cross_entropy(
        _array(input), _array(linear_weight), _array(target), _array(linear_bias), _array(weight), ignore_index,
        label_smoothing, "none", temperature, z_loss, softcap, True, chunk_size, _threads(),
        row_scale=_array(grad).reshape(-1).astype(np.float64))
    return _tensor(gx), _tensor(gw), (_no_bias(input) if gb is None else _tensor(gb))


@_linear_backward_op.register_fake
def _(grad, input, linear_weight, target, linear_bias, weight, ignore_index, label_smoothing, temperature, z_loss,
      softcap, chunk_size):
    bias = _no_bias(input) if linear_bias is None else torch.empty_like(linear_bias)
    return torch.empty_like(input, memory_format=torch.contiguous_format), \
        torch.empty_like(linear_weight, memory_format=torch.contiguous_format), bias


def _save_linear(ctx, inputs, output):
    (input, linear_weight, target, linear_bias, weight, ignore_index, label_smoothing, reduction, temperature,
     z_loss, softcap, chunk_size, with_grad) = inputs
    ctx.set_materialize_grads(False)           # as _save_loss_grad
    ctx.mark_non_differentiable(*output[1:])
    ctx.reduction, ctx.has_bias = reduction, linear_bias is not None
    if reduction == "none":
        ctx.save_for_backward(input, linear_weight, target, linear_bias, weight)
        ctx.arguments = (ignore_index, label_smoothing, temperature, z_loss, softcap, chunk_size)
    else:
        ctx.save_for_backward(*output[1:])


def _linear_grad(ctx, grad, *_unused):
    if grad is None:
        return (None,) * 13
    if ctx.reduction == "none":
        input, linear_weight, target, linear_bias, weight = ctx.saved_tensors
        gx, gw, gb = _linear_backward_op(grad, input, linear_weight, target, linear_bias, weight, *ctx.arguments)
    else:
        gx, gw, gb = ctx.saved_tensors if _is_one(grad) else (_scale_op(g, grad) for g in ctx.saved_tensors)
    return (gx, gw, None, gb if ctx.has_bias else None) + (None,) * 9


_linear_op.register_autograd(_linear_grad, setup_context=_save_linear)


def _torch_linear_cross_entropy(input, linear_weight, target, linear_bias, weight, ignore_index, label_smoothing,
                                reduction, temperature, z_loss, softcap):
    """The definition in PyTorch's own functions (tensors on other devices)."""
    import torch.nn.functional as F
    logits = F.linear(input, linear_weight, linear_bias)
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    logits = logits / temperature
    flat, labels = logits.reshape(-1, logits.shape[-1]), target.reshape(-1)
    rows = F.cross_entropy(flat, labels, weight=weight, ignore_index=ignore_index, reduction="none",
                           label_smoothing=label_smoothing)
    kept = labels != ignore_index
    w_y = torch.ones_like(rows) if weight is None else weight[torch.where(kept, labels, 0)].to(rows.dtype)
    w_y = torch.where(kept, w_y, 0)
    if z_loss:
        mean_weight = 1.0 if weight is None else weight.mean()
        row_weight = (1 - label_smoothing) * w_y + label_smoothing * mean_weight
        rows = rows + torch.where(kept, z_loss * row_weight * torch.logsumexp(flat, -1) ** 2, 0)
    if reduction == "none":
        return rows.reshape(target.shape)
    if reduction == "sum":
        return rows.sum()
    denominator = w_y.sum()
    return torch.where(denominator == 0, rows.sum() * 0, rows.sum() / denominator)


def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor, *,
                         linear_bias: Optional[Tensor] = None, weight: Optional[Tensor] = None,
                         ignore_index: int = -100, label_smoothing: float = 0.0, reduction: str = "mean",
                         temperature: float = 1.0, z_loss: float = 0.0, softcap: Optional[float] = None,
                         chunk_size: Optional[int] = None) -> Tensor:
    """:func:`fastsoftmax.linear_cross_entropy` of tensors, with autograd.

    ``input`` ``(..., H)``, ``linear_weight`` ``(V, H)``, ``target`` class
    indices of ``input``'s shape without ``H``; the other arguments as in
    ``torch.nn.functional.linear_cross_entropy`` plus ``temperature``,
    ``z_loss``, ``softcap`` and ``chunk_size`` (see the NumPy function).
    The ``(rows, V)`` logits are never held: forward computes the gradients
    of ``input``, ``linear_weight`` and ``linear_bias`` in the same chunked
    pass (when one of them requires a gradient), and backward scales them.
    With ``reduction="none"``, backward makes a second pass with each row's
    incoming gradient.

    Differences from PyTorch's function: when every row is ignored "mean"
    gives 0.0 (PyTorch: NaN).  ``weight`` gets no gradient (PyTorch gives
    none either).

    >>> import torch, fastsoftmax.torch as fst
    >>> hidden = torch.randn(8, 16, requires_grad=True)
    >>> head = torch.nn.Linear(16, 100, bias=False)
    >>> loss = fst.linear_cross_entropy(hidden, head.weight, torch.randint(0, 100, (8,)))
    >>> loss.backward()
    >>> head.weight.grad.shape
    torch.Size([100, 16])
    """
    name = "linear_cross_entropy"
    _check_floating(input, "input", name)
    _check_floating(linear_weight, "linear_weight", name)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"{name}(): target must be a torch.Tensor, got {type(target).__name__}")
    t = _args.training_temperature(temperature, name)
    _args.reduction(reduction, ("mean", "sum", "none"), name)
    z = _args.nonnegative(z_loss, "z_loss", name)
    cap = _args.optional_positive(softcap, "softcap", name)
    chunk = _args.optional_count(chunk_size, "chunk_size", name)
    smoothing = _args.fraction(label_smoothing, "label_smoothing", name)
    _args.ignore_index(ignore_index, name)
    if _on_kernels(input, linear_weight, target, linear_bias, weight):
        # "none" computes its gradients in backward, once the rows' incoming gradients are known
        with_grad = reduction != "none" and _wants_grad(input, linear_weight, linear_bias)
        return _linear_op(input, linear_weight, target, linear_bias, weight, int(ignore_index), smoothing,
                          reduction, t, z, cap, chunk, with_grad)[0]
    return _torch_linear_cross_entropy(input, linear_weight, target, linear_bias, weight, int(ignore_index),
                                       smoothing, reduction, t, z, cap)


# ---- sampling -------------------------------------------------------------------------------

@torch.library.custom_op("fastsoftmax::sample", mutates_args=())
def _sample_op(logits: Tensor, dim: int, temperature: Tensor, top_k: Optional[int], top_p: Optional[float],
               min_p: Optional[float], where: Optional[Tensor], seed: Tensor) -> Tensor:
    temperatures = _array(temperature)
    drawn = _np_sample(_array(logits), dim, temperature=temperatures[()] if temperatures.ndim == 0 else temperatures,
                       top_k=top_k, top_p=top_p, min_p=min_p, where=_array(where),
                       rng=np.random.default_rng(int(seed)), num_threads=_threads())
    return _tensor(np.asarray(drawn, dtype=np.int64))


@_sample_op.register_fake
def _(logits, dim, temperature, top_k, top_p, min_p, where, seed):
    return logits.new_empty(tuple(s for i, s in enumerate(logits.shape) if i != dim), dtype=torch.int64)


def sample(logits: Tensor, dim: int = -1, *, temperature=1.0, top_k: Optional[int] = None,
           top_p: Optional[float] = None, min_p: Optional[float] = None, where: Optional[Tensor] = None,
           generator: Optional[torch.Generator] = None) -> Tensor:
    """:func:`fastsoftmax.sample` of a tensor: one index per row, int64, no gradient.

    Draws from ``softmax(logits / temperature)`` along ``dim`` after the
    ``top_k``, ``top_p`` and ``min_p`` filters (see the NumPy function).
    ``temperature`` is a number or a tensor broadcastable to the batch
    shape.  The randomness comes from PyTorch's generator (``generator``, or
    the default one): after ``torch.manual_seed(s)`` the draws repeat.
    Tensors on other devices are sampled on a CPU copy; the indices come
    back to their device.

    >>> import torch, fastsoftmax.torch as fst
    >>> fst.sample(torch.tensor([[0.0, 50.0, 0.0]]))
    tensor([1])
    """
    name = "sample"
    _check_floating(logits, "logits", name)
    d = _dim(dim, logits, name)
    seed = torch.randint(0, 2 ** 62, (), generator=generator, dtype=torch.int64)
    temperature = torch.as_tensor(temperature, dtype=torch.float64).detach()
    device = logits.device
    if not _on_kernels(logits):
        logits = logits.detach().to("cpu", torch.float32 if logits.dtype == torch.bfloat16 else logits.dtype)
        where = None if where is None else where.to("cpu")
    drawn = _sample_op(logits.detach(), d, temperature.cpu(), top_k, top_p, min_p, where, seed)
    return drawn.to(device)
