"""Long fuzz run: fastsoftmax against its pure-Python reference.

    python tools/fuzz.py --minutes 10

Draws random shapes, strides, dtypes, values (subnormals, +-0, +-inf, NaN,
values near the dtype's max), axes, temperatures, out= modes and thread counts
(the strategy in tests/test_fuzz.py), in rounds of fresh random examples until
the time is up.  Stops at the first failure and prints the falsifying example.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402

import test_fuzz  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--round", type=int, default=2000, help="examples per round")
    args = parser.parse_args()

    @settings(max_examples=args.round, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=test_fuzz.fuzz_cases())
    def one_round(case):
        test_fuzz.check(case)

    start = time.monotonic()
    rounds = 0
    while time.monotonic() - start < args.minutes * 60:
        one_round()
        rounds += 1
        print(f"round {rounds}: {rounds * args.round} examples, {time.monotonic() - start:.0f} s, no failure",
              flush=True)
    print(f"fuzzing done: {rounds * args.round} examples in {time.monotonic() - start:.0f} s, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
