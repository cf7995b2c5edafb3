// Tests for the AWS event-stream decoder and encoder: framing across splits, all header types,
// CRC and length checks, truncation at end of stream.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { EventStreamDecoder, encodeEventStreamMessage, type EventStreamMessage } from '../../src/providers/eventstream.js';
import { encodeTyped, INTL, sameForAllSplits } from './helpers.js';

interface Got {
  messages: Array<{ headers: Record<string, unknown>; payload: string }>;
  errors: string[];
  error: string | undefined;
}

function run(body: Buffer): Got {
  return sameForAllSplits(body, (chunks) => {
    const messages: Got['messages'] = [];
    const errors: string[] = [];
    const d = new EventStreamDecoder(
      (m: EventStreamMessage) => {
        const headers: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(m.headers)) headers[k] = Buffer.isBuffer(v) ? `buf:${v.toString('hex')}` : v;
        messages.push({ headers, payload: m.payload.toString('utf8') });
      },
      { onError: (e) => errors.push(e) },
    );
    for (const c of chunks) d.push(c);
    d.finish();
    return { messages, errors, error: d.error };
  });
}

test('round-trips encoded frames across any split, including multi-byte payloads', () => {
  const frames = [
    encodeEventStreamMessage({ ':event-type': 'messageStart', ':message-type': 'event' }, Buffer.from('{"role":"assistant"}')),
    encodeEventStreamMessage({ ':event-type': 'contentBlockDelta', 'x-ünïcode': '値' }, Buffer.from(JSON.stringify({ delta: { text: INTL } }))),
    encodeEventStreamMessage({ ':event-type': 'empty' }, Buffer.alloc(0)),
    encodeEventStreamMessage({}, Buffer.from('no headers')),
  ];
  const got = run(Buffer.concat(frames));
  assert.equal(got.error, undefined);
  assert.deepEqual(got.errors, []);
  assert.deepEqual(got.messages, [
    { headers: { ':event-type': 'messageStart', ':message-type': 'event' }, payload: '{"role":"assistant"}' },
    { headers: { ':event-type': 'contentBlockDelta', 'x-ünïcode': '値' }, payload: JSON.stringify({ delta: { text: INTL } }) },
    { headers: { ':event-type': 'empty' }, payload: '' },
    { headers: {}, payload: 'no headers' },
  ]);
});

test('decodes every header value type', () => {
  const frame = encodeTyped(
    [
      ['t', 'true'],
      ['f', 'false'],
      ['b', 'byte', -5],
      ['s', 'short', -1234],
      ['i', 'int', 2_000_000_000],
      ['l', 'long', 9_007_199_254_740_000],
      ['bytes', 'bytes', Buffer.from([0xde, 0xad, 0xbe, 0xef])],
      ['str', 'string', 'héllo'],
      ['ts', 'timestamp', 1_700_000_000_123],
      ['id', 'uuid', '123e4567-e89b-12d3-a456-426614174000'],
    ],
    Buffer.from('payload'),
  );
  const got = run(frame);
  assert.deepEqual(got.errors, []);
  assert.deepEqual(got.messages, [
    {
      headers: {
        t: true,
        f: false,
        b: -5,
        s: -1234,
        i: 2_000_000_000,
        l: 9_007_199_254_740_000,
        bytes: 'buf:deadbeef',
        str: 'héllo',
        ts: 1_700_000_000_123,
        id: '123e4567-e89b-12d3-a456-426614174000',
      },
      payload: 'payload',
    },
  ]);
});

test('message CRC corruption is detected and decoding stops', () => {
  const a = encodeEventStreamMessage({ ':event-type': 'a' }, Buffer.from('first'));
  const b = Buffer.from(encodeEventStreamMessage({ ':event-type': 'b' }, Buffer.from('second')));
  b[b.length - 8] ^= 0xff; // flip a payload byte
  const c = encodeEventStreamMessage({ ':event-type': 'c' }, Buffer.from('third'));
  const got = run(Buffer.concat([a, b, c]));
  assert.deepEqual(
    got.messages.map((m) => m.payload),
    ['first'],
  );
  assert.match(got.error!, /message CRC mismatch at message 1/);
  assert.equal(got.errors.length, 1);
});

test('prelude CRC corruption is detected before trusting the length', () => {
  const b = Buffer.from(encodeEventStreamMessage({ ':event-type': 'b' }, Buffer.from('x')));
  b[2] ^= 0x40; // total length now claims megabytes
  const got = run(b);
  assert.deepEqual(got.messages, []);
  assert.match(got.error!, /prelude CRC mismatch/);
});

test('impossible lengths with a valid prelude CRC are rejected', () => {
  const pre = Buffer.alloc(12);
  pre.writeUInt32BE(10, 0); // shorter than prelude + message CRC
  pre.writeUInt32BE(0, 4);
  pre.writeUInt32BE(crc32(pre.subarray(0, 8)), 8);
  const got = run(Buffer.concat([pre, Buffer.alloc(8)]));
  assert.match(got.error!, /impossible lengths/);
});

test('a truncated frame is reported at finish', () => {
  const a = encodeEventStreamMessage({ ':event-type': 'a' }, Buffer.from('complete'));
  const b = encodeEventStreamMessage({ ':event-type': 'b' }, Buffer.from('cut off here'));
  const got = run(Buffer.concat([a, b.subarray(0, b.length - 5)]));
  assert.deepEqual(
    got.messages.map((m) => m.payload),
    ['complete'],
  );
  assert.match(got.error!, /truncated frame/);
  // A cut inside the prelude is reported too.
  const got2 = run(Buffer.concat([a, b.subarray(0, 7)]));
  assert.match(got2.error!, /truncated frame: 7 bytes left, expected a prelude/);
});

test('malformed headers inside a CRC-valid frame are reported', () => {
  const frame = encodeTyped([['x', 'string', 'ok']], Buffer.alloc(0));
  // Rewrite the header type byte to an unknown type and fix up both CRCs.
  const bad = Buffer.from(frame);
  bad[12 + 2] = 42;
  bad.writeUInt32BE(crc32(bad.subarray(0, bad.length - 4)), bad.length - 4);
  const got = run(bad);
  assert.match(got.error!, /unknown header type 42/);
});

test('large payload arriving byte by byte is joined once, not per byte', () => {
  const payload = Buffer.alloc(256 * 1024, 0x61);
  const frame = encodeEventStreamMessage({ ':event-type': 'big' }, payload);
  let n = 0;
  const d = new EventStreamDecoder((m) => {
    n += m.payload.length;
  });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < frame.length; i++) d.push(frame.subarray(i, i + 1));
  d.finish();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(n, payload.length);
  assert.equal(d.error, undefined);
  assert.ok(ms < 2000, `took ${ms} ms`);
});
