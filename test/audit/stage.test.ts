// Every exchange of every front door becomes one signed audit record: real clients through a running Sluice,
// then the segment files are read back and `verifyLog` checks them with only the public key.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import OpenAI from 'openai';
import { readPublicKeyDir } from '../../src/audit/keys';
import { listSegments, readSegmentLines, RECORD_PREFIX } from '../../src/audit/segments';
import { verifyLog } from '../../src/audit/verify';
import { breakDirectory } from '../fixtures/audit-log';
import { curlThrough } from '../fixtures/curl';
import { startHarness, type Harness } from '../fixtures/harness';
import { openTunnel, rawExchange } from '../fixtures/tls';

const AWS_KEY = 'AKIAQ3EGUS2Z4KXGJHWB';
const EMAIL = 'jane.doe@acme-corp.com';
const POLICY = `
destinations: { sanctioned: [openai, anthropic] }
policy:
  mode: enforce
  content:
    - { id: no-secrets, action: block, categories: [credential], min_severity: high }
    - { id: watch-pii, action: alert, categories: [pii] }
interception: { deny: ['*.blocked.example'] }
audit: { batch_ms: 20, capture: true }
`;

let h: Harness;
let openai: OpenAI;
let echo: Server;

type AuditRecord = Record<string, any>;

/** Seals everything pending, then reads every record line of the log. */
async function records(): Promise<AuditRecord[]> {
  await h.sluice.audit!.flush();
  const out: AuditRecord[] = [];
  for (const s of await listSegments(h.sluice.audit!.dir)) {
    for (const l of (await readSegmentLines(join(h.sluice.audit!.dir, s.file))).lines) if (l.text.startsWith(RECORD_PREFIX)) out.push(JSON.parse(l.text));
  }
  return out;
}

const recordOf = async (id: string) => {
  const r = (await records()).find((x) => x.id === id);
  assert.ok(r, `a record for exchange ${id}`);
  return r;
};

before(async () => {
  h = await startHarness(POLICY, (c) => {
    c.detect.enabled = true;
    c.detect.threads = 0;
  });
  openai = new OpenAI({ baseURL: `${h.sluice.gatewayUrl}/openai/v1`, apiKey: 'sk-test', maxRetries: 0 });
  echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  h.sluice.config.upstreams['intranet.example.test'] = `https://127.0.0.1:${(echo.address() as { port: number }).port}`;
});
after(async () => {
  await h?.close();
  echo?.close();
});
beforeEach(() => h.skipPending());

test('an allowed completion: destination, identity, route, model, usage, latency and the decision with its policy version', async () => {
  await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `mail ${EMAIL} the report` }] });
  const x = await h.nextExchange();
  const r = await recordOf(x.id);
  assert.equal(r.v, 1);
  assert.equal(r.type, 'exchange');
  assert.equal(r.front_door, 'gateway');
  assert.equal(r.outcome, 'completed');
  assert.deepEqual(r.destination, { host: 'api.openai.com', provider: 'openai', tier: 'major', sanctioned: true, shadow: false, region: null, jurisdiction: 'US' });
  assert.equal(r.identity.subject, 'anonymous');
  assert.equal(r.identity.method, 'address');
  assert.equal(r.route, 'default');
  assert.equal(r['gen_ai.request.model'], 'gpt-4o-mini');
  assert.equal(r['gen_ai.operation.name'], 'chat.completions');
  assert.ok(r['gen_ai.usage.input_tokens'] > 0);
  assert.equal(r.response.status, 200);
  assert.ok(r.latency_ms.total >= r.latency_ms.upstream_ttfb && r.latency_ms.total > 0);
  assert.equal(r.policy.decision, 'alert');
  assert.equal(r.policy.rule, 'content:watch-pii');
  assert.equal(r.policy.version, x.decision.policyVersion);
  const email = r.request.findings.find((f: AuditRecord) => f.category === 'pii');
  assert.ok(email, 'the email finding is recorded');
  assert.match(email.digest, /^[0-9a-f]{64}$/);
  // Capture is on: the text is there with the value masked, and the raw value is nowhere in the record.
  assert.match(r.capture.request[0].text, new RegExp(`^mail ${email.masked.replace(/[*.]/g, '\\$&')} the report$`));
  assert.ok(!JSON.stringify(r).includes(EMAIL), 'the raw email never reaches the log');
  assert.equal(typeof r.seq, 'number');
  assert.match(r.prev, /^[0-9a-f]{64}$/);
});

test('a blocked secret is recorded with the rule, the masked value and the reference the client saw', async () => {
  let ref = '';
  await assert.rejects(openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `use ${AWS_KEY}` }] }), (err: InstanceType<typeof OpenAI.APIError>) => {
    ref = /\(reference ([0-9a-f-]{36})\)/.exec(err.message)?.[1] ?? '';
    return err.status === 403;
  });
  const r = await recordOf(ref);
  assert.equal(r.outcome, 'blocked');
  assert.equal(r.policy.decision, 'block');
  assert.equal(r.policy.rule, 'content:no-secrets');
  assert.equal(r.error.code, 'SLUICE_BLOCKED');
  assert.equal(r.response, null, 'nothing went upstream');
  assert.equal(r.request.findings[0].rule, 'aws-access-key');
  assert.ok(!readFileSync(join(h.sluice.audit!.dir, (await listSegments(h.sluice.audit!.dir)).at(-1)!.file), 'utf8').includes(AWS_KEY), 'the key is not in the file');
});

test('a streamed tool call: name, argument digest and argument findings', async () => {
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    stream: true,
    tools: [{ type: 'function', function: { name: 'send_email', parameters: { type: 'object', properties: {} } } }],
    messages: [{ role: 'user', content: `send the summary to ${EMAIL}` }],
  });
  for await (const _ of stream) void _;
  const x = await h.nextExchange();
  const r = await recordOf(x.id);
  assert.equal(r.response.streamed, true);
  assert.deepEqual(r.request.tools_offered, ['send_email']);
  const call = r.response.tool_calls[0];
  assert.equal(call?.name, 'send_email', JSON.stringify(r.response));
  assert.match(call.argument_digest, /^[0-9a-f]{64}$/);
  assert.equal(call.argument_findings[0]?.category, 'pii');
});

test('connection-level outcomes are records too: a tunnel with its byte counts, a denied CONNECT, a rejected request', async () => {
  const sock = await openTunnel(h.sluice.ports.forward, 'intranet.example.test:443');
  await new Promise<void>((resolve) => {
    sock.once('data', () => resolve());
    sock.write('ping');
  });
  sock.end();
  const tunnel = await h.nextExchange();
  assert.equal(tunnel.outcome, 'tunnelled');
  const denied = await curlThrough(h.sluice.forwardUrl, ['https://api.blocked.example/']);
  assert.notEqual(denied.code, 0);
  const deniedX = await h.nextExchange();
  await rawExchange(h.sluice.ports.forward, 'GET nonsense\r\n\r\n');
  const rejected = await h.nextExchange();

  const t = await recordOf(tunnel.id);
  assert.equal(t.front_door, 'connect');
  assert.equal(t.outcome, 'tunnelled');
  assert.equal(t.destination.host, 'intranet.example.test');
  assert.equal(t.request.bytes, 4);
  assert.equal(t.response, null);
  const d = await recordOf(deniedX.id);
  assert.equal(d.outcome, 'denied');
  assert.equal(d.error.code, 'SLUICE_CONNECT_DENIED');
  const j = await recordOf(rejected.id);
  assert.equal(j.outcome, 'rejected');
  assert.equal(j.front_door, 'forward');
});

test('the log verifies with only the public key, and every completed exchange has exactly one record', async () => {
  const recs = await records();
  const ids = recs.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length, 'no exchange recorded twice');
  for (const x of h.exchanges) assert.ok(ids.includes(x.id), `exchange ${x.id} (${x.outcome}) has a record`);
  assert.deepEqual(recs.map((r) => r.seq), recs.map((_, i) => i + 1));
  const result = await verifyLog(h.sluice.audit!.dir, { publicKeys: await readPublicKeyDir(join(h.sluice.audit!.dir, 'keys')) });
  assert.deepEqual(result.problems, []);
  assert.equal(result.ok, true);
  assert.equal(result.records, recs.length);
  const stats = (await (await fetch(`${h.sluice.adminUrl}/stats`)).json()) as { audit: { records: number; healthy: boolean; lost: number } };
  assert.equal(stats.audit.healthy, true);
  assert.equal(stats.audit.lost, 0);
  assert.ok(stats.audit.records >= recs.length);
});

for (const mode of ['closed', 'open'] as const) {
  test(`a disk write error with audit.on_write_error: ${mode} ${mode === 'closed' ? 'refuses requests with 503 until the log is writable again' : 'lets requests pass, counted and logged, and loses no record'}`, async () => {
    const auditDir = join(mkdtempSync(join(tmpdir(), 'sluice-audit-fail-')), 'audit');
    const f = await startHarness(`audit: { dir: ${JSON.stringify(auditDir)}, segment_max_bytes: 4096, batch_ms: 5, on_write_error: ${mode} }\n`);
    const chat = async () => {
      const res = await fetch(`${f.sluice.gatewayUrl}/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }) });
      return { status: res.status, code: res.headers.get('x-sluice-error'), body: await res.text() };
    };
    const ready = async () => (await fetch(`${f.sluice.adminUrl}/readyz`)).status;
    try {
      assert.equal((await chat()).status, 200);
      await f.sluice.audit!.flush();
      const undo = breakDirectory(auditDir);
      // Records fill the segment until it rotates; the next segment cannot be opened.
      const seen: Array<{ status: number; code: string | null; body: string }> = [];
      for (let i = 0; i < 60 && f.sluice.audit!.healthy; i++) {
        seen.push(await chat());
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(f.sluice.audit!.healthy, false, 'the write error was noticed');
      assert.ok(f.sluice.audit!.stats().write_errors > 0);
      const during = await chat();
      if (mode === 'closed') {
        assert.equal(during.status, 503);
        assert.equal(during.code, 'SLUICE_AUDIT_WRITE');
        assert.match(JSON.parse(during.body).error.message, /audit log cannot be written and audit\.on_write_error is closed/);
        assert.equal(await ready(), 503, 'a load balancer takes this instance out');
      } else {
        assert.equal(during.status, 200);
        assert.equal(await ready(), 200);
      }
      assert.ok(seen.every((s) => s.status === 200), 'requests before the failure was known all passed');

      undo();
      const deadline = Date.now() + 10_000;
      while (!f.sluice.audit!.healthy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(f.sluice.audit!.healthy, true, 'writes resumed once the directory was back');
      assert.equal((await chat()).status, 200);
      await f.sluice.audit!.flush();
      const result = await verifyLog(auditDir, { publicKeys: await readPublicKeyDir(join(auditDir, 'keys')) });
      assert.deepEqual(result.problems, []);
      const recorded = result.records;
      const answered = f.exchanges.filter((x) => x.outcome !== 'pending').length;
      assert.equal(recorded, answered, 'every exchange, including those during the outage, has its record');
      assert.equal(f.sluice.audit!.stats().dropped, 0);
    } finally {
      await f.close();
      rmSync(dirname(auditDir), { recursive: true, force: true });
    }
  });
}
