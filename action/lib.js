'use strict';
// The pure parts of the stptunnel GitHub Action: reading inputs, building the CLI's argv, the runner's file-command
// and workflow-command formats, release archive names, checksum verification and archive extraction. Nothing here
// touches the network, spawns a process or reads process.env directly, so node --test covers it all.
//
// The action has no third-party dependencies on purpose: the CLI does the GitHub-specific work (masks, warnings,
// summary) and this file only needs node's own crypto, zlib and path.

const crypto = require('node:crypto');
const path = require('node:path');
const zlib = require('node:zlib');

const REPO = 'stptunnel/stptunnel';

// getInput reads an input the way the runner passes it: INPUT_<NAME> with spaces as underscores, upper-cased
// (dashes are kept: `stptunnel-path` arrives as INPUT_STPTUNNEL-PATH). The underscore spelling is accepted too,
// because some tools (and testscript's $VAR expansion) cannot name a variable with a dash in it.
function getInput(env, name) {
  const key = 'INPUT_' + name.replace(/ /g, '_').toUpperCase();
  const value = env[key] ?? env[key.replace(/-/g, '_')] ?? '';
  return value.trim();
}

// lines splits a multiline input into its non-empty lines; a line starting with # is a comment.
function lines(value) {
  return value
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

// names splits the `functions` input: one per line, or separated by commas or spaces (function names and ARNs
// contain none of them).
function names(value) {
  return lines(value).flatMap((l) => l.split(/[\s,]+/)).filter((n) => n !== '');
}

// servers splits the `server` input: the bore servers in order of preference, one per line or separated by
// commas. Each is HOST[:CONTROL_PORT], optionally followed by #VARIABLE, the environment variable of the step that
// holds that server's secret.
function servers(value) {
  return lines(value).flatMap((l) => l.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

// secretVariables returns the variables the `server` entries name after # (their servers' secrets).
function secretVariables(inputs) {
  return (inputs.server || []).map((s) => s.split('#')[1]).filter((v) => v !== undefined).map((v) => v.trim());
}

// readInputs returns every input of action.yml, parsed.
function readInputs(env) {
  const get = (name) => getInput(env, name);
  return {
    local: lines(get('local')),
    functions: names(get('functions')),
    prefix: get('prefix'),
    stack: get('stack'),
    map: lines(get('map')),
    server: servers(get('server')),
    tunnelHost: get('tunnel-host'),
    secret: get('secret'),
    region: get('region'),
    vpc: get('vpc'),
    version: get('version'),
    stptunnelPath: get('stptunnel-path'),
  };
}

// flag formats --name=value, so a value that starts with "-" is never read as a flag.
function flag(name, value) {
  return `--${name}=${value}`;
}

// globalArgs are the global flags every step gets.
function globalArgs(inputs) {
  return inputs.region ? [flag('region', inputs.region)] : [];
}

function detectArgs(inputs) {
  const args = ['detect', ...globalArgs(inputs)];
  for (const l of inputs.local) args.push(flag('local', l));
  for (const f of inputs.functions) args.push(flag('function', f));
  if (inputs.prefix) args.push(flag('prefix', inputs.prefix));
  if (inputs.stack) args.push(flag('stack', inputs.stack));
  for (const m of inputs.map) args.push(flag('map', m));
  if (inputs.vpc) args.push(flag('vpc', inputs.vpc));
  if (inputs.tunnelHost) args.push(flag('tunnel-host', inputs.tunnelHost));
  return args;
}

// tunnelOpenArgs: the secret is not here but in the child's environment (BORE_SECRET), so it never shows in a
// process listing.
// Each server is its own --to, in order; a server's own secret stays in the variable its #VARIABLE names.
function tunnelOpenArgs(inputs) {
  const args = ['tunnel', 'open', '--detach', ...globalArgs(inputs)];
  for (const s of inputs.server || []) args.push(flag('to', s));
  if (inputs.tunnelHost) args.push(flag('tunnel-host', inputs.tunnelHost));
  return args;
}

function envPatchArgs(inputs) {
  return ['env', 'patch', ...globalArgs(inputs)];
}

function envRestoreArgs(inputs) {
  return ['env', 'restore', ...globalArgs(inputs)];
}

function tunnelCloseArgs(inputs) {
  return ['tunnel', 'close', ...globalArgs(inputs)];
}

// childEnv is the environment every stptunnel process gets: the job's, the state dir, the bore secret (in the
// environment rather than argv, which any process on the runner can list) and the servers, which detect (it has
// no --to) reads from BORE_SERVER to size the patched variables and to check VPC functions against them.
function childEnv(env, inputs, stateDir) {
  const out = { ...env, STPTUNNEL_STATE_DIR: stateDir };
  if (inputs.secret) out.BORE_SECRET = inputs.secret;
  if (inputs.server && inputs.server.length > 0) out.BORE_SERVER = inputs.server.join(',');
  return out;
}

// secretsToMask returns what must be masked before anything prints: the bore secret, the secrets of the servers
// (the values in env of the variables the `server` entries name after #), and the password of every
// `local` connection string, as written and percent-decoded. The CLI masks what it derives itself; these are masked
// first because they are in the inputs, which the runner may echo.
function secretsToMask(inputs, env = {}) {
  const out = [];
  const add = (v) => {
    if (v && v.length >= 3 && !out.includes(v)) out.push(v); // as the CLI: shorter values would mangle every line
  };
  add(inputs.secret);
  for (const v of secretVariables(inputs)) add(env[v]);
  for (const l of inputs.local) {
    const eq = l.indexOf('=');
    for (const pw of passwords(eq < 0 ? l : l.slice(eq + 1))) {
      add(pw);
      try {
        add(decodeURIComponent(pw));
      } catch {
        // not valid percent-encoding: the raw value is masked already
      }
    }
  }
  return out;
}

// passwords finds the passwords in one connection string: URL userinfo (also JDBC and multi-host URLs), Go MySQL
// DSNs (user:pass@tcp(...)) and password-like keys in queries and key=value DSNs.
function passwords(s) {
  const out = [];
  const url = /^(?:jdbc:)?[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)@/.exec(s);
  const mysql = /^([^:@/]*):(.*)@(?:tcp|unix|udp)\(/.exec(s);
  if (url) {
    const userinfo = url[1];
    const colon = userinfo.indexOf(':');
    if (colon >= 0) out.push(userinfo.slice(colon + 1));
  } else if (mysql) {
    out.push(mysql[2]);
  }
  const kv = /(?:^|[?&;\s])(?:password|passwd|pwd|pass)=([^&;\s]+)/gi;
  for (const m of s.matchAll(kv)) out.push(m[1]);
  return out.filter((p) => p !== '');
}

// escapeData escapes a workflow command's data as the runner expects.
function escapeData(s) {
  return String(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

// command formats a workflow command line: ::add-mask::value, ::error::message.
function command(name, message) {
  return `::${name}::${escapeData(message)}\n`;
}

// fileCommand formats one entry of $GITHUB_OUTPUT or $GITHUB_STATE. The heredoc form works for every value; the
// delimiter is random so that no value can end the entry early and inject another.
function fileCommand(name, value, random = () => crypto.randomUUID()) {
  const v = String(value);
  const delimiter = `ghadelimiter_${random()}`;
  if (name.includes(delimiter) || v.includes(delimiter)) {
    throw new Error(`${name}: the value contains the delimiter ${delimiter}`);
  }
  return `${name}<<${delimiter}\n${v}\n${delimiter}\n`;
}

// tunnelsOutput is the `tunnels` output: resource → public address, as compact JSON.
function tunnelsOutput(document) {
  const out = {};
  for (const t of document.tunnels ?? []) {
    if (t && t.resource) out[t.resource] = t.public ?? '';
  }
  return JSON.stringify(out);
}

// leftPatched names the functions a restore did not finish, from the document `env restore` printed: a restore
// that is partial or failed, or a patch still applied or pending with no restore saying otherwise.
function leftPatched(document) {
  const left = new Set();
  const settled = new Set();
  for (const r of document?.restores ?? []) {
    if (r.state === 'partial' || r.state === 'failed') left.add(r.function);
    else settled.add(r.function);
  }
  for (const p of document?.patches ?? []) {
    if ((p.state === 'applied' || p.state === 'pending') && !settled.has(p.function)) left.add(p.function);
  }
  return [...left].filter(Boolean).sort();
}

// Release archives are named by goreleaser.yaml's name_template: stptunnel_<goos>_<goarch>.tar.gz (.zip on
// Windows). The runner describes itself with runner.os (Linux, macOS, Windows) and runner.arch (X64, ARM64, ...).
const GOOS = { Linux: 'linux', macOS: 'darwin', Windows: 'windows' };
const GOARCH = { X64: 'amd64', ARM64: 'arm64' };

function archiveName(runnerOS, runnerArch) {
  const goos = GOOS[runnerOS];
  const goarch = GOARCH[runnerArch];
  if (!goos || !goarch) {
    throw new Error(
      `no stptunnel release for runner ${runnerOS}/${runnerArch} (releases exist for Linux, macOS and Windows on ` +
        'X64 and ARM64): build it and pass its path in the stptunnel-path input',
    );
  }
  return `stptunnel_${goos}_${goarch}${goos === 'windows' ? '.zip' : '.tar.gz'}`;
}

// runnerPlatform is runner.os and runner.arch, from the runner's environment or, outside a runner, from node.
function runnerPlatform(env, platform = process.platform, arch = process.arch) {
  return {
    os: env.RUNNER_OS || { linux: 'Linux', darwin: 'macOS', win32: 'Windows' }[platform] || platform,
    arch: env.RUNNER_ARCH || { x64: 'X64', arm64: 'ARM64', arm: 'ARM', ia32: 'X86' }[arch] || arch,
  };
}

function binaryName(runnerOS) {
  return runnerOS === 'Windows' ? 'stptunnel.exe' : 'stptunnel';
}

// releaseTag decides which release to download: the version input, else the tag the action was used at
// (GITHUB_ACTION_REF, e.g. v1.2.3), else the latest release. A branch, a SHA or a major tag like v1 names no
// release, so those use the latest one.
function releaseTag(versionInput, actionRef) {
  const exact = /^v\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/;
  if (versionInput && versionInput !== 'latest') {
    const v = versionInput.startsWith('v') ? versionInput : `v${versionInput}`;
    if (!exact.test(v)) throw new Error(`version ${JSON.stringify(versionInput)}: want vX.Y.Z or latest`);
    return v;
  }
  if (!versionInput && exact.test(actionRef ?? '')) return actionRef;
  return 'latest';
}

function releaseURL(tag, file) {
  const base = `https://github.com/${REPO}/releases`;
  return tag === 'latest' ? `${base}/latest/download/${file}` : `${base}/download/${tag}/${file}`;
}

// parseChecksums reads goreleaser's checksums.txt: "<sha256>  <file>" per line.
function parseChecksums(text) {
  const sums = new Map();
  for (const line of text.split(/\r?\n/)) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)\s*$/i.exec(line.trim());
    if (m) sums.set(m[2], m[1].toLowerCase());
  }
  return sums;
}

// verifyChecksum throws unless data's sha256 is the one checksums.txt lists for file.
function verifyChecksum(checksumsText, file, data) {
  const want = parseChecksums(checksumsText).get(file);
  if (!want) throw new Error(`checksums.txt has no entry for ${file}`);
  const got = crypto.createHash('sha256').update(data).digest('hex');
  if (got !== want) throw new Error(`${file}: sha256 is ${got}, checksums.txt says ${want}: refusing to run it`);
  return got;
}

// extractFromTarGz returns the content of the regular file whose base name is member in a .tar.gz.
function extractFromTarGz(data, member) {
  const tar = zlib.gunzipSync(data);
  let longName = null;
  for (let off = 0; off + 512 <= tar.length; ) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start, len) => {
      const s = header.subarray(start, start + len);
      const nul = s.indexOf(0);
      return s.subarray(0, nul < 0 ? len : nul).toString('utf8');
    };
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] || 0x30);
    const prefix = field(257, 6).startsWith('ustar') ? field(345, 155) : '';
    let name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    longName = null;
    const body = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = body.toString('utf8').replace(/\0+$/, '');
    } else if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      if (m) longName = m[1];
    } else if ((type === '0' || type === '\0') && path.posix.basename(name) === member) {
      if (body.length !== size) throw new Error(`${member}: truncated archive`);
      return Buffer.from(body);
    }
  }
  throw new Error(`the archive has no ${member}`);
}

// extractFromZip returns the content of the file whose base name is member in a .zip (stored or deflated).
function extractFromZip(data, member) {
  const eocd = data.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip archive');
  const count = data.readUInt16LE(eocd + 10);
  let off = data.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    if (data.readUInt32LE(off) !== 0x02014b50) throw new Error('bad zip central directory');
    const method = data.readUInt16LE(off + 10);
    const compressed = data.readUInt32LE(off + 20);
    const size = data.readUInt32LE(off + 24);
    const nameLen = data.readUInt16LE(off + 28);
    const extraLen = data.readUInt16LE(off + 30);
    const commentLen = data.readUInt16LE(off + 32);
    const local = data.readUInt32LE(off + 42);
    const name = data.subarray(off + 46, off + 46 + nameLen).toString('utf8');
    off += 46 + nameLen + extraLen + commentLen;
    if (path.posix.basename(name) !== member) continue;
    if (data.readUInt32LE(local) !== 0x04034b50) throw new Error('bad zip local header');
    const start = local + 30 + data.readUInt16LE(local + 26) + data.readUInt16LE(local + 28);
    const raw = data.subarray(start, start + compressed);
    let out;
    if (method === 0) out = Buffer.from(raw);
    else if (method === 8) out = zlib.inflateRawSync(raw);
    else throw new Error(`${member}: unsupported zip compression method ${method}`);
    if (out.length !== size) throw new Error(`${member}: truncated archive`);
    return out;
  }
  throw new Error(`the archive has no ${member}`);
}

function extractBinary(archive, data, member) {
  return archive.endsWith('.zip') ? extractFromZip(data, member) : extractFromTarGz(data, member);
}

module.exports = {
  REPO,
  getInput,
  lines,
  names,
  readInputs,
  detectArgs,
  tunnelOpenArgs,
  envPatchArgs,
  envRestoreArgs,
  tunnelCloseArgs,
  childEnv,
  secretsToMask,
  passwords,
  escapeData,
  command,
  fileCommand,
  tunnelsOutput,
  leftPatched,
  archiveName,
  binaryName,
  runnerPlatform,
  releaseTag,
  releaseURL,
  parseChecksums,
  verifyChecksum,
  extractFromTarGz,
  extractFromZip,
  extractBinary,
};
