#!/usr/bin/env bash
# Instructions per element of the row kernels (issue 12): a count, not a
# timing, so it is the same on every run and on a busy machine.
#
#   tools/count_instructions.sh [--src DIR] [--only x86|aarch64]
#
#   --src DIR   count the kernels of another tree: DIR is a checkout root (with
#               src/fastsoftmax/csrc) or the csrc folder itself.  Default: this
#               tree.  E.g. the 0.1 release:
#                 mkdir /tmp/before && git archive d5f71e2 src | tar -x -C /tmp/before
#                 tools/count_instructions.sh --src /tmp/before
#   --only P    run only the x86-64 (valgrind) or the aarch64 (QEMU) part
#
# tools/count_driver.c makes one fs_rows_f32/_f64 call (T = 1) on ROWS rows of
# n seeded N(0, 4) values.  Each shape is counted twice, with R and with 2R
# rows, and instructions per element = (count(2R) - count(R)) / (R * n): what
# does not grow with the rows (process start, dynamic loading, the dispatcher,
# parameter setup) cancels.  The driver always fills 2R rows, so generating the
# data costs the same in both runs and cancels too.
#
#   x86-64:  built with the runtime dispatch, counted with callgrind (total Ir)
#            once per variant: baseline and avx2 through FASTSOFTMAX_FORCE_ISA,
#            avx512 unforced when the CPU has it -- and only if valgrind passes
#            AVX-512 on to the program (valgrind has no AVX-512 support: it hides
#            it from CPUID, so the dispatcher picks avx2; the script checks the
#            variant the driver reports and skips avx512 then).
#   aarch64: cross-built statically (portable baseline; there is no dispatch off
#            x86-64) and counted under qemu-aarch64 with the TCG plugin in
#            tools/qemu_insn_count.c.  Skipped, saying why, when
#            aarch64-linux-gnu-gcc or qemu-aarch64 is missing.
#
# Output: one line per variant and shape, instructions per element.
set -euo pipefail
# a failing valgrind/qemu inside $(...) must stop the script too
shopt -s inherit_errexit

root=$(cd "$(dirname "$0")/.." && pwd)
csrc=$root/src/fastsoftmax/csrc
only=all
while [ $# -gt 0 ]; do
    case $1 in
    --src) [ -d "$2/src/fastsoftmax/csrc" ] && csrc=$(cd "$2/src/fastsoftmax/csrc" && pwd) \
               || csrc=$(cd "$2" && pwd); shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,/^# Output/p' "$0"; exit 0 ;;
    *) echo "count_instructions: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$csrc/row_kernels.h" ] || { echo "count_instructions: no row_kernels.h in $csrc" >&2; exit 2; }

# The flags setup.py builds the package with (minus OpenMP: the driver is
# single-threaded), so the counted code is the code that ships.
flags=(-O3 -ffp-contract=fast -fno-math-errno -Wno-psabi -I "$csrc")
# every C file of the kernels, whatever the tree calls them (the variants carry
# their target pragmas inside)
sources=("$root/tools/count_driver.c" "$csrc"/*.c)

# Shapes: dtype op n R (rows of the smaller run; the larger has 2R).
# n = 1000 with 256 rows is the batch-of-rows case; 50257 (a GPT-2 vocabulary)
# is one long row, below the length where the current kernels chunk rows.
shapes=(
    "f32 softmax 1000 256"
    "f32 log_softmax 1000 256"
    "f32 logsumexp 1000 256"
    "f32 softmax 50257 4"
)

build=$(mktemp -d "${TMPDIR:-/tmp}/count_instructions.XXXXXX")
trap 'rm -rf "$build"' EXIT

have() { command -v "$1" >/dev/null 2>&1; }

# count_one COUNTER EXE ISA DTYPE OP N ROWS FILL -> prints the instruction count.
# COUNTER is a function name (callgrind_count / qemu_count).  The driver's
# stderr names the variant it ran; it is kept in $build/variant for checking.
callgrind_count() {  # exe isa args...
    local exe=$1 isa=$2; shift 2
    local out=$build/callgrind.out
    rm -f "$out"
    # env -u when unforced: an inherited FASTSOFTMAX_FORCE_ISA must not leak in
    if [ "$isa" = best ]; then
        env -u FASTSOFTMAX_FORCE_ISA valgrind -q --tool=callgrind --callgrind-out-file="$out" \
            "$exe" "$@" 2>"$build/variant"
    else
        FASTSOFTMAX_FORCE_ISA=$isa valgrind -q --tool=callgrind --callgrind-out-file="$out" \
            "$exe" "$@" 2>"$build/variant"
    fi
    # "summary: <Ir>" is the whole-program total of the (only) event, Ir
    awk '/^summary:/ { print $2 }' "$out"
}

qemu_count() {  # exe isa(unused) args...
    local exe=$1; shift 2
    local log=$build/qemu.log
    rm -f "$log"
    # the plugin writes through QEMU's log: "-d plugin" enables it, -D sends it to a file
    qemu-aarch64 -plugin "$build/libinsn_count.so" -d plugin -D "$log" "$exe" "$@" 2>"$build/variant"
    awk '/^insns:/ { print $2 }' "$log"
}

# measure LABEL COUNTER EXE ISA EXPECT: every shape, (count(2R) - count(R)) / (R n).
# EXPECT is a word the driver's variant line must contain (guards against a
# forced variant silently falling back to another).
measure() {
    local label=$1 counter=$2 exe=$3 isa=$4 expect=$5 shape dtype op n r c1 c2
    for shape in "${shapes[@]}"; do
        read -r dtype op n r <<<"$shape"
        c1=$("$counter" "$exe" "$isa" "$dtype" "$op" "$n" "$r" $((2 * r)))
        grep -q -- "$expect" "$build/variant" || {
            echo "count_instructions: wanted '$expect', driver ran: $(cat "$build/variant")" >&2
            exit 1
        }
        c2=$("$counter" "$exe" "$isa" "$dtype" "$op" "$n" $((2 * r)) $((2 * r)))
        [[ $c1 =~ ^[0-9]+$ && $c2 =~ ^[0-9]+$ ]] || {
            echo "count_instructions: no count from $counter ('$c1', '$c2')" >&2
            exit 1
        }
        awk -v l="$label" -v d="$dtype" -v o="$op" -v n="$n" -v r="$r" -v a="$c1" -v b="$c2" \
            'BEGIN { printf "%-16s %-4s %-12s n=%-6d rows=%-8s %8.2f instructions/element\n",
                     l, d, o, n, r "/" 2 * r, (b - a) / (r * n) }'
    done
}

echo "kernels: $csrc"

# ---- x86-64: callgrind ------------------------------------------------------
if [ "$only" = all ] || [ "$only" = x86 ]; then
    if [ "$(uname -m)" != x86_64 ]; then
        echo "x86-64 part skipped: this machine is $(uname -m)"
    elif ! have valgrind || ! have cc; then
        echo "x86-64 part skipped: needs valgrind and cc (Debian packages valgrind, gcc)"
    else
        exe=$build/driver_x86
        cc "${flags[@]}" -DFASTSOFTMAX_X86_DISPATCH "${sources[@]}" -o "$exe" -lm
        measure "x86 baseline" callgrind_count "$exe" baseline "baseline"
        measure "x86 avx2" callgrind_count "$exe" avx2 "AVX2"
        if ! grep -qw avx512f /proc/cpuinfo; then
            echo "x86 avx512: skipped, this CPU has no AVX-512"
        else
            # unforced, the dispatcher picks the best variant the CPU *as seen
            # under valgrind* offers; if that is not AVX-512, valgrind hid it
            callgrind_count "$exe" best f32 softmax 64 1 1 >/dev/null
            if grep -q "AVX-512" "$build/variant"; then
                measure "x86 avx512" callgrind_count "$exe" best "AVX-512"
            else
                echo "x86 avx512: skipped, the CPU has AVX-512 but $(valgrind --version) does not" \
                     "support it (under valgrind the dispatcher picks: $(sed 's/^variant: //' "$build/variant"))"
            fi
        fi
    fi
fi

# ---- aarch64: cross build + QEMU TCG plugin ----------------------------------
if [ "$only" = all ] || [ "$only" = aarch64 ]; then
    if ! have aarch64-linux-gnu-gcc; then
        echo "aarch64 part skipped: aarch64-linux-gnu-gcc not found (Debian package gcc-aarch64-linux-gnu)"
    elif ! have qemu-aarch64; then
        echo "aarch64 part skipped: qemu-aarch64 not found (Debian package qemu-user)"
    elif ! have cc; then
        echo "aarch64 part skipped: no host cc to build the QEMU plugin"
    else
        cc -shared -fPIC -O2 "$root/tools/qemu_insn_count.c" -o "$build/libinsn_count.so"
        exe=$build/driver_aarch64
        # static: no aarch64 sysroot/loader is needed to run it under qemu-aarch64
        aarch64-linux-gnu-gcc -static "${flags[@]}" "${sources[@]}" -o "$exe" -lm
        measure "aarch64 baseline" qemu_count "$exe" none "baseline"
    fi
fi
