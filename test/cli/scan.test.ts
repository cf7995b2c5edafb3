// `sluice scan` as a child process: JSON findings with exact offsets, exit codes, masking, several files, usage.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runSluice, type CliResult } from '../fixtures/cli';

// Tests run from dist/test/cli/.

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-scan-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], stdin = ''): Promise<CliResult> {
  return runSluice(args, { cwd: dir, stdin });
}

const EMAIL = 'jane.doe@acme-corp.com';
const SSN = '536-22-1987';
const AWS = 'AKIA2E0A8F3B244C9986';
const DIRTY = `Hi 👋 from ${EMAIL}, my SSN is ${SSN} and the key is ${AWS}.\n`;

test('--json prints exactly the findings with UTF-16 offsets and exits 1', async () => {
  const r = await run(['scan', '--json'], DIRTY);
  assert.equal(r.code, 1, r.stderr);
  const span = (s: string) => ({ start: DIRTY.indexOf(s), end: DIRTY.indexOf(s) + s.length });
  const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines, [
    { rule: 'email', category: 'pii', severity: 'medium', ...span(EMAIL) },
    { rule: 'us-ssn', category: 'pii', severity: 'high', ...span(SSN) },
    { rule: 'aws-access-key', category: 'credential', severity: 'critical', ...span(AWS) },
  ]);
  for (const l of lines) assert.deepEqual(Object.keys(l), ['rule', 'category', 'severity', 'start', 'end']);
  assert.match(r.stderr, /^engine: (hyperscan|re2)\n$/);
});

test('clean text exits 0 with no output; "-" reads stdin too', async () => {
  for (const args of [['scan', '--json'], ['scan', '-'], ['scan']]) {
    const r = await run(args, 'nothing to see here, version 1.2 and order 42\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  }
});

test('human mode masks all but the last 4 characters of every match', async () => {
  const r = await run(['scan'], DIRTY);
  assert.equal(r.code, 1);
  for (const secret of [EMAIL, SSN, AWS]) {
    assert.ok(!r.stdout.includes(secret), `leaked ${secret}`);
    assert.ok(!r.stdout.includes(secret.slice(0, -4)), `leaked prefix of ${secret}`);
  }
  assert.deepEqual(r.stdout.trimEnd().split('\n'), [
    `<stdin>:${DIRTY.indexOf(EMAIL)} email medium "${'*'.repeat(EMAIL.length - 4)}.com"`,
    `<stdin>:${DIRTY.indexOf(SSN)} us-ssn high "${'*'.repeat(SSN.length - 4)}1987"`,
    `<stdin>:${DIRTY.indexOf(AWS)} aws-access-key critical "${'*'.repeat(AWS.length - 4)}9986"`,
  ]);
});

test('several files: JSON lines name their file; --rules adds a pack', async () => {
  const a = join(dir, 'a.txt');
  const b = join(dir, 'b.txt');
  writeFileSync(a, `mail ${EMAIL}\n`);
  writeFileSync(b, 'codename PROJECT-ORCA\n');
  const rules = join(dir, 'rules');
  require('node:fs').mkdirSync(rules);
  writeFileSync(join(rules, 'x.yaml'), "pack: internal\nrules:\n  - id: project-codename\n    category: other\n    severity: medium\n    pattern: '\\bPROJECT-[A-Z]{4}\\b'\n");
  const r = await run(['scan', '--json', a, b, '--rules', rules]);
  assert.equal(r.code, 1, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown), [
    { rule: 'email', category: 'pii', severity: 'medium', start: 5, end: 5 + EMAIL.length, file: a },
    { rule: 'project-codename', category: 'other', severity: 'medium', start: 9, end: 21, file: b },
  ]);
});

test('usage, rule and file errors exit 2; --help documents the exit codes', async () => {
  const bad = await run(['scan', '--frob']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option --frob/);
  const missing = await run(['scan', join(dir, 'nope.txt')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read/);
  const rules = join(dir, 'badrules');
  require('node:fs').mkdirSync(rules);
  writeFileSync(join(rules, 'x.yaml'), 'pack: x\nrules:\n  - id: x\n    category: other\n    severity: low\n    pattern: x\n    validator: nope\n');
  const badRules = await run(['scan', '--rules', rules], 'text');
  assert.equal(badRules.code, 2);
  assert.match(badRules.stderr, /SLUICE_RULE_INVALID[\s\S]*x\.yaml:7: rules\[0\]\.validator: unknown validator "nope"/);
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /sluice scan/);
  assert.match(help.stdout, /0 no findings, 1 findings, 2/);
});
