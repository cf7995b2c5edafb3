// The audit writer through its public API and the files it leaves: chaining, batching, rotation, sinks, crash
// recovery, write errors, retention and key rotation, each checked with the real verifier afterwards.

import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseCheckpoint, signCheckpoint } from '../../src/audit/checkpoint.js';
import { keyIdOf, readPublicKeyDir, readPublicKeyFile, rotateKey, SigningKey } from '../../src/audit/keys.js';
import { AuditLog, FAILURE_BUFFER_BYTES } from '../../src/audit/log.js';
import { leafHash } from '../../src/audit/merkle.js';
import { CHECKPOINTS_FILE } from '../../src/audit/segments.js';
import type { AuditSink, SinkStats } from '../../src/audit/sinks/types.js';
import { verifyLog } from '../../src/audit/verify.js';
import { auditConfig, breakDirectory, readLines, record, segmentFiles, tempDir, writeLog } from '../fixtures/audit-log.js';

const dirs: string[] = [];
function scratch(): string {
  const d = tempDir('sluice-log-');
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function verifyWithOwnKeys(auditDir: string) {
  return verifyLog(auditDir, { publicKeys: await readPublicKeyDir(join(auditDir, 'keys')) });
}

function records(auditDir: string): string[] {
  return segmentFiles(auditDir).flatMap((f) => readLines(join(auditDir, f)).filter((l) => l.startsWith('{"seq":')));
}

async function until(what: string, cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('records are numbered, hash-chained and sealed in signed batches; checkpoints.jsonl repeats every checkpoint', async () => {
  const data = scratch();
  const log = await AuditLog.open(auditConfig(), data);
  assert.equal(log.append(record(1)), 1);
  for (let i = 2; i <= 11; i++) assert.equal(log.append(record(i)), i);
  assert.equal(log.append('{}'), 12);
  await log.close();

  const lines = records(log.dir);
  assert.equal(lines.length, 12);
  let prev = '0'.repeat(64);
  lines.forEach((l, i) => {
    assert.ok(l.startsWith(`{"seq":${i + 1},"prev":"${prev}"`), l);
    prev = leafHash(l).toString('hex');
  });
  assert.equal(lines[0], `{"seq":1,"prev":"${'0'.repeat(64)}",${record(1).slice(1)}`);
  assert.equal(lines[11], `{"seq":12,"prev":"${leafHash(lines[10]!).toString('hex')}"}`);

  const inSegments = segmentFiles(log.dir).flatMap((f) => readLines(join(log.dir, f)).filter((l) => l.startsWith('{"checkpoint":')));
  assert.deepEqual(readLines(join(log.dir, CHECKPOINTS_FILE)), inSegments);
  assert.deepEqual(
    inSegments.map((l) => {
      const s = parseCheckpoint(l);
      assert.ok(typeof s !== 'string');
      return [s.cp.batch, s.cp.first_seq, s.cp.last_seq];
    }),
    [
      [1, 1, 5],
      [2, 6, 10],
      [3, 11, 12],
    ],
  );
  const r = await verifyWithOwnKeys(log.dir);
  assert.deepEqual(r.problems, []);
  assert.equal(r.records, 12);
});

test('the signing key is made on first run: 0600 file in a 0700 dir, public key beside it and in the audit dir', async () => {
  const data = scratch();
  const log = await AuditLog.open(auditConfig(), data);
  await log.close();
  const keyFile = join(data, 'keys', 'audit-signing.json');
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  assert.equal(statSync(join(data, 'keys')).mode & 0o777, 0o700);
  const kf = JSON.parse(readFileSync(keyFile, 'utf8')) as { key_id: string; public_key: string; secret_key: string; created: string };
  assert.equal(kf.key_id, keyIdOf(Buffer.from(kf.public_key, 'base64')));
  assert.equal(Buffer.from(kf.secret_key, 'base64').length, 64);
  assert.ok(!Number.isNaN(Date.parse(kf.created)));
  const pub = JSON.parse(readFileSync(join(data, 'keys', `${kf.key_id}.pub`), 'utf8')) as object;
  assert.deepEqual(pub, { alg: 'Ed25519', key_id: kf.key_id, public_key: kf.public_key });
  assert.equal(log.publicKeyFile, join(log.dir, 'keys', `${kf.key_id}.pub`));
  assert.deepEqual(await readPublicKeyFile(log.publicKeyFile), pub);
  // A second open uses the same key.
  const again = await AuditLog.open(auditConfig(), data);
  await again.close();
  assert.equal(JSON.parse(readFileSync(keyFile, 'utf8')).key_id, kf.key_id);
});

test('append takes one-line JSON objects only, never touches the disk, and refuses after close', async () => {
  const data = scratch();
  const log = await AuditLog.open(auditConfig({ batch_records: 1000 }), data);
  assert.throws(() => log.append('[1]'), { code: 'SLUICE_INTERNAL' });
  assert.throws(() => log.append('{"a":\n1}'), { code: 'SLUICE_INTERNAL' });
  log.append(record(1));
  assert.deepEqual(segmentFiles(log.dir), [], 'nothing written before the batch closes');
  assert.equal(log.stats().unsealed, 1);
  await log.close();
  assert.throws(() => log.append(record(2)), { code: 'SLUICE_AUDIT_WRITE', status: 503 });
});

test('a batch closes after batch_ms without a flush', async () => {
  const data = scratch();
  const log = await AuditLog.open(auditConfig({ batch_records: 1000, batch_ms: 30 }), data);
  log.append(record(1));
  log.append(record(2));
  // The checkpoints file gets its line before the writer counts the batch sealed: wait for both.
  await until('a checkpoint', () => existsSync(join(log.dir, CHECKPOINTS_FILE)) && readLines(join(log.dir, CHECKPOINTS_FILE)).length === 1 && log.stats().unsealed === 0);
  assert.equal(readLines(join(log.dir, CHECKPOINTS_FILE)).length, 1, 'one batch, sealed by its timer');
  await log.close();
});

test('segments rotate by size and by age at batch boundaries; each ends with a checkpoint', async () => {
  let clock = Date.UTC(2026, 0, 1);
  const data = scratch();
  const log = await AuditLog.open(auditConfig({ segment_max_bytes: 4096, segment_max_age_ms: 3_600_000 }), data, { now: () => clock });
  for (let i = 1; i <= 30; i++) log.append(record(i));
  await log.flush();
  const bySize = segmentFiles(log.dir);
  assert.ok(bySize.length >= 2, `size rotation (${bySize.join(', ')})`);
  clock += 3_600_000;
  for (let i = 31; i <= 35; i++) log.append(record(i));
  await log.close();
  const all = segmentFiles(log.dir);
  assert.equal(all.length, bySize.length + 1, 'age rotation');
  assert.equal(all.at(-1), `audit-${String(31).padStart(16, '0')}-20260101T010000Z.jsonl`);
  for (const f of all) {
    const lines = readLines(join(log.dir, f));
    assert.ok(lines.at(-1)!.startsWith('{"checkpoint":'), `${f} ends with a checkpoint`);
    const firstSeq = Number(f.slice(6, 22));
    assert.ok(lines[0]!.startsWith(`{"seq":${firstSeq},`), `${f} starts with its first record`);
    if (f !== all.at(-1)) assert.ok(statSync(join(log.dir, f)).size >= 4096 || f === bySize.at(-1));
  }
  assert.deepEqual((await verifyWithOwnKeys(log.dir)).problems, []);
});

test('fsync: batch syncs once per batch, record on every write, none never', async () => {
  const counts: Record<string, number> = {};
  for (const fsync of ['none', 'batch', 'record'] as const) {
    const log = await AuditLog.open(auditConfig({ fsync, segment_max_bytes: 1 << 20 }), scratch());
    for (let i = 1; i <= 20; i++) log.append(record(i));
    await log.close();
    counts[fsync] = log.stats().fsyncs;
  }
  assert.equal(counts.none, 0);
  // 4 batches: one fsync each before the checkpoint, then close syncs the segment and checkpoints.jsonl.
  assert.equal(counts.batch, 4 + 2);
  assert.ok(counts.record! > counts.batch!, JSON.stringify(counts));
});

test('sinks get each batch after it is on disk, are started and closed, and cannot hurt the writer', async () => {
  const data = scratch();
  const offers: Array<{ lines: string[]; firstSeq: number; onDisk: boolean }> = [];
  const calls: string[] = [];
  let dir = '';
  const stats = (): SinkStats => ({ name: 'x', type: 'http', queued: 0, behind: 0, delivered: 0, failures: 0, deliveredSeq: 0, connected: true, lastError: null });
  const good: AuditSink = {
    name: 'good',
    start: async () => void calls.push('start'),
    offer: (lines, firstSeq) => {
      const onDisk = records(dir).includes(lines[0]!) && readLines(join(dir, CHECKPOINTS_FILE)).length > offers.length;
      offers.push({ lines: [...lines], firstSeq, onDisk });
    },
    stats,
    close: async () => void calls.push('close'),
  };
  const bad: AuditSink = {
    name: 'bad',
    start: async () => {
      throw new Error('cannot connect');
    },
    offer: () => {
      throw new Error('boom');
    },
    stats,
    close: async () => {},
  };
  const errors: string[] = [];
  const log = await AuditLog.open(auditConfig(), data, { sinks: [bad, good], onError: (e) => errors.push(e.message) });
  dir = log.dir;
  for (let i = 1; i <= 12; i++) log.append(record(i));
  await log.close();
  assert.deepEqual(calls, ['start', 'close']);
  assert.deepEqual(
    offers.map((o) => [o.firstSeq, o.lines.length, o.onDisk]),
    [
      [1, 5, true],
      [6, 5, true],
      [11, 2, true],
    ],
  );
  assert.deepEqual(offers.flatMap((o) => o.lines), records(log.dir));
  assert.ok(errors.includes('cannot connect') && errors.includes('boom'), errors.join(' | '));
});

test('retention below 180 days is refused unless forced', async () => {
  await assert.rejects(AuditLog.open(auditConfig({ retention_days: 30 }), scratch()), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
    assert.match(err.message, /audit\.retention_days is 30/);
    assert.match(err.message, /retention_force/);
    return true;
  });
  const log = await AuditLog.open(auditConfig({ retention_days: 30, retention_force: true }), scratch());
  await log.close();
});

test('retention deletes whole old segments, states it in a signed checkpoint, and the log still verifies', async () => {
  const day = 86_400_000;
  let clock = Date.UTC(2026, 0, 1);
  const data = scratch();
  const cfg = auditConfig({ retention_days: 180, segment_max_age_ms: day, segment_max_bytes: 1 << 20 });
  const log = await AuditLog.open(cfg, data, { now: () => clock });
  for (let d = 0; d < 4; d++) {
    for (let i = 1; i <= 5; i++) log.append(record(d * 5 + i));
    await log.flush();
    clock += day;
  }
  await log.close();
  const before = segmentFiles(log.dir);
  assert.equal(before.length, 4);

  clock = Date.UTC(2026, 0, 1) + 183.5 * day; // segments 1-3 were followed by newer ones more than 180 days ago
  const reopened = await AuditLog.open(cfg, data, { now: () => clock });
  await reopened.close();
  assert.deepEqual(segmentFiles(log.dir), [before[3]], 'only the segment being written survives');
  const cps = readLines(join(log.dir, CHECKPOINTS_FILE));
  const last = parseCheckpoint(cps.at(-1)!);
  assert.ok(typeof last !== 'string');
  assert.deepEqual(last.cp.pruned, {
    first_seq: 1,
    last_seq: 15,
    segments: before.slice(0, 3),
    reason: 'retention: segments whose records are all older than 180 days (audit.retention_days)',
  });
  assert.equal(last.cp.tree_size, 0);
  assert.equal(cps.length, 5, 'checkpoints.jsonl keeps the pruned batches');
  const r = await verifyWithOwnKeys(log.dir);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.pruned, [{ first_seq: 1, last_seq: 15 }]);
  assert.equal(r.records, 5);

  // Without the signed statement, the same gap is a missing segment.
  writeFileSync(join(log.dir, CHECKPOINTS_FILE), cps.slice(0, -1).map((l) => `${l}\n`).join(''));
  const seg = join(log.dir, before[3]!);
  writeFileSync(seg, readLines(seg).slice(0, -1).map((l) => `${l}\n`).join(''));
  const r2 = await verifyWithOwnKeys(log.dir);
  assert.deepEqual(
    r2.problems.map((p) => [p.kind, p.file, p.seq]),
    before.slice(0, 3).map((f, i) => ['missing_segment', f, i * 5 + 1]),
  );
});

test('a torn last line is moved aside, unsealed records are sealed on reopen, and numbering continues', async () => {
  const data = scratch();
  const dir = await writeLog(data, 12);
  const seg = join(dir, segmentFiles(dir).at(-1)!);
  // What a crash mid-batch leaves: complete records with no checkpoint, then half a line.
  let prev = leafHash(records(dir).at(-1)!).toString('hex');
  for (let seq = 13; seq <= 15; seq++) {
    const line = `{"seq":${seq},"prev":"${prev}",${record(seq).slice(1)}`;
    appendFileSync(seg, `${line}\n`);
    prev = leafHash(line).toString('hex');
  }
  const torn = `{"seq":16,"prev":"${prev}","type":"exch`;
  appendFileSync(seg, torn);
  assert.equal((await verifyWithOwnKeys(dir)).ok, false, 'damaged before recovery');

  const log = await AuditLog.open(auditConfig(), data);
  assert.equal(log.append(record(16)), 16);
  await log.close();
  const side = readdirSync(dir).filter((f) => join(dir, f).startsWith(`${seg}.torn-`));
  assert.equal(side.length, 1);
  assert.equal(readFileSync(join(dir, side[0]!), 'utf8'), torn);
  const recovery = readLines(join(dir, CHECKPOINTS_FILE))
    .map((l) => parseCheckpoint(l))
    .find((s) => typeof s !== 'string' && s.cp.note !== undefined);
  assert.ok(recovery && typeof recovery !== 'string');
  assert.deepEqual([recovery.cp.first_seq, recovery.cp.last_seq], [13, 15]);
  assert.match(recovery.cp.note!, /unclean shutdown: sealing 3 records/);
  assert.match(recovery.cp.note!, new RegExp(`torn end of ${Buffer.byteLength(torn)} bytes was moved to ${side[0]!.replace(/\./g, '\\.')}`));
  const r = await verifyWithOwnKeys(dir);
  assert.deepEqual(r.problems, []);
  assert.equal(r.records, 16);
});

test('a last line that is complete but not JSON is set aside too', async () => {
  const data = scratch();
  const dir = await writeLog(data, 5);
  const seg = join(dir, segmentFiles(dir).at(-1)!);
  appendFileSync(seg, '\0\0\0\0 garbage\n');
  const log = await AuditLog.open(auditConfig(), data);
  await log.close();
  assert.equal(readdirSync(dir).filter((f) => f.includes('.torn-')).length, 1);
  assert.deepEqual((await verifyWithOwnKeys(dir)).problems, []);
});

test('a checkpoint written to its segment but not to checkpoints.jsonl before a crash is restored there', async () => {
  const data = scratch();
  const dir = await writeLog(data, 10);
  const cps = readLines(join(dir, CHECKPOINTS_FILE));
  writeFileSync(join(dir, CHECKPOINTS_FILE), `${cps[0]}\n`);
  const log = await AuditLog.open(auditConfig(), data);
  await log.close();
  assert.deepEqual(readLines(join(dir, CHECKPOINTS_FILE)), cps);
});

/** A writer with 5 records sealed, then its directory broken (a file in its place, which fails for root too) and 5 more records failing to reach a new segment. */
async function failingLog(): Promise<{ log: AuditLog; errors: Error[]; restore: () => void }> {
  let clock = Date.UTC(2026, 0, 1);
  const errors: Error[] = [];
  const log = await AuditLog.open(auditConfig(), scratch(), { now: () => clock, onError: (e) => errors.push(e) });
  for (let i = 1; i <= 5; i++) log.append(record(i));
  await log.flush();
  const restore = breakDirectory(log.dir);
  clock += 2 * 3_600_000; // the next batch must start a new segment
  for (let i = 6; i <= 10; i++) log.append(record(i));
  await until('the failure', () => !log.healthy);
  return { log, errors, restore };
}

test('a write error: counted, reported, records kept in memory (closed refuses new requests, not records), and the log recovers when the disk does', async () => {
  const { log, errors, restore } = await failingLog();
  assert.equal(errors[0]?.name, 'SluiceError');
  assert.equal((errors[0] as Error & { code?: string }).code, 'SLUICE_AUDIT_WRITE');
  assert.match(errors[0]!.message, /ENOTDIR/);
  // An exchange already in flight when the disk failed still gets its record.
  assert.equal(log.append(record(11)), 11);
  await assert.rejects(log.flush(), { code: 'SLUICE_AUDIT_WRITE' });
  assert.ok(log.stats().write_errors >= 1);
  assert.equal(log.stats().unsealed, 6);

  restore();
  await until('recovery', () => log.healthy);
  assert.equal(log.append(record(12)), 12);
  await log.close();
  const r = await verifyWithOwnKeys(log.dir);
  assert.deepEqual(r.problems, []);
  assert.equal(r.records, 12);
});

test('beyond the memory bound while the disk fails: records are dropped, counted, and the loss is stated in a signed checkpoint', async () => {
  const { log, restore } = await failingLog();
  const big = JSON.stringify({ type: 'exchange', pad: 'x'.repeat(1 << 20) });
  let kept = 0;
  while (log.append(big) !== 0) kept++;
  for (let i = 0; i < 3; i++) assert.equal(log.append(big), 0);
  assert.ok(kept >= 60 && kept <= FAILURE_BUFFER_BYTES >> 20, `kept ${kept} MiB-sized records`);
  assert.equal(log.stats().dropped, 4);
  restore();
  await until('recovery', () => log.healthy);
  log.append(record(11));
  await log.close();
  const note = readLines(join(log.dir, CHECKPOINTS_FILE))
    .map((l) => parseCheckpoint(l))
    .find((s) => typeof s !== 'string' && s.cp.note !== undefined);
  assert.ok(note && typeof note !== 'string');
  assert.match(note.cp.note!, /^4 records were not kept: the log could not be written/);
  const r = await verifyWithOwnKeys(log.dir);
  assert.deepEqual(r.problems, []);
  assert.equal(r.records, 10 + kept + 1, 'dropped records took no sequence numbers');
});

test('rotating the key on a running writer: the old key signs the handover, a verifier trusting only it passes', async () => {
  const data = scratch();
  const log = await AuditLog.open(auditConfig(), data);
  const first = (await readPublicKeyDir(join(log.dir, 'keys')))[0]!;
  const firstSecret = (JSON.parse(readFileSync(join(data, 'keys', 'audit-signing.json'), 'utf8')) as { secret_key: string }).secret_key;
  for (let i = 1; i <= 7; i++) log.append(record(i));
  const r = await log.rotateKey();
  assert.equal(r.old_key_id, first.key_id);
  for (let i = 9; i <= 15; i++) log.append(record(i));
  await log.close();

  const rotation = records(log.dir).find((l) => l.includes('"type":"key_rotation"'))!;
  assert.ok(rotation.startsWith('{"seq":8,'), 'the rotation record takes the next sequence number');
  const o = JSON.parse(rotation) as Record<string, string>;
  assert.deepEqual([o.old_key_id, o.new_key_id], [first.key_id, r.new_key_id]);
  const cps = readLines(join(log.dir, CHECKPOINTS_FILE)).map((l) => parseCheckpoint(l)).filter((s) => typeof s !== 'string');
  const handover = cps.find((s) => s.cp.next_key)!;
  assert.equal(handover.cp.key_id, first.key_id);
  assert.deepEqual(handover.cp.next_key, { key_id: r.new_key_id, public_key: o.new_public_key });
  assert.equal(cps.at(-1)!.cp.key_id, r.new_key_id);

  const onlyFirst = await verifyLog(log.dir, { publicKeys: [first] });
  assert.deepEqual(onlyFirst.problems, []);
  assert.deepEqual(onlyFirst.keys, [first.key_id, r.new_key_id]);
  const kf = JSON.parse(readFileSync(join(data, 'keys', 'audit-signing.json'), 'utf8')) as { key_id: string; retired: Array<Record<string, string>> };
  assert.equal(kf.key_id, r.new_key_id);
  assert.equal(kf.retired.length, 1);
  assert.equal(kf.retired[0]!.key_id, first.key_id);
  assert.equal(kf.retired[0]!.secret_key, undefined, 'the old secret is dropped once the handover is on disk');
  assert.ok(existsSync(join(log.dir, 'keys', `${r.new_key_id}.pub`)));

  // A handover checkpoint re-signed without its next_key (by whoever kept the old secret) no longer matches the
  // key_rotation record it seals, and introduces no key.
  const oldKey = new SigningKey(Buffer.from(firstSecret, 'base64'));
  const { next_key: _dropped, ...withoutNext } = handover.cp;
  const forged = signCheckpoint(withoutNext, oldKey).line;
  const original = readLines(join(log.dir, CHECKPOINTS_FILE)).find((l) => l.includes('"next_key"'))!;
  for (const f of [CHECKPOINTS_FILE, handover.cp.segment]) {
    writeFileSync(join(log.dir, f), readFileSync(join(log.dir, f), 'utf8').replace(original, forged));
  }
  const forgedResult = await verifyLog(log.dir, { publicKeys: [first] });
  assert.ok(
    forgedResult.problems.some((p) => p.kind === 'broken_chain' && p.seq === 8 && p.file === handover.cp.segment && /key_rotation record 8/.test(p.message)),
    JSON.stringify(forgedResult.problems),
  );
  assert.ok(forgedResult.problems.some((p) => p.kind === 'unknown_key' && p.seq === 9));
});

test('rotating the key offline: the next writer start writes the handover, then signs with the new key', async () => {
  const data = scratch();
  const dir = await writeLog(data, 6);
  const first = (await readPublicKeyDir(join(dir, 'keys')))[0]!;
  const r = await rotateKey(join(data, 'keys', 'audit-signing.json'), { auditDir: dir });
  const kf = JSON.parse(readFileSync(join(data, 'keys', 'audit-signing.json'), 'utf8')) as { retired: Array<Record<string, string>> };
  assert.ok(kf.retired[0]!.secret_key, 'kept until the handover');
  await writeLog(data, 12, auditConfig(), 7);
  const onlyFirst = await verifyLog(dir, { publicKeys: [first] });
  assert.deepEqual(onlyFirst.problems, []);
  assert.equal(onlyFirst.records, 13, '12 records and the key_rotation record');
  // Trusting only the new key, the batches before the handover are not trusted.
  const onlyNew = await verifyLog(dir, { publicKeys: [await readPublicKeyFile(r.public_key_file)] });
  assert.ok(onlyNew.problems.length > 0 && onlyNew.problems.every((p) => p.kind === 'unknown_key'));
});

test('a log last signed by a key the key file does not hold is refused, naming audit.key_file', async () => {
  const data = scratch();
  await writeLog(data, 3);
  unlinkSync(join(data, 'keys', 'audit-signing.json'));
  await assert.rejects(AuditLog.open(auditConfig(), data), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
    assert.match(err.message, /audit\.key_file: the log in .* was last signed by key [0-9a-f]{16}/);
    return true;
  });
});
