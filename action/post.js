'use strict';
// The action's post step, run even when the job failed or was cancelled (post-if: always()): put every Lambda
// environment variable back (`stptunnel env restore`, from the journal in the state dir) and close the tunnels
// (`stptunnel tunnel close`). Each is done only if main.js got as far as starting it. A function left patched
// (exit 3) fails the step with an ::error:: naming it.

const lib = require('./lib.js');
const runner = require('./runner.js');

async function post() {
  const env = process.env;
  const binary = env.STATE_binary;
  const stateDir = env.STATE_state_dir;
  if (!binary || !stateDir) {
    runner.log('stptunnel did not start in this job: nothing to restore or close');
    return 0;
  }
  const inputs = lib.readInputs(env);
  for (const secret of lib.secretsToMask(inputs, env)) runner.issue('add-mask', secret);
  runner.forwardSignals();
  const childEnv = lib.childEnv(env, inputs, stateDir);
  let code = 0;

  if (env.STATE_patch) {
    // Empty stdin: restore reads the journal, which holds every change even if env patch was killed mid-way.
    const res = await runner.runCLI(binary, lib.envRestoreArgs(inputs), { env: childEnv });
    if (res.code === 3) {
      let names = [];
      try {
        names = lib.leftPatched(JSON.parse(res.stdout));
      } catch {
        // no document: the message below still says what happened
      }
      const which = names.length ? `: ${names.join(', ')}` : ' (see the log above)';
      runner.issue(
        'error',
        `stptunnel env restore left Lambda functions patched${which}. Their variables may still point at the ` +
          'closed tunnel: check them, then run `stptunnel env restore --force` with the journal, or set them by hand.',
      );
      code = 1;
    } else if (res.code !== 0 || res.signal) {
      runner.issue('error', `stptunnel env restore failed (${res.signal || `exit ${res.code}`}): see the log above`);
      code = 1;
    }
  }

  if (env.STATE_tunnel) {
    const res = await runner.runCLI(binary, lib.tunnelCloseArgs(inputs), { env: childEnv });
    if (res.code !== 0 || res.signal) {
      runner.issue('error', `stptunnel tunnel close failed (${res.signal || `exit ${res.code}`}): see the log above`);
      code = 1;
    }
  }
  return code;
}

runner.runStep(post);
