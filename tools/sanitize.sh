#!/usr/bin/env bash
# Build fastsoftmax with AddressSanitizer + UndefinedBehaviorSanitizer in a
# throw-away virtual environment and run the test suite under it.
#
#   bash tools/sanitize.sh [pytest args...]
#
# Python itself is not instrumented, so the ASan runtime is preloaded and leak
# checking is off (CPython's own allocations would drown the report); memory
# errors, use-after-free, out-of-bounds accesses and undefined behaviour in
# the extension abort the run with a report.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${SANITIZE_VENV:-/tmp/fastsoftmax-sanitize}
# Build from a copy so that no instrumented object lands in this tree's build/.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar --exclude=./build --exclude='*.so' --exclude=./.git -cf - . | tar -xf - -C "$src"
python -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
FASTSOFTMAX_SANITIZE=1 "$venv/bin/pip" install -q --no-cache-dir "$src[test]"
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$venv/bin/python" -m pytest -p no:cacheprovider "$@" tests
