"""The release artefacts: ``python -m build`` gives an sdist and a wheel that
``twine check`` accepts; the wheel holds no sources and the sdist everything
to build and test; the wheel installs into fresh virtual environments, with
the current NumPy and with the oldest one supported, and passes the tests
there; a build without OpenMP says so.

Minutes of building and installing (the wheel is built once for all of it):
these tests carry the ``packaging`` mark, so ``python -m pytest -m "not
packaging"`` leaves them out.  They need the ``build`` and ``twine`` packages
(the test extra) and a repository checkout with its ``pyproject.toml``.
"""
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile

import pytest

pytestmark = pytest.mark.packaging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The oldest NumPy that has wheels for each Python: the floor of `numpy>=1.25`
# where that has wheels, otherwise the first release that supports the Python.
OLDEST_NUMPY = {(3, 9): "1.25.*", (3, 10): "1.25.*", (3, 11): "1.25.*", (3, 12): "1.26.*", (3, 13): "2.1.*",
                (3, 14): "2.3.*"}
# Test-extra packages that only the tests left out in the fresh environments use.
PARENT_ONLY = {"build", "twine", "sphinx", "numpydoc", "matplotlib"}
# What the fresh environments run: the shipped tests, less those that rebuild
# the package or compile the C sources themselves.
CHILD_PYTEST = ["-m", "not packaging and not docs", "--ignore=tests/test_c_kernels.py", "-p", "no:cacheprovider",
                "-q"]

if not os.path.exists(os.path.join(ROOT, "pyproject.toml")):
    pytest.skip("needs the repository checkout (pyproject.toml)", allow_module_level=True)
for _module in ("build", "twine"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(f"needs the {_module} package (pip install '.[test]')", allow_module_level=True)


def _run(cmd, timeout=900, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{output[-6000:]}"
    return output


def _tracked_files():
    """Files of the checkout as git sees them (None outside a git checkout)."""
    if shutil.which("git") is None:
        return None
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout:
        return None
    return {p for p in proc.stdout.split("\0") if p and os.path.isfile(os.path.join(ROOT, p))}


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist, wheel (built from the sdist, as `python -m build` does) and the build log."""
    out = tmp_path_factory.mktemp("dist")
    log = _run([sys.executable, "-m", "build", "--outdir", str(out), ROOT])
    sdists = sorted(out.glob("*.tar.gz"))
    wheels = sorted(out.glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, (sdists, wheels, log[-3000:])
    return {"sdist": sdists[0], "wheel": wheels[0], "log": log}


@pytest.fixture(scope="module")
def unpacked_sdist(dist, tmp_path_factory):
    where = tmp_path_factory.mktemp("sdist")
    with tarfile.open(dist["sdist"]) as tar:
        try:
            tar.extractall(where, filter="data")
        except TypeError:                  # a Python without extraction filters
            tar.extractall(where)
    (top,) = where.iterdir()
    return top


def test_build_is_clean(dist):
    log = dist["log"]
    assert "absent from the `packages` configuration" not in log and "is absent from" not in log
    assert not re.search(r"warning: no (previously-included )?(files|directories) found matching", log), log
    assert "Successfully built" in log


def test_wheel_ships_no_sources(dist):
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = whl.namelist()
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    sources = [n for n in names if n.endswith((".pyx", ".pxd", ".c", ".h", ".cpp"))]
    assert sources == []
    assert not any(n.startswith(("tests/", "docs/", "tools/", "benchmarks/")) for n in names)
    for needed in ("fastsoftmax/py.typed", "fastsoftmax/_rows.pyi", "fastsoftmax/_typing.py",
                   "fastsoftmax/bench_models/softmax-2d-f32.tflite"):
        assert needed in names
    assert any(re.match(r"fastsoftmax/_rows\..*(\.so|\.pyd)$", n) for n in names), names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Requires-Dist: numpy>=1.25" in metadata
    assert "License-Expression: BSD-3-Clause" in metadata


def test_sdist_ships_every_tracked_file(dist, unpacked_sdist):
    shipped = {os.path.relpath(os.path.join(d, f), unpacked_sdist)
               for d, _, files in os.walk(unpacked_sdist) for f in files}
    tracked = _tracked_files()
    if tracked is None:
        tracked = {p for p in shipped if not p.startswith("src/fastsoftmax.egg-info")}
        assert {"setup.py", "src/fastsoftmax/_rows.pyx", "tests/conftest.py", "tools/fuzz.py",
                "docs/conf.py", "benchmarks/test_bench.py"} <= tracked
    missing = sorted(tracked - shipped - {".gitignore"})
    assert missing == [], f"MANIFEST.in leaves out {missing}"
    generated = [p for p in shipped if p.endswith((".so", ".pyd", ".pyc")) or p == "src/fastsoftmax/_rows.c"]
    assert generated == []


def test_twine_check(dist):
    output = _run([sys.executable, "-m", "twine", "check", "--strict", str(dist["sdist"]), str(dist["wheel"])])
    assert output.count("PASSED") == 2, output


def _child_requirements():
    """The test extra of the installed fastsoftmax, less what only the parent run uses."""
    from packaging.requirements import Requirement      # a dependency of build

    requirements = []
    for spec in importlib.metadata.requires("fastsoftmax") or []:
        req = Requirement(spec)
        in_test_extra = (req.marker is not None and req.marker.evaluate({"extra": "test"})
                         and not req.marker.evaluate({"extra": ""}))
        if in_test_extra and req.name.lower() not in PARENT_ONLY:
            requirements.append(f"{req.name}{req.specifier}")
    assert any(r.startswith("pytest") for r in requirements), requirements
    return requirements


def _fresh_venv(where):
    _run([sys.executable, "-m", "venv", str(where)])
    bindir = "Scripts" if os.name == "nt" else "bin"
    return os.path.join(str(where), bindir, "python")


def _numpy_cases():
    oldest = OLDEST_NUMPY.get(sys.version_info[:2])
    return [pytest.param(None, id="numpy-latest"),
            pytest.param(oldest, id=f"numpy-{oldest}", marks=pytest.mark.skipif(
                oldest is None, reason=f"no oldest NumPy known for Python {sys.version_info[:2]}"))]


@pytest.mark.parametrize("numpy_spec", _numpy_cases())
def test_wheel_passes_the_tests_in_a_fresh_venv(dist, unpacked_sdist, tmp_path, numpy_spec):
    python = _fresh_venv(tmp_path / "venv")
    pins = ["--only-binary", "numpy", f"numpy=={numpy_spec}"] if numpy_spec else []
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(dist["wheel"]),
          *_child_requirements(), *pins])
    where = _run([python, "-c", "import fastsoftmax, numpy; print(fastsoftmax.__file__); print(numpy.__version__)"],
                 cwd=tmp_path).split()
    assert where[0].startswith(str(tmp_path / "venv")), where       # the wheel, not the checkout
    if numpy_spec:
        assert where[1].startswith(numpy_spec.rstrip("*")), where
    output = _run([python, "-m", "pytest", *CHILD_PYTEST, "tests"], cwd=unpacked_sdist, timeout=1800)
    assert re.search(r"\d+ passed", output) and " failed" not in output, output[-3000:]


SERIAL_CHECK = textwrap.dedent("""
    import json, warnings
    import numpy as np
    import fastsoftmax as fs
    x = np.random.default_rng(0).standard_normal((64, 700)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = fs.softmax(x, num_threads=4)              # an array the compiled fast path takes
        again = fs.log_softmax(x, num_threads=2)
        single = fs.softmax(x, num_threads=1)
    print(json.dumps({
        "openmp": fs.build_info()["openmp"], "default_threads": fs.build_info()["default_threads"],
        "warnings": [[w.category.__name__, str(w.message)] for w in caught],
        "same": bool(np.array_equal(fast, single)),
        "close": bool(np.allclose(fast, fs.reference.softmax(x), rtol=1e-5, atol=0)),
    }))
""")


def test_build_without_openmp_says_so_and_warns_once(tmp_path):
    source = tmp_path / "src"
    tracked = _tracked_files()
    if tracked is None:
        pytest.skip("needs a git checkout to copy the sources from")
    for rel in tracked:
        os.makedirs(source / os.path.dirname(rel), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), source / rel)
    env = dict(os.environ, FASTSOFTMAX_DISABLE_OPENMP="1", FASTSOFTMAX_DISABLE_DISPATCH="1")
    log = _run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "wheel"),
                str(source)], env=env)
    assert "OpenMP disabled" in log
    target = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
          *map(str, (tmp_path / "wheel").glob("*.whl"))])
    env = dict(os.environ, PYTHONPATH=str(target))
    report = json.loads(_run([sys.executable, "-c", SERIAL_CHECK], env=env, cwd=tmp_path).splitlines()[-1])
    assert report["openmp"] is False and report["default_threads"] == 1
    assert [w[0] for w in report["warnings"]] == ["RuntimeWarning"], report
    assert "num_threads=4 has no effect" in report["warnings"][0][1] and "without OpenMP" in report["warnings"][0][1]
    assert report["same"] and report["close"]
