"""Issue 19's targets: linear_cross_entropy and the fastsoftmax.torch ops
against PyTorch, forward plus backward, side by side in one run.

``linear``: (4096, 1024) tokens against a (32000, 1024) float32 weight,
forward plus gradients, the same thread count for every contender:
fastsoftmax.linear_cross_entropy (NumPy arrays), fastsoftmax.torch's op
through autograd, PyTorch's reference ``F.linear_cross_entropy`` and its
chunked path (``LinearCrossEntropyOptions()``).  Calls interleaved, medians;
then each contender's peak RSS in a fresh process (one call, after the
inputs exist: the growth of the peak RSS, reset through /proc/self/clear_refs,
over the resident size before the call).

``ops``: (64, 50257) float32, one thread, through autograd: fst.softmax,
fst.log_softmax, fst.cross_entropy against torch.softmax, torch.log_softmax
and F.cross_entropy (forward plus ``backward()``), interleaved medians.

Pin it, and expect noise on a shared machine::

    taskset -c 0,1 python benchmarks/bench_torch.py linear --threads 2
    taskset -c 0 python benchmarks/bench_torch.py ops
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np


def _status_bytes(key: str) -> int:
    """VmRSS / VmHWM (the peak) of this process, from /proc (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak_rss() -> bool:
    """Reset the peak RSS to the current one (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---- linear_cross_entropy ---------------------------------------------------------------------

def linear_contenders(rows: int, hidden: int, classes: int, threads: int):
    """name -> a call of forward plus gradients, on shared inputs."""
    import torch
    import torch.nn.functional as F

    import fastsoftmax as fs
    import fastsoftmax.torch as fst

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((rows, hidden), dtype=np.float32) * 0.05)
    w = (rng.standard_normal((classes, hidden), dtype=np.float32) * 0.05)
    y = rng.integers(0, classes, rows)
    tx, tw, ty = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(y)

    def numpy_call():
        return fs.linear_cross_entropy(x, w, y, return_grad=True, num_threads=threads)[0]

    def torch_call(fn):
        def call():
            a, b = tx.detach().requires_grad_(), tw.detach().requires_grad_()
            loss = fn(a, b)
            loss.backward()
            return loss.item()
        return call

    return {
        "fastsoftmax.linear_cross_entropy": numpy_call,
        "fst.linear_cross_entropy (autograd)": torch_call(lambda a, b: fst.linear_cross_entropy(a, b, ty)),
        "torch reference": torch_call(lambda a, b: F.linear_cross_entropy(a, b, ty)),
        "torch chunked": torch_call(lambda a, b: F.linear_cross_entropy(
            a, b, ty, options=torch.nn.LinearCrossEntropyOptions())),
    }


def bench_linear(args) -> None:
    calls = linear_contenders(args.rows, args.hidden, args.classes, args.threads)
    losses = {name: float(call()) for name, call in calls.items()}          # warm-up, and the values agree
    times = {name: [] for name in calls}
    for _ in range(args.repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    best_torch = min(medians["torch reference"], medians["torch chunked"])
    print(f"linear_cross_entropy ({args.rows}, {args.hidden}) x ({args.classes}, {args.hidden}) float32, "
          f"forward + gradients, {args.threads} thread(s), median of {args.repeats} interleaved runs")
    for name, median in medians.items():
        spread = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"  {name:38s} {median:7.3f} s  ({best_torch / median:4.2f}x the faster torch path)  "
              f"[{spread}]  loss {losses[name]:.6f}")
    if args.rss:
        print("  peak RSS growth of one call in a fresh process (inputs excluded):")
        for name in calls:
            out = subprocess.run([sys.executable, __file__, "rss", name, "--rows", str(args.rows), "--hidden",
                                  str(args.hidden), "--classes", str(args.classes), "--threads", str(args.threads)],
                                 capture_output=True, text=True, check=True)
            rss = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {name:38s} {rss['growth'] / 2**20:8.0f} MiB  (peak {rss['peak'] / 2**20:.0f} MiB)")


def measure_rss(args) -> None:
    call = linear_contenders(args.rows, args.hidden, args.classes, args.threads)[args.name]
    if not _reset_peak_rss():           # then the peak includes making the inputs
        print("note: could not reset the peak RSS", file=sys.stderr)
    before = _status_bytes("VmRSS")
    call()
    peak = _status_bytes("VmHWM")
    print(json.dumps({"growth": peak - before, "peak": peak}))


# ---- the ops through autograd ------------------------------------------------------------------

def bench_ops(args) -> None:
    import torch
    import torch.nn.functional as F

    import fastsoftmax.torch as fst

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(args.rows, args.classes, generator=g)
    upstream = torch.randn(args.rows, args.classes, generator=g)
    target = torch.randint(0, args.classes, (args.rows,), generator=g)

    def through_autograd(fn, scalar):
        def call():
            x = x0.detach().requires_grad_()
            out = fn(x)
            out.backward() if scalar else out.backward(upstream)
        return call

    pairs = {
        "softmax": (lambda x: fst.softmax(x), lambda x: torch.softmax(x, -1), False, 1.5),
        "log_softmax": (lambda x: fst.log_softmax(x), lambda x: torch.log_softmax(x, -1), False, 1.3),
        "cross_entropy": (lambda x: fst.cross_entropy(x, target), lambda x: F.cross_entropy(x, target), True, 2.0),
    }
    print(f"fastsoftmax.torch ops through autograd, ({args.rows}, {args.classes}) float32, one thread, "
          f"forward + backward, median of {args.repeats} interleaved calls")
    for name, (ours, theirs, scalar, target_ratio) in pairs.items():
        calls = {"fst": through_autograd(ours, scalar), "torch": through_autograd(theirs, scalar)}
        times = {k: [] for k in calls}
        for call in calls.values():
            call()
        for _ in range(args.repeats):
            for k, call in calls.items():
                start = time.perf_counter()
                call()
                times[k].append(time.perf_counter() - start)
        ours_t, theirs_t = statistics.median(times["fst"]), statistics.median(times["torch"])
        print(f"  {name:14s} fst {ours_t * 1e3:7.3f} ms  torch {theirs_t * 1e3:7.3f} ms  "
              f"{theirs_t / ours_t:4.2f}x (target >= {target_ratio}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["linear", "ops", "rss"])
    parser.add_argument("name", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=None)
    parser.add_argument("--no-rss", dest="rss", action="store_false")
    args = parser.parse_args()
    if args.what == "ops":
        args.rows, args.classes = args.rows or 64, args.classes or 50257
        args.repeats = args.repeats or 100
        bench_ops(args)
        return
    args.rows, args.classes = args.rows or 4096, args.classes or 32000
    args.repeats = args.repeats or 3
    if args.what == "rss":
        measure_rss(args)
    else:
        bench_linear(args)


if __name__ == "__main__":
    main()
