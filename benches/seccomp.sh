#!/usr/bin/env bash
# What seccomp costs a container start: `hind run --rm IMG true` with no
# filter (seccomp=unconfined), with the default profile's filter read from
# the cache (every start after the first), and with the cache emptied
# before every run (the filter compiled each time). Then the compile and
# the cache read alone, from the shim's unit benchmark.
#
# Usage: benches/seccomp.sh [RUNS] [ROUNDS]   (default 40 and 4; root)
#
# Uses hyperfine (installed with apt-get if missing). Everything it
# creates is removed on exit, also on failure or Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-40}
rounds=${2:-4}

if [[ $(id -u) -ne 0 ]]; then
    echo "seccomp bench: needs root" >&2
    exit 1
fi

. benches/common.sh
bench_install busybox-static hyperfine
if ! command -v hyperfine >/dev/null; then
    echo "seccomp bench: needs hyperfine" >&2
    exit 1
fi

echo "==> cargo build --release"
cargo build --release --workspace --bins
work=$(mktemp -d /tmp/hind-bench.XXXXXX)
cg_parent=/hind-bench-$$
# Copied, so a concurrent build does not change what is measured.
mkdir "$work/bin"
cp target/release/hind target/release/hind-shim target/release/hind-init "$work/bin/"
hind=$work/bin/hind
root=$work/root

cleanup() {
    set +e
    awk -v w="$work" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m"; done
    rm -rf --one-file-system "$work"
    for h in /sys/fs/cgroup/*/"${cg_parent#/}" /sys/fs/cgroup/"${cg_parent#/}"; do
        [[ -d $h ]] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
    done
}
trap cleanup EXIT

rootfs=$work/rootfs
bench_rootfs "$rootfs"
run="$hind --root $root run --rm --cgroup-parent $cg_parent"

# Sanity, and a warm cache for the "cached" case.
$run "$rootfs" true
$run --security-opt seccomp=unconfined "$rootfs" true

# Rounds of all three, so that a change in the machine's load hits every
# case alike; each case's figure is the mean of its round means.
names=("unconfined" "default, cached" "default, compiled")
: >"$work/means"
for ((r = 1; r <= rounds; r++)); do
    hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/h.json" \
        --command-name "${names[0]}" --prepare true "$run --security-opt seccomp=unconfined $rootfs true" \
        --command-name "${names[1]}" --prepare true "$run $rootfs true" \
        --command-name "${names[2]}" --prepare "rm -rf $root/cache/seccomp" "$run $rootfs true" \
        >"$work/hyperfine.out" 2>&1 || {
        cat "$work/hyperfine.out"
        exit 1
    }
    [[ -n ${HIND_BENCH_VERBOSE:-} ]] && cat "$work/hyperfine.out"
    grep -o '"mean": *[0-9.e+-]*' "$work/h.json" | awk '{print $2}' | paste -sd' ' >>"$work/means"
done

echo
printf '%-20s %10s %12s   (hind run --rm IMG true; %s rounds of %s runs)\n' \
    "" "mean ms" "round spread" "$rounds" "$runs"
awk -v n0="${names[0]}" -v n1="${names[1]}" -v n2="${names[2]}" '
    { for (i = 1; i <= 3; i++) { s[i] += $i; if (NR == 1 || $i < lo[i]) lo[i] = $i; if ($i > hi[i]) hi[i] = $i } }
    END {
        split(n0 "|" n1 "|" n2, name, "|")
        for (i = 1; i <= 3; i++)
            printf "%-20s %10.2f %10.2f ms\n", name[i], s[i] / NR * 1000, (hi[i] - lo[i]) * 1000
        printf "the cached filter costs a start %.2f ms; compiling it, %.2f ms more\n",
            (s[2] - s[1]) / NR * 1000, (s[3] - s[2]) / NR * 1000
    }' "$work/means"

echo
echo "==> the compile and the cache read alone (hind-shim unit benchmark)"
cargo test --release -q -p hind-shim bench_compile_against_cache -- --ignored --nocapture 2>/dev/null |
    grep -E 'default profile|load'
