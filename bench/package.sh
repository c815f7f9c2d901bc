#!/usr/bin/env bash
# What one job pays for the task package, measured on the last
# `bash extension/package.sh` (its VSIX in dist/ and its staging folder):
#   1. the VSIX and each task's binary, in bytes;
#   2. per task folder, the zip the agent downloads (the agent fetches each task
#      of a job as its own zip, TaskManager.DownloadAsync in azure-pipelines-agent),
#      the time to unzip it, and the time run.js then takes to unpack the brotli-
#      compressed binary for a step (decode and write, as run.js does; medians of N
#      runs, default 9);
#   3. per task, the start of its `azp-kube --version`: the median and the mean of 1000
#      runs, each timed from spawn to exit (python3's posix_spawn and waitpid), in ms.
#
#   bash extension/package.sh && bash bench/package.sh [N]
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-9}"
target="${CARGO_TARGET_DIR:-$repo/target}"
stage="$target/vsix-stage"
vsix="$(ls -t "$repo"/dist/*.vsix 2>/dev/null | head -n 1)"
[[ -n $vsix && -d $stage ]] || { echo "no VSIX or $stage: run bash extension/package.sh first" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
now_ns() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1048576 }'; }

printf 'VSIX            %10d bytes  %s\n' "$(stat -c %s "$vsix")" "$(mb "$(stat -c %s "$vsix")")"
for task in "$stage"/*/*/task.json; do
    folder="$(dirname "$task")"
    name="$(basename "$folder")"
    binary="$folder/bin/linux-x64/azp-kube"
    zip="$work/$name.zip"
    (cd "$folder" && zip -q -r "$zip" .)
    size="$(stat -c %s "$zip")"
    unpack="$(for _ in $(seq "$runs"); do
        rm -rf "$work/out"
        start="$(now_ns)"
        unzip -q "$zip" -d "$work/out"
        echo $((($(now_ns) - start) / 1000000))
    done | median)"
    packed="$binary.br"
    binary="$work/$name-azp-kube"
    decode="$(node -e '
        const fs = require("fs"), zlib = require("zlib"), path = require("path");
        const [packed, out, runs] = process.argv.slice(1);
        const times = [];
        for (let i = 0; i < Number(runs); i++) {
            fs.rmSync(out, { force: true });
            const start = process.hrtime.bigint();
            fs.writeFileSync(out, zlib.brotliDecompressSync(fs.readFileSync(packed)), { mode: 0o700, flag: "wx" });
            times.push(Number(process.hrtime.bigint() - start) / 1e6);
        }
        times.sort((a, b) => a - b);
        console.log(Math.round(times[Math.floor((times.length - 1) / 2)]));
    ' "$packed" "$binary" "$runs")"
    printf '%s\n' "$name"
    printf '  binary        %10d bytes  %s\n' "$(stat -c %s "$binary")" "$(mb "$(stat -c %s "$binary")")"
    printf '  brotli        %10d bytes  %s, unpacked by run.js in %d ms\n' "$(stat -c %s "$packed")" "$(mb "$(stat -c %s "$packed")")" "$decode"
    printf '  zip           %10d bytes  %s, unzips in %d ms\n' "$size" "$(mb "$size")" "$unpack"
    "$binary" --version >/dev/null # warm the page cache: a job's first start comes after the unpack
    python3 - "$binary" <<'EOF2'
import os, statistics, sys, time
binary, runs = sys.argv[1], 1000
devnull = os.open(os.devnull, os.O_WRONLY)
times = []
for _ in range(runs):
    start = time.perf_counter_ns()
    pid = os.posix_spawn(binary, [binary, "--version"], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
    os.waitpid(pid, 0)
    times.append((time.perf_counter_ns() - start) / 1e6)
print(f"  --version     {statistics.median(times):10.2f} ms (median of {runs} runs; mean {statistics.mean(times):.2f} ms)")
EOF2
done
