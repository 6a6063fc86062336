"""The kernel table's ``row_stats`` entry (each row's maximum and sum of
exponentials, the exponentials kept for the gradient), as cross_entropy and
kl_div run it, for every instruction-set variant (the ``isa`` fixture):
every row length up to a few vectors, against the reference."""
import math

import numpy as np
import pytest

from util import DTYPES, check_cross_entropy, check_kl, logits, student_and_teacher

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

inf = math.inf
# the vector bodies and every tail of every variant, and rows past the tile widths
CLASS_COUNTS = list(range(1, 34)) + [63, 64, 65, 130]


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_every_row_length(isa, dtype):
    for n in CLASS_COUNTS:
        x = logits((4, n), dtype, seed=n)
        target = np.array([0, n - 1, n // 2, (3 * n) // 4])
        if n >= 3:
            x[1, 0] = -inf             # a class that is not row 1's answer (n - 1)
        for t in (1.0, 0.5):
            check_cross_entropy(x, dtype, f"{isa} n={n} T={t}", target=target, temperature=t, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_div_every_row_length(isa, dtype):
    for n in CLASS_COUNTS:
        student, teacher = student_and_teacher((3, n), dtype, seed=n, teacher_seed=n + 1000)
        for t in (1.0, 4.0):
            check_kl(student, teacher, dtype, f"{isa} n={n} T={t}", temperature=t, reduction="none")
