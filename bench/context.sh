#!/usr/bin/env bash
# Benchmark of KanikoBuild's context packing and upload (issue 5, acceptance 8).
#
# Generates a build context of about 1 GiB in a temp dir (tens of thousands of small
# source-like text files, some small random "assets", a few large random and large text
# files), starts moto's S3 on loopback, then times, side by side on a warm page cache,
# pack AND upload to S3:
#   azp-kube    azp-kube context --upload s3://bench/azp/   (KanikoBuild@1's own code path)
#   seed        tar -czvf ctx.tar.gz . && aws s3 cp ctx.tar.gz s3://bench/  (the stage we replace)
#   pigz        tar -c . | pigz -p 2 | aws s3 cp - s3://bench/pigz.tar.gz
# and, for the compression alone, `azp-kube context --output` and `tar -czf`.
# It prints wall time, CPU time (user+sys), peak RSS and archive size for each. (A rerun
# uploads again: KanikoBuild reuses nothing in the bucket.)
# Peak RSS for a pipeline is that of its largest process (GNU time's rusage).
#
# Usage: bench/context.sh   (BENCH_CONTEXT_MIB=1024, AZP_KUBE=target/release/azp-kube;
#                            needs `bash scripts/setup.sh` for moto and the AWS CLI)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${AZP_KUBE:-$repo/target/release/azp-kube}
size_mib=${BENCH_CONTEXT_MIB:-1024}

if [[ ! -x $bin ]]; then
    (cd "$repo" && cargo build --release -p azp-kube)
fi
if ! command -v pigz >/dev/null; then
    apt-get install -y pigz >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/azp-kube-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
ctx=$work/context
out=$work/out
mkdir -p "$ctx" "$out"

venv=${AZP_KUBE_CACHE:-$repo/.cache}/venv
[[ -x $venv/bin/moto_server && -x $venv/bin/aws ]] || bash "$repo/scripts/setup.sh"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null; rm -rf "$work"' EXIT
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_EC2_METADATA_DISABLED=true
aws=$venv/bin/aws
for _ in $(seq 100); do "$aws" s3 mb s3://bench >/dev/null 2>&1 && break; sleep 0.1; done

# object_size KEY: bytes of an uploaded object.
object_size() {
    "$aws" s3api head-object --bucket bench --key "$1" --query ContentLength --output text
}

generate_context() {
    python3 - "$ctx" "$size_mib" <<'PY'
import os, random, sys

root, total = sys.argv[1], int(sys.argv[2]) << 20
rng = random.Random(5)

# Real text as the compressible corpus: C headers and docs (about how source compresses).
corpus = bytearray()
for base in ("/usr/include", "/usr/share/doc", "/usr/lib/python3"):
    for dirpath, _, names in sorted(os.walk(base)):
        for name in sorted(names):
            if name.endswith((".gz", ".pyc", ".so", ".png")):
                continue
            try:
                with open(os.path.join(dirpath, name), "rb") as f:
                    corpus += f.read(1 << 20)
            except OSError:
                pass
        if len(corpus) > 48 << 20:
            break
if len(corpus) < 1 << 20:
    words = b"context layer digest registry pipeline kaniko build image push cache".split()
    corpus = bytearray(b" ".join(rng.choice(words) + str(i).encode() for i in range(4 << 20)))
corpus = bytes(corpus)

def text(n):
    parts, have = [], 0
    while have < n:
        k = min(n - have, rng.randint(4 << 10, 256 << 10))
        off = rng.randrange(0, len(corpus) - k) if len(corpus) > k else 0
        parts.append(corpus[off:off + k])
        have += len(parts[-1])
    return b"".join(parts)[:n]

def write(rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

write("Dockerfile", b"FROM scratch\nCOPY . /app\n")
budget = {"small_text": total * 25 // 100, "small_random": total * 3 // 100,
          "large_random": total * 45 // 100, "large_text": total * 27 // 100}
n = used = 0
while used < budget["small_text"]:
    size = rng.randint(512, 16 << 10)
    ext = rng.choice([".c", ".h", ".py", ".md", ".json", ".ts"])
    write(f"src/pkg{n // 2000:02d}/mod{n // 100 % 20:02d}/file{n:05d}{ext}", text(size))
    n, used = n + 1, used + size
small_files = n
used = 0
while used < budget["small_random"]:
    size = rng.randint(8 << 10, 64 << 10)
    write(f"assets/img{n:05d}.png", os.urandom(size))
    n, used = n + 1, used + size
for i in range(4):
    write(f"models/weights-{i}.bin", os.urandom(budget["large_random"] // 4))
for i, name in enumerate(["logs/build.log", "data/fixtures.csv", "data/dump.sql"]):
    write(name, text(budget["large_text"] // 3))
print(f"generated {n + 8} files ({small_files} small text files) in {root}", file=sys.stderr)
PY
}

# measure NAME SIZE_COMMAND COMMAND...: runs COMMAND under GNU time, records one table
# row; SIZE_COMMAND prints the archive's size afterwards.
rows=()
measure() {
    local name=$1 size_command=$2
    shift 2
    /usr/bin/time -v -o "$work/$name.time" "$@"
    local wall user sys rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$work/$name.time")
    user=$(awk -F': ' '/User time/ {print $2}' "$work/$name.time")
    sys=$(awk -F': ' '/System time/ {print $2}' "$work/$name.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
    rows+=("$name $wall $user $sys $rss $(eval "$size_command")")
}

echo "generating a ${size_mib} MiB context in $ctx ..." >&2
generate_context
du -sh --apparent-size "$ctx" >&2
tar -cf - -C "$ctx" . >/dev/null # warm the page cache for every contender alike

# Pack and upload.
measure azp-kube "object_size \$(sed -n 1s,s3://bench/,,p $out/azp.key)" \
    bash -c '"$1" context --context "$2" --upload s3://bench/azp/ --s3-endpoint "$3" >"$4"' \
    _ "$bin" "$ctx" "$AWS_ENDPOINT_URL" "$out/azp.key"
measure seed "object_size seed.tar.gz" \
    bash -c 'tar -czvf "$1" -C "$2" . >/dev/null && "$3" s3 cp --only-show-errors "$1" s3://bench/seed.tar.gz' \
    _ "$out/seed.tar.gz" "$ctx" "$aws"
measure pigz "object_size pigz.tar.gz" \
    bash -c 'tar -c -C "$1" . | pigz -p 2 | "$2" s3 cp --only-show-errors - s3://bench/pigz.tar.gz' _ "$ctx" "$aws"
# Compression alone.
measure azp-pack "stat -c %s $out/azp.tar.gz" "$bin" context --context "$ctx" --output "$out/azp.tar.gz"
measure seed-pack "stat -c %s $out/seed2.tar.gz" bash -c 'tar -czf "$1" -C "$2" .' _ "$out/seed2.tar.gz" "$ctx"

# The archives hold the same files.
gzip -t "$out/azp.tar.gz"
azp_entries=$(tar -tzf "$out/azp.tar.gz" | grep -vc '/$')
seed_entries=$(tar -tzf "$out/seed.tar.gz" | grep -vc '/$')
[[ $azp_entries == "$seed_entries" ]] || echo "entry count differs: azp-kube $azp_entries, tar $seed_entries" >&2

seed_size=$(object_size seed.tar.gz)
printf '\n%-10s %8s %8s %12s %12s %10s\n' packer "wall s" "cpu s" "peak RSS MiB" "archive MiB" "vs seed"
for row in "${rows[@]}"; do
    read -r name wall user sys rss size <<<"$row"
    awk -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v z="$size" -v b="$seed_size" \
        'BEGIN {printf "%-10s %8.2f %8.2f %12.1f %12.1f %+9.1f%%\n", n, w, u + s, r / 1024, z / 1048576, (z / b - 1) * 100}'
done
echo "(context: $(du -sb "$ctx" | cut -f1) bytes, $(find "$ctx" -type f | wc -l) files, $(nproc) cores)"
