#!/usr/bin/env bash
# Stops the Horizon that test/horizon/horizon-up.sh started (by its pid file). Packages and
# configuration stay; horizon-up.sh starts it again.
set -euo pipefail
PID_FILE=/run/openstack-dashboard-argonaut/uwsgi.pid
if [[ ${1:-} == --help || ${1:-} == -h ]]; then
  echo "Usage: $(basename "$0") [--help]  stops the uwsgi of test/horizon/horizon-up.sh ($PID_FILE)"
  exit 0
fi
if [[ ! -s $PID_FILE ]] || ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  echo "Horizon (test/horizon/horizon-up.sh) is not running"
  exit 0
fi
pid=$(cat "$PID_FILE")
kill -TERM "$pid"
for _ in $(seq 30); do
  if ! kill -0 "$pid" 2>/dev/null; then echo "stopped Horizon (uwsgi pid $pid)"; rm -f "$PID_FILE"; exit 0; fi
  sleep 1
done
echo "uwsgi pid $pid did not stop within 30 s" >&2
exit 1
