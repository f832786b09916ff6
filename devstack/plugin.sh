#!/bin/bash
# shellcheck disable=SC2154  # the DEST/SERVICE_*/DATABASE_*/RABBIT_* globals come from devstack
#
# Devstack plugin of Argonaut (Octavia v2 API compatible load balancing).
# Devstack sources this file as `plugin.sh <mode> <phase>`; the settings are in ./settings.
# What each phase does: devstack/README.md.

# The services this plugin knows; is_service_enabled argonaut is true when any of them is. The API
# process also runs the controller worker and the health manager (bin/argonaut.ts api).
ARGONAUT_SERVICES="argonaut-api"
ARGONAUT_ROLES="load-balancer_observer load-balancer_global_observer load-balancer_member load-balancer_admin load-balancer_quota_admin"

function is_argonaut_enabled {
    local service
    for service in $ARGONAUT_SERVICES; do
        [[ ,${ENABLED_SERVICES}, =~ ,${service}, ]] && return 0
    done
    return 1
}

# --- helpers -------------------------------------------------------------------------------------

# A YAML single-quoted scalar (quotes doubled), so passwords and descriptions stay literal.
function _argonaut_yaml_str {
    local s=$1
    printf "'%s'" "${s//\'/\'\'}"
}

# Percent-encodes everything but RFC 3986 unreserved characters (for the user/password in URLs).
function _argonaut_urlencode {
    local LC_ALL=C
    local s=$1 out="" c i
    for (( i = 0; i < ${#s}; i++ )); do
        c=${s:i:1}
        case $c in
            [A-Za-z0-9._~-]) out+=$c ;;
            *) printf -v c '%%%02X' "'$c"; out+=$c ;;
        esac
    done
    printf '%s' "$out"
}

function argonaut_database_url {
    printf 'mysql://%s:%s@%s:%s/%s' "$(_argonaut_urlencode "$DATABASE_USER")" \
        "$(_argonaut_urlencode "$DATABASE_PASSWORD")" "$DATABASE_HOST" "$ARGONAUT_DB_PORT" "$ARGONAUT_DB_NAME"
}

function argonaut_transport_url {
    printf 'amqp://%s:%s@%s:5672/%s' "$(_argonaut_urlencode "$RABBIT_USERID")" \
        "$(_argonaut_urlencode "$RABBIT_PASSWORD")" "$RABBIT_HOST" "$ARGONAUT_RABBIT_VHOST"
}

# argonaut_run <command> [args]: `bin/argonaut.ts <command> --config $ARGONAUT_CONF`, in the checkout.
function argonaut_run {
    (cd "$ARGONAUT_DIR" && "$ARGONAUT_TSX" "$ARGONAUT_DIR/bin/argonaut.ts" "$@" --config "$ARGONAUT_CONF")
}

# --- stack install -------------------------------------------------------------------------------

function _argonaut_node_major {
    local version
    version=$(node --version 2>/dev/null) || return 1
    version=${version#v}
    printf '%s' "${version%%.*}"
}

function argonaut_install_nodejs {
    local major
    major=$(_argonaut_node_major) || major=0
    if (( major < ARGONAUT_NODE_MIN_MAJOR )); then
        # shellcheck disable=SC2086  # a list of package names
        install_package $ARGONAUT_NODE_PACKAGES
        major=$(_argonaut_node_major) || major=0
    fi
    if (( major < ARGONAUT_NODE_MIN_MAJOR )); then
        die $LINENO "Argonaut needs Node.js >= $ARGONAUT_NODE_MIN_MAJOR (found: ${major/#0/none}); install it (e.g. from NodeSource) before stacking, or set ARGONAUT_NODE_PACKAGES"
    fi
}

function install_argonaut {
    if [[ $DATABASE_TYPE != mysql ]]; then
        die $LINENO "Argonaut supports DATABASE_TYPE=mysql (MySQL/MariaDB) only, not '$DATABASE_TYPE'"
    fi
    argonaut_install_nodejs
    # The lock file pins every package; tsx (which runs bin/*.ts) is a runtime dependency.
    (cd "$ARGONAUT_DIR" && $ARGONAUT_NPM ci --omit=dev --no-audit --no-fund) || die $LINENO "npm ci failed in $ARGONAUT_DIR"
    [[ -x $ARGONAUT_TSX ]] || die $LINENO "$ARGONAUT_TSX is missing after npm ci"
}

# --- stack post-config ---------------------------------------------------------------------------

function _argonaut_nova_mode {
    [[ $ARGONAUT_COMPUTE_DRIVER == nova ]]
}

# Refuses settings that cannot work, before any database or Keystone work.
function argonaut_check_settings {
    local entry default_found=False
    local -a entries
    IFS=, read -r -a entries <<< "$ARGONAUT_PROVIDERS"
    for entry in "${entries[@]}"; do
        [[ ${entry%%:*} == "$ARGONAUT_DEFAULT_PROVIDER" ]] && default_found=True
    done
    if [[ $default_found != True ]]; then
        die $LINENO "ARGONAUT_DEFAULT_PROVIDER '$ARGONAUT_DEFAULT_PROVIDER' is not in ARGONAUT_PROVIDERS"
    fi
    case $ARGONAUT_LB_TOPOLOGY in
        SINGLE | ACTIVE_STANDBY) ;;
        *) die $LINENO "ARGONAUT_LB_TOPOLOGY must be SINGLE or ACTIVE_STANDBY, not '$ARGONAUT_LB_TOPOLOGY'" ;;
    esac
    if [[ $ARGONAUT_NETWORK_DRIVER == neutron ]] && ! is_service_enabled neutron; then
        die $LINENO "ARGONAUT_NETWORK_DRIVER=neutron needs neutron"
    fi
    _argonaut_nova_mode || return 0
    is_service_enabled nova || die $LINENO "ARGONAUT_COMPUTE_DRIVER=nova needs nova"
    if [[ $ARGONAUT_AMPHORA_DRIVER != agent ]]; then
        die $LINENO "ARGONAUT_COMPUTE_DRIVER=nova needs ARGONAUT_AMPHORA_DRIVER=agent (booted amphorae get their configuration from the controller)"
    fi
    if [[ $ARGONAUT_NETWORK_DRIVER != neutron ]]; then
        die $LINENO "ARGONAUT_COMPUTE_DRIVER=nova needs ARGONAUT_NETWORK_DRIVER=neutron"
    fi
    case $ARGONAUT_AMPHORA_SERVER_GROUP_POLICY in
        "" | anti-affinity | soft-anti-affinity) ;;
        *) die $LINENO "ARGONAUT_AMPHORA_SERVER_GROUP_POLICY must be anti-affinity, soft-anti-affinity or empty, not '$ARGONAUT_AMPHORA_SERVER_GROUP_POLICY'" ;;
    esac
}

# A YAML scalar: the single-quoted string, or null when it is empty.
function _argonaut_yaml_str_or_null {
    if [[ -n $1 ]]; then _argonaut_yaml_str "$1"; else printf null; fi
}

# The sections of computeDriver nova: RabbitMQ between the controller and the amphorae, and how
# Nova boots them (from the resources of the extra phase, see argonaut_nova_resources).
function _argonaut_nova_sections {
    local groups=[]
    [[ -n $ARGONAUT_MGMT_SECGROUP ]] && groups="[$(_argonaut_yaml_str "$ARGONAUT_MGMT_SECGROUP")]"
    cat <<EOF
messaging:
  kind: amqp
  masterKey: $(_argonaut_yaml_str "$_ARGONAUT_MASTER_KEY")
  amqp:
    url: $(_argonaut_yaml_str "$(argonaut_transport_url)")
    prefix: $(_argonaut_yaml_str "$ARGONAUT_MESSAGING_PREFIX")
nova:
  flavorId: $(_argonaut_yaml_str "$_ARGONAUT_FLAVOR_ID")
  imageTag: $(_argonaut_yaml_str "$ARGONAUT_AMPHORA_IMAGE_TAG")
  managementNetworkId: $(_argonaut_yaml_str "$_ARGONAUT_MGMT_NET_ID")
  securityGroups: $groups
  serverGroupPolicy: $(_argonaut_yaml_str_or_null "$ARGONAUT_AMPHORA_SERVER_GROUP_POLICY")
  keyName: $(_argonaut_yaml_str_or_null "$ARGONAUT_AMPHORA_KEY_NAME")
  amqpUrl: $(_argonaut_yaml_str_or_null "$ARGONAUT_AMPHORA_AMQP_URL")
EOF
}

# Writes $ARGONAUT_CONF; with computeDriver nova, after argonaut_nova_resources and
# argonaut_master_key (the extra phase).
function argonaut_write_config {
    local entry providers=""
    local -a entries
    IFS=, read -r -a entries <<< "$ARGONAUT_PROVIDERS"
    for entry in "${entries[@]}"; do
        providers+="    $(_argonaut_yaml_str "${entry%%:*}"): $(_argonaut_yaml_str "${entry#*:}")"$'\n'
    done
    local enforce=false nova=""
    [[ $ARGONAUT_ENFORCE_NEW_DEFAULTS == True ]] && enforce=true
    if _argonaut_nova_mode; then
        nova=$(_argonaut_nova_sections)$'\n'
    fi

    # The file holds passwords: readable by the stack user only.
    (umask 077 && cat > "$ARGONAUT_CONF" <<EOF
# Written by Argonaut's devstack plugin (devstack/plugin.sh); every option: etc/argonaut.example.yaml
api:
  host: $(_argonaut_yaml_str "$ARGONAUT_API_HOST")
  port: $ARGONAUT_PORT
  authStrategy: keystone
  enabledProviderDrivers:
${providers}  defaultProviderDriver: $(_argonaut_yaml_str "$ARGONAUT_DEFAULT_PROVIDER")
database:
  url: $(_argonaut_yaml_str "$(argonaut_database_url)")
  migrateOnStart: false
keystone:
  authUrl: $(_argonaut_yaml_str "$KEYSTONE_SERVICE_URI/v3")
  username: $(_argonaut_yaml_str "$ARGONAUT_SERVICE_USER")
  password: $(_argonaut_yaml_str "$SERVICE_PASSWORD")
  projectName: $(_argonaut_yaml_str "$SERVICE_PROJECT_NAME")
  userDomainName: $(_argonaut_yaml_str "$SERVICE_DOMAIN_NAME")
  projectDomainName: $(_argonaut_yaml_str "$SERVICE_DOMAIN_NAME")
  region: $(_argonaut_yaml_str "$REGION_NAME")
policy:
  ruleSet: $(_argonaut_yaml_str "$ARGONAUT_POLICY_RULESET")
  enforceNewDefaults: $enforce
controllerWorker:
  loadbalancerTopology: $(_argonaut_yaml_str "$ARGONAUT_LB_TOPOLOGY")
  computeDriver: $(_argonaut_yaml_str "$ARGONAUT_COMPUTE_DRIVER")
  networkDriver: $(_argonaut_yaml_str "$ARGONAUT_NETWORK_DRIVER")
  amphoraDriver: $(_argonaut_yaml_str "$ARGONAUT_AMPHORA_DRIVER")
${nova}logging:
  level: $(_argonaut_yaml_str "$ARGONAUT_LOG_LEVEL")
EOF
    )
}

# RabbitMQ (computeDriver nova): a vhost of Argonaut's own for the controller and the amphorae.
function argonaut_configure_rabbit {
    if is_service_enabled rabbit; then
        rpc_backend_add_vhost "$ARGONAUT_RABBIT_VHOST" || die $LINENO "cannot add RabbitMQ vhost $ARGONAUT_RABBIT_VHOST"
    fi
}

function argonaut_init_database {
    recreate_database "$ARGONAUT_DB_NAME"
    # devstack creates utf8 databases; Argonaut's schema expects utf8mb4 with binary collation
    # (what `argonaut migrate` itself creates), e.g. so that names compare case-sensitively.
    mysql -u"$DATABASE_USER" -p"$DATABASE_PASSWORD" -h"$MYSQL_HOST" \
        -e "ALTER DATABASE $ARGONAUT_DB_NAME CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;" \
        || die $LINENO "cannot set the character set of database $ARGONAUT_DB_NAME"
    # With computeDriver nova the configuration (which `migrate` loads) is complete only in the
    # extra phase, once the flavor and the management network exist: it migrates there.
    if ! _argonaut_nova_mode; then
        argonaut_run migrate || die $LINENO "argonaut migrate failed"
    fi
}

function argonaut_create_accounts {
    create_service_user "$ARGONAUT_SERVICE_USER"
    local service_id role
    service_id=$(get_or_create_service "$ARGONAUT_SERVICE_NAME" "$ARGONAUT_SERVICE_TYPE" \
        "Load balancing (Argonaut, Octavia v2 API)")
    get_or_create_endpoint "$service_id" "$REGION_NAME" "$ARGONAUT_ENDPOINT_URL"
    for role in $ARGONAUT_ROLES; do
        get_or_create_role "$role"
    done
    if [[ $ARGONAUT_GRANT_DEMO_MEMBER == True ]]; then
        get_or_add_user_project_role load-balancer_member demo demo
    fi
}

function configure_argonaut {
    argonaut_check_settings
    sudo install -d -o "$STACK_USER" -m 0750 "$ARGONAUT_CONF_DIR"
    install -d -m 0750 "$ARGONAUT_DATA_DIR"
    if _argonaut_nova_mode; then
        argonaut_configure_rabbit
    else
        argonaut_write_config
    fi
}

function init_argonaut {
    argonaut_init_database
    argonaut_create_accounts
}

# --- stack extra ---------------------------------------------------------------------------------

# ON by default with computeDriver nova (ARGONAUT_AMPHORA_IMAGE), which boots this image by its tag.
# With ARGONAUT_AMPHORA_IMAGE_URL the image published there is fetched; without it, the image is
# built here by amphora/image/build.sh (debootstrap, as root; minutes, then cached).
function argonaut_amphora_image {
    is_service_enabled glance || die $LINENO "ARGONAUT_AMPHORA_IMAGE=True needs glance"
    local file=$ARGONAUT_AMPHORA_IMAGE_FILE
    if [[ -z $ARGONAUT_AMPHORA_IMAGE_URL ]]; then
        echo_summary "Building the Argonaut amphora image"
        # shellcheck disable=SC2086  # a list of package names
        install_package $ARGONAUT_AMPHORA_IMAGE_BUILD_PACKAGES
        sudo "$ARGONAUT_DIR/amphora/image/build.sh" --out "$ARGONAUT_AMPHORA_IMAGE_BUILD_DIR" \
            --cache "$ARGONAUT_AMPHORA_IMAGE_BUILD_DIR/cache" --format qcow2 \
            || die $LINENO "cannot build the amphora image (amphora/image/build.sh)"
        file=$ARGONAUT_AMPHORA_IMAGE_BUILD_DIR/argonaut-amphora.qcow2
    elif [[ ! -s $file ]]; then
        if [[ $ARGONAUT_AMPHORA_IMAGE_URL == file://* ]]; then
            cp "${ARGONAUT_AMPHORA_IMAGE_URL#file://}" "$file"
        else
            curl -fsSL --retry 3 -o "$file" "$ARGONAUT_AMPHORA_IMAGE_URL"
        fi || die $LINENO "cannot fetch $ARGONAUT_AMPHORA_IMAGE_URL"
    fi
    # Owned by the service project, where Argonaut's service user looks it up by tag.
    openstack --os-cloud devstack-admin image create "$ARGONAUT_AMPHORA_IMAGE_NAME" \
        --disk-format qcow2 --container-format bare --private --project "$SERVICE_PROJECT_NAME" \
        --tag "$ARGONAUT_AMPHORA_IMAGE_TAG" --file "$file" \
        || die $LINENO "cannot upload the amphora image"
    openstack --os-cloud devstack-admin flavor show "$ARGONAUT_AMPHORA_FLAVOR" >/dev/null 2>&1 ||
        openstack --os-cloud devstack-admin flavor create "$ARGONAUT_AMPHORA_FLAVOR" \
            --ram 1024 --disk 3 --vcpus 1 --private --project "$SERVICE_PROJECT_NAME" \
        || die $LINENO "cannot create flavor $ARGONAUT_AMPHORA_FLAVOR"
}

# ON by default with computeDriver nova (ARGONAUT_MGMT_NETWORK): the network amphorae boot on and
# reach RabbitMQ over. Amphora agents only connect out (AMQP), so the group lets nothing in but ICMP.
function argonaut_mgmt_network {
    is_service_enabled neutron || die $LINENO "ARGONAUT_MGMT_NETWORK=True needs neutron"
    local os=(openstack --os-cloud devstack-admin)
    "${os[@]}" network show "$ARGONAUT_MGMT_NET_NAME" >/dev/null 2>&1 ||
        "${os[@]}" network create "$ARGONAUT_MGMT_NET_NAME" --project "$SERVICE_PROJECT_NAME" \
        || die $LINENO "cannot create network $ARGONAUT_MGMT_NET_NAME"
    "${os[@]}" subnet show "$ARGONAUT_MGMT_SUBNET_NAME" >/dev/null 2>&1 ||
        "${os[@]}" subnet create "$ARGONAUT_MGMT_SUBNET_NAME" --network "$ARGONAUT_MGMT_NET_NAME" \
            --subnet-range "$ARGONAUT_MGMT_SUBNET_CIDR" --project "$SERVICE_PROJECT_NAME" \
        || die $LINENO "cannot create subnet $ARGONAUT_MGMT_SUBNET_NAME"
    if ! "${os[@]}" security group show "$ARGONAUT_MGMT_SECGROUP" >/dev/null 2>&1; then
        "${os[@]}" security group create "$ARGONAUT_MGMT_SECGROUP" --project "$SERVICE_PROJECT_NAME" \
            || die $LINENO "cannot create security group $ARGONAUT_MGMT_SECGROUP"
        "${os[@]}" security group rule create "$ARGONAUT_MGMT_SECGROUP" --protocol icmp --ingress \
            || die $LINENO "cannot add the ICMP rule to $ARGONAUT_MGMT_SECGROUP"
    fi
}

# _argonaut_os_id <resource> <name>: the id of an existing flavor, network... (as admin), or fails.
function _argonaut_os_id {
    local id
    id=$(openstack --os-cloud devstack-admin "$1" show -f value -c id "$2") || return 1
    [[ -n $id ]] || return 1
    printf '%s' "$id"
}

# The ids the nova section needs, of the flavor and the network made above (or by the operator).
function argonaut_nova_resources {
    _ARGONAUT_FLAVOR_ID=$(_argonaut_os_id flavor "$ARGONAUT_AMPHORA_FLAVOR") \
        || die $LINENO "flavor $ARGONAUT_AMPHORA_FLAVOR not found (ARGONAUT_AMPHORA_IMAGE=True creates it)"
    _ARGONAUT_MGMT_NET_ID=$(_argonaut_os_id network "$ARGONAUT_MGMT_NET_NAME") \
        || die $LINENO "network $ARGONAUT_MGMT_NET_NAME not found (ARGONAUT_MGMT_NETWORK=True creates it)"
}

# messaging.masterKey, which every amphora key derives from: made once and kept (mode 600) in
# ARGONAUT_MASTER_KEY_FILE, so rewriting the configuration never changes it under running
# amphorae; `clean` removes it with the data directory.
function argonaut_master_key {
    if [[ ! -s $ARGONAUT_MASTER_KEY_FILE ]]; then
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$ARGONAUT_MASTER_KEY_FILE") \
            || die $LINENO "cannot write $ARGONAUT_MASTER_KEY_FILE"
    fi
    _ARGONAUT_MASTER_KEY=$(<"$ARGONAUT_MASTER_KEY_FILE")
    if (( ${#_ARGONAUT_MASTER_KEY} < 32 )); then
        die $LINENO "$ARGONAUT_MASTER_KEY_FILE holds fewer than 32 characters: remove it to get a new key"
    fi
}

# computeDriver nova: the configuration, now that its resources exist, then the migrations
# (`migrate` loads the whole configuration).
function argonaut_configure_nova {
    argonaut_nova_resources
    argonaut_master_key
    argonaut_write_config
    argonaut_run migrate || die $LINENO "argonaut migrate failed"
}

function start_argonaut {
    # One process: the API, its controller worker and the health manager.
    run_process argonaut-api "$ARGONAUT_TSX $ARGONAUT_DIR/bin/argonaut.ts api --config $ARGONAUT_CONF"
    if is_service_enabled argonaut-api; then
        # The version document at / answers once the API listens.
        wait_for_service "$SERVICE_TIMEOUT" "$ARGONAUT_ENDPOINT_URL/" \
            || die $LINENO "argonaut-api did not answer at $ARGONAUT_ENDPOINT_URL/ within $SERVICE_TIMEOUT s"
    fi
}

# --- stack test-config ---------------------------------------------------------------------------

function configure_tempest_argonaut {
    local rbac
    case $ARGONAUT_POLICY_RULESET in
        admin_or_owner) rbac=owner_or_admin ;;
        *) rbac=$ARGONAUT_POLICY_RULESET ;;
    esac
    iniset "$TEMPEST_CONFIG" service_available load_balancer True
    iniset "$TEMPEST_CONFIG" load_balancer catalog_type "$ARGONAUT_SERVICE_TYPE"
    iniset "$TEMPEST_CONFIG" load_balancer region "$REGION_NAME"
    iniset "$TEMPEST_CONFIG" load_balancer provider "$ARGONAUT_DEFAULT_PROVIDER"
    iniset "$TEMPEST_CONFIG" load_balancer enabled_provider_drivers "$ARGONAUT_PROVIDERS"
    iniset "$TEMPEST_CONFIG" load_balancer RBAC_test_type "$rbac"
    iniset "$TEMPEST_CONFIG" load_balancer enforce_new_defaults "$ARGONAUT_ENFORCE_NEW_DEFAULTS"
    iniset "$TEMPEST_CONFIG" load_balancer test_with_noop "$ARGONAUT_TEMPEST_TEST_WITH_NOOP"
    iniset "$TEMPEST_CONFIG" load_balancer loadbalancer_topology "$ARGONAUT_LB_TOPOLOGY"
}

# --- unstack and clean ---------------------------------------------------------------------------

function stop_argonaut {
    local service
    for service in $ARGONAUT_SERVICES; do
        stop_process "$service"
    done
}

# clean.sh runs `unstack.sh --all` first, which stops devstack's own MySQL and RabbitMQ; devstack
# then purges both (cleanup_database, cleanup_rpc_backend), and with them Argonaut's database and
# vhost. A server devstack does not run is still up: there the database is dropped here.
function cleanup_argonaut {
    if ! is_service_enabled mysql; then
        mysql -u"$DATABASE_USER" -p"$DATABASE_PASSWORD" -h"$MYSQL_HOST" \
            -e "DROP DATABASE IF EXISTS $ARGONAUT_DB_NAME;" \
            || die $LINENO "cannot drop database $ARGONAUT_DB_NAME on $MYSQL_HOST"
    fi
    sudo rm -rf "$ARGONAUT_CONF_DIR"
    # The image build runs as root: its output and caches are root's.
    sudo rm -rf "$ARGONAUT_AMPHORA_IMAGE_BUILD_DIR"
    rm -rf "$ARGONAUT_DATA_DIR"
    # Installed by `npm ci` in stack install; the checkout itself stays.
    rm -rf "$ARGONAUT_DIR/node_modules"
}

# --- phases --------------------------------------------------------------------------------------

if is_service_enabled argonaut; then
    if [[ $1 == stack && $2 == install ]]; then
        echo_summary "Installing Argonaut (Node.js dependencies)"
        install_argonaut
    elif [[ $1 == stack && $2 == post-config ]]; then
        echo_summary "Configuring Argonaut"
        configure_argonaut
        init_argonaut
    elif [[ $1 == stack && $2 == extra ]]; then
        if [[ $ARGONAUT_AMPHORA_IMAGE == True ]]; then
            echo_summary "Uploading the Argonaut amphora image"
            argonaut_amphora_image
        fi
        if [[ $ARGONAUT_MGMT_NETWORK == True ]]; then
            echo_summary "Creating the Argonaut management network"
            argonaut_mgmt_network
        fi
        if _argonaut_nova_mode; then
            echo_summary "Configuring Argonaut for Nova amphorae"
            argonaut_configure_nova
        fi
        echo_summary "Starting Argonaut"
        start_argonaut
    elif [[ $1 == stack && $2 == test-config ]]; then
        if is_service_enabled tempest; then
            echo_summary "Configuring tempest for Argonaut"
            configure_tempest_argonaut
        fi
    fi

    if [[ $1 == unstack ]]; then
        echo_summary "Stopping Argonaut"
        stop_argonaut
    fi

    if [[ $1 == clean ]]; then
        echo_summary "Cleaning up Argonaut"
        cleanup_argonaut
    fi
fi
