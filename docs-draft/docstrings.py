"""Draft numpydoc docstrings for issue 8, to paste into src/fastsoftmax/_api.py.

Not part of the package.  The function bodies are placeholders; the examples
call the public ``fastsoftmax`` functions and were checked with doctest against
the reference (``python -m doctest docs-draft/docstrings.py`` once the
functions exist).

1. ``WHERE_PARAMETER``: the ``where`` entry for the Parameters section of
   softmax, log_softmax and logsumexp, and ``WHERE_NOTES`` / ``WHERE_EXAMPLE``
   for their Notes and Examples.  The softmax Notes sentence "At ``T = 0``
   only a NaN gives a NaN row." becomes "At ``T = 0`` a NaN, or a row of only
   ``-inf``, gives a NaN row (there is nothing to pick)."
2. The five new functions.
"""

WHERE_PARAMETER = """
    where : array_like of bool, optional
        Which entries take part: True keeps an entry, False masks it out.
        Broadcast to ``x``'s shape (a ``(B, 1, 1, S)`` padding mask or an
        ``(S, S)`` causal mask under ``(B, H, S, S)`` scores), never expanded
        or copied to that size.  Masked entries count as ``-inf`` whatever
        they hold (a NaN or ``+inf`` there is ignored).  A row with no True
        entry gives softmax 0, log_softmax ``-inf`` and logsumexp ``-inf``, at
        every temperature.  A dtype other than bool raises TypeError; a shape
        that does not broadcast to ``x``'s shape raises ValueError.
"""

WHERE_NOTES = """
    With ``where=``, the rules above apply to the kept entries: a row whose
    kept entries are all ``-inf`` is NaN, a row with no kept entry is 0
    (softmax) or ``-inf`` (log_softmax, logsumexp).
"""

WHERE_EXAMPLE = """
    >>> import numpy as np, fastsoftmax as fs
    >>> scores = np.array([[2.0, 1.0, 9.0], [0.5, np.nan, 1.0]])
    >>> keep = np.array([[True, True, False], [False, False, False]])
    >>> fs.softmax(scores, where=keep).round(3)
    array([[0.731, 0.269, 0.   ],
           [0.   , 0.   , 0.   ]])
"""


def softmax_backward(grad, y, axis=-1, *, temperature=1.0, where=None, out=None, num_threads=None):
    """Gradient of softmax: ``dL/dx`` from ``dL/dy`` and ``y = softmax(x, axis, temperature=T)``.

    Computes the vector-Jacobian product
    ``y * (grad - sum(grad * y, axis, keepdims=True)) / T`` in two fused
    passes over each row, without forming the Jacobian.

    Parameters
    ----------
    grad : array_like
        ``dL/dy``, the gradient of the loss with respect to the softmax
        output.  Same shape as ``y``.
    y : array_like
        The output of :func:`softmax` for the same ``axis``, ``temperature``
        and ``where``.
    axis : int, tuple of ints or None, default -1
        The axis (or axes) of the forward call.
    temperature : float, default 1.0
        ``T`` of the forward call; finite and ``> 0`` (``T = 0`` and
        ``T = inf`` have no gradient: ValueError).
    where : array_like of bool, optional
        The mask of the forward call.  Masked entries, and every entry of a
        fully masked row, get exactly 0; the sum runs over the kept entries
        only, so whatever ``grad`` and ``y`` hold at masked entries (NaN
        included) is ignored.  Broadcast rules and errors as in
        :func:`softmax`.
    out : ndarray, optional
        Where to write the result: ``grad``'s shape and the result dtype.
        May be ``grad`` (or ``y``) itself.
    num_threads : int, optional
        As in :func:`softmax`; results do not depend on it.

    Returns
    -------
    ndarray
        ``dL/dx``, of ``grad``'s shape, in the result dtype of ``grad`` and
        ``y`` (float32 for float32, float64 for float64); ``out`` if given.

    See Also
    --------
    log_softmax_backward, softmax

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> x = np.array([[1.0, 2.0, 3.0]])
    >>> y = fs.softmax(x, temperature=2.0)
    >>> dy = np.array([[0.0, 0.0, 1.0]])           # L = y[0, 2]
    >>> fs.softmax_backward(dy, y, temperature=2.0).round(4)
    array([[-0.0472, -0.0778,  0.125 ]])
    """


def log_softmax_backward(grad, y, axis=-1, *, temperature=1.0, where=None, out=None, num_threads=None):
    """Gradient of log_softmax: ``dL/dx`` from ``dL/dy`` and ``y = log_softmax(x, axis, temperature=T)``.

    Computes ``(grad - exp(y) * sum(grad, axis, keepdims=True)) / T`` in two
    fused passes over each row.

    Parameters
    ----------
    grad : array_like
        ``dL/dy``, same shape as ``y``.
    y : array_like
        The output of :func:`log_softmax` for the same ``axis``,
        ``temperature`` and ``where``; ``-inf`` entries are probability 0.
    axis : int, tuple of ints or None, default -1
        The axis (or axes) of the forward call.
    temperature : float, default 1.0
        ``T`` of the forward call; finite and ``> 0`` (ValueError otherwise).
    where : array_like of bool, optional
        The mask of the forward call.  Masked entries and fully masked rows
        get exactly 0, and ``sum(grad)`` runs over the kept entries only.
    out : ndarray, optional
        ``grad``'s shape and the result dtype; may be ``grad`` itself.
    num_threads : int, optional
        As in :func:`softmax`.

    Returns
    -------
    ndarray
        ``dL/dx``, of ``grad``'s shape; ``out`` if given.

    See Also
    --------
    softmax_backward, log_softmax, cross_entropy

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> x = np.array([[1.0, 2.0, 3.0]])
    >>> dy = np.array([[0.0, 0.0, 1.0]])
    >>> fs.log_softmax_backward(dy, fs.log_softmax(x)).round(4)
    array([[-0.09  , -0.2447,  0.3348]])
    """


def cross_entropy(logits, target, axis=-1, *, temperature=1.0, weight=None, ignore_index=-100,
                  label_smoothing=0.0, reduction="mean", return_grad=False, num_threads=None):
    """Cross-entropy loss from logits, optionally with its gradient.

    The same value as ``torch.nn.functional.cross_entropy(logits / T, target,
    weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
    reduction=reduction)`` with the class axis (``axis`` here) at position 1
    for PyTorch.  For a row with class index ``y``, ``C`` classes, weights
    ``w`` and smoothing ``eps`` the loss is
    ``(1 - eps) * w[y] * -log p[y] + eps / C * sum_c w[c] * -log p[c]`` with
    ``log p = log_softmax(logits / T)``; for class probabilities ``q`` it is
    ``sum_c w[c] * ((1 - eps) * q[c] + eps / C) * -log p[c]``.

    Parameters
    ----------
    logits : array_like
        Unnormalised scores, classes along ``axis``.  Dtype rules as in
        :func:`softmax`; any layout.
    target : array_like
        Either integer class indices, of ``logits``' shape without ``axis``,
        each in ``[0, C)`` or equal to ``ignore_index`` (any other value
        raises ValueError naming the value and its position); or floating
        class probabilities (soft labels) of ``logits``' shape.
    axis : int, default -1
        The class axis.
    temperature : float, default 1.0
        ``T``, finite and ``> 0``: the loss is that of ``logits / T``.
    weight : array_like, optional
        One weight per class (shape ``(C,)``), as in PyTorch.
    ignore_index : int, default -100
        Rows whose class index equals it have loss 0 and gradient 0 and are
        left out of "mean".  Not used with probability targets.
    label_smoothing : float, default 0.0
        ``eps`` in ``[0, 1]``: mixes the target with the uniform distribution.
    reduction : {"mean", "sum", "none"}, default "mean"
        "mean" divides the sum of the row losses by the sum of ``w[y]`` over
        the rows not ignored (by the number of rows for probability
        targets), as PyTorch does; when every row is ignored it returns 0.0
        (PyTorch gives NaN).  "sum" adds the row losses; "none" returns them.
    return_grad : bool, default False
        Also return the gradient with respect to ``logits``.
    num_threads : int, optional
        As in :func:`softmax`; results do not depend on it.

    Returns
    -------
    loss : NumPy scalar or ndarray
        A NumPy scalar of the logits' result dtype for "mean" and "sum"; the
        per-row losses (``logits``' shape without ``axis``, 0 at ignored
        rows) for "none".  Accumulated in double.
    grad : ndarray
        Only with ``return_grad=True``: ``d(loss)/d(logits)`` in ``logits``'
        shape and result dtype, ``(softmax(logits / T) - onehot) / T`` for a
        plain row, weighted, smoothed and reduced as the loss is (for
        "none", the gradient of the losses' sum); 0 at ignored rows.

    Notes
    -----
    The loss is computed in the log-sum-exp form, never as
    ``log(softmax)``: for a confident row, ``-log p`` near 0 keeps its full
    precision.  A class whose coefficient is 0 (probability 0 in a soft
    target, or weight 0) contributes 0 even where its logit is ``-inf``
    (PyTorch gives NaN there); a ``-inf`` logit where the target puts weight
    gives ``+inf``.  No ``(rows, classes)`` temporary is allocated besides
    the returned gradient.

    See Also
    --------
    log_softmax, kl_div, contrastive_loss

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 1.0]])
    >>> target = np.array([0, 2, -100])               # the last row is ignored
    >>> loss, grad = fs.cross_entropy(logits, target, return_grad=True)
    >>> round(float(loss), 6)
    0.175456
    >>> grad.round(4)
    array([[-0.1072,  0.0876,  0.0196],
           [ 0.0247,  0.0272, -0.0519],
           [ 0.    ,  0.    ,  0.    ]])
    >>> float(fs.cross_entropy(np.array([[0.0, -40.0, -45.0]]), np.array([0])))
    4.2769794410970824e-18
    """


def kl_div(student_logits, teacher_logits, axis=-1, *, temperature=1.0, reduction="batchmean",
           return_grad=False, num_threads=None):
    """Distillation loss: ``T**2 * KL(softmax(teacher / T) || softmax(student / T))``.

    Summed along ``axis``.  The ``T**2`` factor is Hinton's scaling: the
    gradients of the softened distributions shrink like ``1 / T**2``, and the
    factor keeps them the size of a hard-label loss's at any temperature, so
    ``alpha * cross_entropy(...) + (1 - alpha) * kl_div(..., temperature=T)``
    does not need ``alpha`` retuned when ``T`` changes.

    Parameters
    ----------
    student_logits, teacher_logits : array_like
        Logits of the same shape, classes along ``axis``.  Dtype rules as in
        :func:`softmax`; any layout.
    axis : int, default -1
        The class axis.
    temperature : float, default 1.0
        ``T``, finite and ``> 0`` (distillation typically uses 4 to 20).
    reduction : {"batchmean", "sum", "none"}, default "batchmean"
        "batchmean": the mean over rows (every position other than ``axis``;
        0.0 when there are none); "sum": their sum; "none": one value per
        row, of the logits' shape without ``axis``.
    return_grad : bool, default False
        Also return the gradient with respect to ``student_logits``.
    num_threads : int, optional
        As in :func:`softmax`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        A NumPy scalar of the result dtype for "batchmean" and "sum".
    grad : ndarray
        Only with ``return_grad=True``:
        ``T * (softmax(student / T) - softmax(teacher / T))``, reduced as the
        loss, in ``student_logits``' shape.

    Notes
    -----
    Teacher entries of ``-inf`` (probability 0) contribute exactly 0, never
    ``0 * inf = NaN``, also where the student is ``-inf`` too; a teacher
    probability > 0 where the student logit is ``-inf`` gives ``+inf``.
    For 2-D inputs the result equals ``T**2 *
    torch.nn.functional.kl_div(log_softmax(s / T), log_softmax(t / T),
    reduction="batchmean", log_target=True)``; for more dimensions PyTorch's
    "batchmean" divides by the first dimension only, this one by the number
    of rows.

    See Also
    --------
    cross_entropy, log_softmax

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> student = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]])
    >>> teacher = np.array([[3.0, 0.0, -np.inf], [0.0, 1.0, 2.5]])
    >>> loss, grad = fs.kl_div(student, teacher, temperature=4.0, return_grad=True)
    >>> round(float(loss), 6)
    2.624103
    >>> grad.round(4)
    array([[-0.5199,  0.0113,  0.5086],
           [ 0.0972, -0.0396, -0.0576]])
    """


def contrastive_loss(similarity, *, temperature=0.07, symmetric=True, reduction="mean",
                     return_grad=False, num_threads=None):
    """Contrastive (InfoNCE / CLIP) loss of an ``(N, N)`` similarity matrix.

    Row loss ``i`` is the cross-entropy of row ``i`` of ``similarity / T``
    against class ``i`` (the diagonal holds the positive pairs); column loss
    ``i`` the same down column ``i``, computed along the strided axis with no
    transposed copy.

    Parameters
    ----------
    similarity : array_like
        ``(N, N)``: entry ``(i, j)`` is the similarity of query ``i`` and key
        ``j`` (for CLIP, of image ``i`` and text ``j``).  Dtype rules as in
        :func:`softmax`; any layout.
    temperature : float, default 0.07
        ``T``, finite and ``> 0``; CLIP's ``logit_scale`` is ``1 / T`` and
        starts at ``1 / 0.07``.
    symmetric : bool, default True
        True: the mean of the row and column directions (CLIP's loss).
        False: the row direction only (InfoNCE with queries as rows).
    reduction : {"mean", "sum", "none"}, default "mean"
        "none" gives the per-pair losses, shape ``(N,)``: with
        ``symmetric=True`` ``(row_loss_i + column_loss_i) / 2``, else
        ``row_loss_i``.  "mean" and "sum" are their mean and sum, so "mean"
        with ``symmetric=True`` is CLIP's ``(CE(rows) + CE(columns)) / 2``.
    return_grad : bool, default False
        Also return ``d(loss)/d(similarity)`` (for "none": of the losses'
        sum).
    num_threads : int, optional
        As in :func:`softmax`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        A NumPy scalar of the result dtype, or shape ``(N,)`` for "none".
    grad : ndarray
        Only with ``return_grad=True``: ``(N, N)``, for "mean" and
        ``symmetric=True`` equal to
        ``(softmax(S / T, 1) + softmax(S / T, 0) - 2 * I) / (2 * N * T)``.

    See Also
    --------
    cross_entropy

    Examples
    --------
    >>> import numpy as np, fastsoftmax as fs
    >>> rng = np.random.default_rng(0)
    >>> image = rng.standard_normal((4, 8))
    >>> image /= np.linalg.norm(image, axis=1, keepdims=True)
    >>> text = image + 0.3 * rng.standard_normal((4, 8))
    >>> text /= np.linalg.norm(text, axis=1, keepdims=True)
    >>> loss, dsim = fs.contrastive_loss(image @ text.T, return_grad=True)
    >>> round(float(loss), 6)
    0.059328
    >>> dsim.shape
    (4, 4)
    """
