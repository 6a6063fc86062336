"""Bit for bit: the results of this build against another build's.

A refactor must not change any result.  This script imports the package
under test as ``fastsoftmax`` and another build (a copy of an installed
package folder, under any name) from the folder given, runs both on the same
inputs (every function, temperatures, axes, masks, losses, sampling, SciPy's
b=, 16-bit inputs, 1 and 2 threads) and prints every case whose bytes differ,
or that raises in one build only ("CHANGED").

    python tools/compare_builds.py /tmp/old/fastsoftmax_old
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
from ab_compare import load_old  # noqa: E402

import fastsoftmax as new  # noqa: E402

if len(sys.argv) != 2:
    sys.exit("usage: python tools/compare_builds.py OLD_PACKAGE_FOLDER")
old = load_old(sys.argv[1])
import fastsoftmax.special  # noqa: E402,F401  (load_old imports the old one's)
rng = np.random.default_rng(1)
bad = 0; n_checked = 0

def same(a, b):
    if isinstance(a, tuple):
        return all(same(x, y) for x, y in zip(a, b))
    if a is None or b is None:
        return a is b
    a = np.asarray(a); b = np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(np.atleast_1d(a).view(np.uint8) if a.size else a, np.atleast_1d(b).view(np.uint8) if b.size else b)

def check(name, f):
    global bad, n_checked
    n_checked += 1
    try:
        ra = f(old)
    except Exception as e:
        ra = ("raised", type(e).__name__, str(e))
    try:
        rb = f(new)
    except Exception as e:
        rb = ("raised", type(e).__name__, str(e))
    ra_raised = isinstance(ra, tuple) and len(ra) == 3 and ra[0] == "raised"
    rb_raised = isinstance(rb, tuple) and len(rb) == 3 and rb[0] == "raised"
    if ra_raised != rb_raised:
        print("CHANGED", name, "old:", str(ra)[:150], "new:", type(rb).__name__)
        return
    ok = (ra == rb) if ra_raised else same(ra, rb)
    if not ok:
        bad += 1
        print("DIFF", name, str(ra)[:200], str(rb)[:200])

shapes = [(1, 1000), (256, 1000), (37, 5), (1000, 10), (3, 70000), (2, 200000), (64, 128, 16), (5, 0), (0, 7), (1, 1)]
for dt in (np.float32, np.float64):
    for shape in shapes:
        x = (rng.standard_normal(shape) * 5).astype(dt)
        if x.size > 4:
            x.flat[3] = -np.inf
        for threads in (1, 2):
            for T in (1.0, 0.5, 0.0, np.inf, 3e-39):
                for op in ("softmax", "log_softmax", "logsumexp"):
                    for axis in range(-1, -len(shape) - 1, -1) if len(shape) < 3 else (-1, 0, 1):
                        check(f"{op} {shape} {dt.__name__} T={T} th={threads} ax={axis}",
                              lambda m: getattr(m, op)(x, axis=axis, temperature=T, num_threads=threads))
            if len(shape) == 2:
                mask = rng.random(shape) < 0.7
                rowmask = rng.random((shape[0], 1)) < 0.7
                for op in ("softmax", "log_softmax", "logsumexp"):
                    check(f"{op} where {shape} {dt.__name__} th={threads}",
                          lambda m: getattr(m, op)(x, axis=-1, where=mask, num_threads=threads))
                    check(f"{op} rowwhere {shape} {dt.__name__} th={threads}",
                          lambda m: getattr(m, op)(x, axis=-1, where=rowmask, num_threads=threads))
                g = rng.standard_normal(shape).astype(dt)
                if shape[0] > 0:
                    check(f"softmax_backward {shape}", lambda m: m.softmax_backward(g, m.softmax(x), num_threads=threads))
                    check(f"log_softmax_backward {shape}", lambda m: m.log_softmax_backward(g, m.log_softmax(x), where=mask, num_threads=threads))
                if shape[1] > 0 and shape[0] > 0:
                    y = rng.integers(0, shape[1], shape[0])
                    y[0] = -100
                    w = rng.random(shape[1]).astype(dt)
                    check(f"xent {shape}", lambda m: m.cross_entropy(np.nan_to_num(x, neginf=-50), y, weight=w, label_smoothing=0.1, return_grad=True, num_threads=threads, temperature=1.5))
                    q = new.softmax(rng.standard_normal(shape).astype(dt))
                    check(f"xent soft {shape}", lambda m: m.cross_entropy(np.nan_to_num(x, neginf=-50), q, return_grad=True, num_threads=threads))
                    t = rng.standard_normal(shape).astype(dt)
                    check(f"kl {shape}", lambda m: m.kl_div(x, t, temperature=2.0, return_grad=True, num_threads=threads))
                    check(f"sample {shape}", lambda m: m.sample(np.nan_to_num(x, neginf=-50), temperature=0.7, top_k=5, top_p=0.9, rng=3, num_threads=threads))
                    check(f"sample where {shape}", lambda m: m.sample(np.nan_to_num(x, neginf=-50), temperature=0.7, where=mask | (np.arange(shape[1]) == 0), rng=3, num_threads=threads))
                    b = rng.random(shape).astype(dt)
                    check(f"special lse b {shape}", lambda m: m.special.logsumexp(x, b=b, axis=-1, return_sign=True))
                    check(f"special lse b row {shape}", lambda m: m.special.logsumexp(x, b=b[:1], axis=-1))
            if len(shape) == 2 and shape[0] == shape[1] or shape == (37, 5):
                s = rng.standard_normal((40, 40)).astype(dt)
                check(f"contrastive", lambda m: m.contrastive_loss(s, return_grad=True, num_threads=threads))
try:
    import ml_dtypes
    h = rng.standard_normal((300, 300)).astype(ml_dtypes.bfloat16)
    for op in ("softmax", "log_softmax", "logsumexp"):
        check(f"bf16 {op}", lambda m: getattr(m, op)(h, axis=-1))
    h = rng.standard_normal((3, 70000)).astype(np.float16)
    for op in ("softmax", "logsumexp"):
        check(f"f16 {op}", lambda m: getattr(m, op)(h, axis=-1, num_threads=2))
except ImportError:
    pass
print(f"{n_checked} cases, {bad} differ")
