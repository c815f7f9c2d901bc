#!/usr/bin/env bash
# Installs everything the tests and the demo need, idempotently: a second run
# only checks. Everything lands in ${AZP_KUBE_CACHE:-<repo>/.cache} except
# Debian packages and Node.js modules (extension/node_modules).
#
#   bash scripts/setup.sh
#
# Parts:
#   - system tools (Node.js for the launcher, Python venv support) from Debian;
#   - the test world: moto, the AWS CLI, helm 3 and 4, kubectl (scripts/setup-world.sh);
#   - the agent pool's checks: shellcheck, jq, curl, kubernetes-validate and cfn-lint (pinned)
#     in the venv and the npm package @kubernetes-models/keda (scripts/setup-deploy.sh,
#     after setup-world.sh);
#   - packaging tools: tfx-cli, ziglang and cargo-zigbuild (extension/package.sh installs
#     them on first use).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'setup: %s\n' "$*"; }

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if ((${#missing[@]})); then
    say "installing ${missing[*]} (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bash "$repo/scripts/setup-world.sh"
bash "$repo/scripts/setup-deploy.sh"
say "done"
