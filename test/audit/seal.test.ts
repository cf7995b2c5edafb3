// Sealing a batch off the event loop: the heads and leaves it writes are the ones the format defines, a run cut short
// can be run again, the seal worker answers as sealing in-line does (falling back to it when it fails), and a
// process waiting only for it stays up until it has answered.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ZERO_HASH } from '../../src/audit/checkpoint.js';
import { leafHash, merkleRoot } from '../../src/audit/merkle.js';
import { headBytes, sealLines, Sealer, type SealJob } from '../../src/audit/seal.js';
import { record, tempDir } from '../fixtures/audit-log.js';

/** Lays `records` out as the log does: byte 0 spare, each line after room for its head, its `{` turned into `,`. */
function batch(records: string[], firstSeq: number, prev = ZERO_HASH): SealJob & { buf: Buffer } {
  // `{}` is written as its `}` alone; any other record keeps all its bytes, its `{` becoming the `,` after the head.
  const bytes = records.reduce((n, r, i) => n + headBytes(firstSeq + i) + (r === '{}' ? 1 : Buffer.byteLength(r)) + 1, 1);
  const buf = Buffer.from(new SharedArrayBuffer(bytes));
  const ends: number[] = [];
  let p = 1;
  records.forEach((r, i) => {
    p += headBytes(firstSeq + i);
    if (r === '{}') buf[p++] = 0x7d;
    else p += buf.write(`,${r.slice(1)}`, p);
    buf[p] = 0x0a;
    ends.push(p++);
  });
  return { buf, lines: buf.buffer as SharedArrayBuffer, from: 1, ends: Int32Array.from(ends), firstSeq, prev, before: new Uint8Array(0) };
}

/** The record lines as the format defines them, each `prev` the leaf hash of the line before. */
function expected(records: string[], firstSeq: number, prev = ZERO_HASH): string[] {
  return records.map((r, i) => {
    const line = `{"seq":${firstSeq + i},"prev":"${prev}"${r === '{}' ? '}' : `,${r.slice(1)}`}`;
    prev = leafHash(line).toString('hex');
    return line;
  });
}

const RECORDS = [record(1), '{}', record(3), JSON.stringify({ note: 'non-ASCII: Zoë, 東京, 🙂' })];

test('sealing writes each head with the leaf before it, and returns the root and last leaf of the lines as written', () => {
  const prev = leafHash('an earlier record').toString('hex');
  const job = batch(RECORDS, 99_998, prev); // crosses from 5 to 6 digits of seq
  const r = sealLines(job);
  const lines = expected(RECORDS, 99_998, prev);
  assert.equal(job.buf.toString('utf8', 1), lines.map((l) => `${l}\n`).join(''));
  assert.equal(r.root, merkleRoot(lines.map((l) => leafHash(l))).toString('hex'));
  assert.equal(r.last, leafHash(lines.at(-1)!).toString('hex'));
});

test('a run cut short (heads half written, a borrowed byte not put back) can be run again to the same bytes', () => {
  const job = batch(RECORDS, 1);
  const first = sealLines(job);
  const sealed = Buffer.from(job.buf);
  job.buf.fill(0x41, 1, 1 + headBytes(1)); // a head overwritten
  job.buf[job.ends[1]!] = 0; // the byte before line 3, as left mid-hash
  assert.deepEqual(sealLines(job), first);
  assert.ok(job.buf.equals(sealed));
});

test('the seal worker answers as sealing in-line does, leaves of records already on disk first', async () => {
  const onDisk = [leafHash('recovered 1'), leafHash('recovered 2')];
  const inline = batch(RECORDS, 3);
  const inWorker = batch(RECORDS, 3);
  for (const job of [inline, inWorker]) job.before = Uint8Array.from(Buffer.concat(onDisk));
  const errors: Error[] = [];
  const sealer = new Sealer((err) => errors.push(err));
  try {
    const r = await sealer.seal(inWorker);
    assert.deepEqual(r, sealLines(inline));
    assert.ok(inWorker.buf.equals(inline.buf), 'the worker wrote the heads into the shared bytes');
    const lines = expected(RECORDS, 3);
    assert.equal(r.root, merkleRoot([...onDisk, ...lines.map((l) => leafHash(l))]).toString('hex'));
    assert.deepEqual(errors, []);
  } finally {
    await sealer.close();
  }
});

test('a seal worker that fails is reported once, and its batch and every later one are sealed in-line', async () => {
  const errors: Error[] = [];
  const sealer = new Sealer((err) => errors.push(err));
  try {
    // Line ends that leave no room for the head: the worker throws, and so does the in-line run of the same job.
    const broken = batch([record(1)], 1);
    broken.ends = Int32Array.of(5);
    broken.from = broken.buf.length - 2;
    await assert.rejects(sealer.seal(broken), /no room for its head/);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /seal worker failed .* sealed on the main thread/);
    const job = batch(RECORDS, 1);
    const r = await sealer.seal(job);
    assert.equal(r.last, leafHash(expected(RECORDS, 1).at(-1)!).toString('hex'));
    assert.equal(errors.length, 1);
  } finally {
    await sealer.close();
  }
});

test('a process with nothing left to do but wait for a batch being sealed does not exit before it is sealed', () => {
  // As a CLI that appends and flushes: the worker, unreferenced while idle, holds the process open while it seals.
  const log = join(__dirname, '..', '..', 'src', 'audit', 'log.js');
  const config = join(__dirname, '..', '..', 'src', 'config', 'schema.js');
  const script = `
    const { AuditLog } = require(${JSON.stringify(log)});
    const { defaultConfig } = require(${JSON.stringify(config)});
    AuditLog.open({ ...defaultConfig().audit, fsync: 'none' }, process.argv[1]).then((log) => {
      for (let i = 0; i < 2000; i++) log.append(JSON.stringify({ n: i, pad: 'x'.repeat(500) }));
      log.flush().then(() => process.stdout.write('flushed ' + log.stats().batches));
    });`;
  const dir = tempDir('sluice-seal-exit-');
  try {
    assert.equal(execFileSync(process.execPath, ['-e', script, dir], { encoding: 'utf8' }), 'flushed 2');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
