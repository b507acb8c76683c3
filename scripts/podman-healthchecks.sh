#!/usr/bin/env bash
# Run every running container's healthcheck at its own interval, forever.
#
# podman schedules healthchecks with systemd timers; where systemd is not PID 1 (CI containers,
# this project's build machines) no check ever runs, every container stays "starting" and
# `depends_on: condition: service_healthy` waits forever. This loop does the timers' job:
# `podman healthcheck run` executes the container's own check and keeps podman's bookkeeping
# (retries, start period, failing streak), so the compose file's healthchecks decide, unchanged.
# scripts/container-engine.sh starts it beside the API service.
set -uo pipefail

declare -A interval next
while :; do
  now=$(date +%s)
  running=$(podman ps -q --no-trunc --filter status=running 2>/dev/null | tr '\n' ' ')
  for id in $running; do
    if [ -z "${interval[$id]+set}" ]; then
      # Whole seconds; empty for a container without a healthcheck.
      seconds=$(podman inspect --format \
        '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Interval.Seconds}}{{end}}' "$id" 2>/dev/null)
      seconds=${seconds%.*}
      interval[$id]=${seconds:-0}
      [ "${interval[$id]}" -ge 1 ] 2>/dev/null || interval[$id]=0
      next[$id]=$((now + (interval[$id] < 2 ? interval[$id] : 2)))
    fi
    if [ "${interval[$id]}" -gt 0 ] && [ "$now" -ge "${next[$id]}" ]; then
      next[$id]=$((now + interval[$id]))
      podman healthcheck run "$id" >/dev/null 2>&1 &
    fi
  done
  # Forget containers that are gone (their ids are never reused).
  for id in "${!interval[@]}"; do
    case " $running " in *" $id "*) ;; *) unset "interval[$id]" "next[$id]" ;; esac
  done
  wait
  sleep 1
done
