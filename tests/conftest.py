"""Fixtures shared by the test files: ``isa`` runs a test once per compiled
instruction-set variant of the kernels, switched in-process.  The kernel
tests (tests/kernels/, one file per entry of the kernel table) take it; the
helpers they share are in tests/util.py."""
import pytest

from fastsoftmax import _rows
from util import ISA_WORDS, ISAS, variant_in_use


@pytest.fixture(params=ISAS)
def isa(request):
    """Switch the kernels to one variant for the test, then back to the one in
    use before (the best one, unless FASTSOFTMAX_FORCE_ISA lowered it).
    Variants this CPU or build lacks are skipped."""
    name = request.param
    previous = variant_in_use()
    try:
        _rows._use_isa(name)
    except ValueError as e:
        pytest.skip(str(e))
    try:
        assert ISA_WORDS[name] in _rows.simd_target(), (name, _rows.simd_target())
        yield name
    finally:
        _rows._use_isa(previous)
