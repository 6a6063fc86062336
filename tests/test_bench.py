"""``fastsoftmax.bench`` and ``python -m fastsoftmax bench``: the machinery, on tiny
cases with a tiny budget (no speed is checked here).  Optional peers (PyTorch,
ONNX Runtime, LiteRT) are used only where installed."""
import importlib.resources

import numpy as np
import pytest

from fastsoftmax import __main__ as cli
from fastsoftmax import bench
from fastsoftmax.bench import Case

BUDGET = 0.001
TINY = [
    Case("softmax", (4, 16)),
    Case("log_softmax", (4, 16)),
    Case("logsumexp", (5, 6), "float64"),
    Case("softmax", (6, 8), axis=0),
    Case("softmax", (3, 5, 7), axis=1),
    Case("softmax", (9, 11), order="F"),
    Case("softmax", (4, 16), out=True),
    Case("log_softmax", (9, 11), order="F", out=True),
    Case("logsumexp", (3, 5, 7), axis=1, out=True),
]


def _header(table: str) -> list:
    return [c.strip() for c in table.splitlines()[0].strip("|").split("|")]


def test_run_and_format_table():
    peers = bench.available_peers()
    assert peers[0] == "numpy" and set(peers) <= set(bench.PEERS)
    results = bench.run(TINY, budget_s=BUDGET)
    assert [r["case"] for r in results] == TINY
    for r in results:
        t = r["times"]
        assert r["errors"] == {}, r["case"].label
        assert {"fastsoftmax", "copy"} <= set(t) <= {"fastsoftmax", "copy", *peers}
        assert all(v > 0 for v in t.values())
        assert r["bytes"] == int(np.prod(r["case"].shape)) * np.dtype(r["case"].dtype).itemsize
        if r["case"].out:                   # no out= form: not timed there
            assert "numpy" not in t and "scipy" not in t
        else:
            assert "numpy" in t
    table = bench.format_table(results)
    lines = table.splitlines()
    assert len(lines) == 2 + len(TINY)
    present = [p for p in bench.PEERS if any(p in r["times"] for r in results)]
    assert _header(table) == (["case", "fastsoftmax", *present, "copy floor"] + [f"vs {p}" for p in present]
                              + ["best peer", "vs best", "fs / copy"])
    for r, line in zip(results, lines[2:]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == r["case"].label and len(cells) == len(_header(table))
        ran = [p for p in present if p in r["times"]]
        assert cells[-3] == (min(ran, key=r["times"].get) if ran else "-")      # best peer


def test_peers_not_installed_are_omitted(monkeypatch):
    monkeypatch.setattr(bench, "_installed", lambda module: module == "numpy")
    assert bench.available_peers() == ["numpy"]
    results = bench.run(TINY[:1] + TINY[-1:], budget_s=BUDGET)
    assert set(results[0]["times"]) == {"fastsoftmax", "numpy", "copy"}
    assert set(results[1]["times"]) == {"fastsoftmax", "copy"}
    table = bench.format_table(results)
    assert _header(table) == ["case", "fastsoftmax", "numpy", "copy floor", "vs numpy",
                              "best peer", "vs best", "fs / copy"]
    for absent in ("scipy", "torch", "onnxruntime", "litert"):
        assert absent not in table
    out_row = [c.strip() for c in table.splitlines()[-1].strip("|").split("|")]
    assert out_row[2] == "-" and out_row[-3:-1] == ["-", "-"]      # numpy, best peer, vs best


def test_best_peer_and_ratios():
    results = [
        {"case": Case("softmax", (2, 3)), "bytes": 24, "errors": {},
         "times": {"fastsoftmax": 1e-6, "numpy": 4e-6, "torch": 2e-6, "copy": 5e-7}},
        {"case": Case("softmax", (2, 3), out=True), "bytes": 24, "errors": {},
         "times": {"fastsoftmax": 2e-3, "torch": 1e-3, "copy": 5e-4}},
        {"case": Case("softmax", (2, 3), out=True), "bytes": 24, "errors": {},
         "times": {"fastsoftmax": 2e-3, "copy": 5e-4}},
    ]
    assert bench.best_peer(results[0]["times"]) == ("torch", 2e-6)
    assert bench.best_peer(results[2]["times"]) is None
    lines = bench.format_table(results).splitlines()
    assert _header("\n".join(lines)) == ["case", "fastsoftmax", "numpy", "torch", "copy floor", "vs numpy",
                                         "vs torch", "best peer", "vs best", "fs / copy"]
    assert lines[2] == ("| softmax float32 (2, 3) | 1.0 us | 4.0 us | 2.0 us | 0.5 us | 4.00x | 2.00x "
                        "| torch | 2.00x | 2.00 |")
    assert lines[3] == ("| softmax float32 (2, 3) out= | 2.00 ms | - | 1.00 ms | 500.0 us | - | 0.50x "
                        "| torch | 0.50x | 4.00 |")
    assert lines[4].endswith("| - | - | - | 4.00 |")


def test_failing_or_wrong_peer_is_dropped_and_named(monkeypatch):
    monkeypatch.setattr(bench, "_scipy_fn", lambda op, x, axis=-1: 1 / 0)
    monkeypatch.setattr(bench, "_numpy_fn", lambda op, x, axis=-1: (lambda: np.zeros_like(x)))
    results = bench.run(TINY[:1], peers=["numpy", "scipy"], budget_s=BUDGET)
    assert set(results[0]["times"]) == {"fastsoftmax", "copy"}
    errors = results[0]["errors"]
    assert "differs" in errors["numpy"] and "ZeroDivisionError" in errors["scipy"]
    table = bench.format_table(results)
    assert "- numpy left out of softmax float32 (4, 16): result differs" in table
    assert "- scipy left out of softmax float32 (4, 16): ZeroDivisionError" in table


@pytest.mark.parametrize("peer", ["torch", "onnxruntime", "litert"])
def test_optional_peer_runs_where_installed(peer):
    if peer not in bench.available_peers():
        pytest.skip(f"{peer} not installed")
    results = bench.run(TINY, peers=[peer], budget_s=BUDGET)
    assert all(r["errors"] == {} for r in results)
    ran = {r["case"] for r in results if peer in r["times"]}
    expected = {
        "torch": set(TINY),
        "onnxruntime": set(TINY),
        "litert": {c for c in TINY if c.op != "logsumexp" and c.dtype == "float32" and len(c.shape) == 2
                   and c.last_axis},
    }[peer]
    assert ran == expected


def test_cases():
    assert Case("softmax", (2048, 2048), axis=0).label == "softmax float32 (2048, 2048) axis=0"
    assert Case("softmax", (4, 5), order="F", out=True).label == "softmax float32 (4, 5) F-order out="
    assert Case("logsumexp", (3, 4, 5), axis=1).result_shape == (3, 5)
    x = Case("softmax", (4, 5), order="F").make_input()
    assert x.flags.f_contiguous and not x.flags.c_contiguous and x.dtype == np.float32
    for bad in ({"op": "exp"}, {"order": "A"}, {"axis": 2}):
        with pytest.raises(ValueError):
            Case(**{"op": "softmax", "shape": (2, 3), **bad})
    required = {Case("softmax", (100_000, 100)), Case("softmax", (2048, 2048), axis=0),
                Case("softmax", (64, 128, 256), axis=1), Case("softmax", (2048, 2048), order="F")}
    assert required <= set(bench.CASES)
    assert any(c.out for c in bench.CASES) and len(set(bench.CASES)) == len(bench.CASES)


def test_litert_models_are_shipped():
    models = importlib.resources.files("fastsoftmax").joinpath("bench_models")
    for op in ("softmax", "log_softmax"):
        data = models.joinpath(f"{op}-2d-f32.tflite").read_bytes()
        assert data[4:8] == b"TFL3"                 # the FlatBuffer file identifier of a .tflite model


def test_cli_bench(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(bench, "QUICK_CASES", TINY[:2])
    argv = ["bench", "--quick", "--budget", str(BUDGET)]
    plot = None
    try:
        import matplotlib  # noqa: F401
        plot = tmp_path / "bench.png"
        argv += ["--plot", str(plot)]
    except ImportError:
        pass
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "peers: numpy" in out and "| best peer | vs best |" in out
    assert "softmax float32 (4, 16) |" in out and "log_softmax float32 (4, 16) |" in out
    if plot is not None:
        assert plot.stat().st_size > 0
    with pytest.raises(SystemExit):
        cli.main(["bench", "--threads", "0"])


def test_parse_table_reads_back_format_table():
    results = bench.run(TINY, budget_s=BUDGET, threads=2)
    back = bench.parse_table("Some text\n\n" + bench.format_table(results) + "\n\nMore text\n", threads=2)
    assert [r["case"] for r in back] == TINY
    for r, b in zip(results, back):
        assert set(b["times"]) == set(r["times"]) and b["bytes"] == r["bytes"] and b["threads"] == 2
        for lib, t in r["times"].items():            # format_time keeps 0.1 us / 0.01 ms
            assert b["times"][lib] == pytest.approx(t, rel=0.06, abs=6e-8), lib
    with pytest.raises(ValueError, match="no table"):
        bench.parse_table("| a | b |\n|---|---|\n")


def test_stored_benchmark_table_parses():
    import os
    # written by benchmarks/readme_table.py --write; the docs' benchmarks page draws it
    stored = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "benchmark_results.md")
    if not os.path.exists(stored):
        pytest.skip("docs/benchmark_results.md not next to tests/")
    with open(stored, encoding="utf-8") as f:
        results = bench.parse_table(f.read())
    assert len(results) >= 10
    assert all({"fastsoftmax", "copy"} <= set(r["times"]) for r in results)


def test_cpu_name():
    name = bench.cpu_name()
    assert isinstance(name, str) and name.strip() and "\n" not in name


def test_plot_layout(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.collections import LineCollection
    import matplotlib.pyplot as plt

    results = [
        {"case": Case("softmax", (256, 1000)), "bytes": 1_024_000, "errors": {}, "threads": 4,
         "times": {"fastsoftmax": 50e-6, "numpy": 240e-6, "torch": 110e-6, "copy": 16e-6}},
        {"case": Case("softmax", (256, 1000), out=True), "bytes": 1_024_000, "errors": {}, "threads": 4,
         "times": {"fastsoftmax": 52e-6, "torch": 112e-6, "copy": 16e-6}},
    ]
    fig = bench.figure(results, cpu="Test CPU 9000")
    try:
        (ax,) = fig.axes
        title = ax.get_title()
        assert "4 threads" in title and "Test CPU 9000" in title
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        legend_box = ax.get_legend().get_window_extent(renderer)
        axes_box = ax.get_window_extent(renderer)
        assert legend_box.y0 >= axes_box.y1 - 1             # above the axes: covers no bar
        # legible: every label at least 12 points
        assert min(t.get_fontsize() for t in ax.get_yticklabels() + ax.get_legend().get_texts()) >= 12
        bars = {c.get_label(): c for c in ax.containers}
        assert set(bars) == {"fastsoftmax", "numpy", "torch"}  # the copy floor is no bar
        floors = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert [c.get_label() for c in floors] == ["copy floor (np.copyto)"]
        assert len(floors[0].get_segments()) == len(results)
        lo, hi = ax.get_xlim()
        labelled = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert len(labelled) >= 4, labelled                   # more than the decades on a log axis
    finally:
        plt.close(fig)
    fig = bench.figure([dict(results[0], threads=1)], cpu="x")
    assert "1 thread, x" in fig.axes[0].get_title()
    plt.close(fig)
