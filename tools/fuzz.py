"""Long fuzz run: every public function of fastsoftmax against its pure-Python reference.

    python tools/fuzz.py --minutes 10
    python tools/fuzz.py --minutes 2 --family backward --family sample

Draws the cases of tests/test_fuzz.py (its FAMILIES: forward, masked,
backward, cross_entropy, kl_div, contrastive_loss, sample, special, dask):
random shapes (empty batches and zero-length rows included), layouts, dtypes,
special values, axes, masks, temperatures, out= modes and thread counts.  It
runs rounds of fresh random examples, one round per family in turn, until the
time is up, stops at the first failure and prints the falsifying example.
A crash of the compiled code (a signal) ends the process: the example that
caused it is the one hypothesis prints last with --verbose.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from hypothesis import HealthCheck, Verbosity, given, settings  # noqa: E402

import test_fuzz  # noqa: E402


def one_round(family: str, examples: int, verbose: bool) -> None:
    strategy, check, _ = test_fuzz.FAMILIES[family]

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              verbosity=Verbosity.verbose if verbose else Verbosity.normal)
    @given(case=strategy())
    def run(case):
        check(case)

    run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget")
    parser.add_argument("--round", type=int, default=500, help="examples per family and round")
    parser.add_argument("--family", action="append", choices=sorted(test_fuzz.FAMILIES),
                        help="fuzz only these families (repeatable; default: all)")
    parser.add_argument("--verbose", action="store_true", help="print every example before it runs")
    args = parser.parse_args()
    families = args.family or list(test_fuzz.FAMILIES)

    start = time.monotonic()
    rounds = examples = 0
    while time.monotonic() - start < args.minutes * 60:
        for family in families:
            one_round(family, args.round, args.verbose)
            examples += args.round
            print(f"round {rounds + 1}, {family}: {examples} examples, {time.monotonic() - start:.0f} s, "
                  "no failure", flush=True)
            if time.monotonic() - start >= args.minutes * 60:
                break
        rounds += 1
    print(f"fuzzing done: {examples} examples of {', '.join(families)} in {time.monotonic() - start:.0f} s, "
          "no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
