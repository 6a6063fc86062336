"""The developer tools are part of the build (issue 16): every tools/*.c
compiles against today's headers, every tools/*.sh parses, and the
pass-timing tool, built with the kernels, runs one short case and prints
figures that parse (what they say about speed is not checked)."""
import glob
import math
import os
import platform
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
CSRC = os.path.join(ROOT, "src", "fastsoftmax", "csrc")
# the flags tools/check_kernels.sh builds the kernels with, as far as they matter
FLAGS = ["-ffp-contract=fast", "-fno-math-errno", "-Wno-psabi", "-I", CSRC]
DISPATCH = ["-DFASTSOFTMAX_X86_DISPATCH"] if platform.machine() in ("x86_64", "AMD64") else []
# headers a tool may need from outside this tree: (header, what provides it)
OPTIONAL_HEADERS = {"qemu-plugin.h": "QEMU's plugin header (not packaged by Debian bookworm)"}

pytestmark = pytest.mark.skipif(sys.platform == "win32" or shutil.which("cc") is None,
                                reason="the tools are built with a C compiler 'cc' on a POSIX system")


def tool_sources():
    return sorted(os.path.basename(path) for path in glob.glob(os.path.join(TOOLS, "*.c")))


def compile_command(tool, output):
    """How the tool is built, as its own header comment says: a QEMU plugin
    is a shared object, the others are objects linked with the kernels."""
    source = os.path.join(TOOLS, tool)
    if tool.startswith("qemu_"):
        return ["cc", "-shared", "-fPIC", "-O2", source, "-o", output]
    return ["cc", "-O1", *FLAGS, *DISPATCH, "-c", source, "-o", output]


def missing_optional_header(output):
    for header, provider in OPTIONAL_HEADERS.items():
        if re.search(rf"{re.escape(header)}: No such file", output):
            return f"{header} not found: {provider}"
    return None


@pytest.mark.parametrize("tool", tool_sources())
def test_tool_compiles(tool, tmp_path):
    proc = subprocess.run(compile_command(tool, str(tmp_path / "out")), capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        reason = missing_optional_header(proc.stderr)
        if reason:
            pytest.skip(f"tools/{tool}: {reason}")
    assert proc.returncode == 0, f"tools/{tool} does not compile:\n{proc.stderr}"


def test_every_tool_is_compiled():
    # a new tool needs no change here, but the list must not come up empty by mistake
    assert {"pass_timing.c", "count_driver.c", "qemu_insn_count.c"} <= set(tool_sources())


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash on PATH")
@pytest.mark.parametrize("script", sorted(os.path.basename(p) for p in glob.glob(os.path.join(TOOLS, "*.sh"))))
def test_tool_script_parses(script):
    proc = subprocess.run(["bash", "-n", os.path.join(TOOLS, script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"tools/{script}: {proc.stderr}"


LINE = re.compile(r"^\s+(?P<variant>\w+)\s+(?P<dtype>float32|float64)(?P<figures>(?:\s+\w+ \S+)+)\s*$")
TIMED = ["stats", "row_stats", "write", "softmax", "log_softmax", "logsumexp"]


@pytest.fixture(scope="module")
def pass_timing(tmp_path_factory):
    """tools/pass_timing.c built with the kernels: the portable baseline alone
    keeps the build short (the variants are built and checked by
    tools/check_kernels.sh); the kernels' files are whatever
    src/fastsoftmax/csrc holds."""
    exe = str(tmp_path_factory.mktemp("pass_timing") / "pass_timing")
    sources = [os.path.join(TOOLS, "pass_timing.c"), *sorted(glob.glob(os.path.join(CSRC, "*.c")))]
    build = subprocess.run(["cc", "-O1", *FLAGS, *sources, "-o", exe, "-lm"], capture_output=True, text=True,
                           timeout=300)
    assert build.returncode == 0, f"tools/pass_timing.c does not build with the kernels:\n{build.stderr}"
    return exe


def test_pass_timing_runs_one_short_case(pass_timing):
    proc = subprocess.run([pass_timing, "4", "64", "3"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"pass_timing exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    lines = proc.stdout.splitlines()
    assert lines and lines[0].startswith("row kernels, 4 rows x 64"), proc.stdout
    rows = [LINE.match(line) for line in lines[1:]]
    assert rows and all(rows), f"unexpected lines:\n{proc.stdout}"
    assert {(m["variant"], m["dtype"]) for m in rows} == {("baseline", "float32"), ("baseline", "float64")}
    for m in rows:
        pairs = m["figures"].split()
        names, values = pairs[0::2], [float(v) for v in pairs[1::2]]
        assert names == TIMED, m.group(0)
        assert all(math.isfinite(v) and v >= 0 for v in values), m.group(0)


@pytest.mark.parametrize("arguments", [["0"], ["4", "-1"], ["4", "64", "0"], ["1", "2", "3", "4"]])
def test_pass_timing_rejects_bad_arguments(pass_timing, arguments):
    proc = subprocess.run([pass_timing, *arguments], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "usage" in proc.stderr and proc.stdout == ""
