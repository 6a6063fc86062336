"""User code that calls every public function, for ``mypy --strict``.

tests/test_typing.py type-checks this file with ``mypy --strict`` (every
``assert_type`` must hold) and runs it, so the static types claimed here are
also checked against what the calls return at run time.  It also checks that
every public function of ``fastsoftmax`` is called here: a new public
function gets a ``check_<name>`` section and an entry in ``CHECKS``.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, List, Tuple

import numpy as np
from numpy.typing import NDArray

import fastsoftmax as fs
from fastsoftmax import BuildInfo, special

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type

rows32: NDArray[np.float32] = np.zeros((4, 5), dtype=np.float32)
rows64: NDArray[np.float64] = np.zeros((4, 5))
rows16: NDArray[np.float16] = np.zeros((4, 5), dtype=np.float16)
counts: NDArray[np.int64] = np.arange(20, dtype=np.int64).reshape(4, 5)
flags: NDArray[np.bool_] = np.ones((4, 5), dtype=bool)
labels: NDArray[np.int64] = np.array([0, 1, 2, 4])
square32: NDArray[np.float32] = np.eye(4, dtype=np.float32)


def is_array(value: object, dtype: type[np.generic]) -> None:
    assert isinstance(value, np.ndarray) and value.dtype == dtype, (type(value), dtype)


def is_scalar(value: object, dtype: type[np.generic]) -> None:
    assert isinstance(value, dtype), (type(value), dtype)


def check_softmax() -> None:
    is_array(assert_type(fs.softmax(rows32), NDArray[np.float32]), np.float32)
    is_array(assert_type(fs.softmax(rows64, axis=0, temperature=0.5), NDArray[np.float64]), np.float64)
    is_array(assert_type(fs.softmax(rows16, (0, 1)), NDArray[np.float16]), np.float16)
    is_array(assert_type(fs.softmax(counts, None, num_threads=1), NDArray[np.float64]), np.float64)
    is_array(assert_type(fs.softmax(flags), NDArray[np.float64]), np.float64)
    is_array(assert_type(fs.softmax([2.0, 1.0, 0.1]), NDArray[np.float64]), np.float64)
    is_array(assert_type(fs.softmax([[1, 2], [3, 4]], temperature=2), NDArray[np.float64]), np.float64)
    is_scalar(assert_type(fs.softmax(3.0), np.float64), np.float64)
    is_scalar(assert_type(fs.softmax(np.float32(3.0)), np.float32), np.float32)
    out = np.empty_like(rows32)
    assert assert_type(fs.softmax(rows32, out=out), NDArray[np.float32]) is out
    any_input: Any = rows32
    fs.softmax(any_input, num_threads=np.int64(1), temperature=np.float32(0.5))
    probs = fs.softmax(rows32)
    total: np.float32 = probs.sum(dtype=np.float32)
    assert abs(float(total) - 4.0) < 1e-5
    # where= keeps the overloads; dtype= picks the result type
    is_array(assert_type(fs.softmax(rows32, where=flags), NDArray[np.float32]), np.float32)
    is_array(assert_type(fs.softmax(rows32, where=[True, False, True, True, True], temperature=0),
                         NDArray[np.float32]), np.float32)
    is_array(assert_type(fs.softmax(rows16, dtype=np.float32), NDArray[np.float32]), np.float32)
    is_array(assert_type(fs.softmax(rows32, dtype=np.dtype(np.float64)), NDArray[np.float64]), np.float64)
    widened = fs.softmax([1.0, 2.0], dtype="float32")
    is_array(assert_type(widened, "NDArray[np.floating[Any]] | np.floating[Any]"), np.float32)
    out64 = np.empty_like(rows64)
    assert assert_type(fs.softmax(rows32, out=out64, dtype=np.float64), NDArray[np.float64]) is out64


def check_log_softmax() -> None:
    is_array(assert_type(fs.log_softmax(rows32), NDArray[np.float32]), np.float32)
    is_array(assert_type(fs.log_softmax(rows64, temperature=0), NDArray[np.float64]), np.float64)
    is_array(assert_type(fs.log_softmax(counts), NDArray[np.float64]), np.float64)
    is_array(assert_type(fs.log_softmax([100.0, 101.0]), NDArray[np.float64]), np.float64)
    is_scalar(assert_type(fs.log_softmax(1), np.float64), np.float64)
    out = np.empty_like(rows64)
    assert assert_type(fs.log_softmax(rows64, out=out, num_threads=None), NDArray[np.float64]) is out
    is_array(assert_type(fs.log_softmax(rows64, where=flags), NDArray[np.float64]), np.float64)
    is_array(assert_type(fs.log_softmax(rows32, dtype=np.float16), NDArray[np.float16]), np.float16)


def check_logsumexp() -> None:
    is_scalar(assert_type(fs.logsumexp(rows32, None), np.float32), np.float32)
    is_scalar(assert_type(fs.logsumexp(rows64, axis=None), np.float64), np.float64)
    is_array(assert_type(fs.logsumexp(rows32, keepdims=True), NDArray[np.float32]), np.float32)
    is_array(assert_type(fs.logsumexp(counts, 0, keepdims=True), NDArray[np.float64]), np.float64)
    # the number of dimensions is not in the static type: an array or a scalar
    per_row = fs.logsumexp(rows32)
    is_array(assert_type(per_row, "NDArray[np.float32] | np.float32"), np.float32)
    is_array(assert_type(fs.logsumexp(counts), "NDArray[np.float64] | np.float64"), np.float64)
    is_scalar(assert_type(fs.logsumexp([0.0, -40.0]), np.float64), np.float64)
    is_scalar(assert_type(fs.logsumexp(2.5, temperature=3.0), np.float64), np.float64)
    is_scalar(assert_type(fs.logsumexp(np.float16(2.5)), np.float16), np.float16)
    is_scalar(assert_type(fs.logsumexp(counts, None), np.float64), np.float64)
    out: NDArray[np.float32] = np.empty(4, dtype=np.float32)
    assert assert_type(fs.logsumexp(rows32, out=out), NDArray[np.float32]) is out
    assert float(fs.logsumexp([0.0, -40.0])) > 0.0
    is_scalar(assert_type(fs.logsumexp(rows32, None, where=flags), np.float32), np.float32)
    is_array(assert_type(fs.logsumexp(rows32, where=flags, keepdims=True), NDArray[np.float32]), np.float32)
    is_array(assert_type(fs.logsumexp(rows32, dtype=np.float64), "NDArray[np.float64] | np.float64"), np.float64)
    is_scalar(assert_type(fs.logsumexp(rows32, None, dtype=np.float64), "NDArray[np.float64] | np.float64"),
              np.float64)


def check_softmax_backward() -> None:
    y = fs.softmax(rows32, where=flags)
    is_array(assert_type(fs.softmax_backward(rows32, y), NDArray[np.float32]), np.float32)
    is_array(assert_type(fs.softmax_backward(rows64, rows64, 0, temperature=2.0, where=flags, num_threads=1),
                         NDArray[np.float64]), np.float64)
    out = np.empty_like(rows32)
    assert assert_type(fs.softmax_backward(rows32, y, out=out), NDArray[np.float32]) is out
    mixed = fs.softmax_backward(rows32, rows64)
    is_array(assert_type(mixed, "NDArray[np.floating[Any]] | np.floating[Any]"), np.float64)
    is_array(assert_type(fs.softmax_backward([[0.0, 1.0]], [[0.5, 0.5]]),
                         "NDArray[np.floating[Any]] | np.floating[Any]"), np.float64)


def check_log_softmax_backward() -> None:
    y = fs.log_softmax(rows64)
    is_array(assert_type(fs.log_softmax_backward(rows64, y), NDArray[np.float64]), np.float64)
    is_array(assert_type(fs.log_softmax_backward(rows16, rows16, axis=(0, 1)), NDArray[np.float16]), np.float16)
    assert assert_type(fs.log_softmax_backward(rows64, y, out=rows64.copy()), NDArray[np.float64]).shape == (4, 5)


def check_cross_entropy() -> None:
    is_scalar(assert_type(fs.cross_entropy(rows32, labels), np.float32), np.float32)
    is_scalar(assert_type(fs.cross_entropy(rows64, labels, reduction="sum", label_smoothing=0.1), np.float64),
              np.float64)
    loss, grad = assert_type(fs.cross_entropy(rows32, labels, return_grad=True),
                             Tuple[np.float32, NDArray[np.float32]])
    is_scalar(loss, np.float32)
    is_array(grad, np.float32)
    per_row = fs.cross_entropy(rows32, labels, reduction="none", weight=np.ones(5), ignore_index=4)
    is_array(assert_type(per_row, "NDArray[np.float32] | np.float32"), np.float32)
    soft = fs.softmax(rows64)
    rows_loss, rows_grad = assert_type(fs.cross_entropy(rows64, soft, reduction="none", return_grad=True),
                                       "Tuple[NDArray[np.float64] | np.float64, NDArray[np.float64]]")
    is_array(rows_loss, np.float64)
    is_array(rows_grad, np.float64)
    is_scalar(assert_type(fs.cross_entropy([[2.0, 0.5]], [0], temperature=2.0), np.floating[Any]), np.float64)
    pair = assert_type(fs.cross_entropy([[2.0, 0.5]], [0], return_grad=True),
                       Tuple[np.floating[Any], NDArray[np.floating[Any]]])
    is_array(pair[1], np.float64)
    wanted: bool = len(labels) > 0
    either = fs.cross_entropy(rows32, labels, return_grad=wanted)
    assert_type(either, "NDArray[np.floating[Any]] | np.floating[Any] "
                        "| Tuple[NDArray[np.floating[Any]] | np.floating[Any], NDArray[np.floating[Any]]]")
    assert isinstance(either, tuple)


def check_kl_div() -> None:
    is_scalar(assert_type(fs.kl_div(rows32, rows32, temperature=4.0), np.float32), np.float32)
    loss, grad = assert_type(fs.kl_div(rows64, rows64, return_grad=True, reduction="sum"),
                             Tuple[np.float64, NDArray[np.float64]])
    is_scalar(loss, np.float64)
    is_array(grad, np.float64)
    is_array(assert_type(fs.kl_div(rows16, rows16, 0, reduction="none"), "NDArray[np.float16] | np.float16"),
             np.float16)
    is_scalar(assert_type(fs.kl_div(rows32, rows64), np.floating[Any]), np.float64)


def check_contrastive_loss() -> None:
    is_scalar(assert_type(fs.contrastive_loss(square32), np.float32), np.float32)
    loss, grad = assert_type(fs.contrastive_loss(square32, temperature=0.1, symmetric=False, return_grad=True),
                             Tuple[np.float32, NDArray[np.float32]])
    is_scalar(loss, np.float32)
    is_array(grad, np.float32)
    is_array(assert_type(fs.contrastive_loss(square32, reduction="none"), NDArray[np.float32]), np.float32)
    pairs, dsim = assert_type(fs.contrastive_loss([[1.0, 0.0], [0.0, 1.0]], reduction="none", return_grad=True),
                              Tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]])
    is_array(pairs, np.float64)
    is_array(dsim, np.float64)


def check_sample() -> None:
    tokens = fs.sample(rows32, temperature=0.7, top_k=3, top_p=0.9, min_p=0.05, rng=0)
    is_array(assert_type(tokens, "NDArray[np.int64] | np.int64"), np.int64)
    greedy = fs.sample([0.5, 2.5, 1.0], temperature=0)
    is_scalar(assert_type(greedy, "NDArray[np.int64] | np.int64"), np.int64)
    per_row = fs.sample(rows64, axis=0, temperature=np.linspace(0.0, 2.0, 5), where=flags,
                        rng=np.random.default_rng(1), num_threads=1)
    is_array(per_row, np.int64)
    assert int(fs.sample(counts[0], top_k=np.int64(1), rng=np.int64(3))) == 4


def check_verify_draft() -> None:
    target = np.zeros((2, 3, 4), dtype=np.float32)
    tokens, accepted = fs.verify_draft(target, [[0, 1], [2, 3]], temperature=[0.0, 1.0], rng=0)
    is_array(tokens, np.int64)
    is_array(accepted, np.int64)
    dist = assert_type(fs.reference.verify_draft_distribution(target, [[0, 1], [2, 3]]), NDArray[np.float64])
    is_array(dist, np.float64)
    out = fs.sample(rows32, history=[[0, -1]] * 4, presence_penalty=0.5, logprobs="processed", top_logprobs=2, rng=0)
    is_array(out.top_tokens, np.int64)


head32: NDArray[np.float32] = np.ones((6, 5), dtype=np.float32)


def check_linear_cross_entropy() -> None:
    is_scalar(assert_type(fs.linear_cross_entropy(rows32, head32, labels), np.float32), np.float32)
    loss, d_rows, d_head, d_bias = assert_type(
        fs.linear_cross_entropy(rows32, head32, labels, linear_bias=np.zeros(6, np.float32), z_loss=1e-4,
                                return_grad=True),
        Tuple[np.float32, NDArray[np.float32], NDArray[np.float32], "NDArray[np.float32] | None"])
    is_scalar(loss, np.float32)
    is_array(d_rows, np.float32)
    is_array(d_head, np.float32)
    is_array(d_bias, np.float32)
    is_array(assert_type(fs.linear_cross_entropy(rows32, head32, labels, reduction="none", softcap=30.0),
                         "NDArray[np.float32] | np.float32"), np.float32)
    is_scalar(fs.linear_cross_entropy(rows64.tolist(), head32, labels, chunk_size=2), np.float64)
    is_array(fs.reference.linear_cross_entropy(rows32, head32, labels, return_grad=True)[1], np.float64)


def check_special() -> None:
    is_array(assert_type(special.softmax(rows32), NDArray[np.float32]), np.float32)
    is_array(assert_type(special.log_softmax(rows64, axis=1), NDArray[np.float64]), np.float64)
    is_array(assert_type(special.softmax([1.0, 2.0]), NDArray[np.float64]), np.float64)
    is_scalar(assert_type(special.logsumexp(rows32), np.float32), np.float32)
    value, sign = assert_type(special.logsumexp(rows64, return_sign=True), Tuple[np.float64, np.float64])
    is_scalar(value, np.float64)
    is_scalar(sign, np.float64)
    is_scalar(assert_type(special.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True),
                          Tuple[np.float64, np.float64])[1], np.float64)
    by_row = special.logsumexp(rows32, axis=1, b=np.ones(5, dtype=np.float32))
    is_array(assert_type(by_row, "NDArray[np.floating[Any]] | np.floating[Any]"), np.float32)
    signs = assert_type(special.logsumexp(rows32, 1, None, True, True),
                        "Tuple[NDArray[np.floating[Any]] | np.floating[Any], "
                        "NDArray[np.floating[Any]] | np.floating[Any]]")
    is_array(signs[1], np.float32)


def check_build_info() -> None:
    info = assert_type(fs.build_info(), BuildInfo)
    assert_type(info["openmp"], bool)
    assert_type(info["default_threads"], int)
    assert_type(info["simd"], str)
    assert info["version"] == fs.__version__


def check_release_result_cache() -> None:
    freed = assert_type(fs.release_result_cache(), int)
    assert freed >= 0
    assert_type(fs.release_result_cache(keep_caching=True), int)


def check_reference() -> None:
    exact = fs.reference.softmax([1.0, 1.0])
    assert_type(exact, "NDArray[np.floating[Any]] | np.floating[Any]")
    assert np.asarray(exact).tolist() == [0.5, 0.5]
    assert_type(fs.reference.log_softmax(rows32, temperature=2.0), "NDArray[np.floating[Any]] | np.floating[Any]")
    assert float(fs.reference.logsumexp([0.0, 0.0], keepdims=False)) == float(np.log(2.0))
    exact_grad = fs.reference.softmax_backward([1.0, 0.0], [0.5, 0.5])
    is_array(assert_type(exact_grad, "NDArray[np.float64] | np.float64"), np.float64)
    is_array(assert_type(fs.reference.log_softmax_backward(rows32, rows32, where=flags),
                         "NDArray[np.float64] | np.float64"), np.float64)
    is_scalar(assert_type(fs.reference.cross_entropy(rows32, labels), "NDArray[np.float64] | np.float64"),
              np.float64)
    loss, grad = assert_type(fs.reference.cross_entropy(rows32, labels, return_grad=True),
                             "Tuple[NDArray[np.float64] | np.float64, NDArray[np.float64]]")
    is_array(grad, np.float64)
    is_scalar(assert_type(fs.reference.kl_div(rows32, rows32, temperature=2.0), "NDArray[np.float64] | np.float64"),
              np.float64)
    is_array(fs.reference.contrastive_loss(square32, return_grad=True)[1], np.float64)
    value, sign = assert_type(fs.reference.special_logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True),
                              "Tuple[NDArray[np.floating[Any]] | np.floating[Any], "
                              "NDArray[np.floating[Any]] | np.floating[Any]]")
    assert float(sign) == -1.0
    probs = assert_type(fs.reference.sample_distribution(rows32[0], top_k=2), NDArray[np.float64])
    is_array(probs, np.float64)


def check_temperature_per_row() -> None:
    per_row: NDArray[np.float64] = np.array([0.5, 1.0, 0.0, 2.0])
    is_array(assert_type(fs.softmax(rows32, temperature=per_row), NDArray[np.float32]), np.float32)
    is_array(assert_type(fs.log_softmax(rows64, temperature=[1.0, 2.0, 3.0, 4.0]), NDArray[np.float64]), np.float64)
    is_array(fs.logsumexp(rows64, temperature=per_row), np.float64)
    positive = per_row + 1.0
    is_array(assert_type(fs.softmax_backward(rows64, rows64, temperature=positive), NDArray[np.float64]),
             np.float64)
    is_scalar(assert_type(fs.cross_entropy(rows64, labels, temperature=positive), np.float64), np.float64)
    is_scalar(assert_type(fs.kl_div(rows32, rows32, temperature=positive), np.float32), np.float32)


def check_submodule_attributes() -> None:
    """``fs.special`` and ``fs.dask`` after ``import fastsoftmax as fs`` alone."""
    is_array(assert_type(fs.special.softmax(rows32), NDArray[np.float32]), np.float32)
    lazy = fs.dask.softmax(rows64)
    assert lazy.shape == (4, 5)
    is_array(np.asarray(lazy), np.float64)         # (computed when asked)


CHECKS: List[Callable[[], None]] = [
    check_softmax, check_log_softmax, check_logsumexp, check_softmax_backward, check_log_softmax_backward,
    check_cross_entropy, check_kl_div, check_contrastive_loss, check_sample, check_special, check_build_info,
    check_release_result_cache, check_reference, check_temperature_per_row, check_submodule_attributes,
    check_verify_draft, check_linear_cross_entropy,
]

if __name__ == "__main__":
    for check in CHECKS:
        check()
    print(f"{len(CHECKS)} checks passed")
