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


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "benchmarks", "readme_table.py")),
                    reason="benchmarks/ not next to tests/")
def test_readme_benchmark_block_is_the_scripts():
    """The README's speed table sits between the markers that
    benchmarks/readme_table.py --write replaces, one row per case it times."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_table", os.path.join(ROOT, "benchmarks", "readme_table.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with open(README, encoding="utf-8") as f:
        text = f.read()
    assert text.count(script.START) == 1 and text.count(script.END) == 1
    block = text[text.index(script.START):text.index(script.END)]
    rows = [line.split("|")[1].strip() for line in block.splitlines() if line.startswith("| ")][1:]
    assert rows == [c.label.replace(" float32", "") for c in script.README_CASES]
    assert "Measured on " in block and " CPUs" in block          # names the machine
    assert script.replace_block(text, "new") == text.replace(block + script.END, script.START + "\nnew\n" + script.END)
    with pytest.raises(SystemExit, match="no <!-- benchmark-table:start -->"):
        script.replace_block("no markers here", "new")
    assert script._amd_core("25", "17") == "Zen 4" and script._amd_core("25", "1") == "Zen 3"
    assert script._amd_core("26", "2") == "Zen 5" and script._amd_core("6", "85") == ""
