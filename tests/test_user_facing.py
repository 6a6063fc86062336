"""What a user reads: error messages, the warning of a build without OpenMP,
the demo and the command-line help."""
import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import __main__ as cli
from fastsoftmax import _api
from util import FUNCTIONS

ALL = list(FUNCTIONS)


def call(name, *args, **kwargs):
    return FUNCTIONS[name][0](*args, **kwargs)


@pytest.mark.parametrize("name", ALL)
def test_dtype_named_once(name):
    with pytest.raises(TypeError) as info:
        call(name, np.array(["abc"]))
    message = str(info.value)
    assert f"{name}(): unsupported input dtype <U3; supported are float16, bfloat16 (ml_dtypes), float32" in message
    assert message.count("<U3") == 1
    with pytest.raises(TypeError, match=r"dtype datetime64\[D\]; supported"):
        call(name, np.array(["2020-01-01"], "datetime64[D]"))
    out = np.zeros((2,) if name == "logsumexp" else (2, 3), np.float32)
    with pytest.raises(TypeError, match=r"out has dtype float32, the result has dtype float64$"):
        call(name, np.zeros((2, 3)), out=out)
    with pytest.raises(TypeError, match=r"out has dtype >f8, the result has dtype float64$"):
        call(name, np.zeros((2, 3)), out=out.astype(">f8"))


@pytest.mark.parametrize("name", ALL)
def test_none_is_not_an_array(name):
    with pytest.raises(TypeError, match=rf"^{name}\(\): x is None, not an array"):
        call(name, None)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("threads,exc", [(2.0, TypeError), ("4", TypeError), (True, TypeError), (0, ValueError)])
def test_num_threads_type_and_value_errors(name, threads, exc):
    x = np.zeros((3, 4), np.float32)              # a call the compiled fast path would take
    with pytest.raises(exc, match=rf"{name}\(\): num_threads must be None or an int >= 1, got "):
        call(name, x, num_threads=threads)


@pytest.fixture
def serial_build(monkeypatch):
    """The Python side of a build without OpenMP, before its first warning."""
    monkeypatch.setattr(_api, "_OPENMP", False)
    monkeypatch.setattr(_api, "_warned_no_openmp", False)


@pytest.mark.parametrize("name", ALL)
def test_no_openmp_warns_once_when_threads_are_asked_for(serial_build, name):
    x = [[1.0, 2.0, 3.0]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call(name, x, num_threads=1)
        call(name, x)
        assert caught == []
        first = call(name, x, num_threads=4)
        call(name, x, num_threads=2)
        call(name, np.zeros((2, 2)), num_threads=8)
    assert [w.category for w in caught] == [RuntimeWarning]
    text = str(caught[0].message)
    assert "num_threads=4 has no effect" in text and "built without OpenMP" in text
    assert "build_info()['openmp']" in text and "libgomp" in text and "reinstall" in text
    assert caught[0].filename == os.path.abspath(__file__)        # points at the caller
    np.testing.assert_array_equal(first, call(name, x))


def test_openmp_build_does_not_warn():
    if not fs.build_info()["openmp"]:
        pytest.skip("this build has no OpenMP")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fs.softmax(np.zeros((2, 3)), num_threads=2)
        fs.softmax([[1.0, 2.0]], num_threads=2)


def test_demo_wording():
    out = io.StringIO()
    cli.demo(out)
    first = out.getvalue().splitlines()[0]
    assert f"threads by default: {fs.build_info()['default_threads']}," in first
    assert "default threads" not in first


def _help(*args):
    proc = subprocess.run([sys.executable, "-m", "fastsoftmax", *args, "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help_texts():
    main = _help()
    assert "``" not in main and "demo" in main and "bench" in main
    bench = _help("bench")
    description = bench.split("\n\n")[1]
    assert "Time fastsoftmax side by side" in description
    assert "``" not in bench and "copy floor" in bench
