"""The kernel table's ``backward`` entry: softmax_backward and
log_softmax_backward (issue 8), vector-Jacobian products of softmax(x / T) and
log_softmax(x / T).

fastsoftmax against the exact reference (fractions), the reference against
finite differences of the reference forward functions, and both against
PyTorch autograd in float64 when it is installed.  Also: where= masks (masked
entries and fully masked rows get exactly 0), layouts, out= (grad itself
included), threads, and bad input."""
import functools
import math

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference
from util import (DTYPES, assert_scaled_close, fill_sentinel, layouts, log_softmax_backward_scale, logits,
                  softmax_backward_scale, threaded_shape)

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf, nan = math.inf, math.nan
NAMES = ["softmax_backward", "log_softmax_backward"]
FORWARD = {"softmax_backward": "softmax", "log_softmax_backward": "log_softmax"}
SCALE = {"softmax_backward": softmax_backward_scale, "log_softmax_backward": log_softmax_backward_scale}


def backward(name, *args, **kwargs):
    return getattr(fs, name)(*args, **kwargs)


def case(name, shape, dtype, temperature, axis=-1, seed=0, where=None):
    """(grad, y): y the forward result of logits with a -inf entry per row, grad random."""
    x = logits(shape, dtype, seed=seed)
    x.reshape(-1)[:: 5] = -inf
    y = getattr(reference, FORWARD[name])(x, axis, temperature=temperature, where=where)
    grad = logits(shape, dtype, seed=seed + 100, scale=1.0)
    return grad, y


def check(name, got, grad, y, dtype, context, axis=-1, temperature=1.0, where=None, want=None):
    """got against the reference, under a bound scaled by the size of the terms."""
    if want is None:
        want = getattr(reference, name)(grad, y, axis, temperature=temperature, where=where)
    g, yy = np.asarray(grad, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if where is not None:
        keep = np.broadcast_to(where, g.shape)
        g, yy = np.where(keep, g, 0.0), np.where(keep, yy, -inf if name == "log_softmax_backward" else 0.0)
    scale = SCALE[name](g, yy, axis if axis is not None else tuple(range(g.ndim)), temperature)
    assert_scaled_close(got, want, scale, dtype, f"{name} {context}")
    return want


@functools.lru_cache(maxsize=None)
def cached_case(name, dtype, temperature, axis):
    grad, y = case(name, (5, 7), dtype, temperature, axis, seed=3)
    want = getattr(reference, name)(grad, y, axis, temperature=temperature)
    return grad, y, want


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_matches_the_reference(isa, name, dtype, temperature, axis):
    grad, y, want = cached_case(name, dtype, temperature, axis)
    got = backward(name, grad, y, axis, temperature=temperature)
    assert got.shape == grad.shape and got.dtype == dtype
    check(name, got, grad, y, dtype, f"{isa} T={temperature} axis={axis}", axis, temperature, want=want)


# the vector bodies and every tail of every variant, and rows past the tile widths
ROW_LENGTHS = list(range(1, 34)) + [64, 65, 130]


@functools.lru_cache(maxsize=None)
def cached_row_case(name, dtype, n, masked):
    """(grad, y, mask, want) for (4, n) rows; the mask (or None) keeps a
    random part of each row and nothing of row 3."""
    mask = None
    if masked:
        mask = np.random.default_rng(n).random((4, n)) < 0.6
        mask[:3, n // 2] = True
        mask[3] = False
    grad, y = case(name, (4, n), dtype, 0.5, seed=n, where=mask)
    want = getattr(reference, name)(grad, y, -1, temperature=0.5, where=mask)
    return grad, y, mask, want


@pytest.mark.parametrize("masked", [False, True], ids=["all", "where"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_every_row_length(isa, name, dtype, masked):
    """The backward kernel over every row length up to a few vectors, with
    and without a where= selection."""
    for n in ROW_LENGTHS:
        grad, y, mask, want = cached_row_case(name, dtype, n, masked)
        got = backward(name, grad, y, temperature=0.5, where=mask)
        check(name, got, grad, y, dtype, f"{isa} n={n} masked={masked}", -1, 0.5, mask, want=want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_other_axes_and_shapes(name, dtype):
    for shape, axis in (((3, 4, 5), 1), ((3, 4, 5), (0, 2)), ((3, 4, 5), None), ((6,), -1), ((2, 1, 3), 1),
                        ((2, 0, 3), 1), ((4, 3), 0)):
        grad, y = case(name, shape, dtype, 0.7, axis, seed=5)
        check(name, backward(name, grad, y, axis, temperature=0.7), grad, y, dtype,
              f"shape={shape} axis={axis}", axis, 0.7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_masks(name, dtype):
    """Masked entries and fully masked rows get exactly 0, whatever grad and y
    hold there (NaN, inf); sums run over the kept entries only."""
    shape = (6, 8)
    rng = np.random.default_rng(6)
    for mask in (rng.random(shape) < 0.6, rng.random((6, 1)) < 0.7, rng.random(8) < 0.5):
        mask = np.array(mask)
        full = np.broadcast_to(mask, shape)
        grad, y = case(name, shape, dtype, 1.5, where=mask, seed=6)
        grad, y = grad.copy(), y.copy()
        grad[~full] = nan
        y[~full] = np.resize(np.array([nan, inf, 3.0], dtype=dtype), (~full).sum())
        got = backward(name, grad, y, temperature=1.5, where=mask)
        assert np.all(got[~full] == 0), f"{name}: masked entries must be exactly 0"
        check(name, got, grad, y, dtype, f"mask {mask.shape}", -1, 1.5, mask)
    none = np.zeros((6, 1), dtype=bool)
    none[2] = True
    grad, y = case(name, shape, dtype, 1.0, seed=7)
    got = backward(name, grad, y, where=none)
    assert np.all(got[np.arange(6) != 2] == 0), "fully masked rows must be exactly 0"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_mask_on_axis_0(name, dtype):
    grad, y = case(name, (5, 4, 3), dtype, 1.0, axis=0, seed=8)
    mask = np.random.default_rng(8).random((5, 1, 3)) < 0.6
    got = backward(name, grad, y, 0, where=mask)
    check(name, got, grad, y, dtype, "axis=0 mask (5, 1, 3)", 0, 1.0, mask)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_layouts(name, dtype):
    """Fortran order, transposed, strided, negative strides, offsets and
    byte-swapped grad and y, along both axes."""
    for axis in (-1, 0):
        grad, y = case(name, (6, 7), dtype, 1.0, axis, seed=9)
        want = getattr(reference, name)(grad, y, axis)
        for g_name, g in layouts(grad):
            for y_name, yy in layouts(y):
                got = backward(name, g, yy, axis)
                check(name, got, grad, y, dtype, f"axis={axis} grad {g_name} y {y_name}", axis, want=want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_out_including_grad_itself(name, dtype):
    grad, y = case(name, (5, 9), dtype, 2.0, seed=10)
    mask = np.random.default_rng(10).random((1, 9)) < 0.7
    want = backward(name, grad, y, temperature=2.0, where=mask)
    out = np.empty_like(grad)
    assert backward(name, grad, y, temperature=2.0, where=mask, out=out) is out
    np.testing.assert_array_equal(out, want)
    f_out = np.empty(grad.shape, dtype=dtype, order="F")
    backward(name, grad, y, temperature=2.0, where=mask, out=f_out)
    np.testing.assert_array_equal(f_out, want)
    inplace = grad.copy()
    assert backward(name, inplace, y, temperature=2.0, where=mask, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, want)
    check(name, inplace, grad, y, dtype, "out=grad", -1, 2.0, mask)
    inplace_y = y.copy()
    assert backward(name, grad, inplace_y, temperature=2.0, where=mask, out=inplace_y) is inplace_y
    check(name, inplace_y, grad, y, dtype, "out=y", -1, 2.0, mask)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_thread_count_does_not_change_results(name, dtype):
    shape = threaded_shape()
    x = logits(shape, dtype, seed=12)
    grad = logits(shape, dtype, seed=13, scale=1.0)
    for axis in (-1, 0):
        y = getattr(fs, FORWARD[name])(x, axis)
        for mask in (None, np.random.default_rng(12).random((shape[0], 1)) < 0.8):
            one = backward(name, grad, y, axis, where=mask, num_threads=1)
            two = backward(name, grad, y, axis, where=mask, num_threads=2)
            np.testing.assert_array_equal(one, two, err_msg=f"{name} axis={axis}")


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises_and_writes_nothing(name):
    grad, y = case(name, (4, 6), np.float64, 1.0, seed=14)
    out = fill_sentinel(np.empty((4, 6)))
    bad_calls = [
        (ValueError, "temperature", dict(temperature=0.0)),
        (ValueError, "temperature", dict(temperature=inf)),
        (ValueError, "temperature", dict(temperature=-1.0)),
        (ValueError, "temperature", dict(temperature=nan)),
        (TypeError, "temperature", dict(temperature="1")),
        (TypeError, "temperature", dict(temperature=np.ones(4, dtype=bool))),
        (TypeError, "where", dict(where=np.ones((4, 6), dtype=np.int64))),
        (ValueError, "where", dict(where=np.ones((4, 5), dtype=bool))),
        (ValueError, "num_threads", dict(num_threads=0)),
    ]
    for error, word, kwargs in bad_calls:
        with pytest.raises(error, match=word):
            backward(name, grad, y, out=out, **kwargs)
        assert np.all(out == 12345.0), f"{kwargs}: out= written although the call raised"
        if word != "num_threads":
            with pytest.raises(error):
                getattr(reference, name)(grad, y, **kwargs)
    with pytest.raises(ValueError, match="shape"):
        backward(name, grad, y[:, :5], out=out)
    with pytest.raises(ValueError, match="shape"):
        getattr(reference, name)(grad, y[:, :5])
    with pytest.raises(ValueError, match="shape"):
        backward(name, grad, y, out=np.empty((4, 5)))
    with pytest.raises(TypeError, match="dtype"):
        backward(name, grad, y, out=np.empty((4, 6), dtype=np.float32))
    with pytest.raises(TypeError, match="dtype"):
        backward(name, grad.astype(complex), y)
    assert np.all(out == 12345.0)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
@pytest.mark.parametrize("name", NAMES)
def test_reference_is_the_derivative_of_the_reference_forward(name, temperature):
    """Central differences of sum(grad * forward(x)) in float64: an oracle
    for the reference that needs no PyTorch."""
    x = logits((3, 5), np.float64, seed=15, scale=1.0)
    grad = logits((3, 5), np.float64, seed=16, scale=1.0)
    forward = getattr(reference, FORWARD[name])
    y = forward(x, temperature=temperature)
    got = getattr(reference, name)(grad, y, temperature=temperature)
    h = 1e-5
    numeric = np.empty_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (np.sum(grad * forward(up, temperature=temperature))
                          - np.sum(grad * forward(down, temperature=temperature))) / (2 * h)
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)


# ---- PyTorch autograd (float64) -------------------------------------------------

@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("temperature", [0.25, 1.0, 4.0])
@pytest.mark.parametrize("name", NAMES)
def test_against_torch_autograd(name, temperature, axis):
    torch = pytest.importorskip("torch")
    x = logits((5, 7), np.float64, seed=17)
    grad = logits((5, 7), np.float64, seed=18, scale=1.0)
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch, FORWARD[name])(xt / temperature, axis)
    yt.backward(torch.from_numpy(grad))
    want = xt.grad.numpy()
    y = yt.detach().numpy()
    for source, fn in (("fastsoftmax", getattr(fs, name)), ("reference", getattr(reference, name))):
        got = fn(grad, y, axis, temperature=temperature)
        scale = SCALE[name](grad, y, axis, temperature)
        np.testing.assert_array_less(np.abs(got - want), 1e-13 * scale + 1e-300,
                                     err_msg=f"{source} {name} T={temperature} axis={axis}")


@pytest.mark.parametrize("name", NAMES)
def test_masked_against_torch_autograd(name):
    """PyTorch's recipe (masked_fill with -inf, then softmax) on rows with a
    True entry; its fully masked rows give NaN gradients, ours exactly 0."""
    torch = pytest.importorskip("torch")
    b, h, s = 2, 2, 4
    x = logits((b, h, s, s), np.float64, seed=19)
    grad = logits((b, h, s, s), np.float64, seed=20, scale=1.0)
    mask = np.broadcast_to(np.array([True, True, False, True]).reshape(1, 1, 1, s)
                           & np.tril(np.ones((s, s), dtype=bool)), (b, h, s, s)).copy()
    mask[1, :, 0, :] = False                               # fully masked rows
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch, FORWARD[name])(xt.masked_fill(~torch.from_numpy(mask), -inf), -1)
    # Our masked entries are not part of the row; PyTorch's -inf entries are, so
    # their upstream gradient must be 0 for the two to agree.
    yt.backward(torch.from_numpy(np.where(mask, grad, 0.0)))
    live = mask.any(axis=-1)
    want = np.where(mask, xt.grad.numpy(), 0.0)
    y = getattr(fs, FORWARD[name])(x, where=mask)
    for source, fn in (("fastsoftmax", getattr(fs, name)), ("reference", getattr(reference, name))):
        got = fn(grad, y, where=mask)
        np.testing.assert_allclose(got[live], want[live], rtol=1e-13, atol=1e-15, err_msg=f"{source} {name}")
        assert np.all(got[~live] == 0) and np.all(got[~mask] == 0), source
