"""The standalone C check of the kernels (tests/c/*.c, issues 12 and 16),
built and run by tools/check_kernels.sh without Python in the loop: natively
(every kernel-table entry for every x86-64 variant this CPU has, switched
with fs_use_isa inside the check) and cross-compiled for aarch64 under
qemu-aarch64, where only the portable baseline exists."""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "check_kernels.sh")

# One group of cases (or more) per entry of the kernel table, in every variant and dtype.
ENTRY_GROUPS = ["random rows", "chunk_stats + chunk_write", "rows_where", "columns", "row_stats", "backward",
                "weighted_gap", "combine", "weighted_stats", "staged_rows"]

# The loss rows, once the kernel table has them (check_losses.c says when it has not).
LOSS_GROUPS = ["cross_entropy_row", "kl_div_row", "contrastive_row"]
NO_LOSS_ROWS = "loss rows: not in this kernel table"

pytestmark = pytest.mark.skipif(sys.platform == "win32" or shutil.which("bash") is None,
                                reason="tools/check_kernels.sh needs bash")


def run_check(target):
    proc = subprocess.run(["bash", SCRIPT, target], capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"tools/check_kernels.sh {target} exited {proc.returncode}:\n{output}"
    totals = re.findall(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert len(totals) == 1 and int(totals[0][0]) > 0 and totals[0][1] == "0", output
    variants = re.findall(r"^(\w+): (\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert variants and all(int(p) > 0 and f == "0" for _, p, f in variants), output
    assert "baseline" in {name for name, _, _ in variants}, output
    groups = re.findall(r"^(float32|float64)\s+(.+?)\s+(\d+) cases, (\d+) failed", proc.stdout, re.M)
    for entry in ENTRY_GROUPS + ([] if NO_LOSS_ROWS in proc.stdout else LOSS_GROUPS):
        runs = [(dtype, int(cases)) for dtype, name, cases, _ in groups if name.startswith(entry)]
        assert len(runs) == 2 * len(variants) and all(cases > 0 for _, cases in runs), \
            f"{entry}: {runs} for variants {[name for name, _, _ in variants]}\n{output}"
    return [name for name, _, _ in variants]


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler 'cc' on PATH")
def test_kernels_native():
    variants = run_check("native")
    assert set(variants) == expected_native_variants(), variants


def expected_native_variants():
    """The variants the dispatcher offers on this CPU (as fs_best_isa decides)."""
    if os.uname().machine != "x86_64" or not os.path.exists("/proc/cpuinfo"):
        return {"baseline"}
    with open("/proc/cpuinfo") as cpuinfo:
        flags = set(re.search(r"^flags\s*:(.*)$", cpuinfo.read(), re.M).group(1).split())
    if {"avx512f", "avx512dq", "avx512vl", "avx512bw"} <= flags:
        return {"baseline", "avx2", "avx512"}
    if {"avx2", "fma"} <= flags:
        return {"baseline", "avx2"}
    return {"baseline"}


def test_kernels_aarch64_under_qemu():
    missing = [tool for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not on PATH (Debian: apt-get install gcc-aarch64-linux-gnu qemu-user)")
    assert run_check("aarch64") == ["baseline"]
