"""Speed of the issue-8 jobs against PyTorch, on (64, 50257) float32 logits.

    taskset -c 0 python benchmarks/bench_training.py [--repeats 41] [--threads 1]

Prints each case's median time (interleaved rounds, so the peers see the same
machine state) and the ratio to the comparison named in its line:
  * where=: a full-size boolean mask against the unmasked call (goal <= 1.3x);
  * softmax_backward against torch._softmax_backward_data and autograd (goal >= 2x);
  * cross_entropy, loss alone against torch.nn.functional.cross_entropy (goal >= 1.5x);
  * cross_entropy with its gradient against torch's forward plus backward() (goal >= 2x).
torch is optional; without it only the where= lines are printed.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastsoftmax as fs


def median_times(cases: dict, repeats: int) -> dict:
    """Median seconds per case, the cases interleaved round by round."""
    times: dict = {name: [] for name in cases}
    for fn in cases.values():
        fn()                                   # warm-up: caches, allocator, lazy imports
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    threads = args.threads
    rng = np.random.default_rng(0)
    rows, classes = 64, 50257
    x = rng.standard_normal((rows, classes), dtype=np.float32) * 3
    mask = rng.random((rows, classes)) > 0.1
    target = rng.integers(0, classes, rows)
    y = fs.softmax(x)
    dy = rng.standard_normal((rows, classes), dtype=np.float32)
    floor_out = np.empty_like(x)

    cases = {
        "softmax": lambda: fs.softmax(x, num_threads=threads),
        "softmax where=": lambda: fs.softmax(x, where=mask, num_threads=threads),
        "log_softmax": lambda: fs.log_softmax(x, num_threads=threads),
        "log_softmax where=": lambda: fs.log_softmax(x, where=mask, num_threads=threads),
        "logsumexp": lambda: fs.logsumexp(x, num_threads=threads),
        "logsumexp where=": lambda: fs.logsumexp(x, where=mask, num_threads=threads),
        "softmax_backward": lambda: fs.softmax_backward(dy, y, num_threads=threads),
        # the memory floor of a backward pass: read two arrays, write one
        "floor: np.multiply(dy, y, out=)": lambda: np.multiply(dy, y, out=floor_out),
        "cross_entropy": lambda: fs.cross_entropy(x, target, num_threads=threads),
        "cross_entropy + grad": lambda: fs.cross_entropy(x, target, return_grad=True, num_threads=threads),
    }
    comparisons = [("softmax_backward", "floor: np.multiply(dy, y, out=)", "(the memory floor)", False),
                   ("softmax where=", "softmax", "<= 1.3x", False),
                   ("log_softmax where=", "log_softmax", "<= 1.3x", False),
                   ("logsumexp where=", "logsumexp", "<= 1.3x", False)]
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(threads)
        tx, ty, tdy = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(dy)
        ttarget = torch.from_numpy(target)

        def autograd_backward():
            leaf = tx.clone().requires_grad_(True)
            torch.softmax(leaf, -1).backward(tdy)

        def torch_ce_grad():
            leaf = tx.clone().requires_grad_(True)
            F.cross_entropy(leaf, ttarget).backward()

        def torch_clone():
            tx.clone()

        cases.update({
            "torch _softmax_backward_data": lambda: torch._softmax_backward_data(tdy, ty, -1, torch.float32),
            "torch autograd softmax backward - clone": autograd_backward,
            "torch cross_entropy": lambda: F.cross_entropy(tx, ttarget),
            "torch cross_entropy + backward - clone": torch_ce_grad,
            "torch clone": torch_clone,
        })
        comparisons += [("torch _softmax_backward_data", "softmax_backward", ">= 2x", True),
                        ("torch autograd softmax backward - clone", "softmax_backward", ">= 2x", True),
                        ("torch cross_entropy", "cross_entropy", ">= 1.5x", True),
                        ("torch cross_entropy + backward - clone", "cross_entropy + grad", ">= 2x", True)]
    med = median_times(cases, args.repeats)
    if torch is not None:
        # the autograd cases clone the leaf each round; take that copy off
        for name in ("torch autograd softmax backward - clone", "torch cross_entropy + backward - clone"):
            med[name] -= med["torch clone"]
    print(f"(64, 50257) float32, {threads} thread(s), median of {args.repeats} interleaved rounds")
    for name, t in med.items():
        print(f"  {name:42s} {t * 1e6:9.0f} us")
    print("ratios:")
    for slow, fast, goal, speedup in comparisons:
        ratio = med[slow] / med[fast]
        print(f"  {slow} / {fast}: {ratio:.2f}x  (goal: {'fastsoftmax ' if speedup else ''}{goal})")


if __name__ == "__main__":
    main()
