"""Names used in the annotations of the public functions.

Only for type checkers and readers: nothing here runs during a call.  The
result dtype follows the input's: float16, float32 and float64 keep theirs;
Python numbers, bool and integer arrays give float64.  A 0-d input gives a
NumPy scalar where the annotations say array, as NumPy's own ufuncs do (the
static type of an array does not carry its number of dimensions); the scalar
supports the same arithmetic, ``.shape``, ``.dtype`` and ``float()``.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Literal, Sequence, Tuple, TypedDict, TypeVar, Union

import numpy as np
from numpy.typing import NDArray

__all__ = ["Axis", "Temperature", "Temperatures", "RealScalar", "Threads", "RandomSource", "BuildInfo", "FloatT", "Float64Like",
           "ArrayT", "FloatResult", "LossReduction", "KLReduction", "AnyLossReduction", "AnyKLReduction",
           "plain_signatures"]

#: ``axis``: an int, a tuple of ints (reduced jointly) or None (every axis).
Axis = Union[int, Tuple[int, ...], None]

#: ``temperature``: a real scalar (an int is accepted where float is).
Temperature = Union[float, np.floating[Any], np.integer[Any]]

#: ``temperature`` where one per row is accepted: a real scalar, or an array
#: of them that broadcasts to the batch shape (the input's shape without the
#: reduced axes).
Temperatures = Union[Temperature, NDArray[Union[np.floating[Any], np.integer[Any]]], Sequence[float],
                     Sequence[Sequence[float]]]

#: A real scalar argument other than the temperature (``top_p``, ``min_p``,
#: ``label_smoothing``): a Python or NumPy number, bool excluded at run time.
RealScalar = Union[float, np.floating[Any], np.integer[Any]]

#: ``num_threads``: None for the OpenMP default, or a thread count.
Threads = Union[int, np.integer[Any], None]

#: ``rng`` of :func:`fastsoftmax.sample`: a Generator, a seed, or None for a
#: fresh unseeded generator.
RandomSource = Union[np.random.Generator, int, np.integer[Any], None]

#: ``reduction`` of cross_entropy and contrastive_loss that gives one number.
LossReduction = Literal["mean", "sum"]

#: ``reduction`` of kl_div that gives one number.
KLReduction = Literal["batchmean", "sum"]

#: Every ``reduction`` of cross_entropy and contrastive_loss.
AnyLossReduction = Literal["mean", "sum", "none"]

#: Every ``reduction`` of kl_div.
AnyKLReduction = Literal["batchmean", "sum", "none"]

#: Input dtypes that the result keeps.
FloatT = TypeVar("FloatT", np.float16, np.float32, np.float64)

#: Inputs whose result is float64: bool and integer arrays, and Python numbers
#: in flat or nested lists (a Python float is a float64 already).
Float64Like = Union[NDArray[Union[np.bool_, np.integer[Any]]], Sequence[float], Sequence[Sequence[float]]]

#: An ``out=`` array: the call returns it, with its own type.
ArrayT = TypeVar("ArrayT", bound=NDArray[Any])

#: A floating result whose dtype or number of dimensions is not known
#: statically: an array, or a NumPy scalar where every axis is reduced.
FloatResult = Union[NDArray[np.floating[Any]], np.floating[Any]]


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


def plain_signatures(*functions: Callable[..., Any]) -> None:
    """Give each public function the signature its documentation shows:
    parameter names, kinds and defaults, without the annotations.

    The annotations are for type checkers (the overloads carry the precise
    types); at run time they are strings of the aliases above, which
    ``help()`` would print as they are (``axis: 'Axis' = -1, ... -> 'Any'``).
    ``help()``, ``inspect.signature`` and Sphinx then read, as NumPy's
    functions do, ``softmax(x, axis=-1, *, temperature=1.0, ...)``."""
    for function in functions:
        signature = inspect.signature(function)
        function.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()],
            return_annotation=inspect.Signature.empty)
