#!/usr/bin/env bash
# What networking costs: (1) start-to-exit latency of `hind run --rm IMG
# true` with `--network none` against the default bridge (veth pair, lease,
# /etc files), N runs each, mean and median in milliseconds; (2) TCP
# throughput from the host into a container, through a published port
# (127.0.0.1:PORT, DNAT) and straight to the container's address, with
# plain loopback (no container) as the reference. Prints MB/s (10^6 B/s).
#
# Usage: benches/network.sh [RUNS] [MIB]   (default 30 runs, 1024 MiB sent
# per transfer; root required)
#
# The script re-executes itself in a private network namespace (`unshare
# --net`), so the bridge, veths and nftables rules hind makes never touch
# the machine's own; they go away with the namespace. Timing as in
# run-latency.sh: hyperfine when available (installed with apt-get if
# missing), else a shell loop timed with `date +%s%N`; HIND_BENCH_LOOP=1
# forces the loop. Throughput: `head -c MIB M /dev/zero` written to bash's
# /dev/tcp into a busybox `nc -ll` in the container that discards it; the
# wall time of the write, median of 3 (the last socket buffer's worth may
# still be in flight when it ends: a few MB of a GiB).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-30}
mib=${2:-1024}

if [[ $(id -u) -ne 0 ]]; then
    echo "network: needs root" >&2
    exit 1
fi

if [[ -z ${HIND_BENCH_NETNS:-} ]]; then
    # Installing and building need the machine's network; the rest runs
    # in a namespace of its own.
    . benches/common.sh
    bench_install busybox-static hyperfine
    echo "==> cargo build --release"
    cargo build --release --workspace --bins
    echo "==> unshare --net (private network namespace)"
    exec env HIND_BENCH_NETNS=1 unshare --net -- "$PWD/benches/network.sh" "$@"
fi

. benches/common.sh
ip link set lo up
# The default network mode must be the engine's own (bridge).
unset HIND_NETWORK
hind=$PWD/target/release/hind

work=$(mktemp -d /tmp/hind-bench.XXXXXX)
cg_parent=/hind-bench-$$
hroot=$work/hind-root
server=
lo_nc=

cleanup() {
    set +e
    [[ -n $server ]] && "$hind" --root "$hroot" rm -f "$server" >/dev/null 2>&1
    [[ -n $lo_nc ]] && kill "$lo_nc" 2>/dev/null && wait "$lo_nc" 2>/dev/null
    bench_remove_work "$work" "$cg_parent"
}
trap cleanup EXIT

rootfs=$work/rootfs
bench_rootfs "$rootfs"


# ---- (1) start latency: --network none vs the default bridge

run_cmd="$hind --root $hroot run --rm --cgroup-parent $cg_parent"
cmds=("$run_cmd --network none $rootfs true" "$run_cmd $rootfs true")
names=(none bridge)

# Sanity: every command must succeed once before it is timed (this also
# creates the default network, so its one-time setup is not timed).
for c in "${cmds[@]}"; do
    $c </dev/null >/dev/null
done

bench_latency "$work" "$runs"
latency=("${results[@]}")
how=$bench_how

# ---- (2) TCP throughput host -> container

port=5001
# A persistent busybox nc (-ll with -e) that throws away what it gets.
sink=(nc -ll -p "$port" -e sh -c 'cat >/dev/null')
server=$("$hind" --root "$hroot" run -d --cgroup-parent "$cg_parent" \
    -p "$port:$port" "$rootfs" "${sink[@]}")
ip=$("$hind" --root "$hroot" inspect -f '{{.NetworkSettings.IPAddress}}' "$server")
# The reference: the same sink in this namespace, on the next port.
/bin/busybox nc -ll -p "$((port + 1))" -e sh -c 'cat >/dev/null' &
lo_nc=$!

# wait_listening HOST PORT: polls a connect for up to 10 s.
wait_listening() {
    local i
    for ((i = 0; i < 500; i++)); do
        if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then
            return 0
        fi
        sleep 0.02
    done
    echo "network: nothing listens on $1:$2" >&2
    return 1
}

# send HOST PORT: MB/s of one transfer of $mib MiB.
send() {
    local t0 t1
    t0=$(date +%s%N)
    head -c "${mib}M" /dev/zero >"/dev/tcp/$1/$2"
    t1=$(date +%s%N)
    awk -v b="$((mib * 1048576))" -v ns="$((t1 - t0))" 'BEGIN { printf "%.0f", b / 1e6 / (ns / 1e9) }'
}

throughput=()
for target in "loopback 127.0.0.1 $((port + 1))" "published 127.0.0.1 $port" "container $ip $port"; do
    read -r what host p <<<"$target"
    wait_listening "$host" "$p"
    samples=()
    for _ in 1 2 3; do
        samples+=("$(send "$host" "$p")")
    done
    med=$(printf '%s\n' "${samples[@]}" | sort -n | sed -n 2p)
    throughput+=("$what $host:$p $med")
done

echo
printf '%-8s %12s %12s   (%s runs, %s)\n' network "mean ms" "median ms" "$runs" "$how"
for r in "${latency[@]}"; do
    read -r n mean med <<<"$r"
    printf '%-8s %12s %12s\n' "$n" "$mean" "$med"
done
echo
printf '%-10s %-22s %10s   (%s MiB per transfer, median of 3)\n' path target "MB/s" "$mib"
for r in "${throughput[@]}"; do
    read -r what t mbs <<<"$r"
    printf '%-10s %-22s %10s\n' "$what" "$t" "$mbs"
done
