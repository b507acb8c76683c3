#!/usr/bin/env bash
# A Docker-compatible container engine on this machine, for `docker-compose` (make container-engine).
#
# There is no Docker engine on the machines this project is built and tested on; Debian's podman
# serves the Docker API on a unix socket, which Debian's docker-compose (v1) drives. This script
# installs what is missing (podman, catatonit for `init: true`, debootstrap for the stand-in base
# image, docker-compose, jq), gives podman settings this kernel accepts, starts the API service
# if nothing answers on the socket, and prints the line to export:
#
#   eval "$(scripts/container-engine.sh)"      # or: make container-engine, then copy the line
#
# The service and a healthcheck runner keep running after this script (that is the point):
#   kill "$(cat /run/podman/autopilot-api.pid)" "$(cat /run/podman/autopilot-healthchecks.pid)"
set -euo pipefail

SOCKET=${AUTOPILOT_PODMAN_SOCKET:-/run/podman/podman.sock}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
log() { echo "container-engine: $*" >&2; }

missing=()
for tool in podman:podman catatonit:catatonit debootstrap:debootstrap \
  docker-compose:docker-compose jq:jq; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} (apt-get)"
  $SUDO apt-get update -qq >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

# podman's default rlimits are refused by some kernels ("error setting rlimit type 7: operation
# not permitted"): explicit ones, below the host's. Container logs go to files (k8s-file), which
# `docker-compose logs` reads back; journald is not there without systemd.
CONF_D=/etc/containers/containers.conf.d
CONF=$CONF_D/50-zenml-autopilot.conf
if [ ! -f "$CONF" ]; then
  log "writing $CONF"
  $SUDO mkdir -p "$CONF_D"
  printf '%s\n' '# Written by zenml-autopilot scripts/container-engine.sh' \
    '[containers]' 'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]' \
    'log_driver = "k8s-file"' '[engine]' 'events_logger = "file"' \
    | $SUDO tee "$CONF" >/dev/null
fi

ping() { $SUDO curl -fsS --max-time 5 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }
if ! ping; then
  log "starting the podman API service on $SOCKET"
  $SUDO mkdir -p "$(dirname "$SOCKET")"
  # setsid + nohup: the service outlives this script and the make/CI step that ran it.
  $SUDO setsid nohup podman system service --time=0 "unix://$SOCKET" \
    >"${TMPDIR:-/tmp}/podman-api-service.log" 2>&1 </dev/null &
  echo $! | $SUDO tee "$(dirname "$SOCKET")/autopilot-api.pid" >/dev/null
  for _ in $(seq 1 60); do ping && break; sleep 0.5; done
  ping || { log "the podman API did not answer on $SOCKET"; exit 1; }
fi
# Healthchecks: podman leaves their scheduling to systemd, absent here; a loop does it instead.
HEALTH_PID=$(dirname "$SOCKET")/autopilot-healthchecks.pid
if ! { [ -f "$HEALTH_PID" ] && $SUDO kill -0 "$(cat "$HEALTH_PID")" 2>/dev/null; }; then
  log "starting the healthcheck runner (scripts/podman-healthchecks.sh)"
  $SUDO setsid nohup "$(cd "$(dirname "$0")" && pwd)/podman-healthchecks.sh" \
    >"${TMPDIR:-/tmp}/podman-healthchecks.log" 2>&1 </dev/null &
  echo $! | $SUDO tee "$HEALTH_PID" >/dev/null
fi
# docker-compose run by a non-root user (through sudo for the rest) reaches the socket as its owner.
[ -z "$SUDO" ] || $SUDO chown "$(id -u)" "$SOCKET"
echo "export DOCKER_HOST=unix://$SOCKET"
