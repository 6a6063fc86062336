"""The kernel table's ``weighted_gap`` and ``combine`` entries: the loss of a
row from its statistics and the targets' coefficients, and the gradient
written from them, as cross_entropy (class weights, label smoothing,
probability targets, ignore_index), kl_div and contrastive_loss run them, for
every instruction-set variant (the ``isa`` fixture), against the
reference."""
import itertools

import numpy as np
import pytest

from util import DTYPES, check_contrastive, check_cross_entropy, check_kl, logits, similarities, student_and_teacher

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

# shorter than any vector, a few vectors and a tail, many vectors
CLASS_COUNTS = [5, 37, 130]


def cross_entropy_cases(n, dtype):
    """name -> keyword arguments of cross_entropy for (6, n) logits."""
    rng = np.random.default_rng(n)
    indices = rng.integers(0, n, 6)
    indices[4] = -100
    weight = rng.random(n) + 0.25
    q = rng.random((6, n)) ** 3
    q = (q / q.sum(axis=-1, keepdims=True)).astype(dtype)
    return {
        "indices": dict(target=indices),
        "weights": dict(target=indices, weight=weight),
        "smoothing": dict(target=indices, label_smoothing=0.1),
        "weights+smoothing": dict(target=indices, weight=weight, label_smoothing=0.25),
        "ignore_index in range": dict(target=np.where(indices == -100, 2 % n, indices), ignore_index=2 % n),
        "probabilities": dict(target=q),
        "probabilities+weights+smoothing": dict(target=q, weight=weight, label_smoothing=0.2),
    }


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_coefficients(isa, dtype, reduction):
    for n in CLASS_COUNTS:
        x = logits((6, n), dtype, seed=n + 7)
        for case, kwargs in cross_entropy_cases(n, dtype).items():
            check_cross_entropy(x, dtype, f"{isa} {case} n={n} {reduction}", temperature=0.7, reduction=reduction,
                                **kwargs)


@pytest.mark.parametrize("reduction", ["none", "batchmean"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_kl_div(isa, dtype, reduction):
    for n, t in itertools.product(CLASS_COUNTS, (1.0, 4.0)):
        student, teacher = student_and_teacher((6, n), dtype, seed=n + 30)
        check_kl(student, teacher, dtype, f"{isa} n={n} T={t} {reduction}", temperature=t, reduction=reduction)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_contrastive_loss(isa, dtype, symmetric):
    for n in (6, 37):
        sim = similarities(n, dtype, seed=n + 40)
        for t in (0.07, 1.0):
            check_contrastive(sim, dtype, f"{isa} n={n} T={t} symmetric={symmetric}", temperature=t,
                              symmetric=symmetric, reduction="mean")
