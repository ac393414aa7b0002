'use strict';
// Unit tests of the action's pure parts: node --test action/ (also run by go test ./pkg/cli, TestActionUnit).

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { test } = require('node:test');
const zlib = require('node:zlib');
const lib = require('./lib.js');

test('inputs are read as the runner names them, dash or underscore', () => {
  const env = {
    'INPUT_STPTUNNEL-PATH': ' /opt/stptunnel \n',
    INPUT_LOCAL: 'db=postgres://localhost:5432/app\n\n# a comment\n  cache=redis://localhost  \n',
    INPUT_FUNCTIONS: 'api, worker\narn:aws:lambda:eu-west-1:123456789012:function:jobs',
    INPUT_MAP: 'DATABASE_URL=db\r\n',
  };
  const inputs = lib.readInputs(env);
  assert.equal(inputs.stptunnelPath, '/opt/stptunnel');
  assert.deepEqual(inputs.local, ['db=postgres://localhost:5432/app', 'cache=redis://localhost']);
  assert.deepEqual(inputs.functions, ['api', 'worker', 'arn:aws:lambda:eu-west-1:123456789012:function:jobs']);
  assert.deepEqual(inputs.map, ['DATABASE_URL=db']);
  assert.equal(inputs.prefix, '');
  assert.equal(lib.getInput({ INPUT_STPTUNNEL_PATH: 'stptunnel' }, 'stptunnel-path'), 'stptunnel');
  assert.equal(lib.getInput({ 'INPUT_STPTUNNEL-PATH': 'a', INPUT_STPTUNNEL_PATH: 'b' }, 'stptunnel-path'), 'a');
});

test('argv carries every input as --flag=value and never the secret', () => {
  const inputs = lib.readInputs({
    INPUT_LOCAL: 'db=postgres://u:pw@localhost/app\nq=localhost:5672',
    INPUT_FUNCTIONS: 'api',
    INPUT_PREFIX: '-starts-with-dash',
    INPUT_STACK: 'my stack; rm -rf /',
    INPUT_MAP: 'DATABASE_URL=db',
    INPUT_VPC: 'allow',
    INPUT_REGION: 'eu-west-1',
    INPUT_SERVER: '127.0.0.1:7835',
    'INPUT_TUNNEL-HOST': '10.0.1.5',
    INPUT_SECRET: 's3cret-value',
  });
  assert.deepEqual(lib.detectArgs(inputs), [
    'detect',
    '--region=eu-west-1',
    '--local=db=postgres://u:pw@localhost/app',
    '--local=q=localhost:5672',
    '--function=api',
    '--prefix=-starts-with-dash',
    '--stack=my stack; rm -rf /',
    '--map=DATABASE_URL=db',
    '--vpc=allow',
    '--tunnel-host=10.0.1.5',
  ]);
  assert.deepEqual(lib.tunnelOpenArgs(inputs), [
    'tunnel',
    'open',
    '--detach',
    '--region=eu-west-1',
    '--to=127.0.0.1:7835',
    '--tunnel-host=10.0.1.5',
  ]);
  assert.deepEqual(lib.envPatchArgs(inputs), ['env', 'patch', '--region=eu-west-1']);
  assert.deepEqual(lib.envRestoreArgs(inputs), ['env', 'restore', '--region=eu-west-1']);
  assert.deepEqual(lib.tunnelCloseArgs(inputs), ['tunnel', 'close', '--region=eu-west-1']);
  for (const args of [lib.detectArgs(inputs), lib.tunnelOpenArgs(inputs), lib.envPatchArgs(inputs)]) {
    assert.ok(!args.some((a) => a.includes('s3cret')), args.join(' '));
  }
  assert.deepEqual(lib.detectArgs(lib.readInputs({})), ['detect']);
});

test('server lists the bore servers in order, one --to each, and their secrets stay in the environment', () => {
  const inputs = lib.readInputs({
    INPUT_SERVER: 'eu.example.com#BORE_SECRET_EU, us.example.com:7000#BORE_SECRET_US\nbore.pub\n',
    INPUT_LOCAL: 'db=localhost:5432',
  });
  assert.deepEqual(inputs.server, ['eu.example.com#BORE_SECRET_EU', 'us.example.com:7000#BORE_SECRET_US', 'bore.pub']);
  assert.deepEqual(lib.tunnelOpenArgs(inputs), [
    'tunnel',
    'open',
    '--detach',
    '--to=eu.example.com#BORE_SECRET_EU',
    '--to=us.example.com:7000#BORE_SECRET_US',
    '--to=bore.pub',
  ]);
  const env = { BORE_SECRET_EU: 'eu-s3cret', BORE_SECRET_US: 'us-s3cret', OTHER: 'not-a-secret' };
  assert.deepEqual(lib.secretsToMask(inputs, env), ['eu-s3cret', 'us-s3cret']);
  assert.deepEqual(lib.secretsToMask(inputs), [], 'variables the step does not set mask nothing');
  const child = lib.childEnv(env, inputs, '/tmp/s');
  assert.equal(child.BORE_SECRET_EU, 'eu-s3cret', 'the CLI reads each server secret from the environment');
  assert.equal(child.BORE_SERVER, 'eu.example.com#BORE_SECRET_EU,us.example.com:7000#BORE_SECRET_US,bore.pub', 'detect reads the servers there');
  assert.ok(!lib.tunnelOpenArgs(inputs).some((a) => a.includes('s3cret')));
  assert.deepEqual(lib.tunnelOpenArgs(lib.readInputs({})), ['tunnel', 'open', '--detach']);
});

test('the child environment carries the state dir, the secret and the servers', () => {
  const env = { PATH: '/bin', BORE_SECRET: 'from-the-job' };
  assert.deepEqual(lib.childEnv(env, { secret: 'input-secret' }, '/tmp/s'), { PATH: '/bin', BORE_SECRET: 'input-secret', STPTUNNEL_STATE_DIR: '/tmp/s' });
  assert.deepEqual(lib.childEnv(env, { secret: '' }, '/tmp/s'), { PATH: '/bin', BORE_SECRET: 'from-the-job', STPTUNNEL_STATE_DIR: '/tmp/s' });
  assert.deepEqual(lib.childEnv(env, { secret: '', server: ['bore.example.com:7835'] }, '/tmp/s'), {
    PATH: '/bin',
    BORE_SECRET: 'from-the-job',
    BORE_SERVER: 'bore.example.com:7835',
    STPTUNNEL_STATE_DIR: '/tmp/s',
  });
  assert.equal(env.STPTUNNEL_STATE_DIR, undefined);
});

test('secrets to mask: the bore secret and every password in local, raw and decoded', () => {
  const cases = [
    ['db=postgres://app:pa%40ss@localhost:5432/app', ['pa%40ss', 'pa@ss']],
    ['db:postgres=postgresql://app:secret1@localhost:5432,localhost:5433/app', ['secret1']],
    ['db=jdbc:postgresql://app:jdbcpw@localhost/app', ['jdbcpw']],
    ['m=app:mysqlpw@tcp(localhost:3306)/app', ['mysqlpw']],
    ['r=redis://:redispw@localhost:6379/0', ['redispw']],
    ['q=postgres://localhost/app?user=app&password=querypw', ['querypw']],
    ['db=postgres://app@localhost/app', []],
    ['db=localhost:5432', []],
    ['db=postgres://app:pw@localhost/app', []], // too short to mask, as the CLI
    ['bad=postgres://app:%zz%@localhost/app', ['%zz%']],
  ];
  for (const [local, want] of cases) {
    assert.deepEqual(lib.secretsToMask({ secret: '', local: [local] }), want, local);
  }
  assert.deepEqual(lib.secretsToMask({ secret: 'bore-secret', local: [] }), ['bore-secret']);
});

test('workflow commands escape their data', () => {
  assert.equal(lib.command('add-mask', 'a%b\r\nc'), '::add-mask::a%25b%0D%0Ac\n');
  assert.equal(lib.command('error', 'plain'), '::error::plain\n');
});

test('file commands use a random heredoc delimiter', () => {
  assert.equal(lib.fileCommand('document', '{\n "a": 1\n}', () => 'X'), 'document<<ghadelimiter_X\n{\n "a": 1\n}\nghadelimiter_X\n');
  assert.throws(() => lib.fileCommand('x', 'evil\nghadelimiter_X\ninjected=1', () => 'X'), /delimiter/);
  assert.match(lib.fileCommand('tunnels', '{}'), /^tunnels<<ghadelimiter_[0-9a-f-]{36}\n\{\}\nghadelimiter_[0-9a-f-]{36}\n$/);
});

test('tunnels output maps each resource to its public address', () => {
  const document = {
    tunnels: [
      { resource: 'postgresDb', local: 'localhost:5432', public: 'bore.pub:54321' },
      { resource: 'cache', public: '127.0.0.1:40001' },
    ],
  };
  assert.equal(lib.tunnelsOutput(document), '{"postgresDb":"bore.pub:54321","cache":"127.0.0.1:40001"}');
  assert.equal(lib.tunnelsOutput({}), '{}');
});

test('functions left patched are named from the restore document', () => {
  assert.deepEqual(
    lib.leftPatched({
      patches: [
        { function: 'api', state: 'applied' },
        { function: 'jobs', state: 'applied' },
        { function: 'web', state: 'restored' },
        { function: 'half', state: 'pending' },
      ],
      restores: [
        { function: 'api', state: 'restored' },
        { function: 'jobs', state: 'partial' },
        { function: 'gone', state: 'failed' },
      ],
    }),
    ['gone', 'half', 'jobs'],
  );
  assert.deepEqual(lib.leftPatched({}), []);
  assert.deepEqual(lib.leftPatched(null), []);
});

test('release archive names follow goreleaser.yaml', () => {
  const cases = [
    ['Linux', 'X64', 'stptunnel_linux_amd64.tar.gz'],
    ['Linux', 'ARM64', 'stptunnel_linux_arm64.tar.gz'],
    ['macOS', 'ARM64', 'stptunnel_darwin_arm64.tar.gz'],
    ['macOS', 'X64', 'stptunnel_darwin_amd64.tar.gz'],
    ['Windows', 'X64', 'stptunnel_windows_amd64.zip'],
    ['Windows', 'ARM64', 'stptunnel_windows_arm64.zip'],
  ];
  for (const [os, arch, want] of cases) assert.equal(lib.archiveName(os, arch), want);
  assert.throws(() => lib.archiveName('Linux', 'ARM'), /no stptunnel release for runner Linux\/ARM.*stptunnel-path/);
  assert.throws(() => lib.archiveName('FreeBSD', 'X64'), /no stptunnel release/);
  assert.equal(lib.binaryName('Windows'), 'stptunnel.exe');
  assert.equal(lib.binaryName('Linux'), 'stptunnel');
  assert.deepEqual(lib.runnerPlatform({}, 'linux', 'x64'), { os: 'Linux', arch: 'X64' });
  assert.deepEqual(lib.runnerPlatform({ RUNNER_OS: 'macOS', RUNNER_ARCH: 'ARM64' }, 'linux', 'x64'), { os: 'macOS', arch: 'ARM64' });
});

test('release tag: the version input, else the action ref when it is a release, else latest', () => {
  const cases = [
    ['v1.2.3', 'v9.9.9', 'v1.2.3'],
    ['1.2.3', '', 'v1.2.3'],
    ['latest', 'v9.9.9', 'latest'],
    ['', 'v2.0.1', 'v2.0.1'],
    ['', 'v2.0.1-rc.1', 'v2.0.1-rc.1'],
    ['', 'v2', 'latest'],
    ['', 'main', 'latest'],
    ['', '0123456789abcdef0123456789abcdef01234567', 'latest'],
    ['', undefined, 'latest'],
  ];
  for (const [input, ref, want] of cases) assert.equal(lib.releaseTag(input, ref), want, `${input} ${ref}`);
  assert.throws(() => lib.releaseTag('main', ''), /want vX\.Y\.Z or latest/);
  assert.equal(
    lib.releaseURL('v1.2.3', 'checksums.txt'),
    'https://github.com/stptunnel/stptunnel/releases/download/v1.2.3/checksums.txt',
  );
  assert.equal(
    lib.releaseURL('latest', 'stptunnel_linux_amd64.tar.gz'),
    'https://github.com/stptunnel/stptunnel/releases/latest/download/stptunnel_linux_amd64.tar.gz',
  );
});

test('checksums: the archive must match its line in checksums.txt', () => {
  const data = Buffer.from('the archive');
  const sum = crypto.createHash('sha256').update(data).digest('hex');
  const other = 'a'.repeat(64);
  const checksums = `${other}  stptunnel_darwin_arm64.tar.gz\n${sum}  stptunnel_linux_amd64.tar.gz\n`;
  assert.equal(lib.parseChecksums(checksums).size, 2);
  assert.equal(lib.verifyChecksum(checksums, 'stptunnel_linux_amd64.tar.gz', data), sum);
  assert.equal(lib.verifyChecksum(checksums.toUpperCase().replace(/STPTUNNEL_(\w+)\.TAR\.GZ/g, (m) => m.toLowerCase()), 'stptunnel_linux_amd64.tar.gz', data), sum);
  assert.throws(() => lib.verifyChecksum(checksums, 'stptunnel_darwin_arm64.tar.gz', data), /sha256 is .* checksums\.txt says a{64}: refusing/);
  assert.throws(() => lib.verifyChecksum(checksums, 'stptunnel_windows_amd64.zip', data), /no entry for stptunnel_windows_amd64\.zip/);
  assert.throws(() => lib.verifyChecksum(checksums, 'stptunnel_linux_amd64.tar.gz', Buffer.from('tampered')), /refusing/);
});

// tarEntry writes one ustar entry, as Go's archive/tar (goreleaser) does for short names.
function tarEntry(name, body, type = '0') {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write('0000755\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(body.length.toString(8).padStart(11, '0') + '\0', 124);
  header.write('00000000000\0', 136);
  header.write(type, 156);
  header.write('ustar\0' + '00', 257);
  header.write('        ', 148);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, body, pad]);
}

test('extracts the binary from a .tar.gz, whatever comes before it', () => {
  const binary = crypto.randomBytes(3000);
  const long = 'd/'.repeat(60) + 'stptunnel';
  const tar = Buffer.concat([
    tarEntry('README.md', Buffer.from('# readme\n')),
    tarEntry('docs/', Buffer.alloc(0), '5'),
    tarEntry('././@LongLink', Buffer.from(long + '\0'), 'L'),
    tarEntry(long.slice(0, 99), Buffer.from('long-named copy')),
    tarEntry('stptunnel', binary),
    Buffer.alloc(1024),
  ]);
  // The GNU long name names the entry after it: that one is found first, by its full name's base name.
  assert.equal(lib.extractFromTarGz(zlib.gzipSync(tar), 'stptunnel').toString(), 'long-named copy');
  const plain = Buffer.concat([tarEntry('README.md', Buffer.from('x')), tarEntry('stptunnel', binary), Buffer.alloc(1024)]);
  assert.deepEqual(lib.extractBinary('stptunnel_linux_amd64.tar.gz', zlib.gzipSync(plain), 'stptunnel'), binary);
  assert.throws(() => lib.extractFromTarGz(zlib.gzipSync(plain), 'stptunnel.exe'), /has no stptunnel\.exe/);
  assert.throws(() => lib.extractFromTarGz(Buffer.from('not gzip'), 'stptunnel'), /header/);
});

// zipOf writes a zip archive, as Go's archive/zip (goreleaser) does: deflate, or store for method 0.
function zipOf(entries) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const { name, body, method = 8 } of entries) {
    const data = method === 8 ? zlib.deflateRawSync(body) : body;
    const n = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(zlib.crc32(body), 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(body.length, 22);
    local.writeUInt16LE(n.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(zlib.crc32(body), 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(body.length, 24);
    central.writeUInt16LE(n.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, data);
    centrals.push(central, n);
    offset += local.length + n.length + data.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

test('extracts the binary from a .zip, deflated or stored', () => {
  const binary = crypto.randomBytes(5000);
  const zip = zipOf([
    { name: 'README.md', body: Buffer.from('# readme\n') },
    { name: 'stptunnel.exe', body: binary },
  ]);
  assert.deepEqual(lib.extractBinary('stptunnel_windows_amd64.zip', zip, 'stptunnel.exe'), binary);
  assert.deepEqual(lib.extractFromZip(zipOf([{ name: 'stptunnel.exe', body: binary, method: 0 }]), 'stptunnel.exe'), binary);
  assert.throws(() => lib.extractFromZip(zip, 'stptunnel'), /has no stptunnel$/);
  assert.throws(() => lib.extractFromZip(Buffer.from('not a zip'), 'stptunnel.exe'), /not a zip/);
});
