#!/usr/bin/env bash
# The README's demo: runs examples/azure-pipelines.yml (Build with
# KanikoBuild@1 → Deploy with MulticlusterHelm@1) on this machine against the
# local world (Kubernetes API simulator, moto, a registry, buildah), each step
# started through run.js as the Azure Pipelines agent starts it, and prints
# the log as the Azure DevOps web view shows it.
#
#   bash scripts/demo.sh [--pipeline FILE] [--real] [--no-color] [--var NAME=VALUE]...
#
# On first use it installs what it needs (scripts/setup.sh). With --real no
# world is started: the tasks use your KUBECONFIG and AWS environment.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

bash scripts/setup.sh >&2
cargo build --quiet -p azp-kube -p azp-kube-demo >&2
exec target/debug/azp-kube-demo "$@"
