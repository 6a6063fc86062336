"""linear_cross_entropy (issue 19): the output layer's cross-entropy without
its logits.

Against torch.nn.functional.linear_cross_entropy in float64 (values and
autograd gradients), against the float64 oracle
fastsoftmax.reference.linear_cross_entropy (z-loss, soft cap, temperature,
float32 and 16-bit inputs, a 256k vocabulary), and against a torch autograd
graph of the definition for the z-loss and soft cap.  Also: chunking (every
chunk size gives the same result), the memory cap measured with
tracemalloc, empty batches, all rows ignored and bad input."""
import math
import tracemalloc

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _linear, reference

R, H, V = 23, 12, 40


def problem(rows=R, hidden=H, classes=V, dtype=np.float64, seed=0, ignored=(3, 11)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, hidden)).astype(dtype)
    w = (rng.standard_normal((classes, hidden)) / math.sqrt(hidden) * 3).astype(dtype)
    target = rng.integers(0, classes, rows)
    target[[i for i in ignored if i < rows]] = -100
    return x, w, target


def extras(dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    return {"bias": rng.standard_normal(V).astype(dtype), "weight": rng.random(V) + 0.25}


def assert_close(actual, expected, rtol, atol=0.0):
    if expected is None:
        assert actual is None
        return
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=atol)


def assert_all_close(result, expected, rtol, atol=0.0):
    assert len(result) == len(expected)
    for actual, wanted in zip(result, expected):
        assert_close(actual, wanted, rtol, atol)


ARRAYS = ("linear_bias", "bias", "weight")      # case entries that name an array of extras()
TORCH_CASES = {
    "plain": {},
    "bias": {"linear_bias": "bias"},
    "weights, smoothing": {"weight": "weight", "label_smoothing": 0.15},
    "sum, bias, weights": {"reduction": "sum", "linear_bias": "bias", "weight": "weight"},
    "none, smoothing": {"reduction": "none", "label_smoothing": 0.3},
    "ignore_index 7": {"ignore_index": 7},
}


@pytest.mark.parametrize("case", TORCH_CASES)
def test_matches_torch_linear_cross_entropy(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, target = problem()
    kwargs = {k: extras()[v] if k in ARRAYS else v for k, v in TORCH_CASES[case].items()}
    target[target == -100] = kwargs.get("ignore_index", -100)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tkw = {k: torch.tensor(v, requires_grad=k == "linear_bias") if isinstance(v, np.ndarray) else v
           for k, v in kwargs.items()}
    loss = F.linear_cross_entropy(tx, tw, torch.tensor(target), **tkw)
    loss.sum().backward()
    expected = [loss.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(),
                tkw["linear_bias"].grad.numpy() if "linear_bias" in tkw else None]
    for chunk_size in (None, 1, 5):          # one chunk, one row a chunk, a last partial chunk
        result = fs.linear_cross_entropy(x, w, target, return_grad=True, chunk_size=chunk_size, **kwargs)
        assert_all_close(result, expected, rtol=1e-12, atol=1e-14)
    assert_all_close(reference.linear_cross_entropy(x, w, target, return_grad=True, **kwargs), expected,
                     rtol=1e-12, atol=1e-14)
    assert float(fs.linear_cross_entropy(x, w, target, **kwargs).sum()) == pytest.approx(
        float(loss.detach().sum()), rel=1e-12)


def torch_definition(torch, x, w, target, bias=None, weight=None, label_smoothing=0.0, reduction="mean",
                     temperature=1.0, z_loss=0.0, softcap=None):
    """The documented definition as a torch autograd graph (float64)."""
    F = torch.nn.functional
    logits = x @ w.T + (0 if bias is None else bias)
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    logits = logits / temperature
    rows = F.cross_entropy(logits, target, weight=weight, label_smoothing=label_smoothing, reduction="none")
    kept = target != -100
    safe = torch.where(kept, target, 0)
    w_y = torch.ones(len(target), dtype=x.dtype) if weight is None else weight[safe]
    row_weight = (1 - label_smoothing) * w_y + label_smoothing * (1.0 if weight is None else weight.mean())
    rows = rows + torch.where(kept, z_loss * row_weight * torch.logsumexp(logits, 1) ** 2, 0.0)
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return rows.sum() / torch.where(kept, w_y, 0.0).sum()


EXTENDED_CASES = {
    "z_loss": {"z_loss": 1e-2},
    "z_loss, smoothing, weights": {"z_loss": 0.1, "label_smoothing": 0.2, "weight": "weight"},
    "softcap, T, z_loss, bias": {"softcap": 3.0, "temperature": 0.7, "z_loss": 0.05, "bias": "bias"},
    "z_loss, smoothing, none": {"z_loss": 0.1, "label_smoothing": 0.3, "reduction": "none"},
    "softcap, sum": {"softcap": 1.5, "reduction": "sum", "weight": "weight"},
}


@pytest.mark.parametrize("case", EXTENDED_CASES)
def test_z_loss_softcap_temperature_against_autograd_and_reference(case):
    torch = pytest.importorskip("torch")
    x, w, target = problem()
    kwargs = {k: extras()[v] if k in ARRAYS else v for k, v in EXTENDED_CASES[case].items()}
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tkw = {k: torch.tensor(v, requires_grad=k == "bias") if isinstance(v, np.ndarray) else v
           for k, v in kwargs.items()}
    loss = torch_definition(torch, tx, tw, torch.tensor(target), **tkw)
    loss.sum().backward()
    expected = [loss.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(),
                tkw["bias"].grad.numpy() if "bias" in tkw else None]
    ours = {("linear_bias" if k == "bias" else k): v for k, v in kwargs.items()}
    for chunk_size in (None, 4):
        result = fs.linear_cross_entropy(x, w, target, return_grad=True, chunk_size=chunk_size, **ours)
        assert_all_close(result, expected, rtol=1e-11, atol=1e-14)
    assert_all_close(reference.linear_cross_entropy(x, w, target, return_grad=True, **ours), expected,
                     rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("case", ["plain", "softcap, T, z_loss, bias"])
def test_float32_against_float64_reference(case):
    x, w, target = problem(dtype=np.float32)
    kwargs = {"plain": {}, "softcap, T, z_loss, bias": {"softcap": 3.0, "temperature": 0.7, "z_loss": 0.05,
                                                         "linear_bias": extras(np.float32)["bias"]}}[case]
    result = fs.linear_cross_entropy(x, w, target, return_grad=True, chunk_size=6, **kwargs)
    assert all(r is None or r.dtype == np.float32 for r in result)
    expected = reference.linear_cross_entropy(x, w, target, return_grad=True, **kwargs)
    assert_all_close(result, expected, rtol=2e-6, atol=2e-7)


def test_without_scipy_the_product_goes_in_blocks(monkeypatch):
    x, w, target = problem()
    bias = extras()["bias"]
    expected = reference.linear_cross_entropy(x, w, target, linear_bias=bias, return_grad=True)
    monkeypatch.setattr(_linear, "_scipy_gemm", lambda dtype: None)
    monkeypatch.setattr(_linear, "_BLOCK_BYTES", 7 * H * 8)          # blocks of 7 classes: a partial last one
    result = fs.linear_cross_entropy(x, w, target, linear_bias=bias, return_grad=True, chunk_size=4)
    assert_all_close(result, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_16_bit_inputs_computed_in_float32(dtype_name):
    dtype = np.float16 if dtype_name == "float16" else pytest.importorskip("ml_dtypes").bfloat16
    x, w, target = problem()
    x16, w16 = x.astype(dtype), w.astype(dtype)
    loss, gx, gw, gb = fs.linear_cross_entropy(x16, w16, target, return_grad=True, chunk_size=5)
    assert loss.dtype == dtype and gx.dtype == dtype and gw.dtype == dtype and gb is None
    # the exact result of the 16-bit inputs, rounded once to 16 bits
    expected = reference.linear_cross_entropy(x16.astype(np.float32), w16.astype(np.float32), target,
                                              return_grad=True)
    tolerance = 1e-2 if dtype_name == "bfloat16" else 2e-3
    assert_all_close((loss, gx, gw), expected[:3], rtol=tolerance, atol=tolerance * 1e-2)


def test_large_vocabulary_loses_no_accuracy():
    """256k classes, small H: the float32 loss and gradient carry no error
    that grows with the vocabulary (sums in double)."""
    x, w, target = problem(rows=6, hidden=4, classes=262144, dtype=np.float32, seed=5, ignored=())
    loss, gx, gw, _ = fs.linear_cross_entropy(x, w, target, return_grad=True, reduction="none")
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    logits = x64 @ w64.T
    top = logits.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    expected = lse - logits[np.arange(6), target]
    # the float32 logits themselves are rounded: half an ulp of the largest
    assert np.abs(loss - expected).max() <= 2 * np.spacing(np.float32(np.abs(logits).max()))
    p = np.exp(logits - lse[:, None])
    p[np.arange(6), target] -= 1
    # grad_input is BLAS's float32 sum over 256k classes: its rounding (about sqrt(V) ulps on one
    # thread, fewer on several) is the product's, not the kernel's
    assert np.abs(gx - p @ w64).max() <= 3e-4 * np.abs(p @ w64).max()
    assert np.abs(gw - p.T @ x64).max() <= 1e-5 * np.abs(p.T @ x64).max()


def test_peak_memory_within_the_cap():
    """Besides its results: at most 1/8 of the float32 logits (and 64 MiB),
    measured with tracemalloc."""
    x, w, target = problem(rows=2048, hidden=16, classes=4096, dtype=np.float32, seed=2)
    logits_bytes = 2048 * 4096 * 4                      # 32 MiB: the cap is 4 MiB
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        loss, gx, gw, _ = fs.linear_cross_entropy(x, w, target, return_grad=True)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    results = gx.nbytes + gw.nbytes
    vectors = 64 * (2048 + 4096)                          # O(rows + V) bookkeeping
    assert peak - results <= logits_bytes // 8 + vectors
    expected = reference.linear_cross_entropy(x[:64], w, target[:64], reduction="sum")
    assert float(fs.linear_cross_entropy(x[:64], w, target[:64], reduction="sum")) == pytest.approx(
        float(expected), rel=1e-5)


def test_default_chunk_respects_64_mib():
    rows = _linear._chunk_rows(8192, 128000, 4096, 4, 2, False, None)
    assert rows * 2 * 128000 * 4 <= _linear.MAX_EXTRA_BYTES
    assert _linear._chunk_rows(10, 50, 4, 4, 2, False, None) == 1
    assert _linear._chunk_rows(10, 50, 4, 4, 2, False, 64) == 10


def test_shapes_reductions_and_ignored_rows():
    x, w, target = problem(rows=12)
    x3 = x.reshape(3, 4, H)
    t3 = target.reshape(3, 4)
    none = fs.linear_cross_entropy(x3, w, t3, reduction="none")
    assert none.shape == (3, 4)
    assert none[target.reshape(3, 4) == -100].tolist() == [0.0, 0.0]
    loss, gx, gw, gb = fs.linear_cross_entropy(x3, w, t3, return_grad=True, z_loss=0.1)
    assert gx.shape == x3.shape and gw.shape == w.shape and gb is None
    assert not gx[t3 == -100].any()
    one = fs.linear_cross_entropy(x[0], w, target[0], reduction="none")
    assert np.ndim(one) == 0 and float(one) == pytest.approx(float(none.reshape(-1)[0]), rel=1e-14)


def test_empty_batch_and_all_ignored():
    x, w, _ = problem()
    bias = extras()["bias"]
    for rows_x, rows_t in ((x[:0], np.zeros(0, int)), (x[:3], np.full(3, -100))):
        loss, gx, gw, gb = fs.linear_cross_entropy(rows_x, w, rows_t, linear_bias=bias, return_grad=True, z_loss=0.1)
        assert loss == 0.0 and type(loss) is np.float64
        assert gx.shape == rows_x.shape and not gx.any() and not gw.any() and not gb.any()
        assert fs.linear_cross_entropy(rows_x, w, rows_t, reduction="sum") == 0.0
        assert fs.linear_cross_entropy(rows_x, w, rows_t, reduction="none").tolist() == [0.0] * len(rows_t)
    loss, gx, gw, _ = fs.linear_cross_entropy(np.zeros((2, 0)), np.zeros((V, 0)), np.array([0, 1]),
                                              return_grad=True)
    assert float(loss) == pytest.approx(math.log(V)) and gx.shape == (2, 0) and gw.shape == (V, 0)


def test_special_values():
    x, w, target = problem(rows=4, ignored=())
    bias = np.zeros(V)
    bias[5] = -np.inf                         # class 5 masked out of every row
    target[target == 5] = 6
    loss, gx, gw, gb = fs.linear_cross_entropy(x, w, target, linear_bias=bias, return_grad=True, z_loss=0.01)
    expected = reference.linear_cross_entropy(x, w, target, linear_bias=bias, return_grad=True, z_loss=0.01)
    assert_all_close((loss, gx, gw, gb), expected, rtol=1e-12, atol=1e-14)
    assert gb[5] == 0.0
    x[1, 0] = np.nan
    rows = fs.linear_cross_entropy(x, w, target, reduction="none")
    assert np.isnan(rows[1]) and np.isfinite(rows[[0, 2, 3]]).all()


BAD_INPUT = [
    (dict(linear_weight=np.zeros((V, H + 1))), ValueError, "linear_weight must be (V, H)"),
    (dict(input=np.zeros(())), ValueError, "input needs at least one dimension"),
    (dict(target=np.zeros(R)), TypeError, "target must hold integer class indices"),
    (dict(target=np.zeros(R + 1, int)), ValueError, "target has shape"),
    (dict(target=np.full(R, V)), ValueError, f"target value {V} at position (0,)"),
    (dict(linear_bias=np.zeros(V + 1)), ValueError, "linear_bias has shape"),
    (dict(weight=np.zeros(3)), ValueError, "weight has shape"),
    (dict(reduction="batchmean"), ValueError, "reduction must be one of"),
    (dict(z_loss=-1.0), ValueError, "z_loss must be finite and >= 0"),
    (dict(z_loss="0.1"), TypeError, "z_loss must be a real number"),
    (dict(softcap=0.0), ValueError, "softcap must be None or finite and > 0"),
    (dict(temperature=0.0), ValueError, "temperature must be finite and > 0"),
    (dict(label_smoothing=2.0), ValueError, "label_smoothing must be in [0, 1]"),
    (dict(chunk_size=0), ValueError, "chunk_size must be None or an int >= 1"),
    (dict(chunk_size=2.5), TypeError, "chunk_size must be None or an int >= 1"),
    (dict(num_threads=0), ValueError, "num_threads"),
    (dict(input=np.zeros((R, H), complex)), TypeError, "unsupported input dtype complex128"),
]


@pytest.mark.parametrize("change, error, message", BAD_INPUT, ids=[m for _, _, m in BAD_INPUT])
def test_bad_input(change, error, message):
    x, w, target = problem()
    arguments = dict(input=x, linear_weight=w, target=target)
    arguments.update(change)
    positional = [arguments.pop(k) for k in ("input", "linear_weight", "target")]
    with pytest.raises(error, match=r"linear_cross_entropy\(\): .*" + __import__("re").escape(message)):
        fs.linear_cross_entropy(*positional, **arguments)
