#!/usr/bin/env bash
# Build the azp-kube Azure DevOps extension: dist/azp-kube-<version>.vsix.
#
#   bash extension/package.sh [--publisher NAME] [--profile release|dev]
#
# Runs from any directory. Steps:
#   1. tools: a Python venv at ${AZP_KUBE_CACHE:-<repo>/.cache}/venv with ziglang and
#      cargo-zigbuild (PyPI), and tfx-cli from extension/package-lock.json (npm ci);
#   2. one release binary per task, built with that task's Cargo feature alone (named as
#      the task's command: kaniko-build, multicluster-helm), so that a job downloads only
#      its task's code; linked by cargo-zigbuild against glibc 2.17 so that it runs on old
#      agent images and inside job containers; checked with objdump;
#   3. a staging copy in <target>/vsix-stage laid out as the package: manifest, overview,
#      images, and <Name>/<Name>V<n>/ per task folder with task.json, icon.png, run.js and
#      its task's binary as bin/linux-x64/azp-kube.br, brotli at its best ratio (a quarter
#      smaller than the zip's deflate; run.js unpacks it for each step);
#   4. tfx extension create, failing on any "warning:" line (tfx exits 0 on bad task.json);
#   5. the VSIX path and size; fails at 8 MiB, a guard against size regressions (the
#      release VSIX is about 7.0 MiB; Azure DevOps Server's default upload cap is 25 MB).
#
# Options and environment:
#   --publisher NAME / AZP_KUBE_PUBLISHER   marketplace publisher (default: the manifest's)
#   --profile dev                           quick local build: plain `cargo build` (debug,
#                                           both tasks in one binary), stripped copies shipped
#                                           as they are, host glibc; glibc and size limits only
#                                           warn. Never for a VSIX you publish.
#   AZP_KUBE_CACHE                          where the venv lives (default <repo>/.cache)
#   AZP_KUBE_BINARY=PATH                    package this prebuilt binary (with every task's
#                                           feature) in every task instead of building
#   AZP_KUBE_ALLOW_HOST_GLIBC=1             if cargo-zigbuild fails, fall back to a plain
#                                           `cargo build --release` (needs the host's glibc)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${AZP_KUBE_CACHE:-$repo/.cache}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
publisher=${AZP_KUBE_PUBLISHER:-}
profile=release
glibc_max=2.17
size_cap=$((8 * 1024 * 1024))
ziglang_pin=ziglang==0.17.1
zigbuild_pin=cargo-zigbuild==0.24.1

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf '\n!!! WARNING: %s\n\n' "$*" >&2; }
die() { printf 'package.sh: error: %s\n' "$*" >&2; exit 1; }

while (($#)); do
    case $1 in
        --publisher) publisher=${2:?--publisher needs a value}; shift 2 ;;
        --publisher=*) publisher=${1#*=}; shift ;;
        --profile) profile=${2:?--profile needs a value}; shift 2 ;;
        --profile=*) profile=${1#*=}; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $profile == release || $profile == dev ]] || die "--profile must be release or dev, not $profile"

started=$SECONDS

# --- 1. tools -------------------------------------------------------------------------
ensure_venv() {
    local venv=$cache/venv
    [[ -x $venv/bin/python ]] || { say "creating $venv"; python3 -m venv "$venv"; }
    # The venv may be shared with other scripts: only add what is missing.
    if ! "$venv/bin/python" -c 'import importlib.metadata as m; m.version("ziglang"); m.version("cargo-zigbuild")' 2>/dev/null \
        || [[ ! -x $venv/bin/cargo-zigbuild ]]; then
        say "installing $ziglang_pin $zigbuild_pin into $venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$ziglang_pin" "$zigbuild_pin"
    fi
    # cargo-zigbuild finds zig as `python3 -m ziglang`, so the venv goes first on PATH.
    export PATH=$venv/bin:$PATH
}

ensure_tfx() {
    local stamp=$here/node_modules/.azp-kube-lock
    if [[ -x $here/node_modules/.bin/tfx ]] && cmp -s "$here/package-lock.json" "$stamp"; then
        return
    fi
    say "npm ci in extension/ (tfx-cli)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$here/package-lock.json" "$stamp"
}

# --- 2. the binary --------------------------------------------------------------------
# Prints the highest GLIBC_x.y symbol version the binary needs (empty if none).
glibc_needed() {
    { objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' || true; } | sed 's/^GLIBC_//' | sort -Vu | tail -n 1
}

# The command (and Cargo feature) of a task: "MulticlusterHelm" -> "multicluster-helm", as run.js.
# shellcheck disable=SC2016 # the quoted text is JavaScript, not shell
task_command() {
    node -p 'process.argv[1].replace(/([a-z0-9])([A-Z])/g, "$1-$2").replace(/([A-Z]+)([A-Z][a-z])/g, "$1-$2").toLowerCase()' "$1"
}

# Builds the binary for the task with `command` and sets built_binary to a copy of it
# (each build overwrites Cargo's output path).
build_binary() {
    local command=$1 bin
    cd "$repo"
    if [[ -n ${AZP_KUBE_BINARY:-} ]]; then
        say "using the prebuilt binary $AZP_KUBE_BINARY (AZP_KUBE_BINARY) for $command"
        built_binary=$AZP_KUBE_BINARY
        [[ -f $built_binary ]] || die "no binary at $built_binary"
        return
    elif [[ $profile == dev ]]; then
        say "cargo build (debug, --profile dev, every task)"
        cargo build --bin azp-kube
        bin=$target_dir/debug/azp-kube
    else
        ensure_venv
        local features=(--no-default-features --features "$command")
        say "cargo zigbuild --release --target x86_64-unknown-linux-gnu.$glibc_max --bin azp-kube ${features[*]}"
        if cargo zigbuild --release --target "x86_64-unknown-linux-gnu.$glibc_max" --bin azp-kube "${features[@]}"; then
            bin=$target_dir/x86_64-unknown-linux-gnu/release/azp-kube
        elif [[ ${AZP_KUBE_ALLOW_HOST_GLIBC:-} == 1 ]]; then
            warn "cargo-zigbuild failed; AZP_KUBE_ALLOW_HOST_GLIBC=1, so building with plain cargo.
!!! The binary will need this machine's glibc and may not start on older agents or in job containers."
            cargo build --release --bin azp-kube "${features[@]}"
            bin=$target_dir/release/azp-kube
        else
            die "cargo zigbuild failed (see above); set AZP_KUBE_ALLOW_HOST_GLIBC=1 to fall back to plain cargo"
        fi
    fi
    [[ -f $bin ]] || die "no binary at $bin"
    built_binary=$target_dir/task-binaries/$command/azp-kube
    mkdir -p "${built_binary%/*}"
    cp "$bin" "$built_binary"
}

check_glibc() {
    local needed
    needed=$(glibc_needed "$1")
    if [[ -n $needed ]] && [[ $(printf '%s\n%s\n' "$needed" "$glibc_max" | sort -V | tail -n 1) != "$glibc_max" ]]; then
        objdump -T "$1" | grep -F "GLIBC_$needed" | head -n 5 >&2 || true
        if [[ $profile == dev || ${AZP_KUBE_ALLOW_HOST_GLIBC:-} == 1 ]]; then
            warn "the binary needs GLIBC_$needed, newer than $glibc_max"
        else
            die "the binary needs GLIBC_$needed, newer than $glibc_max (symbols above)"
        fi
    fi
    min_glibc=${needed:-none}
    say "binary needs glibc ${min_glibc} or later"
}

# Brotli, quality 11 with a 16 MiB window (the whole binary): measured on the two task
# binaries, a quarter smaller than deflate at its best (gzip -9), decoded in about
# 50 ms by Node's zlib, which every agent's Node handler has.
compress_binary() {
    node -e '
        const fs = require("fs"), zlib = require("zlib");
        const bytes = fs.readFileSync(process.argv[1]);
        const params = {
            [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
            [zlib.constants.BROTLI_PARAM_LGWIN]: 24,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
        };
        fs.writeFileSync(process.argv[2], zlib.brotliCompressSync(bytes, { params }));
    ' "$1" "$2"
}

# --- 3. staging -----------------------------------------------------------------------
# The stage has the package's layout: a task's folder tasks/<Name>V<n> becomes <Name>/<Name>V<n>,
# since the contribution's properties.name (= the task's name) must be a folder of the package
# holding the versions one level down, and tfx checks that against --root.
stage_extension() {
    local stage=$1 src name dir
    rm -rf "$stage"
    mkdir -p "$stage/extension"
    cp "$repo/vss-extension.json" "$stage/"
    cp "$here/overview.md" "$stage/extension/"
    cp -R "$here/images" "$stage/extension/images"
    for src in "${task_folders[@]}"; do
        name=$(node -p 'require(process.argv[1]).name' "$src/task.json")
        dir=$stage/$name/$(basename "$src")
        mkdir -p "$dir/bin/linux-x64"
        cp "$src/task.json" "$dir/"
        if [[ -f $src/icon.png ]]; then cp "$src/icon.png" "$dir/"; else cp "$here/images/icon.png" "$dir/"; fi
        cp "$here/run.js" "$dir/"
        if [[ $profile == dev ]]; then
            # Release binaries are stripped by Cargo.toml's profile; dev ones are not.
            cp "${task_binary[$name]}" "$dir/bin/linux-x64/azp-kube"
            strip "$dir/bin/linux-x64/azp-kube"
            chmod 0755 "$dir/bin/linux-x64/azp-kube"
        else
            say "brotli: $name's binary"
            compress_binary "${task_binary[$name]}" "$dir/bin/linux-x64/azp-kube.br"
        fi
    done
}

# --- 4. tfx ---------------------------------------------------------------------------
create_vsix() {
    local stage=$1 out=$2 log
    local args=(extension create --root "$stage" --manifest-globs vss-extension.json
        --output-path "$out" --no-prompt)
    [[ -n $publisher ]] && args+=(--publisher "$publisher")
    log=$(mktemp)
    rm -f "$out"
    say "tfx ${args[*]}"
    local rc=0
    "$here/node_modules/.bin/tfx" "${args[@]}" >"$log" 2>&1 || rc=$?
    sed -i 's/\x1b\[[0-9;]*m//g' "$log" # tfx colours its output even into a pipe
    cat "$log" >&2
    if ((rc != 0)); then
        rm -f "$log"
        die "tfx extension create failed (exit $rc)"
    fi
    # tfx reports task.json problems as warnings and still exits 0.
    if grep -qi 'warning:' "$log"; then
        rm -f "$log" "$out"
        die "tfx printed warnings (above); fix them"
    fi
    rm -f "$log"
    [[ -f $out ]] || die "tfx wrote no $out"
}

# --- main -----------------------------------------------------------------------------
ensure_tfx
task_folders=()
declare -A task_binary=()
for src in "$repo"/tasks/*/; do
    src=${src%/}
    [[ -f $src/task.json ]] || continue
    task_folders+=("$src")
    name=$(node -p 'require(process.argv[1]).name' "$src/task.json")
    build_binary "$(task_command "$name")"
    check_glibc "$built_binary"
    task_binary[$name]=$built_binary
    say "$name: $(stat -c %s "$built_binary") bytes"
done

version=$(node -p 'require(process.argv[1]).version' "$repo/vss-extension.json")
stage=$target_dir/vsix-stage
stage_extension "$stage"

mkdir -p "$repo/dist"
vsix=$repo/dist/azp-kube-$version.vsix
create_vsix "$stage" "$vsix"

bytes=$(stat -c %s "$vsix")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
echo "$vsix"
echo "size: $bytes bytes ($mb MB), binary needs glibc $min_glibc, profile $profile, $((SECONDS - started)) s"
if ((bytes >= size_cap)); then
    cap_mb=$(awk -v b="$size_cap" 'BEGIN { printf "%.2f", b / 1048576 }')
    if [[ $profile == dev ]]; then
        warn "the VSIX is $mb MB, over the release cap of $cap_mb MB"
    else
        die "the VSIX is $mb MB, over the cap of $cap_mb MB: every job downloads a task's copy of the binary (see the README's benchmarks)"
    fi
fi
