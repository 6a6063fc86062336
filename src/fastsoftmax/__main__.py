"""``python -m fastsoftmax``: a short demo on built-in data.

``python -m fastsoftmax bench``: the side-by-side timing table (see --help).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys

import numpy as np

from . import _api, _sample, bench, build_info


DESCRIPTION = """\
Without a command: a short demo on built-in data (the classic [2.0, 1.0, 0.1]
example, a temperature table, large logits in float32, and a quick timing
against NumPy on this machine).  "bench --help" describes the full comparison."""

BENCH_DESCRIPTION = """\
Time fastsoftmax side by side with NumPy's stable recipe, scipy.special, and,
where installed, PyTorch, ONNX Runtime and LiteRT, on the same inputs in one
process (interleaved rounds, medians).  Prints a Markdown table: time per
call, each peer's time over fastsoftmax's, the fastest peer per case, and
fastsoftmax's time over a plain copy of the same array (the copy floor).
Cases marked "out=" time every library writing into a buffer it was given.

For steady figures pin the process to one core, e.g.
  taskset -c 0 python -m fastsoftmax bench --threads 1"""


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in np.asarray(values, dtype=np.float64)) + "]"


def demo(out=sys.stdout) -> None:
    info = build_info()
    w = out.write
    threads = info["default_threads"]
    w(f"fastsoftmax {info['version']}  (OpenMP: {'on' if info['openmp'] else 'off'}, "
      f"threads by default: {threads}, kernels: {info['simd']})\n\n")

    logits = [2.0, 1.0, 0.1]
    w("1. Logits to probabilities\n")
    w(f"   softmax({logits}) = {_fmt(_api.softmax(logits))}   (about [0.66, 0.24, 0.10])\n\n")

    w("2. Temperature on logits [2.0, 1.0, 0.5]: low T sharpens, high T flattens\n")
    for t, note in ((0.0, "greedy: one-hot on the maximum"), (0.5, ""), (1.0, ""), (2.0, ""),
                    (float("inf"), "uniform")):
        probs = _api.softmax([2.0, 1.0, 0.5], temperature=t)
        w(f"   T = {t:<4}  {_fmt(probs)}  {note}\n")
    w("\n")

    big = np.array([100.0, 101.0, 102.0], dtype=np.float32)
    with np.errstate(all="ignore"):
        naive = np.exp(big) / np.exp(big).sum()
    w("3. Large logits [100, 101, 102] in float32\n")
    w(f"   naive exp(x) / sum(exp(x)):  {naive}   (exp(100) overflows float32)\n")
    w(f"   fastsoftmax.softmax:          {_fmt(_api.softmax(big))}\n")
    w(f"   fastsoftmax.log_softmax:      {_fmt(_api.log_softmax(big))}\n")
    w(f"   fastsoftmax.logsumexp:        {float(_api.logsumexp(big)):.4f}\n\n")

    sample_demo(out)

    w("5. Quick timing on this machine, one thread (median of interleaved runs)\n")
    results = bench.run(bench.QUICK_CASES, peers=["numpy"], threads=1, budget_s=0.5)
    for r in results:
        t = r["times"]
        w(f"   {r['case'].label:<28} fastsoftmax {bench.format_time(t['fastsoftmax']):>10}   "
          f"NumPy {bench.format_time(t['numpy']):>10}   -> {t['numpy'] / t['fastsoftmax']:.1f}x faster\n")
    w("\n   Full comparison with SciPy and PyTorch: python -m fastsoftmax bench\n")


def sample_demo(out=sys.stdout) -> None:
    """How often each token is drawn from the same logits under each setting."""
    logits = np.array([2.0, 1.0, 0.5, -1.0])
    draws = 10_000
    batch = np.tile(logits, (draws, 1))       # one row per draw: a single call
    w = out.write
    w(f"4. Sampling the next token: fastsoftmax.sample on logits {logits.tolist()}\n")
    w(f"   share of {draws:,} draws per token (seed 0)\n")
    settings = (
        ("temperature=0", dict(temperature=0.0), "greedy: always the first maximum"),
        ("temperature=1", dict(), "the softmax itself"),
        ("temperature=2", dict(temperature=2.0), "flatter"),
        ("top_k=2", dict(top_k=2), "only the 2 largest logits"),
        ("top_p=0.9", dict(top_p=0.9), "smallest set with 90% of the mass"),
        ("min_p=0.3", dict(min_p=0.3), "p >= 0.3 * p_max"),
    )
    for label, how, note in settings:
        shares = np.bincount(_sample.sample(batch, rng=0, **how), minlength=logits.size) / draws
        w(f"   {label:<14} {_fmt(shares)}  {note}\n")
    w("\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastsoftmax", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", title="commands")
    b = sub.add_parser("bench", help="time fastsoftmax against NumPy, SciPy, PyTorch, ONNX Runtime "
                                     "and LiteRT (those installed) side by side",
                       description=BENCH_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--threads", type=int, default=1,
                   help="threads for fastsoftmax, PyTorch, ONNX Runtime and LiteRT (default 1)")
    b.add_argument("--budget", type=float, default=2.0, help="seconds of sampling per case (default 2)")
    b.add_argument("--quick", action="store_true", help="only the three small cases")
    b.add_argument("--plot", metavar="FILE.png", help="also draw throughput per case (needs matplotlib)")
    args = parser.parse_args(argv)

    if args.command != "bench":
        demo()
        return 0
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install matplotlib (or pip install '.[plot]' from a clone)")
    cases = bench.QUICK_CASES if args.quick else bench.CASES
    info = build_info()
    print(f"fastsoftmax {info['version']} ({info['simd']}, OpenMP {'on' if info['openmp'] else 'off'}); "
          f"peers: {', '.join(bench.available_peers())}; threads: {args.threads}")

    def progress(i, n, case):
        print(f"  [{i + 1}/{n}] {case.label} ...", file=sys.stderr, flush=True)

    results = bench.run(cases, threads=args.threads, budget_s=args.budget, progress=progress)
    print(bench.format_table(results))
    if args.plot:
        bench.plot(results, args.plot)
        print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
