#!/usr/bin/env bash
# Build the local stand-ins for the registry images docker-compose.yml and the Dockerfile name
# (Docker Hub cannot be reached from the machines this project is tested on), tagged with
# exactly those names, fully qualified (docker.io/library/mysql:8.0 is what `mysql:8.0` means to
# Docker and to podman's Docker API), so that both files are used unmodified. What each stand-in is, and how it
# differs from the real image: README.md here.
#
#   tests/compose/standins/build.sh        (make standins; make test-compose runs it)
#
# Cached: every image carries a label with the hash of its build inputs (this script, its build
# directory, its parent image's hash, the host CA bundle, the lock file where used); an image
# whose label matches is not rebuilt, so only the first run pays for the builds (~6 min).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
PODMAN="$SUDO podman"
LABEL=org.zenml-autopilot.standin-inputs
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_CA=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
BASE=localhost/zenml-autopilot-standin/debian:bookworm
ZENML_VERSION=$(sed -n 's/^zenml==//p' "$ROOT/requirements.lock")
log() { echo "standins: $*" >&2; }

# The hash of some build inputs (files or literal strings), prefixed with the parent's hash.
inputs_hash() {
  local parent=$1; shift
  { echo "$parent"; sha256sum "$HERE/build.sh"; for f in "$@"; do
      if [ -e "$f" ]; then find "$f" -type f -print0 | sort -z | xargs -0 sha256sum \
        | sed "s#  $HERE/#  #; s#  $ROOT/#  #"; else echo "$f"; fi
    done; } | sha256sum | cut -c1-16
}
label_of() { $PODMAN image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }

# Build one image from a directory (plus what `prepare` adds to the context) unless its tag
# already carries this hash.
build() {
  local image=$1 dir=$2 hash=$3 prepare=$4; shift 4
  if [ "$(label_of "$image")" = "$hash" ]; then log "$image: cached ($hash)"; return; fi
  log "$image: building ($hash)"
  local context; context=$(mktemp -d); cp -a "$dir/." "$context/"
  "$prepare" "$context"
  local previous; previous=$($PODMAN image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  $PODMAN build --quiet --layers --label "$LABEL=$hash" -t "$image" -f "$context/Containerfile" \
    "$@" "$context" >/dev/null
  rm -rf "$context"
  # The image the tag left behind (a stale stand-in); kept if something still uses it.
  [ -z "$previous" ] || $PODMAN rmi "$previous" >/dev/null 2>&1 || true
}
no_extra() { :; }

# 1. Debian bookworm's minimal root filesystem from Debian's own packages (no registry needed).
base_hash=$(inputs_hash "" "debootstrap minbase bookworm $MIRROR")
if [ "$(label_of "$BASE")" != "$base_hash" ]; then
  log "$BASE: debootstrap ($base_hash)"
  previous=$($PODMAN image inspect --format '{{.Id}}' "$BASE" 2>/dev/null || true)
  rootfs=$(mktemp -d)
  $SUDO debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # Keep image layers small: no docs or man pages in later apt installs, as Docker's debian.
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-exclude /usr/share/man/*' \
    'path-exclude /usr/share/locale/*' | $SUDO tee "$rootfs/etc/dpkg/dpkg.cfg.d/excludes" >/dev/null
  $SUDO tar -C "$rootfs" -c . | $PODMAN import --quiet --change "LABEL $LABEL=$base_hash" \
    --change 'CMD ["bash"]' - "$BASE" >/dev/null
  $SUDO rm -rf "$rootfs"
  [ -z "$previous" ] || $PODMAN rmi "$previous" >/dev/null 2>&1 || true
else
  log "$BASE: cached ($base_hash)"
fi

# 2. python:3.11-slim, carrying the host CA bundle (pip needs it here).
python_hash=$(inputs_hash "$base_hash" "$HERE/python" "$HOST_CA")
with_ca() { cp "$HOST_CA" "$1/host-ca-bundle.crt"; }
build docker.io/library/python:3.11-slim "$HERE/python" "$python_hash" with_ca

# 3. mysql:8.0 (MariaDB).
build docker.io/library/mysql:8.0 "$HERE/mysql" "$(inputs_hash "$base_hash" "$HERE/mysql")" no_extra

# 4. zenmldocker/zenml-server:<the version requirements.lock pins>, on the python stand-in.
zenml_hash=$(inputs_hash "$python_hash" "$HERE/zenml-server" "$ROOT/requirements.lock")
with_lock() { grep -v '^#' "$ROOT/requirements.lock" >"$1/constraints.txt"; }
build "docker.io/zenmldocker/zenml-server:$ZENML_VERSION" "$HERE/zenml-server" "$zenml_hash" with_lock \
  --build-arg "ZENML_VERSION=$ZENML_VERSION"

# 5. prom/prometheus:<the tag docker-compose.yml names> (profile `monitoring`), Debian's package.
PROMETHEUS_IMAGE=$(sed -n 's#^ *image: *\(prom/prometheus:[^ ]*\) *$#\1#p' "$ROOT/docker-compose.yml")
[ -n "$PROMETHEUS_IMAGE" ] || { log "no prom/prometheus image in docker-compose.yml"; exit 1; }
build "docker.io/$PROMETHEUS_IMAGE" "$HERE/prometheus" \
  "$(inputs_hash "$base_hash" "$HERE/prometheus" "$PROMETHEUS_IMAGE")" no_extra
log "ready: python:3.11-slim mysql:8.0 zenmldocker/zenml-server:$ZENML_VERSION $PROMETHEUS_IMAGE"
