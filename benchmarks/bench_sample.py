"""Speed of fastsoftmax.sample, one thread, against the usual recipes.

    taskset -c 0 python benchmarks/bench_sample.py [--repeats 41]

Cases (issue 9), on (64, 50257) float32 logits (a batch of 64 rows of a
GPT-2-sized vocabulary):
  * top_k=50, top_p=0.9: fastsoftmax.sample against a vectorised NumPy
    implementation (argpartition, softmax, sort, cumsum, inverse-CDF draw)
    and PyTorch (topk, softmax, sort, cumsum, multinomial) when installed;
    goals: >= 5x NumPy, >= 2x PyTorch;
  * plain temperature sampling (T = 0.8, no filters): fastsoftmax.sample
    against fastsoftmax.softmax on the same logits; goal: <= 1.5x;
  * for information: top_p alone, min_p alone, greedy (T = 0).
Every function of a case runs in turn within each repeat (interleaved, so
that a noisy machine slows them alike); the figures are medians.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import fastsoftmax as fs  # noqa: E402

try:
    import torch
except ImportError:  # optional
    torch = None

ROWS, VOCAB = 64, 50257
TOP_K, TOP_P = 50, 0.9


def numpy_top_k_top_p(x, k, p, rng):
    """The usual vectorised NumPy recipe."""
    idx = np.argpartition(x, -k, axis=-1)[:, -k:]
    vals = np.take_along_axis(x, idx, -1)
    e = np.exp(vals - vals.max(-1, keepdims=True))
    probs = e / e.sum(-1, keepdims=True)
    order = np.argsort(-probs, axis=-1)
    sorted_p = np.take_along_axis(probs, order, -1)
    before = np.cumsum(sorted_p, -1) - sorted_p
    sorted_p = np.where(before < p, sorted_p, 0)
    cdf = np.cumsum(sorted_p, -1)
    u = rng.random((x.shape[0], 1)) * cdf[:, -1:]
    j = np.minimum((cdf <= u).sum(-1), k - 1)
    return np.take_along_axis(idx, np.take_along_axis(order, j[:, None], -1), -1)[:, 0]


def torch_top_k_top_p(x, k, p, generator):
    """The usual PyTorch recipe."""
    vals, idx = torch.topk(x, k, dim=-1)
    probs = torch.softmax(vals, dim=-1)
    sorted_p, order = torch.sort(probs, dim=-1, descending=True)
    before = torch.cumsum(sorted_p, dim=-1) - sorted_p
    sorted_p = sorted_p.masked_fill(before >= p, 0.0)
    j = torch.multinomial(sorted_p, 1, generator=generator)
    return idx.gather(-1, order.gather(-1, j))


# On a shared machine a process loses the CPU now and then: by default the
# time counted is the CPU time of this thread (every function here runs on
# the calling thread), which leaves those gaps out; --wall counts wall time.
CLOCK = time.thread_time


def timed(fns: dict, repeats: int) -> dict:
    """Median seconds per call of each function, interleaved."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()                                  # warm-up
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = CLOCK()
            fn()
            times[name].append(CLOCK() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def report(title: str, medians: dict, base: str) -> None:
    print(title)
    for name, t in medians.items():
        ratio = "" if name == base else f"   {t / medians[base]:6.2f}x {base}'s time"
        print(f"   {name:<34} {t * 1e3:8.3f} ms{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--wall", action="store_true", help="count wall time instead of this thread's CPU time")
    args = parser.parse_args()
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((ROWS, VOCAB)) * 3).astype(np.float32)
    print(f"fastsoftmax {fs.__version__} ({fs.build_info()['simd']}), one thread, ({ROWS}, {VOCAB}) float32, "
          f"median of {args.repeats} interleaved repeats, {'wall' if args.wall else 'thread CPU'} time")

    fns = {
        "fastsoftmax.sample": lambda: fs.sample(x, top_k=TOP_K, top_p=TOP_P, rng=rng, num_threads=1),
        "numpy (argpartition+sort+cumsum)": lambda: numpy_top_k_top_p(x, TOP_K, TOP_P, rng),
    }
    if torch is not None:
        torch.set_num_threads(1)
        xt = torch.from_numpy(x)
        generator = torch.Generator().manual_seed(0)
        fns["torch (topk+sort+multinomial)"] = lambda: torch_top_k_top_p(xt, TOP_K, TOP_P, generator)
    m = timed(fns, args.repeats)
    report(f"\ntop_k={TOP_K}, top_p={TOP_P}", m, "fastsoftmax.sample")
    print(f"   -> {m['numpy (argpartition+sort+cumsum)'] / m['fastsoftmax.sample']:.1f}x faster than NumPy "
          "(goal >= 5x)")
    if torch is not None:
        print(f"   -> {m['torch (topk+sort+multinomial)'] / m['fastsoftmax.sample']:.1f}x faster than PyTorch "
              "(goal >= 2x)")

    m = timed({
        "fastsoftmax.softmax": lambda: fs.softmax(x, temperature=0.8, num_threads=1),
        "fastsoftmax.sample": lambda: fs.sample(x, temperature=0.8, rng=rng, num_threads=1),
    }, args.repeats)
    report("\nplain temperature sampling (T = 0.8, no filters)", m, "fastsoftmax.softmax")
    print(f"   -> sample costs {m['fastsoftmax.sample'] / m['fastsoftmax.softmax']:.2f}x softmax (goal <= 1.5x)")

    m = timed({
        "fastsoftmax.softmax": lambda: fs.softmax(x, num_threads=1),
        "sample(top_p=0.9)": lambda: fs.sample(x, top_p=TOP_P, rng=rng, num_threads=1),
        "sample(min_p=0.05)": lambda: fs.sample(x, min_p=0.05, rng=rng, num_threads=1),
        "sample(top_k=1000)": lambda: fs.sample(x, top_k=1000, rng=rng, num_threads=1),
        "sample(temperature=0)": lambda: fs.sample(x, temperature=0.0, num_threads=1),
    }, max(5, args.repeats // 4))
    report("\nother settings, for information", m, "fastsoftmax.softmax")


if __name__ == "__main__":
    main()
