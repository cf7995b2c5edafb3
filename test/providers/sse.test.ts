// Tests for the incremental SSE parser: split-anywhere input, field handling, bounds.
// Every case runs whole, byte by byte and in random pieces and must give the same events.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser } from '../../src/providers/sse.js';
import { INTL, sameForAllSplits } from './helpers.js';

interface Got {
  events: Array<[string, string, string | undefined]>;
  errors: string[];
  done: boolean;
}

function run(body: string | Buffer, maxLineBytes?: number): Got {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return sameForAllSplits(buf, (chunks) => {
    const events: Got['events'] = [];
    const errors: string[] = [];
    const p = new SseParser((e, d, id) => events.push([e, d, id]), maxLineBytes === undefined ? { onError: (m) => errors.push(m) } : { maxLineBytes, onError: (m) => errors.push(m) });
    for (const c of chunks) p.push(c);
    p.finish();
    return { events, errors, done: p.sawDone };
  });
}

test('plain data events, default event name, [DONE] swallowed', () => {
  const got = run('data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n');
  assert.deepEqual(got.events, [
    ['message', '{"a":1}', undefined],
    ['message', '{"b":2}', undefined],
  ]);
  assert.equal(got.done, true);
  assert.deepEqual(got.errors, []);
});

test('CRLF, CR-only and LF line endings, with multi-byte text split anywhere', () => {
  const body = `event: greet\r\ndata: ${INTL}\r\n\r\nevent: second\rdata: 中文\r\rdata: x\n\n`;
  const got = run(body);
  assert.deepEqual(got.events, [
    ['greet', INTL, undefined],
    ['second', '中文', undefined],
    ['message', 'x', undefined],
  ]);
});

test('multi-line data is joined with \\n; comments, id and retry lines', () => {
  const body = [': keep-alive comment', 'id: 42', 'retry: 1000', 'event: multi', 'data: line one', 'data:line two', 'data', 'data:  two spaces', '', ''].join('\r\n');
  const got = run(body);
  assert.deepEqual(got.events, [['multi', 'line one\nline two\n\n two spaces', '42']]);
});

test('a field without a space after the colon, and unknown fields ignored', () => {
  const got = run('event:x\nfoo: bar\ndata:{"k":"v"}\n\n');
  assert.deepEqual(got.events, [['x', '{"k":"v"}', undefined]]);
});

test('events without data are not dispatched; event name resets after dispatch', () => {
  const got = run('event: ping\n\nevent: a\ndata: 1\n\ndata: 2\n\n');
  assert.deepEqual(got.events, [
    ['a', '1', undefined],
    ['message', '2', undefined],
  ]);
});

test('missing final blank line at EOF still delivers the last event', () => {
  assert.deepEqual(run('data: one\n\ndata: last').events, [
    ['message', 'one', undefined],
    ['message', 'last', undefined],
  ]);
  assert.deepEqual(run('data: last\n').events, [['message', 'last', undefined]]);
  assert.deepEqual(run('data: last\r').events, [['message', 'last', undefined]]);
});

test('a UTF-8 BOM at the start is ignored', () => {
  const got = run(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('data: é\n\n')]));
  assert.deepEqual(got.events, [['message', 'é', undefined]]);
});

test('over-long line is reported and its event dropped, parsing continues', () => {
  const long = 'x'.repeat(200);
  const got = run(`data: ok1\n\ndata: ${long}\ndata: tail\n\ndata: ok2\n\n`, 64);
  assert.deepEqual(got.events, [
    ['message', 'ok1', undefined],
    ['message', 'ok2', undefined],
  ]);
  assert.equal(got.errors.length, 1);
  assert.match(got.errors[0]!, /longer than 64 bytes/);
});

test('keeps only the unfinished tail, not the stream', () => {
  const p = new SseParser(() => {});
  const line = Buffer.from(`data: ${'y'.repeat(1000)}\n\n`);
  for (let i = 0; i < 5000; i++) p.push(line);
  p.push(Buffer.from('data: partial'));
  // The parser's pending buffer must hold just the partial line, whatever came before.
  const pending = (p as unknown as { pendingBytes: number }).pendingBytes;
  assert.equal(pending, 'data: partial'.length);
  assert.equal(p.eventCount, 5000);
});

test('a throwing handler is reported, not propagated', () => {
  const errors: string[] = [];
  const p = new SseParser(
    () => {
      throw new Error('boom');
    },
    { onError: (m) => errors.push(m) },
  );
  p.push(Buffer.from('data: 1\n\n'));
  p.finish();
  assert.match(errors[0]!, /boom/);
});
