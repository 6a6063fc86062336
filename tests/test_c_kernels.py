"""The standalone C check of the kernels (tests/c/check_kernels.c, issue 12),
built and run by tools/check_kernels.sh without Python in the loop: natively
(every x86-64 variant this CPU has) and cross-compiled for aarch64 under
qemu-aarch64, where only the portable baseline exists."""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "check_kernels.sh")

pytestmark = pytest.mark.skipif(sys.platform == "win32" or shutil.which("bash") is None,
                                reason="tools/check_kernels.sh needs bash")


def run_check(target):
    proc = subprocess.run(["bash", SCRIPT, target], capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"tools/check_kernels.sh {target} exited {proc.returncode}:\n{output}"
    totals = re.findall(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert totals and all(int(p) > 0 and f == "0" for p, f in totals), output


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler 'cc' on PATH")
def test_kernels_native():
    run_check("native")


def test_kernels_aarch64_under_qemu():
    missing = [tool for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not on PATH (Debian: apt-get install gcc-aarch64-linux-gnu qemu-user)")
    run_check("aarch64")
