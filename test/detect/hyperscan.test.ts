// Tests for the Hyperscan binding: offsets (ASCII and multi-byte), SOM, compile errors, serialization, workers.
// Without the addon these skip, except under CI or SLUICE_REQUIRE_HYPERSCAN, where a missing engine is a failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import {
  HS_FLAGS,
  HyperscanError,
  compile,
  deserialize,
  hyperscanLoadError,
  hyperscanVersion,
  nativeFlags,
  utf8ToUtf16Offsets,
  type HyperscanMatch,
} from '../../src/detect/hyperscan.js';
import { requireHyperscan } from '../fixtures/hyperscan.js';


const { SOM_LEFTMOST, UTF8, UCP, CASELESS, SINGLEMATCH } = HS_FLAGS;

const plain = (ms: readonly HyperscanMatch[]) => ms.map((m) => ({ ...m }));
const sliceAll = (text: string, ms: readonly HyperscanMatch[]) => ms.map((m) => text.slice(m.start, m.end));

test('availability is reported consistently', (t) => {
  if (!requireHyperscan(t)) return;
  assert.equal(hyperscanLoadError(), undefined);
  assert.match(hyperscanVersion(), /^5\.\d+\.\d+/);
  assert.deepEqual({ ...nativeFlags() }, { ...HS_FLAGS }, 'TS flag constants match hs_compile.h');
});

test('ASCII: ids and end offsets; start is 0 without SOM_LEFTMOST', (t) => {
  if (!requireHyperscan(t)) return;
  const db = compile([
    { id: 10, pattern: 'secret', flags: 0 },
    { id: 20, pattern: 'key\\d+', flags: SINGLEMATCH },
  ]);
  const text = 'my secret is key42 and key7, secret';
  const ms = db.scan(text);
  assert.equal(ms.truncated, false);
  assert.deepEqual(plain(ms), [
    { id: 10, start: 0, end: 9 },
    { id: 20, start: 0, end: 17 },
    { id: 10, start: 0, end: 35 },
  ]);
  assert.equal(text.slice(ms[0]!.end - 'secret'.length, ms[0]!.end), 'secret');
});

test('SOM_LEFTMOST reports leftmost starts', (t) => {
  if (!requireHyperscan(t)) return;
  const db = compile([
    { id: 1, pattern: 'ab+c', flags: SOM_LEFTMOST },
    { id: 2, pattern: '[0-9]{3}-[0-9]{4}', flags: SOM_LEFTMOST },
  ]);
  const text = 'xx abbbc yy 555-1234 abc';
  const ms = db.scan(text);
  assert.deepEqual(plain(ms), [
    { id: 1, start: 3, end: 8 },
    { id: 2, start: 12, end: 20 },
    { id: 1, start: 21, end: 24 },
  ]);
  assert.deepEqual(sliceAll(text, ms), ['abbbc', '555-1234', 'abc']);
});

test('multi-byte text: offsets are UTF-16 indexes (accented, CJK, emoji)', (t) => {
  if (!requireHyperscan(t)) return;
  const db = compile([
    { id: 1, pattern: 'café', flags: SOM_LEFTMOST | UTF8 },
    { id: 2, pattern: '東京都', flags: SOM_LEFTMOST | UTF8 },
    { id: 3, pattern: '🔑+', flags: SOM_LEFTMOST | UTF8 },
    { id: 4, pattern: 'token=\\w+', flags: SOM_LEFTMOST | UTF8 | UCP },
    { id: 5, pattern: 'ÉTÉ', flags: SOM_LEFTMOST | UTF8 | UCP | CASELESS },
  ]);
  const text = 'Ünïcödé café 👩‍👩‍👧 東京都 🔑🔑 token=naïve été!';
  const ms = db.scan(text);
  // Without SINGLEMATCH each growing match is reported at every end; the Map keeps the last (longest) per id.
  const byId = new Map(ms.map((m) => [m.id, m]));
  assert.equal(byId.size, 5);
  assert.deepEqual(sliceAll(text, ms.filter((m) => m.id === 3)), ['🔑', '🔑🔑']);
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((id) => text.slice(byId.get(id)!.start, byId.get(id)!.end)),
    ['café', '東京都', '🔑🔑', 'token=naïve', 'été'],
  );
  // Cross-check every offset against String.indexOf, which is UTF-16 by definition.
  assert.equal(byId.get(1)!.start, text.indexOf('café'));
  assert.equal(byId.get(2)!.start, text.indexOf('東京都'));
  assert.equal(byId.get(3)!.start, text.indexOf('🔑'));
  assert.equal(byId.get(3)!.end, text.indexOf('🔑') + 4, 'two surrogate pairs = 4 UTF-16 units');
  assert.equal(byId.get(5)!.end, text.length - 1);
});

test('scanBytes keeps byte offsets; a byte-level match inside a character rounds outward in scan()', (t) => {
  if (!requireHyperscan(t)) return;
  // \xE4\xBA\xAC is 京; matching only its middle byte lands inside the character.
  const db = compile([{ id: 9, pattern: '\\xBA', flags: SOM_LEFTMOST }]);
  const text = 'a京b';
  assert.deepEqual(plain(db.scanBytes(Buffer.from(text))), [{ id: 9, start: 2, end: 3 }]);
  assert.deepEqual(plain(db.scan(text)), [{ id: 9, start: 1, end: 2 }]);
});

test('offset conversion handles lone surrogates and end-of-input offsets', () => {
  // Pure TS; runs with or without the addon. A lone surrogate encodes as U+FFFD (3 bytes, 1 unit).
  const text = 'x\uD800y😀';
  const bytes = Buffer.from(text, 'utf8');
  assert.equal(bytes.length, 1 + 3 + 1 + 4);
  const raw = new Uint32Array([1, 4, 5, 2, 5, 9, 3, 0, 0]);
  utf8ToUtf16Offsets(bytes, raw);
  assert.deepEqual([...raw], [1, 2, 3, 2, 3, 5, 3, 0, 0]);
});

test('empty input and no-match input give no matches', (t) => {
  if (!requireHyperscan(t)) return;
  const db = compile([{ id: 1, pattern: 'x+', flags: 0 }]);
  assert.deepEqual(plain(db.scan('')), []);
  assert.deepEqual(plain(db.scanBytes(Buffer.alloc(0))), []);
  assert.deepEqual(plain(db.scanBytes(new Uint8Array(0))), []);
  assert.deepEqual(plain(db.scan('abc')), []);
});

test('maxMatches bounds the result and marks it truncated', (t) => {
  if (!requireHyperscan(t)) return;
  const db = compile([{ id: 1, pattern: 'a', flags: 0 }]);
  const exact = db.scan('aaa', { maxMatches: 3 });
  assert.equal(exact.length, 3);
  assert.equal(exact.truncated, false, 'exactly the cap is not truncation');
  const cut = db.scan('a'.repeat(1000), { maxMatches: 5 });
  assert.equal(cut.length, 5);
  assert.equal(cut.truncated, true);
  assert.throws(() => db.scan('a', { maxMatches: -1 }), RangeError);
});

test('a bad pattern fails compilation naming its rule id', (t) => {
  if (!requireHyperscan(t)) return;
  const err = captureError(() =>
    compile([
      { id: 100, pattern: 'fine', flags: 0 },
      { id: 4242, pattern: 'broken(', flags: 0 },
      { id: 300, pattern: 'also fine', flags: 0 },
    ]),
  );
  assert.ok(err instanceof HyperscanError);
  assert.equal(err.code, 'SLUICE_RULE_INVALID');
  assert.equal(err.ruleId, 4242);
  assert.match(err.message, /^rule 4242: .*parenthes/i);

  // Hyperscan-specific rejections (backreferences) are attributed too.
  const backref = captureError(() => compile([{ id: 7, pattern: '(a)\\1', flags: 0 }]));
  assert.ok(backref instanceof HyperscanError);
  assert.equal(backref.ruleId, 7);

  // Checked in TS before Hyperscan sees them.
  const flags = captureError(() => compile([{ id: 8, pattern: 'a', flags: 1 << 20 }]));
  assert.ok(flags instanceof HyperscanError && flags.code === 'SLUICE_RULE_INVALID' && flags.ruleId === 8);
  const nul = captureError(() => compile([{ id: 11, pattern: 'a\0b', flags: 0 }]));
  assert.ok(nul instanceof HyperscanError && nul.ruleId === 11, 'embedded NUL would silently truncate the pattern');
  assert.throws(() => compile([]), { code: 'SLUICE_RULE_INVALID' });
  assert.throws(() => compile([{ id: 1.5, pattern: 'a' }]), TypeError);
});

test('serialize/deserialize round trip scans identically', (t) => {
  if (!requireHyperscan(t)) return;
  const patterns = [
    { id: 1, pattern: '\\b\\d{3}-\\d{2}-\\d{4}\\b', flags: SOM_LEFTMOST },
    { id: 2, pattern: 'sk-[A-Za-z0-9]{20,}', flags: SINGLEMATCH },
    { id: 3, pattern: 'naïve', flags: SOM_LEFTMOST | UTF8 | CASELESS },
  ];
  const db = compile(patterns);
  const bytes = db.serialize();
  assert.ok(Buffer.isBuffer(bytes) && bytes.length > 0);
  const copy = deserialize(new Uint8Array(bytes));
  const text = 'ssn 123-45-6789, key sk-abcdefghijklmnopqrstuvwx, NAÏVE 😀 987-65-4321';
  const expected = db.scan(text);
  assert.deepEqual(expected.map((m) => m.id), [1, 2, 3, 1]);
  assert.deepEqual(plain(copy.scan(text)), plain(expected));
  assert.equal(copy.size, db.size);
  assert.deepEqual(copy.serialize(), bytes);

  assert.throws(() => deserialize(Buffer.from('not a database')), { code: 'SLUICE_ENGINE_ERROR' });
  copy.close();
  assert.throws(() => copy.scan(text), { code: 'SLUICE_ENGINE_ERROR' });
  assert.deepEqual(plain(db.scan(text)), plain(expected), 'closing a copy leaves the original usable');
});

// Each worker loads the addon itself, deserializes the shared bytes, waits at a barrier so both scan at the same
// time, scans many times, and reports its last result plus whether every iteration agreed.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const hs = require(workerData.modulePath);
if (!hs.hyperscanAvailable()) throw new Error(hs.hyperscanLoadError());
const db = workerData.compileHere ? hs.compile(workerData.patterns) : hs.deserialize(workerData.bytes);
const barrier = new Int32Array(workerData.barrier);
Atomics.add(barrier, 0, 1);
Atomics.notify(barrier, 0);
while (Atomics.load(barrier, 0) < workerData.parties) Atomics.wait(barrier, 0, Atomics.load(barrier, 0), 50);
let first, consistent = true;
for (let i = 0; i < workerData.iterations; i++) {
  const ms = JSON.stringify(db.scan(workerData.text));
  if (first === undefined) first = ms; else if (ms !== first) consistent = false;
}
parentPort.postMessage({ matches: JSON.parse(first), consistent });
`;

test('two worker_threads scan concurrently with their own addon instance and scratch', async (t) => {
  if (!requireHyperscan(t)) return;
  const patterns = [
    { id: 1, pattern: '[a-z]+@[a-z]+\\.com', flags: SOM_LEFTMOST },
    { id: 2, pattern: '東京|🔑', flags: SOM_LEFTMOST | UTF8 },
  ];
  const db = compile(patterns);
  const bytes = db.serialize();
  const text = 'mail bob@example.com 東京 🔑 '.repeat(200);
  const expected = plain(db.scan(text));
  assert.equal(expected.length, 600);

  const barrier = new SharedArrayBuffer(4);
  const run = (compileHere: boolean) =>
    new Promise<{ matches: HyperscanMatch[]; consistent: boolean }>((resolve, reject) => {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          modulePath: require.resolve('../../src/detect/hyperscan.js'),
          bytes,
          patterns,
          compileHere,
          barrier,
          parties: 2,
          iterations: 200,
          text,
        },
      });
      let result: { matches: HyperscanMatch[]; consistent: boolean } | undefined;
      w.on('message', (m: { matches: HyperscanMatch[]; consistent: boolean }) => (result = m));
      w.on('error', reject);
      w.on('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`worker exited ${code}`))));
    });

  const workers = Promise.all([run(false), run(true)]);
  // The main thread keeps scanning with its own scratch while the workers run.
  for (let i = 0; i < 20; i++) assert.deepEqual(plain(db.scan(text)), expected);
  const results = await workers;
  for (const r of results) {
    assert.equal(r.consistent, true);
    assert.deepEqual(r.matches, expected);
  }
  // The main thread's instance is unaffected by the workers' environments being torn down.
  assert.deepEqual(plain(db.scan(text)), expected);
});

test('scratch is shared per thread across databases of different sizes', (t) => {
  if (!requireHyperscan(t)) return;
  const small = compile([{ id: 1, pattern: 'a', flags: 0 }]);
  const big = compile(
    Array.from({ length: 200 }, (_, i) => ({ id: 1000 + i, pattern: `w${i}:[0-9]{2,8}x`, flags: SOM_LEFTMOST })),
  );
  assert.deepEqual(plain(small.scan('ba')), [{ id: 1, start: 0, end: 2 }]);
  assert.deepEqual(plain(big.scan("-- w17:123x --")), [{ id: 1017, start: 3, end: 11 }]);
  assert.deepEqual(plain(small.scan('ba')), [{ id: 1, start: 0, end: 2 }]);
});

test('argument checking', (t) => {
  if (!requireHyperscan(t)) return;
  const db = compile([{ id: 1, pattern: 'a' }]);
  assert.throws(() => db.scan(Buffer.from('a') as unknown as string), TypeError);
  assert.throws(() => db.scanBytes('a' as unknown as Uint8Array), TypeError);
  assert.throws(() => deserialize('x' as unknown as Uint8Array), TypeError);
  assert.throws(() => compile('a' as unknown as []), TypeError);
});

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected an error');
}
