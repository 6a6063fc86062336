"""The benchmark figures of the README and of the docs' benchmarks page, measured here.

    taskset -c 0 python benchmarks/readme_table.py            # print both tables
    taskset -c 0 python benchmarks/readme_table.py --write    # and store them

One run of :func:`fastsoftmax.bench.run` over every case of
``python -m fastsoftmax bench`` (one thread for every library, interleaved
rounds, medians).  It prints, and with ``--write`` stores:

- the README's small table (a few cases, time and slowdown of each peer),
  between the ``benchmark-table`` markers in README.md;
- the full table that ``python -m fastsoftmax bench`` prints, with the CPU and
  the versions above it, as docs/benchmark_results.md, which the benchmarks
  page and its chart read when the docs are built.

``--quick`` times only the README's cases (and writes only the README).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import re
import sys
import textwrap

import fastsoftmax
from fastsoftmax import bench

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
README = os.path.join(ROOT, "README.md")
DOCS_RESULTS = os.path.join(ROOT, "docs", "benchmark_results.md")
START, END = "<!-- benchmark-table:start -->", "<!-- benchmark-table:end -->"

# The README's cases: a classifier batch, a language model's vocabulary (each
# function), many short rows, and float64.
README_CASES = [
    bench.Case("softmax", (256, 1000)),
    bench.Case("softmax", (64, 50257)),
    bench.Case("log_softmax", (64, 50257)),
    bench.Case("logsumexp", (64, 50257)),
    bench.Case("softmax", (1_000_000, 10)),
    bench.Case("softmax", (64, 50257), "float64"),
]
PEER_NAMES = {"numpy": "NumPy", "scipy": "scipy.special", "torch": "PyTorch",
              "onnxruntime": "ONNX Runtime", "litert": "LiteRT"}


def _cpu_field(name: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def _amd_core(family: str | None, model: str | None) -> str:
    """AMD's core generation from /proc/cpuinfo's family and model (Zen 3 to 5), else ""."""
    if not (family and model and family.isdigit() and model.isdigit()):
        return ""
    f, m = int(family), int(model)
    if f == 25:
        return "Zen 4" if 0x10 <= m <= 0x1F or 0x60 <= m <= 0xAF else "Zen 3"
    return "Zen 5" if f == 26 else ""


def machine() -> str:
    """The CPU in one line: model name, core generation and family/model where Linux
    says, CPU count, virtual or not, and the kernels fastsoftmax picked."""
    family, model = _cpu_field("cpu family"), _cpu_field("model")
    core = _amd_core(family, model) if "AMD" in bench.cpu_name() else ""
    ident = f" ({', '.join(filter(None, [core, f'family {family}, model {model}']))})" if family and model else ""
    virtual = ", virtual machine" if " hypervisor" in (_cpu_field("flags") or "") else ""
    return (f"{bench.cpu_name()}{ident}, {os.cpu_count()} CPUs{virtual}; "
            f"fastsoftmax kernels {fastsoftmax.build_info()['simd']}")


def versions(peers: list[str]) -> str:
    names = {"numpy": "numpy", "scipy": "scipy", "torch": "torch", "onnxruntime": "onnxruntime",
             "litert": "ai-edge-litert"}
    parts = [f"Python {platform.python_version()}", f"fastsoftmax {fastsoftmax.__version__}"]
    for peer in peers:
        try:
            parts.append(f"{PEER_NAMES[peer]} {importlib.metadata.version(names[peer])}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(parts)


def readme_table(results: list[dict]) -> str:
    """Time per call of fastsoftmax and each peer, the peer's slowdown in brackets."""
    peers = [p for p in bench.PEERS if any(p in r["times"] for r in results)]
    head = ["case", "fastsoftmax"] + [PEER_NAMES[p] for p in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        t = r["times"]
        # float32 unless the label says otherwise, which keeps the lines short
        cells = [r["case"].label.replace(" float32", ""), bench.format_time(t["fastsoftmax"])]
        cells += [f"{bench.format_time(t[p])} ({t[p] / t['fastsoftmax']:.1f}x)" if p in t else "-"
                  for p in peers]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def caption(peers: list[str], full: bool) -> str:
    command = "taskset -c 0 python benchmarks/readme_table.py" + ("" if full else " --quick")
    text = (f"Measured on {machine()}; float32 unless marked; one thread for every library, "
            f"medians of interleaved rounds, {datetime.date.today().isoformat()}, with `{command}`. "
            f"{versions(peers)}.")
    return textwrap.fill(text, width=96, break_on_hyphens=False, break_long_words=False)


def replace_block(text: str, block: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return pattern.sub(lambda _: f"{START}\n{block}\n{END}", text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the README's cases")
    parser.add_argument("--write", action="store_true", help="store the tables (README.md, docs/benchmark_results.md)")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds of sampling per case (default 2)")
    args = parser.parse_args(argv)

    cases = list(README_CASES) if args.quick else list(bench.CASES)
    cases += [c for c in README_CASES if c not in cases]
    peers = bench.available_peers()
    results = bench.run(cases, peers=peers, threads=1, budget_s=args.budget,
                        progress=lambda i, n, c: print(f"  [{i + 1}/{n}] {c.label}", file=sys.stderr, flush=True))
    by_case = {r["case"]: r for r in results}
    small = readme_table([by_case[c] for c in README_CASES]) + "\n\n" + caption(peers, not args.quick)
    print(small)
    if not args.quick:
        full = caption(peers, True) + "\n\n" + bench.format_table([by_case[c] for c in bench.CASES]) + "\n"
        print("\n" + full)
    if args.write:
        with open(README, encoding="utf-8") as f:
            text = f.read()
        with open(README, "w", encoding="utf-8") as f:
            f.write(replace_block(text, small))
        if not args.quick:
            with open(DOCS_RESULTS, "w", encoding="utf-8") as f:
                f.write(full)
    return 0


if __name__ == "__main__":
    sys.exit(main())
