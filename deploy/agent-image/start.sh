#!/usr/bin/env bash
# Starts one Azure Pipelines agent in a pod of the azure-agent chart, in three
# roles, one per container, so that the container that runs job steps never
# holds the pool's PAT (with it a job could register agents of its own and
# receive other pipelines' jobs):
#
#   start.sh register        init container: registers the agent with the PAT
#                            (config.sh) and hands over only the agent's own
#                            credentials, in AZP_HANDOVER_DIR
#   start.sh run [ARGS]      agent container, no PAT: takes the handed-over
#                            registration and runs the agent (run.sh ARGS, e.g. --once)
#   start.sh deregister      sidecar with the PAT: removes the registration once
#                            the agent has stopped, or when it asks to stop
#
#   AZP_TEMPLATE_AGENT=true start.sh register   registers the offline template agent
#
# Environment:
#   AZP_URL          organisation URL (register, deregister)
#   AZP_POOL         pool name (register)
#   AZP_TOKEN_FILE   file holding the PAT (register, deregister; the chart mounts
#                    its Secret there). run refuses to start when it is set.
#   AZP_HANDOVER_DIR      register -> run: the agent's configuration and its own
#                         credentials (and the agent package when downloaded);
#                         run -> deregister: the request to stop
#   AZP_REGISTRATION_DIR  register -> deregister: the registration to remove
#                         (the agent's container never sees it)
#   AZP_AGENT_NAME   agent name (default: the host name, i.e. the pod name)
#   AZP_WORK         work directory (default: _work)
#   AZP_HOME         where the agent lives (default: the current directory)
#   AZP_AGENT_PACKAGE_URL     agent package to download; default: ask the organisation
#   AZP_AGENT_PLATFORM        package platform (default from uname -m: linux-x64, linux-arm64)
#   AZP_REMOVE_RETRY_SECONDS  pause between attempts to remove the registration (30)
#   AZP_REMOVE_ATTEMPTS       attempts once the agent has stopped (5)
#
# The PAT never appears on a command line, in an environment other than
# config.sh's (VSTS_AGENT_INPUT_TOKEN, from which the agent reads --token) or
# in the output; curl gets it on stdin.
set -euo pipefail

log() { printf 'start.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

role="${1:-}"
[[ "$role" =~ ^(register|run|deregister)$ ]] ||
    die "the first argument must be the role: register, run or deregister (got '${role}')"
shift

AZP_HOME="${AZP_HOME:-$PWD}"
AZP_WORK="${AZP_WORK:-_work}"
AZP_AGENT_NAME="${AZP_AGENT_NAME:-$(hostname)}"
AZP_TEMPLATE_AGENT="${AZP_TEMPLATE_AGENT:-false}"
retry_seconds="${AZP_REMOVE_RETRY_SECONDS:-30}"
remove_attempts="${AZP_REMOVE_ATTEMPTS:-5}"

# What config.sh writes next to the agent and the agent needs to run; the
# registration's id is in .agent, the agent's own key in .credentials_rsaparams.
config_files=(.agent .credentials .credentials_rsaparams .proxy .proxycredentials .proxybypass .certificates .options .setup_info)

mkdir -p "$AZP_HOME"
cd "$AZP_HOME"

need_token_file() {
    [[ -n "${AZP_TOKEN_FILE:-}" ]] || die "set AZP_TOKEN_FILE (a file holding the PAT)"
    [[ -r "$AZP_TOKEN_FILE" ]] || die "cannot read the token file $AZP_TOKEN_FILE"
    [[ -s "$AZP_TOKEN_FILE" ]] || die "the token file $AZP_TOKEN_FILE is empty"
}

read_token() {
    local token
    token="$(<"$AZP_TOKEN_FILE")"
    printf '%s' "${token%$'\r'}"
}

# curl with the PAT as basic auth, handed over as a config file on stdin.
curl_with_token() {
    printf 'user = ":%s"\n' "$(read_token)" | curl --fail --silent --show-error --location --config - "$@"
}

platform() {
    if [[ -n "${AZP_AGENT_PLATFORM:-}" ]]; then
        printf '%s\n' "$AZP_AGENT_PLATFORM"
        return
    fi
    case "$(uname -m)" in
        x86_64 | amd64) echo linux-x64 ;;
        aarch64 | arm64) echo linux-arm64 ;;
        armv7l) echo linux-arm ;;
        *) die "no agent package for $(uname -m); set AZP_AGENT_PLATFORM" ;;
    esac
}

package_url() {
    if [[ -n "${AZP_AGENT_PACKAGE_URL:-}" ]]; then
        printf '%s\n' "$AZP_AGENT_PACKAGE_URL"
        return
    fi
    local answer url
    answer="$(curl_with_token "${AZP_URL%/}/_apis/distributedtask/packages/agent?platform=$(platform)&top=1")" ||
        die "cannot ask ${AZP_URL%/} for its agent package (is the PAT valid, with Agent Pools (Read & manage)?)"
    url="$(jq -r '.value[0].downloadUrl // empty' <<<"$answer")"
    [[ -n "$url" ]] || die "${AZP_URL%/} offers no agent package for $(platform)"
    printf '%s\n' "$url"
}

unpack_agent() {
    tar -xzf "$1" -C "$AZP_HOME"
    [[ -x ./config.sh && -x ./run.sh ]] || die "the agent package $1 has no config.sh and run.sh"
    if [[ -x ./env.sh ]]; then
        ./env.sh
    fi
}

# The agent of the image, or a download that the agent's container then gets
# from the handover directory instead of downloading it again.
download_agent() {
    if [[ -x ./config.sh && -x ./run.sh ]]; then
        log "using the agent in $AZP_HOME"
        return
    fi
    local url package
    url="$(package_url)"
    log "downloading the agent from $url"
    package="$(mktemp "$AZP_HOME/.package.XXXXXX")"
    curl --fail --silent --show-error --location --output "$package" "$url" || die "cannot download $url"
    unpack_agent "$package"
    if [[ -n "${AZP_HANDOVER_DIR:-}" && "$AZP_TEMPLATE_AGENT" != true ]]; then
        mv "$package" "$AZP_HANDOVER_DIR/agent.tar.gz"
    else
        rm -f "$package"
    fi
}

# Removes the registration recorded in the .agent file $1 (never the template's):
# DELETE pools/{poolId}/agents/{agentId} with the PAT, as `config.sh remove`
# does. Azure DevOps refuses while the agent still runs a job, so it retries as
# long as `$2` (a command) says the agent runs, then a few times.
remove_registration() {
    local settings="$1" still_running="$2" pool agent attempt=0
    if ! pool="$(jq -er '.poolId' "$settings")" || ! agent="$(jq -er '.agentId' "$settings")"; then
        die "$settings names no poolId and agentId"
    fi
    until curl_with_token --output /dev/null --request DELETE \
        "${AZP_URL%/}/_apis/distributedtask/pools/${pool}/agents/${agent}?api-version=7.1"; do
        if ! "$still_running"; then
            attempt=$((attempt + 1))
            if ((attempt >= remove_attempts)); then
                log "giving up removing agent $AZP_AGENT_NAME after $attempt attempts; remove it in the pool's settings"
                return 1
            fi
        fi
        log "removing agent $AZP_AGENT_NAME failed (a job may still run); retrying in ${retry_seconds}s"
        sleep "$retry_seconds"
    done
    log "removed agent $AZP_AGENT_NAME"
}

never() { false; }

register() {
    : "${AZP_URL:?AZP_URL (the organisation URL) is required}"
    : "${AZP_POOL:?AZP_POOL (the agent pool name) is required}"
    need_token_file
    if [[ "$AZP_TEMPLATE_AGENT" != true ]]; then
        [[ -d "${AZP_HANDOVER_DIR:-}" ]] || die "set AZP_HANDOVER_DIR to the directory the agent's container reads"
        [[ -d "${AZP_REGISTRATION_DIR:-}" ]] || die "set AZP_REGISTRATION_DIR to the directory deregister reads"
        # A restarted pod keeps its volumes: nothing a job left there is followed.
        find "$AZP_HANDOVER_DIR" -mindepth 1 -delete
    fi
    download_agent

    log "registering agent $AZP_AGENT_NAME in pool $AZP_POOL"
    VSTS_AGENT_INPUT_TOKEN="$(read_token)" ./config.sh --unattended \
        --url "$AZP_URL" --auth PAT --pool "$AZP_POOL" --agent "$AZP_AGENT_NAME" \
        --work "$AZP_WORK" --replace --acceptTeeEula
    if [[ "$AZP_TEMPLATE_AGENT" == true ]]; then
        log "template agent $AZP_AGENT_NAME registered; it stays offline"
        return
    fi
    # From here on a failure removes the registration: nobody would run it.
    trap 'log "handing over failed"; remove_registration .agent never || true' EXIT
    # Without OAuth (old servers) config.sh stores the PAT itself as the
    # agent's credentials: that must not reach the agent's container.
    [[ "$(jq -r '.scheme' .credentials 2>/dev/null)" == OAuth ]] ||
        die "$AZP_URL gave the agent no credentials of its own (no OAuth in .credentials); it would run with the PAT"
    cp .agent "$AZP_REGISTRATION_DIR/.agent"
    local file
    for file in "${config_files[@]}"; do
        if [[ -e "$file" ]]; then
            install -m 0600 "$file" "$AZP_HANDOVER_DIR/$file"
        fi
    done
    trap - EXIT
    log "handed agent $AZP_AGENT_NAME over to its container (its own credentials, no PAT)"
}

agent_pid=""

# shellcheck disable=SC2317 # called from the traps
agent_running() {
    [[ -n "$agent_pid" ]] && kill -0 "$agent_pid" 2>/dev/null
}

# shellcheck disable=SC2317 # called from the traps
# Asks deregister to remove the registration and waits until it has (Azure
# DevOps refuses while a job runs, so the job finishes first) or the agent has
# stopped; then stops the agent.
stop_agent() {
    trap '' INT TERM
    if agent_running; then
        log "asking for agent $AZP_AGENT_NAME's removal; the agent stops once it is removed"
        mkdir -p "$AZP_HANDOVER_DIR/stop-requested"
        while agent_running && [[ ! -e "$AZP_HANDOVER_DIR/removed" ]]; do
            sleep 0.2
        done
        kill -TERM "$agent_pid" 2>/dev/null || true
        wait "$agent_pid" 2>/dev/null || true
    fi
    exit "$1"
}

run() {
    if [[ -n "${AZP_TOKEN_FILE:-}${AZP_TOKEN:-}" ]]; then
        die "the agent's container must not get the PAT (AZP_TOKEN_FILE or AZP_TOKEN is set): register and deregister hold it"
    fi
    [[ -d "${AZP_HANDOVER_DIR:-}" ]] || die "set AZP_HANDOVER_DIR to the directory register hands the agent over in"
    if [[ ! -x ./run.sh ]]; then
        [[ -f "$AZP_HANDOVER_DIR/agent.tar.gz" ]] ||
            die "no agent in $AZP_HOME and no agent package in $AZP_HANDOVER_DIR"
        unpack_agent "$AZP_HANDOVER_DIR/agent.tar.gz"
    fi
    local file
    for file in .agent .credentials .credentials_rsaparams; do
        [[ -s "$AZP_HANDOVER_DIR/$file" ]] ||
            die "no registration in $AZP_HANDOVER_DIR ($file is missing): start.sh register runs first"
    done
    for file in "${config_files[@]}"; do
        if [[ -e "$AZP_HANDOVER_DIR/$file" ]]; then
            install -m 0600 "$AZP_HANDOVER_DIR/$file" "$file"
        fi
    done

    # The job's environment becomes agent capabilities: keep ours out of it.
    export VSO_AGENT_IGNORE="AZP_URL,AZP_POOL,AZP_WORK,AZP_HOME,AZP_AGENT_NAME,AZP_TEMPLATE_AGENT,AZP_AGENT_PACKAGE_URL,AZP_AGENT_PLATFORM,AZP_HANDOVER_DIR,AZP_BUILD_NAMESPACE${VSO_AGENT_IGNORE:+,$VSO_AGENT_IGNORE}"
    if [[ "$(id -u)" == 0 ]]; then
        export AGENT_ALLOW_RUNASROOT=1
    fi
    trap 'stop_agent 130' INT
    trap 'stop_agent 143' TERM
    log "starting agent $AZP_AGENT_NAME${*:+ with $*}"
    ./run.sh "$@" &
    agent_pid=$!
    local status=0
    wait "$agent_pid" || status=$?
    agent_pid=""
    exit "$status"
}

stopping=false

# shellcheck disable=SC2317 # called from the traps
# After the agent's container has ended (the kubelet then stops this sidecar),
# nothing runs jobs any more.
agent_may_run() { [[ "$stopping" != true ]]; }

deregister() {
    : "${AZP_URL:?AZP_URL (the organisation URL) is required}"
    need_token_file
    [[ -d "${AZP_HANDOVER_DIR:-}" ]] || die "set AZP_HANDOVER_DIR to the directory the agent asks to stop in"
    [[ -d "${AZP_REGISTRATION_DIR:-}" ]] || die "set AZP_REGISTRATION_DIR to the directory register records in"
    trap 'stopping=true' INT TERM
    # Only the presence of stop-requested is read from the agent's directory;
    # what to remove, and where, comes from register's record and AZP_URL.
    while agent_may_run && [[ ! -e "$AZP_HANDOVER_DIR/stop-requested" ]]; do
        sleep 1 &
        wait $! || true
    done
    local settings="$AZP_REGISTRATION_DIR/.agent"
    if [[ -s "$settings" ]]; then
        remove_registration "$settings" agent_may_run || exit 1
        rm -f "$settings"
    else
        log "no registration to remove"
    fi
    # A directory: creating it follows no link a job may have put there.
    mkdir "$AZP_HANDOVER_DIR/removed" 2>/dev/null || true
    # A native sidecar runs until the kubelet stops it.
    while agent_may_run; do
        sleep 1 &
        wait $! || true
    done
}

"$role" "$@"
