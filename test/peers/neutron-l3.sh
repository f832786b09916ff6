#!/usr/bin/env bash
# Enable Neutron's L3 service plugin (`router`: routers, external networks' gateways, floating
# IPs) on the API-only Neutron that ../shared/peers/neutron-up.sh runs on 127.0.0.1:9696, for
# test/driver/neutron-floating-ip.test.ts (a floating IP associated with a load balancer's VIP port):
#  - adds `router` to `service_plugins` in [DEFAULT] of /etc/neutron/neutron.conf (neutron-up.sh
#    writes `service_plugins =`), keeping any other plugin listed there;
#  - restarts that Neutron's uwsgi the way neutron-up.sh starts it (pid
#    /run/neutron/peers-api-uwsgi.pid, ini /etc/neutron/peers-api-uwsgi.ini, log
#    /var/log/neutron/peers-api-uwsgi.log): the API is unavailable for a few seconds;
#  - waits until an authenticated GET /v2.0/extensions lists the `router` extension.
# No L3 agent is started: routers and floating IPs are database records only (like the ports), and
# no traffic goes anywhere. The database schema already has their tables (neutron-up.sh upgrades
# every branch).
# Idempotent: when the config has the plugin and the API lists `router`, nothing is touched.
# `RESTART=1 neutron-up.sh` rewrites neutron.conf without the plugin: run this again afterwards.
# Needs Keystone and Neutron up (../shared/peers/keystone-up.sh, neutron-up.sh); never starts them.
# Env: PEERS_DIR (default <project>/../shared/peers).
# Usage: test/peers/neutron-l3.sh [--help]
if [[ ${1:-} == --help || ${1:-} == -h ]]; then
  sed -n '2,/^# Usage/p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=/dev/null
source "${PEERS_DIR:-$ROOT/../shared/peers}/lib.sh"

PORT=9696
URL="http://127.0.0.1:$PORT"
CONF=/etc/neutron/neutron.conf
INI=/etc/neutron/peers-api-uwsgi.ini
PIDFILE=/run/neutron/peers-api-uwsgi.pid
LOG=/var/log/neutron/peers-api-uwsgi.log

api_up() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/") == 200 ]]; }

# admin_token -> an admin-scoped Keystone token on stdout.
admin_token() {
  curl -s -D - -o /dev/null --max-time 60 -H 'Content-Type: application/json' \
    -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"secret"}}},"scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}' \
    "$KEYSTONE_URL/auth/tokens" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-subject-token" {print $2}'
}

# router_listed TOKEN -> 0 if Neutron's extension list has the alias `router`.
router_listed() {
  curl -s --max-time 90 -H "X-Auth-Token: $1" "$URL/v2.0/extensions" |
    /usr/bin/python3 -c 'import json, sys; sys.exit(0 if any(e["alias"] == "router" for e in json.load(sys.stdin)["extensions"]) else 1)' 2>/dev/null
}

# The current service_plugins value of [DEFAULT] ("" when the option is absent or empty).
plugins_in_conf() {
  /usr/bin/python3 - "$CONF" <<'PY'
import configparser, sys
c = configparser.RawConfigParser(strict=False, interpolation=None)
c.read(sys.argv[1])
print(c.defaults().get("service_plugins", "").strip())
PY
}

# has_router "a, b" -> 0 if the list names the L3 plugin (by alias or class path).
has_router() {
  local p
  IFS=',' read -ra list <<<"$1"
  for p in "${list[@]}"; do
    p=${p// /}
    [[ $p == router || $p == neutron.services.l3_router.l3_router_plugin.L3RouterPlugin ]] && return 0
  done
  return 1
}

# set_plugins VALUE: sets service_plugins in [DEFAULT] (replacing the line, or adding one after the
# section header), in place so that the file keeps its owner and mode (root:neutron 640).
set_plugins() {
  local new
  new=$(VALUE=$1 /usr/bin/python3 - "$CONF" <<'PY'
import os, re, sys
lines = open(sys.argv[1]).read().splitlines()
value, section, done = os.environ["VALUE"], None, False
out = []
for line in lines:
    m = re.match(r"\s*\[([^\]]+)\]", line)
    if m:
        if section == "DEFAULT" and not done:
            out.append("service_plugins = " + value)
            done = True
        section = m.group(1)
    elif section == "DEFAULT" and re.match(r"\s*service_plugins\s*=", line):
        if not done:
            out.append("service_plugins = " + value)
            done = True
        continue
    out.append(line)
if not done:
    if section == "DEFAULT":
        out.append("service_plugins = " + value)
    else:
        out = ["[DEFAULT]", "service_plugins = " + value] + out
print("\n".join(out))
PY
  ) || die "could not rewrite $CONF"
  printf '%s\n' "$new" >"$CONF"
}

curl -s -o /dev/null --max-time 5 "$KEYSTONE_URL/" || die "Keystone is not up at $KEYSTONE_URL: run ../shared/peers/keystone-up.sh first"
api_up || die "Neutron is not answering on $URL: run ../shared/peers/neutron-up.sh first"
[[ -f $CONF && -f $INI ]] || die "$CONF or $INI missing: this Neutron was not set up by ../shared/peers/neutron-up.sh"
TOKEN=$(admin_token)
[[ -n $TOKEN ]] || die "Keystone refused a token for admin/secret (project admin)"

current=$(plugins_in_conf)
if has_router "$current"; then
  if router_listed "$TOKEN"; then
    log "service_plugins = $current and Neutron lists the router extension: nothing to do"
    exit 0
  fi
  log "service_plugins = $current, but the running Neutron does not list the router extension yet: restarting it"
else
  value=${current:+$current,}router
  log "setting service_plugins = $value in $CONF (was: '${current}')"
  set_plugins "$value"
  has_router "$(plugins_in_conf)" || die "$CONF still has no router plugin after the edit"
fi

if pid_alive "$PIDFILE"; then
  pid=$(cat "$PIDFILE")
  log "stopping the peers' neutron-api uwsgi (pid $pid)"
  kill "$pid"
  for _ in $(seq 40); do pid_alive "$PIDFILE" || break; sleep 0.5; done
  pid_alive "$PIDFILE" && die "neutron-api uwsgi (pid $pid) did not stop within 20 s"
else
  die "Neutron answers on $URL but $PIDFILE names no live process: not the peers' uwsgi, not restarting it"
fi
for _ in $(seq 20); do port_open 127.0.0.1 "$PORT" || break; sleep 0.5; done
port_open 127.0.0.1 "$PORT" && die "127.0.0.1:$PORT is still taken after the uwsgi stopped"

log "starting neutron-api under uwsgi on 127.0.0.1:$PORT (log: $LOG)"
uwsgi --ini "$INI"
wait_port 127.0.0.1 "$PORT" 60 neutron-api "$LOG"
for _ in $(seq 90); do api_up && break; sleep 1; done
api_up || { tail -n 40 "$LOG" >&2; die "Neutron API not answering on $URL after the restart"; }
# The first authenticated request of each worker is slow (keystonemiddleware fetches its own token).
listed=0
for _ in $(seq 10); do
  if router_listed "$TOKEN"; then listed=1 && break; fi
  sleep 2
done
((listed)) || { grep -iE 'error|l3|router' "$LOG" | tail -n 20 >&2; die "Neutron restarted but does not list the router extension (see $LOG)"; }
log "Neutron on $URL has the router extension (uwsgi pid $(cat "$PIDFILE" 2>/dev/null || echo '?'))"
