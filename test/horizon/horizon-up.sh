#!/usr/bin/env bash
# Installs (Debian 12 packages) and starts Horizon with the octavia-dashboard for the Horizon test
# (test/horizon/horizon.test.ts), pointed at the Keystone of ../shared/peers, plus Debian's Chromium
# that the test drives. Idempotent: installs only what is missing, rewrites its config snippet and
# uwsgi ini, restarts Horizon only when they changed, returns at once when Horizon already answers.
# Stop it with test/horizon/horizon-down.sh.
set -euo pipefail

usage() {
  cat <<EOF
Usage: $(basename "$0") [--help]

Installs openstack-dashboard, python3-octavia-dashboard, uwsgi (python3 plugin) and chromium if
missing, writes the Horizon settings snippet and a uwsgi ini, and serves Horizon (uwsgi, one
process) on http://\$HORIZON_HOST:\$HORIZON_PORT/ with its static files.

Environment:
  HORIZON_HOST   address to listen on (default 127.0.0.1)
  HORIZON_PORT   port to listen on (default 8800)
  KEYSTONE_URL   Keystone v3 URL Horizon logs in against (default http://127.0.0.1:5000/v3)
  RESTART=1      restart Horizon even if nothing changed

Files: settings $SETTINGS_FILE (with the middleware $SHIM_DIR/argonaut_peers_shims.py:
the peers have no Nova and no floating IPs), uwsgi ini $INI_FILE,
log $LOG_FILE, pid file $PID_FILE, apt log $APT_LOG.
EOF
}

HORIZON_HOST=${HORIZON_HOST:-127.0.0.1}
HORIZON_PORT=${HORIZON_PORT:-8800}
KEYSTONE_URL=${KEYSTONE_URL:-http://127.0.0.1:5000/v3}
SETTINGS_FILE=/etc/openstack-dashboard/local_settings.d/_9900_argonaut_test.py
SHIM_DIR=/etc/openstack-dashboard/argonaut-test
SHIM_SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/argonaut_peers_shims.py
INI_FILE=/etc/openstack-dashboard/argonaut-test-uwsgi.ini
LOG_DIR=/var/log/openstack-dashboard-argonaut
LOG_FILE=$LOG_DIR/uwsgi.log
PID_FILE=/run/openstack-dashboard-argonaut/uwsgi.pid
APT_LOG=/tmp/horizon-apt-install.log
STATIC_DIR=/var/lib/openstack-dashboard/static
PACKAGES=(openstack-dashboard python3-octavia-dashboard uwsgi-core uwsgi-plugin-python3 chromium)

if [[ ${1:-} == --help || ${1:-} == -h ]]; then usage; exit 0; fi
if [[ $# -gt 0 ]]; then usage >&2; exit 2; fi

export DEBIAN_FRONTEND=noninteractive
export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
T0=$SECONDS
log() { printf '[horizon-up +%ss] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

horizon_answers() {
  curl -sf -o /dev/null --max-time 10 "http://$HORIZON_HOST:$HORIZON_PORT/auth/login/"
}
running() { [[ -s $PID_FILE ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

install_missing() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  local opts=(-y -q -o DPkg::Lock::Timeout=1200 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  log "apt-get install ${missing[*]} (log: $APT_LOG)"
  apt-get "${opts[@]}" update >"$APT_LOG" 2>&1 || { tail -n 20 "$APT_LOG" >&2; die "apt-get update failed"; }
  # No daemon may be started by a maintainer script (there is no systemd here).
  local made_policy=0 rc=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get "${opts[@]}" install --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1 || rc=$?
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || { tail -n 40 "$APT_LOG" >&2; die "apt-get install failed (rc=$rc)"; }
  log "installed"
}

# Writes $2 into file $1 when it differs; returns 0 when it changed.
write_if_changed() {
  local file=$1 content=$2
  if [[ -f $file ]] && [[ "$(cat "$file")" == "$content" ]]; then return 1; fi
  printf '%s\n' "$content" >"$file"
  return 0
}

settings_content() {
  cat <<EOF
# Written by Argonaut's test/horizon/horizon-up.sh (the Horizon test): Keystone of ../shared/peers.
OPENSTACK_HOST = "127.0.0.1"
OPENSTACK_KEYSTONE_URL = "$KEYSTONE_URL"
OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = "Default"
OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT = False
OPENSTACK_KEYSTONE_DEFAULT_ROLE = "member"
OPENSTACK_ENDPOINT_TYPE = "publicURL"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DEBUG = False
# One uwsgi process: its local-memory cache holds the sessions.
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Plain HTTP on loopback.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# The peers' Neutron is API-only (no routers, no L3 agents).
OPENSTACK_NEUTRON_NETWORK = {
    "enable_router": False,
    "enable_quotas": False,
    "enable_distributed_router": False,
    "enable_ha_router": False,
    "enable_fip_topology_check": False,
}
# The peers have no Nova and no floating IPs: see the module.
import sys
sys.path.insert(0, "$SHIM_DIR")
MIDDLEWARE = tuple(MIDDLEWARE) + ("argonaut_peers_shims.NoComputeServers", "argonaut_peers_shims.NoFloatingIps")
EOF
}

ini_content() {
  cat <<EOF
[uwsgi]
plugins = python3
http-socket = $HORIZON_HOST:$HORIZON_PORT
# uwsgi's http-socket closes each connection after the response: say so to keep-alive clients.
add-header = Connection: close
wsgi-file = /usr/share/openstack-dashboard/wsgi.py
static-map = /static=$STATIC_DIR
master = true
# One process (the sessions live in its memory); threads for the octavia-dashboard's pollers,
# which create a wizard's listener, pool, members and monitor in background threads.
processes = 1
threads = 8
enable-threads = true
buffer-size = 65535
die-on-term = true
uid = www-data
gid = www-data
chdir = /usr/share/openstack-dashboard
pidfile = $PID_FILE
daemonize = $LOG_FILE
EOF
}

main() {
  [[ $(id -u) == 0 ]] || die "needs root (apt-get, /etc/openstack-dashboard)"
  install_missing
  [[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium missing after the install"
  mkdir -p "$LOG_DIR" "$(dirname "$PID_FILE")"
  chown www-data:www-data "$LOG_DIR" "$(dirname "$PID_FILE")"

  local changed=0
  mkdir -p "$SHIM_DIR"
  write_if_changed "$SHIM_DIR/argonaut_peers_shims.py" "$(cat "$SHIM_SOURCE")" && changed=1
  write_if_changed "$SETTINGS_FILE" "$(settings_content)" && changed=1
  write_if_changed "$INI_FILE" "$(ini_content)" && changed=1

  # The package's maintainer script collects and compresses the static files; do it again only
  # if that did not happen (the dashboards' JavaScript must be in the offline manifest).
  if [[ ! -s $STATIC_DIR/dashboard/manifest.json ]]; then
    log "collecting and compressing static files"
    /usr/share/openstack-dashboard/manage.py collectstatic --noinput --clear >>"$LOG_DIR/static.log" 2>&1
    /usr/share/openstack-dashboard/manage.py compress --force >>"$LOG_DIR/static.log" 2>&1
    chown -R www-data "$STATIC_DIR" /var/lib/openstack-dashboard/secret-key
  fi

  if running && { ((changed)) || [[ ${RESTART:-0} == 1 ]]; }; then
    log "restarting Horizon (config changed or RESTART=1)"
    local pid i
    pid=$(cat "$PID_FILE")
    kill -TERM "$pid"
    for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && die "uwsgi $pid did not stop"
  elif running && horizon_answers; then
    log "Horizon already answers on http://$HORIZON_HOST:$HORIZON_PORT/ (pid $(cat "$PID_FILE"))"
    return 0
  fi
  if ! running; then
    if curl -s -o /dev/null --max-time 5 "http://$HORIZON_HOST:$HORIZON_PORT/"; then
      die "port $HORIZON_PORT is taken by another process"
    fi
    log "starting uwsgi (log: $LOG_FILE)"
    uwsgi --ini "$INI_FILE"
  fi
  local i
  for ((i = 0; i < 120; i++)); do
    if horizon_answers; then
      log "Horizon ready on http://$HORIZON_HOST:$HORIZON_PORT/ (pid $(cat "$PID_FILE"))"
      return 0
    fi
    sleep 1
  done
  tail -n 40 "$LOG_FILE" >&2 || true
  die "Horizon did not answer on http://$HORIZON_HOST:$HORIZON_PORT/auth/login/ within 120 s"
}

main
