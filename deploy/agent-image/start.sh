#!/usr/bin/env bash
# Starts one Azure Pipelines agent in a pod of the azure-agent chart.
#
#   start.sh                          a long-running agent (Deployment mode)
#   start.sh --once                   takes one job, then exits (ScaledJob mode)
#   AZP_TEMPLATE_AGENT=true start.sh  registers the offline template agent and exits
#
# Arguments are passed on to the agent's run.sh.
#
# Environment:
#   AZP_URL          organisation URL (required)
#   AZP_POOL         pool name (required)
#   AZP_TOKEN_FILE   file holding the PAT (the chart mounts its Secret there);
#                    AZP_TOKEN is accepted for local runs and moved into a private file
#   AZP_AGENT_NAME   agent name (default: the host name, i.e. the pod name)
#   AZP_WORK         work directory (default: _work)
#   AZP_HOME         where the agent lives (default: the current directory)
#   AZP_AGENT_PACKAGE_URL     agent package to download; default: ask the organisation
#   AZP_AGENT_PLATFORM        package platform (default from uname -m: linux-x64, linux-arm64)
#   AZP_REMOVE_RETRY_SECONDS  pause between attempts to remove the registration (30)
#   AZP_REMOVE_ATTEMPTS       attempts once the agent has stopped (5)
#
# The PAT never appears on a command line, in the agent's environment or in the
# output: config.sh gets it as VSTS_AGENT_INPUT_TOKEN in its own environment
# only (the agent reads --token from there), curl gets it on stdin.
set -euo pipefail

log() { printf 'start.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

: "${AZP_URL:?AZP_URL (the organisation URL) is required}"
: "${AZP_POOL:?AZP_POOL (the agent pool name) is required}"
AZP_HOME="${AZP_HOME:-$PWD}"
AZP_WORK="${AZP_WORK:-_work}"
AZP_AGENT_NAME="${AZP_AGENT_NAME:-$(hostname)}"
AZP_TEMPLATE_AGENT="${AZP_TEMPLATE_AGENT:-false}"
retry_seconds="${AZP_REMOVE_RETRY_SECONDS:-30}"
remove_attempts="${AZP_REMOVE_ATTEMPTS:-5}"

mkdir -p "$AZP_HOME"
cd "$AZP_HOME"

if [[ -z "${AZP_TOKEN_FILE:-}" ]]; then
    [[ -n "${AZP_TOKEN:-}" ]] || die "set AZP_TOKEN_FILE (a file holding the PAT)"
    AZP_TOKEN_FILE="$AZP_HOME/.token"
    (
        umask 077
        printf '%s' "$AZP_TOKEN" >"$AZP_TOKEN_FILE"
    )
fi
unset AZP_TOKEN
[[ -r "$AZP_TOKEN_FILE" ]] || die "cannot read the token file $AZP_TOKEN_FILE"
[[ -s "$AZP_TOKEN_FILE" ]] || die "the token file $AZP_TOKEN_FILE is empty"

# The job's environment becomes agent capabilities: keep ours out of it.
export VSO_AGENT_IGNORE="AZP_URL,AZP_POOL,AZP_TOKEN,AZP_TOKEN_FILE,AZP_WORK,AZP_HOME,AZP_AGENT_NAME,AZP_TEMPLATE_AGENT,AZP_AGENT_PACKAGE_URL,AZP_AGENT_PLATFORM,AZP_REMOVE_RETRY_SECONDS,AZP_REMOVE_ATTEMPTS${VSO_AGENT_IGNORE:+,$VSO_AGENT_IGNORE}"
if [[ "$(id -u)" == 0 ]]; then
    export AGENT_ALLOW_RUNASROOT=1
fi

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

download_agent() {
    if [[ -x ./config.sh && -x ./run.sh ]]; then
        log "using the agent in $AZP_HOME"
        return
    fi
    local url
    url="$(package_url)"
    log "downloading the agent from $url"
    curl --fail --silent --show-error --location "$url" | tar -xz -C "$AZP_HOME"
    [[ -x ./config.sh ]] || die "the agent package has no config.sh"
    if [[ -x ./env.sh ]]; then
        ./env.sh
    fi
}

configured=false
agent_pid=""

configure() {
    log "registering agent $AZP_AGENT_NAME in pool $AZP_POOL"
    VSTS_AGENT_INPUT_TOKEN="$(read_token)" ./config.sh --unattended \
        --url "$AZP_URL" --auth PAT --pool "$AZP_POOL" --agent "$AZP_AGENT_NAME" \
        --work "$AZP_WORK" --replace --acceptTeeEula
    configured=true
}

# shellcheck disable=SC2317 # called from the traps
agent_running() {
    [[ -n "$agent_pid" ]] && kill -0 "$agent_pid" 2>/dev/null
}

# shellcheck disable=SC2317 # called from the traps
# Removes this agent's registration (never the template's). Azure DevOps refuses
# while the agent still runs a job, so retry as long as it runs, then a few times.
remove_registration() {
    local attempt=0
    until VSTS_AGENT_INPUT_TOKEN="$(read_token)" ./config.sh remove --unattended --auth PAT; do
        if ! agent_running; then
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

# shellcheck disable=SC2317 # called from the traps
cleanup() {
    trap '' INT TERM
    if [[ "$configured" != true || "$AZP_TEMPLATE_AGENT" == true ]]; then
        return 0
    fi
    configured=false
    remove_registration || true
    if agent_running; then
        kill -TERM "$agent_pid" 2>/dev/null || true
        wait "$agent_pid" 2>/dev/null || true
    fi
}

# shellcheck disable=SC2317 # called from the traps
on_signal() {
    cleanup
    exit "$1"
}

trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

download_agent
configure

if [[ "$AZP_TEMPLATE_AGENT" == true ]]; then
    log "template agent $AZP_AGENT_NAME registered; it stays offline"
    exit 0
fi

log "starting the agent${*:+ with $*}"
./run.sh "$@" &
agent_pid=$!
status=0
wait "$agent_pid" || status=$?
agent_pid=""
exit "$status"
