"""Sphinx configuration of the fastsoftmax documentation.

Build (from the repository root, with the docs extra installed):
    python -m sphinx -W --keep-going -b html docs build/docs-html
The API reference is taken from the numpydoc docstrings of the installed
package; the temperature and benchmark plots are drawn at build time, the
benchmark figures read from benchmark_results.md (written by
``taskset -c 0 python benchmarks/readme_table.py --write``).
"""
import os
import sys

import fastsoftmax

DOCS = os.path.dirname(os.path.abspath(__file__))
BENCHMARK_RESULTS = os.path.join(DOCS, "benchmark_results.md")

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
exclude_patterns = ["_build", "screenshots"]
# fastsoftmax.torch's page documents it whether or not PyTorch is installed
# (PyTorch is an optional extra, not one of the docs').
try:
    import torch  # noqa: F401
except ImportError:
    autodoc_mock_imports = ["torch"]

# The theme of NumPy, SciPy and pandas: a fluid layout, so wide code blocks and
# tables use the width of the window.
html_theme = "pydata_sphinx_theme"
html_title = f"fastsoftmax {release}"
html_static_path = ["_static"]
html_css_files = ["fastsoftmax.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    # The guide's pages are short: without the right-hand table of contents,
    # their code blocks get the width they need at 1280 px.
    "secondary_sidebar_items": {"guide/*": [], "[!g]*": ["page-toc", "sourcelink"]},
}
# The pages outside the user guide have no section to navigate: no left sidebar.
html_sidebars = {page: [] for page in ("index", "quickstart", "install", "api", "benchmarks", "development")}

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


def _benchmark_table():
    """The stored benchmark figures, as reStructuredText: the measurement note,
    then a list-table of time per call with each peer's slowdown in brackets."""

    from fastsoftmax import bench

    with open(BENCHMARK_RESULTS, encoding="utf-8") as f:
        text = f.read()
    note = text[:text.index("| case |")].strip()
    results = bench.parse_table(text)
    peers = [p for p in bench.PEERS if any(p in r["times"] for r in results)]
    names = {"numpy": "NumPy recipe", "scipy": "scipy.special", "torch": "PyTorch",
             "onnxruntime": "ONNX Runtime", "litert": "LiteRT"}
    out = [note.replace("`", "``"), "", ".. list-table::", "   :header-rows: 1", "   :class: benchmarks", "",
           "   * - case", "     - fastsoftmax"]
    out += [f"     - {names[p]}" for p in peers] + ["     - copy floor"]
    for r in results:
        t = r["times"]
        out.append(f"   * - {r['case'].label}")
        out.append(f"     - {bench.format_time(t['fastsoftmax'])}")
        out += [f"     - {bench.format_time(t[p])} ({t[p] / t['fastsoftmax']:.1f}x)" if p in t else "     - \\-"
                for p in peers]
        out.append(f"     - {bench.format_time(t['copy'])}")
    return "\n".join(out)


def _fill_placeholders(app, docname, source):
    if "@BENCHMARK_TABLE@" in source[0]:
        # re-read the page when the stored figures change (a fresh output
        # folder also redraws its chart)
        app.env.note_dependency(BENCHMARK_RESULTS)
        source[0] = source[0].replace("@BENCHMARK_TABLE@", _benchmark_table())


def setup(app):
    app.connect("source-read", _fill_placeholders)
