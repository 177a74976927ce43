#!/usr/bin/env bash
# Pull of a 5-layer image from a loopback registry: `hind pull` into a fresh
# state root (download, verify, extract every layer, record the image)
# against `skopeo copy docker://... dir:DIR` of the same image (download and
# verify the blobs, no extraction). Prints mean and median seconds of both
# and the MB/s of compressed blobs they move.
#
# Usage: benches/pull.sh [RUNS]   (default 5; root required)
#
# The image is built here as an OCI layout: busybox plus, per layer, about
# HIND_BENCH_LAYER_MB (default 30) MiB of files, a third random bytes (does
# not compress) and two thirds base64 text (compresses ~4:3), gzip'd; it is
# pushed with skopeo to Debian's docker-registry on a free 127.0.0.1 port.
# Installs busybox-static, skopeo, docker-registry and hyperfine with
# apt-get when missing. HIND_BENCH_LOOP=1 times with a `date +%s%N` loop
# instead of hyperfine, HIND_BENCH_VERBOSE=1 shows hyperfine's output;
# HIND_BENCH_BIN=DIR uses the hind in DIR instead of `cargo build --release`. Everything (registry, work dir) goes on exit,
# also on failure or Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-5}
layer_mb=${HIND_BENCH_LAYER_MB:-30}

if [[ $(id -u) -ne 0 ]]; then
    echo "pull: needs root" >&2
    exit 1
fi

. benches/common.sh
bench_install busybox-static skopeo docker-registry hyperfine
for c in skopeo docker-registry curl sha256sum; do
    command -v "$c" >/dev/null || {
        echo "pull: $c is needed" >&2
        exit 1
    }
done

if [[ -n ${HIND_BENCH_BIN:-} ]]; then
    bindir=$HIND_BENCH_BIN
    echo "==> using the binaries in $bindir"
else
    bindir=target/release
    echo "==> cargo build --release"
    cargo build --release --workspace --bins
fi

work=$(mktemp -d /tmp/hind-bench.XXXXXX)
reg_pid=
cleanup() {
    set +e
    [[ -n $reg_pid ]] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Copied out of target/, so a concurrent `cargo build` cannot swap it.
mkdir -p "$work/bin"
cp "$bindir/hind" "$work/bin/hind"
hind=$work/bin/hind

# ---- the image, as an OCI layout

layout=$work/layout
mkdir -p "$layout/blobs/sha256"
printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

# put FILE: moves FILE into the layout's blobs; prints "sha256:HEX SIZE".
put() {
    local hex size
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    mv "$1" "$layout/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}

gz() { if command -v pigz >/dev/null; then pigz -6 -n -c; else gzip -6 -n -c; fi; }

echo "==> building a 5-layer image of ${layer_mb} MiB per layer"
layers_json=() diff_ids=() total_blob=0 total_tar=0
for i in 1 2 3 4 5; do
    src=$work/src$i
    mkdir -p "$src/data$i"
    ((i == 1)) && bench_rootfs "$src"
    rnd=$((layer_mb / 3)) txt=$((layer_mb - layer_mb / 3))
    head -c "${rnd}M" /dev/urandom >"$src/data$i/random.bin"
    for ((f = 0; f < txt; f++)); do
        head -c 786432 /dev/urandom | base64 >"$src/data$i/text$f.txt"
    done
    tar -C "$src" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 \
        -cf "$work/layer$i.tar" .
    rm -rf "$src"
    diff_id=sha256:$(sha256sum "$work/layer$i.tar" | cut -d' ' -f1)
    tar_size=$(stat -c %s "$work/layer$i.tar")
    gz <"$work/layer$i.tar" >"$work/layer$i.tar.gz"
    rm "$work/layer$i.tar"
    read -r digest size < <(put "$work/layer$i.tar.gz")
    layers_json+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$digest\",\"size\":$size}")
    diff_ids+=("\"$diff_id\"")
    total_blob=$((total_blob + size))
    total_tar=$((total_tar + tar_size))
done
arch=$(uname -m)
case $arch in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
join() { local IFS=,; echo "$*"; }
printf '{"architecture":"%s","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
    "$arch" "$(join "${diff_ids[@]}")" >"$work/config.json"
read -r config_digest config_size < <(put "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
    "$config_digest" "$config_size" "$(join "${layers_json[@]}")" >"$work/manifest.json"
read -r manifest_digest manifest_size < <(put "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
    "$manifest_digest" "$manifest_size" >"$layout/index.json"
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
echo "    blobs $(mb $total_blob) MB compressed, $(mb $total_tar) MB of tar"

# ---- the registry

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + $$ % 20000)))
addr=127.0.0.1:$port
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: "$work/registry/storage"
http:
  addr: "$addr"
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
reg_pid=$!
for ((n = 0; n < 200; n++)); do
    curl -sf "http://$addr/v2/" >/dev/null && break
    sleep 0.05
done
curl -sf "http://$addr/v2/" >/dev/null || {
    echo "pull: docker-registry did not start:" >&2
    cat "$work/registry/log" >&2
    exit 1
}
ref=$addr/bench/pull:latest
echo "==> pushing to $ref"
skopeo --insecure-policy copy --quiet --preserve-digests --dest-tls-verify=false \
    "oci:$layout:bench" "docker://$ref"
rm -rf "$layout"

# ---- timing

hind_cmd="$hind --root $work/hind-root pull -q $ref"
hind_prep="rm -rf $work/hind-root"
skopeo_cmd="skopeo --insecure-policy copy --quiet --src-tls-verify=false docker://$ref dir:$work/skopeo-dir"
skopeo_prep="rm -rf $work/skopeo-dir"
names=(hind skopeo)
cmds=("$hind_cmd" "$skopeo_cmd")
preps=("$hind_prep" "$skopeo_prep")

# Sanity: each must work once, and hind must have the image afterwards.
for i in 0 1; do
    ${preps[$i]}
    ${cmds[$i]} </dev/null >/dev/null
done
[[ $($hind --root "$work/hind-root" images -q | wc -l) -eq 1 ]] || {
    echo "pull: hind pull did not store the image" >&2
    exit 1
}

# No warm-ups: the sanity run above was one. Results come in ms.
bench_warmup=0 bench_quiet=1 bench_latency "$work" "$runs"
${preps[0]}
${preps[1]}

echo
printf '5-layer image, %s MB of gzip blobs (%s MB unpacked), %s runs, %s cpus, %s\n' \
    "$(mb $total_blob)" "$(mb $total_tar)" "$runs" "$(nproc)" \
    "$bench_how"
printf '%-8s %10s %10s %10s\n' tool "mean s" "median s" "MB/s"
for r in "${results[@]}"; do
    read -r n mean med <<<"$r"
    printf '%-8s %10.3f %10.3f %10.1f\n' "$n" "$(awk -v t="$mean" 'BEGIN { print t / 1e3 }')" \
        "$(awk -v t="$med" 'BEGIN { print t / 1e3 }')" \
        "$(awk -v b="$total_blob" -v t="$med" 'BEGIN { print b / 1e3 / t }')"
done
read -r _ _ hmed <<<"${results[0]}"
read -r _ _ smed <<<"${results[1]}"
awk -v h="$hmed" -v s="$smed" 'BEGIN { printf "hind / skopeo (median): %.2fx\n", h / s }'
