"""Helpers shared by the tests of where= masks, the backward functions and the
losses (test_masks.py, test_backward.py, test_losses.py).

Gradients and losses are compared elementwise under a bound proportional to
the size of the terms that make them up (their condition), not to the result
itself: ``y * (g - sum(g * y))`` may cancel to nearly 0, and then only an
error relative to ``|y| * (|g| + sum|g * y|)`` is meaningful."""
from __future__ import annotations

import numpy as np

from util import REFERENCE_SLACK, SOFTMAX_REL

DTYPES = [np.float32, np.float64]


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
