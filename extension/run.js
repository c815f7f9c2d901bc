// run.js: the launcher that the Azure Pipelines agent runs for every azp-kube task.
//
// Why it exists: the agent can only start a task through a handler named in
// task.json, and on Linux and macOS the only handlers left are the Node ones
// (Process and PowerShell are dropped there). So each task's Node20_1/Node24
// handler points at this file, and this file starts the native `azp-kube`
// binary that does the real work. Packaging copies this one file into every
// task folder, next to its task.json.
//
// Rules (see the agent contract, section 3):
// - Plain Node, no dependencies. Never load azure-pipelines-task-lib: it moves
//   INPUT_*, ENDPOINT_AUTH_*, SECRET_* ... out of process.env.
// - The VSIX does not keep Unix modes, so restore the exec bit before spawning.
// - Packaging ships the binary brotli-compressed (bin/<platform>/azp-kube.br), which
//   makes a job's download of the task a quarter smaller than the zip's deflate. Each
//   step unpacks it into a private folder in the agent's temp directory (not the task
//   folder, which a container job may mount read-only) and removes it at the end; it
//   lives for the whole step, as helm runs it again for EKS tokens.
// - Untouched environment, inherited stdio, argv = [subcommand].
// - SIGINT/SIGTERM (agent cancel and timeout) go to the child; we keep waiting
//   and exit with its code, or 128 + signal number if a signal killed it.
// - No binary for this platform, or a failed spawn: one error issue, then
//   task.complete Failed; exit 0 under the agent (TF_BUILD), else 1.

'use strict';

const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');

// Escape a logging-command message the way the agent unescapes it.
function escapeData(text) {
    return String(text).replace(/%/g, '%AZP25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function fail(message) {
    const data = escapeData(message);
    process.stdout.write(`##vso[task.logissue type=error]${data}\n`);
    process.stdout.write(`##vso[task.complete result=Failed;]${data}\n`);
    process.exitCode = process.env.TF_BUILD ? 0 : 1;
}

// Decodes the shipped binary into a new private folder (0700, from mkdtemp) in the
// agent's temp directory and returns the folder. The file is created, never reused.
function unpack(packed, exe) {
    const dir = fs.mkdtempSync(path.join(process.env.AGENT_TEMPDIRECTORY || os.tmpdir(), 'azp-kube-bin-'));
    try {
        const bytes = zlib.brotliDecompressSync(fs.readFileSync(packed));
        fs.writeFileSync(path.join(dir, exe), bytes, { mode: 0o700, flag: 'wx' });
    } catch (err) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw err;
    }
    return dir;
}

// "MulticlusterHelm" -> "multicluster-helm"
function subcommandOf(taskName) {
    return taskName.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2').toLowerCase();
}

function main() {
    let subcommand;
    try {
        const task = JSON.parse(fs.readFileSync(path.join(__dirname, 'task.json'), 'utf8'));
        subcommand = subcommandOf(task.name);
    } catch (err) {
        return fail(`azp-kube launcher: cannot read the task name from ${path.join(__dirname, 'task.json')}: ${err.message}`);
    }

    const platform = `${process.platform}-${process.arch}`;
    const exe = process.platform === 'win32' ? 'azp-kube.exe' : 'azp-kube';
    const shipped = path.join(__dirname, 'bin', platform, exe);
    // Packaging ships bin/linux-x64; linux-arm64, darwin-x64, darwin-arm64 and win32-x64 may follow.
    let binary = shipped;
    let unpacked = null;
    if (!fs.existsSync(shipped)) {
        if (!fs.existsSync(`${shipped}.br`)) {
            return fail(`azp-kube has no binary for this agent's platform ${platform} (looked for ${shipped} and ${shipped}.br)`);
        }
        try {
            unpacked = unpack(`${shipped}.br`, exe);
        } catch (err) {
            return fail(`azp-kube launcher: cannot unpack ${shipped}.br: ${err.message}`);
        }
        binary = path.join(unpacked, exe);
    } else if (process.platform !== 'win32') {
        try {
            fs.chmodSync(binary, 0o755);
        } catch (err) {
            // A read-only task folder may already carry the bit; the spawn will tell.
        }
    }
    const removeUnpacked = () => {
        if (unpacked) {
            fs.rmSync(unpacked, { recursive: true, force: true });
            unpacked = null;
        }
    };

    const child = childProcess.spawn(binary, [subcommand], { env: process.env, stdio: 'inherit' });

    const forward = (signal) => {
        try {
            child.kill(signal);
        } catch (err) {
            // The child is already gone; its exit event follows.
        }
    };
    process.on('SIGINT', () => forward('SIGINT'));
    process.on('SIGTERM', () => forward('SIGTERM'));

    child.on('error', (err) => {
        if (child.pid !== undefined) {
            return; // a failed kill() of a running child; its exit event still decides
        }
        const noexec = unpacked && err.code === 'EACCES' ? "; the agent's temp directory may be mounted noexec" : '';
        fail(`azp-kube launcher: cannot start ${binary} (${platform}): ${err.message}${noexec}`);
        removeUnpacked();
        process.exit();
    });
    child.on('exit', (code, signal) => {
        removeUnpacked();
        if (signal) {
            process.exit(128 + (os.constants.signals[signal] || 0));
        }
        process.exit(code === null ? 1 : code);
    });
}

main();
