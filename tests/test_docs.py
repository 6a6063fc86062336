"""The examples in the README and in the docstrings run and print what they say."""
import doctest
import os

import pytest

import fastsoftmax
from fastsoftmax import _api

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
README = os.path.join(ROOT, "README.md")
DOCS = os.path.join(ROOT, "docs")
DOC_PAGES = sorted(os.path.relpath(os.path.join(d, f), DOCS) for d, _, files in os.walk(DOCS)
                   for f in files if f.endswith(".rst")) if os.path.isdir(DOCS) else []
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


@pytest.mark.skipif(not os.path.exists(README), reason="README.md not next to tests/")
def test_readme_examples():
    result = doctest.testfile(README, module_relative=False, optionflags=FLAGS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("module", [fastsoftmax, _api], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=FLAGS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("page", DOC_PAGES)
def test_documentation_examples(page):
    result = doctest.testfile(os.path.join(DOCS, page), module_relative=False, optionflags=FLAGS)
    assert result.failed == 0
