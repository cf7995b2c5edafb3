// Tests for the generic fallback adapter and the adapter table: every JSON string becomes a
// segment, streams are reassembled by path, work stays bounded, garbage never throws.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { genericAdapter, GENERIC_MAX_DEPTH } from '../../src/providers/generic.js';
import { adapterFor, anthropicAdapter, bedrockAdapter, geminiAdapter, openaiAdapter } from '../../src/providers/index.js';
import type { Format } from '../../src/providers/types.js';
import { INTL, jsonBuf, parseResponse, req, sse } from './helpers.js';

test('adapterFor maps every format, unknown ones to generic', () => {
  assert.equal(adapterFor('openai'), openaiAdapter);
  assert.equal(adapterFor('anthropic'), anthropicAdapter);
  assert.equal(adapterFor('gemini'), geminiAdapter);
  assert.equal(adapterFor('bedrock'), bedrockAdapter);
  assert.equal(adapterFor('generic'), genericAdapter);
  assert.equal(adapterFor('cohere' as Format), genericAdapter);
  assert.equal(adapterFor('__proto__' as Format), genericAdapter);
  for (const f of ['openai', 'anthropic', 'gemini', 'bedrock', 'generic'] as const) assert.equal(adapterFor(f).format, f);
});

test('request: every string with its JSON path, model and stream picked up', () => {
  const body = { model: 'command-r-plus', stream: true, message: `Hello ${INTL}`, chat_history: [{ role: 'USER', message: 'earlier' }], 'odd-key': 'x', temperature: 0.3, n: [1, 2, 3] };
  const r = genericAdapter.parseRequest(jsonBuf(body), req('/v1/chat'));
  assert.equal(r.parsed, true);
  assert.equal(r.operation, 'unknown');
  assert.equal(r.model, 'command-r-plus');
  assert.equal(r.stream, true);
  assert.deepEqual(r.segments, [
    { role: 'unknown', text: 'command-r-plus', path: 'model' },
    { role: 'unknown', text: `Hello ${INTL}`, path: 'message' },
    { role: 'unknown', text: 'USER', path: 'chat_history[0].role' },
    { role: 'unknown', text: 'earlier', path: 'chat_history[0].message' },
    { role: 'unknown', text: 'x', path: '["odd-key"]' },
  ]);
  const arr = genericAdapter.parseRequest(jsonBuf(['a', { b: 'c' }]), req('/x'));
  assert.deepEqual(arr.segments, [
    { role: 'unknown', text: 'a', path: '[0]' },
    { role: 'unknown', text: 'c', path: '[1].b' },
  ]);
});

test('request: non-JSON is parsed:false; deep nesting is bounded, not a stack overflow', () => {
  const bad = genericAdapter.parseRequest(Buffer.from('hello=world&x=1'), req('/form', { contentType: 'application/x-www-form-urlencoded' }));
  assert.equal(bad.parsed, false);
  assert.match(bad.error!, /invalid JSON/);
  const deep = '['.repeat(5000) + '"deep"' + ']'.repeat(5000);
  const d = genericAdapter.parseRequest(Buffer.from(deep), req('/x'));
  assert.equal(d.parsed, true);
  assert.deepEqual(d.segments, []);
  assert.match(d.error!, new RegExp(`deeper than ${GENERIC_MAX_DEPTH}`));
});

test('JSON response: strings collected, usage and error shapes recognised', () => {
  const body = { id: 'gen-1', text: 'Bonjour', meta: { billed_units: { input_tokens: 3 } }, usage: { input_tokens: 3, output_tokens: 2 } };
  const r = parseResponse(genericAdapter, req('/v1/chat'), jsonBuf(body), 'application/json');
  assert.deepEqual(r.text, [
    { role: 'unknown', text: 'gen-1', path: 'id' },
    { role: 'unknown', text: 'Bonjour', path: 'text' },
  ]);
  assert.deepEqual(r.usage, { inputTokens: 3, outputTokens: 2, totalTokens: 5 });
  const e = parseResponse(genericAdapter, req('/v1/chat'), jsonBuf({ error: { message: 'bad key', type: 'auth' } }), 'application/json', { status: 401 });
  assert.deepEqual(e.providerError, { type: 'auth', message: 'bad key' });
  const m = parseResponse(genericAdapter, req('/v1/chat'), jsonBuf({ message: 'Not found' }), 'application/json', { status: 404 });
  assert.deepEqual(m.providerError, { type: 'http_404', message: 'Not found' });
});

test('SSE response: same-path deltas are concatenated; constant fields kept once; repeats restored', () => {
  const body = sse(
    [
      { data: { id: 'x1', object: 'chunk', delta: { text: 'a' } } },
      { data: { id: 'x1', object: 'chunk', delta: { text: 'a' } } },
      { data: { id: 'x1', object: 'chunk', delta: { text: 'b 東京' } } },
      { data: { id: 'x1', object: 'chunk', delta: { text: '👩‍💻' }, usage: { prompt_tokens: 1, completion_tokens: 4 } } },
      '[DONE]',
    ],
    '\r\n',
  );
  const r = parseResponse(genericAdapter, req('/v1/stream'), body, 'text/event-stream');
  assert.deepEqual(r.text, [
    { role: 'unknown', text: 'x1', path: 'id' },
    { role: 'unknown', text: 'chunk', path: 'object' },
    { role: 'unknown', text: 'aab 東京👩‍💻', path: 'delta.text' },
  ]);
  assert.deepEqual(r.usage, { inputTokens: 1, outputTokens: 4, totalTokens: 5 });
  assert.deepEqual(r.errors, []);
});

test('garbage responses are parsed:false without throwing; truncation honoured', () => {
  for (const body of ['', 'plain text', '{"unterminated": ', Buffer.from([0xc3, 0x28, 0xa0, 0xa1])]) {
    const r = parseResponse(genericAdapter, req('/x'), body as string | Buffer, '');
    assert.equal(r.parsed, false);
    assert.ok(r.errors.length > 0);
  }
  const big = parseResponse(genericAdapter, req('/x'), jsonBuf({ a: 'x'.repeat(50), b: 'y'.repeat(50) }), 'application/json', { options: { maxTextChars: 60 } });
  assert.equal(big.truncated, true);
  assert.deepEqual(
    big.text.map((t) => t.text.length),
    [50, 10],
  );
});

test('errorBody is a plain JSON error', () => {
  const e = genericAdapter.errorBody(502, 'upstream_failed', 'Upstream failed');
  assert.deepEqual(JSON.parse(e.body), { error: { message: 'Upstream failed', type: 'sluice_error', code: 'upstream_failed', status: 502 } });
});
