"""cross_entropy, kl_div and contrastive_loss (issue 8).

fastsoftmax against the exact reference (losses relative to themselves,
gradients under a bound scaled by the size of their terms), and both against
PyTorch in float64 when it is installed: F.cross_entropy (class axis moved
to 1), Hinton's T**2 * F.kl_div(..., log_target=True) and CLIP's symmetric
cross-entropy, with gradients from autograd.  Also: ignore_index, weights,
label smoothing, soft targets, every reduction, all rows ignored, confident
rows, -inf logits, layouts, threads, result types and bad input."""
import math
import tracemalloc

import numpy as np
import pytest
from numpy.exceptions import AxisError

import fastsoftmax as fs
from fastsoftmax import reference
from util import (DTYPES, as_scalar_of, assert_relative_close, assert_scaled_close, ce_grad_scale, check_contrastive,
                  check_cross_entropy, check_kl, contrastive_grad_scale, kl_scales, layouts, logits, similarities,
                  student_and_teacher, threaded_shape)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf, nan = math.inf, math.nan
C = 5


# ---- cross_entropy ---------------------------------------------------------------

def class_targets(shape, seed, ignore_index=-100, ignored=(1, 4)):
    target = np.random.default_rng(seed).integers(0, C, shape)
    target.reshape(-1)[list(ignored)] = ignore_index
    return target


def soft_targets(shape, seed, axis=-1):
    q = np.random.default_rng(seed).random(shape) ** 3
    q /= q.sum(axis=axis, keepdims=True)
    return q


def class_weights(seed=0):
    return np.random.default_rng(seed).random(C) + 0.25


# name -> keyword arguments of cross_entropy besides logits (shape (6, C)), built per dtype
CE_CASES = {
    "indices": lambda dt: dict(target=class_targets(6, 1)),
    "weights": lambda dt: dict(target=class_targets(6, 2), weight=class_weights(2)),
    "smoothing": lambda dt: dict(target=class_targets(6, 3), label_smoothing=0.1),
    "weights+smoothing": lambda dt: dict(target=class_targets(6, 4), weight=class_weights(4),
                                         label_smoothing=0.25),
    "ignore_index in range": lambda dt: dict(target=class_targets(6, 5, ignore_index=2), ignore_index=2),
    "no ignored rows": lambda dt: dict(target=class_targets(6, 6, ignored=())),
    "probabilities": lambda dt: dict(target=soft_targets((6, C), 7).astype(dt)),
    "probabilities+weights+smoothing": lambda dt: dict(target=soft_targets((6, C), 8).astype(dt),
                                                       weight=class_weights(8), label_smoothing=0.2),
}
REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("temperature", [0.7, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy_matches_the_reference(case, dtype, reduction, temperature):
    x = logits((6, C), dtype, seed=11)
    kwargs = CE_CASES[case](dtype)
    loss, grad = check_cross_entropy(x, dtype, f"{case} {reduction} T={temperature}",
                                     temperature=temperature, reduction=reduction, **kwargs)
    target = kwargs["target"]
    if target.dtype.kind == "i":
        ignored = target == kwargs.get("ignore_index", -100)
        assert np.all(grad[ignored] == 0), "ignored rows get gradient 0"
        if reduction == "none":
            assert np.all(loss[ignored] == 0) and loss.shape == (6,)


AXIS_CASES = [
    ((3, C, 4), 1),        # PyTorch's (N, C, d) layout
    ((3, 4, C), -1),
    ((C, 3, 2), 0),
    ((C,), 0),             # one row
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", AXIS_CASES)
def test_cross_entropy_class_axis_anywhere(shape, axis, dtype):
    x = logits(shape, dtype, seed=12)
    kept = shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
    target = np.random.default_rng(12).integers(0, C, kept)
    if target.size > 2:
        target.reshape(-1)[1] = -100
    for reduction in REDUCTIONS:
        check_cross_entropy(x, dtype, f"shape={shape} axis={axis} {reduction}", target=target, axis=axis,
                            reduction=reduction, weight=class_weights(3), label_smoothing=0.05)
        check_cross_entropy(x, dtype, f"soft shape={shape} axis={axis} {reduction}", axis=axis,
                            target=soft_targets(shape, 13, axis).astype(dtype), reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_layouts(dtype):
    """Fortran order, transposed, strided, negative strides, offsets and
    byte-swapped logits, with strided or Fortran-order targets."""
    x = logits((6, 7), dtype, seed=14)
    target = np.random.default_rng(14).integers(0, 7, 6)
    target[2] = -100
    wide = np.zeros(12, dtype=np.int64)
    wide[::2] = target
    soft = soft_targets((6, 7), 15).astype(dtype)
    for reduction in ("mean", "none"):
        want_loss, want_grad = reference.cross_entropy(x, target, reduction=reduction, return_grad=True)
        want_soft = reference.cross_entropy(x, soft, reduction=reduction)
        scale = ce_grad_scale(x, target, reduction=reduction)
        for layout, xl in layouts(x):
            for t in (target, wide[::2], target.astype(np.int32)):
                loss, grad = fs.cross_entropy(xl, t, reduction=reduction, return_grad=True)
                assert_relative_close(loss, want_loss, dtype, f"loss {layout} {reduction}")
                assert_scaled_close(grad, want_grad, scale, dtype, f"grad {layout} {reduction}")
            for soft_layout, sl in layouts(soft):
                assert_relative_close(fs.cross_entropy(xl, sl, reduction=reduction), want_soft, dtype,
                                      f"soft: logits {layout}, target {soft_layout}")
    xt = logits((7, 6), dtype, seed=16)
    loss, grad = fs.cross_entropy(xt, target, axis=0, return_grad=True)
    want_loss, want_grad = reference.cross_entropy(np.ascontiguousarray(xt.T), target, return_grad=True)
    assert_relative_close(loss, want_loss, dtype, "axis=0")
    assert_scaled_close(grad, want_grad.T, ce_grad_scale(xt, target, axis=0), dtype, "axis=0 grad")


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_every_row_ignored(dtype, weighted):
    """"mean" over no rows is 0.0 (PyTorch gives NaN); "sum" is 0, "none" all
    0, and every gradient 0."""
    x = logits((4, C), dtype, seed=17)
    x[1, 2] = nan                             # ignored rows do not even look at their logits
    target = np.full(4, -100)
    weight = class_weights(17) if weighted else None
    loss, grad = fs.cross_entropy(x, target, weight=weight, label_smoothing=0.1, return_grad=True)
    assert as_scalar_of(loss, dtype, "mean") == 0.0
    assert not np.signbit(loss)
    assert np.all(grad == 0) and grad.dtype == dtype
    assert as_scalar_of(fs.cross_entropy(x, target, weight=weight, reduction="sum"), dtype, "sum") == 0.0
    none = fs.cross_entropy(x, target, weight=weight, reduction="none")
    assert none.dtype == dtype and none.shape == (4,) and np.all(none == 0)
    assert reference.cross_entropy(x, target, weight=weight, label_smoothing=0.1) == 0.0
    empty = np.empty((0, C), dtype=dtype)
    assert fs.cross_entropy(empty, np.empty(0, dtype=np.int64)) == 0.0
    assert fs.cross_entropy(empty, np.empty((0, C), dtype=dtype)) == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_ignored_rows_do_not_touch_the_others(dtype):
    x = logits((5, C), dtype, seed=18)
    x[1] = nan
    x[3, 0] = inf
    target = np.array([0, -100, 2, -100, 4])
    loss, grad = fs.cross_entropy(x, target, reduction="none", return_grad=True)
    assert loss[1] == 0 and loss[3] == 0 and np.all(grad[[1, 3]] == 0)
    live = [0, 2, 4]
    want_loss, want_grad = reference.cross_entropy(x[live], target[live], reduction="none", return_grad=True)
    assert_relative_close(loss[live], want_loss, dtype, "other rows")
    assert_scaled_close(grad[live], want_grad, ce_grad_scale(x[live], target[live], reduction="none"),
                        dtype, "other rows' gradient")
    mean = fs.cross_entropy(x, target)
    assert_relative_close(mean, reference.cross_entropy(x[live], target[live]), dtype, "mean over the rest")


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_confident_rows_are_exact(dtype):
    """-log p near 0 keeps full precision (the log-sum-exp form with log1p,
    never log(softmax)): loss about 4e-31, relative error within the bound."""
    x = np.array([[0.0, -70.0, -75.0, -80.0, -90.0],
                  [12.0, -58.0, -60.0, -70.0, 11.0 - 90.0],
                  [-5.0, -5.0, 65.0, -6.0, -10.0]], dtype=dtype)
    target = np.array([0, 0, 2])
    want = reference.cross_entropy(x, target, reduction="none")
    assert np.all((want > 1e-31) & (want < 1e-29)), want
    assert_relative_close(fs.cross_entropy(x, target, reduction="none"), want, dtype, "confident rows")
    assert_relative_close(fs.cross_entropy(x, target, reduction="sum"),
                          reference.cross_entropy(x, target, reduction="sum"), dtype, "confident sum")
    loss, grad = fs.cross_entropy(x, target, return_grad=True)
    assert_relative_close(loss, reference.cross_entropy(x, target), dtype, "confident mean")
    assert np.all(np.abs(grad) <= 1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_minus_inf_logits(dtype):
    """A -inf logit is probability 0: fine where the target puts no weight,
    +inf loss where it does (the target class itself, or smoothing)."""
    x = logits((3, C), dtype, seed=19)
    x[:, 3] = -inf
    target = np.array([0, 1, 3])
    loss = fs.cross_entropy(x, target, reduction="none")
    assert np.all(np.isfinite(loss[:2])) and loss[2] == inf
    assert_relative_close(loss[:2], reference.cross_entropy(x, target, reduction="none")[:2], dtype, "-inf logit")
    smoothed = fs.cross_entropy(x[:2], target[:2], label_smoothing=0.1, reduction="none")
    assert np.all(smoothed == inf)
    soft = np.zeros((3, C), dtype=dtype)
    soft[:, 0] = 1.0
    assert np.all(np.isfinite(fs.cross_entropy(x, soft, reduction="none"))), "zero probability at a -inf logit"


BAD_CE = [
    (ValueError, r"(?s)\b7\b.*1,\s*2|1,\s*2.*\b7\b", dict(target="out of range 7")),
    (ValueError, r"(?s)-3\b.*\(?0,\s*0", dict(target="negative -3")),
    (ValueError, r"\b5\b", dict(target="equal to C")),
    (ValueError, "shape", dict(target=np.zeros(3, dtype=np.int64))),
    (ValueError, "shape", dict(target=np.zeros((2, 3, C + 1)))),
    (TypeError, "target", dict(target=np.zeros((2, 3), dtype=bool))),
    (TypeError, "target", dict(target=np.zeros((2, 3), dtype=complex))),
    (ValueError, "weight", dict(weight=np.ones(C + 1))),
    (ValueError, "weight", dict(weight=np.ones((1, C)))),
    (ValueError, "label_smoothing", dict(label_smoothing=-0.1)),
    (ValueError, "label_smoothing", dict(label_smoothing=1.5)),
    (ValueError, "label_smoothing", dict(label_smoothing=nan)),
    (ValueError, "reduction", dict(reduction="avg")),
    (ValueError, "reduction", dict(reduction="batchmean")),
    (ValueError, "temperature", dict(temperature=0.0)),
    (ValueError, "temperature", dict(temperature=inf)),
    (ValueError, "temperature", dict(temperature=-2.0)),
    (AxisError, "axis", dict(axis=3)),
]


@pytest.mark.parametrize("error,pattern,kwargs", BAD_CE, ids=[str(i) for i in range(len(BAD_CE))])
def test_cross_entropy_bad_input(error, pattern, kwargs):
    """Errors name the argument; a class index out of range names the value
    and its position (a tuple index into target)."""
    x = logits((2, 3, C), np.float64, seed=20)
    target = np.random.default_rng(20).integers(0, C, (2, 3))
    special = {"out of range 7": ((1, 2), 7), "negative -3": ((0, 0), -3), "equal to C": ((1, 0), C)}
    if isinstance(kwargs.get("target"), str):
        position, value = special[kwargs["target"]]
        target[position] = value
        kwargs = {}
    kwargs = {"target": target, **kwargs}
    with pytest.raises(error, match=pattern):
        fs.cross_entropy(x, **kwargs)
    with pytest.raises(error, match=pattern):
        fs.cross_entropy(x, return_grad=True, **kwargs)
    with pytest.raises(error):
        reference.cross_entropy(x, **kwargs)


@pytest.mark.parametrize("dtype,result", [(np.float16, np.float16), (np.float32, np.float32),
                                          (np.float64, np.float64), (np.int64, np.float64)])
def test_loss_result_types(dtype, result):
    """"mean" and "sum" give a NumPy scalar of the logits' result dtype;
    "none" and the gradient arrays of it."""
    x = (logits((4, C), np.float64, seed=21)).astype(dtype)
    target = np.array([0, 1, 2, 3])
    sim = logits((4, 4), np.float64, seed=22).astype(dtype)
    for reduction in ("mean", "sum"):
        loss, grad = fs.cross_entropy(x, target, reduction=reduction, return_grad=True)
        as_scalar_of(loss, result, f"cross_entropy {reduction}")
        assert grad.dtype == result and grad.shape == x.shape
        as_scalar_of(fs.contrastive_loss(sim, reduction=reduction), result, f"contrastive {reduction}")
    for reduction in ("batchmean", "sum"):
        loss, grad = fs.kl_div(x, x[::-1], reduction=reduction, return_grad=True)
        as_scalar_of(loss, result, f"kl_div {reduction}")
        assert grad.dtype == result and grad.shape == x.shape
    assert fs.cross_entropy(x, target, reduction="none").dtype == result
    assert fs.kl_div(x, x, reduction="none").dtype == result
    loss, grad = fs.contrastive_loss(sim, reduction="none", return_grad=True)
    assert loss.dtype == result and loss.shape == (4,) and grad.dtype == result and grad.shape == (4, 4)


def test_cross_entropy_thread_count_does_not_change_results():
    rows, n = threaded_shape()
    for dtype in DTYPES:
        x = logits((rows, n), dtype, seed=23)
        target = np.random.default_rng(23).integers(-1, n, rows)
        for reduction in REDUCTIONS:
            for kwargs in (dict(), dict(weight=np.linspace(0.5, 2, n), label_smoothing=0.1, ignore_index=-1)):
                one = fs.cross_entropy(x, target, reduction=reduction, return_grad=True, num_threads=1, **kwargs)
                two = fs.cross_entropy(x, target, reduction=reduction, return_grad=True, num_threads=2, **kwargs)
                for a, b in zip(one, two):
                    np.testing.assert_array_equal(a, b, err_msg=f"{dtype} {reduction} {kwargs}")
                np.testing.assert_array_equal(
                    fs.cross_entropy(x, target, reduction=reduction, num_threads=1, **kwargs),
                    fs.cross_entropy(x, target, reduction=reduction, num_threads=2, **kwargs))


def test_cross_entropy_allocates_no_rows_by_classes_temporary():
    """The loss alone allocates nothing of logits' size; with return_grad the
    returned gradient is the only such array."""
    x = logits((64, 2048), np.float32, seed=24)
    target = np.random.default_rng(24).integers(0, 2048, 64)
    fs.cross_entropy(x, target, return_grad=True)          # warm up
    for return_grad, allowed in ((False, x.nbytes // 4), (True, x.nbytes + x.nbytes // 4)):
        tracemalloc.start()
        try:
            fs.cross_entropy(x, target, return_grad=return_grad)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < allowed, f"return_grad={return_grad}: peak {peak} bytes, logits {x.nbytes}"


# ---- kl_div --------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
@pytest.mark.parametrize("temperature", [1.0, 4.0, 20.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_div_matches_the_reference(dtype, temperature, reduction):
    student, teacher = student_and_teacher((6, 7), dtype, seed=30)
    check_kl(student, teacher, dtype, f"T={temperature} {reduction}", temperature=temperature, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_div_other_axes_and_layouts(dtype):
    student = logits((3, 7, 4), dtype, seed=32)
    teacher = logits((3, 7, 4), dtype, seed=33)
    for axis in (1, 0, -1):
        for reduction in ("batchmean", "none"):
            check_kl(student, teacher, dtype, f"axis={axis} {reduction}", axis, 4.0, reduction)
    s2, t2 = student[:, :, 0], teacher[:, :, 0]
    want = reference.kl_div(s2, t2, temperature=2.0, reduction="none")
    scale = kl_scales(s2, t2, -1, 2.0, "none")[0]
    for (s_layout, sl), (t_layout, tl) in zip(layouts(s2), layouts(t2)):
        assert_scaled_close(fs.kl_div(sl, tl, temperature=2.0, reduction="none"), want, scale, dtype,
                            f"student {s_layout} teacher {t_layout}")
        assert_scaled_close(fs.kl_div(sl, np.asfortranarray(t2), temperature=2.0, reduction="none"), want,
                            scale, dtype, f"student {s_layout} teacher F")


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_div_minus_inf_logits(dtype):
    """Teacher -inf entries (probability 0) contribute exactly 0, also where
    the student is -inf too; a teacher > 0 where the student is -inf gives
    +inf.  Never NaN."""
    student = logits((4, 6), dtype, seed=34)
    teacher = logits((4, 6), dtype, seed=35)
    teacher[0, [1, 4]] = -inf
    teacher[1, 2] = -inf
    student[1, 2] = -inf                   # both -inf: 0
    student[2, 3] = -inf                   # teacher > 0 there: +inf
    loss = fs.kl_div(student, teacher, temperature=2.0, reduction="none")
    assert np.all(np.isfinite(loss[[0, 1, 3]])) and loss[2] == inf
    check_kl(student[[0, 1, 3]], teacher[[0, 1, 3]], dtype, "teacher -inf", temperature=2.0, reduction="none")
    # the definition, summed over the teacher's nonzero entries only
    kept = [0, 2, 3, 5]
    log_q = reference.log_softmax(teacher[0], temperature=2.0).astype(np.float64)[kept]
    log_p = reference.log_softmax(student[0], temperature=2.0).astype(np.float64)[kept]
    assert_scaled_close(loss[0], 4.0 * math.fsum(np.exp(log_q) * (log_q - log_p)),
                        kl_scales(student[0], teacher[0], -1, 2.0, "none")[0], dtype,
                        "the sum over the teacher's nonzero entries")
    assert fs.kl_div(student, teacher, temperature=2.0) == inf
    assert fs.kl_div(student, teacher, temperature=2.0, reduction="sum") == inf
    _, grad = fs.kl_div(student, teacher, temperature=2.0, reduction="none", return_grad=True)
    _, want_grad = reference.kl_div(student, teacher, temperature=2.0, reduction="none", return_grad=True)
    assert np.all(np.isfinite(grad))
    assert_scaled_close(grad, want_grad, kl_scales(student, teacher, -1, 2.0, "none")[1], dtype, "grad with -inf")


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_div_of_identical_inputs_is_zero(dtype):
    x = logits((5, 9), dtype, seed=36)
    loss, grad = fs.kl_div(x, x, temperature=4.0, reduction="none", return_grad=True)
    np.testing.assert_allclose(loss, 0.0, atol=16 * 1e-6 if dtype == np.float32 else 16 * 1e-14)
    np.testing.assert_allclose(grad, 0.0, atol=4 * 1e-6 if dtype == np.float32 else 4 * 1e-14)


def test_kl_div_bad_input():
    s = logits((3, 4), np.float64, seed=37)
    for error, word, args, kwargs in [
        (ValueError, "shape", (s, s[:, :3]), {}),
        (ValueError, "shape", (s, s[None]), {}),
        (ValueError, "temperature", (s, s), dict(temperature=0.0)),
        (ValueError, "temperature", (s, s), dict(temperature=inf)),
        (ValueError, "reduction", (s, s), dict(reduction="mean")),
        (TypeError, "dtype", (s.astype(complex), s), {}),
        (AxisError, "axis", (s, s), dict(axis=2)),
    ]:
        with pytest.raises(error, match=word):
            fs.kl_div(*args, **kwargs)
        with pytest.raises(error):
            reference.kl_div(*args, **kwargs)


def test_kl_div_thread_count_does_not_change_results():
    shape = threaded_shape()
    for dtype in DTYPES:
        s, t = logits(shape, dtype, seed=38), logits(shape, dtype, seed=39)
        for axis in (-1, 0):
            for reduction in ("batchmean", "none"):
                one = fs.kl_div(s, t, axis, temperature=4.0, reduction=reduction, return_grad=True, num_threads=1)
                two = fs.kl_div(s, t, axis, temperature=4.0, reduction=reduction, return_grad=True, num_threads=2)
                for a, b in zip(one, two):
                    np.testing.assert_array_equal(a, b, err_msg=f"{dtype} axis={axis} {reduction}")


# ---- contrastive_loss -----------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.07, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_contrastive_loss_matches_the_reference(dtype, symmetric, reduction, temperature):
    sim = similarities(6, dtype, seed=40)
    loss, _ = check_contrastive(sim, dtype, f"symmetric={symmetric} {reduction} T={temperature}",
                                temperature=temperature, symmetric=symmetric, reduction=reduction)
    if reduction == "none":
        assert loss.shape == (6,)


@pytest.mark.parametrize("dtype", DTYPES)
def test_contrastive_loss_is_cross_entropy_both_ways(dtype):
    """Row direction: cross_entropy(similarity, arange(N), axis=-1); column
    direction: the same along axis 0; symmetric: the mean of the two, per
    pair for "none" (so that "mean" and "sum" are the mean and sum of "none")."""
    n, t = 7, 0.07
    sim = similarities(n, dtype, seed=41)
    labels = np.arange(n)
    rows = fs.cross_entropy(sim, labels, temperature=t, reduction="none")
    columns = fs.cross_entropy(sim, labels, axis=0, temperature=t, reduction="none")
    none = fs.contrastive_loss(sim, temperature=t, reduction="none")
    assert_relative_close(none, (rows.astype(np.float64) + columns) / 2, dtype, "per pair")
    assert_relative_close(fs.contrastive_loss(sim, temperature=t), none.astype(np.float64).mean(), dtype, "mean")
    assert_relative_close(fs.contrastive_loss(sim, temperature=t, reduction="sum"), none.astype(np.float64).sum(),
                          dtype, "sum")
    assert_relative_close(fs.contrastive_loss(sim, temperature=t, symmetric=False, reduction="none"), rows, dtype,
                          "rows only")
    assert_relative_close(fs.contrastive_loss(np.ascontiguousarray(sim.T), temperature=t),
                          fs.contrastive_loss(sim, temperature=t).astype(np.float64), dtype, "transposed")


@pytest.mark.parametrize("dtype", DTYPES)
def test_contrastive_loss_layouts(dtype):
    sim = similarities(6, dtype, seed=42)
    want_loss, want_grad = reference.contrastive_loss(sim, return_grad=True)
    scale = contrastive_grad_scale(sim, 0.07, True, "mean")
    for layout, sl in layouts(sim):
        loss, grad = fs.contrastive_loss(sl, return_grad=True)
        assert_relative_close(loss, want_loss, dtype, f"loss {layout}")
        assert_scaled_close(grad, want_grad, scale, dtype, f"grad {layout}")


def test_contrastive_loss_bad_input():
    sim = similarities(4, np.float64, seed=43)
    for error, word, args, kwargs in [
        (ValueError, "similarity", (sim[:, :3],), {}),
        (ValueError, "similarity", (sim[0],), {}),
        (ValueError, "similarity", (sim[None],), {}),
        (ValueError, "temperature", (sim,), dict(temperature=0.0)),
        (ValueError, "temperature", (sim,), dict(temperature=-0.07)),
        (ValueError, "reduction", (sim,), dict(reduction="batchmean")),
        (TypeError, "dtype", (sim.astype(complex),), {}),
    ]:
        with pytest.raises(error, match=word):
            fs.contrastive_loss(*args, **kwargs)
        with pytest.raises(error):
            reference.contrastive_loss(*args, **kwargs)


def test_contrastive_loss_thread_count_does_not_change_results():
    for dtype in DTYPES:
        sim = similarities(300, dtype, seed=44)
        for symmetric in (True, False):
            for reduction in REDUCTIONS:
                one = fs.contrastive_loss(sim, symmetric=symmetric, reduction=reduction, return_grad=True,
                                          num_threads=1)
                two = fs.contrastive_loss(sim, symmetric=symmetric, reduction=reduction, return_grad=True,
                                          num_threads=2)
                for a, b in zip(one, two):
                    np.testing.assert_array_equal(a, b, err_msg=f"{dtype} {symmetric} {reduction}")


# ---- PyTorch (float64) ------------------------------------------------------------

# PyTorch's losses take no log1p: near 0 they are good to about 1e-16 absolute.
TORCH_ABS = 1e-14


def torch_grad_close(got, want, scale, what):
    np.testing.assert_array_less(np.abs(np.asarray(got) - want), 1e-13 * scale + 1e-300, err_msg=what)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", list(CE_CASES))
def test_cross_entropy_against_torch(case, reduction):
    """F.cross_entropy(logits / T, ...) with the class axis moved to 1, on (N, d, C)
    logits; gradients from autograd of the loss (of its sum for "none")."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    temperature = 0.7
    x = logits((6, C), np.float64, seed=45).reshape(2, 3, C)
    kwargs = CE_CASES[case](np.float64)
    target = kwargs.pop("target")
    target = target.reshape(2, 3) if target.ndim == 1 else target.reshape(2, 3, C)
    xt = torch.tensor(np.moveaxis(x, -1, 1), requires_grad=True)
    tt = torch.from_numpy(np.moveaxis(target, -1, 1) if target.ndim == 3 else target)
    weight = kwargs.get("weight")
    want = F.cross_entropy(xt / temperature, tt, weight=None if weight is None else torch.from_numpy(weight),
                           ignore_index=kwargs.get("ignore_index", -100),
                           label_smoothing=kwargs.get("label_smoothing", 0.0), reduction=reduction)
    want.sum().backward()
    want_loss = want.detach().numpy()
    want_grad = np.moveaxis(xt.grad.numpy(), 1, -1)
    scale = ce_grad_scale(x, target, temperature=temperature, reduction=reduction, **kwargs)
    for source, fn in (("fastsoftmax", fs.cross_entropy), ("reference", reference.cross_entropy)):
        loss, grad = fn(x, target, temperature=temperature, reduction=reduction, return_grad=True, **kwargs)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-13, atol=TORCH_ABS,
                                   err_msg=f"{source} loss {case} {reduction}")
        torch_grad_close(grad, want_grad, scale, f"{source} grad {case} {reduction}")


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
@pytest.mark.parametrize("temperature", [1.0, 4.0, 20.0])
def test_kl_div_against_torch(temperature, reduction):
    """Hinton's distillation loss: T**2 * F.kl_div(log_softmax(s / T),
    log_softmax(t / T), log_target=True); for "none" PyTorch's elementwise
    result summed along the class axis."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    s, t = student_and_teacher((6, 7), np.float64, seed=46)
    st = torch.tensor(s, requires_grad=True)
    want = temperature ** 2 * F.kl_div(F.log_softmax(st / temperature, -1),
                                       F.log_softmax(torch.from_numpy(t) / temperature, -1),
                                       reduction=reduction, log_target=True)
    if reduction == "none":
        want = want.sum(-1)
    want.sum().backward()
    loss_scale, grad_scale = kl_scales(s, t, -1, temperature, reduction)
    for source, fn in (("fastsoftmax", fs.kl_div), ("reference", reference.kl_div)):
        loss, grad = fn(s, t, temperature=temperature, reduction=reduction, return_grad=True)
        np.testing.assert_array_less(np.abs(loss - want.detach().numpy()), 1e-13 * loss_scale,
                                     err_msg=f"{source} loss T={temperature} {reduction}")
        torch_grad_close(grad, st.grad.numpy(), grad_scale, f"{source} grad T={temperature} {reduction}")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("symmetric", [True, False])
def test_contrastive_loss_against_torch_clip(symmetric, reduction):
    """CLIP: logits = similarity / T (logit_scale = 1 / T), labels arange(N),
    (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    temperature = 0.07
    sim = similarities(8, np.float64, seed=48)
    st = torch.tensor(sim, requires_grad=True)
    labels = torch.arange(8)
    scaled = st / temperature
    rows = F.cross_entropy(scaled, labels, reduction="none")
    per_pair = (rows + F.cross_entropy(scaled.T, labels, reduction="none")) / 2 if symmetric else rows
    want = {"mean": per_pair.mean(), "sum": per_pair.sum(), "none": per_pair}[reduction]
    want.sum().backward()
    if symmetric and reduction == "mean":          # CLIP's own formula, as written in the paper's code
        clip = (F.cross_entropy(scaled, labels) + F.cross_entropy(scaled.T, labels)) / 2
        assert abs(clip.item() - want.item()) <= 1e-13 * abs(want.item())
    scale = contrastive_grad_scale(sim, temperature, symmetric, reduction)
    for source, fn in (("fastsoftmax", fs.contrastive_loss), ("reference", reference.contrastive_loss)):
        loss, grad = fn(sim, temperature=temperature, symmetric=symmetric, reduction=reduction, return_grad=True)
        np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-13, atol=TORCH_ABS,
                                   err_msg=f"{source} symmetric={symmetric} {reduction}")
        torch_grad_close(grad, st.grad.numpy(), scale, f"{source} grad symmetric={symmetric} {reduction}")
