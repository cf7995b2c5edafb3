// `sluice verify` and `sluice audit rotate-key` as operators run them: real child processes over a real log.

import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runSluice } from '../fixtures/cli.js';
import { auditConfig, findRecord, tempDir, writeLines, writeLog } from '../fixtures/audit-log.js';

let cwd: string;
let auditDir: string;
let pub: string;

before(async () => {
  cwd = tempDir('sluice-cli-verify-');
  // The default DIR is ./sluice-data/audit: write the log exactly there.
  auditDir = await writeLog(join(cwd, 'sluice-data'), 12);
  const keyId = (JSON.parse(readFileSync(join(cwd, 'sluice-data', 'keys', 'audit-signing.json'), 'utf8')) as { key_id: string }).key_id;
  pub = join(cwd, 'sluice-data', 'keys', `${keyId}.pub`);
});
after(() => rmSync(cwd, { recursive: true, force: true }));

test('an intact log exits 0; without --pubkey it says which keys it trusted', async () => {
  const r = await runSluice(['verify'], { cwd });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^note: trusting the public keys found in .*sluice-data\/audit\/keys \([0-9a-f]{16}\)/);
  assert.match(r.stdout, /\nintact: 12 records in 3 batches, \d+ segments, last seq 12; keys [0-9a-f]{16}\n$/);
  const withKey = await runSluice(['verify', auditDir, '--pubkey', pub], { cwd });
  assert.equal(withKey.code, 0, withKey.stderr);
  assert.doesNotMatch(withKey.stdout, /note:/);
});

test('a damaged log exits 1 and names file, line, seq and kind', async () => {
  const copy = join(cwd, 'damaged');
  await writeLog(copy, 12, auditConfig());
  const dir = join(copy, 'audit');
  const { file, index, lines } = findRecord(dir, 7);
  lines[index] = lines[index]!.replace('"n":7', '"n":8');
  writeLines(join(dir, file), lines);
  const r = await runSluice(['verify', dir], { cwd });
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.stdout.includes(`${join(dir, file)}:${index + 1} seq 7: modified_record: record 7 was changed`), r.stdout);
  assert.match(r.stdout, /\ndamaged: 1 problem; /);
});

test('usage errors exit 2', async () => {
  for (const args of [['verify', '--bogus'], ['verify', join(cwd, 'nope')], ['verify', auditDir, 'extra'], ['verify', '--pubkey'], ['audit'], ['audit', 'spin']]) {
    const r = await runSluice(args, { cwd });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^sluice: /);
  }
});

test('--proof prints an inclusion proof that --check-proof accepts, and rejects once altered', async () => {
  const r = await runSluice(['verify', '--proof', '9'], { cwd });
  assert.equal(r.code, 0, r.stderr);
  const proof = JSON.parse(r.stdout) as { seq: number; record: string };
  assert.equal(proof.seq, 9);
  const file = join(cwd, 'proof.json');
  writeFileSync(file, r.stdout);
  const ok = await runSluice(['verify', '--check-proof', file, '--pubkey', pub], { cwd });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^valid: record 9 is in batch 2/);
  writeFileSync(file, JSON.stringify({ ...proof, record: proof.record.replace('ex-9', 'ex-99') }));
  const bad = await runSluice(['verify', '--check-proof', file, '--pubkey', pub], { cwd });
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /^invalid: /);
  const missing = await runSluice(['verify', '--proof', 'ex-404'], { cwd });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /SLUICE_AUDIT_PROOF: no record with exchange id ex-404/);
});

test('audit rotate-key makes a new key; after the handover the old public key alone still verifies', async () => {
  const data = join(cwd, 'rotated');
  const config = join(cwd, 'rotated.yaml');
  writeFileSync(config, `data_dir: ${data}\n`);
  await writeLog(data, 4);
  const oldId = (JSON.parse(readFileSync(join(data, 'keys', 'audit-signing.json'), 'utf8')) as { key_id: string }).key_id;
  const r = await runSluice(['audit', 'rotate-key', '--config', config], { cwd });
  assert.equal(r.code, 0, r.stderr);
  const newId = (JSON.parse(readFileSync(join(data, 'keys', 'audit-signing.json'), 'utf8')) as { key_id: string }).key_id;
  assert.notEqual(newId, oldId);
  assert.equal(r.stdout, `${join(data, 'keys', `${newId}.pub`)}\n`);
  assert.match(r.stderr, new RegExp(`${oldId} → ${newId}`));
  await writeLog(data, 8, auditConfig(), 5); // the next start: handover, then the new key
  const v = await runSluice(['verify', join(data, 'audit'), '--pubkey', join(data, 'keys', `${oldId}.pub`)], { cwd });
  assert.equal(v.code, 0, v.stdout);
  assert.match(v.stdout, new RegExp(`intact: 9 records .*; keys ${oldId}, ${newId}\n$`));
});
