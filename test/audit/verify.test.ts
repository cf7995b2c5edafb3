// The tamper matrix: a real log from the real writer, damaged one way at a time; verify must name the kind of
// damage with the right file and sequence number, and an undamaged log must verify. Also inclusion proofs.

import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseCheckpoint, signCheckpoint, type Checkpoint } from '../../src/audit/checkpoint.js';
import { readPublicKeyDir, SigningKey, type PublicKeyInfo } from '../../src/audit/keys.js';
import { leafHash, merkleRoot } from '../../src/audit/merkle.js';
import { CHECKPOINTS_FILE } from '../../src/audit/segments.js';
import { checkProof, proveRecord, verifyLog, type Problem, type VerifyResult } from '../../src/audit/verify.js';
import nacl from 'tweetnacl';
import { AuditLog } from '../../src/audit/log.js';
import { auditConfig, findRecord, readLines, segmentFiles, tempDir, writeLines, writeLog } from '../fixtures/audit-log.js';

// 60 records in batches of 5 (batch b seals 5b-4..5b), about 15 records per segment.
const RECORDS = 60;
let root: string;
let pristine: string;
let keys: PublicKeyInfo[];
let realKey: SigningKey;

before(async () => {
  root = tempDir('sluice-verify-');
  pristine = await writeLog(join(root, 'data'), RECORDS);
  keys = await readPublicKeyDir(join(pristine, 'keys'));
  const kf = JSON.parse(readFileSync(join(root, 'data', 'keys', 'audit-signing.json'), 'utf8')) as { secret_key: string };
  realKey = new SigningKey(Buffer.from(kf.secret_key, 'base64'));
});
after(() => rmSync(root, { recursive: true, force: true }));

let copies = 0;
/** A fresh copy of the pristine log, damaged by `fn`, then verified with the writer's public key. */
async function damaged(fn: (dir: string) => void): Promise<VerifyResult> {
  const dir = join(root, `copy-${++copies}`);
  cpSync(pristine, dir, { recursive: true });
  fn(dir);
  return verifyLog(dir, { publicKeys: keys });
}

function only(r: VerifyResult, expected: Array<Pick<Problem, 'kind' | 'file' | 'seq'> & { line?: number }>): void {
  assert.equal(r.ok, false);
  const got = r.problems.map((p) => ({ kind: p.kind, file: p.file, seq: p.seq, ...(expected.find((e) => e.kind === p.kind && e.line !== undefined) ? { line: p.line } : {}) }));
  assert.deepEqual(
    got.sort((a, b) => `${a.kind}${a.file}${a.seq}`.localeCompare(`${b.kind}${b.file}${b.seq}`)),
    [...expected].sort((a, b) => `${a.kind}${a.file}${a.seq}`.localeCompare(`${b.kind}${b.file}${b.seq}`)),
    JSON.stringify(r.problems, null, 1),
  );
  for (const p of r.problems) assert.ok(p.message.length > 10, 'every problem says what is wrong');
}

/** The checkpoint line sealing record `seq`, in its segment: file, index and parsed form. */
function checkpointAfter(dir: string, seq: number): { file: string; index: number; lines: string[]; cp: Checkpoint } {
  const { file, index, lines } = findRecord(dir, seq);
  const i = lines.findIndex((l, j) => j > index && l.startsWith('{"checkpoint":'));
  const s = parseCheckpoint(lines[i]!);
  assert.ok(typeof s !== 'string');
  return { file, index: i, lines, cp: s.cp };
}

/** Replaces one checkpoint line in its segment and in checkpoints.jsonl, as an attacker rewriting both would. */
function replaceCheckpoint(dir: string, seq: number, make: (cp: Checkpoint) => string): void {
  const { file, index, lines } = checkpointAfter(dir, seq);
  const old = lines[index]!;
  const s = parseCheckpoint(old);
  assert.ok(typeof s !== 'string');
  const line = make(s.cp);
  lines[index] = line;
  writeLines(join(dir, file), lines);
  const cps = readLines(join(dir, CHECKPOINTS_FILE)).map((l) => (l === old ? line : l));
  writeLines(join(dir, CHECKPOINTS_FILE), cps);
}

test('an undamaged log verifies: every record, batch and segment', async () => {
  const r = await verifyLog(pristine, { publicKeys: keys });
  assert.deepEqual(r.problems, []);
  assert.equal(r.ok, true);
  assert.equal(r.records, RECORDS);
  assert.equal(r.batches, RECORDS / 5);
  assert.equal(r.last_seq, RECORDS);
  assert.ok(r.segments >= 3, `several segments (${r.segments})`);
  assert.deepEqual(r.keys, [keys[0]!.key_id]);
});

test('checkpoint signatures are plain Ed25519 over the documented text form (tweetnacl verifies them)', () => {
  const line = readLines(join(pristine, CHECKPOINTS_FILE))[0]!;
  const s = parseCheckpoint(line);
  assert.ok(typeof s !== 'string');
  assert.match(s.signed.toString(), /^sluice-audit-checkpoint\/v1\nlog_id [0-9a-f]{32}\nbatch 1\nfirst_seq 1\nlast_seq 5\ntree_size 5\nroot [0-9a-f]{64}\nprev 0{64}\ntime .+Z\nkey_id [0-9a-f]{16}\nsegment audit-0000000000000001-\d{8}T\d{6}Z\.jsonl\n$/);
  assert.ok(nacl.sign.detached.verify(s.signed, s.sig, Buffer.from(keys[0]!.public_key, 'base64')));
});

test('a modified record is named, in the middle of a batch and at its end', async () => {
  const r = await damaged((dir) => {
    const { file, index, lines } = findRecord(dir, 23);
    lines[index] = lines[index]!.replace('"n":23', '"n":32');
    writeLines(join(dir, file), lines);
  });
  only(r, [{ kind: 'modified_record', file: findRecord(pristine, 23).file, seq: 23, line: findRecord(pristine, 23).index + 1 }]);

  const r2 = await damaged((dir) => {
    const { file, index, lines } = findRecord(dir, 25);
    lines[index] = lines[index]!.replace('allow', 'block');
    writeLines(join(dir, file), lines);
  });
  only(r2, [{ kind: 'modified_record', file: findRecord(pristine, 25).file, seq: 25 }]);
});

test('a deleted record line is named', async () => {
  const r = await damaged((dir) => {
    const { file, index, lines } = findRecord(dir, 33);
    lines.splice(index, 1);
    writeLines(join(dir, file), lines);
  });
  only(r, [{ kind: 'deleted_record', file: findRecord(pristine, 33).file, seq: 33 }]);
});

test('a forged line inserted after a record is named at its own line', async () => {
  const { file, index } = findRecord(pristine, 41);
  const r = await damaged((dir) => {
    const { lines } = findRecord(dir, 41);
    lines.splice(index + 1, 0, lines[index]!.replace('allow', 'block'));
    writeLines(join(dir, file), lines);
  });
  only(r, [{ kind: 'inserted_record', file, seq: 41, line: index + 2 }]);
});

test('two swapped records are named as reordered', async () => {
  const { file, index } = findRecord(pristine, 12);
  const r = await damaged((dir) => {
    const { lines } = findRecord(dir, 12);
    [lines[index], lines[index + 1]] = [lines[index + 1]!, lines[index]!];
    writeLines(join(dir, file), lines);
  });
  only(r, [{ kind: 'reordered_records', file, seq: 12 }]);
});

test('a segment truncated mid-way is named with the first record it lost', async () => {
  const file = segmentFiles(pristine)[1]!;
  let firstLost = 0;
  const r = await damaged((dir) => {
    const path = join(dir, file);
    truncateSync(path, Math.floor(readFileSync(path).length / 2));
    const kept = readLines(path).filter((l) => l.startsWith('{"seq":') && l.endsWith('}'));
    firstLost = Number(/^\{"seq":(\d+)/.exec(kept.at(-1)!)![1]) + 1;
  });
  only(r, [{ kind: 'truncated_segment', file, seq: firstLost }]);
});

test('a whole middle segment deleted is named by the name its checkpoints gave it', async () => {
  const file = segmentFiles(pristine)[1]!;
  const firstSeq = Number(file.slice(6, 22));
  const r = await damaged((dir) => unlinkSync(join(dir, file)));
  only(r, [{ kind: 'missing_segment', file, seq: firstSeq }]);
});

test('records appended after the last checkpoint are named as unsealed', async () => {
  const last = segmentFiles(pristine).at(-1)!;
  const r = await damaged((dir) => {
    const lines = readLines(join(dir, last));
    const prev = leafHash(findRecord(dir, RECORDS).lines[findRecord(dir, RECORDS).index]!).toString('hex');
    const forged = `{"seq":${RECORDS + 1},"prev":"${prev}","type":"exchange","id":"forged"}`;
    const forged2 = `{"seq":${RECORDS + 2},"prev":"${leafHash(forged).toString('hex')}","type":"exchange","id":"forged-2"}`;
    writeLines(join(dir, last), [...lines, forged, forged2]);
  });
  only(r, [{ kind: 'unsealed_records', file: last, seq: RECORDS + 1 }]);
});

test('an altered checkpoint signature is named in the segment that holds it', async () => {
  const { file } = checkpointAfter(pristine, 30);
  const r = await damaged((dir) => {
    const c = checkpointAfter(dir, 30);
    const at = c.lines[c.index]!.indexOf('"sig":"') + 7;
    const line = c.lines[c.index]!;
    c.lines[c.index] = line.slice(0, at) + (line[at] === 'A' ? 'B' : 'A') + line.slice(at + 1);
    writeLines(join(dir, file), c.lines);
  });
  only(r, [{ kind: 'bad_signature', file, seq: 26 }]);
});

test('a batch re-signed with an unknown key over a changed record: key, record and chain are named', async () => {
  const { file } = checkpointAfter(pristine, 28);
  const attacker = new SigningKey(Buffer.from(nacl.sign.keyPair().secretKey));
  const r = await damaged((dir) => {
    const { index, lines } = findRecord(dir, 28);
    lines[index] = lines[index]!.replace('allow', 'block');
    writeLines(join(dir, file), lines);
    const leaves = [26, 27, 28, 29, 30].map((n) => leafHash(findRecord(dir, n).lines[findRecord(dir, n).index]!));
    replaceCheckpoint(dir, 28, (cp) => signCheckpoint({ ...cp, root: merkleRoot(leaves).toString('hex'), key_id: attacker.keyId }, attacker).line);
  });
  only(r, [
    { kind: 'unknown_key', file: CHECKPOINTS_FILE, seq: 26 },
    { kind: 'unknown_key', file, seq: 26 },
    // Record 29 still names record 28's original hash; the next checkpoint still names the original checkpoint.
    { kind: 'modified_record', file, seq: 28 },
    { kind: 'broken_chain', file: CHECKPOINTS_FILE, seq: 31 },
  ]);
});

test('a checkpoint missing from checkpoints.jsonl breaks the chain there', async () => {
  const r = await damaged((dir) => {
    const lines = readLines(join(dir, CHECKPOINTS_FILE));
    lines.splice(3, 1); // batch 4: records 16..20
    writeLines(join(dir, CHECKPOINTS_FILE), lines);
  });
  only(r, [{ kind: 'broken_chain', file: CHECKPOINTS_FILE, seq: 16 }]);
});

test('a checkpoint re-signed with the real key but another prev breaks the chain (insider rewriting history)', async () => {
  const r = await damaged((dir) => replaceCheckpoint(dir, 18, (cp) => signCheckpoint({ ...cp, prev: 'f'.repeat(64) }, realKey).line));
  // Batch 4 names no real predecessor, batch 5 names the original batch 4. The segment holds the same line: named once.
  only(r, [
    { kind: 'broken_chain', file: CHECKPOINTS_FILE, seq: 16 },
    { kind: 'broken_chain', file: CHECKPOINTS_FILE, seq: 21 },
  ]);
});

test('a checkpoint line deleted from a segment is named without calling its records inserted', async () => {
  const { file, index } = checkpointAfter(pristine, 8);
  const r = await damaged((dir) => {
    const c = checkpointAfter(dir, 8);
    c.lines.splice(index, 1);
    writeLines(join(dir, file), c.lines);
  });
  only(r, [{ kind: 'broken_chain', file, seq: 6 }]);
});

test('a line that is neither record nor checkpoint is malformed', async () => {
  const { file, index } = findRecord(pristine, 3);
  const r = await damaged((dir) => {
    const { lines } = findRecord(dir, 3);
    lines.splice(index, 0, 'hello');
    writeLines(join(dir, file), lines);
  });
  assert.deepEqual(
    r.problems.map((p) => [p.kind, p.file, p.line]),
    [['malformed_line', file, index + 1]],
  );
});

test('without the key that signed, nothing is trusted', async () => {
  const stranger = new SigningKey(Buffer.from(nacl.sign.keyPair().secretKey)).info();
  const r = await verifyLog(pristine, { publicKeys: [stranger] });
  assert.equal(r.ok, false);
  assert.ok(r.problems.every((p) => p.kind === 'unknown_key'));
  assert.equal(r.problems.filter((p) => p.file === CHECKPOINTS_FILE).length, RECORDS / 5);
});

test('an inclusion proof by seq or exchange id checks out offline, and fails once anything in it changes', async () => {
  const bySeq = await proveRecord(pristine, 37);
  assert.equal(bySeq.seq, 37);
  assert.equal(bySeq.leaf_index, 1);
  assert.equal(bySeq.tree_size, 5);
  assert.equal(bySeq.key_id, keys[0]!.key_id);
  assert.deepEqual(checkProof(JSON.parse(JSON.stringify(bySeq)), keys), { ok: true, batch: 8, key_id: keys[0]!.key_id, seq: 37, message: `record 37 is in batch 8, signed by key ${keys[0]!.key_id}` });

  const byId = await proveRecord(pristine, 'ex-44');
  assert.equal(byId.seq, 44);
  assert.equal(byId.record, findRecord(pristine, 44).lines[findRecord(pristine, 44).index]);
  assert.equal(checkProof(byId, keys).ok, true);

  assert.equal(checkProof({ ...byId, record: byId.record.replace('allow', 'block') }, keys).ok, false);
  assert.equal(checkProof({ ...byId, leaf_index: 0 }, keys).ok, false);
  assert.equal(checkProof({ ...byId, audit_path: [...byId.audit_path].reverse() }, keys).ok, false);
  assert.equal(checkProof({ ...byId, checkpoint: byId.checkpoint.replace('"batch":9', '"batch":10') }, keys).ok, false);
  assert.match(checkProof(byId, []).message, /not among the trusted keys/);
  await assert.rejects(proveRecord(pristine, 999), { code: 'SLUICE_AUDIT_PROOF' });
  await assert.rejects(proveRecord(pristine, 'no-such-exchange'), { code: 'SLUICE_AUDIT_PROOF' });
});

test('records longer than the read chunk, and lines split across chunks, verify', async () => {
  const data = join(root, 'long');
  const log = await AuditLog.open(auditConfig({ segment_max_bytes: 64 << 20 }), data);
  for (let i = 1; i <= 12; i++) log.append(JSON.stringify({ type: 'exchange', id: `long-${i}`, pad: 'é'.repeat(i === 6 ? 5 << 20 : 700_000) }));
  await log.close();
  const r = await verifyLog(log.dir, { publicKeys: await readPublicKeyDir(join(log.dir, 'keys')) });
  assert.deepEqual(r.problems, []);
  assert.equal(r.records, 12);
});

test('checkpoints.jsonl emptied or deleted: named, and the segments are still checked in full', async () => {
  for (const damage of [(dir: string) => writeFileSync(join(dir, CHECKPOINTS_FILE), ''), (dir: string) => unlinkSync(join(dir, CHECKPOINTS_FILE))]) {
    const r = await damaged(damage);
    only(r, [{ kind: 'broken_chain', file: CHECKPOINTS_FILE, seq: 1 }]);
    assert.equal(r.records, RECORDS);
  }
  // Trailing by one batch is the window between the writer's two writes of a checkpoint: not damage.
  const r = await damaged((dir) => writeLines(join(dir, CHECKPOINTS_FILE), readLines(join(dir, CHECKPOINTS_FILE)).slice(0, -1)));
  assert.deepEqual(r.problems, []);
});
