// Tests for the Anthropic Messages adapter: request blocks, JSON and SSE responses, tool_use
// input reassembled from input_json_delta fragments, errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anthropicAdapter } from '../../src/providers/anthropic.js';
import { ANTHROPIC_TOOL_STREAM, ANTHROPIC_TOOL_STREAM_PARSED, INTL, jsonBuf, parseResponse, req, typedSse } from './helpers.js';

const SSE = 'text/event-stream; charset=utf-8';

test('request: system string and blocks, text/tool_use/tool_result blocks, tools, stream', () => {
  const body = {
    model: 'claude-sonnet-4-5',
    max_tokens: 1024,
    stream: true,
    system: [{ type: 'text', text: 'You are a weather bot.', cache_control: { type: 'ephemeral' } }],
    tools: [
      { name: 'get_weather', description: 'Get the current weather', input_schema: { type: 'object', properties: { location: { type: 'string' } } } },
      { type: 'web_search_20250305', name: 'web_search', max_uses: 5 },
    ],
    messages: [
      { role: 'user', content: `Weather in 東京? ${INTL}` },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Let me check.' },
          { type: 'tool_use', id: 'toolu_01A09q90qw90lq917835lq9', name: 'get_weather', input: { location: 'Tokyo' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_01A09q90qw90lq917835lq9', content: '15 degrees' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: [{ type: 'text', text: 'rainy' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAA' } }] },
          { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: '/9j/4AAQ' } },
          { type: 'text', text: 'Thanks!' },
        ],
      },
    ],
  };
  const r = anthropicAdapter.parseRequest(jsonBuf(body), req('/v1/messages'));
  assert.equal(r.parsed, true);
  assert.equal(r.operation, 'messages');
  assert.equal(r.model, 'claude-sonnet-4-5');
  assert.equal(r.stream, true);
  assert.deepEqual(r.tools, ['get_weather', 'web_search']);
  assert.deepEqual(r.segments, [
    { role: 'system', text: 'You are a weather bot.', path: 'system[0].text' },
    { role: 'user', text: `Weather in 東京? ${INTL}`, path: 'messages[0].content' },
    { role: 'assistant', text: 'Let me check.', path: 'messages[1].content[0].text' },
    { role: 'assistant', text: '{"location":"Tokyo"}', path: 'messages[1].content[1].input' },
    { role: 'tool', text: '15 degrees', path: 'messages[2].content[0].content' },
    { role: 'tool', text: 'rainy', path: 'messages[2].content[1].content[0].text' },
    { role: 'user', text: 'Thanks!', path: 'messages[2].content[3].text' },
  ]);
  const s = anthropicAdapter.parseRequest(jsonBuf({ model: 'claude-3-haiku', system: 'Be brief.', messages: [] }), req('/v1/messages'));
  assert.deepEqual(s.segments, [{ role: 'system', text: 'Be brief.', path: 'system' }]);
  assert.equal(s.stream, false);
});

test('request garbage is parsed:false', () => {
  const r = anthropicAdapter.parseRequest(Buffer.from('{"model":'), req('/v1/messages'));
  assert.equal(r.parsed, false);
  assert.match(r.error!, /invalid JSON/);
});

test('JSON response: text and tool_use blocks, usage, stop_reason', () => {
  const body = {
    id: 'msg_01Aq9w938a90dw8q',
    type: 'message',
    role: 'assistant',
    model: 'claude-sonnet-4-5-20250929',
    content: [
      { type: 'thinking', thinking: 'User wants weather.', signature: 'EqQBCgIYAhIM' },
      { type: 'text', text: `I'll check. ${INTL}` },
      { type: 'tool_use', id: 'toolu_01A09q90qw90lq917835lq9', name: 'get_weather', input: { location: 'San Francisco, CA', unit: 'celsius' } },
    ],
    stop_reason: 'tool_use',
    stop_sequence: null,
    usage: { input_tokens: 2095, output_tokens: 503, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
  };
  const r = parseResponse(anthropicAdapter, req('/v1/messages'), jsonBuf(body), 'application/json');
  assert.deepEqual(r, {
    parsed: true,
    errors: [],
    text: [
      { role: 'thinking', text: 'User wants weather.', path: 'content[0].thinking' },
      { role: 'assistant', text: `I'll check. ${INTL}`, path: 'content[1].text' },
    ],
    toolCalls: [{ id: 'toolu_01A09q90qw90lq917835lq9', name: 'get_weather', arguments: '{"location":"San Francisco, CA","unit":"celsius"}' }],
    usage: { inputTokens: 2095, outputTokens: 503, totalTokens: 2598 },
    finishReason: 'tool_use',
    truncated: false,
  });
});

test('SSE stream: text deltas, tool_use reassembled from partial_json, usage, stop_reason (CRLF)', () => {
  const r = parseResponse(anthropicAdapter, req('/v1/messages'), typedSse(ANTHROPIC_TOOL_STREAM, '\r\n'), SSE);
  assert.deepEqual(r, ANTHROPIC_TOOL_STREAM_PARSED);
});

test('SSE stream: thinking deltas are kept under their own role', () => {
  const r = parseResponse(
    anthropicAdapter,
    req('/v1/messages'),
    typedSse([
      { type: 'message_start', message: { usage: { input_tokens: 10, output_tokens: 1 } } },
      { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Hmm, ' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: '2+2=4.' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQBCgIYAhIM' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: '4' } },
      { type: 'content_block_stop', index: 1 },
      { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 12 } },
      { type: 'message_stop' },
    ]),
    SSE,
  );
  assert.deepEqual(r.text, [
    { role: 'thinking', text: 'Hmm, 2+2=4.', path: 'content[0].thinking' },
    { role: 'assistant', text: '4', path: 'content[1].text' },
  ]);
  assert.equal(r.finishReason, 'end_turn');
});

test('SSE error event (overloaded) and a stream cut before message_stop', () => {
  const r = parseResponse(
    anthropicAdapter,
    req('/v1/messages'),
    typedSse([ANTHROPIC_TOOL_STREAM[0]!, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }]),
    SSE,
  );
  assert.deepEqual(r.providerError, { type: 'overloaded_error', message: 'Overloaded' });
  assert.deepEqual(r.errors, []);
  const cut = parseResponse(anthropicAdapter, req('/v1/messages'), typedSse(ANTHROPIC_TOOL_STREAM.slice(0, 5)), SSE);
  assert.deepEqual(cut.errors, ['stream ended before message_stop']);
  assert.equal(cut.text[0]!.text, "Okay, let's check the weather for 東京 ☀️ ");
});

test('SSE body without trailing blank line still yields the last event', () => {
  const body = typedSse(ANTHROPIC_TOOL_STREAM).replace(/\n\n$/, '');
  const r = parseResponse(anthropicAdapter, req('/v1/messages'), body, SSE);
  assert.deepEqual(r.errors, []);
  assert.equal(r.finishReason, 'tool_use');
});

test('JSON error body', () => {
  const r = parseResponse(
    anthropicAdapter,
    req('/v1/messages'),
    jsonBuf({ type: 'error', error: { type: 'invalid_request_error', message: 'messages: at least one message is required' }, request_id: 'req_011CSHoEeqs5C35K2UUqR7Fy' }),
    'application/json',
    { status: 400 },
  );
  assert.equal(r.parsed, true);
  assert.deepEqual(r.providerError, { type: 'invalid_request_error', message: 'messages: at least one message is required' });
});

test('garbage response is parsed:false', () => {
  const r = parseResponse(anthropicAdapter, req('/v1/messages'), 'upstream connect error or disconnect/reset before headers', 'text/plain', { status: 503 });
  assert.equal(r.parsed, false);
  assert.equal(r.providerError?.type, 'http_503');
});

test('errorBody matches the Anthropic error shape and carries the code', () => {
  const e = anthropicAdapter.errorBody(429, 'rate_limited', 'Slow down');
  assert.deepEqual(JSON.parse(e.body), { type: 'error', error: { type: 'sluice_error', message: 'Slow down', code: 'rate_limited' } });
  assert.equal(e.contentType, 'application/json');
});
