#!/bin/bash
# Runs Argonaut's devstack plugin (devstack/settings + devstack/plugin.sh) phase by phase with every
# devstack function and outside command it calls replaced by a fake that records the call, then
# checks the exact calls of each phase and the files it wrote (Argonaut's YAML, tempest's ini).
#
#   bash test/devstack/harness.sh            # last line: "harness: N checks passed, M failed"
#   HARNESS_KEEP=DIR bash ...                # keep the work tree (generated files) in DIR
#
# Exit status 0 only when every check passed. Each phase runs in a subshell, as devstack sources
# the plugin in a shell of its own per run; `die` ends that subshell with status 1.
# shellcheck disable=SC2317,SC2034
# SC2317: the fakes look unreachable, but plugin.sh (sourced) calls them.
# SC2034: the devstack globals and the scenario settings set here are read by settings/plugin.sh.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -n ${HARNESS_KEEP:-} ]]; then
    WORK=$HARNESS_KEEP
    rm -rf "$WORK" && mkdir -p "$WORK"
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi
PASSED=0
FAILED=0

# --- checks --------------------------------------------------------------------------------------

function pass { PASSED=$((PASSED + 1)); }
function fail {
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n' "$1" >&2
    [[ -n ${2:-} ]] && printf '%s\n' "$2" | sed 's/^/    /' >&2
    return 0
}
# check_eq <what> <expected> <actual>
function check_eq {
    if [[ $2 == "$3" ]]; then pass; else
        fail "$1" "$(diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^</expected:/; s/^>/actual:  /')"
    fi
}
# check_file <what> <file> <expected content>
function check_file {
    if [[ ! -f $2 ]]; then fail "$1: $2 was not written"; return; fi
    check_eq "$1 ($2)" "$3" "$(cat "$2")"
}
# check <what> <command...>: passes when the command succeeds; check_not: when it fails
function check { if "${@:2}"; then pass; else fail "$1"; fi; }
function check_not { if "${@:2}"; then fail "$1"; else pass; fi; }
function check_absent {
    if [[ -e $2 ]]; then fail "$1: $2 still exists"; else pass; fi
}

# --- the recording fakes -------------------------------------------------------------------------

# Every fake appends one line: the function name and its arguments, each shell-quoted (%q).
function record {
    local line
    line=$(printf '%q ' "$@")
    printf '%s\n' "${line% }" >> "$CALLS"
}
# The expected form of one call, in the same quoting.
function call {
    local line
    line=$(printf '%q ' "$@")
    printf '%s\n' "${line% }"
}

function install_fakes {
    # devstack's functions-common / functions / lib/* (behaviour kept where the plugin depends on it)
    function is_service_enabled {
        local service
        for service in "$@"; do
            [[ ,${ENABLED_SERVICES}, =~ ,${service}, ]] && return 0
            if type "is_${service}_enabled" >/dev/null 2>&1; then
                "is_${service}_enabled" && return 0
            fi
            [[ $service == neutron && ,${ENABLED_SERVICES} =~ ,q- ]] && return 0
            [[ $service == glance && ,${ENABLED_SERVICES} =~ ,g- ]] && return 0
            [[ $service == nova && ,${ENABLED_SERVICES} =~ ,n- ]] && return 0
        done
        return 1
    }
    function enable_service {
        record enable_service "$@"
        local service
        for service in "$@"; do
            [[ ,${DISABLED_SERVICES}, =~ ,${service}, ]] && continue
            is_service_enabled "$service" || ENABLED_SERVICES+=",$service"
        done
    }
    function trueorfalse {
        local value=${!2:-}
        case $value in
            1 | [yY]es | YES | [tT]rue | TRUE) echo True ;;
            0 | [nN]o | NO | [fF]alse | FALSE) echo False ;;
            *) echo "$1" ;;
        esac
    }
    # recorded as "die LINE message" (the line number changes with every edit of plugin.sh)
    function die { record die LINE "${@:2}"; printf 'die: %s\n' "$*" >&2; exit 1; }
    function echo_summary { record echo_summary "$@"; }
    function install_package { record install_package "$@"; }
    function recreate_database { record recreate_database "$@"; }
    function rpc_backend_add_vhost { record rpc_backend_add_vhost "$@"; }
    function create_service_user { record create_service_user "$@"; }
    function get_or_create_service { record get_or_create_service "$@"; echo "svc-0001"; }
    function get_or_create_endpoint { record get_or_create_endpoint "$@"; echo "ep-0001"; }
    function get_or_create_role { record get_or_create_role "$@"; echo "role-$1"; }
    function get_or_add_user_project_role { record get_or_add_user_project_role "$@"; }
    function run_process { record run_process "$@"; }
    function stop_process { record stop_process "$@"; }
    function wait_for_service { record wait_for_service "$@"; }
    function iniset {
        record iniset "$@"
        # A small real iniset (devstack's writes "key = value" in the section, creating either).
        local file=$1 section=$2 key=$3 value=$4 tmp
        touch "$file"
        tmp=$(mktemp)
        awk -v s="[$section]" -v k="$key" -v v="$value" '
            BEGIN { done = 0; insec = 0 }
            $0 == s { print; insec = 1; next }
            /^\[/ { if (insec && !done) { print k " = " v; done = 1 } insec = 0 }
            insec && index($0, k " = ") == 1 && !done { print k " = " v; done = 1; next }
            { print }
            END { if (!done) { if (!insec) print s; print k " = " v } }
        ' "$file" > "$tmp" && cat "$tmp" > "$file"
        rm -f "$tmp"
    }
    # outside commands
    function sudo { record sudo "$@"; "$@"; }
    function mysql { record mysql "$@"; }
    function openstack {
        record openstack "$@"
        local args=("$@") i kind name
        # what "<kind> create <name>" makes exists from then on, as <kind>:<name>
        for (( i = 1; i < ${#args[@]} - 1; i++ )); do
            [[ ${args[i]} == create ]] && HARNESS_EXISTING+=" ${args[i - 1]}:${args[i + 1]}" && return 0
        done
        # "<kind> show ... <name>" finds what HARNESS_EXISTING lists as <name> or <kind>:<name>;
        # the id it prints (-c id) is id-of-<name>
        for (( i = 1; i < ${#args[@]}; i++ )); do
            [[ ${args[i]} == show ]] || continue
            kind=${args[i - 1]} name=${*: -1}
            [[ " ${HARNESS_EXISTING:-} " == *" $name "* || " ${HARNESS_EXISTING:-} " == *" $kind:$name "* ]] || return 1
            [[ " $* " == *" -c id "* ]] && printf 'id-of-%s\n' "$name"
            return 0
        done
        return 0
    }
    function curl { record curl "$@"; }
    function node { record node "$@"; [[ -n $HARNESS_NODE_VERSION ]] && echo "$HARNESS_NODE_VERSION"; [[ -n $HARNESS_NODE_VERSION ]]; }
    function npm {
        record npm "$@" "(in $PWD)"
        # what `npm ci` leaves behind that the plugin uses: the tsx runner
        mkdir -p node_modules/.bin
        # shellcheck disable=SC2016  # $* and $PWD are the fake's own, at its run time
        printf '#!/bin/bash\nprintf "%%s\\n" "tsx $* (in $PWD)" >> "$CALLS"\n' > node_modules/.bin/tsx
        chmod +x node_modules/.bin/tsx
    }
}

# --- one devstack run ----------------------------------------------------------------------------

# devstack's globals, as stackrc and lib/* set them on a single node; a scenario overrides some.
function devstack_globals {
    DEST=$WORK/opt/stack
    DATA_DIR=$DEST/data
    STACK_USER=$(id -un)
    SERVICE_PROTOCOL=http
    SERVICE_HOST=10.0.0.5
    SERVICE_LISTEN_ADDRESS=0.0.0.0
    SERVICE_TIMEOUT=60
    SERVICE_PASSWORD="se'rvice pw"
    SERVICE_PROJECT_NAME=service
    SERVICE_DOMAIN_NAME=Default
    REGION_NAME=RegionOne
    KEYSTONE_SERVICE_URI=http://10.0.0.5/identity
    DATABASE_TYPE=mysql
    DATABASE_USER=root
    DATABASE_PASSWORD='db@pw:/#%'
    MYSQL_HOST=10.0.0.6
    DATABASE_HOST=10.0.0.6
    RABBIT_USERID=stackrabbit
    RABBIT_PASSWORD=rabbit-pw
    RABBIT_HOST=10.0.0.7
    TEMPEST_CONFIG=$WORK/tempest.conf
    ENABLED_SERVICES=key,mysql,rabbit,tempest,g-api,q-svc
    DISABLED_SERVICES=
    HARNESS_NODE_VERSION=v20.19.1
    HARNESS_EXISTING=
    # the checkout enable_plugin makes: only its bin/argonaut.ts and the image build matter here
    mkdir -p "$DEST/argonaut/bin" "$DEST/argonaut/amphora/image" "$DATA_DIR"
    [[ -e $DEST/argonaut/bin/argonaut.ts ]] || cp "$ROOT/bin/argonaut.ts" "$DEST/argonaut/bin/argonaut.ts"
    # a fake amphora/image/build.sh: records its arguments, writes OUT/argonaut-amphora.qcow2
    # shellcheck disable=SC2016  # $* and $2 are the fake's own, at its run time
    printf '#!/bin/bash\nprintf "%%s\\n" "build.sh $*" >> "$CALLS"\nmkdir -p "$2" && echo qcow2 > "$2/argonaut-amphora.qcow2"\n' \
        > "$DEST/argonaut/amphora/image/build.sh"
    chmod +x "$DEST/argonaut/amphora/image/build.sh"
}

# run_phase <scenario-setup-function> <mode> [phase]: sources settings and plugin.sh as devstack
# does (settings in the "source" phase, then plugin.sh <mode> <phase>) in a subshell; the calls
# go to $CALLS, the status to $STATUS.
function run_phase {
    local setup=$1
    shift
    export CALLS=$WORK/calls.$RANDOM.log   # the fake tsx appends to it too
    : > "$CALLS"
    (
        install_fakes
        devstack_globals
        "$setup"
        # shellcheck source=SCRIPTDIR/../../devstack/settings
        source "$ROOT/devstack/settings"
        : > "$CALLS"   # the settings' own enable_service is checked once, in check_settings
        # shellcheck source=SCRIPTDIR/../../devstack/plugin.sh
        source "$ROOT/devstack/plugin.sh" "$@"
    ) > "$WORK/stdout.log" 2> "$WORK/stderr.log"
    STATUS=$?
    if [[ $STATUS != 0 ]] && ! grep -q '^die ' "$CALLS"; then
        cat "$WORK/stderr.log" >&2
    fi
}
function calls { cat "$CALLS"; }

# --- scenarios -----------------------------------------------------------------------------------

function defaults { :; }

function check_settings {
    CALLS=$WORK/settings.log
    (
        : > "$CALLS"
        install_fakes
        devstack_globals
        # shellcheck source=SCRIPTDIR/../../devstack/settings
        source "$ROOT/devstack/settings"
        check_eq "settings enable argonaut-api" "$(call enable_service argonaut-api)" "$(cat "$CALLS")"
        check_eq "settings: ENABLED_SERVICES" "key,mysql,rabbit,tempest,g-api,q-svc,argonaut-api" "$ENABLED_SERVICES"
        check_eq "settings: drivers noop" "noop noop noop" "$ARGONAUT_COMPUTE_DRIVER $ARGONAUT_NETWORK_DRIVER $ARGONAUT_AMPHORA_DRIVER"
        check_eq "settings: amphora image off" False "$ARGONAUT_AMPHORA_IMAGE"
        check_eq "settings: management network off" False "$ARGONAUT_MGMT_NETWORK"
        check_eq "settings: tempest test_with_noop" True "$ARGONAUT_TEMPEST_TEST_WITH_NOOP"
        check_eq "settings: no server group" "" "$ARGONAUT_AMPHORA_SERVER_GROUP_POLICY"
        printf '%s %s\n' "$PASSED" "$FAILED" > "$WORK/settings.counts"
    )
    read -r PASSED FAILED < "$WORK/settings.counts"
    # computeDriver nova brings its own defaults; what local.conf sets still wins
    (
        install_fakes
        devstack_globals
        ARGONAUT_COMPUTE_DRIVER=nova
        ARGONAUT_LB_TOPOLOGY=ACTIVE_STANDBY
        ARGONAUT_MGMT_NETWORK=False
        # shellcheck source=SCRIPTDIR/../../devstack/settings
        source "$ROOT/devstack/settings"
        check_eq "nova settings: drivers" "nova neutron agent" "$ARGONAUT_COMPUTE_DRIVER $ARGONAUT_NETWORK_DRIVER $ARGONAUT_AMPHORA_DRIVER"
        check_eq "nova settings: amphora image on" True "$ARGONAUT_AMPHORA_IMAGE"
        check_eq "nova settings: local.conf's ARGONAUT_MGMT_NETWORK=False kept" False "$ARGONAUT_MGMT_NETWORK"
        check_eq "nova settings: tempest waits for amphorae" False "$ARGONAUT_TEMPEST_TEST_WITH_NOOP"
        check_eq "nova settings: ACTIVE_STANDBY pairs in a soft anti-affinity group" soft-anti-affinity "$ARGONAUT_AMPHORA_SERVER_GROUP_POLICY"
        ARGONAUT_AMPHORA_SERVER_GROUP_POLICY=""
        # shellcheck source=SCRIPTDIR/../../devstack/settings
        source "$ROOT/devstack/settings"
        check_eq "nova settings: an empty server group policy stays empty" "" "$ARGONAUT_AMPHORA_SERVER_GROUP_POLICY"
        printf '%s %s\n' "$PASSED" "$FAILED" > "$WORK/settings.counts"
    )
    read -r PASSED FAILED < "$WORK/settings.counts"
}

# The part of argonaut.yaml every scenario's devstack_globals give alike (up to controllerWorker).
EXPECTED_CONFIG_HEAD="# Written by Argonaut's devstack plugin (devstack/plugin.sh); every option: etc/argonaut.example.yaml
api:
  host: '0.0.0.0'
  port: 9876
  authStrategy: keystone
  enabledProviderDrivers:
    'amphora': 'The Octavia Amphora driver.'
    'octavia': 'Deprecated alias of the Octavia Amphora driver.'
    'noop': 'The no-op provider (objects go ACTIVE without any data plane).'
  defaultProviderDriver: 'amphora'
database:
  url: 'mysql://root:db%40pw%3A%2F%23%25@10.0.0.6:3306/argonaut'
  migrateOnStart: false
keystone:
  authUrl: 'http://10.0.0.5/identity/v3'
  username: 'argonaut'
  password: 'se''rvice pw'
  projectName: 'service'
  userDomainName: 'Default'
  projectDomainName: 'Default'
  region: 'RegionOne'
policy:
  ruleSet: 'advanced'
  enforceNewDefaults: false
"

function scenario_full_cycle {
    local dir=$WORK/opt/stack/argonaut data=$WORK/opt/stack/data/argonaut confdir=$WORK/etc/argonaut
    # /etc/argonaut in devstack; here under the work tree (the fake sudo runs commands as is)
    function defaults { ARGONAUT_CONF_DIR=$WORK/etc/argonaut; }
    local tsx=$dir/node_modules/.bin/tsx

    # stack install: Node.js is new enough, so no package; npm ci in the checkout
    run_phase defaults stack install
    check_eq "stack install exits 0" 0 "$STATUS"
    check_eq "stack install calls" "$(
        call echo_summary "Installing Argonaut (Node.js dependencies)"
        call node --version
        call npm ci --omit=dev --no-audit --no-fund "(in $dir)"
    )" "$(calls)"

    # stack post-config: files, database + migrations, Keystone (no RabbitMQ: nothing uses it)
    run_phase defaults stack post-config
    check_eq "stack post-config exits 0" 0 "$STATUS"
    check_eq "stack post-config calls" "$(
        call echo_summary "Configuring Argonaut"
        call sudo install -d -o "$(id -un)" -m 0750 "$confdir"
        call recreate_database argonaut
        call mysql -uroot "-pdb@pw:/#%" -h10.0.0.6 -e "ALTER DATABASE argonaut CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
        echo "tsx $dir/bin/argonaut.ts migrate --config $confdir/argonaut.yaml (in $dir)"
        call create_service_user argonaut
        call get_or_create_service argonaut load-balancer "Load balancing (Argonaut, Octavia v2 API)"
        call get_or_create_endpoint svc-0001 RegionOne http://10.0.0.5:9876
        call get_or_create_role load-balancer_observer
        call get_or_create_role load-balancer_global_observer
        call get_or_create_role load-balancer_member
        call get_or_create_role load-balancer_admin
        call get_or_create_role load-balancer_quota_admin
        call get_or_add_user_project_role load-balancer_member demo demo
    )" "$(calls)"
    check_file "Argonaut config" "$confdir/argonaut.yaml" "${EXPECTED_CONFIG_HEAD}controllerWorker:
  loadbalancerTopology: 'SINGLE'
  computeDriver: 'noop'
  networkDriver: 'noop'
  amphoraDriver: 'noop'
logging:
  level: 'info'"
    check_eq "config is private (mode 600)" 600 "$(stat -c %a "$confdir/argonaut.yaml")"
    check_eq "the config dir holds argonaut.yaml alone" argonaut.yaml "$(ls "$confdir")"
    # for devstack.test.ts, which loads it with Argonaut's own config loader
    cp "$confdir/argonaut.yaml" "$WORK/generated-argonaut.yaml"

    # stack extra: only the API (image and network are off); no master key without RabbitMQ
    run_phase defaults stack extra
    check_eq "stack extra exits 0" 0 "$STATUS"
    check_eq "stack extra calls" "$(
        call echo_summary "Starting Argonaut"
        call run_process argonaut-api "$tsx $dir/bin/argonaut.ts api --config $confdir/argonaut.yaml"
        call wait_for_service 60 http://10.0.0.5:9876/
    )" "$(calls)"
    check_absent "no master key with the default drivers" "$data/master.key"

    # stack test-config: tempest's [load_balancer]
    run_phase defaults stack test-config
    check_eq "stack test-config exits 0" 0 "$STATUS"
    check_file "tempest.conf" "$WORK/tempest.conf" "[service_available]
load_balancer = True
[load_balancer]
catalog_type = load-balancer
region = RegionOne
provider = amphora
enabled_provider_drivers = amphora:The Octavia Amphora driver.,octavia:Deprecated alias of the Octavia Amphora driver.,noop:The no-op provider (objects go ACTIVE without any data plane).
RBAC_test_type = advanced
enforce_new_defaults = False
test_with_noop = True
loadbalancer_topology = SINGLE"
    cp "$WORK/tempest.conf" "$WORK/generated-tempest.conf"

    # unstack: the one Argonaut service (API, controller worker, health manager) is stopped
    run_phase defaults unstack
    check_eq "unstack exits 0" 0 "$STATUS"
    check_eq "unstack calls" "$(
        call echo_summary "Stopping Argonaut"
        call stop_process argonaut-api
    )" "$(calls)"
    check "unstack must keep the configuration" test -f "$confdir/argonaut.yaml"

    # clean: devstack's own MySQL is purged by devstack; files and node_modules go here
    run_phase defaults clean
    check_eq "clean exits 0" 0 "$STATUS"
    check_eq "clean calls" "$(
        call echo_summary "Cleaning up Argonaut"
        call sudo rm -rf "$confdir"
        call sudo rm -rf "$data/image"
    )" "$(calls)"
    check_absent "clean removes the config dir" "$confdir"
    check_absent "clean removes the data dir" "$data"
    check_absent "clean removes node_modules" "$dir/node_modules"
    check "clean must keep the checkout" test -f "$dir/bin/argonaut.ts"
}

function scenario_tempest_owner_or_admin {
    function owner_or_admin {
        ARGONAUT_CONF_DIR=$WORK/etc/argonaut
        ARGONAUT_POLICY_RULESET=admin_or_owner
        ARGONAUT_ENFORCE_NEW_DEFAULTS=yes
        ARGONAUT_PROVIDERS="noop:No-op."
        ARGONAUT_DEFAULT_PROVIDER=noop
        ARGONAUT_GRANT_DEMO_MEMBER=False
        SERVICE_LISTEN_ADDRESS="[::]"
    }
    rm -f "$WORK/tempest.conf"
    run_phase owner_or_admin stack install   # the full cycle's clean removed node_modules (tsx)
    run_phase owner_or_admin stack test-config
    check_eq "test-config (admin_or_owner) exits 0" 0 "$STATUS"
    check_file "tempest.conf (admin_or_owner)" "$WORK/tempest.conf" "[service_available]
load_balancer = True
[load_balancer]
catalog_type = load-balancer
region = RegionOne
provider = noop
enabled_provider_drivers = noop:No-op.
RBAC_test_type = owner_or_admin
enforce_new_defaults = True
test_with_noop = True
loadbalancer_topology = SINGLE"
    run_phase owner_or_admin stack post-config
    check_eq "post-config (admin_or_owner) exits 0" 0 "$STATUS"
    local yaml
    yaml=$(cat "$WORK/etc/argonaut/argonaut.yaml")
    check "IPv6 listen address [::] must become host '::'" grep -qxF "  host: '::'" <<< "$yaml"
    check "policy: admin_or_owner" grep -qxF "  ruleSet: 'admin_or_owner'" <<< "$yaml"
    check "policy: enforceNewDefaults true" grep -qxF "  enforceNewDefaults: true" <<< "$yaml"
    check_not "ARGONAUT_GRANT_DEMO_MEMBER=False must not grant the demo user" grep -q '^get_or_add_user_project_role' "$CALLS"
    # without tempest, test-config writes nothing
    function no_tempest { owner_or_admin; ENABLED_SERVICES=key,mysql,rabbit; }
    rm -f "$WORK/tempest.conf"
    run_phase no_tempest stack test-config
    check_eq "test-config without tempest: no calls" "" "$(calls)"
    check_absent "test-config without tempest writes no tempest.conf" "$WORK/tempest.conf"
    rm -rf "$WORK/etc/argonaut"
}

function scenario_optional_steps_on {
    function all_on {
        ARGONAUT_CONF_DIR=$WORK/etc/argonaut
        ARGONAUT_AMPHORA_IMAGE=True
        ARGONAUT_AMPHORA_IMAGE_URL=https://images.example.net/amphora.qcow2
        ARGONAUT_MGMT_NETWORK=True
        HARNESS_EXISTING=lb-mgmt-net
    }
    local dir=$WORK/opt/stack/argonaut img=$WORK/opt/stack/data/argonaut/argonaut-amphora.qcow2
    local os=(openstack --os-cloud devstack-admin)
    run_phase all_on stack extra
    check_eq "stack extra (all on) exits 0" 0 "$STATUS"
    check_eq "stack extra (all on) calls" "$(
        call echo_summary "Uploading the Argonaut amphora image"
        call curl -fsSL --retry 3 -o "$img" https://images.example.net/amphora.qcow2
        call "${os[@]}" image create argonaut-amphora --disk-format qcow2 --container-format bare --private --project service --tag amphora --file "$img"
        call "${os[@]}" flavor show argonaut-amphora
        call "${os[@]}" flavor create argonaut-amphora --ram 1024 --disk 3 --vcpus 1 --private --project service
        call echo_summary "Creating the Argonaut management network"
        call "${os[@]}" network show lb-mgmt-net
        call "${os[@]}" subnet show lb-mgmt-subnet
        call "${os[@]}" subnet create lb-mgmt-subnet --network lb-mgmt-net --subnet-range 192.168.0.0/24 --project service
        call "${os[@]}" security group show lb-mgmt-sec-grp
        call "${os[@]}" security group create lb-mgmt-sec-grp --project service
        call "${os[@]}" security group rule create lb-mgmt-sec-grp --protocol icmp --ingress
        call echo_summary "Starting Argonaut"
        call run_process argonaut-api "$dir/node_modules/.bin/tsx $dir/bin/argonaut.ts api --config $WORK/etc/argonaut/argonaut.yaml"
        call wait_for_service 60 http://10.0.0.5:9876/
    )" "$(calls)"
}

function scenario_image_build {
    # no ARGONAUT_AMPHORA_IMAGE_URL: amphora/image/build.sh builds the image, which is uploaded
    function build_image { ARGONAUT_AMPHORA_IMAGE=True; }
    local dir=$WORK/opt/stack/argonaut out=$WORK/opt/stack/data/argonaut/image
    local os=(openstack --os-cloud devstack-admin)
    run_phase build_image stack extra
    check_eq "stack extra (image built) exits 0" 0 "$STATUS"
    check_eq "stack extra (image built) calls" "$(
        call echo_summary "Uploading the Argonaut amphora image"
        call echo_summary "Building the Argonaut amphora image"
        call install_package debootstrap debian-archive-keyring qemu-utils syslinux syslinux-common mtools dosfstools fdisk e2fsprogs
        call sudo "$dir/amphora/image/build.sh" --out "$out" --cache "$out/cache" --format qcow2
        printf '%s\n' "build.sh --out $out --cache $out/cache --format qcow2"
        call "${os[@]}" image create argonaut-amphora --disk-format qcow2 --container-format bare --private --project service --tag amphora --file "$out/argonaut-amphora.qcow2"
        call "${os[@]}" flavor show argonaut-amphora
        call "${os[@]}" flavor create argonaut-amphora --ram 1024 --disk 3 --vcpus 1 --private --project service
        call echo_summary "Starting Argonaut"
        call run_process argonaut-api "$dir/node_modules/.bin/tsx $dir/bin/argonaut.ts api --config /etc/argonaut/argonaut.yaml"
        call wait_for_service 60 http://10.0.0.5:9876/
    )" "$(calls)"
    check "the build's image is what is uploaded" test -s "$out/argonaut-amphora.qcow2"
    rm -rf "$WORK/opt/stack/data/argonaut"

    # a failed build stops stack.sh before anything is uploaded
    function failing_build { ARGONAUT_AMPHORA_IMAGE=True; ARGONAUT_AMPHORA_IMAGE_BUILD_DIR=/dev/null/nowhere; }
    run_phase failing_build stack extra
    check_eq "failed image build: stack extra fails" 1 "$STATUS"
    check "failed image build: dies saying so" grep -qxF "$(call die LINE "cannot build the amphora image (amphora/image/build.sh)")" "$CALLS"
    check_not "failed image build: nothing uploaded" grep -q "image create" "$CALLS"
}

function scenario_refusals {
    function image_without_glance { ARGONAUT_AMPHORA_IMAGE=True; ENABLED_SERVICES=key,mysql,rabbit; }
    run_phase image_without_glance stack extra
    check_eq "image without glance: stack extra fails" 1 "$STATUS"
    check_eq "image without glance: calls" "$(
        call echo_summary "Uploading the Argonaut amphora image"
        call die LINE "ARGONAUT_AMPHORA_IMAGE=True needs glance"
    )" "$(calls)"

    function bad_topology { ARGONAUT_CONF_DIR=$WORK/etc/argonaut; ARGONAUT_LB_TOPOLOGY=ACTIVE-STANDBY; }
    run_phase bad_topology stack post-config
    check_eq "unknown topology: post-config refused" "$(
        call echo_summary "Configuring Argonaut"
        call die LINE "ARGONAUT_LB_TOPOLOGY must be SINGLE or ACTIVE_STANDBY, not 'ACTIVE-STANDBY'"
    )" "$(calls)"

    function postgres { DATABASE_TYPE=postgresql; }
    run_phase postgres stack install
    check_eq "DATABASE_TYPE=postgresql: stack install fails" 1 "$STATUS"
    check_not "nothing installed with an unsupported database" grep -q "^npm" "$CALLS"

    function old_node { HARNESS_NODE_VERSION=v18.19.0; }
    run_phase old_node stack install
    check_eq "Node.js 18: stack install fails after trying the packages" 1 "$STATUS"
    check_eq "Node.js 18: calls" "$(
        call echo_summary "Installing Argonaut (Node.js dependencies)"
        call node --version
        call install_package nodejs npm
        call node --version
        call die LINE "Argonaut needs Node.js >= 20 (found: 18); install it (e.g. from NodeSource) before stacking, or set ARGONAUT_NODE_PACKAGES"
    )" "$(calls)"

    function bad_default { ARGONAUT_CONF_DIR=$WORK/etc/argonaut; ARGONAUT_DEFAULT_PROVIDER=octavia; ARGONAUT_PROVIDERS="noop:x"; }
    run_phase bad_default stack post-config
    check_eq "default provider not enabled: post-config fails" 1 "$STATUS"
    check_not "no database work after a refused config" grep -q "^recreate_database" "$CALLS"
    rm -rf "$WORK/etc/argonaut"

    # external database server (devstack does not run mysql): clean drops the database itself
    function external_db { ARGONAUT_CONF_DIR=$WORK/etc/argonaut; ENABLED_SERVICES=key,rabbit,tempest; }
    run_phase external_db clean
    check_eq "clean with an external database exits 0" 0 "$STATUS"
    check "clean must drop the database on an external server" \
        grep -qxF "$(call mysql -uroot "-pdb@pw:/#%" -h10.0.0.6 -e "DROP DATABASE IF EXISTS argonaut;")" "$CALLS"

    # disabled in local.conf (disable_service argonaut-api): no phase does anything
    function disabled { DISABLED_SERVICES=argonaut-api; }
    local phase
    for phase in "stack install" "stack post-config" "stack extra" "stack test-config" unstack clean; do
        # shellcheck disable=SC2086  # mode and phase
        run_phase disabled $phase
        check_eq "disabled plugin, $phase: no calls" "" "$(calls)"
    done
}

function scenario_nova {
    # computeDriver nova: RabbitMQ in post-config, the configuration (with the ids of the flavor and
    # network made in extra) and the migrations in extra, before the API starts
    function nova_mode {
        ARGONAUT_CONF_DIR=$WORK/etc/argonaut
        ARGONAUT_COMPUTE_DRIVER=nova
        ARGONAUT_LB_TOPOLOGY=ACTIVE_STANDBY
        ARGONAUT_AMPHORA_IMAGE_URL=https://images.example.net/amphora.qcow2
        ENABLED_SERVICES=key,mysql,rabbit,tempest,g-api,q-svc,n-api,n-cpu
    }
    local dir=$WORK/opt/stack/argonaut data=$WORK/opt/stack/data/argonaut confdir=$WORK/etc/argonaut
    local tsx=$WORK/opt/stack/argonaut/node_modules/.bin/tsx os=(openstack --os-cloud devstack-admin)
    rm -rf "$confdir" "$data"
    run_phase nova_mode stack install

    run_phase nova_mode stack post-config
    check_eq "nova: post-config exits 0" 0 "$STATUS"
    check_eq "nova: post-config calls (no migration yet)" "$(
        call echo_summary "Configuring Argonaut"
        call sudo install -d -o "$(id -un)" -m 0750 "$confdir"
        call rpc_backend_add_vhost argonaut
        call recreate_database argonaut
        call mysql -uroot "-pdb@pw:/#%" -h10.0.0.6 -e "ALTER DATABASE argonaut CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
        call create_service_user argonaut
        call get_or_create_service argonaut load-balancer "Load balancing (Argonaut, Octavia v2 API)"
        call get_or_create_endpoint svc-0001 RegionOne http://10.0.0.5:9876
        call get_or_create_role load-balancer_observer
        call get_or_create_role load-balancer_global_observer
        call get_or_create_role load-balancer_member
        call get_or_create_role load-balancer_admin
        call get_or_create_role load-balancer_quota_admin
        call get_or_add_user_project_role load-balancer_member demo demo
    )" "$(calls)"
    check_absent "nova: no configuration before its resources exist" "$confdir/argonaut.yaml"

    run_phase nova_mode stack extra
    check_eq "nova: extra exits 0" 0 "$STATUS"
    check_eq "nova: extra calls" "$(
        call echo_summary "Uploading the Argonaut amphora image"
        call curl -fsSL --retry 3 -o "$data/argonaut-amphora.qcow2" https://images.example.net/amphora.qcow2
        call "${os[@]}" image create argonaut-amphora --disk-format qcow2 --container-format bare --private --project service --tag amphora --file "$data/argonaut-amphora.qcow2"
        call "${os[@]}" flavor show argonaut-amphora
        call "${os[@]}" flavor create argonaut-amphora --ram 1024 --disk 3 --vcpus 1 --private --project service
        call echo_summary "Creating the Argonaut management network"
        call "${os[@]}" network show lb-mgmt-net
        call "${os[@]}" network create lb-mgmt-net --project service
        call "${os[@]}" subnet show lb-mgmt-subnet
        call "${os[@]}" subnet create lb-mgmt-subnet --network lb-mgmt-net --subnet-range 192.168.0.0/24 --project service
        call "${os[@]}" security group show lb-mgmt-sec-grp
        call "${os[@]}" security group create lb-mgmt-sec-grp --project service
        call "${os[@]}" security group rule create lb-mgmt-sec-grp --protocol icmp --ingress
        call echo_summary "Configuring Argonaut for Nova amphorae"
        call "${os[@]}" flavor show -f value -c id argonaut-amphora
        call "${os[@]}" network show -f value -c id lb-mgmt-net
        echo "tsx $dir/bin/argonaut.ts migrate --config $confdir/argonaut.yaml (in $dir)"
        call echo_summary "Starting Argonaut"
        call run_process argonaut-api "$tsx $dir/bin/argonaut.ts api --config $confdir/argonaut.yaml"
        call wait_for_service 60 http://10.0.0.5:9876/
    )" "$(calls)"
    local key
    key=$(cat "$data/master.key" 2>/dev/null)
    check "nova: the master key is 64 hex digits" grep -qxE '[0-9a-f]{64}' <<< "$key"
    check_eq "nova: the master key is private (mode 600)" 600 "$(stat -c %a "$data/master.key")"
    check_file "nova: Argonaut config" "$confdir/argonaut.yaml" "${EXPECTED_CONFIG_HEAD}controllerWorker:
  loadbalancerTopology: 'ACTIVE_STANDBY'
  computeDriver: 'nova'
  networkDriver: 'neutron'
  amphoraDriver: 'agent'
messaging:
  kind: amqp
  masterKey: '$key'
  amqp:
    url: 'amqp://stackrabbit:rabbit-pw@10.0.0.7:5672/argonaut'
    prefix: 'argonaut'
nova:
  flavorId: 'id-of-argonaut-amphora'
  imageTag: 'amphora'
  managementNetworkId: 'id-of-lb-mgmt-net'
  securityGroups: ['lb-mgmt-sec-grp']
  serverGroupPolicy: 'soft-anti-affinity'
  keyName: null
  amqpUrl: null
logging:
  level: 'info'"
    check_eq "nova: config is private (mode 600)" 600 "$(stat -c %a "$confdir/argonaut.yaml")"
    # for devstack.test.ts
    cp "$confdir/argonaut.yaml" "$WORK/generated-argonaut-nova.yaml"
    cp "$data/master.key" "$WORK/generated-master.key"

    # a re-stack (unstack, stack) writes the configuration again with the same key
    run_phase nova_mode stack extra
    check_eq "nova: a second extra exits 0" 0 "$STATUS"
    check_eq "nova: the master key survives a re-stack" "$key" "$(cat "$data/master.key")"
    check "nova: the rewritten config keeps the key" grep -qxF "  masterKey: '$key'" "$confdir/argonaut.yaml"

    run_phase nova_mode stack test-config
    check "nova: tempest waits for amphorae" grep -qxF "test_with_noop = False" "$WORK/tempest.conf"
    check "nova: tempest's topology" grep -qxF "loadbalancer_topology = ACTIVE_STANDBY" "$WORK/tempest.conf"

    # the optional nova settings, and resources the operator made (image and network steps off)
    function nova_own {
        nova_mode
        ARGONAUT_LB_TOPOLOGY=SINGLE
        ARGONAUT_AMPHORA_IMAGE=False
        ARGONAUT_MGMT_NETWORK=False
        ARGONAUT_AMPHORA_KEY_NAME=ops-key
        ARGONAUT_AMPHORA_AMQP_URL="amqp://amp:pw@192.168.0.1:5672/argonaut"
        HARNESS_EXISTING="flavor:argonaut-amphora network:lb-mgmt-net"
    }
    run_phase nova_own stack extra
    check_eq "nova (own resources): extra exits 0" 0 "$STATUS"
    local yaml
    yaml=$(cat "$confdir/argonaut.yaml")
    check "nova (own resources): the flavor's id" grep -qxF "  flavorId: 'id-of-argonaut-amphora'" <<< "$yaml"
    check "nova (own resources): SINGLE: no server group" grep -qxF "  serverGroupPolicy: null" <<< "$yaml"
    check "nova (own resources): key pair" grep -qxF "  keyName: 'ops-key'" <<< "$yaml"
    check "nova (own resources): RabbitMQ as amphorae reach it" grep -qxF "  amqpUrl: 'amqp://amp:pw@192.168.0.1:5672/argonaut'" <<< "$yaml"
    check_not "nova (own resources): nothing created" grep -q " create " "$CALLS"

    # neither the steps nor the operator made the flavor: stop before the API starts
    function nova_no_flavor { nova_mode; ARGONAUT_AMPHORA_IMAGE=False; }
    run_phase nova_no_flavor stack extra
    check_eq "nova without a flavor: extra fails" 1 "$STATUS"
    check "nova without a flavor: dies saying so" \
        grep -qxF "$(call die LINE "flavor argonaut-amphora not found (ARGONAUT_AMPHORA_IMAGE=True creates it)")" "$CALLS"
    check_not "nova without a flavor: no migration" grep -q "migrate" "$CALLS"
    check_not "nova without a flavor: the API is not started" grep -q "^run_process" "$CALLS"

    # refused in post-config, before any database work
    function nova_without_nova { nova_mode; ENABLED_SERVICES=key,mysql,rabbit,g-api,q-svc; }
    function nova_noop_amphorae { nova_mode; ARGONAUT_AMPHORA_DRIVER=noop; }
    function nova_loopback { nova_mode; ARGONAUT_NETWORK_DRIVER=loopback; }
    function nova_bad_group { nova_mode; ARGONAUT_AMPHORA_SERVER_GROUP_POLICY=affinity; }
    local setup message
    for setup in nova_without_nova nova_noop_amphorae nova_loopback nova_bad_group; do
        case $setup in
            nova_without_nova) message="ARGONAUT_COMPUTE_DRIVER=nova needs nova" ;;
            nova_noop_amphorae) message="ARGONAUT_COMPUTE_DRIVER=nova needs ARGONAUT_AMPHORA_DRIVER=agent (booted amphorae get their configuration from the controller)" ;;
            nova_loopback) message="ARGONAUT_COMPUTE_DRIVER=nova needs ARGONAUT_NETWORK_DRIVER=neutron" ;;
            nova_bad_group) message="ARGONAUT_AMPHORA_SERVER_GROUP_POLICY must be anti-affinity, soft-anti-affinity or empty, not 'affinity'" ;;
        esac
        run_phase "$setup" stack post-config
        check_eq "$setup: post-config refused" "$(call echo_summary "Configuring Argonaut"; call die LINE "$message")" "$(calls)"
    done
    rm -rf "$confdir" "$data"
}

check_settings
scenario_full_cycle
scenario_tempest_owner_or_admin
scenario_optional_steps_on
scenario_image_build
scenario_refusals
scenario_nova

echo "harness: $PASSED checks passed, $FAILED failed"
[[ $FAILED == 0 ]]
