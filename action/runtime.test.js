'use strict';
// The action runs on GitHub's node24 runtime (action.yml) and is tested with whatever node the machine has
// (node --test action/). These tests keep the two in step: the runtime action.yml names, only Node's built-in
// modules (nothing to install or bundle), and none of the long-deprecated APIs that recent Node releases removed.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { builtinModules } = require('node:module');
const path = require('node:path');
const { test } = require('node:test');

const root = path.join(__dirname, '..');
const sources = fs.readdirSync(__dirname).filter((f) => f.endsWith('.js') && !f.endsWith('.test.js'));

test('action.yml runs main and post on node24', () => {
  const yml = fs.readFileSync(path.join(root, 'action.yml'), 'utf8');
  const runs = /^runs:\n((?: {2}.*\n)+)/m.exec(yml);
  assert.ok(runs, 'action.yml has a runs: section');
  assert.match(runs[1], /^ {2}using: node24$/m);
  for (const key of ['main', 'post']) {
    const m = new RegExp(`^ {2}${key}: (\\S+)$`, 'm').exec(runs[1]);
    assert.ok(m, `runs.${key} is set`);
    assert.ok(sources.includes(path.basename(m[1])), `runs.${key}: ${m[1]} is one of the action's files`);
  }
});

test('the action requires only Node built-ins and its own files', () => {
  assert.ok(sources.length >= 4, `action files: ${sources}`);
  for (const f of sources) {
    const code = fs.readFileSync(path.join(__dirname, f), 'utf8');
    assert.doesNotMatch(code, /^\s*import\s|\bimport\(/m, `${f}: CommonJS only`);
    const required = [...code.matchAll(/\brequire\(\s*(['"])([^'"]+)\1\s*\)/g)].map((m) => m[2]);
    assert.ok(required.length > 0, `${f} requires something`);
    for (const name of required) {
      if (name.startsWith('./')) {
        assert.ok(sources.includes(name.slice(2)), `${f}: ${name} is one of the action's files`);
      } else {
        assert.ok(name.startsWith('node:') && builtinModules.includes(name.slice(5)), `${f}: ${name} is not a node: built-in`);
      }
    }
  }
});

test('the action uses no API that recent Node releases removed', () => {
  const removed = {
    'util.is*() (removed in Node 23)': /\butil\.is(?!Deep)[A-Z]\w*\(/,
    'crypto.createCipher/createDecipher (removed in Node 22)': /\bcreate(?:Cipher|Decipher)\(/,
    'tls.createSecurePair (removed in Node 24)': /\bcreateSecurePair\b/,
    'new Buffer() (deprecated: Buffer.from / Buffer.alloc)': /\bnew Buffer\(/,
  };
  for (const f of sources) {
    const code = fs.readFileSync(path.join(__dirname, f), 'utf8');
    for (const [what, re] of Object.entries(removed)) assert.doesNotMatch(code, re, `${f} uses ${what}`);
  }
});
