#!/bin/sh
# Runs inside the cgroup2-only qemu guest started by scripts/test-cgroup2
# (../shared/tools/cg2vm/run-in-guest.sh), as root, with cwd = /host, where
#   bin/hind bin/hind-shim bin/hind-init   the release binaries
#   rootfs/                                a busybox root filesystem (the image)
#   tests/NAME                             e2e test binaries (tests/tests/NAME.rs)
# Only static busybox is available here (POSIX sh, busybox applets).
#
# Every check prints "ok NAME" or "FAIL NAME: why"; context lines start with "# ".
# The last line is "N passed, M failed"; the exit status is non-zero if M > 0.

HOST=$(pwd)
HIND="$HOST/bin/hind"
CG=/sys/fs/cgroup
# The state root and the image live on tmpfs (overlay upper/work dirs need a
# filesystem that supports them; /tmp in the guest is a tmpfs).
ROOT=/tmp/hind-root
IMG=/tmp/hind-img
LOGS=/tmp/hind-logs
# Seconds before a single `hind run` is considered hung (the guest is emulated: slow).
RUN_TIMEOUT=${RUN_TIMEOUT:-60}
# How long a container used for reading its cgroup files sleeps.
SLEEP=${SLEEP:-5}

PASSED=0
FAILED=0
ok()   { PASSED=$((PASSED + 1)); echo "ok $1"; }
fail() { FAILED=$((FAILED + 1)); n=$1; shift; echo "FAIL $n: $*"; }
note() { echo "# $*"; }
# Indents a file's content as context lines (at most 20 lines).
show() { [ -s "$1" ] && head -n 20 "$1" | sed 's/^/#   | /'; return 0; }
# One line of a file's content for a message ("<empty>" if nothing).
oneline() { if [ -s "$1" ]; then tr '\n' ' ' < "$1" | cut -c1-300; else echo "<empty>"; fi; }

# hind ARGS... : the hind CLI with this run's state root, killed if it hangs.
hind() { timeout -s KILL "$RUN_TIMEOUT" "$HIND" --root "$ROOT" "$@"; }

# Prints the pids of live hind-shim processes (by comm), one per line. A
# zombie has exited; reaping it is the job of PID 1, not of hind.
shim_pids() {
    for c in /proc/[0-9]*/comm; do
        [ "$(cat "$c" 2>/dev/null)" = hind-shim ] || continue
        p=${c#/proc/}; p=${p%/comm}
        st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
        [ -n "$st" ] && [ "$st" != Z ] && echo "$p"
    done
    return 0
}

# wait_gone SECONDS PATH... : succeeds once none of PATHs exists.
wait_gone() {
    t=$(( $1 * 10 )); shift
    while [ "$t" -gt 0 ]; do
        left=0
        for p in "$@"; do [ -e "$p" ] && left=1; done
        [ "$left" = 0 ] && return 0
        sleep 0.1; t=$((t - 1))
    done
    return 1
}

# check_cleanup NAME PARENT [ID] : after a container exited: its cgroup dir
# (if ID is known) and PARENT are gone from /sys/fs/cgroup and no hind-shim
# process is left. hind removes both before reporting the exit, the shim exits
# right after; allow a few seconds for the shim (emulated guest).
check_cleanup() {
    name=$1; pdir=$CG/${2#/}; id=${3:-}
    why=""
    if [ -n "$id" ] && [ -e "$pdir/$id" ]; then
        why="cgroup $pdir/$id still exists (cgroup.procs: $(oneline "$pdir/$id/cgroup.procs"))"
    elif [ -e "$pdir" ]; then
        why="parent cgroup $pdir still exists (children: $(ls "$pdir" | grep -E '^[0-9a-f]{64}$' | tr '\n' ' '))"
    fi
    t=50; shims=$(shim_pids)
    while [ -n "$shims" ] && [ "$t" -gt 0 ]; do sleep 0.1; t=$((t - 1)); shims=$(shim_pids); done
    if [ -n "$shims" ]; then
        for p in $shims; do
            why="${why:+$why; }hind-shim pid $p still running ($(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null))"
        done
    fi
    if [ -z "$why" ]; then ok "$name"; else fail "$name" "$why"; fi
    # Do not let one check's leftovers fail the next ones.
    for p in $shims; do kill -9 "$p" 2>/dev/null; done
}

# check_exit NAME WANT PARENT -- HIND-RUN-ARGS... : runs a container in the
# foreground with --cgroup-parent PARENT, expects exit status WANT, then
# checks the cleanup (NAME-cleanup).
check_exit() {
    name=$1; want=$2; parent=$3; shift 4
    hind run --rm --cgroup-parent "$parent" "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.err"
    rc=$?
    if [ "$rc" = "$want" ]; then ok "$name"
    else
        fail "$name" "hind run $* exited $rc, want $want; stderr: $(oneline "$LOGS/$name.err")"
        show "$LOGS/$name.out"
    fi
    check_cleanup "$name-cleanup" "$parent"
}

# check_limit NAME FILE WANT PARENT -- HIND-RUN-ARGS... : runs
# `hind run --rm --cgroup-parent PARENT ARGS... IMG sleep $SLEEP` in the
# background, finds the container's cgroup under PARENT, expects FILE in it
# to read WANT (and the container's process to be in it), then expects exit
# status 0 and the cleanup (NAME-exit, NAME-cleanup).
check_limit() {
    name=$1; file=$2; want=$3; parent=$4; shift 5
    pdir=$CG/${parent#/}
    hind run --rm --cgroup-parent "$parent" "$@" "$IMG" sleep "$SLEEP" \
        > "$LOGS/$name.out" 2> "$LOGS/$name.err" &
    pid=$!
    id=""; got=""; procs=""
    t=$(( (SLEEP + 10) * 10 ))
    while [ "$t" -gt 0 ]; do
        if [ -z "$id" ]; then
            id=$(ls "$pdir" 2>/dev/null | grep -E '^[0-9a-f]{64}$' | head -n 1)
        fi
        if [ -n "$id" ]; then
            # The limits are written right after the cgroup is made: poll.
            # (keep the last value read: the cgroup goes when the container exits)
            v=$(cat "$pdir/$id/$file" 2>/dev/null) && got=$v
            v=$(cat "$pdir/$id/cgroup.procs" 2>/dev/null) && procs=$(echo $v)
            [ "$got" = "$want" ] && [ -n "$procs" ] && break
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1; t=$((t - 1))
    done
    if [ -z "$id" ]; then
        fail "$name" "no container cgroup appeared under $pdir (hind run $*)"
    elif [ "$got" != "$want" ]; then
        fail "$name" "$pdir/$id/$file is '$got', want '$want' (hind run $*)"
    elif [ -z "$procs" ]; then
        fail "$name" "$pdir/$id/$file is right but the cgroup has no process"
    else
        ok "$name"
        note "$file = $got in $pdir/$id (processes: $procs)"
    fi
    wait "$pid"; rc=$?
    if [ "$rc" = 0 ]; then ok "$name-exit"
    else
        fail "$name-exit" "hind run $* $IMG sleep $SLEEP exited $rc, want 0; stderr: $(oneline "$LOGS/$name.err")"
        show "$LOGS/$name.out"
    fi
    check_cleanup "$name-cleanup" "$parent" "$id"
}

# ---------------------------------------------------------------------------
note "kernel $(uname -r), $(nproc) cpus, $(free -m | awk '/^Mem:/ {print $2}') MiB"
note "cgroup.controllers: $(cat $CG/cgroup.controllers 2>/dev/null)"
note "cgroup.subtree_control: $(cat $CG/cgroup.subtree_control 2>/dev/null)"

# The guest really is cgroup2-only. Busybox's stat does not know the name of
# the cgroup2 magic (it prints UNKNOWN); accept its number, 0x63677270.
fstype=$(stat -fc %T $CG 2>/dev/null); magic=$(stat -fc %t $CG 2>/dev/null)
v1=$(awk '$3 == "cgroup" {print $2}' /proc/mounts | tr '\n' ' ')
if [ "$fstype" != cgroup2fs ] && [ "$magic" != 63677270 ]; then
    fail cgroup2-only "$CG is $fstype (magic 0x$magic), not cgroup2fs"
elif [ -n "$v1" ]; then
    fail cgroup2-only "cgroup v1 hierarchies are mounted: $v1"
elif [ ! -f $CG/cgroup.controllers ]; then
    fail cgroup2-only "$CG has no cgroup.controllers"
else
    ok cgroup2-only
fi

# Setup: image and state root on tmpfs.
mkdir -p "$ROOT" "$LOGS"
rm -rf "$IMG"; cp -a "$HOST/rootfs" "$IMG"
note "state root $ROOT and image $IMG are on $(stat -fc %T /tmp)"
for b in hind hind-shim hind-init; do
    [ -x "$HOST/bin/$b" ] || { fail setup "$HOST/bin/$b missing"; echo "$PASSED passed, $FAILED failed"; exit 1; }
done

# Basic runs.
check_exit run-true 0 /cg2t-true -- "$IMG" true
check_exit run-exit7 7 /cg2t-exit7 -- "$IMG" sh -c 'exit 7'

# Memory limit: 64m -> memory.max 67108864.
check_limit memory.max memory.max 67108864 /cg2t-mem -- -m 64m

# OOM: a 16m container that tries to hold ~200 MB in a shell variable.
check_exit oom-137 137 /cg2t-oom -- -m 16m "$IMG" sh -c 'x=$(head -c 200000000 /dev/zero | tr "\\0" a)'

# CPU limits.
check_limit cpu.max cpu.max "50000 100000" /cg2t-cpu -- --cpus 0.5
check_limit cpuset.cpus cpuset.cpus 0 /cg2t-cpuset -- --cpuset-cpus 0
check_limit pids.max pids.max 20 /cg2t-pids -- --pids-limit 20

# Not a counted check: what a container sees as its own cgroup (with a private
# cgroup namespace rooted at its cgroup this would be "0::/").
hind run --rm --cgroup-parent /cg2t-ns "$IMG" cat /proc/self/cgroup > "$LOGS/ns.out" 2>&1
note "info: /proc/self/cgroup inside a container: $(oneline "$LOGS/ns.out")"

# Staged for the quota tests: the xfs and quota format modules (in
# dependency order by name) and mkfs.xfs/mkfs.ext4. With them loaded the
# tests must not skip.
if [ -d "$HOST/modules" ]; then
    for m in "$HOST"/modules/*.ko; do
        insmod "$m" 2>/dev/null || note "insmod $(basename "$m") failed"
    done
    export PATH="$HOST/tools:$PATH"
    grep -qw xfs /proc/filesystems && [ -e "$HOST/modules/quota_v2.ko" ] \
        && export HIND_TEST_REQUIRE_QUOTA=1
fi

# End-to-end test binaries, when staged: each of their tests is a check
# ("ok NAME::TEST"), run against the release binaries and the busybox here.
for t in "$HOST"/tests/*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    HIND_BIN_DIR="$HOST/bin" HIND_TEST_BUSYBOX="$HOST/rootfs/bin/busybox" \
        HIND_E2E_TIMEOUT="$RUN_TIMEOUT" "$t" --test-threads=2 > "$LOGS/test-$name.out" 2>&1
    rc=$?
    sed -nE 's/^test (.*) \.\.\. (ok|FAILED)$/\2 \1/p' "$LOGS/test-$name.out" > "$LOGS/test-$name.list"
    while read -r verdict tname; do
        if [ "$verdict" = ok ]; then ok "$name::$tname"
        else
            fail "$name::$tname" "see its output below"
            # The test's own report, from its "---- NAME stdout ----" header.
            sed -n "/^---- $tname stdout ----\$/,/^\(---- \|failures:\)/p" "$LOGS/test-$name.out" \
                | grep -v '^  *[0-9]*: \|^  *at ' | head -n 30 | sed 's/^/#   | /'
        fi
    done < "$LOGS/test-$name.list"
    if [ "$rc" != 0 ] && ! grep -q '^FAILED' "$LOGS/test-$name.list"; then
        fail "$name" "the test binary exited $rc without a failed test"
        show "$LOGS/test-$name.out"
    fi
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
