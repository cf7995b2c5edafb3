import assert from 'node:assert/strict';
import { test } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { BodyTap } from '../../src/pipeline/decode';

function tap(encoding: string, limit: number, parts: Buffer[]): Promise<{ bytes: Buffer; problems: string[] }> {
  const got: Buffer[] = [];
  const problems: string[] = [];
  const t = new BodyTap(encoding, limit, { chunk: (b) => got.push(Buffer.from(b)), problem: (m) => problems.push(m) });
  for (const p of parts) t.push(p);
  return new Promise((resolve) => t.end(() => resolve({ bytes: Buffer.concat(got), problems })));
}

test('gzip, deflate and br bodies are decoded across arbitrary chunk splits', async () => {
  const plain = Buffer.from('data: {"choices":[{"delta":{"content":"héllo 世界"}}]}\n\n'.repeat(200));
  for (const [enc, packed] of [['gzip', gzipSync(plain)], ['deflate', deflateSync(plain)], ['br', brotliCompressSync(plain)]] as const) {
    const parts: Buffer[] = [];
    for (let i = 0; i < packed.length; i += 7) parts.push(packed.subarray(i, i + 7));
    const r = await tap(enc, 1 << 20, parts);
    assert.deepEqual(r.bytes, plain, enc);
    assert.deepEqual(r.problems, []);
  }
});

test('a compression bomb stops at the limit', async () => {
  const bomb = gzipSync(Buffer.alloc(64 << 20)); // 64 MiB of zeros in ~64 KiB
  assert.ok(bomb.length < 128 * 1024);
  const r = await tap('gzip', 256 * 1024, [bomb]);
  assert.equal(r.bytes.length, 256 * 1024);
  assert.match(r.problems.join(), /max_inspect_bytes/);
});

test('plain bodies are capped too; corrupt and unknown encodings are reported, not thrown', async () => {
  const r = await tap('', 10, [Buffer.from('0123456789abcdef')]);
  assert.equal(r.bytes.toString(), '0123456789');
  assert.equal(r.problems.length, 1);

  const bad = await tap('gzip', 1024, [Buffer.from('definitely not gzip')]);
  assert.match(bad.problems.join(), /decoding gzip failed/);

  const zstd = await tap('zstd', 1024, [Buffer.from('x')]);
  assert.equal(zstd.bytes.length, 0);
  assert.match(zstd.problems.join(), /"zstd" is not decoded/);
});
