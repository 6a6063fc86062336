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
from inspect import isfunction as _isfunction
from typing import TYPE_CHECKING

from . import reference
from ._api import log_softmax, logsumexp, softmax
from ._sample import sample, verify_draft
from ._training import contrastive_loss, cross_entropy, kl_div, log_softmax_backward, softmax_backward
from ._linear import linear_cross_entropy
from ._typing import BuildInfo, plain_signatures
from ._version import __version__

if TYPE_CHECKING:
    from . import dask as dask, special as special

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward", "cross_entropy",
           "kl_div", "contrastive_loss", "linear_cross_entropy", "sample", "verify_draft", "reference", "build_info",
           "release_result_cache", "BuildInfo", "__version__"]


def build_info() -> BuildInfo:
    """How this installation was built and what it runs on.

    Keys: ``version``, ``openmp`` (whether calls can use threads: False when
    the compiler had no OpenMP, and then every call runs on one thread),
    ``default_threads`` (threads used when ``num_threads`` is None) and
    ``simd`` (the kernel variant chosen for this CPU).

    >>> import fastsoftmax as fs
    >>> sorted(fs.build_info())
    ['default_threads', 'openmp', 'simd', 'version']
    """
    from . import _rows

    return {
        "version": __version__,
        "openmp": _rows.openmp_enabled(),
        "default_threads": _rows.default_threads(),
        "simd": _rows.simd_target(),
    }


def release_result_cache(keep_caching: bool = True) -> int:
    """Free the large result buffers kept for reuse; return the bytes freed.

    Results of 1 MiB and more are allocated from a small cache of freed
    result buffers (at most 4 buffers, 1 GiB in all), so that a hot loop does
    not pay for the page faults of a fresh allocation on every call.  With
    ``keep_caching=False`` the cache also stops keeping buffers from now on
    (the environment variable ``FASTSOFTMAX_RESULT_CACHE=0`` does that from
    the start).

    >>> import fastsoftmax as fs
    >>> fs.release_result_cache() >= 0
    True
    """
    from . import _rows

    return int(_rows.release_result_cache(bool(keep_caching)))


# ---- submodules loaded on first use (PEP 562) --------------------------------
# ``fs.special`` and ``fs.dask`` work after ``import fastsoftmax as fs``, yet
# importing fastsoftmax imports neither SciPy-style helpers nor Dask: each is
# imported the first time it is asked for.
_LAZY_SUBMODULES = ("special", "dask")


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")   # also sets the attribute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))


# help() and the docs show names and defaults, as NumPy's functions do (the
# annotations are for type checkers).
plain_signatures(*(value for name, value in globals().items() if name in __all__ and _isfunction(value)))
