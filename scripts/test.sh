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
# The VSIX test unpacks and runs what this builds (release binary, glibc 2.17).
bash extension/package.sh
cargo test --workspace "$@"
