#!/usr/bin/env bash
# The project's test command (README "Tests"; .ci/run runs exactly this):
# set up, check formatting and lints, package the extension once, then run
# every test of the workspace.
#
#   bash scripts/test.sh [extra cargo test arguments]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Each task ships a binary built with its feature alone (extension/package.sh).
for task in kaniko-build multicluster-helm; do
    cargo clippy --locked --lib --bins --no-default-features --features "$task" -- -D warnings
done
# The VSIX test unpacks and runs what this builds (one release binary per task, glibc 2.17).
bash extension/package.sh
cargo test --workspace "$@"
