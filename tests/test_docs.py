"""The examples in the README and in the docstrings run and print what they say."""
import doctest
import os

import pytest

import fastsoftmax
from fastsoftmax import _api

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


@pytest.mark.skipif(not os.path.exists(README), reason="README.md not next to tests/")
def test_readme_examples():
    result = doctest.testfile(README, module_relative=False, optionflags=FLAGS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("module", [fastsoftmax, _api], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0 and result.attempted > 0
