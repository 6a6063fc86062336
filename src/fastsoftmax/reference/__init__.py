"""Pure-Python reference implementation: the oracle for the tests.

The same functions and the same special-value rules as the compiled ones,
written as plainly as possible with the ``math`` module: each row's exponentials
come from ``math.exp`` in double precision and are summed exactly with
``math.fsum``.  NumPy is used only to walk rows and to build the result array.
Slow on purpose; never use it on large data.

softmax, log_softmax and logsumexp return the result dtype of the compiled
functions.  The training functions (the backward functions and the losses)
return float64 whatever the input dtype: the exact value rounded once, where
the only inexact steps are ``math.exp`` / ``math.log`` of single values.
Gradients are formed with :class:`fractions.Fraction` from those exponentials
and rounded once, so no cancellation (``p - 1`` of a confident row) is lost.

One module per public module: :mod:`~fastsoftmax.reference.forward`
(softmax, log_softmax, logsumexp), :mod:`~fastsoftmax.reference.training`
(the backward functions and losses), :mod:`~fastsoftmax.reference.linear`
(linear_cross_entropy, in float64 NumPy), :mod:`~fastsoftmax.reference.sample` and
:mod:`~fastsoftmax.reference.special`.

>>> from fastsoftmax import reference
>>> reference.softmax([0.0, 0.0]).tolist()
[0.5, 0.5]
>>> float(reference.logsumexp([0.0, -math.inf]))
0.0
"""
from __future__ import annotations

import math  # noqa: F401  (for the examples above)

from .forward import log_softmax, logsumexp, softmax
from .sample import sample_distribution, verify_draft_distribution
from .special import special_logsumexp
from .training import contrastive_loss, cross_entropy, kl_div, log_softmax_backward, softmax_backward
from .linear import linear_cross_entropy  # issue 19

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
           "cross_entropy", "kl_div", "contrastive_loss", "special_logsumexp",
           "sample_distribution", "verify_draft_distribution", "linear_cross_entropy"]
