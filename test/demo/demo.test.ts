// `sluice demo` as a newcomer runs it: a child process that starts Sluice and its mock provider, sends traffic of
// every kind for a few seconds, stops cleanly, and leaves a verifiable audit log of what happened.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readPublicKeyDir } from '../../src/audit/keys';
import { listSegments, readSegmentLines, RECORD_PREFIX } from '../../src/audit/segments';
import { verifyLog } from '../../src/audit/verify';
import { runSluice } from '../fixtures/cli';

const dir = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type AuditRecord = Record<string, any>;

test('demo --duration: traffic of every kind through a real Sluice, a clean exit, a sealed log', async () => {
  const dataDir = join(dir, 'data');
  // Overrides the demo's settings key by key: its admin port (9090) may be taken on a test machine.
  writeFileSync(join(dir, 'demo.yaml'), `listen: { admin: 127.0.0.1:0 }\ndata_dir: ${JSON.stringify(dataDir)}\ndetect: { threads: 1 }\n`);
  const r = await runSluice(['demo', '--duration', '6', '--config', 'demo.yaml'], { cwd: dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Dashboard: +http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(r.stdout, /Running for 6 s/);
  const sent = Number(/(\d+) requests sent/.exec(r.stdout.split('Stopping')[1] ?? '')?.[1]);
  assert.ok(sent >= 60, `about 25 requests/s were sent (${sent})`);

  const auditDir = join(dataDir, 'audit');
  const records: AuditRecord[] = [];
  for (const s of await listSegments(auditDir)) {
    for (const l of (await readSegmentLines(join(auditDir, s.file))).lines) if (l.text.startsWith(RECORD_PREFIX)) records.push(JSON.parse(l.text));
  }
  const exchanges = records.filter((x) => x.type === 'exchange');
  assert.equal(exchanges.length, sent, 'every request the demo sent has its record');
  const some = (what: string, pred: (x: AuditRecord) => boolean) => assert.ok(exchanges.some(pred), what);
  const routes = new Set(exchanges.map((x) => x.route));
  for (const route of ['support-bot', 'internal-copilot', 'default']) assert.ok(routes.has(route), `traffic on route ${route}`);
  some('a secret blocked', (x) => x.outcome === 'blocked' && x.policy.rule === 'content:no-secrets');
  some('an unsanctioned (shadow AI) destination', (x) => x.destination.sanctioned === false && x.destination.shadow === true && x.policy.rule === 'unsanctioned');
  some('a route allow-list block', (x) => x.policy.rule === 'route:support-bot' && x.outcome === 'blocked');
  some('PII alerted on', (x) => x.policy.decision === 'alert' && x.request.findings.some((f: AuditRecord) => f.category === 'pii'));
  some('a tool call by the model', (x) => x.response?.tool_calls.length > 0);
  some('a streamed response', (x) => x.response?.streamed === true && x.response.status === 200);
  some('an upstream failure', (x) => x.response?.status >= 500);
  some('a rate limit', (x) => x.response?.status === 429);
  some('a verified JWT identity', (x) => x.identity?.method === 'jwt' && x.identity.verified === true && x.identity.subject === 'alice');
  some('a service known by its API key', (x) => x.identity?.method === 'api_key' && x.identity.subject === 'billing-service');
  some('an EU caller to a US provider', (x) => x.identity?.jurisdiction === 'EU' && x.destination.jurisdiction === 'US');
  some('an Anthropic exchange', (x) => x.destination.provider === 'anthropic' && x.outcome === 'completed');

  const v = await verifyLog(auditDir, { publicKeys: await readPublicKeyDir(join(auditDir, 'keys')) });
  assert.deepEqual(v.problems, [], 'the clean shutdown sealed every record');
  assert.match(r.stdout, new RegExp(`sluice report ${auditDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
});

test('demo rejects what it does not know, with exit 2', async () => {
  for (const args of [['--duration', 'soon'], ['--rate', '5'], ['extra']]) {
    const r = await runSluice(['demo', ...args], { cwd: dir });
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /--duration soon: expected a number of seconds|unknown option --rate|unexpected argument extra/);
  }
});
