"""The examples in the docstrings of every public module run and print what they say.

Each public function's examples live in the module that defines it: the
front ends (``fastsoftmax._api``, ``_training``, ``_sample``,
``fastsoftmax.special``, ``fastsoftmax.dask``) and the reference package with
its submodules.  They run under NumPy's default print options, set here
explicitly so that another test (or a user's setting) cannot change them.
"""
import doctest
import importlib
import importlib.util

import numpy as np
import pytest

FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS

MODULES = [
    "fastsoftmax",
    "fastsoftmax._api",
    "fastsoftmax._training",
    "fastsoftmax._sample",
    "fastsoftmax.special",
    "fastsoftmax.dask",
    "fastsoftmax.reference",
    "fastsoftmax.reference.forward",
    "fastsoftmax.reference.training",
    "fastsoftmax.reference.sample",
    "fastsoftmax.reference.special",
    # issue 19
    "fastsoftmax._linear",
    "fastsoftmax.reference.linear",
]

# Examples that print NumPy scalars, whose repr NumPy 1.x writes without the type
NUMPY2_REPRS = {"fastsoftmax.special"}


@pytest.fixture
def stable_printing():
    """NumPy's default print options, whatever was set before."""
    with np.printoptions(precision=8, threshold=1000, edgeitems=3, linewidth=75, suppress=False,
                         nanstr="nan", infstr="inf", sign="-", floatmode="maxprec", legacy=False):
        yield


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, stable_printing):
    if name == "fastsoftmax.dask" and importlib.util.find_spec("dask") is None:
        pytest.skip("needs dask")
    if name in NUMPY2_REPRS and np.lib.NumpyVersion(np.__version__) < "2.0.0":
        pytest.skip("NumPy 1.x prints scalars without their type")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no examples"


def test_every_public_function_has_an_example():
    import fastsoftmax

    functions = [name for name in fastsoftmax.__all__
                 if callable(getattr(fastsoftmax, name)) and not isinstance(getattr(fastsoftmax, name), type)]
    assert "softmax" in functions
    assert [name for name in functions if ">>>" not in (getattr(fastsoftmax, name).__doc__ or "")] == []
