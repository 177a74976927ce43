#!/usr/bin/env bash
# Layer extraction throughput: `hind import` of a ~200 MB layer tar into a
# fresh state root, against GNU `tar -xf` of the same file into a fresh
# directory. Prints MB/s (10^6 bytes of tar per second) for each, median
# of RUNS.
#
#   tar -x         tar -xf layer.tar -C DIR, no sync
#   tar -x + sync  the same, then `sync -f DIR` (syncfs of that filesystem)
#   hind import    hind --root ROOT import layer.tar: streams the tar once,
#                  keeps a copy as the layer blob, hashes it (blob digest and
#                  diff id), extracts with openat2-confined *at calls, then
#                  one syncfs before renaming the layer into place. Compare
#                  it with "tar -x + sync": both end with the data on disk.
#
# The layer: a few big random files, some medium ones, and thousands of
# small text files in nested dirs plus a few symlinks (~200 MB, ~12,000
# entries). The tar is read once before timing so that every run reads it
# from the page cache; before each run the previous output is removed and
# everything synced, so no run pays for the one before.
#
# Usage: benches/extract.sh [RUNS]   (default 3; root required)
#
# Knobs (environment): HIND_BENCH_BIN=DIR (use the hind in DIR instead of
# building), HIND_BENCH_DIR=DIR (where to work, default a new dir under
# /tmp; the figures depend on that filesystem).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-3}

if [[ $(id -u) -ne 0 ]]; then
    echo "extract: needs root" >&2
    exit 1
fi

if [[ -n ${HIND_BENCH_BIN:-} ]]; then
    bindir=$HIND_BENCH_BIN
    echo "==> using the binaries in $bindir"
else
    bindir=target/release
    echo "==> cargo build --release"
    cargo build --release --workspace --bins
fi
[[ -x $bindir/hind ]] || {
    echo "extract: $bindir/hind missing" >&2
    exit 1
}

work=$(mktemp -d "${HIND_BENCH_DIR:-/tmp}/hind-bench.XXXXXX")
cleanup() {
    set +e
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# Copied out of target/ so a concurrent cargo build cannot swap it.
mkdir -p "$work/bin"
cp "$bindir/hind" "$work/bin/hind"
hind=$work/bin/hind

echo "==> making the layer"
src=$work/src
mkdir -p "$src/big" "$src/medium"
for i in 1 2 3; do
    head -c 40M /dev/urandom >"$src/big/blob$i"
done
for i in $(seq 1 20); do
    head -c 2M /dev/urandom >"$src/medium/lib$i.so"
done
# Small text files: 8 dirs, each ~520 files of 8 KiB and ~1040 of 1 KiB,
# cut from base64 text (compressible, like source and config files).
for d in $(seq 1 8); do
    mkdir -p "$src/usr/share/d$d/s8k" "$src/usr/share/d$d/s1k"
    head -c 3M /dev/urandom | base64 | split -b 8k -a 4 - "$src/usr/share/d$d/s8k/f"
    head -c 768K /dev/urandom | base64 | split -b 1k -a 4 - "$src/usr/share/d$d/s1k/f"
done
for i in $(seq 1 50); do
    ln -s "../big/blob$((i % 3 + 1))" "$src/medium/link$i"
done
layer=$work/layer.tar
tar -C "$src" -cf "$layer" .
rm -rf "$src"
bytes=$(stat -c %s "$layer")
entries=$(tar -tf "$layer" | wc -l)
echo "==> layer: $bytes bytes, $entries entries"
cat "$layer" >/dev/null

# ns TIME_CMD...: runs the command, prints its wall time in ns.
ns() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    echo $((t1 - t0))
}

fresh() {
    rm -rf "$work/out"
    mkdir -p "$work/out"
    sync
}

tar_x() { tar -xf "$layer" -C "$work/out"; }
tar_x_sync() {
    tar -xf "$layer" -C "$work/out"
    sync -f "$work/out"
}
hind_import() { "$hind" --root "$work/out/root" import "$layer"; }

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A result
for name in tar_x tar_x_sync hind_import; do
    samples=()
    for ((r = 0; r < runs; r++)); do
        fresh
        samples+=("$(ns "$name")")
    done
    result[$name]=$(printf '%s\n' "${samples[@]}" | median)
done
fresh

# Sanity: hind's layer holds what tar extracted.
tar -xf "$layer" -C "$work/out"
"$hind" --root "$work/root-check" import "$layer" >/dev/null
diffdir=$(find "$work/root-check/images/layers" -mindepth 2 -maxdepth 2 -name diff)
if ! diff -r --no-dereference "$work/out" "$diffdir" >/dev/null; then
    echo "extract: hind's layer differs from tar's extraction" >&2
    exit 1
fi

echo
printf '%-14s %10s %10s   (%s bytes, %s entries, median of %s)\n' \
    "" "seconds" "MB/s" "$bytes" "$entries" "$runs"
for name in tar_x tar_x_sync hind_import; do
    label=${name//_/ }
    [[ $name == tar_x ]] && label="tar -x"
    [[ $name == tar_x_sync ]] && label="tar -x + sync"
    awk -v l="$label" -v t="${result[$name]}" -v b="$bytes" \
        'BEGIN { printf "%-14s %10.3f %10.1f\n", l, t / 1e9, b / 1e6 / (t / 1e9) }'
done
