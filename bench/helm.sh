#!/usr/bin/env bash
# MulticlusterHelm@1 benchmark, against the test world (moto + API simulator):
#   1. start to "kubeconfig ready and checked" (credentials, AssumeRole,
#      DescribeCluster, kubeconfig, token, GET /version): `azp-kube
#      multicluster-helm` (it stops at the preflight: the simulator has no
#      access entry for the role yet) vs `aws sts assume-role` + `aws eks
#      update-kubeconfig` + `kubectl version`;
#   2. one token: `azp-kube eks-token` vs `aws eks get-token`, without and
#      with a role (as helm pays on every token refresh).
# Prints the median of N runs (default 9) of each, in milliseconds.
#
#   cargo build --release -p azp-kube -p azp-kube-world && bash bench/helm.sh [N]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-9}"
target="${CARGO_TARGET_DIR:-$repo/target}"
profile="${PROFILE:-release}"
azp="$target/$profile/azp-kube"
worldbin="$target/$profile/azp-kube-world"
cache="${AZP_KUBE_CACHE:-$repo/.cache}"
aws="$cache/venv/bin/aws"
kubectl="$cache/bin/kubectl"
role="arn:aws:iam::222222222222:role/deployer"
for tool in "$azp" "$worldbin" "$aws" "$kubectl"; do
    [[ -x "$tool" ]] || { echo "missing $tool (cargo build --release -p azp-kube -p azp-kube-world; bash scripts/setup.sh)" >&2; exit 2; }
done

work="$(mktemp -d)"
world_pid=""
cleanup() { [[ -n "$world_pid" ]] && kill "$world_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$worldbin" --dir "$work/world" >"$work/world.log" 2>&1 &
world_pid=$!
for _ in $(seq 200); do grep -q ready "$work/world.log" && break; sleep 0.1; done
grep -q ready "$work/world.log" || { cat "$work/world.log" >&2; exit 1; }
endpoint="$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["sts"])' "$work/world/world.json")"

export AWS_ENDPOINT_URL="$endpoint" AWS_ENDPOINT_URL_STS="$endpoint" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
export HOME="$work/home" AGENT_TEMPDIRECTORY="$work/agent"
mkdir -p "$HOME" "$AGENT_TEMPDIRECTORY"

# The cluster in the role's account, created with the role's credentials.
creds="$("$aws" sts assume-role --role-arn "$role" --role-session-name setup --output json)"
read -r key secret token < <(python3 -c 'import json,sys;c=json.load(sys.stdin)["Credentials"];print(c["AccessKeyId"],c["SecretAccessKey"],c["SessionToken"])' <<<"$creds")
AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_SESSION_TOKEN="$token" \
    "$aws" eks create-cluster --name world --role-arn arn:aws:iam::222222222222:role/eks \
    --resources-vpc-config subnetIds=subnet-1 >/dev/null

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# time_it NAME COMMAND...: the median wall time of $runs runs.
time_it() {
    local name="$1"; shift
    local samples=()
    for _ in $(seq "$runs"); do
        local t0; t0=$(now_ms)
        "$@" >/dev/null 2>&1 || true
        samples+=($(( $(now_ms) - t0 )))
    done
    local m; m=$(printf '%s\n' "${samples[@]}" | median)
    printf '%-58s %6s ms\n' "$name" "$m"
    eval "result_${name//[^a-zA-Z0-9]/_}=$m"
}

ours_kubeconfig() {
    "$azp" multicluster-helm --cluster-name world --region-name us-east-1 --assume-role-arn "$role" \
        --chart-type FilePath --chart-path "$repo/tests/world/testdata/chart" --release-name web
}
cli_kubeconfig() {
    local c k s t kc="$work/cli-kubeconfig"
    c="$("$aws" sts assume-role --role-arn "$role" --role-session-name bench --output json)"
    read -r k s t < <(python3 -c 'import json,sys;c=json.load(sys.stdin)["Credentials"];print(c["AccessKeyId"],c["SecretAccessKey"],c["SessionToken"])' <<<"$c")
    AWS_ACCESS_KEY_ID="$k" AWS_SECRET_ACCESS_KEY="$s" AWS_SESSION_TOKEN="$t" \
        "$aws" eks update-kubeconfig --name world --kubeconfig "$kc" >/dev/null
    AWS_ACCESS_KEY_ID="$k" AWS_SECRET_ACCESS_KEY="$s" AWS_SESSION_TOKEN="$t" \
        "$kubectl" --kubeconfig "$kc" version --request-timeout 10s
}

# Sanity: ours reaches the preflight (and is refused there, for now).
{ ours_kubeconfig || true; } | grep -q "not allowed into cluster world" || { echo "azp-kube did not reach the preflight:" >&2; ours_kubeconfig >&2; exit 1; }

tokcache="$work/token-cache"; mkdir -p "$tokcache"
"$azp" eks-token --cluster world --region us-east-1 --role-arn "$role" --cache-dir "$tokcache" >/dev/null

echo "median of $runs runs, against moto + the API simulator"
time_it "azp-kube: start to kubeconfig ready (+ /version)" ours_kubeconfig
time_it "aws sts assume-role + aws eks update-kubeconfig + kubectl version" cli_kubeconfig
time_it "azp-kube eks-token (no role)" "$azp" eks-token --cluster world --region us-east-1
time_it "aws eks get-token (no role)" "$aws" eks get-token --cluster-name world
time_it "azp-kube eks-token --role-arn (cached session)" "$azp" eks-token --cluster world --region us-east-1 --role-arn "$role" --cache-dir "$tokcache"
time_it "azp-kube eks-token --role-arn (no cache)" "$azp" eks-token --cluster world --region us-east-1 --role-arn "$role"
time_it "aws eks get-token --role-arn" "$aws" eks get-token --cluster-name world --role-arn "$role"
