"""The Sphinx site in docs/ builds with warnings as errors (``docs`` mark: it
needs sphinx, numpydoc, the PyData theme and matplotlib, the docs extra)."""
import importlib.util
import inspect
import os
import subprocess
import sys

import pytest

import fastsoftmax

pytestmark = pytest.mark.docs

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs")


@pytest.mark.skipif(not os.path.exists(os.path.join(DOCS, "conf.py")), reason="docs/ not next to tests/")
@pytest.mark.skipif(any(importlib.util.find_spec(m) is None
                        for m in ("sphinx", "numpydoc", "pydata_sphinx_theme", "matplotlib")),
                    reason="needs sphinx, numpydoc, pydata-sphinx-theme and matplotlib (pip install '.[docs]')")
def test_docs_build_without_warnings(tmp_path):
    html = tmp_path / "html"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", DOCS, str(html),
                           "-d", str(tmp_path / "doctrees")], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    api = (html / "api.html").read_text(encoding="utf-8")
    public = [name for name in fastsoftmax.__all__ if not name.startswith("_")
              and not inspect.ismodule(getattr(fastsoftmax, name))]
    public += [f"reference.{name}" for name in fastsoftmax.reference.__all__]
    assert {"softmax", "log_softmax", "logsumexp", "build_info", "BuildInfo"} <= set(public)
    undocumented = [name for name in public if f'id="fastsoftmax.{name}"' not in api]
    assert not undocumented, f"add {undocumented} to docs/api.rst"
    assert "num_threads" in api and "Parameters" in api          # numpydoc sections rendered
    images = {p.name for p in (html / "_images").iterdir()}
    assert {"temperature-1.png", "benchmarks-1.png"} <= images, images
    bench = (html / "benchmarks.html").read_text(encoding="utf-8")
    assert "softmax float32 (64, 50257)" in bench and "@BENCHMARK_TABLE@" not in bench
    assert "pydata-sphinx-theme" in bench or "pydata_sphinx_theme" in bench      # the theme in use
    for page in ("quickstart", "guide/index", "guide/scipy", "guide/half_precision", "development"):
        assert (html / f"{page}.html").exists(), page


def test_readme_links_resolve():
    """Every relative link of the README names a file of the repository."""
    import re

    root = os.path.dirname(DOCS)
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        targets = re.findall(r"\]\(([^)#:]+)\)", f.read())
    assert "docs/quickstart.rst" in targets
    missing = [t for t in targets if not os.path.exists(os.path.join(root, t))]
    assert not missing, missing
