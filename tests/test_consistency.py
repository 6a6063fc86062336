"""Functions that behave the same way for the same request (issue 20,
"functions that behave differently for no reason"):

* the SciPy drop-in's ``axis=None`` and tuple axes take the compiled path
  whenever the reduced axes lie next to each other in memory;
* Dask arrays are never computed silently by the functions that compute in
  memory: they raise TypeError naming fastsoftmax.dask (or stay lazy where
  a lazy path exists);
* ``fs.special`` and ``fs.dask`` are attributes, loaded on first use;
"""
import inspect
import math

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _api, reference
from util import assert_close, logits, run_python


# ---- the compiled path for axis=None and tuple axes ---------------------------------

# (shape, axis) pairs whose reduced axes are adjacent in a C-contiguous array
MERGEABLE = [((10,), None), ((4, 8), None), ((2, 3, 5), None), ((2, 3, 5), (1, 2)), ((2, 3, 5), (2, 1)),
             ((2, 3, 5), (0, 1)), ((2, 3, 4, 5), (1, 2)), ((3, 4), (0,)), ((3, 4), (-1,)), ((0, 4), None),
             ((3, 0, 2), (1, 2))]


def _refuse_general_path(monkeypatch):
    """From now on, fail if a call leaves the compiled path for ``_api._apply``
    (which lays the rows out anew, or raises)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the call left the compiled path")

    monkeypatch.setattr(_api, "_apply", refuse)


@pytest.mark.parametrize("shape, axis", MERGEABLE, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adjacent_axes_take_the_compiled_path(shape, axis, dtype, monkeypatch):
    from fastsoftmax import special

    x = logits(shape, dtype, seed=len(shape))
    want = {name: getattr(reference, name)(x, axis=axis) for name in ("softmax", "log_softmax", "logsumexp")}
    want_lse = {(keepdims, t): reference.logsumexp(x, axis=axis, keepdims=keepdims, temperature=t)
                for keepdims in (False, True) for t in (1.0, 2.0)}
    _refuse_general_path(monkeypatch)
    for name in ("softmax", "log_softmax", "logsumexp"):
        assert_close(name, getattr(special, name)(x, axis=axis), want[name], dtype, f"special {shape} {axis}")
        assert_close(name, getattr(fs, name)(x, axis=axis), want[name], dtype, f"fs {shape} {axis}")
    for keepdims in (False, True):
        got = special.logsumexp(x, axis=axis, keepdims=keepdims)
        expected = want_lse[keepdims, 1.0]
        assert np.shape(got) == np.shape(expected) and type(got) is type(expected)
        assert_close("logsumexp", got, expected, dtype, f"keepdims {shape} {axis}")
        got = fs.logsumexp(x, axis=axis, keepdims=keepdims, temperature=2.0)
        assert_close("logsumexp", got, want_lse[keepdims, 2.0], dtype, f"T=2 keepdims {shape} {axis}")


def test_the_drop_in_default_is_the_one_axis_result():
    """A 1-D axis=None call is the axis=-1 call, bit for bit."""
    from fastsoftmax import special

    x = logits((10,), np.float32)
    assert np.array_equal(special.softmax(x), fs.softmax(x, axis=-1))
    assert np.array_equal(special.log_softmax(x), fs.log_softmax(x, axis=-1))
    assert special.logsumexp(x) == fs.logsumexp(x, axis=-1)
    x2 = logits((3, 4, 5), np.float64)
    assert np.array_equal(special.softmax(x2, axis=(1, 2)), fs.softmax(x2.reshape(3, 20)).reshape(3, 4, 5))


def test_fortran_logsumexp_over_every_axis_takes_the_compiled_path(monkeypatch):
    x = np.asfortranarray(logits((6, 5, 4), np.float64))
    want = reference.logsumexp(x, axis=None)
    want_kept = reference.logsumexp(x, axis=(0, 1, 2), keepdims=True)
    _refuse_general_path(monkeypatch)
    assert_close("logsumexp", fs.special.logsumexp(x), want, np.float64, "F, axis=None")
    assert_close("logsumexp", fs.logsumexp(x, axis=(2, 0, 1), keepdims=True), want_kept, np.float64, "F keepdims")


@pytest.mark.parametrize("case", ["gap", "fortran", "strided", "repeated", "float16", "complex"])
def test_other_layouts_and_errors_take_the_general_path(case):
    """Axes that are not adjacent in memory, other layouts and bad arguments
    go through ``_apply`` (which copies, or raises): the results and errors
    stay those of the general path."""
    from fastsoftmax import special

    x = logits((3, 4, 5), np.float64)
    axis = (0, 2) if case == "gap" else (1, 2)
    if case == "fortran":
        x = np.asfortranarray(x)
    elif case == "strided":
        x = logits((3, 4, 10), np.float64)[..., ::2]
    elif case == "float16":
        x = x.astype(np.float16)
    if case == "repeated":
        with pytest.raises(ValueError, match="repeated axis"):
            special.softmax(x, axis=(1, 1))
        return
    if case == "complex":
        with pytest.raises(TypeError, match="complex"):
            special.softmax(x.astype(np.complex128), axis=None)
        return
    for name in ("softmax", "log_softmax", "logsumexp"):
        got = getattr(special, name)(x, axis=axis)
        assert_close(name, got, getattr(reference, name)(x, axis=axis), x.dtype, case)
        if name != "logsumexp":
            assert got.flags.c_contiguous


# ---- Dask arrays are never computed silently ----------------------------------------

def _dask_cases():
    """(label, call) pairs: each call hands a Dask array to a function that
    computes in memory."""
    g = np.ones((4, 5)) / 5
    x = np.zeros((4, 5))
    return [
        ("special.logsumexp b=", lambda d: fs.special.logsumexp(d, b=np.ones(5))),
        ("special.logsumexp sign", lambda d: fs.special.logsumexp(d, return_sign=True)),
        ("special.logsumexp b as Dask", lambda d: fs.special.logsumexp(x, b=d)),
        ("cross_entropy", lambda d: fs.cross_entropy(d, np.zeros(4, np.int64))),
        ("cross_entropy target", lambda d: fs.cross_entropy(x, d[:, 0].astype(np.int64))),
        ("cross_entropy weight", lambda d: fs.cross_entropy(x, np.zeros(4, np.int64), weight=d[0])),
        ("kl_div", lambda d: fs.kl_div(d, x)),
        ("kl_div teacher", lambda d: fs.kl_div(x, d)),
        ("contrastive_loss", lambda d: fs.contrastive_loss(d[:4, :4])),
        ("softmax_backward", lambda d: fs.softmax_backward(d, g)),
        ("softmax_backward y", lambda d: fs.softmax_backward(g, d)),
        ("log_softmax_backward", lambda d: fs.log_softmax_backward(d, np.log(g))),
        ("softmax where", lambda d: fs.softmax(x, where=d > -1)),
        ("sample", lambda d: fs.sample(d, rng=0)),
        ("sample temperature", lambda d: fs.sample(x, temperature=d[:, 0] + 1, rng=0)),
        ("sample where", lambda d: fs.sample(x, where=d > -1, rng=0)),
        ("sample logit_bias", lambda d: fs.sample(x, logit_bias=d[0], rng=0)),
        ("verify_draft", lambda d: fs.verify_draft(d[None, :3, :], np.zeros((1, 2), np.int64), rng=0)),
        ("verify_draft draft_probs", lambda d: fs.verify_draft(x[None, :3, :], np.zeros((1, 2), np.int64),
                                                                d[None, :2, :] * 0 + 0.2, rng=0)),
        ("softmax temperature", lambda d: fs.softmax(x, temperature=d[:, 0] + 1)),
    ]


@pytest.mark.parametrize("label", [label for label, _ in _dask_cases()])
def test_dask_arrays_are_not_computed_silently(label):
    da = pytest.importorskip("dask.array")
    call = dict(_dask_cases())[label]
    computed = []

    def never(block):
        computed.append(block.shape)
        return block

    d = da.from_array(np.zeros((4, 5)), chunks=2).map_blocks(never, meta=np.empty((0, 0)))
    d[:, :2]                    # (slicing builds a graph, computing nothing)
    computed.clear()            # (Dask may call the function on stand-ins to learn its result type)
    with pytest.raises(TypeError, match=r"Dask array.*fastsoftmax\.dask"):
        call(d)
    assert computed == []


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_dask_arrays_stay_lazy_where_a_lazy_path_exists(name):
    """fs.softmax & co. and the SciPy drop-in's softmax, log_softmax and
    logsumexp (without b= and return_sign) give a lazy Dask result."""
    da = pytest.importorskip("dask.array")
    x = logits((4, 6), np.float64)
    d = da.from_array(x, chunks=(2, 3))
    for function, axis in ((getattr(fs, name), -1), (getattr(fs.special, name), None),
                           (getattr(fs.dask, name), (0, 1))):
        lazy = function(d, axis=axis)
        assert isinstance(lazy, da.Array)
        assert_close(name, lazy.compute(), getattr(reference, name)(x, axis=axis), np.float64, function.__module__)


def test_the_dask_module_shows_its_functions():
    pytest.importorskip("dask.array")
    assert fs.dask.__all__ == ["softmax", "log_softmax", "logsumexp"]
    for name in fs.dask.__all__:
        function = getattr(fs.dask, name)
        assert ">>>" in function.__doc__
        assert list(inspect.signature(function).parameters)[:2] == ["x", "axis"]
    # a NumPy array is wrapped as one chunk, and stays lazy
    assert fs.dask.softmax(np.zeros(3)).compute().tolist() == [1 / 3] * 3


# ---- fs.special and fs.dask: attributes, imported on first use ----------------------

def test_submodules_are_attributes_imported_on_first_use():
    printed = run_python(
        "import sys, fastsoftmax as fs\n"
        "print(sorted(m for m in ('dask', 'scipy', 'fastsoftmax.special', 'fastsoftmax.dask') if m in sys.modules))\n"
        "print('special' in dir(fs), 'dask' in dir(fs))\n"
        "print(fs.special.softmax([0.0, 0.0]).tolist(), 'scipy' in sys.modules, 'dask' in sys.modules)\n"
        "print(fs.dask.__name__, 'dask' in sys.modules)\n"
        "try:\n"
        "    fs.no_such_name\n"
        "except AttributeError as error:\n"
        "    print(error)\n")
    assert printed.splitlines() == [
        "[]", "True True", "[0.5, 0.5] False False", "fastsoftmax.dask True",
        "module 'fastsoftmax' has no attribute 'no_such_name'"]
    assert fs.special is __import__("fastsoftmax.special").special
    assert math.isfinite(fs.special.logsumexp([1.0, 2.0]))


# ---- error messages that say enough --------------------------------------------------

def test_float_class_labels_hint_at_integer_indices():
    with pytest.raises(ValueError, match=r"shape \(256,\).*integer class indices.*probabilities of shape "
                                         r"\(256, 5\)"):
        fs.cross_entropy(np.zeros((256, 5)), np.zeros(256))
    # a shape that is neither gets no hint
    with pytest.raises(ValueError, match=r"the logits have shape \(256, 5\)$"):
        fs.cross_entropy(np.zeros((256, 5)), np.zeros((256, 4)))


def test_badly_shaped_weights_name_b():
    with pytest.raises(ValueError, match=r"logsumexp\(\): b has shape \(3,\), which does not broadcast with a's "
                                         r"shape \(3, 4\)"):
        fs.special.logsumexp(np.zeros((3, 4)), b=np.ones(3))


# ---- weights that cancel: exact, or NaN, never a confident 0 ------------------------

CANCELLING = [
    # (a, b, axis, (value, sign)): the example, exactly log(e - e**2 + e**3/2 + 1/2)
    ([[1, 2, 3], [1000, 1000, 0]], [1, -1, 0.5], None,
     (math.log(math.e - math.e ** 2 + math.e ** 3 / 2 + 0.5), 1.0)),
    ([1000.0, 1000.0], [1, -1], None, (-math.inf, 0.0)),           # exactly 0
    ([1000.0, 1000.0, 0.0], [1, -1, -2], None, (math.log(2), -1.0)),
    ([0.0, math.log(2)], [2, -1], None, (math.nan, math.nan)),     # 2 - exp(log 2): only rounding is left
    ([1.0, 1.0 + 2 ** -52], [1, -1], None, (math.nan, math.nan)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("a, b, axis, want", CANCELLING, ids=str)
def test_cancelling_weights(a, b, axis, want, dtype):
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    value, sign = fs.special.logsumexp(a, axis, b, return_sign=True)
    ref_value, ref_sign = reference.special_logsumexp(a, axis, b, return_sign=True)
    if dtype == np.float32 and math.isnan(want[0]):
        # rounded to float32, these inputs leave an exact nonzero sum (1 + 2**-52 is 1: exactly 0)
        want = (float(ref_value), float(ref_sign))
        assert not math.isnan(want[0])
    for got in (value, ref_value):
        np.testing.assert_allclose(np.float64(got), want[0], rtol=2e-6 if dtype == np.float32 else 1e-15)
    assert np.array_equal(sign, want[1], equal_nan=True) and np.array_equal(ref_sign, want[1], equal_nan=True)
    plain = fs.special.logsumexp(a, axis, b)
    assert np.array_equal(plain, value if want[1] != -1.0 else np.nan, equal_nan=True)
    # row by row, beside rows that do not cancel, and along another axis
    rows = np.stack([a.reshape(-1), np.arange(a.size, dtype=dtype)])
    weights = np.broadcast_to(np.broadcast_to(b, a.shape).reshape(-1), rows.shape)
    value, sign = fs.special.logsumexp(rows, 1, weights, return_sign=True)
    ref_value, ref_sign = reference.special_logsumexp(rows, 1, weights, return_sign=True)
    np.testing.assert_allclose(value, ref_value, rtol=2e-6 if dtype == np.float32 else 1e-14)
    assert np.array_equal(sign, ref_sign, equal_nan=True)
    value_t, sign_t = fs.special.logsumexp(rows.T, 0, weights.T, return_sign=True)
    assert np.array_equal(value_t, value, equal_nan=True) and np.array_equal(sign_t, sign, equal_nan=True)


# ---- one temperature per row ----------------------------------------------------------

# (x's shape, axis, the temperature array's shape): rows along the last axis
# (read in place), along another axis or several (laid out as rows first),
# and broadcast temperatures
TEMPERATURE_LAYOUTS = [((6, 9), -1, (6,)), ((3, 4, 7), -1, (3, 1)), ((3, 4, 7), 1, (3, 7)),
                       ((3, 4, 7), (0, 2), (4,)), ((5, 40), 0, (40,)), ((2, 3, 33), -1, (2, 3))]


def _row_temperatures(shape, seed=0):
    """Temperatures in (0.25, 4), with a T = 0 and a T = inf row where there are enough."""
    t = np.exp(np.random.default_rng(seed).uniform(-1.4, 1.4, shape))
    if t.size >= 3:
        t.flat[0], t.flat[2] = 0.0, np.inf
    return t


def _with_special_rows(x, axis):
    """x with a NaN, a -inf and a row of ties among its rows."""
    x = np.array(x)
    rows = np.moveaxis(x, axis if isinstance(axis, int) else axis[0], -1)
    rows[(0,) * (rows.ndim - 1)][1] = -np.inf
    if rows.shape[0] > 1:
        rows[(1,) + (0,) * (rows.ndim - 2)][:3] = 5.0
    if rows.shape[0] > 2:
        rows[(2,) + (0,) * (rows.ndim - 2)][0] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_temperature_arrays_against_the_reference(isa, dtype):
    """Every instruction-set variant (the ``isa`` fixture switches them)."""
    for shape, axis, t_shape in TEMPERATURE_LAYOUTS:
        x = _with_special_rows(logits(shape, dtype, seed=len(shape)), axis)
        t = _row_temperatures(t_shape)
        for name in ("softmax", "log_softmax", "logsumexp"):
            want = getattr(reference, name)(x, axis=axis, temperature=t)
            got = getattr(fs, name)(x, axis=axis, temperature=t)
            assert_close(name, got, want, dtype, f"{shape} axis={axis} T{t_shape}")
            # a list is an array too; keepdims and where= take it as well
            assert np.array_equal(getattr(fs, name)(x, axis=axis, temperature=t.tolist()), got, equal_nan=True)
        keep = np.random.default_rng(1).random(shape) < 0.7
        for name in ("softmax", "log_softmax", "logsumexp"):
            want = getattr(reference, name)(x, axis=axis, temperature=t, where=keep)
            assert_close(name, getattr(fs, name)(x, axis=axis, temperature=t, where=keep), want, dtype,
                         f"where {shape} axis={axis}")
        want = reference.logsumexp(x, axis=axis, temperature=t, keepdims=True)
        assert_close("logsumexp", fs.logsumexp(x, axis=axis, temperature=t, keepdims=True), want, dtype, "keepdims")


@pytest.mark.parametrize("threads", [1, 2])
def test_temperature_arrays_on_threads(threads):
    """Rows on threads (and few long rows, which stay whole) give the
    one-thread results, bit for bit."""
    for shape, axis, t in (((160, 256), -1, _row_temperatures((160,))), ((256, 160), 0, _row_temperatures((160,))),
                           ((2, 70000), -1, _row_temperatures((2,))),
                           # stretches of 10 rows of one temperature, across the tiles of 16 rows
                           ((16, 10, 256), -1, _row_temperatures((16, 1)))):
        x = logits(shape, np.float32, seed=2)
        for name in ("softmax", "log_softmax", "logsumexp"):
            one = getattr(fs, name)(x, axis=axis, temperature=t, num_threads=1)
            assert np.array_equal(getattr(fs, name)(x, axis=axis, temperature=t, num_threads=threads), one,
                                  equal_nan=True)
            if len(shape) == 3:
                assert_close(name, one, getattr(reference, name)(x, axis=axis, temperature=t), np.float32, "stretches")
        if shape[0] == 2:
            want = reference.logsumexp(x, axis=axis, temperature=t)
            assert_close("logsumexp", fs.logsumexp(x, temperature=t, num_threads=threads), want, np.float32)
    # masked rows, the backward functions and the losses
    x = logits((160, 256), np.float64, seed=3)
    t = np.exp(np.random.default_rng(3).uniform(-1, 1, 160))
    keep = np.random.default_rng(4).random((1, 256)) < 0.8
    target = np.arange(160) % 256
    calls = [lambda n: fs.softmax(x, temperature=t, where=keep, num_threads=n),
             lambda n: fs.softmax_backward(x, x, temperature=t, where=keep, num_threads=n),
             lambda n: fs.log_softmax_backward(x, x, temperature=t, num_threads=n),
             lambda n: fs.cross_entropy(x, target, temperature=t, return_grad=True, reduction="none", num_threads=n),
             lambda n: fs.kl_div(x, x[::-1], temperature=t, return_grad=True, reduction="none", num_threads=n)]
    for call in calls:
        one, many = call(1), call(threads)
        for a, b in zip(one if isinstance(one, tuple) else (one,), many if isinstance(many, tuple) else (many,)):
            assert np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_temperature_arrays_of_16_bit_input(dtype):
    """16-bit rows with one temperature each take the general path (computed
    in float32, rounded once)."""
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    x = logits((6, 40), np.float32, seed=6).astype(dtype)
    t = _row_temperatures((6,))
    for name in ("softmax", "log_softmax", "logsumexp"):
        got = getattr(fs, name)(x, temperature=t)
        want = getattr(reference, name)(x, temperature=t)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-2, atol=1e-3)


def test_equal_temperatures_are_one_temperature():
    x = logits((6, 9), np.float32)
    for name in ("softmax", "log_softmax", "logsumexp"):
        scalar = getattr(fs, name)(x, temperature=2.0)
        assert np.array_equal(getattr(fs, name)(x, temperature=np.full(6, 2.0)), scalar)
        assert np.array_equal(getattr(fs, name)(x, temperature=[2.0]), scalar)


def test_temperature_arrays_in_backward_and_losses(isa):
    rng = np.random.default_rng(5)
    x = logits((5, 7), np.float64, seed=3)
    t = np.exp(rng.uniform(-1, 1, 5))
    g = rng.standard_normal((5, 7))
    for name, forward in (("softmax_backward", fs.softmax), ("log_softmax_backward", fs.log_softmax)):
        y = forward(x, temperature=t)
        got = getattr(fs, name)(g, y, temperature=t)
        for r in range(5):
            want = getattr(reference, name)(g[r], y[r], temperature=t[r])
            np.testing.assert_allclose(got[r], want, rtol=1e-12, atol=1e-14)
        # along axis 0: one temperature per column
        got0 = getattr(fs, name)(g.T, y.T, axis=0, temperature=t)
        np.testing.assert_allclose(got0, got.T, rtol=1e-14, atol=1e-15)
    target = np.array([0, 3, 6, 2, 1])
    for reduction in ("none", "sum", "mean"):
        loss, grad = fs.cross_entropy(x, target, temperature=t, reduction=reduction, return_grad=True)
        rows = [reference.cross_entropy(x[r:r + 1], target[r:r + 1], temperature=t[r], reduction="sum",
                                        return_grad=True) for r in range(5)]
        want_losses = np.array([float(loss_r) for loss_r, _ in rows])
        want_grad = np.concatenate([grad_r for _, grad_r in rows])
        divide = 5 if reduction == "mean" else 1
        want = want_losses if reduction == "none" else math.fsum(want_losses) / divide
        np.testing.assert_allclose(loss, want, rtol=1e-13)
        np.testing.assert_allclose(grad, want_grad / divide, rtol=1e-12, atol=1e-15)
    teacher = logits((5, 7), np.float64, seed=4)
    loss, grad = fs.kl_div(x, teacher, temperature=t, reduction="none", return_grad=True)
    for r in range(5):
        want_loss, want_grad = reference.kl_div(x[r:r + 1], teacher[r:r + 1], temperature=t[r], reduction="sum",
                                                return_grad=True)
        np.testing.assert_allclose(loss[r], want_loss, rtol=1e-12)
        np.testing.assert_allclose(grad[r], want_grad[0], rtol=1e-11, atol=1e-14)


def test_temperature_array_errors():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"softmax\(\): temperature must be >= 0 .* every row; got -1\.0"):
        fs.softmax(x, temperature=[1.0, -1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"temperature of shape \(3,\) does not broadcast to the batch shape \(4,\)"):
        fs.log_softmax(x, temperature=np.ones(3))
    with pytest.raises(TypeError, match="dtype bool"):
        fs.logsumexp(x, temperature=np.ones(4, bool))
    for zero in (np.array([1.0, 0.0, 1.0, 1.0]), np.array([1.0, np.inf, 1.0, 1.0])):
        with pytest.raises(ValueError, match=r"cross_entropy\(\): temperature must be finite and > 0 here"):
            fs.cross_entropy(x, np.zeros(4, np.int64), temperature=zero)
    with pytest.raises(TypeError, match="contrastive_loss.*real scalar"):
        fs.contrastive_loss(np.zeros((4, 4)), temperature=np.ones(4))


def test_temperature_arrays_with_dask_input_raise():
    da = pytest.importorskip("dask.array")
    with pytest.raises(TypeError, match="real scalar for a Dask array"):
        fs.softmax(da.zeros((4, 3), chunks=2), temperature=np.ones(4))


def test_dask_input_keeps_the_requested_dtype():
    da = pytest.importorskip("dask.array")
    x = logits((4, 6), np.float32)
    lazy = fs.softmax(da.from_array(x, chunks=(2, 3)), dtype=np.float64)
    assert lazy.dtype == np.float64
    result = lazy.compute()
    assert result.dtype == np.float64
    assert_close("softmax", result, reference.softmax(x, dtype=np.float64), np.float64, "dask dtype=")


def test_temperature_arrays_with_out_and_empty_rows():
    x = logits((4, 6), np.float64, seed=8)
    t = np.array([0.5, 0.0, np.inf, 2.0])
    want = reference.log_softmax(x, temperature=t)
    out = np.empty_like(x)
    assert fs.log_softmax(x, temperature=t, out=out) is out
    assert_close("log_softmax", out, want, np.float64, "out=")
    y = x.copy()
    fs.log_softmax(y, temperature=t, out=y)              # in place
    assert_close("log_softmax", y, want, np.float64, "in place")
    lse = np.empty(4)
    fs.logsumexp(x, temperature=t, out=lse)
    assert_close("logsumexp", lse, reference.logsumexp(x, temperature=t), np.float64, "logsumexp out=")
    empty = np.zeros((3, 0))
    assert fs.softmax(empty, temperature=[1.0, 2.0, 3.0]).shape == (3, 0)
    assert fs.logsumexp(empty, temperature=[1.0, 2.0, 3.0]).tolist() == [-np.inf] * 3
    assert fs.softmax(np.zeros((0, 5)), temperature=np.ones((0,))).shape == (0, 5)


def test_contrastive_loss_says_why_it_takes_one_temperature():
    with pytest.raises(TypeError, match=r"contrastive_loss\(\): temperature must be a real scalar here.*"
                                        r"shape \(3,\).*no temperature per row"):
        fs.contrastive_loss(np.zeros((3, 3)), temperature=np.ones(3))
