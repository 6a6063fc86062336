"""Every compiled instruction-set variant (AVX-512, AVX2+FMA, baseline) passes
the equivalence, special-value and accuracy tests: the variants below the
best one this CPU supports are forced with FASTSOFTMAX_FORCE_ISA in a
subprocess."""
import os
import subprocess
import sys

import pytest

import fastsoftmax as fs

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("isa", ["baseline", "avx2"])
def test_forced_variant_passes_the_core_tests(isa, tmp_path):
    env = dict(os.environ, FASTSOFTMAX_FORCE_ISA=isa)
    probe = subprocess.run([sys.executable, "-c", "import fastsoftmax; print(fastsoftmax.build_info()['simd'])"],
                           capture_output=True, text=True, env=env, check=True)
    simd = probe.stdout.strip()
    if isa == "avx2" and "AVX2" not in simd:
        pytest.skip(f"this CPU/build has no AVX2 variant ({simd})")
    if isa == "baseline" and fs.build_info()["simd"] == simd and "baseline" not in simd:
        pytest.skip("no runtime dispatch in this build")
    files = [os.path.join(HERE, f) for f in ("test_equivalence.py", "test_special_values.py", "test_accuracy.py")]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *files],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, f"{simd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
