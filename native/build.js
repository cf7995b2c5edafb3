#!/usr/bin/env node
// npm "install" hook: builds the optional Hyperscan addon when libhs is present, and never fails the install.
// A root binding.gyp makes npm run `node-gyp rebuild` by default, which would break installs without libhs.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const FALLBACK = 'Hyperscan engine disabled';
// Lets CI (or a packager) insist on the native engine: a missing libhs or failed build then fails the install.
const required = Boolean(process.env.SLUICE_REQUIRE_HYPERSCAN);

function done(message, ok) {
  if (message) console.log(message);
  process.exit(ok || !required ? 0 : 1);
}

if (process.env.SLUICE_SKIP_NATIVE === '1') {
  done(`SLUICE_SKIP_NATIVE=1: ${FALLBACK}`, true);
}

// pkg-config itself may be missing; that is the same answer as "no libhs".
const probe = spawnSync('pkg-config', ['--exists', 'libhs'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) {
  done(`libhs not found: ${FALLBACK}`, false);
}

/** node-gyp as a [command, args] pair: npm's own copy first, so nothing has to be fetched. */
function findNodeGyp() {
  const candidates = [];
  // npm >= 7 exports the path of its bundled node-gyp to lifecycle scripts.
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const searchFrom = [root];
  if (process.env.npm_execpath) searchFrom.push(path.dirname(process.env.npm_execpath));
  // Run by hand (not under npm): look next to the npm that ships with this node.
  searchFrom.push(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm'));
  for (const from of searchFrom) {
    try {
      candidates.push(require.resolve('node-gyp/bin/node-gyp.js', { paths: [from] }));
    } catch {
      // not there; try the next place
    }
  }
  const script = candidates.find((p) => fs.existsSync(p));
  if (script) return [process.execPath, [script]];
  return [process.platform === 'win32' ? 'npx.cmd' : 'npx', ['--no-install', 'node-gyp']];
}

const [cmd, baseArgs] = findNodeGyp();
const args = [...baseArgs, 'rebuild'];
// Outside npm, node-gyp does not see npm's nodedir setting and would try to download headers; use the local ones.
const localHeaders = path.join(path.dirname(process.execPath), '..', 'include', 'node', 'node_api.h');
if (!process.env.npm_config_nodedir && fs.existsSync(localHeaders)) {
  args.push(`--nodedir=${path.resolve(path.dirname(process.execPath), '..')}`);
}

console.log(`libhs ${pkgVersion()} found, building the Hyperscan addon`);
const build = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
const addon = path.join(root, 'build', 'Release', 'hyperscan.node');
if (build.error || build.status !== 0 || !fs.existsSync(addon)) {
  const why = build.error ? build.error.message : `exit ${build.status}`;
  done(`Hyperscan addon build failed (${why}): ${FALLBACK}; rerun \`npm run build:native\` to see why`, false);
}
done(`Hyperscan addon built: ${path.relative(root, addon)}`, true);

function pkgVersion() {
  const v = spawnSync('pkg-config', ['--modversion', 'libhs'], { encoding: 'utf8' });
  return v.status === 0 ? v.stdout.trim() : '(unknown version)';
}
