"""Old against new in separate processes, for the cases where one process
holding both builds biases the second (large fresh results: the allocator
and the result caches of the two builds interfere; an A/A run of
ab_compare.py shows it).  Each trial starts one process per build, in
alternating order, and each process times every case; the table gives each
case's median over the trials.

    taskset -c 0 python benchmarks/ab_processes.py --old DIR --new DIR --trials 8 --only "where,backward"
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def child(package, only, threads, rounds):
    sys.path.insert(0, HERE)
    from ab_compare import cases, load_old, timed
    m = load_old(package)
    result = {}
    for name, make in cases(m, threads).items():
        if only and not any(w in name for w in only):
            continue
        f = make(m)
        f()
        repeat = max(1, min(200, int(0.02 / max(timed(f, 1), 1e-7))))
        result[name] = statistics.median(timed(f, repeat) for _ in range(rounds))
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", help="folder of the old build's package (any name)")
    ap.add_argument("--new", help="folder of the new build's package")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.child and not (args.old and args.new):
        ap.error("--old and --new are both needed")
    only = [s for s in args.only.split(",") if s]
    if args.child:
        child(args.child, only, args.threads, args.rounds)
        return
    times = {"old": {}, "new": {}}
    for trial in range(args.trials):
        order = [("old", args.old), ("new", args.new)]
        for label, package in (order if trial % 2 == 0 else order[::-1]):
            out = subprocess.run([sys.executable, __file__, "--child", package, "--only", args.only,
                                  "--threads", str(args.threads), "--rounds", str(args.rounds)],
                                 capture_output=True, text=True, check=True).stdout
            for name, t in json.loads(out.splitlines()[-1]).items():
                times[label].setdefault(name, []).append(t)
    print(f"{'case':44s} {'old us':>10s} {'new us':>10s} {'old/new':>8s}")
    for name in times["old"]:
        mo, mn = statistics.median(times["old"][name]), statistics.median(times["new"][name])
        print(f"{name:44s} {mo * 1e6:10.1f} {mn * 1e6:10.1f} {mo / mn:8.3f}", flush=True)


if __name__ == "__main__":
    main()
