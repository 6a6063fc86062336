"""Names used in the annotations of the public functions.

Only for type checkers and readers: nothing here runs during a call.  The
result dtype follows the input's: float16, float32 and float64 keep theirs;
Python numbers, bool and integer arrays give float64.  A 0-d input gives a
NumPy scalar where the annotations say array, as NumPy's own ufuncs do (the
static type of an array does not carry its number of dimensions); the scalar
supports the same arithmetic, ``.shape``, ``.dtype`` and ``float()``.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple, TypedDict, TypeVar, Union

import numpy as np
from numpy.typing import NDArray

__all__ = ["Axis", "Temperature", "Threads", "BuildInfo", "FloatT", "Float64Like", "ArrayT"]

#: ``axis``: an int, a tuple of ints (reduced jointly) or None (every axis).
Axis = Union[int, Tuple[int, ...], None]

#: ``temperature``: a real scalar (an int is accepted where float is).
Temperature = Union[float, np.floating[Any], np.integer[Any]]

#: ``num_threads``: None for the OpenMP default, or a thread count.
Threads = Union[int, np.integer[Any], None]

#: Input dtypes that the result keeps.
FloatT = TypeVar("FloatT", np.float16, np.float32, np.float64)

#: Inputs whose result is float64: bool and integer arrays, and Python numbers
#: in flat or nested lists (a Python float is a float64 already).
Float64Like = Union[NDArray[Union[np.bool_, np.integer[Any]]], Sequence[float], Sequence[Sequence[float]]]

#: An ``out=`` array: the call returns it, with its own type.
ArrayT = TypeVar("ArrayT", bound=NDArray[Any])


class BuildInfo(TypedDict):
    """What :func:`fastsoftmax.build_info` returns (a plain dict at run time).

    Attributes
    ----------
    version : str
        The fastsoftmax version.
    openmp : bool
        Whether calls can use threads (False for a build without OpenMP).
    default_threads : int
        Threads a call uses when ``num_threads`` is None.
    simd : str
        The kernel variant chosen for this CPU.
    """

    version: str
    openmp: bool
    default_threads: int
    simd: str
