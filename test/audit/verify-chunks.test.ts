// Verify cut into chunks and spread over worker threads must say exactly what it says in one piece: the same
// problems (kind, file, line, seq, message) and counts, whatever the chunk edges and whoever hashed each chunk.

import assert from 'node:assert/strict';
import { appendFileSync, cpSync, mkdirSync, rmSync, truncateSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readPublicKeyDir, type PublicKeyInfo } from '../../src/audit/keys.js';
import { AuditLog } from '../../src/audit/log.js';
import { verifyLog, type VerifyResult } from '../../src/audit/verify.js';
import { auditConfig, findRecord, segmentFiles, tempDir, writeLines, writeLog } from '../fixtures/audit-log.js';

let root: string;
let pristine: string;
let keys: PublicKeyInfo[];

before(async () => {
  root = tempDir('sluice-verify-chunks-');
  pristine = await writeLog(join(root, 'data'), 60);
  keys = await readPublicKeyDir(join(pristine, 'keys'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** Edits one line of the segment holding record `seq`. */
function editRecord(seq: number, fn: (lines: string[], index: number) => void): (dir: string) => void {
  return (dir) => {
    const { file, index, lines } = findRecord(dir, seq);
    fn(lines, index);
    writeLines(join(dir, file), lines);
  };
}

const damages: Record<string, (dir: string) => void> = {
  none: () => {},
  modified: editRecord(23, (l, i) => (l[i] = l[i]!.replace('"n":23', '"n":32'))),
  deleted: editRecord(33, (l, i) => l.splice(i, 1)),
  inserted: editRecord(41, (l, i) => l.splice(i + 1, 0, l[i]!.replace('allow', 'block'))),
  swapped: editRecord(12, (l, i) => ([l[i], l[i + 1]] = [l[i + 1]!, l[i]!])),
  'prev not hex': editRecord(17, (l, i) => (l[i] = l[i]!.replace(/"prev":"../, '"prev":"zz'))),
  malformed: editRecord(3, (l, i) => l.splice(i, 0, 'hello', '')),
  'checkpoint line gone': editRecord(8, (l, i) => l.splice(l.findIndex((x, j) => j > i && x.startsWith('{"checkpoint":')), 1)),
  'checkpoint line malformed': editRecord(8, (l, i) => {
    const c = l.findIndex((x, j) => j > i && x.startsWith('{"checkpoint":'));
    l[c] = l[c]!.replace('"batch":', '"batch":"');
  }),
  truncated: (dir) => truncateSync(join(dir, segmentFiles(dir)[1]!), 1500),
  'segment gone': (dir) => unlinkSync(join(dir, segmentFiles(dir)[2]!)),
  'torn and unsealed': (dir) => appendFileSync(join(dir, segmentFiles(dir).at(-1)!), `{"seq":61,"prev":"${'0'.repeat(64)}","type":"exchange"}\n{"seq":62,"pr`),
};

async function check(name: string, damage: (dir: string) => void): Promise<void> {
  const dir = join(root, name.replace(/\W/g, '-'));
  cpSync(pristine, dir, { recursive: true });
  damage(dir);
  const whole = await verifyLog(dir, { publicKeys: keys, threads: 0 });
  if (name === 'none') assert.equal(whole.ok, true);
  else assert.equal(whole.ok, false, `${name} is found`);
  const variants: Array<[string, Promise<VerifyResult>]> = [];
  for (const chunkBytes of [40, 300, 1000]) variants.push([`main thread, ${chunkBytes}-byte chunks`, verifyLog(dir, { publicKeys: keys, threads: 0, chunkBytes })]);
  variants.push(['one worker, 300-byte chunks', verifyLog(dir, { publicKeys: keys, threads: 1, chunkBytes: 300, mainThread: false })]);
  variants.push(['two workers and the main thread, 200-byte chunks', verifyLog(dir, { publicKeys: keys, threads: 2, chunkBytes: 200 })]);
  for (const [how, r] of variants) assert.deepEqual(await r, whole, `${name}: ${how}`);
}

for (const [name, damage] of Object.entries(damages)) {
  test(`chunked and in workers, verify says what it says in one piece: ${name}`, () => check(name, damage));
}

test('records longer than a read page verify in chunks and in a worker', async () => {
  const log = await AuditLog.open(auditConfig({ segment_max_bytes: 64 << 20, batch_records: 3 }), join(root, 'long'));
  for (let i = 1; i <= 9; i++) log.append(JSON.stringify({ type: 'exchange', id: `long-${i}`, pad: 'é'.repeat(i === 5 ? 3 << 20 : 400_000) }));
  await log.close();
  const publicKeys = await readPublicKeyDir(join(log.dir, 'keys'));
  for (const opts of [{ threads: 0, chunkBytes: 1 << 20 }, { threads: 1, chunkBytes: 1 << 20, mainThread: false }]) {
    const r = await verifyLog(log.dir, { publicKeys, ...opts });
    assert.deepEqual(r.problems, []);
    assert.equal(r.records, 9);
  }
});

test('a segment that cannot be read fails with SLUICE_AUDIT_UNREADABLE, on the main thread and in a worker', async () => {
  const dir = join(root, 'unreadable');
  cpSync(pristine, dir, { recursive: true });
  const file = segmentFiles(dir)[1]!;
  unlinkSync(join(dir, file));
  mkdirSync(join(dir, file)); // opens, then fails to read (EISDIR)
  for (const opts of [{ threads: 0 }, { threads: 1, mainThread: false }]) {
    await assert.rejects(verifyLog(dir, { publicKeys: keys, ...opts }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SLUICE_AUDIT_UNREADABLE');
      assert.ok(err.message.includes(file), err.message);
      return true;
    });
  }
});
