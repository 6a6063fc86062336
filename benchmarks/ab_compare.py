"""Old against new: time two builds of fastsoftmax side by side, in one process.

A refactor must not slow anything down.  This script imports the package
under test as ``fastsoftmax`` and a second build (for example today's main,
installed and copied to a folder under another name) from ``--old``, then
times every case of ``fastsoftmax.bench.CASES`` plus the masked, training,
sampling, SciPy-weighted and bfloat16 paths, alternating old and new block by
block (and which goes first), and prints the median of each and their ratio
(> 1: new is faster).

    cp -r "$(python -c 'import fastsoftmax, os; print(os.path.dirname(fastsoftmax.__file__))')" /tmp/old/fastsoftmax_old
    # ... rebuild the new one, then:
    taskset -c 0 python benchmarks/ab_compare.py --old /tmp/old/fastsoftmax_old

The old copy must keep its relative imports only (fastsoftmax does).
"""
import argparse
import importlib.util
import os
import statistics
import sys
import time

import numpy as np


def load_old(path):
    name = os.path.basename(os.path.normpath(path))
    spec = importlib.util.spec_from_file_location(name, os.path.join(path, "__init__.py"),
                                                  submodule_search_locations=[path])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    importlib.import_module(f"{name}.special")
    return module


def cases(fs, threads):
    """name -> (function of the module, making a zero-argument callable)."""
    from fastsoftmax import bench
    rng = np.random.default_rng(0)
    made = {}
    for case in bench.CASES:
        x = rng.standard_normal(case.shape, dtype=np.float64).astype(case.dtype)
        if case.order == "F":
            x = np.asfortranarray(x)
        label = case.label

        def make(m, case=case, x=x):
            f = getattr(m, case.op)
            if not case.out:
                return lambda: f(x, axis=case.axis, num_threads=threads)
            out = f(x, axis=case.axis)
            return lambda: f(x, axis=case.axis, out=out, num_threads=threads)
        made[label] = make
    big = rng.standard_normal((64, 50257), dtype=np.float32)
    small = rng.standard_normal((4096, 100), dtype=np.float32)
    mask = rng.random(big.shape) < 0.9
    y = rng.integers(0, big.shape[1], big.shape[0])
    teacher = rng.standard_normal(big.shape, dtype=np.float32)
    sim = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.random(small.shape).astype(np.float32)
    t = threads
    made["softmax where= (64, 50257)"] = lambda m: (lambda: m.softmax(big, where=mask, num_threads=t))
    made["logsumexp where= (64, 50257)"] = lambda m: (lambda: m.logsumexp(big, axis=-1, where=mask, num_threads=t))
    made["softmax_backward (64, 50257)"] = lambda m: (
        lambda y_=m.softmax(big): lambda: m.softmax_backward(teacher, y_, num_threads=t))()
    made["log_softmax_backward (64, 50257)"] = lambda m: (
        lambda y_=m.log_softmax(big): lambda: m.log_softmax_backward(teacher, y_, num_threads=t))()
    made["cross_entropy+grad (64, 50257)"] = lambda m: (
        lambda: m.cross_entropy(big, y, return_grad=True, num_threads=t))
    made["kl_div+grad (64, 50257)"] = lambda m: (
        lambda: m.kl_div(big, teacher, temperature=2.0, return_grad=True, num_threads=t))
    made["contrastive+grad (1024, 1024)"] = lambda m: (
        lambda: m.contrastive_loss(sim, return_grad=True, num_threads=t))
    made["sample top_k/top_p (64, 50257)"] = lambda m: (
        lambda: m.sample(big, temperature=0.8, top_k=50, top_p=0.9, rng=1, num_threads=t))
    made["special.logsumexp b= (4096, 100)"] = lambda m: (
        lambda: m.special.logsumexp(small, b=b, axis=-1))
    made["softmax small (1, 10)"] = lambda m, s=small[:1, :10].copy(): (lambda: m.softmax(s))
    try:
        import ml_dtypes
        half = big.astype(ml_dtypes.bfloat16)
        made["softmax bfloat16 (64, 50257)"] = lambda m: (lambda: m.softmax(half, num_threads=t))
    except ImportError:
        pass
    return made


def timed(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="folder of the old build's package (any name)")
    ap.add_argument("--new", default="", help="folder of the new build's package, loaded the same way as "
                    "--old (default: import fastsoftmax)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    args = ap.parse_args()
    if args.new:
        new = load_old(args.new)
    else:
        import fastsoftmax as new
        import fastsoftmax.special  # noqa: F401  (the SciPy drop-in is a submodule)
    old = load_old(args.old)
    made = cases(new, args.threads)
    wanted = [s for s in args.only.split(",") if s]
    print(f"new: {os.path.dirname(new.__file__)}  old: {args.old}  threads: {args.threads}  "
          f"kernels: {new.build_info()['simd']}")
    print(f"{'case':44s} {'old us':>10s} {'new us':>10s} {'old/new':>8s}")
    for name, make in made.items():
        if wanted and not any(w in name for w in wanted):
            continue
        f_old, f_new = make(old), make(new)
        f_old(), f_new()
        once = timed(f_new, 1)
        repeat = max(1, min(200, int(0.02 / max(once, 1e-7))))
        t_old, t_new = [], []
        for round_ in range(args.rounds):
            # alternate which build goes first: the second of a pair can find
            # the caches and the allocator in the first one's state
            if round_ % 2:
                t_new.append(timed(f_new, repeat))
                t_old.append(timed(f_old, repeat))
            else:
                t_old.append(timed(f_old, repeat))
                t_new.append(timed(f_new, repeat))
        mo, mn = statistics.median(t_old), statistics.median(t_new)
        print(f"{name:44s} {mo * 1e6:10.1f} {mn * 1e6:10.1f} {mo / mn:8.3f}", flush=True)


if __name__ == "__main__":
    main()
