"""Side-by-side timing of fastsoftmax and the libraries it replaces.

Every case is timed for each library in the same process, interleaved (one
sample of each library per round, rounds repeated), and the median sample is
kept, so machine noise hits all libraries alike.  Speed-ups are peer time /
fastsoftmax time.  ``copy`` is ``np.copyto`` of the same array: one read and
one write of the data, the floor for any softmax that writes a new array.

Used by ``python -m fastsoftmax bench``; importable for notebooks:

>>> from fastsoftmax import bench
>>> rows = bench.run(bench.CASES[:1], budget_s=0.2)     # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import importlib.util
import statistics
import time
from typing import Callable

import numpy as np

from . import _api

__all__ = ["Case", "CASES", "QUICK_CASES", "available_peers", "run", "format_table", "format_time", "plot"]


@dataclasses.dataclass(frozen=True)
class Case:
    op: str                 # "softmax", "log_softmax" or "logsumexp"
    shape: tuple
    dtype: str = "float32"
    out: bool = False       # time with a preallocated output (fastsoftmax out=, copy floor)

    @property
    def label(self) -> str:
        return f"{self.op} {self.dtype} {self.shape}" + (" out=" if self.out else "")


CASES = [
    Case("softmax", (1, 1000)),
    Case("softmax", (256, 1000)),
    Case("softmax", (64, 50257)),
    Case("log_softmax", (64, 50257)),
    Case("logsumexp", (64, 50257)),
    Case("softmax", (1_000_000, 10)),
    Case("softmax", (8, 1_000_000)),
    Case("softmax", (4096, 4096)),
    Case("softmax", (64, 50257), "float64"),
    Case("logsumexp", (256, 1000), "float64"),
    Case("softmax", (4096, 4096), out=True),
]
QUICK_CASES = [Case("softmax", (1, 1000)), Case("softmax", (256, 1000)), Case("softmax", (64, 50257))]


def available_peers() -> list[str]:
    """Peer libraries importable here, in table order (NumPy is always there)."""
    peers = ["numpy"]
    for name in ("scipy", "torch"):
        if importlib.util.find_spec(name) is not None:
            peers.append(name)
    return peers


# ---- the callables being timed ------------------------------------------------

def _numpy_fn(op: str, x: np.ndarray) -> Callable[[], object]:
    """The stable NumPy recipe a user would write by hand."""
    def softmax():
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        e /= e.sum(axis=-1, keepdims=True)
        return e

    def log_softmax():
        shifted = x - x.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    def logsumexp():
        m = x.max(axis=-1, keepdims=True)
        return (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[..., 0]

    return {"softmax": softmax, "log_softmax": log_softmax, "logsumexp": logsumexp}[op]


def _scipy_fn(op: str, x: np.ndarray) -> Callable[[], object]:
    from scipy import special

    fn = getattr(special, op)
    return lambda: fn(x, axis=-1)


def _torch_fn(op: str, x: np.ndarray, threads: int) -> Callable[[], object]:
    import torch

    torch.set_num_threads(threads)
    t = torch.from_numpy(x)
    fn = getattr(torch, op)
    return lambda: fn(t, dim=-1)


def _callables(case: Case, peers: list[str], threads: int) -> dict[str, Callable[[], object]]:
    x = (np.random.default_rng(0).standard_normal(case.shape) * 4).astype(case.dtype)
    fast = getattr(_api, case.op)
    fns: dict[str, Callable[[], object]] = {}
    if case.out:
        buf = np.empty_like(x)
        fns["fastsoftmax"] = lambda: fast(x, out=buf, num_threads=threads)
    else:
        fns["fastsoftmax"] = lambda: fast(x, num_threads=threads)
    for peer in peers:
        if case.out:
            continue            # peers are timed allocating, as users call them
        if peer == "numpy":
            fns["numpy"] = _numpy_fn(case.op, x)
        elif peer == "scipy":
            fns["scipy"] = _scipy_fn(case.op, x)
        elif peer == "torch":
            fns["torch"] = _torch_fn(case.op, x, threads)
    dst = np.empty_like(x)
    fns["copy"] = lambda: np.copyto(dst, x)
    return fns


# ---- timing -----------------------------------------------------------------

def _time_interleaved(fns: dict[str, Callable[[], object]], budget_s: float,
                      min_rounds: int = 5, max_rounds: int = 200) -> dict[str, float]:
    """Median seconds per call of each callable, sampled round-robin."""
    for fn in fns.values():                   # warm up: caches, thread pools, lazy imports
        fn()
    start = time.perf_counter()
    single = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        single[name] = max(time.perf_counter() - t0, 1e-7)
    # Several calls per sample for fast functions, so timer resolution and loop
    # overhead do not dominate (~1 ms per sample).
    inner = {name: max(1, int(1e-3 / s)) for name, s in single.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget_s):
        for name, fn in fns.items():
            k = inner[name]
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
        rounds += 1
    return {name: statistics.median(s) for name, s in samples.items()}


def run(cases=CASES, peers: list[str] | None = None, threads: int = 1, budget_s: float = 2.0,
        progress: Callable[[int, int, Case], None] | None = None) -> list[dict]:
    """Time every case; one dict per case with seconds per library.

    ``threads`` is given to fastsoftmax (``num_threads``) and PyTorch
    (``torch.set_num_threads``); NumPy and SciPy run on one thread anyway."""
    peers = available_peers() if peers is None else peers
    results = []
    for i, case in enumerate(cases):
        if progress is not None:
            progress(i, len(cases), case)
        times = _time_interleaved(_callables(case, peers, threads), budget_s)
        nbytes = int(np.prod(case.shape)) * np.dtype(case.dtype).itemsize
        results.append({"case": case, "times": times, "bytes": nbytes})
    return results


def format_table(results: list[dict]) -> str:
    """A Markdown table: time per call, then each peer's time / fastsoftmax's."""
    libs = ["fastsoftmax"] + [p for p in ("numpy", "scipy", "torch") if any(p in r["times"] for r in results)]
    head = ["case"] + [f"{lib}" for lib in libs] + ["copy floor"] + [f"vs {p}" for p in libs[1:]] + ["fs / copy"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        t = r["times"]
        fs_t = t["fastsoftmax"]
        cells = [r["case"].label] + [format_time(t.get(lib)) for lib in libs] + [format_time(t["copy"])]
        cells += [f"{t[p] / fs_t:.2f}x" if p in t else "-" for p in libs[1:]]
        cells.append(f"{fs_t / t['copy']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_time(seconds: float | None) -> str:
    """Seconds as a short human-readable duration (us or ms)."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def plot(results: list[dict], path: str) -> None:
    """Bar chart of throughput (GB/s of input) per case for each library."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    libs = ["fastsoftmax", "numpy", "scipy", "torch", "copy"]
    libs = [lib for lib in libs if any(lib in r["times"] for r in results)]
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(results)), 5))
    width = 0.8 / len(libs)
    for j, lib in enumerate(libs):
        xs = [i + (j - (len(libs) - 1) / 2) * width for i in range(len(results))]
        gbs = [r["bytes"] / r["times"][lib] / 1e9 if lib in r["times"] else 0 for r in results]
        ax.bar(xs, gbs, width, label=lib)
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels([r["case"].label for r in results], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("throughput, GB/s of input (higher is better)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("softmax-family throughput, side by side")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
