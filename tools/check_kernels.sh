#!/usr/bin/env bash
# Build and run the standalone C check of the kernels (tests/c/*.c compiled
# with every src/fastsoftmax/csrc/*.c; no Python involved).
#
#   tools/check_kernels.sh [native]  cc; on x86-64 with the runtime dispatch
#                                    compiled in; the check itself runs every
#                                    variant this CPU has (fs_use_isa)
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
# Every C file of the package and of the check, whatever the files are called:
# the instruction-set variants carry their target pragmas inside, so one set
# of flags builds them all.
shopt -s nullglob
sources=("$root"/tests/c/*.c "$csrc"/*.c)
shopt -u nullglob
[ -f "$root/tests/c/check_kernels.c" ] && [ ${#sources[@]} -gt 1 ] || {
    echo "check_kernels: no sources found under tests/c and $csrc" >&2
    exit 2
}

# The loss rows' checks (tests/c/check_losses.c) are built once the kernel
# table declares the loss rows.
grep -q 'cross_entropy_row' "$csrc/row_kernels.h" && flags+=(-DFS_HAVE_LOSS_ROWS)

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
    # the variants are picked at run time (the check switches with fs_use_isa)
    [ "$(uname -m)" = x86_64 ] && flags+=(-DFASTSOFTMAX_X86_DISPATCH)
    echo "+ cc ${flags[*]} ${sources[*]} -o $exe -lm"
    cc "${flags[@]}" "${sources[@]}" -o "$exe" -lm || exit 2
    echo "== native"
    env -u FASTSOFTMAX_FORCE_ISA "$exe" || exit 1
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
