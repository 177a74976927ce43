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
# from the page cache; each run extracts into a new dir after a sync, and
# nothing is deleted before the last run (see below), so no run pays for
# another. Needs about RUNS x 870 MB of free space.
#
# Usage: benches/extract.sh [RUNS]   (default 3; root required)
#
# Knobs (environment): HIND_BENCH_BIN=DIR (use the hind in DIR instead of
# building), HIND_BENCH_DIR=DIR (work in a new dir under DIR instead of on
# a private ext4 loop filesystem; the figures depend on that filesystem).
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

work=$(mktemp -d /tmp/hind-bench.XXXXXX)
cleanup() {
    set +e
    # Anything still mounted under the work dir is unmounted before removal,
    # so rm never walks into another filesystem.
    awk -v w="$work" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do umount "$m" || umount -l "$m"; done
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# Where the layer is made and extracted: a private ext4 on a loop device by
# default, because on a shared ext4 every file created within 30 s of
# someone else's mass delete pays for it (recently_deleted() in
# fs/ext4/ialloc.c scans the freed inodes), which made the figures swing
# by 10x while other jobs ran. HIND_BENCH_DIR=DIR works in DIR instead.
if [[ -n ${HIND_BENCH_DIR:-} ]]; then
    fsdir=$(mktemp -d "$HIND_BENCH_DIR/hind-bench.XXXXXX")
    trap 'cleanup; rm -rf --one-file-system "$fsdir"' EXIT
    echo "==> working in $fsdir"
else
    fsdir=$work/fs
    mkdir "$fsdir"
    truncate -s $((runs + 2))G "$work/fs.img"
    mkfs.ext4 -q -F "$work/fs.img"
    mount -o loop "$work/fs.img" "$fsdir"
    echo "==> working on a fresh ext4 loop filesystem ($((runs + 2)) GB sparse image)"
fi

# Copied out of target/ so a concurrent cargo build cannot swap it.
mkdir -p "$work/bin"
cp "$bindir/hind" "$work/bin/hind"
hind=$work/bin/hind

echo "==> making the layer"
src=$fsdir/src
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
layer=$fsdir/layer.tar
tar -C "$src" -cf "$layer" .
# $src stays until the end: see below.
bytes=$(stat -c %s "$layer")
entries=$(tar -tf "$layer" | wc -l)
echo "==> layer: $bytes bytes, $entries entries"
cat "$layer" >/dev/null

# Nothing is deleted until every run is done: ext4 makes every new inode
# skip the inodes freed in the last 30 s (recently_deleted() in
# fs/ext4/ialloc.c), which after deleting a 12,000-file tree costs seconds
# of system time and would bill one run's clean-up to the next. Each run
# gets its own output dir instead (about RUNS x 870 MB in all).
out=$fsdir/out
mkdir -p "$out"

# ns NAME DIR: runs NAME into DIR (made fresh), prints its wall time in ns.
ns() {
    local t0 t1
    mkdir "$2"
    sync
    t0=$(date +%s%N)
    "$1" "$2" >/dev/null
    t1=$(date +%s%N)
    echo $((t1 - t0))
}

tar_x() { tar -xf "$layer" -C "$1"; }
tar_x_sync() {
    tar -xf "$layer" -C "$1"
    sync -f "$1"
}
hind_import() { "$hind" --root "$1" import "$layer"; }

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

names=(tar_x tar_x_sync hind_import)
declare -A samples
# Round-robin, so slow phases of the machine hit every tool alike.
for ((r = 0; r < runs; r++)); do
    for name in "${names[@]}"; do
        samples[$name]+="$(ns "$name" "$out/$name-$r") "
    done
done
declare -A result
for name in "${names[@]}"; do
    result[$name]=$(tr ' ' '\n' <<<"${samples[$name]}" | grep . | median)
done

# Sanity: hind's layer holds what tar extracted.
diffdir=$(find "$out/hind_import-0/images/layers" -mindepth 2 -maxdepth 2 -name diff)
if ! diff -r --no-dereference "$out/tar_x-0" "$diffdir" >/dev/null; then
    echo "extract: hind's layer differs from tar's extraction" >&2
    exit 1
fi

echo
printf '%-14s %10s %10s   (%s bytes, %s entries, median of %s)\n' \
    "" "seconds" "MB/s" "$bytes" "$entries" "$runs"
for name in "${names[@]}"; do
    label=${name//_/ }
    [[ $name == tar_x ]] && label="tar -x"
    [[ $name == tar_x_sync ]] && label="tar -x + sync"
    awk -v l="$label" -v t="${result[$name]}" -v b="$bytes" \
        'BEGIN { printf "%-14s %10.3f %10.1f\n", l, t / 1e9, b / 1e6 / (t / 1e9) }'
done
