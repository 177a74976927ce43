# Shared by the benchmark scripts (sourced, not run): installing what they
# need and making the busybox root fs they time containers on.

# bench_install PKG...: apt-get installs the Debian packages given whose
# command is missing (busybox-static: a static /bin/busybox). Best effort:
# a script without hyperfine or runc still measures hind.
bench_install() {
    local need=() p
    for p in "$@"; do
        case $p in
        busybox-static) [[ -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 || need+=("$p") ;;
        *) command -v "$p" >/dev/null || need+=("$p") ;;
        esac
    done
    if ((${#need[@]})); then
        echo "==> apt-get install ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        if apt-get update -qq; then
            apt-get install -y -qq "${need[@]}" >/dev/null || true
        fi
    fi
}

# bench_rootfs DIR: a busybox root fs from Debian's busybox-static.
bench_rootfs() {
    local rootfs=$1 applet
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/root"
    install -d -m 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
}

# bench_ms SECONDS: as milliseconds with two decimals.
bench_ms() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }

# bench_latency WORK RUNS: times each command of the caller's array cmds
# (named by names) RUNS times after bench_warmup (default 3) warm-ups: with
# hyperfine unless it is missing or HIND_BENCH_LOOP is set, else in a shell
# loop timed with `date +%s%N`. An array preps, if set, holds a command run
# untimed before every run of the command at the same index. bench_quiet=1
# hides hyperfine's own output unless HIND_BENCH_VERBOSE is set. Sets
# results to "NAME MEAN_MS MEDIAN_MS" per command, in order, stddevs to each
# one's standard deviation (ms, sample), and bench_how to the method.
bench_latency() {
    local work=$1 runs=$2 i r t0 t1 samples line args=() warmup=${bench_warmup:-3}
    results=() stddevs=()
    if command -v hyperfine >/dev/null && [[ -z ${HIND_BENCH_LOOP:-} ]]; then
        for i in "${!cmds[@]}"; do
            args+=(--command-name "${names[$i]}")
            [[ -n ${preps[$i]:-} ]] && args+=(--prepare "${preps[$i]}")
            args+=("${cmds[$i]}")
        done
        local out=/dev/stdout
        [[ -n ${bench_quiet:-} && -z ${HIND_BENCH_VERBOSE:-} ]] && out=/dev/null
        hyperfine -N --warmup "$warmup" --runs "$runs" \
            --export-json "$work/hyperfine.json" "${args[@]}" >"$out"
        # One result object per command, in order: pull mean and median (s).
        local means medians sds
        mapfile -t means < <(grep -o '"mean": *[0-9.e+-]*' "$work/hyperfine.json" | awk '{print $2}')
        mapfile -t medians < <(grep -o '"median": *[0-9.e+-]*' "$work/hyperfine.json" | awk '{print $2}')
        mapfile -t sds < <(grep -o '"stddev": *[0-9.e+-]*' "$work/hyperfine.json" | awk '{print $2}')
        for i in "${!cmds[@]}"; do
            results+=("${names[$i]} $(bench_ms "${means[$i]}") $(bench_ms "${medians[$i]}")")
            stddevs+=("$(bench_ms "${sds[$i]:-0}")")
        done
        bench_how=hyperfine
        return
    fi
    for i in "${!cmds[@]}"; do
        samples=$work/samples-$i
        : >"$samples"
        for ((r = 0; r < warmup; r++)); do
            ${preps[$i]:-}
            ${cmds[$i]} </dev/null >/dev/null
        done
        for ((r = 0; r < runs; r++)); do
            ${preps[$i]:-}
            t0=$(date +%s%N)
            ${cmds[$i]} </dev/null >/dev/null
            t1=$(date +%s%N)
            echo $((t1 - t0)) >>"$samples"
        done
        line=$(sort -n "$samples" | awk '
            { v[NR] = $1; sum += $1; sq += $1 * $1 }
            END {
                med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                var = NR > 1 ? (sq - sum * sum / NR) / (NR - 1) : 0
                printf "%.2f %.2f %.2f", sum / NR / 1e6, med / 1e6, sqrt(var > 0 ? var : 0) / 1e6
            }')
        results+=("${names[$i]} ${line% *}")
        stddevs+=("${line##* }")
    done
    bench_how="shell loop"
}

# bench_remove_work WORK CG_PARENT: unmounts anything under WORK (so rm
# never walks into another filesystem), removes it, and removes the
# benchmark's cgroup parent from every hierarchy.
bench_remove_work() {
    local work=$1 cg_parent=$2 h
    awk -v w="$work" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m"; done
    rm -rf --one-file-system "$work"
    for h in /sys/fs/cgroup/*/"${cg_parent#/}" /sys/fs/cgroup/"${cg_parent#/}"; do
        [[ -d $h ]] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}
