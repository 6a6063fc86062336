"""SciPy's own tests of softmax, log_softmax and logsumexp, run against
``fastsoftmax.special``.

SciPy ships them in its wheel as ``scipy.special.tests.test_logsumexp``.  The
test classes are imported from there and run here with the functions they
call (the module globals ``softmax``, ``log_softmax`` and ``logsumexp``)
swapped for fastsoftmax's.  The ``xp`` and ``devices`` fixtures stand in for
SciPy's conftest, restricted to NumPy.

Out of scope, marked below with the reason:
  * complex input (fastsoftmax.special raises TypeError for it): each such
    test or parametrisation is an xfail that must raise that TypeError;
  * ``test_wrap_radians``: a SciPy-private helper, not a swapped function;
  * the array-API backends (array_api_strict, PyTorch, JAX, CuPy, Dask),
    which SciPy's conftest adds when SCIPY_ARRAY_API=1: fastsoftmax takes
    NumPy arrays, so ``xp`` here is NumPy only.
"""
import numpy as np
import pytest

suite = pytest.importorskip("scipy.special.tests.test_logsumexp")

from fastsoftmax import special  # noqa: E402

TestLogSumExp = suite.TestLogSumExp
TestSoftmax = suite.TestSoftmax
TestLogSoftmax = suite.TestLogSoftmax
test_wrap_radians = suite.test_wrap_radians

COMPLEX_TESTS = {"test_logsumexp_complex_sign", "test_gh21709_small_imaginary"}
COMPLEX = pytest.mark.xfail(raises=TypeError, strict=True,
                            reason="complex input is out of scope: fastsoftmax.special raises TypeError")


def _complex_case(item) -> bool:
    if item.originalname in COMPLEX_TESTS:
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any(isinstance(v, complex) or (isinstance(v, str) and v.startswith("complex")) for v in params.values())


@pytest.fixture(autouse=True)
def _fastsoftmax_special(request, monkeypatch):
    """The suite's functions swapped for fastsoftmax.special's, and the
    out-of-scope cases marked."""
    if request.node.originalname == "test_wrap_radians":
        pytest.skip("tests SciPy's private helper _wrap_radians, which fastsoftmax.special does not replace")
    if _complex_case(request.node):
        request.node.add_marker(COMPLEX)
    for name in ("softmax", "log_softmax", "logsumexp"):
        monkeypatch.setattr(suite, name, getattr(special, name))


@pytest.fixture
def xp():
    """NumPy, wrapped as SciPy's own ``xp`` fixture wraps it."""
    from scipy._lib._array_api import array_namespace

    return array_namespace(np.empty(0))


@pytest.fixture
def devices(xp):
    return xp.__array_namespace_info__().devices() + [None]


def test_the_suite_calls_fastsoftmax():
    assert suite.logsumexp is special.logsumexp
    assert suite.softmax is special.softmax and suite.log_softmax is special.log_softmax
