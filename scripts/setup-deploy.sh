#!/usr/bin/env bash
# Installs what the deploy tests need besides the test world: shellcheck (apt),
# for deploy/agent-image/start.sh. Idempotent: a second run only checks.
set -euo pipefail

say() { printf 'setup-deploy: %s\n' "$*"; }

if command -v shellcheck >/dev/null 2>&1; then
    say "shellcheck $(shellcheck --version | sed -n 's/^version: //p') present"
else
    say "installing shellcheck (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
fi
for tool in jq curl tar; do
    command -v "$tool" >/dev/null 2>&1 || {
        say "installing $tool (apt)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
    }
done
