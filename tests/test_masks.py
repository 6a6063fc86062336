"""where= on softmax, log_softmax and logsumexp (issue 8), and rows of only
-inf at T = 0.

fastsoftmax against the pure-Python reference (and both against PyTorch in
float64 when it is installed): broadcast padding and causal masks, masked
NaN / +inf, fully masked rows at every temperature, masks along other axes,
layouts, out=, threads, bad masks, and no full-size copy of x or the mask."""
import math
import tracemalloc

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference
from util import B, DTYPES, FULLY_MASKED, H, MASKS, S, assert_close, fill_sentinel, layouts, logits, threaded_shape

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf, nan = math.inf, math.nan
NAMES = ["softmax", "log_softmax", "logsumexp"]


def call(name, *args, **kwargs):
    return getattr(fs, name)(*args, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_masked_entries_ignore_their_values(name, dtype):
    """NaN, +inf and the dtype's max under masked entries change nothing: the
    result equals the unmasked call with -inf written at those entries."""
    rng = np.random.default_rng(5)
    clean = logits((6, 9), dtype, seed=5)
    mask = rng.random((6, 9)) < 0.5
    mask[:, 0] = True
    dirty = clean.copy()
    junk = np.array([nan, inf, np.finfo(dtype).max, -np.finfo(dtype).max, inf], dtype=dtype)
    dirty[~mask] = np.resize(junk, (~mask).sum())
    got = call(name, dirty, where=mask)
    want = call(name, np.where(mask, clean, -inf).astype(dtype))
    assert_close(name, got, want, dtype, "masked junk vs -inf")
    assert_close(name, got, getattr(reference, name)(dirty, where=mask), dtype, "vs reference")
    if name == "softmax":
        assert np.all(got[~mask] == 0)
    elif name == "log_softmax":
        assert np.all(got[~mask] == -inf)


@pytest.mark.parametrize("temperature", [0.0, 0.5, 1.0, inf])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fully_masked_rows_at_every_temperature(dtype, temperature):
    """Row 1 has no True entry: softmax 0, log_softmax -inf, logsumexp -inf,
    even with NaN and +inf under the mask.  Row 3 keeps only a -inf entry: a
    row of only -inf, so NaN like an unmasked one.  Other rows are unaffected."""
    x = np.array([[1.0, 2.0, nan, 0.5],
                  [nan, inf, 3.0, -inf],
                  [0.25, -1.0, 2.0, 2.0],
                  [-inf, 7.0, nan, inf]], dtype=dtype)
    mask = np.array([[True, True, False, True],
                     [False, False, False, False],
                     [True, True, True, True],
                     [True, False, False, False]])
    for name in NAMES:
        got = call(name, x, temperature=temperature, where=mask)
        want = getattr(reference, name)(x, temperature=temperature, where=mask)
        assert_close(name, got, want, dtype, f"T={temperature}")
        assert np.all(np.asarray(got[1]) == FULLY_MASKED[name]), f"{name} T={temperature}: fully masked row"
        if name == "logsumexp":
            assert got[3] == -inf, f"T={temperature}: only -inf left"
        else:
            assert np.all(np.isnan(got[3])), f"{name} T={temperature}: only -inf left is NaN"
        assert_close(name, got[2], call(name, x[2], temperature=temperature), dtype, "row 2 alone")


@pytest.mark.parametrize("temperature", [0.0, 0.5, 1.0, inf])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_of_only_minus_inf_without_mask(dtype, temperature):
    """No where=: a row of only -inf is NaN for softmax and log_softmax at every
    T, 0 included (there is nothing to pick); logsumexp is -inf."""
    x = np.array([[-inf, -inf, -inf], [1.0, -inf, 1.0]], dtype=dtype)
    for fn in (fs.softmax, fs.log_softmax, reference.softmax, reference.log_softmax):
        r = fn(x, temperature=temperature)
        assert np.all(np.isnan(r[0])), f"{fn.__module__}.{fn.__name__} T={temperature}"
        assert not np.any(np.isnan(r[1]))
    for fn in (fs.logsumexp, reference.logsumexp):
        assert fn(x, temperature=temperature)[0] == -inf
    np.testing.assert_array_equal(fs.softmax(x[1], temperature=0.0), [0.5, 0.0, 0.5])


AXIS_CASES = [
    (1, (5, 1)),            # middle axis, mask broadcast over the first
    (0, (3, 1, 4)),         # first axis
    (-2, (3, 5, 4)),        # full-size mask on a strided axis
    ((0, 2), (1, 5, 4)),    # two axes jointly
    (None, (3, 5, 4)),      # every axis
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis,mask_shape", AXIS_CASES)
def test_masks_along_other_axes(axis, mask_shape, dtype):
    x = logits((3, 5, 4), dtype, seed=7)
    rng = np.random.default_rng(7)
    mask = rng.random(mask_shape) < 0.6
    x[np.broadcast_to(~mask, x.shape)] = nan
    for name in NAMES:
        got = call(name, x, axis, where=mask)
        want = getattr(reference, name)(x, axis, where=mask)
        assert_close(name, got, want, dtype, f"axis={axis} mask {mask_shape}")
    got = fs.logsumexp(x, axis, keepdims=True, where=mask)
    want = reference.logsumexp(x, axis, keepdims=True, where=mask)
    assert_close("logsumexp", got, want, dtype, f"keepdims axis={axis}")


def mask_layouts(mask: np.ndarray):
    yield "C", mask
    yield "F", np.asfortranarray(mask)
    yield "list", mask.tolist()
    wide = np.zeros(mask.shape[:-1] + (2 * mask.shape[-1],), dtype=bool)
    wide[..., ::2] = mask
    yield "strided", wide[..., ::2]
    yield "negative-stride", np.ascontiguousarray(mask[..., ::-1])[..., ::-1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 0])
def test_layouts_of_x_and_mask(axis, dtype):
    """Fortran order, transposed views, strides, offsets and byte-swapped x,
    with masks in C or Fortran order, strided, or as nested lists."""
    x = logits((6, 7), dtype, seed=11)
    mask = np.random.default_rng(11).random((6, 7)) < 0.5
    mask[0] = False
    wants = {name: getattr(reference, name)(x, axis, where=mask) for name in NAMES}
    for x_layout, xl in layouts(x):
        for mask_layout, ml in mask_layouts(mask):
            for name in NAMES:
                got = call(name, xl, axis, where=ml)
                assert_close(name, got, wants[name], dtype, f"axis={axis} x {x_layout} mask {mask_layout}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_scalar_and_row_masks(dtype):
    x = logits((4, 6), dtype, seed=2)
    for mask in (True, np.bool_(True), np.ones(6, dtype=bool)):
        for name in NAMES:
            assert_close(name, call(name, x, where=mask), getattr(reference, name)(x), dtype, f"mask {mask!r}")
    assert np.all(fs.softmax(x, where=False) == 0)
    assert np.all(fs.logsumexp(x, where=np.zeros((4, 1), dtype=bool)) == -inf)
    assert fs.softmax(np.array(2.5, dtype=dtype), where=False) == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_out(name, dtype):
    x = logits((5, 8), dtype, seed=4)
    mask = np.random.default_rng(4).random((1, 8)) < 0.5
    want = getattr(reference, name)(x, where=mask)
    out = np.empty(want.shape, dtype=dtype)
    assert call(name, x, where=mask, out=out) is out
    assert_close(name, out, want, dtype, "out=")
    if name != "logsumexp":
        inplace = x.copy()
        assert call(name, inplace, where=mask, out=inplace) is inplace
        assert_close(name, inplace, want, dtype, "out=x")
        f_out = np.empty(want.shape, dtype=dtype, order="F")
        call(name, x, where=mask, out=f_out)
        assert_close(name, f_out, want, dtype, "Fortran out=")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_thread_count_does_not_change_results(name, dtype):
    rows, n = threaded_shape()
    x = logits((rows, n), dtype, seed=9)
    rng = np.random.default_rng(9)
    for mask in (rng.random((rows, n)) < 0.7, rng.random((rows, 1)) < 0.8, rng.random(n) < 0.5):
        for axis in (-1, 0):
            one = call(name, x, axis, where=mask, num_threads=1)
            two = call(name, x, axis, where=mask, num_threads=2)
            np.testing.assert_array_equal(one, two, err_msg=f"{name} axis={axis} mask {mask.shape}")


BAD_MASKS = [
    (np.ones((4, 6), dtype=np.int8), TypeError, "dtype"),
    (np.ones((4, 6), dtype=np.float64), TypeError, "dtype"),
    ([[1, 0, 1, 0, 1, 0]], TypeError, "dtype"),
    (np.array(["yes"] * 6), TypeError, "dtype"),
    (np.ones(5, dtype=bool), ValueError, "shape"),
    (np.ones((4, 1, 6), dtype=bool), ValueError, "shape"),     # would broadcast x to (4, 4, 6)
    (np.ones((2, 6), dtype=bool), ValueError, "shape"),
]


@pytest.mark.parametrize("mask,error,word", BAD_MASKS, ids=lambda v: getattr(v, "__name__", None))
@pytest.mark.parametrize("name", NAMES)
def test_bad_masks_raise_and_write_nothing(name, mask, error, word):
    """A mask of another dtype than bool is a TypeError, one that does not
    broadcast to x's shape (without growing x) a ValueError; both name
    where=, and out= is left untouched."""
    x = logits((4, 6), np.float64, seed=1)
    out = fill_sentinel(np.empty((4,) if name == "logsumexp" else (4, 6)))
    with pytest.raises(error, match=f"(?s)where.*{word}|{word}.*where"):
        call(name, x, where=mask, out=out)
    assert np.all(out == 12345.0), "out= was written although the call raised"
    with pytest.raises(error):
        getattr(reference, name)(x, where=mask)


@pytest.mark.parametrize("name", NAMES)
def test_masked_call_makes_no_full_size_copy(name):
    """A broadcast (S, S) mask under (B, H, S, S) float32 scores is not
    expanded and x is not copied: the call allocates the result and little
    else (an expanded mask or a masked copy of x would show)."""
    batch, heads, s = 2, 4, 128
    x = logits((batch, heads, s, s), np.float32, seed=0)
    mask = np.tril(np.ones((s, s), dtype=bool))
    call(name, x, where=mask)                      # warm up (first-call imports, caches)
    tracemalloc.start()
    try:
        result = call(name, x, where=mask)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    result_bytes = np.asarray(result).nbytes
    expanded_mask_bytes = batch * heads * s * s       # one byte per bool
    assert peak >= result_bytes, "tracemalloc does not see NumPy's allocations here"
    assert peak < result_bytes + expanded_mask_bytes // 2, (
        f"{name}: peak {peak} bytes for a {result_bytes}-byte result: mask or x copied")


# ---- PyTorch (float64) ----------------------------------------------------------

# PyTorch's own float64 error: log values near 0 are good to about 1e-16 absolute
# (it takes no log1p), so compare those relative to max(1, |value|), as the contract does.
ABS_TOL = {"softmax": 1e-300, "log_softmax": 1e-13, "logsumexp": 1e-13}

def torch_masked(torch, name, x, mask, temperature, dim=-1):
    """PyTorch's function on x with masked entries set to -inf (its recipe);
    rows with no True entry come out NaN there."""
    t = torch.from_numpy(np.ascontiguousarray(x)).masked_fill(~torch.from_numpy(np.broadcast_to(mask, x.shape).copy()), -inf)
    t = t / temperature
    if name == "softmax":
        return torch.softmax(t, dim).numpy()
    if name == "log_softmax":
        return torch.log_softmax(t, dim).numpy()
    return (temperature * torch.logsumexp(t, dim)).numpy()


@pytest.mark.parametrize("temperature", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_attention_masks_against_torch(mask_name, name, temperature):
    """fastsoftmax and the reference against PyTorch in float64, on rows with
    at least one True entry (PyTorch's fully masked rows are NaN; ours are
    0 / -inf / -inf, checked against the table)."""
    torch = pytest.importorskip("torch")
    x = logits((B, H, S, S), np.float64, seed=1)
    mask = np.broadcast_to(MASKS[mask_name](), x.shape)
    live = mask.any(axis=-1)
    want = torch_masked(torch, name, x, mask, temperature)
    for source, got in (("fastsoftmax", call(name, x, temperature=temperature, where=mask)),
                        ("reference", getattr(reference, name)(x, temperature=temperature, where=mask))):
        got = np.asarray(got)
        np.testing.assert_allclose(got[live], want[live], rtol=1e-13, atol=ABS_TOL[name],
                                   err_msg=f"{source} {name} mask={mask_name} T={temperature}")
        assert np.all(got[~live] == FULLY_MASKED[name]), f"{source}: fully masked rows"


@pytest.mark.parametrize("name", NAMES)
def test_mask_on_axis_0_against_torch(name):
    torch = pytest.importorskip("torch")
    x = logits((6, 4, 3), np.float64, seed=8)
    mask = np.random.default_rng(8).random((6, 1, 3)) < 0.6
    mask[0] = True
    want = torch_masked(torch, name, x, mask, 1.0, dim=0)
    for source, fn in (("fastsoftmax", getattr(fs, name)), ("reference", getattr(reference, name))):
        np.testing.assert_allclose(fn(x, 0, where=mask), want, rtol=1e-13, atol=ABS_TOL[name],
                                   err_msg=f"{source} {name}")
