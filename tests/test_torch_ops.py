"""fastsoftmax.torch (issue 19): the functions as PyTorch custom operators.

Every op against its PyTorch counterpart in float64, values and autograd
gradients; gradcheck; torch.compile(fullgraph=True) (one small inductor
case, one aot_eager case over every op); tensors shared without copies
(bfloat16 by its bits); 16-bit and strided tensors; the fallback to
PyTorch's own functions (other devices) with the same meaning; empty
batches; bad input with the NumPy API's errors; and torch staying optional."""
import math
import subprocess
import sys

import numpy as np
import pytest
from numpy.exceptions import AxisError

torch = pytest.importorskip("torch")
F = torch.nn.functional
fst = pytest.importorskip("fastsoftmax.torch")

D = torch.float64


def randn(*shape, seed=0, dtype=D, grad=True):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(grad)


def value_and_grads(fn, inputs, seed=9):
    """fn's value and the gradients of sum(value * fixed random weights)."""
    for t in inputs:
        t.grad = None
    value = fn(*inputs)
    weights = torch.randn(value.shape, generator=torch.Generator().manual_seed(seed), dtype=D).to(value.dtype)
    (value * weights).sum().backward()
    grads = [t.grad.clone() for t in inputs]
    return value.detach(), grads


def assert_same(ours, theirs, rtol=1e-12, atol=1e-14):
    (v1, g1), (v2, g2) = ours, theirs
    torch.testing.assert_close(v1, v2, rtol=rtol, atol=atol)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


# ---- values and gradients against PyTorch ---------------------------------------------

@pytest.mark.parametrize("dim, temperature", [(-1, 1.0), (0, 0.5), (1, 3.0)])
def test_softmax_log_softmax_logsumexp_match_torch(dim, temperature):
    x = randn(4, 6, 5)
    for ours, theirs in ((lambda x: fst.softmax(x, dim, temperature=temperature),
                          lambda x: torch.softmax(x / temperature, dim)),
                         (lambda x: fst.log_softmax(x, dim, temperature=temperature),
                          lambda x: torch.log_softmax(x / temperature, dim)),
                         (lambda x: fst.logsumexp(x, dim, temperature=temperature),
                          lambda x: temperature * torch.logsumexp(x / temperature, dim)),
                         (lambda x: fst.logsumexp(x, dim, True, temperature=temperature),
                          lambda x: temperature * torch.logsumexp(x / temperature, dim, keepdim=True))):
        assert_same(value_and_grads(ours, [x]), value_and_grads(theirs, [x]))


def test_masks_match_torch_on_rows_with_kept_entries():
    x = randn(5, 8)
    where = torch.rand(5, 8, generator=torch.Generator().manual_seed(3)) > 0.4
    where[:, 0] = True
    masked = lambda x: x.masked_fill(~where, -math.inf)             # noqa: E731
    assert_same(value_and_grads(lambda x: fst.softmax(x, where=where), [x]),
                value_and_grads(lambda x: torch.softmax(masked(x), -1), [x]))
    assert_same(value_and_grads(lambda x: fst.logsumexp(x, where=where, temperature=2.0), [x]),
                value_and_grads(lambda x: 2 * torch.logsumexp(masked(x) / 2, -1), [x]))
    ours = fst.log_softmax(x, where=where)
    torch.testing.assert_close(ours[where], torch.log_softmax(masked(x), -1)[where], rtol=1e-12, atol=0)
    assert (ours[~where] == -math.inf).all()
    # a row with nothing kept: 0, -inf, -inf and zero gradients (PyTorch's recipe gives NaN)
    nothing = torch.zeros(2, 8, dtype=torch.bool)
    nothing[1] = True
    value, (grad,) = value_and_grads(lambda x: fst.softmax(x, where=nothing), [x[:2].detach().requires_grad_()])
    assert (value[0] == 0).all() and (grad[0] == 0).all()
    assert (fst.log_softmax(x[:2], where=nothing)[0] == -math.inf).all()
    assert fst.logsumexp(x[:2], where=nothing)[0] == -math.inf


CE_CASES = {
    "mean": dict(),
    "sum, weights, smoothing": dict(reduction="sum", weight=torch.rand(7, dtype=D) + 0.5, label_smoothing=0.2),
    "none, ignore_index": dict(reduction="none", ignore_index=3),
    "temperature": dict(temperature=2.5),
}


@pytest.mark.parametrize("case", CE_CASES)
def test_cross_entropy_matches_torch(case):
    kwargs = dict(CE_CASES[case])
    temperature = kwargs.pop("temperature", 1.0)
    for shape, target_shape in (((6, 7), (6,)), ((3, 7, 4), (3, 4)), ((7,), ())):
        x = randn(*shape)
        target = torch.randint(0, 7, target_shape, generator=torch.Generator().manual_seed(1))
        if target.dim():
            target.view(-1)[0] = kwargs.get("ignore_index", -100)
        assert_same(value_and_grads(lambda x: fst.cross_entropy(x, target, temperature=temperature, **kwargs), [x]),
                    value_and_grads(lambda x: F.cross_entropy(x / temperature, target, **kwargs), [x]))
    probabilities = torch.softmax(randn(6, 7, seed=4, grad=False), 1)
    x = randn(6, 7)
    assert_same(value_and_grads(lambda x: fst.cross_entropy(x, probabilities, label_smoothing=0.1), [x]),
                value_and_grads(lambda x: F.cross_entropy(x, probabilities, label_smoothing=0.1), [x]))


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
def test_kl_div_matches_torch(reduction):
    s, t = randn(6, 9), randn(6, 9, seed=1, grad=False)

    def theirs_both(s, t):
        rows = 9 * F.kl_div(F.log_softmax(s / 3, -1), F.log_softmax(t / 3, -1), reduction="none",
                            log_target=True).sum(-1)
        return rows if reduction == "none" else rows.mean() if reduction == "batchmean" else rows.sum()
    assert_same(value_and_grads(lambda s: fst.kl_div(s, t, temperature=3.0, reduction=reduction), [s]),
                value_and_grads(lambda s: theirs_both(s, t), [s]))
    # a teacher that needs a gradient runs PyTorch's functions: both get one
    tg = t.clone().requires_grad_()
    assert_same(value_and_grads(lambda s, t: fst.kl_div(s, t, temperature=3.0, reduction=reduction), [s, tg]),
                value_and_grads(theirs_both, [s, tg]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_linear_cross_entropy_matches_torch(reduction):
    # PyTorch's function takes 2-d input (its cross_entropy's class axis is 1); (..., H) against the definition
    x, w, b = randn(10, 6), randn(11, 6, seed=1), randn(11, seed=2)
    target = torch.randint(0, 11, (10,), generator=torch.Generator().manual_seed(3))
    target[1] = -100
    weight = torch.rand(11, dtype=D) + 0.5
    kwargs = dict(reduction=reduction, weight=weight, label_smoothing=0.1)
    assert_same(value_and_grads(lambda x, w, b: fst.linear_cross_entropy(x, w, target, linear_bias=b,
                                                                          chunk_size=3, **kwargs), [x, w, b]),
                value_and_grads(lambda x, w, b: F.linear_cross_entropy(x, w, target, linear_bias=b, **kwargs),
                                [x, w, b]))
    # z-loss, soft cap and temperature: against the definition in PyTorch's own functions
    extra = dict(kwargs, temperature=0.8, z_loss=0.05, softcap=2.0)
    x, target = x.detach().reshape(2, 5, 6).requires_grad_(), target.reshape(2, 5)
    assert_same(value_and_grads(lambda x, w, b: fst.linear_cross_entropy(x, w, target, linear_bias=b, **extra),
                                [x, w, b]),
                value_and_grads(lambda x, w, b: fst._torch_linear_cross_entropy(
                    x, w, target, b, weight, -100, 0.1, reduction, 0.8, 0.05, 2.0), [x, w, b]))


# ---- gradcheck --------------------------------------------------------------------------

def test_gradcheck_every_op_with_a_gradient():
    x = randn(3, 5)
    where = torch.tensor([[True, False, True, True, True]])
    target = torch.tensor([1, -100, 4])
    w, b = randn(5, 5, seed=1), randn(5, seed=2)
    teacher = randn(3, 5, seed=3, grad=False)
    checks = [
        lambda x: fst.softmax(x, temperature=0.7, where=where),
        lambda x: fst.log_softmax(x, 0, temperature=1.5),
        lambda x: fst.logsumexp(x, 1, temperature=2.0, where=where),
        lambda x: fst.cross_entropy(x, target, label_smoothing=0.1),
        lambda x: fst.cross_entropy(x, target, reduction="none", temperature=0.5),
        lambda x: fst.kl_div(x, teacher, temperature=2.0, reduction="none"),
    ]
    for fn in checks:
        assert torch.autograd.gradcheck(fn, (x,))
    for reduction in ("mean", "none"):
        assert torch.autograd.gradcheck(
            lambda x, w, b: fst.linear_cross_entropy(x, w, target, linear_bias=b, reduction=reduction, z_loss=0.1,
                                                     softcap=3.0, chunk_size=2), (x, w, b))


def test_opcheck_schemas_fake_implementations_and_autograd_registration():
    """torch.library.opcheck: each op's schema, fake implementation (shapes,
    dtypes, strides under torch.compile) and autograd registration (the
    backward ops themselves have no gradient: no double backward)."""
    x = randn(3, 5)
    y = fst.softmax(x.detach())
    keep = torch.tensor([[True, False, True, True, True]])
    ops = torch.ops.fastsoftmax
    cases = [
        (ops.softmax.default, (x, 1, 0.7, None)),
        (ops.log_softmax.default, (x, 0, 1.5, keep)),
        (ops.logsumexp.default, (x, 1, True, 2.0, keep)),
        (ops.softmax_backward.default, (x.detach(), y, 1, 0.7, None)),
        (ops.log_softmax_backward.default, (x.detach(), y.log(), 1, 0.7, keep)),
        (ops.cross_entropy.default, (x, torch.tensor([1, -100, 4]), None, -100, "none", 0.1, 1.0, True)),
        (ops.kl_div.default, (x, randn(3, 5, seed=1, grad=False), "sum", 2.0, True)),
        (ops.linear_cross_entropy.default, (x, randn(4, 5, seed=2), torch.tensor([1, -100, 3]), None, None, -100,
                                            0.0, "mean", 1.0, 0.1, None, None, True)),
        (ops.linear_cross_entropy_backward.default, (randn(3, grad=False), x.detach(), randn(4, 5, seed=2, grad=False),
                                                     torch.tensor([1, -100, 3]), randn(4, seed=3, grad=False), None,
                                                     -100, 0.0, 1.0, 0.0, 2.0, 2)),
        (ops.sample.default, (x.detach(), 1, torch.tensor(1.0, dtype=D), None, None, None, None, torch.tensor(3))),
    ]
    for op, args in cases:
        result = torch.library.opcheck(op, args)
        assert set(result.values()) == {"SUCCESS"}, (op, result)


# ---- torch.compile -----------------------------------------------------------------------

def test_compile_inductor_fullgraph():
    def step(x, target):
        return fst.cross_entropy(fst.log_softmax(x, temperature=2.0), target)
    x = randn(4, 10, dtype=torch.float32)
    target = torch.tensor([1, 9, -100, 0])
    expected = step(x, target)
    expected.backward()
    grad = x.grad.clone()
    x.grad = None
    compiled = torch.compile(step, fullgraph=True)
    value = compiled(x, target)
    value.backward()
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(x.grad, grad)


class SmallModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(8, 6)
        self.head = torch.nn.Linear(6, 10, bias=False)

    def forward(self, x, target, teacher):
        h = self.hidden(x)
        h = h * fst.softmax(h, temperature=2.0) + fst.log_softmax(h) + fst.logsumexp(h, -1, keepdim=True)
        logits = self.head(h)
        return (fst.cross_entropy(logits, target) + fst.kl_div(logits, teacher, temperature=2.0)
                + fst.linear_cross_entropy(h, self.head.weight, target, z_loss=1e-3))


def test_compile_every_op_without_graph_break():
    torch.manual_seed(0)
    model = SmallModel().double()
    x, target, teacher = randn(4, 8, grad=False), torch.tensor([3, -100, 9, 0]), randn(4, 10, seed=1, grad=False)
    expected = model(x, target, teacher)
    expected.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    value = torch.compile(model, fullgraph=True, backend="aot_eager")(x, target, teacher)
    value.backward()
    torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-14)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-14)
    drawn = torch.compile(lambda t: fst.sample(t, top_k=1), fullgraph=True, backend="aot_eager")(teacher)
    assert drawn.tolist() == teacher.argmax(-1).tolist()


# ---- tensors: no copies, 16-bit, strides, other devices --------------------------------

def test_cpu_tensors_are_shared_without_copy(monkeypatch):
    pytest.importorskip("ml_dtypes")
    x = torch.randn(6, 9)
    for t in (x, x.half(), x.bfloat16(), x.double().t()):
        array = fst._array(t)
        assert array.ctypes.data == t.data_ptr() and array.strides == tuple(s * t.element_size() for s in t.stride())

    def no_float(self, *args, **kwargs):
        raise AssertionError(".float() was called")
    monkeypatch.setattr(torch.Tensor, "float", no_float)
    xb = x.bfloat16().requires_grad_()
    y = fst.softmax(xb)
    y.sum().backward()
    assert y.dtype == torch.bfloat16 and xb.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("dtype, tolerance", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_16_bit_tensors(dtype, tolerance):
    pytest.importorskip("ml_dtypes")
    x = randn(5, 33, dtype=torch.float32, grad=False).to(dtype).requires_grad_()
    target = torch.tensor([0, 32, 5, -100, 7])
    for ours, theirs in ((lambda x: fst.softmax(x, temperature=0.5), lambda x: torch.softmax(x / 0.5, -1)),
                         (lambda x: fst.log_softmax(x), lambda x: torch.log_softmax(x, -1)),
                         (lambda x: fst.logsumexp(x), lambda x: torch.logsumexp(x, -1)),
                         (lambda x: fst.cross_entropy(x, target), lambda x: F.cross_entropy(x, target))):
        value, (grad,) = value_and_grads(ours, [x])
        x64 = x.detach().double().requires_grad_()
        value64, (grad64,) = value_and_grads(theirs, [x64])
        assert value.dtype == dtype and grad.dtype == dtype
        torch.testing.assert_close(value.double(), value64, rtol=tolerance, atol=tolerance)
        # log_softmax's gradient subtracts exp(y) * sum(grad): rounded to 16 bits, a few times the tolerance
        torch.testing.assert_close(grad.double(), grad64, rtol=tolerance, atol=4 * tolerance)


def test_strided_tensors():
    base = randn(7, 12, grad=False)
    x = base.t()[::2].requires_grad_()               # (6, 7), non-contiguous
    target = torch.tensor([0, 1, 2, 3, 4, 5])
    assert_same(value_and_grads(lambda x: fst.cross_entropy(x, target), [x]),
                value_and_grads(lambda x: F.cross_entropy(x, target), [x]))
    assert_same(value_and_grads(lambda x: fst.softmax(x, 0), [x]), value_and_grads(lambda x: torch.softmax(x, 0), [x]))


def test_other_devices_run_torch_functions_with_the_same_meaning(monkeypatch):
    x = randn(4, 6)
    where = torch.rand(4, 6, generator=torch.Generator().manual_seed(2)) > 0.5
    where[0] = False                                                  # a row with nothing kept
    target = torch.tensor([2, -100, 5, 0])
    w, b = randn(9, 6, seed=3), randn(9, seed=4)
    calls = [
        lambda x: fst.softmax(x, where=where, temperature=0.5),
        lambda x: fst.log_softmax(x, 0, where=where),
        lambda x: fst.logsumexp(x, where=where, temperature=2.0),
        lambda x: fst.cross_entropy(x, target, temperature=2.0, reduction="none"),
        lambda x: fst.kl_div(x, x.detach().flip(0), temperature=2.0),
        lambda x: fst.linear_cross_entropy(x, w, target, linear_bias=b, z_loss=0.1, softcap=2.0),
        lambda x: fst.linear_cross_entropy(x, w, torch.full((4,), -100)),
    ]
    kernels = [fst_call(call, x) for call in calls]
    monkeypatch.setattr(fst, "_on_kernels", lambda *tensors: False)
    for call, expected in zip(calls, kernels):
        value = call(x)
        torch.testing.assert_close(value, expected, rtol=1e-12, atol=1e-14, equal_nan=True)
    meta = torch.empty(4, 6, device="meta")
    monkeypatch.undo()
    assert fst.softmax(meta).device.type == "meta" and fst.logsumexp(meta).shape == (4,)


def fst_call(call, x):
    return call(x).detach()


# ---- sampling -------------------------------------------------------------------------------

def test_sample_follows_torch_seed_and_filters():
    logits = randn(3, 50, grad=False)
    torch.manual_seed(5)
    first = fst.sample(logits, temperature=0.7)
    torch.manual_seed(5)
    assert fst.sample(logits, temperature=0.7).tolist() == first.tolist()
    assert first.dtype == torch.int64 and first.shape == (3,)
    assert fst.sample(logits, top_k=1).tolist() == logits.argmax(-1).tolist()
    where = torch.zeros(3, 50, dtype=torch.bool)
    where[:, 7] = True
    assert fst.sample(logits, where=where).tolist() == [7, 7, 7]
    assert fst.sample(logits.t(), 0, temperature=torch.tensor([0.0, 0.0, 0.0])).tolist() == \
        logits.argmax(-1).tolist()


# ---- empty batches, bad input, torch optional -------------------------------------------

def test_empty_batches():
    x = torch.empty(0, 5, dtype=D, requires_grad=True)
    target = torch.empty(0, dtype=torch.int64)
    loss = fst.cross_entropy(x, target)
    loss.backward()
    assert loss.item() == 0.0 and x.grad.shape == (0, 5)
    assert fst.softmax(x).shape == (0, 5) and fst.logsumexp(x).shape == (0,)
    assert fst.kl_div(x, x.detach()).item() == 0.0
    w = randn(4, 5)
    loss = fst.linear_cross_entropy(x, w, target)
    loss.backward()
    assert loss.item() == 0.0 and (w.grad == 0).all()


BAD = [
    (lambda: fst.softmax(torch.arange(4)), TypeError, r"softmax\(\): input has dtype torch.int64"),
    (lambda: fst.softmax(torch.zeros(3), dim=2), AxisError, r"softmax\(\): axis 2 is out of bounds"),
    (lambda: fst.softmax(torch.zeros(3), temperature=-1.0), ValueError, r"softmax\(\): temperature must be >= 0"),
    (lambda: fst.softmax(torch.zeros(3, 4), where=torch.ones(2, 4, dtype=torch.bool)), ValueError,
     r"softmax\(\): where has shape \(2, 4\)"),
    (lambda: fst.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 3])), ValueError,
     r"cross_entropy\(\): target value 3 at position \(1,\)"),
    (lambda: fst.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), reduction="avg"), ValueError,
     r"cross_entropy\(\): reduction must be one of"),
    (lambda: fst.kl_div(torch.zeros(2, 3), torch.zeros(3, 2)), ValueError, r"kl_div\(\): teacher_logits has shape"),
    (lambda: fst.linear_cross_entropy(torch.zeros(2, 3), torch.zeros(4, 5), torch.tensor([0, 1])), ValueError,
     r"linear_cross_entropy\(\): linear_weight must be \(V, H\)"),
    (lambda: fst.linear_cross_entropy(torch.zeros(2, 3), torch.zeros(4, 3), torch.tensor([0, 1]), z_loss=-1.0),
     ValueError, r"linear_cross_entropy\(\): z_loss must be finite and >= 0"),
    (lambda: fst.sample(torch.zeros(2, 3), top_k=-1), ValueError, r"sample\(\): top_k"),
]


@pytest.mark.parametrize("call, error, message", BAD, ids=[m.split("(")[0] + str(i) for i, (_, _, m) in
                                                            enumerate(BAD)])
def test_bad_input_gets_the_numpy_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_torch_stays_optional():
    code = ("import sys, fastsoftmax as fs; fs.linear_cross_entropy([[1.0]], [[1.0], [2.0]], [0]); "
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "sys.modules['torch'] = None\n"
            "try:\n    import fastsoftmax.torch\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fastsoftmax.torch needs PyTorch" in out.stdout and "pip install torch" in out.stdout


def test_docstring_examples():
    import doctest
    result = doctest.testmod(fst, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
