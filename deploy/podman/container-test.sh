#!/usr/bin/env bash
# The images of the Dockerfile, built and run for real with Debian's podman (no Docker engine
# and no image registry needed): `make container-test`.
#
#   1. a base image: Debian bookworm (debootstrap --variant=minbase, with python3, venv and
#      CA certificates) imported as localhost/debian:bookworm-py (made once, then kept);
#   2. the web app image (--target serve: the serve extra, no torch) and the ingest image
#      (--target ingest), both FROM that base (--build-arg BASE);
#   3. a small SynthUCF folder and a tiny random CLIP with its ONNX export, made on the host;
#   4. the ingest image as a one-shot job embedding the folder into a named volume;
#   5. the web app container on that store: non-root, read-only root filesystem, a tmpfs
#      /tmp, the volumes; then health, a search, a poster and /metrics checked from the host.
#
# Everything podman keeps lies under $WORK (default var/containers): its own storage (--root,
# --runroot), the cached root filesystem, logs. The host's CA bundle and pip configuration
# (and the folders it names, such as a local wheel cache) are mounted read-only into the
# builds (`podman build -v`), never copied into an image. Prints each step's time and the
# image sizes. Needs root (debootstrap, podman): `make podman-deps` installs the packages.
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK=${WORK:-var/containers}
CLI=${CLI:-.venv/bin/clipsearch}
PORT=${PORT:-18765}
# where pip finds torch's CPU wheel in the ingest build (the Dockerfile's default is the
# PyTorch index; on this project's machines pip's own configuration finds it: empty)
TORCH_PIP_ARGS=${TORCH_PIP_ARGS-}
SERVE_IMAGE=localhost/clipsearch-serve:test
INGEST_IMAGE=localhost/clipsearch:test
BASE_IMAGE=localhost/debian:bookworm-py
PREFIX=clipsearch-ct
mkdir -p "$WORK/logs" "$WORK/cache"
WORK=$(cd "$WORK" && pwd)
LOGS=$WORK/logs

now() { date +%s.%N; }
took() { awk -v a="$2" -v b="$(now)" -v l="$1" 'BEGIN { printf "[time] %-40s %6.1f s\n", l, b - a }'; }
fail() { echo "container-test: FAILED: $*" >&2; exit 1; }

for tool in podman runc debootstrap; do
    command -v "$tool" >/dev/null || fail "no $tool: run make podman-deps (as root)"
done
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap and podman's storage)"

# Its own storage and state (--tmpdir too: podman's default /run/libpod is shared by stores),
# one folder per storage driver: overlay where the kernel mounts it (the layers are shared),
# else vfs, which copies the whole root filesystem at every build step and container start.
# STORAGE_DRIVER=overlay|vfs chooses.
podman_for() {  # podman_for DRIVER: sets PODMAN, the command line for that driver
    PODMAN=(podman --root "$WORK/storage-$1" --runroot "$WORK/run-$1"
            --tmpdir "$WORK/run-$1/libpod" --storage-driver "$1" --runtime runc
            --cgroup-manager cgroupfs --events-backend file)
}
DRIVER=${STORAGE_DRIVER:-}
if [ -z "$DRIVER" ]; then
    # (info sets the driver up, and overlay's set-up mounts a test overlay)
    podman_for overlay
    if "${PODMAN[@]}" info > "$LOGS/overlay-probe.log" 2>&1; then
        DRIVER=overlay
    else
        DRIVER=vfs
        echo "container-test: no overlay storage: $(grep -m1 Error "$LOGS/overlay-probe.log" || true)"
    fi
fi
case $DRIVER in overlay | vfs) ;; *) fail "STORAGE_DRIVER is overlay or vfs, not $DRIVER" ;; esac
podman_for "$DRIVER"
p() { "${PODMAN[@]}" "$@"; }
# these machines refuse podman's default rlimits; host networking needs no bridge or iptables
CFLAGS=(--network host --ulimit nofile=1024:4096 --ulimit nproc=1024:4096)
# (runs before the driver was chosen kept vfs storage here: the test's own images, dropped)
if [ -d "$WORK/storage" ]; then rm -rf "$WORK/storage" "$WORK/run"; fi

# The builds need room: fail now, saying so, rather than midway with ENOSPC. At the peak
# (committing the ingest image) a fresh run took 9.1 GB with overlay and 10.5 GB with vfs
# (the fall in df's free space, 2026-12-06).
need_mb=$([ "$DRIVER" = overlay ] && echo 10240 || echo 11264)
free_mb=$(df -Pm "$WORK" | awk 'NR == 2 {print $4}')
gb() { awk -v mb="$1" 'BEGIN { printf "%.1f GB", mb / 1024 }'; }
[ "$free_mb" -ge "$need_mb" ] || fail "$(gb "$free_mb") free under $WORK; building the images \
with the $DRIVER storage driver takes about $(gb "$need_mb") (set WORK to a roomier folder)"
echo "container-test: podman storage driver $DRIVER, $(gb "$free_mb") free under $WORK"

# ---- 1. the base image (debootstrap is the slow part: its root filesystem is cached as a tar)
if ! p image exists "$BASE_IMAGE"; then
    t=$(now)
    tarball=$WORK/cache/bookworm-py.tar
    if [ ! -s "$tarball" ]; then
        mirror=${MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
        mirror=${mirror:-$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
        mirror=${mirror:-http://deb.debian.org/debian}
        rootfs=$(mktemp -d "$WORK/rootfs.XXXXXX")
        chmod 0755 "$rootfs"  # tar records "." too: the image's / would be 0700
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$rootfs" "$mirror" > "$LOGS/debootstrap.log" 2>&1 \
            || { tail -20 "$LOGS/debootstrap.log"; fail "debootstrap"; }
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
            "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
        : > "$rootfs/etc/resolv.conf"  # debootstrap copied the host's; podman mounts its own
        tar --numeric-owner -C "$rootfs" -cf "$tarball.part" .
        mv "$tarball.part" "$tarball"
        rm -rf "$rootfs"
    fi
    # an imported tarball has no config: give it a PATH (ENV PATH=/opt/venv/bin:$PATH needs one)
    p import -q --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_IMAGE" > /dev/null
    took "base image (debootstrap + import)" "$t"
fi

# ---- 2. the two images. pip inside a build sees the host's CA bundle and pip configuration,
# read-only, and the folders that configuration names (find-links, file:// indexes, constraints)
MOUNTS=()
# (the bundle over the image's own, which the base has: a new path would leave an empty stub)
bundle=/etc/ssl/certs/ca-certificates.crt
cert=${SSL_CERT_FILE:-$bundle}
[ -f "$cert" ] && MOUNTS+=(-v "$cert:$bundle:ro" --build-arg PIP_CERT=$bundle)
for path in /etc/pip.conf /etc/xdg/pip /root/.config/pip/pip.conf /root/.pip/pip.conf; do
    [ -e "$path" ] && MOUNTS+=(-v "$path:$path:ro")
done
# (a file:// index's pages link to files beside its simple/ folder: mount its parent)
for dir in $( (pip config list 2>/dev/null; env | grep '^PIP_') \
        | grep -oE "(file://)?/[^ '\"]+" | sed -e 's|^file://||' -e 's|/simple/*$||' | sort -u); do
    [ -d "$dir" ] && [[ $dir != /etc/* ]] && MOUNTS+=(-v "$dir:$dir:ro")
done

build() {  # build TARGET IMAGE
    local t
    t=$(now)
    p rmi -f "$2" > /dev/null 2>&1 || true  # a rebuild would leave the last one untagged
    p build --layers=false "${CFLAGS[@]}" "${MOUNTS[@]}" --build-arg BASE="$BASE_IMAGE" \
        --build-arg TORCH_PIP_ARGS="$TORCH_PIP_ARGS" --target "$1" -t "$2" . \
        > "$LOGS/build-$1.log" 2>&1 || { tail -30 "$LOGS/build-$1.log"; fail "build --target $1"; }
    took "build --target $1" "$t"
}
build serve "$SERVE_IMAGE"
build ingest "$INGEST_IMAGE"
# no torch in the web app's image
p run --rm "${CFLAGS[@]}" "$SERVE_IMAGE" python3 -c 'import torch' > /dev/null 2>&1 \
    && fail "the serve image has torch"

# ---- 3. a small video folder and a tiny random CLIP with its ONNX export (host, full install)
DATA=$WORK/data
MODEL=$WORK/models/tiny
if [ ! -f "$DATA/synth_meta.jsonl" ]; then
    "$CLI" synth --out "$DATA" --classes 3 --groups 2 --clips 1 --moments-per-class 0 \
        --long-videos 0 -q > /dev/null
fi
if [ ! -f "$MODEL/onnx/manifest.json" ]; then
    rm -rf "$MODEL"
    "$CLI" model init --arch tiny --out "$MODEL" -q > /dev/null
    "$CLI" export "$MODEL" -q > /dev/null
fi
chmod -R a+rX "$WORK/models" "$DATA"  # the containers run as uid 10001

# ---- 4. the ingest image as a one-shot job, into named volumes
cleanup() {
    p rm -f "$PREFIX-web" > /dev/null 2>&1 || true
    p volume rm -f "$PREFIX-store" "$PREFIX-media" > /dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
p volume create "$PREFIX-store" > /dev/null
p volume create "$PREFIX-media" > /dev/null
VOLUMES=(-v "$PREFIX-store:/app/var/store" -v "$PREFIX-media:/app/var/media"
         -v "$WORK/models:/models:ro")
t=$(now)
p run --rm "${CFLAGS[@]}" "${VOLUMES[@]}" -v "$DATA:/data:ro" "$INGEST_IMAGE" \
    clipsearch ingest /data --model /models/tiny -q > "$LOGS/ingest.log" 2>&1 \
    || { tail -30 "$LOGS/ingest.log"; fail "the ingest job"; }
took "ingest job (6 clips)" "$t"

# ---- 5. the web app: non-root, read-only root filesystem, on that store
t=$(now)
p run -d --name "$PREFIX-web" "${CFLAGS[@]}" --read-only --tmpfs /tmp:rw,size=64m,mode=1777 \
    "${VOLUMES[@]}" -e CLIPSEARCH_MODEL=/models/tiny -e CLIPSEARCH_BIND="127.0.0.1:$PORT" \
    "$SERVE_IMAGE" > /dev/null
base=http://127.0.0.1:$PORT
for _ in $(seq 1 240); do
    curl -fsS "$base/api/health" > /dev/null 2>&1 && break
    [ "$(p inspect -f '{{.State.Running}}' "$PREFIX-web")" = true ] || break
    sleep 0.5
done
curl -fsS "$base/api/health" > "$LOGS/health.json" \
    || { p logs "$PREFIX-web" | tail -30; fail "the web app did not come up"; }
took "web app container up" "$t"
user=$(p exec "$PREFIX-web" id -u)
[ "$user" != 0 ] || fail "the web app runs as root"
p exec "$PREFIX-web" touch /app/probe 2> /dev/null && fail "the root filesystem is writable"
curl -fsS "$base/api/search?q=a+video+of+ball+bouncing&k=3&min_score=-1" > "$LOGS/search.json"
poster=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["thumbnail_url"])' \
    < "$LOGS/search.json") || fail "the search found nothing: $(cat "$LOGS/search.json")"
kind=$(curl -fsS -o /dev/null -w '%{content_type}' "$base$poster") || fail "no poster at $poster"
[ "$kind" = image/jpeg ] || fail "the poster is $kind"
curl -fsS "$base/metrics" > "$LOGS/metrics.txt"
grep -q '^clipsearch_requests_total{.*route="/api/search".*} 1.0' "$LOGS/metrics.txt" \
    || fail "/metrics does not count the search"
echo "container-test: the web app (uid $user, read-only root) answered health, a search, a poster and /metrics"
p images --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
    | grep -E "clipsearch|debian" | sed 's/^/[size] /'
echo "container-test: passed"
