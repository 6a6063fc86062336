"""The test suite's one support module: the contract's bounds, the oracles
(the pure-Python reference and a vectorised long-double one), the checks of
special values, the array zoo, and the instruction-set variants.

Gradients and losses are compared elementwise under a bound proportional to
the size of the terms that make them up (their condition), not to the result
itself: ``y * (g - sum(g * y))`` may cancel to nearly 0, and then only an
error relative to ``|y| * (|g| + sum|g * y|)`` is meaningful."""
from __future__ import annotations

import functools
import math
import os
import subprocess
import sys

import numpy as np

import fastsoftmax as fs
from fastsoftmax import reference

FUNCTIONS = {
    "softmax": (fs.softmax, reference.softmax),
    "log_softmax": (fs.log_softmax, reference.log_softmax),
    "logsumexp": (fs.logsumexp, reference.logsumexp),
}

DTYPES = [np.float32, np.float64]

# Contract bounds (softmax relative error for entries >= 1e-8, then the deep tail).
SOFTMAX_REL = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14, np.dtype(np.float16): 1e-3}
TAIL_REL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-12, np.dtype(np.float16): 1e-3}
# A softmax row sums to 1 within this, in float32 too, at any length.
ROW_SUM_BOUND = 2e-6
# The reference computes float64 inputs in float64 too, so its own rounding
# (a few ulp of (x - max) / T) adds to ours; compare with a little slack.
REFERENCE_SLACK = {np.dtype(np.float32): 1.0, np.dtype(np.float64): 4.0, np.dtype(np.float16): 1.0}


def read_only_cache(build):
    """Cache an input builder: its array is shared by every test (and
    instruction-set variant) that asks for the same arguments, so it is made
    read-only, and no test can change what the others see."""
    @functools.lru_cache(maxsize=None)
    @functools.wraps(build)
    def cached(*args, **kwargs):
        array = build(*args, **kwargs)
        array.flags.writeable = False
        return array
    return cached


def run_python(script: str, **environment: str) -> str:
    """Run ``script`` in a fresh interpreter, with these environment variables
    added to ours; it must succeed.  Returns what it printed."""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, **environment), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def rng(seed=0):
    return np.random.default_rng(seed)


def logits(shape, dtype, seed=0, scale=4.0):
    return np.asarray(rng(seed).standard_normal(shape) * scale).astype(dtype)


def layouts(a: np.ndarray):
    """The same values in different memory layouts: (name, array) pairs.
    Each array equals ``a`` elementwise."""
    yield "C", np.array(a, order="C")
    if a.ndim >= 2:
        yield "F", np.asfortranarray(a)
        yield "transposed-view", np.ascontiguousarray(a.T).T
    if a.ndim >= 1 and a.shape[-1] > 0:
        rev = np.ascontiguousarray(a[..., ::-1])
        yield "negative-stride", rev[..., ::-1]
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        yield "strided", wide[..., ::2]
        flat = np.zeros(a.size + 1, dtype=a.dtype)
        flat[1:] = a.ravel()
        yield "offset-by-one", flat[1:].reshape(a.shape)
        yield "byteswapped", a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder in "=<" else "<"))


def axes_for(ndim: int):
    if ndim == 0:
        return [-1, None]
    out = [-1, None] + list(range(ndim))
    if ndim >= 2:
        out.append((0, ndim - 1))
    return out


def assert_close(name: str, actual, expected, dtype, context: str = "", scale: float = 1.0) -> None:
    """Compare a result with the reference under the contract's bounds.

    NaN and infinities must sit in the same places; finite values obey the
    relative bounds (softmax) or the max(scale, |value|)-relative bounds (log).
    ``scale`` > 1 allows for ill-conditioned logsumexp: max + T * log(S) where
    both terms are huge and cancel."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    where = f"{name} dtype={dtype} {context}"
    assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{where}: dtype {actual.dtype} != {expected.dtype}"
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    assert np.array_equal(nan_a, nan_e), f"{where}: NaN at {np.argwhere(nan_a != nan_e)[:5].tolist()}"
    inf_e = np.isinf(e)
    assert np.array_equal(np.isinf(a), inf_e), f"{where}: inf mismatch {a[np.isinf(a) != inf_e][:5]} vs {e[np.isinf(a) != inf_e][:5]}"
    assert np.array_equal(a[inf_e], e[inf_e]), f"{where}: infinities of other sign"
    fin = ~(nan_e | inf_e)
    a, e = a[fin], e[fin]
    slack = REFERENCE_SLACK[dtype]
    tiny = float(np.finfo(dtype).tiny)
    if name == "softmax":
        big = e >= 1e-8
        rel = np.abs(a - e) / np.where(e == 0, 1, np.abs(e))
        bound = SOFTMAX_REL[dtype] * slack
        assert np.all(rel[big] <= bound), f"{where}: max rel err {rel[big].max():.3g} > {bound:.3g}"
        normal = (e < 1e-8) & (e >= tiny)
        tail = TAIL_REL[dtype] * slack
        assert np.all(rel[normal] <= tail), f"{where}: tail rel err {rel[normal].max():.3g} > {tail:.3g}"
        sub = e < tiny
        assert np.all(np.abs(a[sub] - e[sub]) <= tiny), f"{where}: subnormal results off"
    else:
        err = np.abs(a - e) / np.maximum(max(1.0, scale), np.abs(e))
        bound = 4 * SOFTMAX_REL[dtype] * slack
        assert np.all(err <= bound), f"{where}: max err {err.max():.3g} > {bound:.3g}"


# ---- where= masks: attention scores of shape (B, H, S, S) -----------------------

B, H, S = 3, 2, 5
# what a row with no selected entry comes out as
FULLY_MASKED = {"softmax": 0.0, "log_softmax": -math.inf, "logsumexp": -math.inf}


def padding_mask():
    """(B, 1, 1, S) key-padding mask: batch 0 full, batch 1 with 2 pads, batch 2 all padding."""
    lengths = [S, S - 2, 0]
    return (np.arange(S)[None, :] < np.array(lengths)[:, None]).reshape(B, 1, 1, S)


def causal_mask():
    return np.tril(np.ones((S, S), dtype=bool))


MASKS = {
    "padding": padding_mask,
    "causal": causal_mask,
    "padding-and-causal": lambda: padding_mask() & causal_mask(),
    "full-size random": lambda: np.random.default_rng(3).random((B, H, S, S)) < 0.6,
}


# ---- weights for SciPy's logsumexp(b=) ----------------------------------------------

def logsumexp_weights(shape, seed, negative=True):
    """Weights b of ``shape``: standard normal (of both signs), or in
    [0.1, 2) with ``negative=False``; every 7th one 0."""
    w = rng(seed).standard_normal(shape) if negative else rng(seed).uniform(0.1, 2.0, shape)
    w = np.asarray(w)
    if w.size > 3:
        w.reshape(-1)[::7] = 0.0
    return w


def weighted_tolerance(a, b, axis, dtype):
    """Error bound of log|S| for S = sum b exp(a - max): the dtype's bound
    times the sum's condition number sum|terms| / |sum|."""
    x = np.broadcast_to(np.asarray(a, np.float64), np.broadcast_shapes(np.shape(a), np.shape(b)))
    w = np.broadcast_to(np.asarray(b, np.float64), x.shape)
    with np.errstate(all="ignore"):   # rows with no weight: nothing to bound
        m = np.max(np.where(w != 0, x, -math.inf), axis=axis, keepdims=True)
        terms = np.where(w != 0, w * np.exp(x - m), 0.0)
        cond = np.sum(np.abs(terms), axis=axis) / np.abs(np.sum(terms, axis=axis))
    return (8e-6 if np.dtype(dtype) == np.float32 else 1e-14) * np.maximum(np.nan_to_num(cond, nan=1.0), 1.0)


# ---- instruction-set variants and a vectorised oracle ------------------------

# The compiled variants, best first, and a word of fastsoftmax._rows.simd_target()'s text for each.
ISAS = ("avx512", "avx2", "baseline")
ISA_WORDS = {"avx512": "AVX-512", "avx2": "AVX2", "baseline": "baseline"}
_VECTOR_BYTES = {"avx512": 64, "avx2": 32, "baseline": 16}


def variant_in_use() -> str:
    """The name of the variant the kernels use now (for _rows._use_isa)."""
    from fastsoftmax import _rows

    target = _rows.simd_target()
    for name in ISAS:
        if ISA_WORDS[name] in target:
            return name
    return "best"


def lanes(isa: str, dtype) -> int:
    """Elements per vector of a variant: the height of a tile of tiny rows and
    the longest row that goes into one."""
    return _VECTOR_BYTES[isa] // np.dtype(dtype).itemsize


# Long double where it is wider than double (x86-64 Linux: 64-bit mantissa);
# the accuracy tests that need more than double skip without it.
LONG_DOUBLE_IS_WIDER = bool(np.finfo(np.longdouble).eps < np.finfo(np.float64).eps)


def oracle(name: str, x, axis: int = -1, temperature: float = 1.0, keepdims: bool = False, rounded: bool = True):
    """``name`` over one axis computed with NumPy in long double, vectorised
    (fast enough for arrays too big for the pure-Python reference), rounded
    to x's dtype (or left in long double with ``rounded=False``).  Only for
    inputs whose every reduced row has a finite maximum and no NaN, and
    0 < T < inf."""
    x = np.asarray(x)
    w = x.astype(np.longdouble)
    t = np.longdouble(temperature)
    m = w.max(axis=axis, keepdims=True)
    assert np.all(np.isfinite(m)), "oracle(): rows need a finite maximum"
    a = (w - m) / t
    e = np.exp(a)
    s = e.sum(axis=axis, keepdims=True)
    if name == "softmax":
        r = e / s
    elif name == "log_softmax":
        r = a - np.log(s)
    else:
        r = m + t * np.log(s)
        if not keepdims:
            r = np.squeeze(r, axis=axis)
    return r.astype(x.dtype) if rounded else r


# ---- rows (or columns) with special values ------------------------------------

SPECIAL_KINDS = ["nan", "+inf", "all -inf", "some -inf", "+inf and -inf", "nan and +inf", "huge", "ties"]


def special_values(kind, n, pos, dtype, rng):
    """n entries (a row, or a column along a strided axis) of one of
    SPECIAL_KINDS; `pos` picks where the special entry sits."""
    inf, big = np.inf, np.finfo(dtype).max
    row = (rng.standard_normal(n) * 4).astype(dtype)
    pos %= n
    if kind == "nan":
        row[pos] = np.nan
    elif kind == "+inf":
        row[pos] = inf
    elif kind == "all -inf":
        row[:] = -inf
    elif kind == "some -inf":            # a finite maximum: computed by the fast paths themselves
        row[np.arange(n) != pos] = -inf
        if n > 2:
            row[(pos + 1) % n] = 1.5
    elif kind == "+inf and -inf":
        row[:] = -inf
        row[pos] = inf
    elif kind == "nan and +inf":
        row[pos] = np.nan
        row[(pos + 1) % n] = inf
    elif kind == "huge":                 # near the dtype's max: nothing may overflow
        row[:] = -big
        row[pos] = big
        row[(pos + 2) % n] = big / 2
    elif kind == "ties":
        row[:] = 2.25
    return row


# row -> (softmax, log_softmax, logsumexp) at T = 1: the contract's special-value table
SPECIAL_TABLE = [
    ([0.0, -math.inf, 0.0], [0.5, 0.0, 0.5], [-math.log(2), -math.inf, -math.log(2)], math.log(2)),
    ([-math.inf, -math.inf], [math.nan, math.nan], [math.nan, math.nan], -math.inf),
    ([1.0, math.inf, 2.0], [math.nan] * 3, [math.nan] * 3, math.inf),
    ([math.inf, -math.inf], [math.nan, math.nan], [math.nan, math.nan], math.inf),
    ([1.0, math.nan, math.inf], [math.nan] * 3, [math.nan] * 3, math.nan),
    ([math.nan, -math.inf], [math.nan, math.nan], [math.nan, math.nan], math.nan),
]


# ---- gradients and losses: bounds scaled by the size of their terms -----------


def bound(dtype) -> float:
    """The contract's bound for log_softmax / logsumexp (4x softmax's), with the
    reference's own rounding as slack: 8e-6 for float32, 1.6e-13 for float64."""
    dtype = np.dtype(dtype)
    return 4 * SOFTMAX_REL[dtype] * REFERENCE_SLACK[dtype]


def assert_same_specials(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """NaN and infinities (of the same sign) in the same places."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    assert np.array_equal(np.isnan(a), np.isnan(e)), \
        f"{what}: NaN at {np.argwhere(np.isnan(a) != np.isnan(e))[:5].tolist()}"
    inf = np.isinf(e)
    assert np.array_equal(np.isinf(a), inf), \
        f"{what}: infinity at {np.argwhere(np.isinf(a) != inf)[:5].tolist()}"
    assert np.array_equal(a[inf], e[inf]), f"{what}: infinities of the other sign"


def assert_scaled_close(actual, expected, scale, dtype, what: str, factor: float = 1.0) -> None:
    """``actual`` (fastsoftmax, of ``dtype``) against ``expected`` (float64
    reference or torch): same shape, result dtype ``dtype``, same NaN/inf,
    and ``|actual - expected| <= bound(dtype) * factor * scale`` elsewhere,
    where ``scale`` (broadcastable) is the size of the terms the value is
    made of; ``scale=abs(expected)`` asks for a relative error."""
    actual = np.asarray(actual)
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype}, expected {np.dtype(dtype)}"
    expected = np.asarray(expected, dtype=np.float64)
    assert_same_specials(actual, expected, what)
    a = actual.astype(np.float64)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), expected.shape)
    finite = np.isfinite(expected)
    err = np.abs(a - expected)[finite]
    allowed = bound(dtype) * factor * scale[finite]
    # a result rounded to float32 may be a subnormal: allow the spacing there
    allowed = np.maximum(allowed, np.finfo(dtype).smallest_subnormal)
    worst = np.argmax(err - allowed) if err.size else 0
    assert np.all(err <= allowed), (
        f"{what}: error {err[worst]:.3g} > allowed {allowed[worst]:.3g} "
        f"(actual {a[finite][worst]!r}, expected {expected[finite][worst]!r})")


def assert_relative_close(actual, expected, dtype, what: str, factor: float = 1.0) -> None:
    expected = np.asarray(expected, dtype=np.float64)
    assert_scaled_close(actual, expected, np.abs(expected), dtype, what, factor)


def as_scalar_of(value, dtype, what: str):
    """A 0-d result must be a NumPy scalar of the result dtype (as numpy.sum)."""
    assert type(value) is np.dtype(dtype).type, f"{what}: {type(value).__name__}, expected {np.dtype(dtype).name}"
    return value


def softmax_backward_scale(grad, y, axis, temperature):
    """|y| * (|g| + sum|g * y|) / T: the size of the terms of y * (g - sum(g * y)) / T."""
    g = np.abs(np.asarray(grad, dtype=np.float64))
    yy = np.abs(np.asarray(y, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return yy * (g + np.nansum(g * yy, axis=axis, keepdims=True)) / temperature


def log_softmax_backward_scale(grad, y, axis, temperature):
    """(|g| + exp(y) * sum|g|) / T."""
    g = np.abs(np.asarray(grad, dtype=np.float64))
    with np.errstate(invalid="ignore", over="ignore"):
        return (g + np.exp(np.asarray(y, dtype=np.float64)) * np.nansum(g, axis=axis, keepdims=True)) / temperature


def fill_sentinel(out: np.ndarray) -> np.ndarray:
    out[...] = 12345.0
    return out


def threaded_shape() -> tuple[int, int]:
    """Large enough (over the ~32K elements below which calls stay on one
    thread) that num_threads=2 really splits the work."""
    return (160, 520)


# ---- the losses against the reference, under bounds scaled by their terms ------------

def ce_grad_scale(x, target, axis=-1, temperature=1.0, weight=None, ignore_index=-100,
                  label_smoothing=0.0, reduction="mean"):
    """Per entry (p_j * sum(a) + |a_j|) / (T * D): the size of the terms of the
    gradient (p_j * sum(a) - a_j) / (T * D), where a holds the coefficients
    of -log_softmax in the loss (see reference.cross_entropy)."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, -1)
    n_classes = x.shape[-1]
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    eps = label_smoothing
    target = np.asarray(target)
    if target.dtype.kind in "iu":
        ignored = target == ignore_index
        safe = np.where(ignored, 0, target)
        a = np.broadcast_to(eps / n_classes * w, x.shape).copy()
        a += (1 - eps) * w[safe][..., None] * (np.arange(n_classes) == safe[..., None])
        a[ignored] = 0.0
        denominator = w[safe][~ignored].sum()
    else:
        q = np.moveaxis(target.astype(np.float64), axis, -1)
        a = w * ((1 - eps) * q + eps / n_classes)
        denominator = x.size // max(n_classes, 1)
    if reduction != "mean":
        denominator = 1.0
    p = reference.softmax(x, temperature=temperature).astype(np.float64)
    if denominator == 0:
        return np.zeros(np.moveaxis(x, -1, axis).shape)
    scale = (p * a.sum(axis=-1, keepdims=True) + np.abs(a)) / (temperature * denominator)
    return np.moveaxis(np.where(np.isnan(scale), 0.0, scale), -1, axis)


def check_cross_entropy(logits_, dtype, context, **kwargs):
    """fastsoftmax's loss and gradient against the reference's."""
    want_loss, want_grad = reference.cross_entropy(logits_, return_grad=True, **kwargs)
    loss, grad = fs.cross_entropy(logits_, return_grad=True, **kwargs)
    if np.ndim(want_loss) == 0:
        as_scalar_of(loss, dtype, context)
    assert_relative_close(loss, want_loss, dtype, f"cross_entropy loss {context}")
    assert grad.shape == np.shape(logits_)
    scale = ce_grad_scale(logits_, **kwargs)
    assert_scaled_close(grad, want_grad, scale, dtype, f"cross_entropy grad {context}")
    loss_only = fs.cross_entropy(logits_, **kwargs)
    assert_relative_close(loss_only, want_loss, dtype, f"cross_entropy loss without grad {context}")
    return loss, grad


def kl_scales(student, teacher, axis, temperature, reduction):
    """(loss scale, gradient scale): T**2 * sum q * (|log q| + |log p|) per row
    (reduced like the loss) and T * (p + q) / D."""
    s = np.asarray(student, dtype=np.float64)
    t = np.asarray(teacher, dtype=np.float64)
    p = reference.softmax(s, axis, temperature=temperature)
    q = reference.softmax(t, axis, temperature=temperature)
    with np.errstate(invalid="ignore"):
        terms = np.where(q > 0, q * (np.abs(reference.log_softmax(t, axis, temperature=temperature))
                                     + np.abs(reference.log_softmax(s, axis, temperature=temperature))), 0.0)
    row = temperature ** 2 * terms.sum(axis=axis)
    rows = max(row.size, 1)
    if reduction == "none":
        return row, temperature * (p + q)
    denominator = rows if reduction == "batchmean" else 1
    return row.sum() / denominator, temperature * (p + q) / denominator


def student_and_teacher(shape, dtype, seed, teacher_seed=None):
    """kl_div's logits: the student's, and a teacher's twice as spread (rows
    both sharper and flatter than the student's), the teacher's from
    ``teacher_seed`` (``seed + 1`` unless given)."""
    teacher_seed = seed + 1 if teacher_seed is None else teacher_seed
    return logits(shape, dtype, seed=seed), logits(shape, dtype, seed=teacher_seed, scale=8.0)


def check_kl(student, teacher, dtype, context, axis=-1, temperature=1.0, reduction="batchmean"):
    want_loss, want_grad = reference.kl_div(student, teacher, axis, temperature=temperature,
                                            reduction=reduction, return_grad=True)
    loss, grad = fs.kl_div(student, teacher, axis, temperature=temperature, reduction=reduction,
                           return_grad=True)
    loss_scale, grad_scale = kl_scales(student, teacher, axis, temperature, reduction)
    assert_scaled_close(loss, want_loss, loss_scale, dtype, f"kl_div loss {context}")
    assert_scaled_close(grad, want_grad, grad_scale, dtype, f"kl_div grad {context}")
    assert_scaled_close(fs.kl_div(student, teacher, axis, temperature=temperature, reduction=reduction),
                        want_loss, loss_scale, dtype, f"kl_div loss without grad {context}")
    return loss, grad


def contrastive_grad_scale(sim, temperature, symmetric, reduction):
    """Size of the terms of the gradient share * ((P - I) + (Q - I)) / (T * D)."""
    sim = np.asarray(sim, dtype=np.float64)
    n = sim.shape[0]
    eye = np.eye(n)
    parts = [reference.softmax(sim, 1, temperature=temperature) + eye]
    if symmetric:
        parts.append(reference.softmax(sim, 0, temperature=temperature) + eye)
    denominator = n if reduction == "mean" else 1
    return sum(parts) / (len(parts) * temperature * denominator)


def check_contrastive(sim, dtype, context, temperature, symmetric, reduction):
    """fastsoftmax's contrastive loss and gradient against the reference's."""
    want_loss, want_grad = reference.contrastive_loss(sim, temperature=temperature, symmetric=symmetric,
                                                      reduction=reduction, return_grad=True)
    loss, grad = fs.contrastive_loss(sim, temperature=temperature, symmetric=symmetric, reduction=reduction,
                                     return_grad=True)
    assert_relative_close(loss, want_loss, dtype, f"contrastive loss {context}")
    assert_scaled_close(grad, want_grad, contrastive_grad_scale(sim, temperature, symmetric, reduction), dtype,
                        f"contrastive grad {context}")
    assert_relative_close(fs.contrastive_loss(sim, temperature=temperature, symmetric=symmetric,
                                              reduction=reduction),
                          want_loss, dtype, f"contrastive loss without grad {context}")
    return loss, grad


def similarities(n, dtype, seed):
    """Cosine similarities of random unit vectors, the diagonal nudged up."""
    v = np.random.default_rng(seed).standard_normal((2, n, 8))
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    sim = v[0] @ v[1].T + 0.3 * np.eye(n)
    return sim.astype(dtype)
