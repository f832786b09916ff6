#!/usr/bin/env bash
# Ensure Debian's Barbican API (barbican-api 1:15.0.1, Zed) runs on 127.0.0.1:9311 beside the
# Keystone of ../shared/peers, for test/integration/barbican.test.ts:
#  - packages barbican-api, barbican-common, python3-barbican (+ python3-barbicanclient: the
#    `openstack secret ...` CLI), uwsgi; no daemon is started by the packages (policy-rc.d);
#  - database `barbican` in MariaDB (127.0.0.1:3306), schema by `barbican-manage db upgrade`;
#  - the simple_crypto secret store with a KEK generated once (/etc/barbican/peers-kek; kept across
#    runs, or the stored secrets would become unreadable);
#  - keystonemiddleware against Keystone (127.0.0.1:5000) as service user barbican/secret (admin +
#    service on project `service`), service `barbican` of type `key-manager`, public endpoint
#    http://127.0.0.1:9311;
#  - role `creator` for demo on project demo: Zed's Barbican keeps its legacy policy by default
#    (oslo.policy enforce_new_defaults = False), where creating secrets and containers and setting
#    ACLs needs `creator` (or admin); a plain `member` is refused;
#  - uwsgi in the background (pid /run/barbican/peers-api-uwsgi.pid, log
#    /var/log/barbican/peers-api-uwsgi.log), then waits until an authenticated request answers.
# Idempotent: returns after a few checks when Barbican already answers. Needs Keystone up
# (../shared/peers/keystone-up.sh; never restarted here). Env: PEERS_DIR (default
# <project>/../shared/peers), RESTART=1 (restart the uwsgi this script started).
# Usage: test/peers/barbican-up.sh [--help]
if [[ ${1:-} == --help || ${1:-} == -h ]]; then
  sed -n '2,/^# Usage/p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=/dev/null
source "${PEERS_DIR:-$ROOT/../shared/peers}/lib.sh"

PORT=9311
URL="http://127.0.0.1:$PORT"
CONF=/etc/barbican/barbican.conf
KEK_FILE=/etc/barbican/peers-kek
INI=/etc/barbican/peers-api-uwsgi.ini
PIDFILE=/run/barbican/peers-api-uwsgi.pid
LOG=/var/log/barbican/peers-api-uwsgi.log

# GET / answers 300 (the version list) once the WSGI application is loaded.
api_up() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/") == 300 ]]; }

# demo_reads_secrets -> 0 if demo's token lists secrets (Keystone auth and the policy both work).
demo_reads_secrets() {
  local token code
  token=$(curl -s -D - -o /dev/null --max-time 60 -H 'Content-Type: application/json' \
    -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"demo","domain":{"name":"Default"},"password":"secret"}}},"scope":{"project":{"name":"demo","domain":{"name":"Default"}}}}}' \
    "$KEYSTONE_URL/auth/tokens" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-subject-token" {print $2}')
  [[ -n $token ]] || return 1
  # The first authenticated request of a uwsgi worker is slow (keystonemiddleware gets its own token).
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 90 -H "X-Auth-Token: $token" "$URL/v1/secrets?limit=1")
  [[ $code == 200 ]]
}

# ensure_demo_creator: role `creator` exists and demo holds it on project demo.
ensure_demo_creator() {
  KEYSTONE_URL=$KEYSTONE_URL /usr/bin/python3 -W ignore - <<'PY'
import os
from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

auth = v3.Password(auth_url=os.environ["KEYSTONE_URL"], username="admin", password="secret",
                   project_name="admin", user_domain_id="default", project_domain_id="default")
ks = client.Client(session=session.Session(auth=auth), interface="public", region_name="RegionOne")
role = next(iter(ks.roles.list(name="creator")), None) or ks.roles.create(name="creator")
user = ks.users.list(name="demo", domain="default")[0]
project = ks.projects.list(name="demo", domain="default")[0]
ks.roles.grant(role, user=user, project=project)
PY
}

curl -s -o /dev/null --max-time 5 "$KEYSTONE_URL/" || die "Keystone is not up at $KEYSTONE_URL: run ../shared/peers/keystone-up.sh first"

if [[ ${RESTART:-0} == 1 ]] && pid_alive "$PIDFILE"; then
  log "RESTART=1: stopping barbican-api uwsgi (pid $(cat "$PIDFILE"))"
  kill "$(cat "$PIDFILE")" || true
  for _ in $(seq 20); do pid_alive "$PIDFILE" || break; sleep 0.5; done
fi

if api_up && demo_reads_secrets; then
  log "Barbican already answering on $URL and demo can use it: nothing to do"
  exit 0
fi

if ! api_up; then
  bash "$PEERS_DIR/mariadb-up.sh"
  debconf_preseed <<'EOF'
barbican-common barbican/configure_db boolean false
barbican-common barbican/configure_rabbit boolean false
barbican-common barbican/configure_ksat boolean false
barbican-api barbican/configure_api-endpoint boolean false
EOF
  apt_install curl barbican-api barbican-common python3-barbican python3-barbicanclient python3-pymysql \
    uwsgi-core uwsgi-plugin-python3

  if [[ ! -s $KEK_FILE ]]; then
    log "generating the simple_crypto KEK ($KEK_FILE)"
    (umask 077 && openssl rand -base64 32 >"$KEK_FILE")
  fi
  chown root:barbican "$KEK_FILE" && chmod 640 "$KEK_FILE"
  [[ -f $CONF.debian-dist ]] || cp -a "$CONF" "$CONF.debian-dist" 2>/dev/null || true
  cat >"$CONF" <<EOF
# Written by test/peers/barbican-up.sh (Debian's original: barbican.conf.debian-dist)
[DEFAULT]
host_href = $URL
sql_connection = mysql+pymysql://barbican:barbican@127.0.0.1:3306/barbican
db_auto_create = false
log_file = /var/log/barbican/barbican-api.log

[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000
auth_url = http://127.0.0.1:5000
auth_type = password
username = barbican
password = secret
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne
service_token_roles_required = true

[keystone_notifications]
enable = false

[oslo_messaging_notifications]
driver = noop

[queue]
enable = false

[secretstore]
namespace = barbican.secretstore.plugin
enabled_secretstore_plugins = store_crypto

[crypto]
namespace = barbican.crypto.plugin
enabled_crypto_plugins = simple_crypto

[simple_crypto_plugin]
kek = $(cat "$KEK_FILE")
EOF
  chown root:barbican "$CONF" && chmod 640 "$CONF"
  install -d -o barbican -g barbican /var/log/barbican /var/lib/barbican /run/barbican

  ensure_db barbican barbican barbican
  log "barbican-manage db upgrade"
  su -s /bin/sh barbican -c "barbican-manage db upgrade" >/tmp/peers-barbican-db-manage.log 2>&1 \
    || { tail -n 30 /tmp/peers-barbican-db-manage.log >&2; die "barbican-manage db upgrade failed"; }

  cat >"$INI" <<EOF
[uwsgi]
plugins = python3
http-socket = 127.0.0.1:$PORT
# uwsgi's http-socket closes after each response; tell keep-alive clients so.
add-header = Connection: close
wsgi-file = /usr/bin/barbican-wsgi-api
master = true
processes = 2
threads = 2
enable-threads = true
lazy-apps = true
buffer-size = 65535
die-on-term = true
uid = barbican
gid = barbican
chdir = /var/lib/barbican
pidfile = $PIDFILE
daemonize = $LOG
EOF
  if pid_alive "$PIDFILE"; then kill "$(cat "$PIDFILE")" || true; sleep 2; fi
  port_open 127.0.0.1 "$PORT" && die "127.0.0.1:$PORT is taken by something that is not a working Barbican API"
  log "starting barbican-api under uwsgi on 127.0.0.1:$PORT (log: $LOG)"
  uwsgi --ini "$INI"
  wait_port 127.0.0.1 "$PORT" 60 barbican-api "$LOG"
  for _ in $(seq 90); do api_up && break; sleep 1; done
  api_up || { tail -n 40 "$LOG" >&2; die "Barbican API not answering on $URL"; }
fi

log "ensuring service user barbican + key-manager public endpoint"
ks_ensure_service barbican key-manager "$URL"
log "ensuring role creator for demo on project demo"
ensure_demo_creator
ready=0
for _ in $(seq 5); do
  if demo_reads_secrets; then ready=1 && break; fi
  sleep 2
done
((ready)) || { grep ' => generated ' "$LOG" | tail -n 5 >&2; die "demo cannot list secrets on $URL (see $LOG)"; }
log "Barbican API ready on $URL (uwsgi pid $(cat "$PIDFILE" 2>/dev/null || echo '?'))"
