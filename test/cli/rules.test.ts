// `sluice rules test` as a child process: built-ins pass, a wrong example exits 1 naming the rule, a bad pack exits 2.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runSluice, type CliResult } from '../fixtures/cli';

// Tests run from dist/test/cli/.

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-rules-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<CliResult> {
  return runSluice(args, { cwd: dir });
}

function pack(name: string, body: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  writeFileSync(join(d, 'pack.yaml'), body);
  return d;
}

test('built-in rules: every example holds, exit 0 with a summary line', async () => {
  const r = await run(['rules', 'test']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\d+ rules, \d+ examples, 0 failures\n$/);
});

test('a pack whose examples are wrong exits 1 and names the rule and example', async () => {
  const d = pack(
    'wrong',
    [
      'pack: wrong',
      'rules:',
      '  - id: ticket-id',
      '    category: other',
      '    severity: low',
      "    pattern: '\\bTCK-\\d{4}\\b'",
      '    examples:',
      "      match: ['TCK-1234', 'TCK-12']",
      "      no_match: ['TCK-9999']",
      '',
    ].join('\n'),
  );
  const [base, r] = await Promise.all([run(['rules', 'test']), run(['rules', 'test', d])]);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.deepEqual(lines.slice(0, -1), ['rule ticket-id: example "TCK-12" expected match', 'rule ticket-id: example "TCK-9999" expected no match']);
  const [, n, m] = /^(\d+) rules, (\d+) examples, 0 failures$/.exec(base.stdout.trim())!;
  assert.equal(lines.at(-1), `${Number(n) + 1} rules, ${Number(m) + 3} examples, 2 failures`);
});

test('an invalid pack or a usage error exits 2', async () => {
  const d = pack('invalid', 'pack: invalid\nrules:\n  - id: BadId\n    category: nope\n    severity: low\n    pattern: "("\n');
  const r = await run(['rules', 'test', d]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /SLUICE_RULE_INVALID/);
  assert.match(r.stderr, /pack\.yaml:3/);
  assert.equal(r.stdout, '');
  for (const args of [['rules'], ['rules', 'frob'], ['rules', 'test', d, 'extra'], ['rules', 'test', join(dir, 'missing')]]) {
    const u = await run(args);
    assert.equal(u.code, 2, `${args.join(' ')}: ${u.stderr}`);
  }
});
