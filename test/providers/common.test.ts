// Tests for the shared provider helpers: JSON paths, the bounded response builder, the JSON value
// splitter and the body driver's framing choice (content-type first, sniffing when it is missing).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createResponseParser,
  jp,
  JsonValueSplitter,
  MAX_ERRORS,
  MAX_JSON_BODY_BYTES,
  ResponseBuilder,
  type ResponseHandlers,
} from '../../src/providers/common.js';
import { encodeEventStreamMessage } from '../../src/providers/eventstream.js';
import { INTL, sameForAllSplits } from './helpers.js';

test('jp builds dotted, indexed and quoted paths', () => {
  assert.equal(jp('', 'messages'), 'messages');
  assert.equal(jp(jp(jp('messages', 2), 'content'), 0), 'messages[2].content[0]');
  assert.equal(jp('a', 'b-c'), 'a["b-c"]');
  assert.equal(jp('', 'amazon-bedrock-invocationMetrics'), '["amazon-bedrock-invocationMetrics"]');
  assert.equal(jp('', 0), '[0]');
});

test('ResponseBuilder appends deltas per path and truncates at the budget without splitting a surrogate pair', () => {
  const b = new ResponseBuilder(7);
  b.text('p', 'assistant', 'abc');
  b.text('p', 'assistant', 'de😀x'); // 'de' fits (5), the emoji would need 2 more units: 7 allows both
  b.text('q', 'assistant', 'more');
  const r = b.result();
  assert.equal(r.truncated, true);
  assert.deepEqual(r.text, [{ role: 'assistant', text: 'abcde😀', path: 'p' }]);

  const b2 = new ResponseBuilder(4);
  b2.text('p', 'assistant', 'abc😀');
  assert.equal(b2.result().text[0]!.text, 'abc');
});

test('ResponseBuilder tool args share the budget; full args replace fragments', () => {
  const b = new ResponseBuilder(100);
  b.tool('k', 'id1', 'fn');
  b.toolArgs('k', '{"a":');
  b.toolArgs('k', '1}');
  b.toolSetArgs('k', '{"a":1}');
  b.addTool('id2', 'other', '{}');
  const r = b.result();
  assert.deepEqual(r.toolCalls, [
    { id: 'id1', name: 'fn', arguments: '{"a":1}' },
    { id: 'id2', name: 'other', arguments: '{}' },
  ]);
  assert.equal(r.truncated, false);
});

test('ResponseBuilder caps the error list', () => {
  const b = new ResponseBuilder();
  for (let i = 0; i < MAX_ERRORS + 5; i++) b.error(`e${i}`);
  const r = b.result();
  assert.equal(r.errors.length, MAX_ERRORS + 1);
  assert.equal(r.errors.at(-1), '5 more errors not shown');
});

test('ResponseBuilder computes total tokens when only input and output are known', () => {
  const b = new ResponseBuilder();
  b.setUsage({ inputTokens: 3 });
  b.setUsage({ outputTokens: 4 });
  assert.deepEqual(b.result().usage, { inputTokens: 3, outputTokens: 4, totalTokens: 7 });
});

function splitValues(body: string): { values: string[]; errors: string[] } {
  return sameForAllSplits(Buffer.from(body), (chunks) => {
    const values: string[] = [];
    const errors: string[] = [];
    const s = new JsonValueSplitter(
      (b) => values.push(b.toString('utf8')),
      (e) => errors.push(e),
    );
    for (const c of chunks) s.push(c);
    s.finish();
    return { values, errors };
  });
}

test('JsonValueSplitter yields array elements, respecting strings and escapes', () => {
  const body = `[{"text": "a ] tricky } \\" string [", "n": [1, {"x": 2}]}\r\n,\r\n{"t": "${INTL}"}, "str\\\\", 42 , true]`;
  const got = splitValues(body);
  assert.deepEqual(got.errors, []);
  assert.deepEqual(got.values.map((v) => JSON.parse(v)), [{ text: 'a ] tricky } " string [', n: [1, { x: 2 }] }, { t: INTL }, 'str\\', 42, true]);
});

test('JsonValueSplitter handles a single object and concatenated objects', () => {
  assert.deepEqual(splitValues('{"a":1}').values, ['{"a":1}']);
  assert.deepEqual(splitValues('{"a":1}\n{"b":2}\n').values, ['{"a":1}', '{"b":2}']);
});

test('JsonValueSplitter reports a cut-off value and an unclosed array', () => {
  const cut = splitValues('[{"a":1},{"b":');
  assert.deepEqual(cut.values, ['{"a":1}']);
  assert.match(cut.errors[0]!, /ended inside a value/);
  const open = splitValues('[{"a":1},');
  assert.match(open.errors[0]!, /array not closed/);
  const extra = splitValues('[1] x');
  assert.match(extra.errors[0]!, /after the end/);
});

/** A driver whose handlers just record what they were given. */
function driverRecord(body: Buffer, contentType: string, status = 200): { seen: string[]; errors: string[]; parsed: boolean } {
  return sameForAllSplits(body, (chunks) => {
    const seen: string[] = [];
    const p = createResponseParser({ status, contentType }, undefined, (): ResponseHandlers => ({
      json: (v) => seen.push(`json:${JSON.stringify(v)}`),
      sse: (e, v) => seen.push(`sse:${e}:${JSON.stringify(v)}`),
      eventStream: (m) => seen.push(`es:${String(m.headers[':event-type'])}:${m.payload.toString()}`),
    }));
    for (const c of chunks) p.push(c);
    const r = p.finish();
    return { seen, errors: r.errors, parsed: r.parsed };
  });
}

test('driver sniffs JSON, SSE and event-stream bodies when content-type is missing', () => {
  assert.deepEqual(driverRecord(Buffer.from('  \n{"x":1}'), '').seen, ['json:{"x":1}']);
  assert.deepEqual(driverRecord(Buffer.from(': hi\n\ndata: {"y":2}\n\n'), '').seen, ['sse:message:{"y":2}']);
  assert.deepEqual(driverRecord(Buffer.from('event: e\ndata: {"y":2}\n\n'), 'application/octet-stream').seen, ['sse:e:{"y":2}']);
  const es = encodeEventStreamMessage({ ':event-type': 'chunk' }, Buffer.from('{}'));
  assert.deepEqual(driverRecord(es, '').seen, ['es:chunk:{}']);
  assert.deepEqual(driverRecord(es, 'application/vnd.amazon.eventstream').seen, ['es:chunk:{}']);
});

test('driver recognises an SSE body mislabelled as JSON', () => {
  assert.deepEqual(driverRecord(Buffer.from('data: {"y":2}\n\n'), 'application/json').seen, ['sse:message:{"y":2}']);
});

test('driver trusts JSON over a wrong SSE content-type', () => {
  assert.deepEqual(driverRecord(Buffer.from('{"error":{"message":"x"}}'), 'text/event-stream').seen, ['json:{"error":{"message":"x"}}']);
});

test('driver reports empty and garbage bodies as parsed:false, never throwing', () => {
  const empty = driverRecord(Buffer.alloc(0), 'application/json');
  assert.equal(empty.parsed, false);
  assert.deepEqual(empty.errors, ['empty body']);
  const garbage = driverRecord(Buffer.from('<html>502 Bad Gateway</html>'), 'text/html', 502);
  assert.equal(garbage.parsed, false);
  assert.match(garbage.errors[0]!, /invalid JSON/);
  const binary = driverRecord(Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x02]), '');
  assert.equal(binary.parsed, false);
});

test('driver gives up on JSON bodies over the buffering cap', () => {
  const p = createResponseParser({ status: 200, contentType: 'application/json' }, undefined, () => ({ json: () => assert.fail('must not parse') }));
  const piece = Buffer.alloc(1024 * 1024, 0x20);
  p.push(Buffer.from('{"a":"'));
  for (let i = 0; i <= MAX_JSON_BODY_BYTES / piece.length; i++) p.push(piece);
  p.push(Buffer.from('"}'));
  const r = p.finish();
  assert.equal(r.parsed, false);
  assert.match(r.errors[0]!, /larger than/);
});

test('finish is idempotent and push after finish is ignored', () => {
  const p = createResponseParser({ status: 200, contentType: 'application/json' }, undefined, () => ({}));
  p.push(Buffer.from('{}'));
  const a = p.finish();
  p.push(Buffer.from('garbage'));
  assert.deepEqual(p.finish(), a);
});

test('handlers that throw are recorded as errors', () => {
  const p = createResponseParser({ status: 200, contentType: 'text/event-stream' }, undefined, () => ({
    sse: () => {
      throw new Error('kaput');
    },
  }));
  p.push(Buffer.from('data: {}\n\n'));
  const r = p.finish();
  assert.ok(r.errors.some((e) => e.includes('kaput')));
});
