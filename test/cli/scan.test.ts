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
  for (const l of lines) {
    assert.deepEqual(Object.keys(l), ['rule', 'category', 'severity', 'confidence', 'start', 'end', 'masked']);
    assert.ok(typeof l.confidence === 'number' && l.confidence > 0 && l.confidence <= 1, `confidence ${String(l.confidence)}`);
  }
  assert.deepEqual(lines.map(({ confidence: _c, ...rest }) => rest), [
    { rule: 'email', category: 'pii', severity: 'medium', ...span(EMAIL), masked: 'jane**************.com' },
    { rule: 'us-ssn', category: 'pii', severity: 'high', ...span(SSN), masked: '53*******87' },
    { rule: 'aws-access-key', category: 'credential', severity: 'critical', ...span(AWS), masked: 'AKIA************9986' },
  ]);
  assert.match(r.stderr, /^engine: (hyperscan|re2) \(.+\)\n$/);
});

test('clean text exits 0 with no output; "-" reads stdin too', async () => {
  for (const args of [['scan', '--json'], ['scan', '-'], ['scan']]) {
    const r = await run(args, 'nothing to see here, version 1.2 and order 42\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  }
});

test('human mode prints each match masked, never the value', async () => {
  const r = await run(['scan'], DIRTY);
  assert.equal(r.code, 1);
  for (const secret of [EMAIL, SSN, AWS]) {
    assert.ok(!r.stdout.includes(secret), `leaked ${secret}`);
    assert.ok(!r.stdout.includes(secret.slice(0, -4)), `leaked prefix of ${secret}`);
  }
  assert.deepEqual(r.stdout.trimEnd().split('\n').map((l) => l.replace(/ [01](?:\.\d+)? /, ' C ')), [
    `<stdin>:${DIRTY.indexOf(EMAIL)} email medium C "jane**************.com"`,
    `<stdin>:${DIRTY.indexOf(SSN)} us-ssn high C "53*******87"`,
    `<stdin>:${DIRTY.indexOf(AWS)} aws-access-key critical C "AKIA************9986"`,
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
    { rule: 'email', category: 'pii', severity: 'medium', confidence: 1, start: 5, end: 5 + EMAIL.length, masked: 'jane**************.com', file: a },
    { rule: 'project-codename', category: 'other', severity: 'medium', confidence: 0.8, start: 9, end: 21, masked: 'PRO******RCA', file: b },
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
  assert.match(badRules.stderr, /SLUICE_RULE_INVALID[\s\S]*x\.yaml:7: rules\[0\]\(x\)\.validator: unknown validator "nope"/);
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /sluice scan/);
  assert.match(help.stdout, /0 no findings, 1 findings, 2/);
});
