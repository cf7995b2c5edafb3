// `sluice tail` as a real child process on hand-written segments: readable lines, --json, --filter, and -f
// following appends, a torn line completed later, rotation and replacement, ending on SIGTERM or a closed pipe.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { waitFor } from '../fixtures/audit';
import { runSluice, SLUICE_BIN } from '../fixtures/cli';

const root = mkdtempSync(join(tmpdir(), 'sluice-tail-'));
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

const SEG_A = 'audit-0000000000000001-20261126T042800Z.jsonl';
const SEG_B = 'audit-0000000000000004-20261126T052800Z.jsonl';
const SEG_C = 'audit-0000000000000007-20261126T062800Z.jsonl';
const PREV = 'ab'.repeat(32);
const checkpoint = (first: number, last: number) => JSON.stringify({ checkpoint: { first_seq: first, last_seq: last, root: PREV }, sig: 'c2ln' });

// Schema v1 (docs/audit-format.md), trimmed to what the readable line shows, plus the shapes that lack most of it.
const RECORDS = [
  {
    seq: 1,
    prev: PREV,
    v: 1,
    type: 'exchange',
    id: 'r1',
    time: '2026-11-26T04:28:00.123Z',
    outcome: 'blocked',
    destination: { host: 'api.openai.com', provider: 'openai', sanctioned: true },
    identity: { subject: 'alice', method: 'jwt' },
    route: 'default',
    'gen_ai.request.model': 'gpt-4o',
    request: { method: 'POST', findings: [{ category: 'secret' }, { category: 'pii.email' }] },
    response: { status: 403, findings: [], tool_calls: [{ name: 'run', argument_findings: [{ category: 'secret' }] }] },
    latency_ms: { total: 12.345 },
    policy: { decision: 'block', rule: 'content:aws-key' },
  },
  {
    seq: 2,
    prev: PREV,
    v: 1,
    type: 'exchange',
    id: 'r2',
    time: '2026-11-26T04:28:01.000Z',
    outcome: 'completed',
    destination: { host: 'api.anthropic.com', provider: 'anthropic', sanctioned: false },
    identity: { subject: 'bob' },
    route: 'eu-only',
    'gen_ai.request.model': 'claude-sonnet-4',
    request: { findings: [] },
    response: { status: 200, findings: [{ category: 'pii.phone' }] },
    latency_ms: { total: 830 },
    policy: { decision: 'allow', response: { decision: 'alert' } },
  },
  { seq: 3, prev: PREV, v: 1, type: 'key_rotation', id: 'r3', time: '2026-11-26T04:29:00.000Z' },
  {
    seq: 4,
    prev: PREV,
    v: 1,
    type: 'exchange',
    id: 'r4',
    time: '2026-11-26T05:28:00.000Z',
    outcome: 'upstream_error',
    destination: { host: 'generativelanguage.googleapis.com', provider: 'gemini' },
    identity: null,
    route: 'default',
    request: { findings: [] },
    response: null,
    latency_ms: { total: 30000.04 },
    policy: { decision: 'allow' },
  },
  { seq: 5, prev: PREV, id: 'r5' },
];
const LINES = RECORDS.map((r) => JSON.stringify(r));

const EXPECTED = [
  '2026-11-26T04:28:00.123Z #1 exchange block subject=alice route=default openai/api.openai.com model=gpt-4o status=403 findings=3[secret,pii.email] 12.3ms',
  '2026-11-26T04:28:01.000Z #2 exchange allow response:alert subject=bob route=eu-only anthropic/api.anthropic.com model=claude-sonnet-4 status=200 findings=1[pii.phone] 830ms',
  '2026-11-26T04:29:00.000Z #3 key_rotation',
  '2026-11-26T05:28:00.000Z #4 exchange allow upstream_error route=default gemini/generativelanguage.googleapis.com findings=0 30000ms',
  '#5',
];

function logDir(name: string): string {
  const dir = join(root, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  writeFileSync(join(dir, SEG_A), `${LINES.slice(0, 3).join('\n')}\n${checkpoint(1, 3)}\n`);
  writeFileSync(join(dir, SEG_B), `${LINES.slice(3).join('\n')}\n${checkpoint(4, 5)}\n`);
  writeFileSync(join(dir, 'checkpoints.jsonl'), `${checkpoint(1, 3)}\n${checkpoint(4, 5)}\n`);
  return dir;
}

test('tail prints every record in sequence order, one readable line each, without checkpoints', async () => {
  const dir = logDir('plain');
  const r = await runSluice(['tail', dir], { cwd: root });
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, EXPECTED.map((l) => `${l}\n`).join(''));
});

test('tail defaults to ./sluice-data/audit and names a missing directory', async () => {
  const cwd = join(root, 'cwd');
  mkdirSync(join(cwd, 'sluice-data'), { recursive: true });
  renameSync(logDir('default'), join(cwd, 'sluice-data', 'audit'));
  const r = await runSluice(['tail', '--json'], { cwd });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, LINES.map((l) => `${l}\n`).join(''));

  const missing = await runSluice(['tail', join(root, 'nope')], { cwd: root });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope: no such directory; the audit log is data_dir\/audit/);
  const usage = await runSluice(['tail', '--filter', 'nofield'], { cwd: root });
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--filter nofield: expected field=value/);
});

test('tail --json prints record lines as written; --filter matches dotted paths, through arrays, all must hold', async () => {
  const dir = logDir('filter');
  const json = await runSluice(['tail', dir, '--json'], { cwd: root });
  assert.equal(json.stdout, LINES.map((l) => `${l}\n`).join(''));

  const allowed = await runSluice(['tail', dir, '--filter', 'policy.decision=allow'], { cwd: root });
  assert.equal(allowed.stdout, `${EXPECTED[1]}\n${EXPECTED[3]}\n`);
  const both = await runSluice(['tail', dir, '--filter=policy.decision=allow', '--filter', 'route=default', '--json'], { cwd: root });
  assert.equal(both.stdout, `${LINES[3]}\n`);
  const inArray = await runSluice(['tail', dir, '--filter', 'request.findings.category=pii.email'], { cwd: root });
  assert.equal(inArray.stdout, `${EXPECTED[0]}\n`);
  const flatKey = await runSluice(['tail', dir, '--filter', 'gen_ai.request.model=claude-sonnet-4'], { cwd: root });
  assert.equal(flatKey.stdout, `${EXPECTED[1]}\n`, 'an OTel key with dots in it is matched whole');
  const typed = await runSluice(['tail', dir, '--filter', 'response.status=403', '--filter', 'destination.sanctioned=true'], { cwd: root });
  assert.equal(typed.stdout, `${EXPECTED[0]}\n`);
  const none = await runSluice(['tail', dir, '--filter', 'identity.subject=mallory'], { cwd: root });
  assert.equal(none.stdout, '');
  assert.equal(none.code, 0);
});

interface Follow {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  seqs: () => number[];
  exited: Promise<number | string>;
}

function follow(dir: string): Follow {
  const child = spawn(process.execPath, [SLUICE_BIN, 'tail', '-f', dir, '--json'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const seqs = () =>
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { seq: number }).seq);
  return { child, out: () => out, err: () => err, seqs, exited };
}

const line = (seq: number) => JSON.stringify({ seq, prev: PREV, id: `r${seq}`, type: 'exchange', time: '2026-11-26T06:00:00.000Z' });

test('tail -f follows appends, never prints a torn line, and follows rotation and replacement', async () => {
  const dir = logDir('follow');
  const f = follow(dir);
  // Starts at the live segment (B), as tail -f starts near the end.
  await waitFor('the live segment printed', () => f.seqs().length === 2, 10_000, f.out);
  assert.deepEqual(f.seqs(), [4, 5]);

  appendFileSync(join(dir, SEG_B), `${line(6)}\n`);
  await waitFor('#6', () => f.seqs().includes(6), 5000, f.out);

  // Half a line, as a writer mid-write leaves it: nothing may print until its newline arrives.
  const torn = line(7);
  appendFileSync(join(dir, SEG_B), torn.slice(0, 20));
  await new Promise((r) => setTimeout(r, 700));
  assert.deepEqual(f.seqs(), [4, 5, 6]);
  appendFileSync(join(dir, SEG_B), `${torn.slice(20)}\n${checkpoint(6, 7)}\n`);
  await waitFor('#7 once complete', () => f.seqs().includes(7), 5000, f.out);

  // The writer's last line in B and the new segment C land together: B is drained before C is read.
  appendFileSync(join(dir, SEG_B), `${line(8)}\n`);
  writeFileSync(join(dir, SEG_C), `${line(9)}\n`);
  await waitFor('#9 from the new segment', () => f.seqs().includes(9), 5000, f.out);
  appendFileSync(join(dir, SEG_C), `${line(10)}\n`);
  await waitFor('#10', () => f.seqs().includes(10), 5000, f.out);

  // C replaced under its name (a new inode): read again from its start.
  writeFileSync(join(dir, `${SEG_C}.new`), `${line(9)}\n${line(10)}\n${line(11)}\n`);
  renameSync(join(dir, `${SEG_C}.new`), join(dir, SEG_C));
  await waitFor('#11 from the replaced file', () => f.seqs().includes(11), 5000, f.out);
  assert.match(f.err(), /was replaced; reading it from the start/);

  f.child.kill('SIGTERM');
  assert.equal(await f.exited, 0);
  assert.deepEqual(f.seqs(), [4, 5, 6, 7, 8, 9, 10, 9, 10, 11]);
  assert.ok(f.out().endsWith('\n'));
});

test('tail -f waits for a log to appear, exits 0 on SIGINT, and ends quietly when its reader goes away', async () => {
  const dir = join(root, 'empty');
  mkdirSync(dir);
  const f = follow(dir);
  await new Promise((r) => setTimeout(r, 400));
  writeFileSync(join(dir, SEG_A), `${line(1)}\n`);
  await waitFor('#1 from the first segment', () => f.seqs().includes(1), 5000, f.out);
  f.child.kill('SIGINT');
  assert.equal(await f.exited, 0);
  assert.equal(f.err(), '');

  // `sluice tail -f | head -1`: the pipe closes, the next write fails with EPIPE, and tail exits 0 without a trace.
  const g = follow(dir);
  await waitFor('#1', () => g.seqs().includes(1), 5000, g.out);
  g.child.stdout!.destroy();
  for (let seq = 2; seq < 6; seq++) {
    appendFileSync(join(dir, SEG_A), `${line(seq)}\n`);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(await Promise.race([g.exited, new Promise((r) => setTimeout(() => r('still running'), 5000).unref())]), 0);
  assert.equal(g.err(), '');
});
