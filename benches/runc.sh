#!/usr/bin/env bash
# Start-to-exit latency of `RUNTIME run` of a busybox bundle running `true`,
# side by side for hind-runc, runc and crun: RUNS sequential
# `RUNTIME --root STATE run --bundle BUNDLE ID` each; prints mean, median and
# standard deviation in milliseconds, and hind-runc's median against the
# others' (the target: at or below crun).
#
# Usage: benches/runc.sh [RUNS]           on this machine (default 30 runs)
#        benches/runc.sh --guest [RUNS]   in the cgroup2-only qemu guest
#                                         (/work/shared/tools/cg2vm), where crun
#                                         works; root required for both
#
# hind-runc is target/release/hind-runc after `cargo build --release --bins`
# (or HIND_BENCH_BIN=DIR/hind-runc, no build); runc and crun are the
# system's (installed with apt-get if missing). A runtime that is missing,
# does not build, or fails its first run is skipped with the reason; crun
# refuses a cgroup v1 "hybrid" host, so on the development machines compare
# it with --guest. HIND_BENCH_RUNTIMES="runc crun" restricts the set;
# HIND_BENCH_LOOP=1 times with a shell loop instead of hyperfine.
#
# --guest copies the runtimes, bash, hyperfine and these scripts into a
# staging dir and runs `benches/runc.sh --in-guest RUNS` there through
# run-in-guest.sh (HIND_BENCH_CG2VM overrides its path); the guest emulates
# its CPU (no KVM), so only the ratios compare with the host's figures.
#
# Every runtime gets its own bundle (same busybox root fs, same config from
# `runc spec` with terminal false, args ["true"] and cgroupsPath
# /hind-bench-PID/RUNTIME) and its own state root, all under a temp dir.
# On exit, also on failure or Ctrl-C, every container is deleted
# (`RUNTIME delete --force`), the temp dir and the /hind-bench-PID cgroups
# removed, and what is left (if anything) is reported.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode=host
case ${1:-} in
--guest) mode=guest; shift ;;
--in-guest) mode=in-guest; shift ;;
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
esac
runs=${1:-30}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "runc.sh: RUNS must be a positive number, not '$runs'" >&2; exit 2; }
if [[ $(id -u) -ne 0 ]]; then
    echo "runc.sh: needs root" >&2
    exit 1
fi

. benches/common.sh
read -r -a wanted <<<"${HIND_BENCH_RUNTIMES:-hind-runc runc crun}"
wants() { [[ " ${wanted[*]} " == *" $1 "* ]]; }

declare -A bin=() skipped=()

# find_runtimes: sets bin[RT] to the executable of each wanted runtime found
# on this machine, else skipped[RT] to why not.
find_runtimes() {
    local rt b
    if wants hind-runc; then
        if [[ -n ${HIND_BENCH_BIN:-} ]]; then
            b=$HIND_BENCH_BIN/hind-runc
        elif [[ ! -e hind-shim/src/bin/hind-runc.rs ]]; then
            b=
            skipped[hind-runc]="not in this tree yet (no hind-shim/src/bin/hind-runc.rs)"
        else
            echo "==> cargo build --release --bins"
            if cargo build --release --workspace --bins; then
                b=$PWD/target/release/hind-runc
            else
                b=
                skipped[hind-runc]="cargo build --release --bins failed"
            fi
        fi
        if [[ -n $b ]]; then
            if [[ -x $b ]]; then
                bin[hind-runc]=$b
            else
                skipped[hind-runc]="not built ($b is missing)"
            fi
        fi
    fi
    for rt in runc crun; do
        wants "$rt" || continue
        if b=$(command -v "$rt"); then
            bin[$rt]=$(readlink -f "$b")
        else
            skipped[$rt]="not installed"
        fi
    done
    for rt in "${!skipped[@]}"; do
        echo "==> $rt: ${skipped[$rt]}: skipped"
    done
}

# ---- --guest: stage everything and run the measurement in the cg2vm guest ----
if [[ $mode == guest ]]; then
    cg2vm=${HIND_BENCH_CG2VM:-/work/shared/tools/cg2vm/run-in-guest.sh}
    [[ -x $cg2vm ]] || { echo "runc.sh: no $cg2vm (set HIND_BENCH_CG2VM)" >&2; exit 1; }
    bench_install hyperfine runc crun
    find_runtimes
    stage=$(mktemp -d /tmp/hind-bench-guest.XXXXXX)
    guest=
    # run-in-guest.sh runs qemu under `timeout`, in a process group of its
    # own that Ctrl-C does not reach: stop it through run-in-guest.sh's
    # children (timeout passes the signal on to qemu), then wait for
    # run-in-guest.sh to remove its files.
    stop_guest() {
        local c
        [[ -n $guest ]] || return 0
        for c in $(pgrep -P "$guest"); do kill -TERM "$c" 2>/dev/null; done
        wait "$guest" 2>/dev/null
    }
    trap 'set +e; stop_guest; rm -rf "$stage"' EXIT
    trap 'echo "==> interrupted: stopping the guest"; exit 130' INT TERM
    mkdir -p "$stage/bin" "$stage/benches"
    cp benches/runc.sh benches/common.sh "$stage/benches/"
    # The guest has only busybox: bash for the scripts, GNU rm
    # (--one-file-system) and install for common.sh. run-in-guest.sh copies
    # the shared libraries of everything staged.
    cp "$(command -v bash)" "$(command -v rm)" "$(command -v install)" "$stage/bin/"
    if command -v hyperfine >/dev/null && [[ -z ${HIND_BENCH_LOOP:-} ]]; then
        cp "$(command -v hyperfine)" "$stage/bin/"
    fi
    for rt in "${!bin[@]}"; do
        cp "${bin[$rt]}" "$stage/bin/$rt"
    done
    # runc also for `runc spec`, timed or not.
    if [[ ! -e $stage/bin/runc ]] && b=$(command -v runc); then
        cp "$(readlink -f "$b")" "$stage/bin/runc"
    fi
    if [[ -n ${bin[hind-runc]:-} ]]; then
        # hind-runc's companions, in case it looks for them next to itself.
        for b in hind-init hind-shim; do
            [[ -x $(dirname "${bin[hind-runc]}")/$b ]] && cp "$(dirname "${bin[hind-runc]}")/$b" "$stage/bin/"
        done
    fi
    echo "==> in the cgroup2-only guest ($cg2vm; software-emulated CPU, about 5 s to boot)"
    # Only the runtimes staged are looked for in the guest. The output goes
    # through a pipe, so hyperfine draws no progress bars on the serial line.
    # In the background, so that a signal runs the trap at once.
    CG2VM_LIBS=auto CG2VM_TIMEOUT=${CG2VM_TIMEOUT:-$((600 + runs * 60))} "$cg2vm" "$stage" \
        "set -o pipefail; env HIND_BENCH_RUNTIMES='${wanted[*]}' HIND_BENCH_LOOP='${HIND_BENCH_LOOP:-}' bin/bash benches/runc.sh --in-guest $runs 2>&1 | cat" &
    guest=$!
    rc=0
    wait "$guest" || rc=$?
    guest=
    exit "$rc"
fi

# ---- the measurement (on this machine, or --in-guest) ----
if [[ $mode == in-guest ]]; then
    # Everything comes from the staging dir (cwd); the guest has busybox.
    export PATH=$PWD/bin:$PATH
    for rt in "${wanted[@]}"; do
        if [[ -x bin/$rt ]]; then bin[$rt]=$PWD/bin/$rt; else skipped[$rt]="not staged for the guest"; fi
    done
    where="guest: qemu without KVM"
else
    bench_install busybox-static hyperfine runc crun
    find_runtimes
    where="host"
fi
if [[ $(awk '$2 == "/sys/fs/cgroup" { t = $3 } END { print t }' /proc/mounts) == cgroup2 ]]; then
    where+=", cgroup v2"
else
    [[ -d /sys/fs/cgroup/unified ]] && where+=", cgroup v1 hybrid" || where+=", cgroup v1"
fi
where+=", $(nproc) cpus"

work=$(mktemp -d /tmp/hind-bench.XXXXXX)
cg_parent=/hind-bench-$$
id=hind-bench-$$
order=()
for rt in "${wanted[@]}"; do
    [[ -n ${bin[$rt]:-} ]] && order+=("$rt")
done
# hind-runc (and its companions) copied, so that a cargo build during the
# run does not change what is measured.
if [[ $mode == host && -n ${bin[hind-runc]:-} ]]; then
    mkdir "$work/bin"
    for b in hind-runc hind-init hind-shim; do
        [[ ! -x $(dirname "${bin[hind-runc]}")/$b ]] || cp "$(dirname "${bin[hind-runc]}")/$b" "$work/bin/"
    done
    bin[hind-runc]=$work/bin/hind-runc
fi

# leftovers RT: what RT's last run left behind (its container's state, its
# cgroup), or nothing.
leftovers() {
    local rt=$1 out=() h
    [[ -e $work/state-$rt/$id ]] && out+=("state $work/state-$rt/$id")
    for h in /sys/fs/cgroup/*/"${cg_parent#/}/$rt" /sys/fs/cgroup/"${cg_parent#/}/$rt"; do
        [[ -d $h ]] && out+=("cgroup $h")
    done
    echo "${out[*]}"
}

cleanup() {
    set +e
    local rt left
    for rt in "${order[@]}"; do
        "${bin[$rt]}" --root "$work/state-$rt" delete --force "$id" >/dev/null 2>&1
    done
    bench_remove_work "$work" "$cg_parent"
    left=$(
        ls -d /sys/fs/cgroup/*/"${cg_parent#/}" /sys/fs/cgroup/"${cg_parent#/}" 2>/dev/null
        awk -v w="$work" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo
        [[ -e $work ]] && echo "$work"
    )
    if [[ -n $left ]]; then
        echo "==> left behind:"
        echo "$left"
    else
        echo "==> clean: no container, mount, cgroup or state dir left"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One bundle per runtime: the same busybox root fs and config, each with its
# own cgroupsPath (so what one leaves behind never helps the next).
spec_from=${bin[runc]:-$(command -v runc || true)}
[[ -n $spec_from ]] || { echo "runc.sh: needs runc for \`runc spec\`" >&2; exit 1; }
for rt in "${order[@]}"; do
    bundle=$work/bundle-$rt
    bench_rootfs "$bundle/rootfs"
    (cd "$bundle" && "$spec_from" spec)
    sed -i -e 's/"terminal": true/"terminal": false/' \
        -e '/"args": \[/,/\]/ s/"sh"/"true"/' \
        -e "s|\"linux\": {|\"linux\": { \"cgroupsPath\": \"$cg_parent/$rt\",|" "$bundle/config.json"
    grep -q '"terminal": false' "$bundle/config.json" && grep -q '"true"' "$bundle/config.json" &&
        grep -q "\"cgroupsPath\": \"$cg_parent/$rt\"" "$bundle/config.json" ||
        { echo "runc.sh: could not edit the config.json of \`runc spec\`" >&2; exit 1; }
done

# Sanity: each runtime runs the container once (else it is skipped with its
# error), and its run leaves nothing behind (else a warning).
cmds=() names=()
for rt in "${order[@]}"; do
    cmd="${bin[$rt]} --root $work/state-$rt run --bundle $work/bundle-$rt $id"
    if $cmd </dev/null >"$work/out" 2>&1; then
        cmds+=("$cmd")
        names+=("$rt")
        left=$(leftovers "$rt")
        [[ -z $left ]] || echo "==> warning: $rt run left behind: $left"
    else
        err=$(grep -v '^$' "$work/out" | tail -1)
        if [[ $rt == crun && $mode == host ]]; then
            skipped[$rt]="refuses this host ($err)"
        else
            skipped[$rt]="fails ($err)"
        fi
        echo "==> $rt: ${skipped[$rt]}: skipped"
        "${bin[$rt]}" --root "$work/state-$rt" delete --force "$id" >/dev/null 2>&1 || true
    fi
done
((${#cmds[@]})) || { echo "runc.sh: no runtime to time" >&2; exit 1; }

echo "==> $runs runs of \`RUNTIME --root STATE run --bundle BUNDLE ID\` (busybox, true) each"
bench_latency "$work" "$runs"

for rt in "${order[@]}"; do
    left=$(leftovers "$rt")
    [[ -z $left ]] || echo "==> warning: after its runs $rt left behind: $left"
done

echo
printf '%-10s %10s %10s %10s   (%s runs, %s; %s)\n' runtime "mean ms" "median ms" "stddev ms" \
    "$runs" "$bench_how" "$where"
declare -A median=()
for i in "${!results[@]}"; do
    read -r n mean med <<<"${results[$i]}"
    median[$n]=$med
    printf '%-10s %10s %10s %10s\n' "$n" "$mean" "$med" "${stddevs[$i]}"
done
for rt in "${wanted[@]}"; do
    [[ -n ${skipped[$rt]:-} ]] && printf '%-10s %s\n' "$rt" "${skipped[$rt]}"
done
if [[ -n ${median[hind-runc]:-} ]]; then
    for rt in crun runc; do
        [[ -n ${median[$rt]:-} ]] || continue
        awk -v a="${median[hind-runc]}" -v b="${median[$rt]}" -v rt="$rt" -v t="$([[ $rt == crun ]] && echo '   (target: <= 1.00x)')" \
            'BEGIN { printf "hind-runc / %s (median): %.2fx%s\n", rt, a / b, t }'
    done
fi
