// What a finding may say about its value: maskValue (ends kept, middle hidden, code points, capped), digestValue
// (keyed HMAC, stable, never the value) and loadFindingKey (created once, 0600, shared by concurrent starters,
// a damaged key refused rather than replaced).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { SluiceError } from '../../src/errors';
import { FINDING_KEY_FILE, digestValue, loadFindingKey, maskValue } from '../../src/detect/findings';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sluice-findings-'));
  dirs.push(d);
  return d;
}

/** True when `s` has no unpaired surrogate (String.prototype.isWellFormed is not in lib es2023). */
function wellFormed(s: string): boolean {
  return Array.from(s).every((ch) => ch.length === 2 || ch.charCodeAt(0) < 0xd800 || ch.charCodeAt(0) > 0xdfff);
}

// ---------------------------------------------------------------------------------------------------------------
// maskValue

test('maskValue keeps four characters at each end of a card number and an SSN keeps two', () => {
  assert.equal(maskValue('4111111111111111'), '4111********1111');
  assert.equal(maskValue('536-22-1987'), '53*******87');
  assert.equal(maskValue('jane.doe@acme-corp.com'), 'jane**************.com');
});

test('maskValue hides short values entirely or mostly', () => {
  assert.equal(maskValue(''), '');
  assert.equal(maskValue('a'), '*');
  assert.equal(maskValue('abc'), '***');
  assert.equal(maskValue('abcd'), 'a**d');
  assert.equal(maskValue('12345678'), '12****78');
  for (let n = 1; n <= 40; n++) {
    const value = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn'.slice(0, n);
    const masked = maskValue(value);
    const visible = masked.replace(/[*…]/g, '');
    assert.ok(visible.length <= Math.floor(n / 2), `length ${n}: ${masked} shows more than half of the value`);
    if (n < 4) assert.equal(visible, '', `length ${n}: ${masked} should show nothing`);
    const prefix = masked.slice(0, masked.search(/[*…]|$/));
    const suffix = masked.slice(masked.length - visible.length + prefix.length);
    assert.equal(prefix.length, suffix.length, `length ${n}: ${masked} keeps the same number at each end`);
    assert.ok(value.startsWith(prefix) && value.endsWith(suffix), `length ${n}: ${masked} shows only the ends of ${value}`);
  }
});

test('maskValue counts code points, not UTF-16 units, and never splits a surrogate pair', () => {
  // 8 emoji = 16 UTF-16 units: counted as 8 characters, 2 kept at each end.
  assert.equal(maskValue('😀🎉🚀🔑💳🌍🍕🎵'), '😀🎉****🍕🎵');
  // 5 emoji = 10 units: one kept each end (by units it would keep half a pair).
  assert.equal(maskValue('😀🎉🚀🔑💳'), '😀***💳');
  assert.equal(maskValue('ab😀cd😀ef'), 'ab****ef');
  // CJK (BMP, one unit each) and supplementary-plane CJK (two units each).
  assert.equal(maskValue('山田太郎の電話番号'), '山田*****番号');
  assert.equal(maskValue('𠀀𠀁𠀂𠀃𠀄𠀅𠀆𠀇'), '𠀀𠀁****𠀆𠀇');
  for (let n = 1; n <= 80; n++) {
    const masked = maskValue('😀'.repeat(n));
    assert.ok(wellFormed(masked), `${n} emoji: lone surrogate in ${JSON.stringify(masked)}`);
    if (n <= 32) assert.equal(Array.from(masked).length, n, `${n} emoji: one mask character per code point`);
    else assert.equal(masked, '😀'.repeat(4) + '*'.repeat(24) + '…' + '😀'.repeat(4), `${n} emoji`);
    // Odd offsets: a one-unit character before and after shifts every pair boundary.
    const mixed = maskValue('a' + '😀'.repeat(n) + 'b');
    assert.ok(wellFormed(mixed), `a + ${n} emoji + b: lone surrogate in ${JSON.stringify(mixed)}`);
    if (n >= 6) assert.ok(mixed.startsWith('a😀') && mixed.endsWith('😀b'), `a + ${n} emoji + b: ${mixed}`);
  }
});

test('maskValue caps the mask of long values with an ellipsis', () => {
  // 32 characters: 4 + 24 stars + 4, the longest value shown without eliding.
  const v32 = 'A'.repeat(4) + 'x'.repeat(24) + 'Z'.repeat(4);
  assert.equal(maskValue(v32), 'AAAA' + '*'.repeat(24) + 'ZZZZ');
  const v33 = 'A'.repeat(4) + 'x'.repeat(25) + 'Z'.repeat(4);
  assert.equal(maskValue(v33), 'AAAA' + '*'.repeat(24) + '…' + 'ZZZZ');
  const pem = '-----BEGIN RSA PRIVATE KEY-----\n' + 'MIIEpAIBAAKCAQEA'.repeat(100) + '\n-----END RSA PRIVATE KEY-----';
  assert.equal(maskValue(pem), '----' + '*'.repeat(24) + '…' + '----');
  const huge = 'q'.repeat(5_000_000);
  assert.equal(maskValue(huge).length, 4 + 24 + 1 + 4);
  const emoji = '🔑'.repeat(1000);
  assert.equal(maskValue(emoji), '🔑'.repeat(4) + '*'.repeat(24) + '…' + '🔑'.repeat(4));
});

// ---------------------------------------------------------------------------------------------------------------
// digestValue

test('digestValue is a stable hex digest per key, different across keys and values', () => {
  const k1 = Buffer.alloc(32, 1);
  const k2 = Buffer.alloc(32, 2);
  const d = digestValue(k1, '536-22-1987');
  assert.match(d, /^[0-9a-f]{64}$/);
  assert.equal(digestValue(k1, '536-22-1987'), d);
  assert.equal(digestValue(Buffer.from(k1), '536-22-1987'), d, 'depends on the key bytes, not the Buffer object');
  assert.notEqual(digestValue(k2, '536-22-1987'), d);
  assert.notEqual(digestValue(k1, '536-22-1988'), d);
  assert.notEqual(digestValue(k1, ''), digestValue(k2, ''));
  // Different code points that look alike, and NFC vs NFD, are different values.
  assert.notEqual(digestValue(k1, 'caf\u00e9'), digestValue(k1, 'cafe\u0301'));
});

test('digestValue never contains the value', () => {
  const key = randomBytes(32);
  for (const value of ['536-22-1987', 'jane.doe@acme-corp.com', 'AKIA2E0A8F3B244C9986', 'Zq8#vR2!mK9$wL4pX7tB', '山田太郎']) {
    const d = digestValue(key, value);
    assert.ok(!d.includes(value), value);
    assert.ok(!d.includes(Buffer.from(value).toString('hex')), `${value} (hex)`);
    assert.ok(!d.includes(Buffer.from(value).toString('base64')), `${value} (base64)`);
    assert.equal(d.length, 64, 'fixed length, whatever the value length');
  }
  assert.equal(digestValue(key, 'x'.repeat(100_000)).length, 64);
});

// ---------------------------------------------------------------------------------------------------------------
// loadFindingKey

test('loadFindingKey creates a 32-byte key with mode 0600 in a fresh data dir, then returns the same key', async () => {
  const dataDir = join(tempDir(), 'data', 'nested');
  const key = await loadFindingKey(dataDir);
  assert.ok(Buffer.isBuffer(key));
  assert.equal(key.length, 32);
  assert.notDeepEqual(key, Buffer.alloc(32), 'random, not zeros');
  const file = join(dataDir, FINDING_KEY_FILE);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readFileSync(file), key);
  const again = await loadFindingKey(dataDir);
  assert.deepEqual(again, key);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  // Another data dir gets another key.
  const other = await loadFindingKey(join(tempDir(), 'data'));
  assert.notDeepEqual(other, key);
});

test('two concurrent first calls agree on one key', async () => {
  for (let round = 0; round < 50; round++) {
    const dataDir = join(tempDir(), 'data');
    const [a, b] = await Promise.all([loadFindingKey(dataDir), loadFindingKey(dataDir)]);
    assert.equal(a.length, 32);
    assert.deepEqual(a, b, `round ${round}`);
    assert.deepEqual(readFileSync(join(dataDir, FINDING_KEY_FILE)), a, `round ${round}: the file holds the key returned`);
  }
  const dataDir = join(tempDir(), 'data');
  const keys = await Promise.all(Array.from({ length: 16 }, () => loadFindingKey(dataDir)));
  for (const k of keys) assert.deepEqual(k, keys[0]);
});

test(
  'concurrent first calls from separate threads (as from processes starting together) agree on one key',
  async () => {
    // Each worker waits on a shared flag so all four call loadFindingKey at the same moment, like processes would.
    const src = `
      const { workerData, parentPort } = require('node:worker_threads');
      const { loadFindingKey } = require(workerData.mod);
      parentPort.on('message', ({ dir, sab }) => {
        const flag = new Int32Array(sab);
        Atomics.add(flag, 1, 1);
        Atomics.wait(flag, 0, 0);
        loadFindingKey(dir).then(
          (k) => parentPort.postMessage({ key: k.toString('hex') }),
          (e) => parentPort.postMessage({ error: e.code + ': ' + e.message }),
        );
      });`;
    const N = 4;
    const workers = Array.from({ length: N }, () => new Worker(src, { eval: true, workerData: { mod: join(__dirname, '..', '..', 'src', 'detect', 'findings.js') } }));
    try {
      const base = tempDir();
      for (let round = 0; round < 300; round++) {
        const dir = join(base, `r${round}`);
        const sab = new SharedArrayBuffer(8);
        const flag = new Int32Array(sab);
        const replies = workers.map((w) => new Promise<{ key?: string; error?: string }>((resolve) => w.once('message', resolve)));
        for (const w of workers) w.postMessage({ dir, sab });
        while (Atomics.load(flag, 1) < N) await new Promise((r) => setImmediate(r));
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
        const got = await Promise.all(replies);
        const errors = got.filter((g) => g.error !== undefined);
        assert.deepEqual(errors, [], `round ${round}: a concurrent first call failed`);
        assert.equal(new Set(got.map((g) => g.key)).size, 1, `round ${round}: the threads got different keys`);
        assert.equal(readFileSync(join(dir, FINDING_KEY_FILE)).toString('hex'), got[0]!.key);
      }
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  },
);

test('a truncated or empty key file is refused with SLUICE_CONFIG_INVALID and left as it was', async () => {
  for (const size of [0, 16, 31]) {
    const dataDir = tempDir();
    const file = join(dataDir, FINDING_KEY_FILE);
    const damaged = randomBytes(size);
    writeFileSync(file, damaged, { mode: 0o600 });
    await assert.rejects(loadFindingKey(dataDir), (err: unknown) => {
      assert.ok(err instanceof SluiceError, String(err));
      assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
      assert.ok(err.message.includes(file), `names the file: ${err.message}`);
      assert.match(err.message, new RegExp(`\\b${size} bytes\\b`));
      return true;
    });
    assert.deepEqual(readFileSync(file), damaged, `${size}-byte key file must not be replaced`);
    // Still refused on the next start: nothing was "repaired" behind the operator's back.
    await assert.rejects(loadFindingKey(dataDir), { code: 'SLUICE_CONFIG_INVALID' });
  }
});

test('an unreadable key path is SLUICE_CONFIG_INVALID, not a new key', async () => {
  const dataDir = tempDir();
  mkdirSync(join(dataDir, FINDING_KEY_FILE)); // a directory where the key file should be
  await assert.rejects(loadFindingKey(dataDir), (err: unknown) => {
    assert.ok(err instanceof SluiceError && err.code === 'SLUICE_CONFIG_INVALID', String(err));
    return true;
  });
  assert.ok(statSync(join(dataDir, FINDING_KEY_FILE)).isDirectory());
});

test('a longer-than-32-byte key file is accepted as is', async () => {
  // Only a short key is refused; an existing longer key keeps its digests correlating.
  const dataDir = tempDir();
  const key = randomBytes(64);
  writeFileSync(join(dataDir, FINDING_KEY_FILE), key, { mode: 0o600 });
  assert.deepEqual(await loadFindingKey(dataDir), key);
});
