#!/usr/bin/env bash
# Build and run the standalone C check of the kernels (tests/c/check_kernels.c
# compiled with src/fastsoftmax/csrc/row_kernels.c; no Python involved).
#
#   tools/check_kernels.sh [native]  cc; on x86-64 with the runtime dispatch
#                                    compiled in, run once per variant this CPU
#                                    has (best, then forced AVX2 and baseline)
#   tools/check_kernels.sh aarch64   aarch64-linux-gnu-gcc -static, portable
#                                    baseline only, run under qemu-aarch64
#                                    (Debian: gcc-aarch64-linux-gnu qemu-user)
#
# Exit status: 0 all passed, 1 a check failed, 2 a tool is missing or the build failed.
set -euo pipefail

target=${1:-native}
root=$(cd "$(dirname "$0")/.." && pwd)
csrc=$root/src/fastsoftmax/csrc
# The flags the package is built with, as far as they matter for results
# (setup.py uses -O3; -O2 keeps the emulated build quick).
flags=(-O2 -ffp-contract=fast -fno-math-errno -Wno-psabi -I "$csrc")
sources=("$root/tests/c/check_kernels.c" "$csrc/row_kernels.c")

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "check_kernels: '$1' not found on PATH ($2)" >&2
        exit 2
    fi
}

build_dir=$(mktemp -d "${TMPDIR:-/tmp}/check_kernels.XXXXXX")
trap 'rm -rf "$build_dir"' EXIT
exe=$build_dir/check_kernels

case $target in
native)
    need cc "a C compiler"
    runs=(default)
    if [ "$(uname -m)" = x86_64 ]; then
        # the variants are picked at run time; FASTSOFTMAX_FORCE_ISA lowers the pick
        flags+=(-DFASTSOFTMAX_X86_DISPATCH)
        runs=(default avx2 baseline)
    fi
    echo "+ cc ${flags[*]} ${sources[*]} -o $exe -lm"
    cc "${flags[@]}" "${sources[@]}" -o "$exe" -lm || exit 2
    status=0
    for isa in "${runs[@]}"; do
        echo "== native, FASTSOFTMAX_FORCE_ISA=${isa/default/(unset)}"
        if [ "$isa" = default ]; then
            env -u FASTSOFTMAX_FORCE_ISA "$exe" || status=1
        else
            FASTSOFTMAX_FORCE_ISA=$isa "$exe" || status=1
        fi
    done
    exit $status
    ;;
aarch64)
    need aarch64-linux-gnu-gcc "Debian package gcc-aarch64-linux-gnu"
    need qemu-aarch64 "Debian package qemu-user"
    # no FASTSOFTMAX_X86_DISPATCH: only the portable baseline exists off x86-64
    echo "+ aarch64-linux-gnu-gcc -static ${flags[*]} ${sources[*]} -o $exe -lm"
    aarch64-linux-gnu-gcc -static "${flags[@]}" "${sources[@]}" -o "$exe" -lm || exit 2
    echo "== aarch64 under $(qemu-aarch64 --version | head -n 1)"
    qemu-aarch64 "$exe" || exit 1
    ;;
*)
    echo "usage: $0 [native|aarch64]" >&2
    exit 2
    ;;
esac
