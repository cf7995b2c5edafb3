// Signals through a running Sluice: known traffic from real clients (OpenAI SDK, fetch, curl through the forward
// proxy), then /metrics parsed and /signals read with exact values; alerts fire once to log, audit and webhook.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SignJWT } from 'jose';
import OpenAI from 'openai';
import { readPublicKeyDir } from '../../src/audit/keys';
import { listSegments, readSegmentLines, RECORD_PREFIX } from '../../src/audit/segments';
import { verifyLog } from '../../src/audit/verify';
import type { SignalsSnapshot } from '../../src/signals/types';
import { curlThrough } from '../fixtures/curl';
import { startHarness, type Harness } from '../fixtures/harness';
import { parseMetrics, sample } from '../fixtures/metrics';

const dir = mkdtempSync(join(tmpdir(), 'sluice-signals-'));
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keyFile = join(dir, 'idp.pem');
writeFileSync(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
const hookTokenFile = join(dir, 'hook-token');
writeFileSync(hookTokenFile, 'hook-secret-123\n');

const OPENAI = 'api.openai.com';
const DEEPSEEK = 'api.deepseek.com';

let h: Harness;
let hook: Server;
const hooks: Array<{ headers: IncomingHttpHeaders; body: Record<string, unknown> }> = [];
const logLines: Array<Record<string, unknown>> = [];
const stderrWrite = process.stderr.write.bind(process.stderr);

before(async () => {
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      hooks.push({ headers: req.headers, body: JSON.parse(body) as Record<string, unknown> });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  // log() writes JSON lines to stderr: keep the alert lines to check them, pass everything through.
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const text = String(chunk);
    if (text.includes('"msg":"alert"')) logLines.push(JSON.parse(text) as Record<string, unknown>);
    return (stderrWrite as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  h = await startHarness(
    `destinations: { sanctioned: [openai] }
identity:
  jwt: { key_file: ${JSON.stringify(keyFile)}, issuer: "https://idp.example", audience: sluice }
routes:
  - { name: support, match: { models: [gpt-4o-mini] } }
  - { name: batch, match: { models: [gpt-4o] }, allow: { providers: [anthropic] } }
interception: { deny: [denied.example] }
policy:
  mode: enforce
  content:
    - { id: no-keys, action: block, categories: [credential] }
    - { id: watch-pii, action: alert, categories: [pii] }
audit: { batch_ms: 20 }
signals:
  home_jurisdiction: EU
  webhook: { url: "http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook", token_file: ${JSON.stringify(hookTokenFile)} }
  alerts:
    - { id: pii-support, kind: pii_rate, threshold: 0.1, min_requests: 2, route: support, window: 1m }
    - { id: shadow-ai, kind: new_unsanctioned }
    - { id: slow, kind: p99, threshold: 600000 }
`,
    (c) => {
      c.detect.enabled = true;
      c.detect.threads = 0;
    },
  );
  await traffic();
});

after(async () => {
  process.stderr.write = stderrWrite;
  await h?.close();
  await new Promise((r) => hook?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const chat = (model: string, content: string, headers: Record<string, string> = {}, prefix = 'openai') =>
  fetch(`${h.sluice.gatewayUrl}/${prefix}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
  });

/**
 * Nine exchanges with known counts. To api.openai.com (US, sanctioned), route support unless said: two clean (allow),
 * one with an e-mail address (alert, PII in request and echoed response), one with an AWS key (blocked), one on
 * route batch whose allow-list has no openai (blocked, unauthorised), one answered 503 (allow, failure), one from a
 * caller whose token says US (not cross-region). Then api.deepseek.com (shadow, CN: alert, unauthorised) and a
 * CONNECT to a denied host (denied, unauthorised). Callers without a jurisdiction are EU (home_jurisdiction).
 */
async function traffic(): Promise<void> {
  const sdk = new OpenAI({ baseURL: `${h.sluice.gatewayUrl}/openai/v1`, apiKey: 'sk-test', maxRetries: 0 });
  await sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] });
  await sdk.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello again' }] });
  assert.equal((await (await chat('gpt-4o-mini', 'please mail jane.doe@acme-corp.com the invoice')).text()).includes('jane'), true);
  const blocked = await chat('gpt-4o-mini', 'my key is AKIAQ3EGUS2Z4KXGJHWB');
  assert.equal(blocked.status, 403);
  await blocked.text();
  const outside = await chat('gpt-4o', 'summarise this');
  assert.equal(outside.status, 403);
  await outside.text();
  const failed = await chat('gpt-4o-mini', 'hello', { 'x-mock-behavior': 'error', 'x-mock-status': '503' });
  assert.equal(failed.status, 503);
  await failed.text();
  const jwt = await new SignJWT({ sub: 'us-analyst', jurisdiction: 'US' })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('https://idp.example')
    .setAudience('sluice')
    .setExpirationTime('5m')
    .sign(privateKey);
  await (await chat('gpt-4o-mini', 'hello from the US', { 'x-sluice-identity': `Bearer ${jwt}` })).text();
  const shadow = await chat('deepseek-chat', 'hello', {}, 'deepseek');
  assert.equal(shadow.status, 200);
  await shadow.text();
  const denied = await curlThrough(h.sluice.forwardUrl, ['https://denied.example/']);
  assert.notEqual(denied.code, 0);
  await settled(9);
}

/** Waits for `n` exchanges and their response scans: the signals count an exchange once its scan settles. */
async function settled(n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (h.exchanges.length < n) {
    assert.ok(Date.now() < deadline, `only ${h.exchanges.length} of ${n} exchanges completed`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await Promise.all(h.exchanges.map((x) => x.responseInspection));
  await new Promise((r) => setImmediate(r));
}

async function metrics(): Promise<Map<string, number>> {
  const res = await fetch(`${h.sluice.adminUrl}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await res.text());
}

async function signals(window?: string): Promise<SignalsSnapshot> {
  const res = await fetch(`${h.sluice.adminUrl}/signals${window ? `?window=${window}` : ''}`);
  assert.equal(res.status, 200);
  return (await res.json()) as SignalsSnapshot;
}

test('/metrics counts the traffic exactly: decisions, outcomes, status classes, unauthorised attempts, cross-region, tokens', async () => {
  const m = await metrics();
  const v = (name: string, labels: Record<string, string>) => sample(m, name, labels);
  assert.equal(v('sluice_requests_total', { destination: OPENAI, route: 'support', decision: 'allow' }), 4);
  assert.equal(v('sluice_requests_total', { destination: OPENAI, route: 'support', decision: 'alert' }), 1);
  assert.equal(v('sluice_requests_total', { destination: OPENAI, route: 'support', decision: 'block' }), 1);
  assert.equal(v('sluice_requests_total', { destination: OPENAI, route: 'batch', decision: 'block' }), 1);
  assert.equal(v('sluice_requests_total', { destination: DEEPSEEK, route: 'default', decision: 'alert' }), 1);
  assert.equal(v('sluice_requests_total', { destination: 'denied.example', route: 'default', decision: 'block' }), 1);
  assert.equal(v('sluice_outcomes_total', { destination: OPENAI, outcome: 'completed' }), 5);
  assert.equal(v('sluice_outcomes_total', { destination: OPENAI, outcome: 'blocked' }), 2);
  assert.equal(v('sluice_outcomes_total', { destination: 'denied.example', outcome: 'denied' }), 1);
  assert.equal(v('sluice_upstream_responses_total', { destination: OPENAI, status_class: '2xx' }), 4);
  assert.equal(v('sluice_upstream_responses_total', { destination: OPENAI, status_class: '5xx' }), 1);
  assert.equal(v('sluice_upstream_responses_total', { destination: DEEPSEEK, status_class: '2xx' }), 1);
  assert.equal(v('sluice_failures_total', { destination: OPENAI }), 1, 'the 503');
  assert.equal(v('sluice_failures_total', { destination: DEEPSEEK }), undefined);
  assert.equal(v('sluice_unauthorized_attempts_total', { destination: OPENAI, action: 'block' }), 1, 'the route allow-list block');
  assert.equal(v('sluice_unauthorized_attempts_total', { destination: DEEPSEEK, action: 'alert' }), 1, 'shadow AI');
  assert.equal(v('sluice_unauthorized_attempts_total', { destination: 'denied.example', action: 'deny' }), 1);
  assert.equal(v('sluice_unauthorized_attempts_total', { destination: OPENAI, action: 'allow' }), undefined, 'a sanctioned provider is no attempt');
  assert.equal(v('sluice_cross_region_total', { from: 'EU', to: 'US' }), 6);
  assert.equal(v('sluice_cross_region_total', { from: 'EU', to: 'CN' }), 1);
  assert.equal(v('sluice_cross_region_total', { from: 'US', to: 'US' }), undefined);
  assert.equal(v('sluice_jurisdiction_known_total', {}), 8, 'the denied host has no jurisdiction');
  // The mock reports 21 input and 13 output tokens per answer; the 503 carries no usage.
  assert.equal(v('sluice_tokens_total', { destination: OPENAI, direction: 'input' }), 4 * 21);
  assert.equal(v('sluice_tokens_total', { destination: OPENAI, direction: 'output' }), 4 * 13);
  const openai = h.exchanges.filter((x) => x.destination.host === OPENAI);
  assert.equal(openai.length, 7);
  assert.equal(v('sluice_bytes_total', { destination: OPENAI, direction: 'up' }), openai.reduce((n, x) => n + x.requestBytes, 0));
  assert.equal(v('sluice_bytes_total', { destination: OPENAI, direction: 'down' }), openai.reduce((n, x) => n + x.responseBytes, 0));
  assert.equal(v('sluice_destination_info', { destination: DEEPSEEK, provider: 'deepseek', sanctioned: 'false', shadow: 'true', jurisdiction: 'CN' }), 1);
  assert.equal(v('sluice_destination_info', { destination: OPENAI, provider: 'openai', sanctioned: 'true', shadow: 'false', jurisdiction: 'US' }), 1);
});

test('/metrics: findings per route and category, exchanges with PII, latency histograms', async () => {
  const m = await metrics();
  const v = (name: string, labels: Record<string, string>) => sample(m, name, labels);
  const pii = h.exchanges.find((x) => x.request?.segments.some((s) => s.text.includes('jane.doe')))!;
  assert.equal(pii.requestFindings!.filter((f) => f.category === 'pii').length, 1);
  assert.equal(pii.responseFindings!.filter((f) => f.category === 'pii').length, 1, 'the mock echoes the address back');
  const count = (route: string, category: string) =>
    h.exchanges.filter((x) => x.route === route).reduce((n, x) => n + [...(x.requestFindings ?? []), ...(x.responseFindings ?? [])].filter((f) => f.category === category).length, 0);
  assert.ok(count('support', 'credential') >= 1);
  assert.equal(v('sluice_findings_total', { route: 'support', category: 'pii' }), count('support', 'pii'));
  assert.equal(v('sluice_findings_total', { route: 'support', category: 'credential' }), count('support', 'credential'));
  assert.equal(v('sluice_exchanges_with_pii_total', { route: 'support' }), 1);
  assert.equal(v('sluice_exchanges_with_pii_total', { route: 'batch' }), 0);
  // Every relayed exchange is timed (the CONNECT refusal is not); time to first byte needs an upstream answer.
  assert.equal(v('sluice_request_duration_seconds_count', { destination: OPENAI }), 7);
  assert.equal(v('sluice_request_duration_seconds_bucket', { destination: OPENAI, le: '+Inf' }), 7);
  assert.equal(v('sluice_upstream_ttfb_seconds_count', { destination: OPENAI }), 5);
  assert.equal(v('sluice_overhead_seconds_count', {}), 8);
  assert.ok(v('sluice_request_duration_seconds_sum', { destination: OPENAI })! > 0);
  const buckets = [...m.keys()].filter((k) => k.startsWith('sluice_request_duration_seconds_bucket{destination="api.openai.com"'));
  const values = buckets.map((k) => m.get(k)!);
  assert.deepEqual(values, [...values].sort((a, b) => a - b), 'buckets are cumulative');
  assert.ok(m.has('process_cpu_user_seconds_total'), 'process metrics are there too');
});

test('/signals reports the six signals over the window', async () => {
  const s = await signals();
  assert.equal(s.window, '5m');
  assert.equal(s.bucket_s, 10);
  assert.deepEqual(
    { ...s.totals, bytes_up: 0, bytes_down: 0 },
    { requests: 9, allowed: 4, alerted: 2, redacted: 0, blocked: 3, failed: 1, tunnelled: 0, denied: 1, bytes_up: 0, bytes_down: 0, input_tokens: 5 * 21, output_tokens: 5 * 13 },
  );
  const openai = s.destinations.find((d) => d.host === OPENAI)!;
  assert.deepEqual(
    { requests: openai.requests, failures: openai.failures, failure_rate: openai.failure_rate, blocked: openai.blocked, denied: openai.denied, sanctioned: openai.sanctioned, shadow: openai.shadow },
    { requests: 7, failures: 1, failure_rate: 0.1429, blocked: 2, denied: 0, sanctioned: true, shadow: false },
  );
  assert.equal(openai.trend.length, 30);
  assert.equal(openai.trend.reduce((a, b) => a + b, 0), 7);
  assert.ok(openai.p99_ms > 0);
  assert.equal(s.destinations[0]!.host, OPENAI, 'busiest first');
  const deepseek = s.destinations.find((d) => d.host === DEEPSEEK)!;
  assert.equal(deepseek.shadow, true);
  assert.equal(deepseek.jurisdiction, 'CN');
  assert.equal(s.destinations.find((d) => d.host === 'denied.example')?.denied, 1);

  const support = s.routes.find((r) => r.route === 'support')!;
  assert.equal(support.requests, 6);
  assert.equal(support.with_pii, 1);
  assert.equal(support.pii_rate, 0.1667);
  assert.ok(support.findings.pii! >= 2 && support.findings.credential! >= 1);
  assert.deepEqual(s.routes.map((r) => [r.route, r.requests]).sort(), [['batch', 1], ['default', 2], ['support', 6]]);

  // Judged: both jurisdictions known (the denied host has none): 8, of which 7 cross.
  assert.equal(s.cross_region.exchanges, 7);
  assert.equal(s.cross_region.share, 0.875);
  assert.deepEqual(s.cross_region.flows, [{ from: 'EU', to: 'US', count: 6 }, { from: 'EU', to: 'CN', count: 1 }]);

  assert.equal(s.latency.total.count, 8);
  assert.equal(s.latency.upstream_ttfb.count, 6);
  assert.equal(s.latency.overhead.count, 8);
  assert.ok(s.latency.total.p50 > 0 && s.latency.total.p50 <= s.latency.total.p99 && s.latency.total.p99 <= s.latency.total.max);
  assert.ok(s.latency.overhead.p99 < s.latency.total.max);
  assert.equal(s.latency.series.length, 30);
  assert.equal(s.latency.series.reduce((n, p) => n + p.count, 0), 8);

  assert.equal(s.unauthorized.attempts, 3);
  assert.deepEqual(s.unauthorized.recent.map((a) => [a.host, a.action]), [['denied.example', 'deny'], [DEEPSEEK, 'alert'], [OPENAI, 'block']], 'most recent first');
  const routeBlock = s.unauthorized.recent[2]!;
  assert.match(routeBlock.reason, /route "batch" may not use provider openai/);
  assert.equal(routeBlock.client, '127.0.0.1');
  assert.equal(routeBlock.exchange_id, h.exchanges.find((x) => x.decision.rule === 'route:batch')!.id);

  for (const w of ['1m', '1h', 'all'] as const) {
    const o = await signals(w);
    assert.equal(o.totals.requests, 9, w);
    assert.equal(o.destinations.find((d) => d.host === OPENAI)!.trend.reduce((a, b) => a + b, 0), 7, w);
  }
  assert.equal((await signals('1h')).bucket_s, 60);
  const bad = await fetch(`${h.sluice.adminUrl}/signals?window=2d`);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /1m, 5m, 1h, all/);
});

async function auditAlerts(): Promise<Array<Record<string, unknown>>> {
  await h.sluice.audit!.flush();
  const out: Array<Record<string, unknown>> = [];
  for (const s of await listSegments(h.sluice.audit!.dir)) {
    for (const l of (await readSegmentLines(join(h.sluice.audit!.dir, s.file))).lines) {
      if (l.text.startsWith(RECORD_PREFIX) && l.text.includes('"type":"alert"')) out.push(JSON.parse(l.text) as Record<string, unknown>);
    }
  }
  return out;
}

async function waitForHooks(n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (hooks.length < n) {
    assert.ok(Date.now() < deadline, `only ${hooks.length} of ${n} webhook calls arrived`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('alerts: a PII rate over threshold fires once (log, audit record, webhook with the bearer token), not again while it stays above', async () => {
  // new_unsanctioned fired when the deepseek exchange was counted.
  await waitForHooks(1);
  assert.deepEqual(hooks.map((k) => k.body.rule), ['shadow-ai']);
  h.sluice.signals.alerts.evaluate();
  await waitForHooks(2);
  const fired = hooks[1]!;
  assert.equal(fired.headers.authorization, 'Bearer hook-secret-123');
  assert.equal(fired.headers['content-type'], 'application/json');
  assert.deepEqual(
    { rule: fired.body.rule, kind: fired.body.kind, subject: fired.body.subject, value: fired.body.value, threshold: fired.body.threshold, window: fired.body.window },
    { rule: 'pii-support', kind: 'pii_rate', subject: 'support', value: 0.1667, threshold: 0.1, window: '1m' },
  );
  assert.match(String(fired.body.message), /PII in 16\.7% of route support exchanges over 1m/);

  // Still above: no second firing, however often it is evaluated; the p99 rule's threshold is never reached.
  h.sluice.signals.alerts.evaluate();
  h.sluice.signals.alerts.evaluate();
  await (await chat('deepseek-chat', 'again', {}, 'deepseek')).text();
  await settled(10);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(hooks.length, 2, 'no re-fire: pii-support still above, deepseek already seen');

  assert.deepEqual(logLines.map((l) => [l.level, l.rule, l.subject]), [['warn', 'shadow-ai', DEEPSEEK], ['warn', 'pii-support', 'support']]);
  const records = await auditAlerts();
  assert.deepEqual(records.map((r) => [r.type, r.rule, r.kind, r.subject]), [['alert', 'shadow-ai', 'new_unsanctioned', DEEPSEEK], ['alert', 'pii-support', 'pii_rate', 'support']]);
  assert.equal(typeof records[1]!.seq, 'number', 'sealed in the hash chain like any record');
  const verified = await verifyLog(h.sluice.audit!.dir, { publicKeys: await readPublicKeyDir(join(h.sluice.audit!.dir, 'keys')) });
  assert.deepEqual(verified.problems, []);

  const s = await signals('1m');
  assert.deepEqual(s.alerts.map((a) => a.rule), ['pii-support', 'shadow-ai'], 'most recent first');
  const stats = (await (await fetch(`${h.sluice.adminUrl}/stats`)).json()) as { signals: { alerts: { fired: number; webhook: { sent: number; failed: number } } } };
  assert.deepEqual(stats.signals.alerts, { fired: 2, webhook: { sent: 2, failed: 0 } });
  const m = await metrics();
  assert.equal(sample(m, 'sluice_alerts_total', { rule: 'pii-support', kind: 'pii_rate' }), 1);
});

test('alerts: once the rate went back below the threshold, the rule fires again when it rises', async () => {
  const before = hooks.length;
  // support: 6 exchanges, 1 with PII; four clean ones more bring it to 1 in 10, not above 0.1.
  for (let i = 0; i < 4; i++) await (await chat('gpt-4o-mini', `clean ${i}`)).text();
  await settled(14);
  assert.equal((await signals('1m')).routes.find((r) => r.route === 'support')!.pii_rate, 0.1);
  h.sluice.signals.alerts.evaluate();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(hooks.length, before, 'at the threshold: nothing fires');
  await (await chat('gpt-4o-mini', 'and mail john.roe@acme-corp.com too')).text();
  await settled(15);
  h.sluice.signals.alerts.evaluate();
  await waitForHooks(before + 1);
  assert.equal(hooks.at(-1)!.body.rule, 'pii-support');
  assert.equal(hooks.at(-1)!.body.value, 0.1818);
});
