#!/usr/bin/env bash
# Start-to-exit latency of a trivial container: `hind run --rm IMG true`
# against `runc run` of a bundle on the same busybox root fs, N runs each.
# Prints mean and median in milliseconds for both.
#
# Usage: benches/run-latency.sh [RUNS]   (default 30; root required)
#
# Uses hyperfine when available (installed with apt-get if missing), else a
# shell loop timed with `date +%s%N`; set HIND_BENCH_LOOP=1 to force the
# loop. runc is installed with apt-get too; without it only hind is timed.
# Everything it creates (state dirs, the runc container, cgroups) is
# removed on exit, also on failure or Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-30}

if [[ $(id -u) -ne 0 ]]; then
    echo "run-latency: needs root" >&2
    exit 1
fi

. benches/common.sh
# The figures compare with runc's, which gets no network either; and a
# bench never touches the machine's own bridges or firewall
# (benches/network.sh measures the bridge).
export HIND_NETWORK=none
bench_install busybox-static hyperfine runc

echo "==> cargo build --release"
cargo build --release --workspace --bins
hind=$PWD/target/release/hind

work=$(mktemp -d /tmp/hind-bench.XXXXXX)
cg_parent=/hind-bench-$$
runc_id=hind-bench-$$
runc_root=$work/runc-state

cleanup() {
    set +e
    if command -v runc >/dev/null; then
        runc --root "$runc_root" delete --force "$runc_id" >/dev/null 2>&1
    fi
    bench_remove_work "$work" "$cg_parent"
}
trap cleanup EXIT

# The busybox root fs, laid out as an OCI bundle so runc can use it too.
bundle=$work/bundle
rootfs=$bundle/rootfs
bench_rootfs "$rootfs"

hind_cmd="$hind --root $work/hind-root run --rm --cgroup-parent $cg_parent $rootfs true"
cmds=("$hind_cmd")
names=(hind)
if command -v runc >/dev/null; then
    (cd "$bundle" && runc spec)
    # Run `true` without a terminal; the rest of runc's default spec stays.
    sed -i -e 's/"terminal": true/"terminal": false/' \
        -e '/"args": \[/,/\]/ s/"sh"/"true"/' "$bundle/config.json"
    cmds+=("runc --root $runc_root run --bundle $bundle $runc_id")
    names+=(runc)
else
    echo "==> runc not installed: timing hind only"
fi

# Sanity: every command must succeed once before it is timed.
for c in "${cmds[@]}"; do
    $c </dev/null >/dev/null
done

bench_latency "$work" "$runs"

echo
printf '%-6s %12s %12s   (%s runs, %s)\n' tool "mean ms" "median ms" "$runs" \
    "$([[ -z ${HIND_BENCH_LOOP:-} ]] && command -v hyperfine >/dev/null && echo hyperfine || echo shell loop)"
for r in "${results[@]}"; do
    read -r n mean med <<<"$r"
    printf '%-6s %12s %12s\n' "$n" "$mean" "$med"
done
