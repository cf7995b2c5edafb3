// The syslog sink against a real rsyslogd (plain TCP and TLS via gtls): every record arrives as written, in order,
// through an outage longer than the queue (read back from the segments), and after a restart from the cursor.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createSinks } from '../../../src/audit/sinks/index';
import type { AuditSink } from '../../../src/audit/sinks/types';
import type { AuditSinkSpec } from '../../../src/config/schema';
import { FakeWriter, waitFor } from '../../fixtures/audit';
import { rsyslog, type Received, type Rsyslog } from '../../fixtures/rsyslog';
import { testCa } from '../../fixtures/tls';

const dirs: string[] = [];
const daemons: Rsyslog[] = [];
const sinks: AuditSink[] = [];
after(async () => {
  for (const s of sinks) await s.close();
  for (const d of daemons) await d.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sluice-syslog-'));
  dirs.push(d);
  return d;
}

async function startDaemon(dir: string, tls?: { ca: string; cert: string; key: string }): Promise<Rsyslog> {
  const r = await rsyslog(dir, tls);
  daemons.push(r);
  return r;
}

function sink(spec: Partial<AuditSinkSpec> & { url: string }, dataDir: string, auditDir: string): AuditSink {
  const s = createSinks([{ name: 'siem', type: 'syslog', max_backoff_ms: 200, ...spec }], dataDir, auditDir)[0]!;
  sinks.push(s);
  return s;
}

/** Each seq's first arrival, in arrival order (delivery is at least once: a resent batch repeats seqs). */
function firstArrivals(msgs: Received[]): Received[] {
  const seen = new Set<number>();
  return msgs.filter((m) => !seen.has(m.seq) && seen.add(m.seq));
}

function hasAll(r: Rsyslog, upTo: number): boolean {
  const seqs = new Set(r.received().map((m) => m.seq));
  for (let s = 1; s <= upTo; s++) if (!seqs.has(s)) return false;
  return true;
}

const SEVERITY: Record<string, string> = { block: 'warning', alert: 'notice', allow: 'info', redact: 'info' };

/** Every record 1..upTo arrived exactly as written, first arrivals in sequence order, with the right header. */
function assertDelivered(r: Rsyslog, writer: FakeWriter, upTo: number): void {
  const first = firstArrivals(r.received()).filter((m) => m.seq <= upTo);
  assert.deepEqual(
    first.map((m) => m.seq),
    Array.from({ length: upTo }, (_, i) => i + 1),
  );
  for (const m of first) {
    const line = writer.lines.get(m.seq)!;
    const record = JSON.parse(line) as { id: string; policy: { decision: string; response?: { decision: string } } };
    assert.equal(m.msg, line, `seq ${m.seq}: MSG is the record line byte for byte`);
    assert.equal(m.id, record.id);
    assert.equal(m.msgid, 'exchange');
    assert.equal(m.app, 'sluice');
    assert.equal(m.hostname, hostname());
    const blockedResponse = record.policy.response?.decision === 'block';
    assert.equal(m.severity, blockedResponse ? 'warning' : SEVERITY[record.policy.decision], `seq ${m.seq} (${JSON.stringify(record.policy)})`);
  }
}

test('syslog over TCP: every record arrives as written and in order, through an outage longer than the queue', async () => {
  const dir = tempDir();
  const r = await startDaemon(join(dir, 'rsyslog'));
  const writer = new FakeWriter(join(dir, 'audit'));
  const s = sink({ url: `tcp://127.0.0.1:${r.port}`, queue_records: 200, batch_records: 50 }, join(dir, 'data'), writer.dir);
  await s.start();

  writer.writeAndOffer(300, 25, [s]);
  writer.rotate();
  writer.writeAndOffer(200, 25, [s]);
  await waitFor('records 1..500 at rsyslog', () => hasAll(r, 500) && s.stats().deliveredSeq === 500, 10_000, () => s.stats());
  assertDelivered(r, writer, 500);
  assert.equal(s.stats().queued, 0);
  assert.equal(s.stats().behind, 0);

  // rsyslog down: 800 more records, four times the queue, so most must come back from the segment files.
  await r.stop();
  writer.writeAndOffer(400, 25, [s]);
  writer.rotate();
  writer.writeAndOffer(400, 25, [s]);
  await waitFor('a failed delivery while rsyslog is down', () => s.stats().failures > 0, 5000, () => s.stats());
  const down = s.stats();
  assert.equal(down.connected, false);
  assert.ok(down.behind > 200, `behind ${down.behind}: the overflow is noted, not dropped`);
  assert.ok(down.queued <= 200);
  assert.match(down.lastError ?? '', /ECONNREFUSED|closed/);
  assert.equal(down.deliveredSeq, 500);

  await r.start();
  await waitFor('records 1..1300 at rsyslog', () => hasAll(r, 1300) && s.stats().deliveredSeq === 1300, 10_000, () => s.stats());
  assertDelivered(r, writer, 1300);
  const up = s.stats();
  assert.equal(up.connected, true);
  assert.equal(up.behind, 0);
  assert.ok(up.delivered >= 1300);

  await s.close();
  const cursor = join(dir, 'data', 'sinks', 'siem.cursor');
  assert.equal(readFileSync(cursor, 'utf8'), '1300\n');
  assert.equal(existsSync(`${cursor}.tmp`), false, 'the cursor is renamed into place');
});

test('syslog: rsyslog restarted while records stream loses none (unread bytes die with it; they are resent)', async () => {
  const dir = tempDir();
  const r = await startDaemon(join(dir, 'rsyslog'));
  const writer = new FakeWriter(join(dir, 'audit'));
  const s = sink({ url: `tcp://127.0.0.1:${r.port}` }, join(dir, 'data'), writer.dir);
  await s.start();
  for (let i = 0; i < 100; i++) {
    writer.writeAndOffer(200, 100, [s]);
    if (i === 30) {
      await r.stop();
      await r.start();
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await waitFor('records 1..20000 at rsyslog', () => s.stats().deliveredSeq === 20_000 && hasAll(r, 20_000), 15_000, () => s.stats());
  assertDelivered(r, writer, 20_000);
});

test('syslog: a new sink with the same data_dir resumes after the cursor', async () => {
  const dir = tempDir();
  const r = await startDaemon(join(dir, 'rsyslog'));
  const writer = new FakeWriter(join(dir, 'audit'));
  const dataDir = join(dir, 'data');
  const url = `tcp://127.0.0.1:${r.port}`;
  const first = sink({ url, batch_records: 20 }, dataDir, writer.dir);
  await first.start();
  writer.writeAndOffer(300, 30, [first]);
  await waitFor('records 1..300 confirmed', () => first.stats().deliveredSeq === 300, 10_000, () => first.stats());

  // Closed mid-way: the receiver is down and 301..600 are only on disk.
  await r.stop();
  writer.writeAndOffer(300, 30, [first]);
  await waitFor('a failed delivery', () => first.stats().failures > 0, 5000);
  await first.close();
  const cursor = Number(readFileSync(join(dataDir, 'sinks', 'siem.cursor'), 'utf8'));
  assert.equal(cursor, 300);

  const before = statSync(r.out).size;
  await r.start();
  const second = sink({ url, batch_records: 20 }, dataDir, writer.dir);
  await second.start();
  writer.writeAndOffer(100, 10, [second]);
  await waitFor('records 1..700 at rsyslog', () => hasAll(r, 700) && second.stats().deliveredSeq === 700, 10_000, () => second.stats());
  const resumed = readFileSync(r.out).subarray(before).toString('utf8');
  const seqs = [...resumed.matchAll(/seq="(\d+)"/g)].map((m) => Number(m[1]));
  assert.equal(seqs[0], cursor + 1, 'the new sink starts right after the cursor');
  assert.ok(
    seqs.every((q) => q > cursor),
    'nothing at or below the cursor is sent again',
  );
  assertDelivered(r, writer, 700);
});

test('syslog over TLS (rsyslog gtls): the receiver certificate is verified against `ca`', async () => {
  const dir = tempDir();
  const ca = await testCa('Sluice Syslog Test CA');
  try {
    const leaf = ca.issueFiles('127.0.0.1');
    const r = await startDaemon(join(dir, 'rsyslog'), { ca: ca.certPath, cert: leaf.cert, key: leaf.key });
    const writer = new FakeWriter(join(dir, 'audit'));
    const url = `tls://127.0.0.1:${r.port}`;

    const untrusted = sink({ url }, join(dir, 'data-untrusted'), writer.dir);
    await untrusted.start();
    writer.writeAndOffer(10, 10, [untrusted]);
    await waitFor('a refused certificate', () => untrusted.stats().failures > 0, 5000);
    assert.match(untrusted.stats().lastError ?? '', /certificate/i);
    assert.equal(untrusted.stats().deliveredSeq, 0);
    await untrusted.close();

    const trusted = sink({ url, ca: ca.certPath, batch_records: 40 }, join(dir, 'data'), writer.dir);
    await trusted.start();
    writer.writeAndOffer(190, 19, [trusted]);
    await waitFor('records 1..200 over TLS', () => hasAll(r, 200) && trusted.stats().deliveredSeq === 200, 10_000, () => trusted.stats());
    assertDelivered(r, writer, 200);
    assert.equal(r.received().length >= 200, true);
  } finally {
    ca.cleanup();
  }
});
