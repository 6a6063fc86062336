"""log_softmax of an on-disk array larger than memory, streamed through Dask.

    pip install ".[dask]" psutil && python benchmarks/dask_larger_than_memory.py

1. Writes a (2**26, 32) float32 array (8 GiB) of logits to a NumPy memmap on
   disk, block by block.  With less than 20 GiB free on the disk it picks
   fewer rows (both files then take at most half the free space), and says so.
2. Computes ``fastsoftmax.log_softmax`` of it lazily and streams the result
   into a second on-disk array (``dask.array.store``), with Dask's progress
   bar.  For comparison, on the same chunks: the same computation written with
   Dask's own operations (``x - x.max(...)``, ``da.exp``, ``.sum``,
   ``da.log``), and a plain copy of the input (the I/O alone).  Between runs
   both files are synced and dropped from the page cache, so every run reads
   its input from disk, as it would if the data did not fit in memory.
3. Reports each run's throughput, the ratio fastsoftmax / Dask operations
   (target >= 2x; both share the same I/O, so a slow disk pulls the ratio
   towards 1), and the peak memory (RSS) of the process tree, which must stay
   below 2 GiB: a block is mapped from the file only while it is used.
4. Checks a sample of rows of the result against in-memory fastsoftmax.

The files live in a temporary folder under --dir (default: the current
folder; it should be a real disk, not a RAM-backed /tmp) and are deleted at
the end.  For figures free of thread noise run it on one core:
``taskset -c 0 python benchmarks/dask_larger_than_memory.py``.  Exits with
status 1 when the peak memory reaches 2 GiB or the sample check fails.
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

import fastsoftmax as fs

try:
    import dask
    import dask.array as da
    import psutil
    from dask.callbacks import Callback
    from dask.diagnostics import ProgressBar
except ImportError as missing:    # pragma: no cover - a message for the user
    sys.exit(f"this benchmark needs dask[array] and psutil: pip install \".[dask]\" psutil ({missing})")

GIB = 1 << 30
FULL_ROWS = 1 << 26
COLUMNS = 32
DTYPE = np.dtype(np.float32)
FREE_NEEDED = 20 * GIB


class DiskRows:
    """A 2-d .npy file read and written block by block.

    Reading maps just the block's rows (a fresh memmap, asked to be read ahead
    as a whole), so nothing stays mapped once Dask has used the block.
    Writing goes through ``os.pwrite``: storing into a mapping of pages that
    are not in the page cache would first read them from disk."""

    def __init__(self, path: str):
        whole = np.load(path, mmap_mode="r")       # maps the file without touching it
        assert whole.ndim == 2 and whole.flags.c_contiguous
        self.shape, self.dtype, self.offset = whole.shape, whole.dtype, whole.offset
        del whole
        self.path = path
        self.ndim = 2

    def _span(self, rows: slice) -> tuple[int, int, int]:
        """(first row, rows, byte offset) of a slice of rows."""
        start, stop, step = rows.indices(self.shape[0])
        assert step == 1
        return start, stop - start, self.offset + start * self.shape[1] * self.dtype.itemsize

    def _rows(self, rows: slice, mode: str) -> np.memmap:
        start, count, offset = self._span(rows)
        return np.memmap(self.path, dtype=self.dtype, mode=mode, shape=(count, self.shape[1]), offset=offset)

    def __getitem__(self, key):
        rows, columns = key
        _, count, offset = self._span(rows)
        if hasattr(os, "posix_fadvise") and count:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, offset, count * self.shape[1] * self.dtype.itemsize, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)
        return self._rows(rows, "r")[:, columns]

    def __setitem__(self, key, value):
        rows, columns = key
        _, count, offset = self._span(rows)
        assert columns == slice(None) or columns.indices(self.shape[1]) == (0, self.shape[1], 1), columns
        data = np.ascontiguousarray(value, dtype=self.dtype)
        assert data.shape == (count, self.shape[1])
        fd = os.open(self.path, os.O_WRONLY)
        try:
            view, written = memoryview(data).cast("B"), 0
            while written < len(view):
                written += os.pwrite(fd, view[written:], offset + written)
        finally:
            os.close(fd)

    def __dask_tokenize__(self):
        return self.path, self.shape, str(self.dtype)


def create(path: str, rows: int, block_rows: int, logits: bool) -> DiskRows:
    """A (rows, 32) float32 .npy file written block by block: random logits
    through a memmap of each block, or zeros (so that every run overwrites
    blocks already on disk)."""
    np.lib.format.open_memmap(path, mode="w+", dtype=DTYPE, shape=(rows, COLUMNS))   # header; unmapped at once
    disk = DiskRows(path)
    rng = np.random.default_rng(0)
    zeros = np.zeros((block_rows, COLUMNS), DTYPE)
    for start in range(0, rows, block_rows):
        stop = min(rows, start + block_rows)
        if not logits:
            disk[start:stop, :] = zeros[: stop - start]
            continue
        block = disk._rows(slice(start, stop), "r+")
        block[:] = rng.standard_normal((stop - start, COLUMNS), dtype=DTYPE) * DTYPE.type(4)
        block.flush()
        del block
    return disk


def settle(path: str) -> float:
    """Write a file's dirty pages to disk and drop it from the page cache;
    returns the seconds the sync took."""
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return time.perf_counter() - start


class PeakMemory:
    """Largest resident set of this process and its children, sampled."""

    def __init__(self, interval: float = 0.02):
        self.peak = 0
        self.interval = interval
        self._stop = threading.Event()
        self._me = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree_rss(self) -> int:
        total = 0
        for process in [self._me] + self._me.children(recursive=True):
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._tree_rss())


class TaskClock(Callback):
    """Wall and CPU seconds from the start of a computation to its last task
    (the progress bar's own last tick, up to a second, is not counted)."""

    def _start(self, dsk):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        self.wall = self.cpu = 0.0

    def _posttask(self, key, result, dsk, state, worker_id):
        self.wall, self.cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu


def copy_only(x):
    """The I/O alone: the input stored unchanged."""
    return x


def with_fastsoftmax(x):
    return fs.log_softmax(x, axis=-1)


def with_dask_operations(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - da.log(da.exp(shifted).sum(axis=-1, keepdims=True))


def run(name: str, recipe, source: DiskRows, target: DiskRows, block_rows: int) -> tuple[float, float]:
    """Store ``recipe`` of the source into the target; (seconds, CPU seconds of this process)."""
    x = da.from_array(source, chunks=(block_rows, COLUMNS), name=f"logits-{name}", meta=np.empty((0, 0), DTYPE))
    result = recipe(x)
    assert result.dtype == DTYPE and result.chunks == x.chunks
    print(f"  {name}:")
    timer = TaskClock()
    with ProgressBar(minimum=1, dt=1.0), timer:
        da.store(result, target, lock=False)
    return timer.wall, timer.cpu


def check_sample(source: DiskRows, target: DiskRows, rows: int, count: int = 4096) -> float:
    """Largest difference between sampled result rows and in-memory fastsoftmax."""
    picks = np.sort(np.random.default_rng(1).choice(rows, size=min(count, rows), replace=False))
    worst = 0.0
    for r in picks:
        x = source[slice(r, r + 1), slice(None)]
        got = np.array(target[slice(r, r + 1), slice(None)])
        want = fs.log_softmax(np.array(x))
        np.testing.assert_allclose(got, want, rtol=8e-6, atol=8e-6, err_msg=f"row {r}")
        worst = max(worst, float(np.max(np.abs(got - want))))
    return worst


def rows_that_fit(rows: int, free: int, where: str) -> int:
    """``rows``, or fewer when the disk has less than 20 GiB free: a power of
    two such that the two files take at most half the free space (said so)."""
    if free >= FREE_NEEDED:
        return rows
    fitting = 1 << max(10, int(math.log2(max(free, 1) / 4 / (COLUMNS * DTYPE.itemsize))))
    if fitting < rows:
        print(f"note: only {free / GIB:.1f} GiB free on {where} (less than {FREE_NEEDED // GIB} GiB): "
              f"using {fitting} rows ({fitting * COLUMNS * DTYPE.itemsize / GIB:.2f} GiB) instead of {rows}")
        return fitting
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=FULL_ROWS, help="rows of 32 float32 (default 2**26: 8 GiB)")
    parser.add_argument("--block-rows", type=int, default=1 << 19, help="rows per Dask chunk (default 2**19: 64 MiB)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of the recipes (the best is reported)")
    parser.add_argument("--workers", type=int, default=None,
                        help="threads of Dask's scheduler (default: the cores, at least 2)")
    parser.add_argument("--dir", default=os.getcwd(), help="where the temporary files go (default: here)")
    args = parser.parse_args(argv)

    rows = rows_that_fit(args.rows, shutil.disk_usage(args.dir).free, args.dir)
    # at least two threads even on one core: one block's disk reads and writes
    # then overlap another's computing, for every recipe alike
    workers = args.workers or max(2, dask.system.CPU_COUNT)
    dask.config.set(num_workers=workers)
    size = rows * COLUMNS * DTYPE.itemsize
    print(f"fastsoftmax {fs.__version__} ({fs.build_info()['simd']}), dask {dask.__version__}, "
          f"{len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores")
    print(f"array ({rows}, {COLUMNS}) float32 = {size / GIB:.2f} GiB, chunks of {args.block_rows} rows, "
          f"{workers} Dask threads")

    folder = tempfile.mkdtemp(prefix="fastsoftmax-dask-", dir=args.dir)
    try:
        with PeakMemory() as memory:
            start = time.perf_counter()
            source = create(os.path.join(folder, "logits.npy"), rows, args.block_rows, logits=True)
            # written once beforehand, so every run overwrites allocated blocks
            target = create(os.path.join(folder, "log_softmax.npy"), rows, args.block_rows, logits=False)
            for path in (source.path, target.path):
                settle(path)
            print(f"wrote the input and a zero output in {time.perf_counter() - start:.1f} s")
            recipes = {"copy (I/O only)": copy_only, "dask operations": with_dask_operations,
                       "fastsoftmax": with_fastsoftmax}
            times = {name: [] for name in recipes}
            cpu = {name: [] for name in recipes}
            syncs = {name: [] for name in recipes}
            for _ in range(args.rounds):
                # fastsoftmax last, so the file ends with its result for the check
                for name, recipe in recipes.items():
                    seconds, cpu_seconds = run(name, recipe, source, target, args.block_rows)
                    times[name].append(seconds)
                    cpu[name].append(cpu_seconds)
                    syncs[name].append(settle(target.path))
                    settle(source.path)
            worst = check_sample(source, target, rows)
        peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print()
    for name in times:
        best = min(times[name])
        print(f"{name:>16}: {best:7.2f} s  {size / GIB / best:6.2f} GiB/s  CPU {min(cpu[name]):6.2f} s  "
              f"(then {min(syncs[name]):.1f} s to sync the output to disk)")
    fast, slow, io = (min(times[name]) for name in ("fastsoftmax", "dask operations", "copy (I/O only)"))
    print(f"throughput ratio fastsoftmax / Dask operations: {slow / fast:.2f}x (target >= 2x)")
    with_sync = ((slow + min(syncs["dask operations"])) / (fast + min(syncs["fastsoftmax"])))
    print(f"  counting the sync of the output to disk: {with_sync:.2f}x")
    print(f"  CPU time of the process: {min(cpu['dask operations']) / min(cpu['fastsoftmax']):.2f}x")
    if fast > io:
        print(f"  time beyond the copy's I/O: {(slow - io) / (fast - io):.2f}x")
    peak = max(memory.peak, peak_self + peak_children)
    print(f"peak memory of the process tree: {peak / GIB:.2f} GiB (sampled tree RSS {memory.peak / GIB:.2f} GiB, "
          f"maximum RSS {peak_self / GIB:.2f} GiB + children {peak_children / GIB:.2f} GiB); limit 2 GiB")
    print(f"sample of 4096 rows vs in-memory fastsoftmax: largest difference {worst:.3g}")
    return 0 if peak < 2 * GIB else 1


if __name__ == "__main__":
    sys.exit(main())
