"""The choice of instruction-set variant (csrc/core.c): by speed, not only by
feature bits.  At first use the kernels time each eligible variant's
exp-sum pass, for float32 and float64 apart, and keep the widest one unless
a narrower one is clearly (10%) faster: a CPU with one 512-bit FMA pipe that
lowers its clock for AVX-512 gets more from AVX2.  ``_rows._pick_isa`` is that rule alone, on given timings;
``FASTSOFTMAX_FORCE_ISA`` overrides it; ``build_info()["simd"]`` says which
variant runs and why.  The variants' results may differ in the last bits,
within the accuracy contract (tests/test_isa_variants.py)."""
import re

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _rows, reference
from util import ISA_WORDS, ISAS, assert_close, logits, run_python, variant_in_use


def available():
    """The variants this CPU and build have, widest first."""
    previous, names = variant_in_use(), []
    try:
        for name in ISAS:
            try:
                _rows._use_isa(name)
                names.append(name)
            except ValueError:
                pass
    finally:
        _rows._use_isa(previous)
    return names


@pytest.mark.parametrize("costs, widest, want", [
    ({"avx512": 0.183, "avx2": 0.143}, "avx512", "avx2"),     # one 512-bit FMA pipe: AVX2 28% faster
    ({"avx512": 0.231, "avx2": 0.346}, "avx512", "avx512"),   # Zen 4: AVX-512 1.5x faster
    ({"avx512": 0.200, "avx2": 0.190}, "avx512", "avx512"),   # within the margin: the widest stays
    ({"avx512": 0.200, "avx2": 0.181}, "avx512", "avx2"),     # just past it
    ({"avx512": 0.200}, "avx512", "avx512"),                  # AVX2 not timed
    ({"avx512": 0.0, "avx2": 0.1}, "avx512", "avx512"),       # AVX-512 not timed: no comparison
    ({"avx2": 0.3, "baseline": 0.01}, "avx2", "avx2"),        # the baseline is never chosen over AVX2
    ({"baseline": 1.0}, "baseline", "baseline"),
    ({"avx512": 0.5, "avx2": 0.3}, "avx2", "avx2"),           # nothing wider than the CPU has
])
def test_pick_rule(costs, widest, want):
    assert _rows._pick_isa(costs, widest) == want


def test_pick_rule_rejects_unknown_widest():
    with pytest.raises(ValueError, match="_pick_isa: widest must be one of"):
        _rows._pick_isa({}, "sse9")


def test_auto_returns_to_the_timed_choice_and_says_why():
    previous = variant_in_use()
    names = available()
    try:
        _rows._use_isa("best")
        assert ISA_WORDS[names[0]] in _rows.simd_target()      # "best": the widest the CPU has
        assert "set by name" in _rows.simd_target()
        _rows._use_isa("auto")
        target = _rows.simd_target()
        chosen = variant_in_use()
        assert chosen in names[:2]                              # never narrower than AVX2 where AVX2 exists
        if names[0] == "avx512":
            # one choice per dtype: "<factor>x as fast as <other>'s (<dtype>)"
            picks = re.findall(r"(\d+\.\d+)x as fast as (avx512|avx2)'s \((float32|float64)\)", target)
            assert "chosen by speed" in target and [d for _, _, d in picks] == ["float32", "float64"], target
            for factor, other, dtype in picks:
                # the widest stays unless AVX2 is 10% faster
                assert float(factor) > 1.1 if other == "avx512" else float(factor) >= 1 / 1.1, target
            assert ("for float32" in target) == (picks[0][1] != picks[1][1]), target
        else:
            assert chosen == names[0] and "the widest this CPU has" in target
        _rows._use_isa("auto")                                  # timed once per process: the same choice
        assert _rows.simd_target() == target
        x = logits((5, 300), np.float32, seed=3)
        assert_close("softmax", fs.softmax(x), reference.softmax(x), np.float32, f"auto ({chosen})")
    finally:
        _rows._use_isa(previous)


FORCED = r"""
import numpy as np, fastsoftmax as fs
from fastsoftmax import reference
x = np.linspace(-30, 5, 3 * 257, dtype=np.float32).reshape(3, 257)
assert np.allclose(fs.softmax(x), reference.softmax(x), rtol=2e-6, atol=1e-30)
print(fs.build_info()["simd"])
"""


@pytest.mark.parametrize("name", ["avx512", "avx2"])
def test_forced_variant_overrides_the_choice(name):
    if name not in available():
        pytest.skip(f"this CPU or build has no {name}")
    printed = run_python(FORCED, FASTSOFTMAX_FORCE_ISA=name)
    assert ISA_WORDS[name] in printed and "forced by FASTSOFTMAX_FORCE_ISA" in printed, printed


def test_unknown_forced_name_falls_back_to_the_choice():
    printed = run_python(FORCED, FASTSOFTMAX_FORCE_ISA="sse9")
    assert "forced" not in printed and ("chosen by speed" in printed or "the widest this CPU has" in printed)
