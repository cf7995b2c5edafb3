// The HTTP sink against a local receiver speaking Splunk HEC and Elastic _bulk: formats and auth as receivers
// parse them, every record through 503s, connection resets and a slow receiver, and 4xx reasons surfaced.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createSinks } from '../../../src/audit/sinks/index';
import type { AuditSink } from '../../../src/audit/sinks/types';
import type { AuditSinkSpec } from '../../../src/config/schema';
import { FakeWriter, waitFor } from '../../fixtures/audit';
import { freePort } from '../../fixtures/rsyslog';

const TOKEN = 'hec-token-0f3c';

/** What the receiver does with the next request; `ok` once the script runs out. */
type Step = { status: number; body: string } | 'reset' | { slowMs: number } | { bulkErrors: Array<{ status: number; type: string; reason: string }> };

interface Receiver {
  url: string;
  script: Step[];
  requests: number;
  /** Requests whose auth header or content type was wrong (answered 401/415, so a wrong sink would also stall). */
  rejected: string[];
  /** Every record received, by seq, and how often. */
  records: Map<number, { record: Record<string, unknown>; count: number }>;
  close(): Promise<void>;
}

const dirs: string[] = [];
const servers: Receiver[] = [];
const sinks: AuditSink[] = [];
after(async () => {
  for (const s of sinks) await s.close();
  for (const r of servers) await r.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function receiver(format: 'hec' | 'ndjson', port = 0): Promise<Receiver> {
  const r: Receiver = { url: '', script: [], requests: 0, rejected: [], records: new Map(), close: async () => undefined };
  const keep = (record: Record<string, unknown>) => {
    const seq = record.seq as number;
    const had = r.records.get(seq);
    if (had) had.count++;
    else r.records.set(seq, { record, count: 1 });
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests++;
      const step = r.script.shift() ?? 'ok';
      if (step === 'reset') {
        req.socket.destroy();
        return;
      }
      const answer = () => {
        const auth = format === 'hec' ? `Splunk ${TOKEN}` : `Bearer ${TOKEN}`;
        const type = format === 'hec' ? 'application/json' : 'application/x-ndjson';
        if (req.method !== 'POST' || req.headers.authorization !== auth || req.headers['content-type'] !== type) {
          r.rejected.push(`${req.method} ${req.headers.authorization} ${req.headers['content-type']}`);
          res.writeHead(401).end('{"text":"Invalid authorization","code":3}');
          return;
        }
        if (typeof step === 'object' && 'status' in step) {
          res.writeHead(step.status, { 'content-type': 'application/json' }).end(step.body);
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        const items: unknown[] = [];
        if (format === 'hec') {
          // HEC takes concatenated event objects; each record is one line here, so split there.
          for (const line of body.split('\n').filter(Boolean)) {
            const e = JSON.parse(line) as { time: number; host: string; source: string; sourcetype: string; event: Record<string, unknown> };
            assert.deepEqual(Object.keys(e), ['time', 'host', 'source', 'sourcetype', 'event']);
            assert.equal(e.host, hostname());
            assert.equal(e.source, 'sluice');
            assert.equal(e.sourcetype, 'sluice:audit');
            assert.equal(e.time, Date.parse(e.event.time as string) / 1000);
            keep(e.event);
          }
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"text":"Success","code":0}');
          return;
        }
        const lines = body.split('\n');
        assert.equal(lines.pop(), '', 'a _bulk body ends with a newline');
        assert.equal(lines.length % 2, 0);
        for (let i = 0; i < lines.length; i += 2) {
          const action = JSON.parse(lines[i]!) as { create: { _id: string } };
          const record = JSON.parse(lines[i + 1]!) as Record<string, unknown>;
          assert.equal(action.create._id, record.id);
          keep(record);
          items.push({ create: { _id: record.id, status: 201 } });
        }
        if (typeof step === 'object' && 'bulkErrors' in step) {
          step.bulkErrors.forEach((e, i) => (items[i] = { create: { status: e.status, error: { type: e.type, reason: e.reason } } }));
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ took: 1, errors: typeof step === 'object', items }));
      };
      if (typeof step === 'object' && 'slowMs' in step) setTimeout(answer, step.slowMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as { port: number }).port}${format === 'hec' ? '/services/collector/event' : '/sluice-audit/_bulk'}`;
  r.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  servers.push(r);
  return r;
}

function setup(format: 'hec' | 'ndjson', spec: Partial<AuditSinkSpec>, url: string): { sink: AuditSink; writer: FakeWriter } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-http-sink-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  const writer = new FakeWriter(join(dir, 'audit'));
  const sink = createSinks([{ name: 'siem', type: 'http', url, format, token_file: join(dir, 'token'), max_backoff_ms: 100, ...spec }], join(dir, 'data'), writer.dir)[0]!;
  sinks.push(sink);
  return { sink, writer };
}

/** Every record 1..n arrived, as written. */
function assertAll(r: Receiver, writer: FakeWriter, n: number): void {
  assert.deepEqual(r.rejected, []);
  for (let seq = 1; seq <= n; seq++) {
    const got = r.records.get(seq);
    assert.ok(got, `record ${seq} delivered`);
    assert.equal(JSON.stringify(got.record), writer.lines.get(seq));
  }
  assert.equal(r.records.size, n);
}

test('http hec: every record delivered through 503s, connection resets and a slow receiver, spilling past the queue', async () => {
  const r = await receiver('hec');
  const unavailable = { status: 503, body: '{"text":"Server is busy","code":9}' };
  r.script = [unavailable, unavailable, unavailable, 'reset', 'reset', 'reset', { slowMs: 300 }, { slowMs: 300 }, { slowMs: 300 }];
  const { sink, writer } = setup('hec', { queue_records: 100, batch_records: 50 }, r.url);
  await sink.start();
  writer.writeAndOffer(500, 20, [sink]);
  writer.rotate();
  writer.writeAndOffer(500, 20, [sink]);
  const spilled = sink.stats();
  assert.ok(spilled.behind > 0, 'the queue overflowed and the sink noted it is behind');
  assert.ok(spilled.queued <= 100);

  await waitFor('records 1..1000 at the receiver', () => sink.stats().deliveredSeq === 1000, 15_000, () => sink.stats());
  assertAll(r, writer, 1000);
  const s = sink.stats();
  assert.equal(s.failures, 6, '3 × 503 and 3 resets, each retried');
  assert.equal(s.behind, 0);
  assert.equal(s.queued, 0);
  assert.equal(s.connected, true);
  assert.ok(s.delivered >= 1000);
});

test('http hec: a 400 is retried with backoff and the receiver’s reason is kept in lastError', async () => {
  const r = await receiver('hec');
  const invalid = { status: 400, body: '{"text":"Invalid data format","code":6,"invalid-event-number":0}' };
  r.script = [invalid, invalid, invalid];
  const { sink, writer } = setup('hec', {}, r.url);
  await sink.start();
  writer.writeAndOffer(30, 10, [sink]);
  await waitFor('a refused batch', () => sink.stats().failures > 0, 5000);
  assert.match(sink.stats().lastError ?? '', /400 .*Invalid data format/);
  await waitFor('delivery once the receiver accepts', () => sink.stats().deliveredSeq === 30, 5000, () => sink.stats());
  assertAll(r, writer, 30);
  assert.equal(sink.stats().failures, 3);
  assert.match(sink.stats().lastError ?? '', /Invalid data format/, 'the last error stays visible after recovery');
});

test('http ndjson: _bulk pairs keyed by record id; a 409 item is a duplicate, any other failed item retries the batch', async () => {
  const r = await receiver('ndjson');
  r.script = [
    'reset',
    { bulkErrors: [{ status: 409, type: 'version_conflict_engine_exception', reason: 'document already exists' }] },
    { bulkErrors: [{ status: 400, type: 'mapper_parsing_exception', reason: 'failed to parse field [note]' }] },
  ];
  const { sink, writer } = setup('ndjson', { batch_records: 25 }, r.url);
  await sink.start();
  writer.writeAndOffer(100, 25, [sink]);
  await waitFor('records 1..100 at the receiver', () => sink.stats().deliveredSeq === 100, 10_000, () => sink.stats());
  assertAll(r, writer, 100);
  const s = sink.stats();
  assert.equal(s.failures, 2, 'the reset and the mapper failure; the 409 counts as delivered');
  assert.match(s.lastError ?? '', /1 of 25 bulk items failed, first: 400 mapper_parsing_exception: failed to parse field \[note\]/);
  assert.equal(r.requests, 6, '4 batches, two of them sent twice');
});

test('http: a receiver that is down is retried until it is up, then the segments are caught up', async () => {
  const port = await freePort();
  const { sink, writer } = setup('ndjson', { queue_records: 50 }, `http://127.0.0.1:${port}/sluice-audit/_bulk`);
  await sink.start();
  writer.writeAndOffer(200, 20, [sink]);
  await waitFor('failures while down', () => sink.stats().failures >= 2, 5000);
  assert.equal(sink.stats().connected, false);
  assert.match(sink.stats().lastError ?? '', /ECONNREFUSED/);
  assert.equal(sink.stats().behind, 200 - sink.stats().deliveredSeq);

  const r = await receiver('ndjson', port);
  await waitFor('records 1..200 after the outage', () => sink.stats().deliveredSeq === 200, 10_000, () => sink.stats());
  assertAll(r, writer, 200);
});
