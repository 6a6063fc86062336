"""pytest-benchmark suite: every case of the speed issue, for fastsoftmax and
each installed peer (NumPy stable recipe, scipy.special, PyTorch CPU), single
threaded.  Compare within a case (same ``group``):

    pip install ".[bench]" && python -m pytest benchmarks --benchmark-only

``FASTSOFTMAX_BENCH_THREADS=N`` runs fastsoftmax and PyTorch on N threads.
Speed goals are checked here and in the notes, never in tests/.
"""
import os

import numpy as np
import pytest

from fastsoftmax import bench

THREADS = int(os.environ.get("FASTSOFTMAX_BENCH_THREADS", "1"))
PEERS = bench.available_peers()
LIBS = ["fastsoftmax", "copy"] + PEERS


def _case_id(case):
    return case.label.replace(" ", "-").replace(",", "x").replace("(", "").replace(")", "")


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("case", bench.CASES, ids=_case_id)
def test_case(benchmark, case, lib):
    fns = bench._callables(case, [p for p in PEERS if p == lib], THREADS)
    if lib not in fns:
        pytest.skip(f"{lib} is not timed for {case.label}")
    benchmark.group = case.label
    benchmark.extra_info["bytes"] = int(np.prod(case.shape)) * np.dtype(case.dtype).itemsize
    benchmark(fns[lib])
