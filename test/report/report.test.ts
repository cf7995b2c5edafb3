// `sluice report` over an audit log written by a real running Sluice with known traffic: exact figures in JSON,
// the same figures in Markdown and HTML, a tampered copy reported as failing verification, and the period filters.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import { keyIdOf } from '../../src/audit/keys';
import { computeReport, type Report } from '../../src/report/compute';
import { runSluice } from '../fixtures/cli';
import { startHarness, type Harness } from '../fixtures/harness';

const dir = mkdtempSync(join(tmpdir(), 'sluice-report-'));
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const idpKey = join(dir, 'idp.pem');
writeFileSync(idpKey, publicKey.export({ type: 'spki', format: 'pem' }));
const AWS_KEY = 'AKIAQ3EGUS2Z4KXGJHWB';
const EMAIL = 'jane.doe@acme-corp.com';
/** A subject with markup in it: the documents must show it, escaped. */
const DAVE = 'dave <b>&</b>';

let h: Harness;
let auditDir: string;
/** Between the two phases of traffic: every arrival of phase A is before it, every one of phase B after. */
let middle: string;

function token(sub: string, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setSubject(sub).setIssuer('https://idp.example').setAudience('sluice').setExpirationTime('5m').sign(privateKey);
}

async function call(provider: 'openai' | 'anthropic' | 'deepseek', content: string, headers: Record<string, string> = {}): Promise<number> {
  const anthropic = provider === 'anthropic';
  const res = await fetch(`${h.sluice.gatewayUrl}/${provider}/v1/${anthropic ? 'messages' : 'chat/completions'}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(anthropic ? { 'x-api-key': 'sk-test', 'anthropic-version': '2023-06-01' } : { authorization: 'Bearer sk-test' }), ...headers },
    body: JSON.stringify({ model: anthropic ? 'claude-3-5-haiku-latest' : 'gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content }] }),
  });
  await res.arrayBuffer();
  return res.status;
}

before(async () => {
  h = await startHarness(
    `identity:
  jwt: { key_file: ${JSON.stringify(idpKey)}, issuer: "https://idp.example", audience: sluice }
routes:
  - { name: support, match: { groups: [support] }, allow: { providers: [anthropic] } }
destinations: { sanctioned: [openai, anthropic] }
policy:
  mode: enforce
  unsanctioned: block
  content:
    - { id: no-secrets, action: block, categories: [credential], min_severity: high }
    - { id: watch-pii, action: alert, categories: [pii] }
audit: { batch_ms: 20 }
`,
    (c) => {
      c.detect.enabled = true;
      c.detect.threads = 0;
    },
  );
  auditDir = h.sluice.audit!.dir;
  const alice = { 'x-sluice-identity': await token('alice', { groups: ['support'], jurisdiction: 'EU' }) };
  const bob = { 'x-sluice-identity': await token('bob', { jurisdiction: 'US' }) };
  const dave = { 'x-sluice-identity': await token(DAVE, {}) };

  // Phase A: 7 exchanges. Alice (EU, support) asks Claude three times, once with an email, then tries GPT (outside her route).
  assert.equal(await call('anthropic', 'hello'), 200);
  assert.equal(await call('anthropic', `write to ${EMAIL} about the refund`, alice), 200);
  assert.equal(await call('anthropic', 'thanks', alice), 200);
  assert.equal(await call('anthropic', 'one more', alice), 200);
  assert.equal(await call('openai', 'hello', alice), 403);
  assert.equal(await call('openai', 'hi', bob), 200);
  assert.equal(await call('openai', 'hi again', bob), 200);
  await new Promise((r) => setTimeout(r, 20));
  middle = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 20));
  // Phase B: 4 exchanges. Bob pastes a key (blocked), the provider fails him once; Dave tries DeepSeek twice (unsanctioned).
  assert.equal(await call('openai', `deploy with ${AWS_KEY}`, bob), 403);
  assert.equal(await call('openai', 'status?', { ...bob, 'x-mock-behavior': 'error', 'x-mock-status': '500' }), 500);
  assert.equal(await call('deepseek', 'taglines please', dave), 403);
  assert.equal(await call('deepseek', 'more taglines', dave), 403);
  await h.sluice.audit!.flush();
});
after(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function report(args: string[]): Promise<{ code: number | string; report: Report; stderr: string }> {
  const r = await runSluice(['report', ...args, '--format', 'json'], { cwd: dir });
  assert.ok(r.stdout.length > 0, `a report was printed (exit ${r.code}): ${r.stderr}`);
  return { code: r.code, report: JSON.parse(r.stdout) as Report, stderr: r.stderr };
}

test('json: the six signals, identities, findings and blocks, exactly as the traffic was', async () => {
  // The first call was anonymous: it went to the default route, not support.
  const { code, report: r } = await report([auditDir]);
  assert.equal(code, 0);
  assert.equal(r.report, 'sluice-report/v1');
  assert.equal(r.records, 11);
  assert.equal(r.exchanges, 11);
  assert.equal(r.verification.ok, true);
  assert.equal(r.verification.problems, 0);
  assert.equal(r.verification.keys_from, 'log_dir');
  assert.deepEqual(r.verification.sealed, { first_seq: 1, last_seq: 11 });
  assert.equal(r.totals.blocked, 4);
  assert.equal(r.totals.failed, 1);
  assert.equal(r.totals.alerted, 1, 'the email was alerted on');
  assert.equal(r.totals.allowed, 6);

  const byHost = Object.fromEntries(r.destinations.list.map((d) => [d.host, d]));
  assert.deepEqual(Object.keys(byHost).sort(), ['api.anthropic.com', 'api.deepseek.com', 'api.openai.com']);
  assert.equal(r.destinations.sanctioned, 9);
  assert.equal(r.destinations.unsanctioned, 2);
  assert.equal(r.destinations.shadow, 2);
  assert.equal(r.destinations.other, 0);
  assert.equal(byHost['api.openai.com']!.requests, 5);
  assert.equal(byHost['api.openai.com']!.failures, 1);
  assert.equal(byHost['api.openai.com']!.failure_rate, 1 / 5);
  assert.equal(byHost['api.openai.com']!.blocked, 2);
  assert.equal(byHost['api.anthropic.com']!.requests, 4);
  assert.equal(byHost['api.anthropic.com']!.failures, 0);
  assert.equal(byHost['api.deepseek.com']!.shadow, true);
  assert.equal(byHost['api.deepseek.com']!.blocked, 2);
  assert.equal(byHost['api.deepseek.com']!.share, 2 / 11);

  const byRoute = Object.fromEntries(r.routes.map((x) => [x.route, x]));
  assert.equal(byRoute.support!.requests, 4);
  assert.equal(byRoute.support!.with_pii, 1);
  assert.equal(byRoute.support!.pii_rate, 0.25);
  assert.equal(byRoute.default!.requests, 7);
  assert.equal(byRoute.default!.with_pii, 0);
  assert.equal(byRoute.default!.findings.credential, 1);

  // Alice (EU) four times to US providers; Bob (US) four times to a US one; the anonymous call and Dave name no jurisdiction.
  assert.deepEqual(r.cross_region, { compared: 8, exchanges: 4, share: 0.5, flows: [{ from: 'EU', to: 'US', count: 4 }] });

  assert.equal(r.latency.total.count, 11);
  assert.equal(r.latency.upstream_ttfb.count, 7, 'only the exchanges the provider answered');
  assert.ok(r.latency.total.p50 > 0 && r.latency.total.p50 <= r.latency.total.p99 && r.latency.total.p99 <= r.latency.total.max);

  assert.equal(r.unauthorized.attempts, 3);
  assert.deepEqual(r.unauthorized.recent.map((a) => [a.subject, a.host, a.action]).sort(), [
    ['alice', 'api.openai.com', 'block'],
    [DAVE, 'api.deepseek.com', 'block'],
    [DAVE, 'api.deepseek.com', 'block'],
  ]);

  const who = Object.fromEntries(r.identities.map((i) => [i.subject, i]));
  assert.deepEqual(who.alice, { subject: 'alice', requests: 4, blocked: 1, findings: 2 }, 'the email in the prompt, and again in the echoed reply');
  assert.deepEqual(who.bob, { subject: 'bob', requests: 4, blocked: 1, findings: 1 });
  assert.deepEqual(who[DAVE], { subject: DAVE, requests: 2, blocked: 2, findings: 0 });
  assert.deepEqual(who.anonymous, { subject: 'anonymous', requests: 1, blocked: 0, findings: 0 });

  const found = Object.fromEntries(r.findings.map((f) => [f.rule, f]));
  assert.deepEqual(found.email, { rule: 'email', category: 'pii', count: 2, exchanges: 1 });
  assert.deepEqual(found['aws-access-key'], { rule: 'aws-access-key', category: 'credential', count: 1, exchanges: 1 });
  assert.ok(!JSON.stringify(r).includes(AWS_KEY) && !JSON.stringify(r).includes(EMAIL), 'never a detected value');

  assert.equal(r.blocked.count, 4);
  assert.deepEqual(r.blocked.recent.map((b) => b.rule).sort(), ['content:no-secrets', 'route:support', 'unsanctioned', 'unsanctioned']);
  const secret = r.blocked.recent.find((b) => b.rule === 'content:no-secrets')!;
  assert.equal(secret.subject, 'bob');
  assert.match(secret.exchange_id, /^[0-9a-f-]{36}$/);
  assert.match(secret.reason, /AKIA\*+JHWB/);
  assert.deepEqual(r.alerts, { count: 0, recent: [] });
});

test('md and html carry the key figures and the verification outcome; html is self-contained and escaped', async () => {
  const md = await runSluice(['report', auditDir], { cwd: dir });
  assert.equal(md.code, 0, md.stderr);
  for (const s of ['# AI usage report', '## 1. Destinations', '| api.deepseek.com |', 'shadow AI', '| support | 4 | 1 | 25.0% |', '4 of 8 exchanges (50.0%)', '| api.openai.com | 5 | 1 | 20.0% |', '3 attempts', '4 blocked', 'intact: 11 records', 'Sluice 0.1.0', auditDir]) {
    assert.ok(md.stdout.includes(s), `md has ${JSON.stringify(s)}`);
  }
  assert.ok(md.stdout.includes('dave \\<b\\>\\&\\</b\\>'), 'markup in a subject is escaped for Markdown');
  assert.ok(md.stdout.includes('AKIA\\*\\*\\*\\*\\*\\*\\*\\*\\*\\*\\*\\*JHWB'), 'masked values show, their stars escaped');

  const html = await runSluice(['report', auditDir, '--format=html'], { cwd: dir });
  assert.equal(html.code, 0, html.stderr);
  assert.match(html.stdout, /^<!doctype html>/);
  assert.ok(!/<script|<link|src=/i.test(html.stdout), 'nothing loaded or run');
  for (const s of ['<style>', '<td>api.deepseek.com</td>', '<td class="n">25.0%</td>', 'intact: 11 records', 'dave &#60;b&#62;&#38;&#60;/b&#62;']) {
    assert.ok(html.stdout.includes(s), `html has ${JSON.stringify(s)}`);
  }
  assert.ok(!html.stdout.includes(DAVE), 'the raw subject is not in the page');
});

test('--since and --until select records by arrival time: ISO times and durations back from now', async () => {
  const b = (await report([auditDir, '--since', middle])).report;
  assert.equal(b.exchanges, 4);
  assert.equal(b.totals.blocked, 3);
  assert.equal(b.period.since, middle);
  assert.deepEqual(b.routes.map((x) => [x.route, x.requests]), [['default', 4]]);
  const a = (await report([auditDir, `--until=${middle}`])).report;
  assert.equal(a.exchanges, 7);
  assert.equal(a.totals.blocked, 1);
  assert.equal(a.unauthorized.attempts, 1);
  assert.ok(a.period.last_record! < middle && b.period.first_record! >= middle);
  assert.equal((await report([auditDir, '--since', '1h'])).report.exchanges, 11);
  const none = await report([auditDir, '--until', '1h']);
  assert.equal(none.report.exchanges, 0);
  assert.equal(none.report.verification.ok, true, 'the whole log is verified whatever the period');
  assert.equal((await report([auditDir, '--since', '2000-01-01', '--until', '2999-12-31T00:00:00Z'])).report.exchanges, 11);
});

test('a tampered record: exit 1, and the report says verification failed, prominently', async () => {
  const copy = join(dir, 'tampered');
  cpSync(auditDir, copy, { recursive: true });
  const seg = readdirSync(copy).find((f) => f.startsWith('audit-'))!;
  const text = readFileSync(join(copy, seg), 'utf8');
  assert.ok(text.includes('"subject":"bob"'));
  writeFileSync(join(copy, seg), text.replace('"subject":"bob"', '"subject":"eve"'));

  const { code, report: r, stderr } = await report([copy]);
  assert.equal(code, 1);
  assert.equal(r.verification.ok, false);
  assert.ok(r.verification.problems >= 1);
  assert.equal(r.verification.first_problems[0]!.kind, 'modified_record');
  assert.match(stderr, /did not verify/);
  const md = await runSluice(['report', copy], { cwd: dir });
  assert.equal(md.code, 1);
  assert.match(md.stdout.split('\n').slice(0, 4).join('\n'), /^> \*\*Verification FAILED: the audit log has \d+ integrity problems?/m, 'said before anything else');
  const html = await runSluice(['report', copy, '--format', 'html'], { cwd: dir });
  assert.equal(html.code, 1);
  assert.match(html.stdout, /<p class="alarm">Verification FAILED/);
});

test('--pubkey: the given key is what verifies; a key that did not sign the log fails it', async () => {
  const ok = await report([auditDir, '--pubkey', h.sluice.audit!.publicKeyFile]);
  assert.equal(ok.code, 0);
  assert.equal(ok.report.verification.keys_from, 'pubkey');
  assert.deepEqual(ok.report.verification.key_files, [h.sluice.audit!.publicKeyFile]);
  const raw = randomBytes(32);
  const other = join(dir, 'other.pub');
  writeFileSync(other, JSON.stringify({ alg: 'Ed25519', key_id: keyIdOf(raw), public_key: raw.toString('base64') }));
  const bad = await report([auditDir, '--pubkey', other]);
  assert.equal(bad.code, 1);
  assert.equal(bad.report.verification.first_problems[0]!.kind, 'unknown_key');
  assert.equal(bad.report.exchanges, 11, 'the figures are still reported');
});

test('usage errors and an unreadable log exit 2 and say what is wrong', async () => {
  const cases: Array<[string[], RegExp]> = [
    [[auditDir, '--since', 'last tuesday'], /--since last tuesday: expected an ISO 8601 date/],
    [[auditDir, '--since', '2026-02-30'], /--since 2026-02-30/],
    [[auditDir, '--format', 'pdf'], /--format pdf: expected one of md, json, html/],
    [[auditDir, '--since', '1h', '--until', '2h'], /is not before --until/],
    [[join(dir, 'nowhere')], /no audit directory/],
    [[auditDir, '--pubkey', join(dir, 'missing.pub')], /cannot read public key/],
    [[auditDir, '--verbose'], /unknown option --verbose/],
  ];
  for (const [args, message] of cases) {
    const r = await runSluice(['report', ...args], { cwd: dir });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
  }
});

test('segments that end before the period are not read: the next segment was opened after their last record', async () => {
  const log = join(dir, 'segments');
  const line = (seq: number, time: string) => `{"seq":${seq},"prev":"${'0'.repeat(64)}","v":1,"type":"exchange","id":"x${seq}","time":"${time}","outcome":"completed"}\n`;
  mkdirSync(log);
  // Record 2's time is impossible in a real log (after the next segment was opened): it shows which segments were read.
  writeFileSync(join(log, 'audit-0000000000000001-20200101T000000Z.jsonl'), line(1, '2020-01-01T00:00:01.000Z') + line(2, '2020-01-03T00:00:00.000Z'));
  writeFileSync(join(log, 'audit-0000000000000003-20200102T000000Z.jsonl'), line(3, '2020-01-02T00:05:00.000Z'));
  const run = (since: string) => computeReport({ dir: log, since: Date.parse(since), until: null, publicKeys: [], keysFrom: 'pubkey', keyFiles: [], version: 'test' });
  assert.equal((await run('2020-01-02T00:02:00Z')).exchanges, 1, 'only the second segment');
  // Within a minute of the next segment's name, the earlier one is still read (clock steps between writer and names).
  assert.equal((await run('2020-01-02T00:00:30Z')).exchanges, 2);
  assert.equal((await run('2020-01-01T00:00:00Z')).exchanges, 3);
});
