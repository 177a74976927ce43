#!/usr/bin/env bash
# Container lifecycle figures, each printed as one line with its target:
#
#   1. hind-shim resident memory per running container (10 × `sleep 60`),
#      idle and again after ps, inspect, logs, logs -f, attach and kill
#      have been served. Target: below conmon's 1.9 MB, aim < 1 MB.
#   2. Attached throughput: `hind run --rm IMG sh -c 'head -c 200MiB
#      /dev/zero'` and the newline-rich `yes hello-world-line | head -c
#      200MiB`, stdout to /dev/null, against the same pipeline on the host,
#      run directly and piped through `cat`. Target: within 1.2x. Done for
#      the busybox image (host baseline: the same busybox binaries) and for
#      the host root `/` (host baseline: the host's own tools).
#   3. `hind logs` of a container that wrote 200 MiB of lines. Target < 1 s.
#   4. `hind ps -a` and `hind ps -a -q` with 500 exited containers.
#      Target < 50 ms.
#   5. Time for `hind run -d IMG sleep 10` to return.
#
# Usage: benches/lifecycle.sh [SECTION...]   (default: 1 2 3 4 5; root)
#
# Knobs (environment): HIND_BENCH_BYTES (output size for 2 and 3, default
# 209715200), HIND_BENCH_PS (containers for 4, default 500),
# HIND_BENCH_LOOP=1 (time with a `date +%s%N` loop instead of hyperfine),
# HIND_BENCH_VERBOSE=1 (show hyperfine's own output), HIND_BENCH_BIN=DIR
# (use the hind, hind-shim and hind-init in DIR instead of building).
#
# Medians: 3 runs for 2 and 3, 5 for 4, 10 for 5. The binaries are copied
# out of target/ first, so a concurrent `cargo build` cannot swap them
# mid-run. Everything runs under a private state root and cgroup parent
# (/hind-bench-PID); on exit, also on failure or Ctrl-C, every container is
# removed, any shim left under the root is killed, and the root and the
# cgroups are deleted; the script then checks that nothing is left.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

sections=("$@")
((${#sections[@]})) || sections=(1 2 3 4 5)
bytes=${HIND_BENCH_BYTES:-209715200}
nps=${HIND_BENCH_PS:-500}

if [[ $(id -u) -ne 0 ]]; then
    echo "lifecycle: needs root" >&2
    exit 1
fi

. benches/common.sh
# The figures compare with runc's, which gets no network either; and a
# bench never touches the machine's own bridges or firewall
# (benches/network.sh measures the bridge).
export HIND_NETWORK=none
bench_install busybox-static hyperfine
if ! [[ -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then
    echo "lifecycle: a static /bin/busybox is needed (apt-get install busybox-static)" >&2
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
for b in hind hind-shim hind-init; do
    [[ -x $bindir/$b ]] || {
        echo "lifecycle: $bindir/$b missing" >&2
        exit 1
    }
done

work=$(mktemp -d /tmp/hind-bench.XXXXXX)
root=$work/root
bin=$work/bin
cg_parent=/hind-bench-$$
export HIND_CGROUP_PARENT=$cg_parent
unset HIND_ROOT

hind=$bin/hind
H="$hind --root $root"

# Prints "PID ID" for every hind-shim process of this state root.
shims() {
    local f argv i pid id mine
    for f in /proc/[0-9]*/cmdline; do
        mapfile -d "" -t argv 2>/dev/null <"$f" || continue
        [[ ${argv[0]:-} == *hind-shim ]] || continue
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        id= mine=
        for ((i = 1; i + 1 < ${#argv[@]}; i++)); do
            [[ ${argv[i]} == --root && ${argv[i + 1]} == "$root" ]] && mine=1
            [[ ${argv[i]} == --id ]] && id=${argv[i + 1]}
        done
        [[ -n $mine ]] && echo "$pid $id"
    done
    return 0
}

# quiesce SECS: waits (at most SECS) until no shim of this root runs.
quiesce() {
    local n
    for ((n = 0; n < $1 * 100; n++)); do
        [[ -z $(shims) ]] && return 0
        sleep 0.01
    done
    return 1
}

remove_all() {
    local ids
    ids=$($H ps -a -q --no-trunc 2>/dev/null) || true
    if [[ -n $ids ]]; then
        # shellcheck disable=SC2086
        $H rm -f $ids >/dev/null 2>&1 || true
    fi
}

cleanup() {
    local rc=$? pid _ n
    set +e
    # A second Ctrl-C must not cut the clean-up short.
    trap - EXIT
    trap '' INT TERM
    [[ -d $root ]] && remove_all
    # A shim may outlive `rm -f` or `run --rm` for a moment (it closes the
    # deleted log last). One still there after 10 s is killed by pid; its
    # container dies with it (PR_SET_PDEATHSIG).
    quiesce 10
    while read -r pid _; do
        [[ -n $pid ]] && echo "lifecycle: shim $pid still runs 10 s after rm -f; killing it" >&2 && kill -KILL "$pid"
    done < <(shims)
    quiesce 5
    bench_remove_work "$work" "$cg_parent"

    # Check that nothing is left.
    local left=()
    [[ -z $(shims) ]] || left+=("hind-shim processes: $(shims | awk '{print $1}' | xargs)")
    for h in /sys/fs/cgroup/*/"${cg_parent#/}" /sys/fs/cgroup/"${cg_parent#/}"; do
        [[ -d $h ]] && left+=("cgroup $h")
    done
    grep -q " $work" /proc/self/mountinfo && left+=("mounts under $work")
    [[ -e $work ]] && left+=("$work")
    if ((${#left[@]})); then
        printf 'lifecycle: left behind: %s\n' "${left[@]}" >&2
        ((rc)) || rc=1
    else
        echo "==> cleaned up: no shims, cgroups, mounts or files left"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# `hind` finds hind-shim next to itself, and the shim hind-init.
mkdir -p "$bin"
cp "$bindir/hind" "$bindir/hind-shim" "$bindir/hind-init" "$bin/"

# The busybox root fs.
rootfs=$work/rootfs
bench_rootfs "$rootfs"

# Run before each timed run: the shim of a finished `run --rm` may still be
# closing (freeing) a large deleted log; let it finish first (at most 30 s).
# Shims of containers that still exist are not waited for.
wait_shims=$work/wait-shims
cat >"$wait_shims" <<EOF
#!/bin/bash
for ((n = 0; n < 3000; n++)); do
    busy=
    for f in /proc/[0-9]*/cmdline; do
        mapfile -d "" -t a 2>/dev/null <"\$f" || continue
        [[ \${a[0]:-} == *hind-shim && \${a[1]:-} == --root && \${a[2]:-} == '$root' ]] || continue
        [[ \${a[3]:-} == --id && ! -d '$root'/containers/\${a[4]:-} ]] && busy=1 && break
    done
    [[ -z \$busy ]] && exit 0
    sleep 0.01
done
EOF
chmod +x "$wait_shims"

use_hyperfine=
command -v hyperfine >/dev/null && [[ -z ${HIND_BENCH_LOOP:-} ]] && use_hyperfine=1
echo "==> timing with $([[ -n $use_hyperfine ]] && echo hyperfine || echo 'a date +%s%N loop')," \
    "$(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg), state root $root, cgroup parent $cg_parent"

summary=()
report() {
    echo ">>> $*"
    summary+=("$*")
}

# time_cmd RUNS WARMUP CMD: runs CMD (one string, split like a shell would;
# stdin and stdout /dev/null) and sets $med and $mean in seconds.
time_cmd() {
    local runs=$1 warmup=$2 cmd=$3 json=$work/hyperfine.json
    echo "    timing ($runs runs): $cmd" >&2
    if [[ -n $use_hyperfine ]]; then
        local out=$work/hyperfine.out
        if ! hyperfine -N --style basic --runs "$runs" --warmup "$warmup" \
            --prepare "$wait_shims" --output null --export-json "$json" "$cmd" >"$out" 2>&1; then
            cat "$out" >&2
            return 1
        fi
        [[ -z ${HIND_BENCH_VERBOSE:-} ]] || cat "$out" >&2
        med=$(grep -o '"median": *[0-9.e+-]*' "$json" | awk '{print $2}')
        mean=$(grep -o '"mean": *[0-9.e+-]*' "$json" | awk '{print $2}')
    else
        local samples=$work/samples i t0 t1
        : >"$samples"
        for ((i = 0; i < warmup; i++)); do eval "$cmd" </dev/null >/dev/null; done
        for ((i = 0; i < runs; i++)); do
            "$wait_shims"
            t0=$(date +%s%N)
            eval "$cmd" </dev/null >/dev/null
            t1=$(date +%s%N)
            echo $((t1 - t0)) >>"$samples"
        done
        read -r mean med < <(sort -n "$samples" | awk '
            { v[NR] = $1; sum += $1 }
            END {
                m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%.9f %.9f\n", sum / NR / 1e9, m / 1e9
            }')
    fi
}

ms() { awk -v s="$1" 'BEGIN { printf "%.1f ms", s * 1000 }'; }
secs() { awk -v s="$1" 'BEGIN { printf "%.3f s", s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
mibs() { awk -v s="$1" -v n="$bytes" 'BEGIN { printf "%.0f MiB/s", n / 1048576 / s }'; }
mb() { awk -v n="$1" 'BEGIN { printf "%.1f MB", n / 1e6 }'; }
fail() {
    echo "lifecycle: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# 1. Shim resident memory.

# rss_line LABEL: one summary line over every shim of this root.
rss_line() {
    local label=$1 pid _ rows=() line
    while read -r pid _; do
        # VmRSS RssAnon RssFile VmHWM from status, Pss from smaps_rollup
        # (the text pages of the shim binary and libc are shared by all).
        line=$(awk '/^(VmRSS|RssAnon|RssFile|VmHWM|Pss):/ { v[$1] = $2 }
            END { print v["VmRSS:"], v["RssAnon:"], v["RssFile:"], v["VmHWM:"], v["Pss:"] }' \
            "/proc/$pid/status" "/proc/$pid/smaps_rollup") || continue
        rows+=("$line")
    done < <(shims)
    ((${#rows[@]})) || fail "no shims found under $root"
    printf '%s\n' "${rows[@]}" | awk -v label="$label" '
        { n++; rss += $1; if ($1 > max) max = $1; anon += $2; file += $3; pss += $5
          if ($4 > hwm) hwm = $4 }
        END {
            verdict = (max < 1900) ? ((max < 1024) ? "ok, under 1 MB" : "ok vs conmon, over the 1 MB aim") : "MISSED"
            printf "1. shim RSS, %d running containers, %s: mean %.0f kB, max %d kB (RssAnon %.0f kB + RssFile %.0f kB; Pss %.0f kB; peak VmHWM %d kB)   target < 1900 kB (conmon), aim < 1024 kB: %s\n",
                n, label, rss / n, max, anon / n, file / n, pss / n, hwm, verdict
        }'
}

section1() {
    echo "==> 1. hind-shim resident memory"
    local ids=() i c
    for ((i = 1; i <= 10; i++)); do
        ids+=("$($H run -d --name rss$i "$rootfs" sleep 60)")
    done
    sleep 1
    local n
    n=$(shims | wc -l)
    ((n == 10)) || fail "expected 10 shims, found $n"
    report "$(rss_line idle)"

    # Serve some clients: ps and inspect read records; logs -f, attach and
    # kill connect to each shim's socket. attach forwards INT and TERM to
    # the container (whose PID 1 ignores them), so it is ended with KILL.
    $H ps >/dev/null
    $H ps -a >/dev/null
    $H inspect "${ids[@]}" >/dev/null
    for c in "${ids[@]}"; do
        $H logs "$c" >/dev/null
        timeout -s INT 0.3 $H logs -f "$c" >/dev/null || true
        timeout --foreground -s KILL 0.3 $H attach --no-stdin "$c" >/dev/null || true
        $H kill -s CONT "$c" >/dev/null
    done
    sleep 0.5
    report "$(rss_line 'after ps, inspect, logs, logs -f, attach, kill')"
    remove_all
}

# ---------------------------------------------------------------------------
# 2. Attached throughput.

# throughput IMG LABEL HOSTPREFIX: both workloads on one image. HOSTPREFIX
# runs the host baselines with the same binaries the image has.
throughput() {
    local img=$1 label=$2 hostsh=$3
    local name inner t_hind t_direct t_pipe n
    for name in zeros lines; do
        case $name in
        zeros) inner="head -c $bytes /dev/zero" ;;
        lines) inner="yes hello-world-line | head -c $bytes" ;;
        esac
        # Correctness first: every byte must arrive.
        n=$($H run --rm "$img" sh -c "$inner" | wc -c)
        ((n == bytes)) || fail "hind run $label $name delivered $n bytes, not $bytes"
        time_cmd 3 0 "$H run --rm $img sh -c '$inner'"
        t_hind=$med
        time_cmd 3 1 "$hostsh -c '$inner'"
        t_direct=$med
        time_cmd 3 1 "$hostsh -c \"$hostsh -c '$inner' | cat\""
        t_pipe=$med
        report "$(printf '2. attached %s MiB %s, %s: hind %s (%s) | host direct %s (%s) -> %s | host piped through cat %s -> %s   target <= 1.2x: %s' \
            $((bytes / 1048576)) "$name" "$label" "$(secs "$t_hind")" "$(mibs "$t_hind")" \
            "$(secs "$t_direct")" "$(mibs "$t_direct")" "$(ratio "$t_hind" "$t_direct")" \
            "$(secs "$t_pipe")" "$(ratio "$t_hind" "$t_pipe")" \
            "$(awk -v a="$t_hind" -v b="$t_pipe" 'BEGIN { print (a <= 1.2 * b) ? "ok" : "MISSED" }')")"
    done
}

section2() {
    echo "==> 2. attached throughput"
    # The busybox image against the same busybox on the host (its applets
    # found through PATH, as in the container).
    throughput "$rootfs" "busybox image" "env PATH=$rootfs/bin $rootfs/bin/sh"
    throughput / "host root /" "/bin/sh"
}

# ---------------------------------------------------------------------------
# 3. hind logs of 200 MiB.

section3() {
    echo "==> 3. hind logs of $((bytes / 1048576)) MiB"
    local id size n t_logs t_cat
    id=$($H run -d "$rootfs" sh -c "yes hello-world-line | head -c $bytes")
    $H wait "$id" >/dev/null
    local log=$root/containers/$id/container.log
    size=$(stat -c %s "$log")
    n=$($H logs "$id" | wc -c)
    ((n == bytes)) || fail "hind logs printed $n bytes, not $bytes"
    time_cmd 3 1 "$H logs $id"
    t_logs=$med
    time_cmd 3 1 "cat $log"
    t_cat=$med
    report "$(printf '3. hind logs, %s MiB of lines (log file %s, %s entries): %s median (cat of the file: %s)   target < 1 s: %s' \
        $((bytes / 1048576)) "$(mb "$size")" "$(wc -l <"$log")" "$(secs "$t_logs")" "$(secs "$t_cat")" \
        "$(awk -v a="$t_logs" 'BEGIN { print (a < 1) ? "ok" : "MISSED" }')")"
    remove_all
}

# ---------------------------------------------------------------------------
# 4. ps with many containers.

section4() {
    echo "==> 4. hind ps -a with $nps exited containers"
    local t0 t1 n t_ps t_q t_run
    t0=$(date +%s%N)
    seq 1 "$nps" | xargs -P2 -I{} $H run --name b{} "$rootfs" true
    t1=$(date +%s%N)
    n=$($H ps -a -q | wc -l)
    ((n == nps)) || fail "ps -a -q lists $n containers, not $nps"
    echo "    created $nps containers in $(secs "$(((t1 - t0) / 1000000))e-3")" >&2
    time_cmd 5 1 "$H ps -a"
    t_ps=$med
    time_cmd 5 1 "$H ps -a -q"
    t_q=$med
    time_cmd 5 1 "$H ps"
    t_run=$med
    report "$(printf '4. hind ps with %d exited containers: ps -a %s, ps -a -q %s (ps, none running: %s)   target < 50 ms: %s' \
        "$nps" "$(ms "$t_ps")" "$(ms "$t_q")" "$(ms "$t_run")" \
        "$(awk -v a="$t_ps" -v b="$t_q" 'BEGIN { print (a < 0.05 && b < 0.05) ? "ok" : "MISSED" }')")"
    t0=$(date +%s%N)
    remove_all
    t1=$(date +%s%N)
    echo "    removed them in $(secs "$(((t1 - t0) / 1000000))e-3")" >&2
    n=$($H ps -a -q | wc -l)
    ((n == 0)) || fail "$n containers left after rm -f"
}

# ---------------------------------------------------------------------------
# 5. Detached start latency.

section5() {
    echo "==> 5. hind run -d latency"
    time_cmd 10 1 "$H run -d $rootfs sleep 10"
    report "$(printf '5. hind run -d IMG sleep 10, time to return: median %s, mean %s (10 runs)' \
        "$(ms "$med")" "$(ms "$mean")")"
    remove_all
}

for s in "${sections[@]}"; do
    case $s in
    1 | 2 | 3 | 4 | 5) "section$s" ;;
    *) fail "unknown section $s (1-5)" ;;
    esac
done

echo
echo "==== summary ($(nproc) cpus, load now $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)," \
    "$([[ -n $use_hyperfine ]] && echo hyperfine || echo shell loop), medians)"
printf '%s\n' "${summary[@]}"
