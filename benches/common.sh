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
