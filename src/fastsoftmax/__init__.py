"""fastsoftmax: softmax, log-softmax and log-sum-exp over NumPy arrays, row by row.

C kernels (vectorised exp, compensated sums) driven by Cython loops on OpenMP
threads.  Never overflows, handles -inf masks, NaN and empty rows per a fixed
table, and is more accurate than the usual NumPy recipe.

>>> import fastsoftmax as fs
>>> fs.softmax([2.0, 1.0, 0.1]).round(2)
array([0.66, 0.24, 0.1 ])

``fastsoftmax.reference`` holds a slow pure-Python implementation of the same
math, used as the oracle in the tests.
"""
from . import reference
from ._api import log_softmax, logsumexp, softmax
from ._version import __version__

__all__ = ["softmax", "log_softmax", "logsumexp", "reference", "build_info", "__version__"]


def build_info() -> dict:
    """How this installation was built and what it runs on.

    Keys: ``version``, ``openmp`` (whether calls can use threads),
    ``default_threads`` (threads used when ``num_threads`` is None) and
    ``simd`` (the kernel variant chosen for this CPU).
    """
    from . import _rows

    return {
        "version": __version__,
        "openmp": _rows.openmp_enabled(),
        "default_threads": _rows.default_threads(),
        "simd": _rows.simd_target(),
    }
