"""The kernel table's ``rows_where`` entry: softmax, log_softmax and
logsumexp of rows under a ``where=`` selection, for every instruction-set
variant (the ``isa`` fixture), against the pure-Python reference."""
import functools
import math

import numpy as np
import pytest

from fastsoftmax import reference
from util import B, DTYPES, FULLY_MASKED, FUNCTIONS, H, MASKS, S, assert_close, logits

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf, nan = math.inf, math.nan
NAMES = ["softmax", "log_softmax", "logsumexp"]
# every tail of every vector width, a few vectors long, and rows past the tile widths
ROW_LENGTHS = list(range(1, 40)) + [63, 64, 65, 129, 300]


@functools.lru_cache(maxsize=None)
def attention_case(mask_name, name, dtype, temperature):
    x = logits((B, H, S, S), dtype, seed=1)
    mask = MASKS[mask_name]()
    return x, mask, getattr(reference, name)(x, temperature=temperature, where=mask)


@pytest.mark.parametrize("temperature", [0.5, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_attention_masks_match_the_reference(isa, mask_name, name, dtype, temperature):
    """A (B, 1, 1, S) padding mask and an (S, S) causal mask broadcast under
    (B, H, S, S) scores; fully padded batches give fully masked rows."""
    x, mask, want = attention_case(mask_name, name, dtype, temperature)
    got = FUNCTIONS[name][0](x, temperature=temperature, where=mask)
    assert_close(name, got, want, dtype, f"{isa} mask={mask_name} T={temperature}")
    if mask_name.startswith("padding"):
        assert np.all(np.asarray(got[2]) == FULLY_MASKED[name]), "fully padded batch"


@functools.lru_cache(maxsize=None)
def masked_rows(dtype, n):
    """Four rows of n: a random selection over finite values; a random
    selection over NaN, +inf and -inf where not selected; one selected entry;
    none selected."""
    x = logits((4, n), dtype, seed=n)
    mask = np.random.default_rng(n).random((4, n)) < 0.6
    mask[:2, n // 2] = True
    junk = np.resize(np.array([nan, inf, -inf], dtype=dtype), (~mask[1]).sum())
    x[1, ~mask[1]] = junk
    mask[2] = False
    mask[2, n - 1] = True
    mask[3] = False
    x.flags.writeable = mask.flags.writeable = False
    return x, mask


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_lengths_with_a_selection(isa, dtype):
    """Selections over every row length up to a few vectors: the selected
    lanes of the vector bodies and of the tails; unselected NaN and
    infinities change nothing."""
    for n in ROW_LENGTHS:
        x, mask = masked_rows(dtype, n)
        for t in (1.0, 0.5):
            for name, (fast, ref) in FUNCTIONS.items():
                assert_close(name, fast(x, temperature=t, where=mask), ref(x, temperature=t, where=mask), dtype,
                             f"{isa} n={n} T={t}")
