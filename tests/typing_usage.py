"""User code that calls every public function, for ``mypy --strict``.

tests/test_typing.py type-checks this file with ``mypy --strict`` (every
``assert_type`` must hold) and runs it, so the static types claimed here are
also checked against what the calls return at run time.  It also checks that
every public function of ``fastsoftmax`` is called here: a new public
function gets a ``check_<name>`` section and an entry in ``CHECKS``.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, List

import numpy as np
from numpy.typing import NDArray

import fastsoftmax as fs
from fastsoftmax import BuildInfo

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type

rows32: NDArray[np.float32] = np.zeros((4, 5), dtype=np.float32)
rows64: NDArray[np.float64] = np.zeros((4, 5))
rows16: NDArray[np.float16] = np.zeros((4, 5), dtype=np.float16)
counts: NDArray[np.int64] = np.arange(20, dtype=np.int64).reshape(4, 5)
flags: NDArray[np.bool_] = np.ones((4, 5), dtype=bool)


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


def check_log_softmax() -> None:
    is_array(assert_type(fs.log_softmax(rows32), NDArray[np.float32]), np.float32)
    is_array(assert_type(fs.log_softmax(rows64, temperature=0), NDArray[np.float64]), np.float64)
    is_array(assert_type(fs.log_softmax(counts), NDArray[np.float64]), np.float64)
    is_array(assert_type(fs.log_softmax([100.0, 101.0]), NDArray[np.float64]), np.float64)
    is_scalar(assert_type(fs.log_softmax(1), np.float64), np.float64)
    out = np.empty_like(rows64)
    assert assert_type(fs.log_softmax(rows64, out=out, num_threads=None), NDArray[np.float64]) is out


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


CHECKS: List[Callable[[], None]] = [
    check_softmax, check_log_softmax, check_logsumexp, check_build_info, check_release_result_cache,
    check_reference,
]

if __name__ == "__main__":
    for check in CHECKS:
        check()
    print(f"{len(CHECKS)} checks passed")
