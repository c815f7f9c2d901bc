#!/usr/bin/env bash
# Benchmark of context packing (issue 5, acceptance 8), compression part.
#
# Generates a build context of about 1 GiB in a temp dir (tens of thousands of small
# source-like text files, some small random "assets", a few large random and large text
# files), then times, side by side on a warm page cache:
#   azp-kube    azp-kube context --output FILE      (the KanikoBuild@1 packer)
#   seed        tar -czvf FILE .                     (the hand-written stage we replace)
#   pigz        tar -c . | pigz -p 2 > FILE
# and prints wall time, CPU time (user+sys), peak RSS and archive size for each.
# Peak RSS for a pipeline is that of its largest process (GNU time's rusage).
#
# The upload half of the benchmark plugs in at upload_archive() below.
#
# Usage: bench/context.sh            (BENCH_CONTEXT_MIB=1024, AZP_KUBE=target/release/azp-kube)
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

# upload_archive NAME FILE: the S3 side of the benchmark (the lead's part). It runs after
# each packer, untimed for now; when it is filled in, time the pack+upload pipelines instead
# (azp-kube streams into the multipart upload, the seed runs `aws s3 cp`, pigz pipes into
# `aws s3 cp -`).
upload_archive() {
    : "$1" "$2"
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

# measure NAME ARCHIVE COMMAND...: runs COMMAND under GNU time, records one table row.
rows=()
measure() {
    local name=$1 archive=$2
    shift 2
    /usr/bin/time -v -o "$work/$name.time" "$@"
    local wall user sys rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$work/$name.time")
    user=$(awk -F': ' '/User time/ {print $2}' "$work/$name.time")
    sys=$(awk -F': ' '/System time/ {print $2}' "$work/$name.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
    upload_archive "$name" "$archive"
    rows+=("$name $wall $user $sys $rss $(stat -c %s "$archive")")
}

echo "generating a ${size_mib} MiB context in $ctx ..." >&2
generate_context
du -sh --apparent-size "$ctx" >&2
tar -cf - -C "$ctx" . >/dev/null # warm the page cache for every contender alike

measure azp-kube "$out/azp.tar.gz" "$bin" context --context "$ctx" --output "$out/azp.tar.gz"
measure seed "$out/seed.tar.gz" bash -c 'tar -czvf "$1" -C "$2" . >/dev/null' _ "$out/seed.tar.gz" "$ctx"
measure pigz "$out/pigz.tar.gz" bash -c 'tar -c -C "$2" . | pigz -p 2 >"$1"' _ "$out/pigz.tar.gz" "$ctx"

# The archives hold the same files.
gzip -t "$out/azp.tar.gz"
azp_entries=$(tar -tzf "$out/azp.tar.gz" | grep -vc '/$')
seed_entries=$(tar -tzf "$out/seed.tar.gz" | grep -vc '/$')
[[ $azp_entries == "$seed_entries" ]] || echo "entry count differs: azp-kube $azp_entries, tar $seed_entries" >&2

seed_size=$(stat -c %s "$out/seed.tar.gz")
printf '\n%-10s %8s %8s %12s %12s %10s\n' packer "wall s" "cpu s" "peak RSS MiB" "archive MiB" "vs seed"
for row in "${rows[@]}"; do
    read -r name wall user sys rss size <<<"$row"
    awk -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v z="$size" -v b="$seed_size" \
        'BEGIN {printf "%-10s %8.2f %8.2f %12.1f %12.1f %+9.1f%%\n", n, w, u + s, r / 1024, z / 1048576, (z / b - 1) * 100}'
done
echo "(context: $(du -sb "$ctx" | cut -f1) bytes, $(find "$ctx" -type f | wc -l) files, $(nproc) cores)"
