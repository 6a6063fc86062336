"""Side-by-side timing of fastsoftmax and the libraries it replaces.

Every case is timed for each library in the same process, interleaved (one
sample of each library per round, rounds repeated), and the median sample is
kept, so machine noise hits all libraries alike.  Speed-ups are peer time /
fastsoftmax time; the best peer of each case (the fastest one) is named with
fastsoftmax's ratio to it.  ``copy`` is ``np.copyto`` of the same array: one
read and one write of the data, the floor for any softmax that writes a new
array.

Peers, each only where installed (its column is left out otherwise): NumPy's
stable recipe, ``scipy.special``, PyTorch (CPU), ONNX Runtime (needs the
``onnxruntime`` and ``onnx`` packages; a one-node graph, ``Softmax``,
``LogSoftmax`` or ``ReduceLogSumExp``, run sequentially) and LiteRT
(``ai_edge_litert``: Google's XNNPACK kernels; one-operator float32 models
shipped in ``bench_models/``, 2-D input, last axis, softmax and log_softmax
only).  A peer that cannot do a case shows ``-``.

Cases marked ``out=`` time every library writing into a buffer it was given
(fastsoftmax ``out=``, PyTorch ``out=``, ONNX Runtime I/O binding, LiteRT's
own input and output buffers): kernel speed without allocation.  NumPy and
SciPy have no such form and are not timed there.  Inputs not in C order are
copied to C order inside the timed call by the peers that need it (ONNX
Runtime I/O binding, LiteRT), as their users would have to.

Before timing, each peer's result is compared with fastsoftmax's (loosely:
the check is for wiring mistakes, not accuracy); a peer that disagrees or
fails is dropped from that case and named under the table.

Used by ``python -m fastsoftmax bench``; importable for notebooks:

>>> from fastsoftmax import bench
>>> rows = bench.run(bench.CASES[:1], budget_s=0.2)     # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import importlib.util
import platform
import re
import statistics
import subprocess
import sys
import time
from typing import Callable

import numpy as np

from . import _api

__all__ = ["Case", "CASES", "QUICK_CASES", "PEERS", "available_peers", "run", "best_peer",
           "format_table", "format_time", "plot", "figure", "parse_table", "cpu_name"]

_OPS = ("softmax", "log_softmax", "logsumexp")


@dataclasses.dataclass(frozen=True)
class Case:
    op: str                 # "softmax", "log_softmax" or "logsumexp"
    shape: tuple
    dtype: str = "float32"
    out: bool = False       # every library writes into a buffer it was given
    axis: int = -1          # the reduced axis
    order: str = "C"        # memory layout of the input: "C" or "F" (Fortran)

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"Case: op must be one of {_OPS}, got {self.op!r}")
        if self.order not in ("C", "F"):
            raise ValueError(f"Case: order must be 'C' or 'F', got {self.order!r}")
        if not -len(self.shape) <= self.axis < len(self.shape):
            raise ValueError(f"Case: axis {self.axis} out of range for shape {self.shape}")

    @property
    def label(self) -> str:
        return (f"{self.op} {self.dtype} {self.shape}"
                + (f" axis={self.axis}" if self.axis != -1 else "")
                + (" F-order" if self.order == "F" else "")
                + (" out=" if self.out else ""))

    @property
    def last_axis(self) -> bool:
        return self.axis % len(self.shape) == len(self.shape) - 1

    @property
    def result_shape(self) -> tuple:
        if self.op != "logsumexp":
            return tuple(self.shape)
        ax = self.axis % len(self.shape)
        return tuple(s for i, s in enumerate(self.shape) if i != ax)

    def make_input(self) -> np.ndarray:
        x = (np.random.default_rng(0).standard_normal(self.shape) * 4).astype(self.dtype)
        return np.asfortranarray(x) if self.order == "F" else x


CASES = [
    Case("softmax", (1, 1000)),
    Case("softmax", (256, 1000)),
    Case("softmax", (64, 50257)),
    Case("log_softmax", (64, 50257)),
    Case("logsumexp", (64, 50257)),
    Case("softmax", (1_000_000, 10)),
    Case("softmax", (100_000, 100)),
    Case("softmax", (8, 1_000_000)),
    Case("softmax", (4096, 4096)),
    Case("softmax", (2048, 2048), axis=0),
    Case("softmax", (64, 128, 256), axis=1),
    Case("softmax", (2048, 2048), order="F"),
    Case("softmax", (64, 50257), "float64"),
    Case("logsumexp", (256, 1000), "float64"),
    Case("softmax", (1, 1000), out=True),
    Case("softmax", (256, 1000), out=True),
    Case("softmax", (64, 50257), out=True),
    Case("log_softmax", (64, 50257), out=True),
    Case("logsumexp", (64, 50257), out=True),
    Case("softmax", (4096, 4096), out=True),
]
QUICK_CASES = [Case("softmax", (1, 1000)), Case("softmax", (256, 1000)), Case("softmax", (64, 50257))]

# Peers in table order, with the modules each needs.
PEERS = ("numpy", "scipy", "torch", "onnxruntime", "litert")
_PEER_MODULES = {"numpy": ("numpy",), "scipy": ("scipy",), "torch": ("torch",),
                 "onnxruntime": ("onnxruntime", "onnx"), "litert": ("ai_edge_litert",)}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_peers() -> list[str]:
    """Peer libraries importable here, in table order (NumPy is always there)."""
    return [p for p in PEERS if all(_installed(m) for m in _PEER_MODULES[p])]


# ---- the callables being timed ------------------------------------------------
# Each maker returns a zero-argument callable that returns the result, or None
# where the peer has no form for the case (an "out=" case, an unsupported op,
# dtype or axis).

def _numpy_fn(op: str, x: np.ndarray, axis: int = -1) -> Callable[[], object]:
    """The stable NumPy recipe a user would write by hand."""
    def softmax():
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e

    def log_softmax():
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    def logsumexp():
        m = x.max(axis=axis, keepdims=True)
        return np.squeeze(m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True)), axis=axis)

    return {"softmax": softmax, "log_softmax": log_softmax, "logsumexp": logsumexp}[op]


def _scipy_fn(op: str, x: np.ndarray, axis: int = -1) -> Callable[[], object]:
    from scipy import special

    fn = getattr(special, op)
    return lambda: fn(x, axis=axis)


def _torch_fn(op: str, x: np.ndarray, threads: int, axis: int = -1,
              out_shape: tuple | None = None) -> Callable[[], object]:
    """PyTorch on a tensor sharing ``x``'s memory; with ``out_shape``, into ``out=``."""
    import torch

    torch.set_num_threads(threads)
    t = torch.from_numpy(x)
    fn = getattr(torch, op)
    if out_shape is None:
        return lambda: fn(t, axis)
    out = torch.empty_like(t) if op != "logsumexp" else torch.empty(out_shape, dtype=t.dtype)
    return lambda: fn(t, axis, out=out)


def _onnxruntime_fn(case: Case, x: np.ndarray, threads: int) -> Callable[[], object]:
    """ONNX Runtime's CPU provider on a one-node graph; ``out=`` cases use I/O binding."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}[x.dtype]
    ax = case.axis % x.ndim
    out_shape = list(case.result_shape)
    if case.op == "logsumexp":
        axes = [helper.make_tensor("axes", TensorProto.INT64, [1], [ax])]
        node = helper.make_node("ReduceLogSumExp", ["x", "axes"], ["y"], keepdims=0)
    else:
        axes = []
        node = helper.make_node("Softmax" if case.op == "softmax" else "LogSoftmax", ["x"], ["y"], axis=ax)
    graph = helper.make_graph([node], "fastsoftmax_bench",
                              [helper.make_tensor_value_info("x", elem, list(x.shape))],
                              [helper.make_tensor_value_info("y", elem, out_shape)], initializer=axes)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8                    # readable by older ONNX Runtime releases too
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    if threads > 1:                         # idle pool threads must not spin while others are timed
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    if not case.out:
        return lambda: sess.run(["y"], {"x": x})[0]

    src = x if x.flags.c_contiguous else np.empty(x.shape, x.dtype)      # the binding reads C order
    out = np.empty(out_shape, dtype=x.dtype)
    binding = sess.io_binding()
    binding.bind_input("x", "cpu", 0, x.dtype, list(x.shape), src.ctypes.data)
    binding.bind_output("y", "cpu", 0, x.dtype, out_shape, out.ctypes.data)

    def into():
        if src is not x:
            np.copyto(src, x)
        sess.run_with_iobinding(binding)
        return out
    return into


def _litert_model(op: str) -> bytes:
    return importlib.resources.files(__package__).joinpath("bench_models").joinpath(
        f"{op}-2d-f32.tflite").read_bytes()


def _litert_fn(case: Case, x: np.ndarray, threads: int) -> Callable[[], object] | None:
    """LiteRT (XNNPACK) on a one-operator model resized to the case's shape."""
    if case.op == "logsumexp" or x.dtype != np.float32 or x.ndim != 2 or not case.last_axis:
        return None
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=_litert_model(case.op), num_threads=threads)
    i_in, i_out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    it.resize_tensor_input(i_in, list(x.shape))
    it.allocate_tensors()
    if not case.out:
        def new():
            it.set_tensor(i_in, x)
            it.invoke()
            return it.get_tensor(i_out)
        return new

    # Its own buffers: the input lives in the interpreter's input tensor (copied
    # in per call only when x is not in C order); the result is a view of its
    # output tensor.  LiteRT refuses to invoke while such views are alive, so a
    # caller must drop the returned array before the next call.
    it.set_tensor(i_in, x)
    in_view, out_view = it.tensor(i_in), it.tensor(i_out)
    c_order = x.flags.c_contiguous

    def into():
        if not c_order:
            np.copyto(in_view(), x)
        it.invoke()
        return out_view()
    return into


def _peer_fn(peer: str, case: Case, x: np.ndarray, threads: int) -> Callable[[], object] | None:
    if peer == "numpy":
        return None if case.out else _numpy_fn(case.op, x, case.axis)
    if peer == "scipy":
        return None if case.out else _scipy_fn(case.op, x, case.axis)
    if peer == "torch":
        return _torch_fn(case.op, x, threads, case.axis, case.result_shape if case.out else None)
    if peer == "onnxruntime":
        return _onnxruntime_fn(case, x, threads)
    if peer == "litert":
        return _litert_fn(case, x, threads)
    raise ValueError(f"unknown peer {peer!r}; known are {PEERS}")


def _callables(case: Case, peers: list[str], threads: int,
               errors: dict[str, str] | None = None) -> dict[str, Callable[[], object]]:
    """fastsoftmax, each peer that can do ``case``, and the copy floor.

    A peer that raises while being set up is left out, with the reason in
    ``errors`` (when given)."""
    x = case.make_input()
    fast = getattr(_api, case.op)
    fns: dict[str, Callable[[], object]] = {}
    if case.out:
        buf = np.empty_like(x) if case.op != "logsumexp" else np.empty(case.result_shape, x.dtype)
        fns["fastsoftmax"] = lambda: fast(x, case.axis, out=buf, num_threads=threads)
    else:
        fns["fastsoftmax"] = lambda: fast(x, case.axis, num_threads=threads)
    for peer in peers:
        try:
            fn = _peer_fn(peer, case, x, threads)
        except Exception as exc:  # noqa: BLE001 - a broken or too-old peer install
            if errors is not None:
                errors[peer] = f"{type(exc).__name__}: {str(exc)[:200]}"
            continue
        if fn is not None:
            fns[peer] = fn
    dst = np.empty_like(x)
    fns["copy"] = lambda: np.copyto(dst, x)
    return fns


def _check_peers(fns: dict[str, Callable[[], object]], errors: dict[str, str]) -> None:
    """Drop the peers whose result differs from fastsoftmax's (a wiring mistake)."""
    ref = np.array(fns["fastsoftmax"](), dtype=np.float64)
    for name in [n for n in fns if n not in ("fastsoftmax", "copy")]:
        try:
            res = fns[name]()
            if not isinstance(res, np.ndarray) and hasattr(res, "numpy"):
                res = res.numpy()                               # a torch tensor
            # A copy: LiteRT's "out=" result is a view that must not outlive the call.
            got = np.array(res, dtype=np.float64)
            del res
        except Exception as exc:  # noqa: BLE001
            errors[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
            del fns[name]
            continue
        if got.shape != ref.shape or not np.allclose(got, ref, rtol=1e-3, atol=1e-5, equal_nan=True):
            diff = np.max(np.abs(got - ref)) if got.shape == ref.shape else f"shape {got.shape}"
            errors[name] = f"result differs from fastsoftmax's (max abs difference {diff})"
            del fns[name]


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
    """Time every case; one dict per case.

    Each dict holds ``case``, ``times`` (seconds per call for fastsoftmax,
    ``copy`` and each peer that ran the case), ``bytes`` (input size),
    ``errors`` (peer -> why it was dropped from this case; usually empty) and
    ``threads``.
    ``threads`` is given to fastsoftmax (``num_threads``), PyTorch
    (``torch.set_num_threads``), ONNX Runtime (intra-op threads) and LiteRT;
    NumPy and SciPy run on one thread anyway."""
    peers = available_peers() if peers is None else list(peers)
    results = []
    for i, case in enumerate(cases):
        if progress is not None:
            progress(i, len(cases), case)
        errors: dict[str, str] = {}
        fns = _callables(case, peers, threads, errors)
        _check_peers(fns, errors)
        times = _time_interleaved(fns, budget_s)
        nbytes = int(np.prod(case.shape)) * np.dtype(case.dtype).itemsize
        results.append({"case": case, "times": times, "bytes": nbytes, "errors": errors, "threads": threads})
    return results


def best_peer(times: dict[str, float]) -> tuple[str, float] | None:
    """(name, seconds) of the fastest peer in one case's ``times``, or None."""
    peers = [(t, name) for name, t in times.items() if name not in ("fastsoftmax", "copy")]
    if not peers:
        return None
    t, name = min(peers)
    return name, t


def format_table(results: list[dict]) -> str:
    """A Markdown table: time per call, each peer's time / fastsoftmax's, the
    best (fastest) peer of each case and fastsoftmax's ratio to it.

    Only peers that ran at least one case get columns; peers dropped from a
    case for an error are listed under the table."""
    peers = [p for p in PEERS if any(p in r["times"] for r in results)]
    head = (["case", "fastsoftmax"] + peers + ["copy floor"] + [f"vs {p}" for p in peers]
            + ["best peer", "vs best", "fs / copy"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for r in results:
        t = r["times"]
        fs_t = t["fastsoftmax"]
        cells = [r["case"].label] + [format_time(t.get(lib)) for lib in ["fastsoftmax"] + peers]
        cells.append(format_time(t["copy"]))
        cells += [f"{t[p] / fs_t:.2f}x" if p in t else "-" for p in peers]
        best = best_peer(t)
        cells += [best[0], f"{best[1] / fs_t:.2f}x"] if best else ["-", "-"]
        cells.append(f"{fs_t / t['copy']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
        notes += [f"- {peer} left out of {r['case'].label}: {why}"
                  for peer, why in r.get("errors", {}).items()]
    return "\n".join(lines + ([""] + notes if notes else []))


def format_time(seconds: float | None) -> str:
    """Seconds as a short human-readable duration (us or ms)."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def cpu_name() -> str:
    """The processor's model name, as the operating system reports it."""
    try:
        if sys.platform.startswith("linux"):
            with open("/proc/cpuinfo") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                        return value.strip()
        elif sys.platform == "darwin":
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5).stdout.strip() or platform.machine()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def figure(results: list[dict], cpu: str | None = None):
    """The throughput chart of :func:`plot`, as an open matplotlib figure.

    ``cpu`` names the processor in the title (default: this one's name)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    libs = [lib for lib in ["fastsoftmax", *PEERS] if any(lib in r["times"] for r in results)]
    # One horizontal group of bars per case, top to bottom in table order, so
    # that the case labels read without rotation however many cases there are.
    # About as wide as a docs page's column, so that 12-point text stays at
    # least 12 pixels high on screen.
    fig, ax = plt.subplots(figsize=(9.5, 1.6 + 0.105 * len(results) * (len(libs) + 1)))
    height = 0.8 / len(libs)

    def gbs(r: dict, lib: str) -> float:
        return r["bytes"] / r["times"][lib] / 1e9

    for j, lib in enumerate(libs):
        ys = [i + (j - (len(libs) - 1) / 2) * height for i, r in enumerate(results) if lib in r["times"]]
        ax.barh(ys, [gbs(r, lib) for r in results if lib in r["times"]], height, label=lib)
    # The floor is a level per case, not a library: a line across the case's bars.
    cases = range(len(results))
    ax.vlines([gbs(r, "copy") for r in results], [i - 0.45 for i in cases], [i + 0.45 for i in cases],
              colors="black", linewidths=2, label="copy floor (np.copyto)")
    ax.set_yticks(list(cases))
    ax.set_yticklabels([r["case"].label for r in results], fontsize=12)
    ax.set_ylim(len(results) - 0.4, -0.6)
    ax.set_xlabel("throughput, GB/s of input (higher is better)", fontsize=12)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.grid(axis="x", which="major", alpha=0.3)
    ax.tick_params(axis="x", labelsize=12)
    # above the bars in one row, so that it never covers a bar nor narrows the plot
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(libs) + 1, fontsize=12, frameon=False,
              handlelength=1.2, columnspacing=1.0)
    counts = sorted({r["threads"] for r in results if "threads" in r})
    if len(counts) == 1:
        thread_text = f"{counts[0]} thread" + ("" if counts == [1] else "s")
    else:
        thread_text = f"{'/'.join(map(str, counts))} threads" if counts else "threads not recorded"
    ax.set_title(f"{thread_text}, {cpu or cpu_name()}", fontsize=13, pad=30)
    fig.tight_layout()
    return fig


def plot(results: list[dict], path: str, cpu: str | None = None) -> None:
    """Bar chart of throughput (GB/s of input) per case for each library, saved to ``path``.

    The copy floor of each case (``np.copyto`` of the same array) is drawn as
    a black line across the case's bars; the title names the thread count
    and the CPU (``cpu``, default this one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = figure(results, cpu)
    fig.savefig(path, dpi=120)
    plt.close(fig)


_LABEL = re.compile(r"^(?P<op>\w+) (?P<dtype>\w+) \((?P<shape>[\d, ]+)\)(?P<rest>.*)$")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_table(markdown: str, threads: int = 1) -> list[dict]:
    """Results read back from a table that :func:`format_table` wrote.

    The first Markdown table whose header starts with ``| case | fastsoftmax |``
    is read; each row gives a result dict as :func:`run` returns (``case``,
    ``times``, ``bytes``, ``errors``, ``threads``), so a saved table can be
    drawn again with :func:`plot`.  Ratio columns are ignored."""
    lines = [line.strip() for line in markdown.splitlines()]
    try:
        top = next(i for i, line in enumerate(lines) if line.replace(" ", "").startswith("|case|fastsoftmax|"))
    except StopIteration:
        raise ValueError("no table with a '| case | fastsoftmax |' header found") from None
    head = [c.strip() for c in lines[top].strip("|").split("|")]
    libs = {i: ("copy" if name == "copy floor" else name) for i, name in enumerate(head)
            if name in ("fastsoftmax", "copy floor", *PEERS)}
    results = []
    for line in lines[top + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        m = _LABEL.match(cells[0])
        if m is None:
            raise ValueError(f"not a case label: {cells[0]!r}")
        rest = m["rest"].split()
        axis = next((int(w[5:]) for w in rest if w.startswith("axis=")), -1)
        case = Case(m["op"], tuple(int(v) for v in m["shape"].split(",") if v.strip()), m["dtype"],
                    out="out=" in rest, axis=axis, order="F" if "F-order" in rest else "C")
        times = {}
        for i, lib in libs.items():
            value, _, unit = cells[i].partition(" ")
            if cells[i] != "-":
                times[lib] = float(value) * _UNITS[unit]
        nbytes = int(np.prod(case.shape)) * np.dtype(case.dtype).itemsize
        results.append({"case": case, "times": times, "bytes": nbytes, "errors": {}, "threads": threads})
    return results
