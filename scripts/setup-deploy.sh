#!/usr/bin/env bash
# Installs what the deploy tests need besides the test world: shellcheck and skopeo (apt),
# for deploy/agent-image/start.sh; into the world's venv (scripts/setup-world.sh
# makes it) kubernetes-validate, which checks the chart's core objects (--strict);
# and into $CACHE/keda-models the npm package @kubernetes-models/keda, which
# checks the structure and types of its KEDA objects (tests/deploy/keda_models_check.mjs);
# and cfn-lint into the venv, which checks the CloudFormation templates of deploy/aws/.
# Idempotent: a second run only checks.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${AZP_KUBE_CACHE:-$REPO/.cache}"
VENV="$CACHE/venv"
KEDA_MODELS="$CACHE/keda-models"
KEDA_MODELS_VERSION=2.0.0

say() { printf 'setup-deploy: %s\n' "$*"; }

if [[ -x "$VENV/bin/kubernetes-validate" ]] && "$VENV/bin/python" -c 'import yaml' 2>/dev/null; then
    say "kubernetes-validate present in $VENV"
else
    say "installing kubernetes-validate and PyYAML into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0' 'PyYAML>=6'
fi

CFN_LINT_VERSION=1.58.0
if [[ "$("$VENV/bin/cfn-lint" --version 2>/dev/null)" == "cfn-lint $CFN_LINT_VERSION" ]]; then
    say "cfn-lint $CFN_LINT_VERSION present in $VENV"
else
    say "installing cfn-lint $CFN_LINT_VERSION into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
fi

installed_models="$KEDA_MODELS/node_modules/@kubernetes-models/keda/package.json"
if [[ -f "$installed_models" ]] && grep -q "\"version\": \"$KEDA_MODELS_VERSION\"" "$installed_models"; then
    say "@kubernetes-models/keda $KEDA_MODELS_VERSION present in $KEDA_MODELS"
else
    say "installing @kubernetes-models/keda $KEDA_MODELS_VERSION into $KEDA_MODELS (npm)"
    mkdir -p "$KEDA_MODELS"
    # Its package.json asks for Node 22; it runs on Debian's Node 20 (the tests use it there).
    npm install --prefix "$KEDA_MODELS" --no-save --no-audit --no-fund --loglevel=error --engine-strict=false \
        "@kubernetes-models/keda@$KEDA_MODELS_VERSION"
fi

if command -v shellcheck >/dev/null 2>&1; then
    say "shellcheck $(shellcheck --version | sed -n 's/^version: //p') present"
else
    say "installing shellcheck (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
fi
# skopeo: the getting-started guide copies the base image with it (tests/deploy/guide.rs).
for tool in jq curl tar skopeo; do
    command -v "$tool" >/dev/null 2>&1 || {
        say "installing $tool (apt)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
    }
done
