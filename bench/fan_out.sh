#!/usr/bin/env bash
# MulticlusterHelm@1 fan-out benchmark, in the test world: one target, then
# five targets in five accounts (five API servers, five EKS entries in moto)
# at once, side by side; prints the median wall time of each, their ratio,
# and the peak RSS of the azp-kube process.
#
#   bash bench/fan_out.sh [ROUNDS]      (default 5; needs bash scripts/setup.sh)
# Measures MulticlusterHelm's release binary that extension/package.sh builds when
# it exists (AZP_KUBE_BENCH_BINARY overrides), else the test build (slower, and said so).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
release="${CARGO_TARGET_DIR:-$repo/target}/task-binaries/multicluster-helm/azp-kube"
if [[ -z "${AZP_KUBE_BENCH_BINARY:-}" && -x "$release" ]]; then
    export AZP_KUBE_BENCH_BINARY="$release"
fi
FAN_OUT_BENCH_ROUNDS="${1:-5}" cargo test --test helm fan_out_benchmark -- --ignored --nocapture 2>&1 \
    | grep -E "^fan-out benchmark|^  [0-9] target|^  binary|panicked|FAILED" || true
