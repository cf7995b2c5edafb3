// Robustness tests across all adapters: mutated, truncated and random bodies must never throw
// from parseRequest, push or finish, and must always yield a well-formed result.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adapterFor } from '../../src/providers/index.js';
import type { Format, ParsedResponse } from '../../src/providers/types.js';
import { ANTHROPIC_TOOL_STREAM, esEvent, jsonBuf, randomSplit, req, rng, sse, typedSse } from './helpers.js';

const FORMATS: Format[] = ['openai', 'anthropic', 'gemini', 'bedrock', 'generic'];
const CONTENT_TYPES = ['application/json', 'text/event-stream', 'application/vnd.amazon.eventstream', '', 'text/plain'];
const PATHS: Record<Format, string> = {
  openai: '/v1/chat/completions',
  anthropic: '/v1/messages',
  gemini: '/v1beta/models/gemini-2.0-flash:streamGenerateContent',
  bedrock: '/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream',
  generic: '/anything',
};

const SEEDS: Buffer[] = [
  jsonBuf({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'hé 東京' }] }], tools: [{ name: 't', function: { name: 'f' } }] }),
  Buffer.from(typedSse(ANTHROPIC_TOOL_STREAM, '\r\n')),
  Buffer.from(sse([{ data: { choices: [{ index: 0, delta: { content: 'x', tool_calls: [{ index: 0, function: { arguments: '{' } }] } }] } }, '[DONE]'])),
  Buffer.from(`[${JSON.stringify({ candidates: [{ content: { parts: [{ text: 'a' }, { functionCall: { name: 'f', args: { a: [1] } } }] } }] })}]`),
  Buffer.concat([esEvent('messageStart', { role: 'assistant' }), esEvent('chunk', { bytes: Buffer.from('{"type":"message_start"}').toString('base64') })]),
];

function mutate(buf: Buffer, r: () => number): Buffer {
  const out = Buffer.from(buf);
  const kind = Math.floor(r() * 4);
  if (kind === 0) {
    const n = 1 + Math.floor(r() * 8);
    for (let i = 0; i < n; i++) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
    return out;
  }
  if (kind === 1) return out.subarray(0, Math.floor(r() * out.length));
  if (kind === 2) return out.subarray(Math.floor(r() * out.length));
  const junk = Buffer.alloc(1 + Math.floor(r() * 64));
  for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(r() * 256);
  return Buffer.concat([out.subarray(0, Math.floor(r() * out.length)), junk]);
}

function wellFormed(r: ParsedResponse): void {
  assert.equal(typeof r.parsed, 'boolean');
  assert.ok(Array.isArray(r.errors) && Array.isArray(r.text) && Array.isArray(r.toolCalls));
  assert.equal(typeof r.truncated, 'boolean');
  for (const t of r.toolCalls) assert.equal(typeof t.arguments, 'string');
}

test('no adapter throws on mutated, truncated or random bodies', () => {
  const r = rng(12345);
  let cases = 0;
  for (let iter = 0; iter < 120; iter++) {
    const seed = SEEDS[iter % SEEDS.length]!;
    const body = mutate(seed, r);
    for (const format of FORMATS) {
      const adapter = adapterFor(format);
      const info = req(PATHS[format]);
      const pr = adapter.parseRequest(body, info);
      assert.equal(typeof pr.parsed, 'boolean');
      assert.ok(Array.isArray(pr.segments) && Array.isArray(pr.tools));
      for (const ct of CONTENT_TYPES) {
        for (const status of [200, 500]) {
          const p = adapter.responseParser(info, pr, { status, contentType: ct }, { maxTextChars: 64 });
          for (const c of randomSplit(body, iter + 1, 9)) p.push(c);
          wellFormed(p.finish());
          cases++;
        }
      }
    }
  }
  assert.ok(cases > 1000);
});

test('maxTextChars of 0 keeps nothing but still parses', () => {
  for (const format of FORMATS) {
    const adapter = adapterFor(format);
    const p = adapter.responseParser(req(PATHS[format]), { parsed: true, operation: 'unknown', stream: true, segments: [], tools: [] }, { status: 200, contentType: 'text/event-stream' }, { maxTextChars: 0 });
    p.push(Buffer.from(typedSse(ANTHROPIC_TOOL_STREAM)));
    const r = p.finish();
    assert.deepEqual(r.text, [], format);
    wellFormed(r);
  }
});
