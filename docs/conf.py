"""Sphinx configuration of the fastsoftmax documentation.

Build (from the repository root, with the docs extra installed):
    python -m sphinx -W --keep-going -b html docs build/docs-html
The API reference is taken from the numpydoc docstrings of the installed
package; the temperature and benchmark plots are drawn at build time, the
benchmark figures read from the README's table.
"""
import os
import sys

import fastsoftmax

DOCS = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(DOCS, "..", "README.md")

project = "fastsoftmax"
author = "the fastsoftmax developers"
copyright = "2026, the fastsoftmax developers"
release = fastsoftmax.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []

# The overloads in the source are for type checkers; the pages show the one
# call signature and the numpydoc parameter types.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_working_directory = DOCS


def _readme_benchmark_table():
    """The README's benchmark table, as reStructuredText (a list-table)."""

    with open(README, encoding="utf-8") as f:
        text = f.read()
    start = text.index("| case | fastsoftmax |")
    lines = []
    for line in text[start:].splitlines():
        if not line.startswith("|"):
            break
        lines.append([c.strip() for c in line.strip().strip("|").split("|")])
    rows = [lines[0]] + lines[2:]
    out = [".. list-table::", "   :header-rows: 1", "   :class: benchmarks", ""]
    for row in rows:
        out.append("   * - " + row[0])
        out += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(out)


def _fill_placeholders(app, docname, source):
    if "@README_BENCHMARK_TABLE@" in source[0]:
        source[0] = source[0].replace("@README_BENCHMARK_TABLE@", _readme_benchmark_table())


def setup(app):
    app.connect("source-read", _fill_placeholders)
