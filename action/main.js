'use strict';
// The action's main step: get the stptunnel binary, then run detect | tunnel open --detach | env patch, each fed
// the previous document on stdin, and set the `document` and `tunnels` outputs. The post step (post.js) restores
// and closes what this started, whatever happened here.
//
// Inputs reach the CLI only through argv arrays and the environment of a process spawned without a shell, so no
// input is ever interpreted by a shell.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const lib = require('./lib.js');
const runner = require('./runner.js');

async function main() {
  const env = process.env;
  const inputs = lib.readInputs(env);
  // Before anything prints: the runner may echo inputs, and the CLI may print a URL before it masks it.
  for (const secret of lib.secretsToMask(inputs, env)) runner.issue('add-mask', secret);
  runner.forwardSignals();

  const temp = env.RUNNER_TEMP || os.tmpdir();
  let binary;
  if (inputs.stptunnelPath) {
    binary = runner.resolveBinary(inputs.stptunnelPath);
  } else {
    const tag = lib.releaseTag(inputs.version, env.GITHUB_ACTION_REF);
    const platform = lib.runnerPlatform(env);
    binary = await runner.download(tag, platform.os, platform.arch, path.join(temp, `stptunnel-${tag}`));
  }
  const stateDir = fs.mkdtempSync(path.join(temp, 'stptunnel-state-'));
  runner.appendFileCommand('GITHUB_STATE', 'binary', binary);
  runner.appendFileCommand('GITHUB_STATE', 'state_dir', stateDir);
  runner.log(`Using ${binary}, state in ${stateDir}`);

  const childEnv = lib.childEnv(env, inputs, stateDir);
  const steps = [
    { name: 'detect', args: lib.detectArgs(inputs) },
    // post.js undoes a step once it has started, so the state is saved before the step runs, not after.
    { name: 'tunnel open', args: lib.tunnelOpenArgs(inputs), state: 'tunnel' },
    { name: 'env patch', args: lib.envPatchArgs(inputs), state: 'patch' },
  ];
  let document = '';
  for (const step of steps) {
    if (step.state) runner.appendFileCommand('GITHUB_STATE', step.state, 'started');
    const res = await runner.runCLI(binary, step.args, { input: document, env: childEnv });
    if (res.signal) {
      runner.issue('error', `stptunnel ${step.name} was killed by ${res.signal}`);
      return 1;
    }
    if (res.code !== 0) {
      // The CLI has already reported the cause (an ::error:: annotation under GitHub Actions).
      runner.log(`stptunnel ${step.name} exited with ${res.code}`);
      return 1;
    }
    document = res.stdout;
  }

  let parsed;
  try {
    parsed = JSON.parse(document);
  } catch (err) {
    runner.issue('error', `stptunnel env patch printed no JSON document: ${err.message}`);
    return 1;
  }
  runner.appendFileCommand('GITHUB_OUTPUT', 'document', document.trim());
  runner.appendFileCommand('GITHUB_OUTPUT', 'tunnels', lib.tunnelsOutput(parsed));
  return 0;
}

runner.runStep(main);
