"""The public API is typed: ``mypy --strict`` accepts user code that calls every
public function (tests/typing_usage.py), and the types it claims hold at run time."""
import ast
import importlib.util
import inspect
import os
import subprocess
import sys

import pytest

import fastsoftmax
import typing_usage

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "typing_usage.py")


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_user_code_passes_mypy_strict(tmp_path):
    env = dict(os.environ, MYPY_CACHE_DIR=str(tmp_path / "mypy-cache"))
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", SCRIPT],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout


# Calls that mypy --strict must reject: every string option is a Literal.
REJECTED = """\
import numpy as np
import fastsoftmax as fs

x = np.zeros((4, 5))
labels = np.zeros(4, np.int64)
fs.cross_entropy(x, labels, reduction="avg")
fs.cross_entropy(x, labels, reduction="avg", return_grad=True)
fs.kl_div(x, x, reduction="mean")
fs.contrastive_loss(np.eye(4), reduction="batchmean")
fs.softmax(x, temperature="hot")
"""


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_strict_rejects_unknown_options(tmp_path):
    script = tmp_path / "rejected.py"
    script.write_text(REJECTED)
    env = dict(os.environ, MYPY_CACHE_DIR=str(tmp_path / "mypy-cache"))
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    flagged = {int(line.split(":")[1]) for line in proc.stdout.splitlines() if ": error:" in line}
    assert flagged == {6, 7, 8, 9, 10}, proc.stdout[-3000:]


def test_help_shows_the_documented_signatures():
    """help() shows names and defaults, as the docs do: no annotation strings
    (``'Axis'``, ``-> 'Any'``) of the aliases the type checkers read."""
    import pydoc

    from fastsoftmax import dask, special

    text = pydoc.render_doc(fastsoftmax.softmax, renderer=pydoc.plaintext)
    assert ("softmax(x, axis=-1, *, temperature=1.0, where=None, out=None, num_threads=None, dtype=None)"
            in text)
    for module in (fastsoftmax, special, dask):
        for name in getattr(module, "__all__"):
            function = getattr(module, name)
            if inspect.isfunction(function):
                signature = str(inspect.signature(function))
                assert "'" not in signature.replace("'mean'", "").replace("'batchmean'", ""), (name, signature)
                assert "->" not in signature and ":" not in signature, (name, signature)


@pytest.mark.parametrize("check", typing_usage.CHECKS, ids=lambda f: f.__name__)
def test_claimed_types_hold_at_run_time(check):
    check()


def _public_functions():
    names = set()
    for name in fastsoftmax.__all__:
        obj = getattr(fastsoftmax, name)
        if inspect.isfunction(obj):
            names.add(name)
        elif inspect.ismodule(obj):
            names |= {f"{name}.{sub}" for sub in obj.__all__ if inspect.isfunction(getattr(obj, sub))}
    return names


def _called_in_script():
    """``fs.<name>`` and ``fs.<module>.<name>`` calls in the user script."""
    called = set()
    for node in ast.walk(ast.parse(open(SCRIPT, encoding="utf-8").read())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            parts, target = [node.func.attr], node.func.value
            while isinstance(target, ast.Attribute):
                parts.insert(0, target.attr)
                target = target.value
            if isinstance(target, ast.Name) and target.id == "fs":
                called.add(".".join(parts))
    return called


def test_user_code_calls_every_public_function():
    public = _public_functions()
    assert {"softmax", "log_softmax", "logsumexp", "build_info", "reference.softmax"} <= public
    missing = public - _called_in_script()
    assert not missing, f"add a check_<name> section to tests/typing_usage.py for {sorted(missing)}"
    assert len(set(typing_usage.CHECKS)) == len(typing_usage.CHECKS)


def test_build_info_is_its_typed_dict():
    info = fastsoftmax.build_info()
    assert set(info) == set(fastsoftmax.BuildInfo.__annotations__)
    for key, kind in {"version": str, "openmp": bool, "default_threads": int, "simd": str}.items():
        assert type(info[key]) is kind, key
