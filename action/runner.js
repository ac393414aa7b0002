'use strict';
// The side-effecting parts the action's main and post share: workflow commands, the runner's command files,
// running the CLI (argv array, no shell, the document on stdin) and finding or downloading the binary.

const cp = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib.js');

// issue writes a workflow command. The runner reads them from stdout.
function issue(name, message) {
  process.stdout.write(lib.command(name, message));
}

function log(message) {
  process.stdout.write(`${message}\n`);
}

// appendFileCommand adds name=value to the file the runner named in envVar ($GITHUB_OUTPUT, $GITHUB_STATE).
function appendFileCommand(envVar, name, value) {
  const file = process.env[envVar];
  if (!file) throw new Error(`${envVar} is not set: is this running as a GitHub Actions step?`);
  fs.appendFileSync(file, lib.fileCommand(name, value), { encoding: 'utf8', mode: 0o600 });
}

let current = null; // the CLI process running now, so a cancelled job's signal reaches it

// forwardSignals passes SIGINT/SIGTERM (a cancelled job) to the running CLI, which then stops cleanly and keeps
// its journal; the action exits once the CLI has.
function forwardSignals() {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      if (current) current.kill(sig);
      else process.exit(1);
    });
  }
}

// How long to wait for the CLI's stdout to close after it exited. `tunnel open --detach` leaves a background
// process behind; should it keep the pipe open, the document (written before exit) is already read by then.
const CLOSE_GRACE_MS = 2000;

// runCLI runs the binary with args, writes input on its stdin and returns its exit code, the signal that ended it
// and its stdout. stderr goes straight to the log, where the runner reads the CLI's own workflow commands.
function runCLI(binary, args, { input = '', env = process.env } = {}) {
  return new Promise((resolve, reject) => {
    const child = cp.spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'], env, windowsHide: true });
    current = child;
    const chunks = [];
    let exit = null;
    let timer = null;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      current = null;
      resolve({ code: exit.code, signal: exit.signal, stdout: Buffer.concat(chunks).toString('utf8') });
    };
    child.on('error', (err) => {
      current = null;
      reject(new Error(`running ${binary}: ${err.message}`));
    });
    child.stdout.on('data', (c) => chunks.push(c));
    child.stdin.on('error', () => {}); // the CLI may exit without reading: its exit code says why
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      timer = setTimeout(() => {
        child.stdout.destroy();
        finish();
      }, CLOSE_GRACE_MS);
    });
    child.on('close', (code, signal) => {
      exit = exit ?? { code, signal };
      finish();
    });
    child.stdin.end(input);
  });
}

// resolveBinary turns the stptunnel-path input into an absolute path: a path as given, or a command name looked
// up on PATH (stptunnel-path: stptunnel after `go install`).
function resolveBinary(value, env = process.env) {
  const candidates = [];
  if (value.includes('/') || value.includes('\\')) {
    candidates.push(path.resolve(value));
  } else {
    const exts = process.platform === 'win32' ? ['', ...(env.PATHEXT || '.EXE').split(';')] : [''];
    for (const dir of (env.PATH || '').split(path.delimiter).filter(Boolean)) {
      for (const ext of exts) candidates.push(path.join(dir, value + ext));
    }
  }
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // try the next one
    }
  }
  throw new Error(`stptunnel-path ${JSON.stringify(value)}: no executable file there or on PATH`);
}

async function fetchBuffer(url) {
  let last;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const res = await fetch(url, { redirect: 'follow' });
      if (res.ok) return Buffer.from(await res.arrayBuffer());
      last = new Error(`GET ${url}: ${res.status} ${res.statusText}`);
      if (res.status === 404) break; // no such release or asset: retrying will not make it appear
    } catch (err) {
      last = new Error(`GET ${url}: ${err.message}`);
    }
    if (attempt < 3) await new Promise((r) => setTimeout(r, 2000 * attempt));
  }
  throw last;
}

// download fetches the release archive for this runner, verifies it against the release's checksums.txt and
// extracts the binary into dir. It returns the binary's path.
async function download(tag, runnerOS, runnerArch, dir) {
  const archive = lib.archiveName(runnerOS, runnerArch);
  log(`Downloading stptunnel ${tag} (${archive}) from github.com/${lib.REPO}`);
  const [checksums, data] = await Promise.all([
    fetchBuffer(lib.releaseURL(tag, 'checksums.txt')),
    fetchBuffer(lib.releaseURL(tag, archive)),
  ]);
  const sum = lib.verifyChecksum(checksums.toString('utf8'), archive, data);
  log(`sha256 ${sum} matches checksums.txt`);
  const name = lib.binaryName(runnerOS);
  const binary = path.join(dir, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(binary, lib.extractBinary(archive, data, name), { mode: 0o755 });
  return binary;
}

// runStep runs the step's async function and exits with the code it returns; an exception is an ::error::.
function runStep(fn) {
  fn().then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      issue('error', err.message);
      process.exitCode = 1;
    },
  );
}

module.exports = {
  runStep, issue, log, appendFileCommand, forwardSignals, runCLI, resolveBinary, download };
