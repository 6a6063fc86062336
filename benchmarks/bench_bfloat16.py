"""The cost of a bfloat16 / float16 call relative to the float32 call.

Issue 11 asks that a (64, 50257) bfloat16 call cost at most 1.3x the float32
call.  Run pinned to one core, one thread, calls interleaved so that both
dtypes see the same machine state; prints medians and their ratios:

    taskset -c 0 python benchmarks/bench_bfloat16.py [--repeats 200]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastsoftmax as fs


def main() -> None:
    import ml_dtypes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--shape", type=int, nargs=2, default=(64, 50257))
    args = parser.parse_args()
    x32 = np.random.default_rng(0).standard_normal(args.shape).astype(np.float32)
    inputs = {"float32": x32, "bfloat16": x32.astype(ml_dtypes.bfloat16), "float16": x32.astype(np.float16)}
    calls = {
        "float32": lambda f: f(inputs["float32"], num_threads=1),
        "bfloat16": lambda f: f(inputs["bfloat16"], num_threads=1),
        "bfloat16 -> float32": lambda f: f(inputs["bfloat16"], num_threads=1, dtype=np.float32),
        "float16": lambda f: f(inputs["float16"], num_threads=1),
        "bfloat16 via astype": lambda f: f(inputs["bfloat16"].astype(np.float32),
                                           num_threads=1).astype(ml_dtypes.bfloat16),
    }
    print(f"shape {tuple(args.shape)}, one thread, median of {args.repeats} interleaved calls")
    for func in (fs.softmax, fs.log_softmax, fs.logsumexp):
        times = {label: [] for label in calls}
        for _ in range(args.repeats):
            for label, call in calls.items():
                start = time.perf_counter()
                call(func)
                times[label].append(time.perf_counter() - start)
        base = statistics.median(times["float32"])
        cells = ", ".join(f"{label} {statistics.median(t) * 1e3:.3f} ms ({statistics.median(t) / base:.2f}x)"
                          for label, t in times.items())
        print(f"{func.__name__}: {cells}")


if __name__ == "__main__":
    main()
