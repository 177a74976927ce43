#!/usr/bin/env bash
# What seccomp costs a container start: `hind run --rm IMG true` with no
# filter (seccomp=unconfined), with the default profile's filter read from
# the cache (every start after the first), and with the cache emptied
# before every run (the filter compiled each time). Then the compile and
# the cache read alone, from the shim's unit benchmark.
#
# Usage: benches/seccomp.sh [RUNS]   (default 300; root required)
#
# Everything it creates is removed on exit, also on failure or Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-300}

if [[ $(id -u) -ne 0 ]]; then
    echo "seccomp bench: needs root" >&2
    exit 1
fi

. benches/common.sh
# The figures compare with runc's, which gets no network either; and a
# bench never touches the machine's own bridges or firewall
# (benches/network.sh measures the bridge).
export HIND_NETWORK=none
bench_install busybox-static

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
    bench_remove_work "$work" "$cg_parent"
}
trap cleanup EXIT

rootfs=$work/rootfs
bench_rootfs "$rootfs"
run="$hind --root $root run --rm --cgroup-parent $cg_parent"

# Sanity, and a warm cache for the "cached" case.
$run "$rootfs" true
$run --security-opt seccomp=unconfined "$rootfs" true

# The three cases interleaved, run by run, so that a change in the
# machine's load hits all of them alike; the costs are medians of the
# paired differences. Timed with bash's $EPOCHREALTIME (no fork).
usec() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }
: >"$work/times"
for ((i = 0; i < runs; i++)); do
    t0=$(usec)
    $run --security-opt seccomp=unconfined "$rootfs" true
    t1=$(usec)
    $run "$rootfs" true
    t2=$(usec)
    rm -rf "$root/cache/seccomp"
    t3=$(usec)
    $run "$rootfs" true
    t4=$(usec)
    echo "$((t1 - t0)) $((t2 - t1)) $((t4 - t3))" >>"$work/times"
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v c="$1" '{ print $c }' "$work/times" | median; }
pdiff() { awk -v a="$1" -v b="$2" '{ print $a - $b }' "$work/times" | median; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
echo
printf '%-34s %10s   (hind run --rm IMG true, %s interleaved runs)\n' "" "median ms" "$runs"
printf '%-34s %10s\n' "unconfined" "$(ms "$(col 1)")"
printf '%-34s %10s\n' "default filter, from the cache" "$(ms "$(col 2)")"
printf '%-34s %10s\n' "default filter, compiled" "$(ms "$(col 3)")"
echo "the cached filter costs a start $(ms "$(pdiff 2 1)") ms; compiling it, $(ms "$(pdiff 3 2)") ms more"

echo
echo "==> the compile and the cache read alone (hind-shim unit benchmark)"
cargo test --release -q -p hind-shim bench_compile_against_cache -- --ignored --nocapture 2>/dev/null |
    grep -E 'default profile|load'
