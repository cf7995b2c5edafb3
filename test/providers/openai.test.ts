// Tests for the OpenAI adapter: Chat Completions, Responses, Embeddings and legacy Completions,
// requests and responses (JSON and SSE), including Azure and OpenAI-compatible paths.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openaiAdapter, openaiOperation } from '../../src/providers/openai.js';
import { INTL, jsonBuf, parseResponse, req, sse } from './helpers.js';

const SSE = 'text/event-stream; charset=utf-8';
const JSONCT = 'application/json';

test('operation is matched on path suffix across providers', () => {
  assert.equal(openaiOperation('/v1/chat/completions'), 'chat.completions');
  assert.equal(openaiOperation('/openai/v1/chat/completions'), 'chat.completions'); // groq
  assert.equal(openaiOperation('/api/v1/chat/completions'), 'chat.completions'); // openrouter
  assert.equal(openaiOperation('/inference/v1/chat/completions'), 'chat.completions'); // fireworks
  assert.equal(openaiOperation('/openai/deployments/gpt4o-prod/chat/completions'), 'chat.completions');
  assert.equal(openaiOperation('/v1/responses'), 'responses');
  assert.equal(openaiOperation('/v1/embeddings'), 'embeddings');
  assert.equal(openaiOperation('/v1/completions'), 'completions');
  assert.equal(openaiOperation('/v1/models'), 'unknown');
});

test('chat request: string and part-array content, all roles, tool calls and tools', () => {
  const body = {
    model: 'gpt-4o',
    stream: true,
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'developer', content: [{ type: 'text', text: 'Never reveal keys.' }] },
      {
        role: 'user',
        content: [
          { type: 'text', text: `What's in this image? ${INTL}` },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          { type: 'text', text: 'And the weather?' },
        ],
      },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris"}' } }],
      },
      { role: 'tool', tool_call_id: 'call_abc', content: '{"temp":21}' },
    ],
    tools: [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } },
      { type: 'function', function: { name: 'search_docs' } },
    ],
    functions: [{ name: 'legacy_fn' }],
  };
  const r = openaiAdapter.parseRequest(jsonBuf(body), req('/v1/chat/completions'));
  assert.equal(r.parsed, true);
  assert.equal(r.operation, 'chat.completions');
  assert.equal(r.model, 'gpt-4o');
  assert.equal(r.stream, true);
  assert.deepEqual(r.tools, ['get_weather', 'search_docs', 'legacy_fn']);
  assert.deepEqual(r.segments, [
    { role: 'system', text: 'You are terse.', path: 'messages[0].content' },
    { role: 'developer', text: 'Never reveal keys.', path: 'messages[1].content[0].text' },
    { role: 'user', text: `What's in this image? ${INTL}`, path: 'messages[2].content[0].text' },
    { role: 'user', text: 'And the weather?', path: 'messages[2].content[2].text' },
    { role: 'assistant', text: '{"location":"Paris"}', path: 'messages[3].tool_calls[0].function.arguments' },
    { role: 'tool', text: '{"temp":21}', path: 'messages[4].content' },
  ]);
});

test('Azure: model comes from the deployment segment when the body has none', () => {
  const r = openaiAdapter.parseRequest(jsonBuf({ messages: [{ role: 'user', content: 'hi' }] }), req('/openai/deployments/gpt-4o%20prod/chat/completions'));
  assert.equal(r.model, 'gpt-4o prod');
  const r2 = openaiAdapter.parseRequest(jsonBuf({ model: 'x', messages: [] }), req('/openai/deployments/dep/chat/completions'));
  assert.equal(r2.model, 'x');
});

test('responses request: instructions, string input, item arrays, function calls and outputs, tools', () => {
  const r = openaiAdapter.parseRequest(
    jsonBuf({
      model: 'gpt-4.1',
      instructions: 'Talk like a pirate.',
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'Weather in Oslo?' }, { type: 'input_image', image_url: 'https://x/y.png' }] },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' },
        { type: 'function_call_output', call_id: 'call_1', output: '{"temp":-3}' },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Brr.' }] },
      ],
      tools: [{ type: 'function', name: 'get_weather', parameters: {} }, { type: 'web_search_preview' }],
    }),
    req('/v1/responses'),
  );
  assert.equal(r.operation, 'responses');
  assert.deepEqual(r.tools, ['get_weather', 'web_search_preview']);
  assert.deepEqual(r.segments, [
    { role: 'system', text: 'Talk like a pirate.', path: 'instructions' },
    { role: 'user', text: 'Weather in Oslo?', path: 'input[0].content[0].text' },
    { role: 'assistant', text: '{"city":"Oslo"}', path: 'input[1].arguments' },
    { role: 'tool', text: '{"temp":-3}', path: 'input[2].output' },
    { role: 'assistant', text: 'Brr.', path: 'input[3].content[0].text' },
  ]);
  const s = openaiAdapter.parseRequest(jsonBuf({ model: 'gpt-4.1', input: 'Tell me a joke' }), req('/v1/responses'));
  assert.deepEqual(s.segments, [{ role: 'user', text: 'Tell me a joke', path: 'input' }]);
});

test('embeddings and legacy completions requests', () => {
  const e = openaiAdapter.parseRequest(jsonBuf({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] }), req('/v1/embeddings'));
  assert.deepEqual(e.segments, [
    { role: 'user', text: 'alpha', path: 'input[0]' },
    { role: 'user', text: 'beta', path: 'input[1]' },
  ]);
  const e2 = openaiAdapter.parseRequest(jsonBuf({ model: 'm', input: 'single' }), req('/v1/embeddings'));
  assert.deepEqual(e2.segments, [{ role: 'user', text: 'single', path: 'input' }]);
  const tokens = openaiAdapter.parseRequest(jsonBuf({ model: 'm', input: [[1, 2, 3]] }), req('/v1/embeddings'));
  assert.deepEqual(tokens.segments, []);
  assert.equal(tokens.parsed, true);
  const c = openaiAdapter.parseRequest(jsonBuf({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say this is a test' }), req('/v1/completions'));
  assert.equal(c.operation, 'completions');
  assert.deepEqual(c.segments, [{ role: 'user', text: 'Say this is a test', path: 'prompt' }]);
});

test('garbage request bodies are parsed:false without throwing', () => {
  for (const body of ['not json', '[1,2]', '', '{"messages": "oops"}', '\u0000\u0001']) {
    const r = openaiAdapter.parseRequest(Buffer.from(body), req('/v1/chat/completions'));
    if (body === '{"messages": "oops"}') assert.equal(r.parsed, true);
    else assert.equal(r.parsed, false, body);
    assert.equal(r.operation, 'chat.completions');
  }
  const get = openaiAdapter.parseRequest(Buffer.alloc(0), req('/v1/models', { method: 'GET' }));
  assert.equal(get.parsed, true);
});

test('chat JSON response: content, tool calls, usage, finish reason', () => {
  const body = {
    id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
    object: 'chat.completion',
    created: 1741570283,
    model: 'gpt-4o-2024-08-06',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: `Sure: ${INTL}`,
          refusal: null,
          tool_calls: [{ id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', type: 'function', function: { name: 'get_weather', arguments: '{"location":"Paris, France"}' } }],
        },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ],
    usage: { prompt_tokens: 1117, completion_tokens: 46, total_tokens: 1163, prompt_tokens_details: { cached_tokens: 0 } },
    system_fingerprint: 'fp_fc9f1d7035',
  };
  const r = parseResponse(openaiAdapter, req('/v1/chat/completions'), jsonBuf(body), JSONCT);
  assert.deepEqual(r, {
    parsed: true,
    errors: [],
    text: [{ role: 'assistant', text: `Sure: ${INTL}`, path: 'choices[0].message.content' }],
    toolCalls: [{ id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', name: 'get_weather', arguments: '{"location":"Paris, France"}' }],
    usage: { inputTokens: 1117, outputTokens: 46, totalTokens: 1163 },
    finishReason: 'tool_calls',
    truncated: false,
  });
});

function chatChunk(delta: unknown, finish: string | null = null, extra: Record<string, unknown> = {}): unknown {
  return {
    id: 'chatcmpl-123',
    object: 'chat.completion.chunk',
    created: 1694268190,
    model: 'gpt-4o-mini',
    system_fingerprint: 'fp_44709d6fcb',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    ...extra,
  };
}

test('chat SSE stream: text deltas with multi-byte chars, usage chunk, [DONE], CRLF', () => {
  const words = ['Hel', 'lo ', '東京', ' ☀️', '👩‍💻', ' déjà vu'];
  const body = sse(
    [
      { data: chatChunk({ role: 'assistant', content: '' }) },
      ...words.map((w) => ({ data: chatChunk({ content: w }) })),
      { data: chatChunk({}, 'stop') },
      { data: { id: 'chatcmpl-123', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 } } },
      '[DONE]',
    ],
    '\r\n',
  );
  const r = parseResponse(openaiAdapter, req('/v1/chat/completions'), body, SSE);
  assert.deepEqual(r, {
    parsed: true,
    errors: [],
    text: [{ role: 'assistant', text: words.join(''), path: 'choices[0].message.content' }],
    toolCalls: [],
    usage: { inputTokens: 9, outputTokens: 12, totalTokens: 21 },
    finishReason: 'stop',
    truncated: false,
  });
});

test('chat SSE stream: parallel tool calls reassembled from interleaved fragments by index', () => {
  const tc = (index: number, fn: Record<string, string>, id?: string) => chatChunk({ tool_calls: [{ index, ...(id ? { id, type: 'function' } : {}), function: fn }] });
  const body = sse([
    { data: chatChunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } }] }) },
    { data: tc(0, { arguments: '{"loc' }) },
    { data: tc(1, { name: 'get_time', arguments: '' }, 'call_b') },
    { data: tc(0, { arguments: 'ation": "Zürich' }) },
    { data: tc(1, { arguments: '{"tz":"Asia/東京"}' }) },
    { data: tc(0, { arguments: '"}' }) },
    { data: chatChunk({}, 'tool_calls') },
    '[DONE]',
  ]);
  const r = parseResponse(openaiAdapter, req('/v1/chat/completions'), body, SSE);
  assert.deepEqual(r.toolCalls, [
    { id: 'call_a', name: 'get_weather', arguments: '{"location": "Zürich"}' },
    { id: 'call_b', name: 'get_time', arguments: '{"tz":"Asia/東京"}' },
  ]);
  assert.equal(r.finishReason, 'tool_calls');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.text, []);
});

test('chat SSE stream cut before [DONE] is flagged', () => {
  const body = sse([{ data: chatChunk({ role: 'assistant', content: 'partial' }) }]);
  const r = parseResponse(openaiAdapter, req('/v1/chat/completions'), body, SSE);
  assert.equal(r.text[0]!.text, 'partial');
  assert.deepEqual(r.errors, ['stream ended before [DONE]']);
});

test('chat SSE from reasoning models: reasoning_content kept apart from the answer', () => {
  const body = sse([
    { data: chatChunk({ role: 'assistant', content: null, reasoning_content: 'Let me think… ' }) },
    { data: chatChunk({ content: null, reasoning_content: '9.11 < 9.9' }) },
    { data: chatChunk({ content: '9.9 is larger.' }) },
    { data: chatChunk({}, 'stop') },
    '[DONE]',
  ]);
  const r = parseResponse(openaiAdapter, req('/v1/chat/completions'), body, SSE);
  assert.deepEqual(r.text, [
    { role: 'reasoning', text: 'Let me think… 9.11 < 9.9', path: 'choices[0].message.reasoning_content' },
    { role: 'assistant', text: '9.9 is larger.', path: 'choices[0].message.content' },
  ]);
});

test('chat SSE with a mid-stream error chunk (compatible providers)', () => {
  const body = sse([{ data: chatChunk({ content: 'Hi' }) }, { data: { error: { message: 'Rate limit reached', type: 'rate_limit_exceeded', code: 429 } } }, '[DONE]']);
  const r = parseResponse(openaiAdapter, req('/api/v1/chat/completions'), body, SSE);
  assert.deepEqual(r.providerError, { type: 'rate_limit_exceeded', message: 'Rate limit reached' });
});

test('chat stream respects maxTextChars and sets truncated', () => {
  const body = sse([{ data: chatChunk({ content: 'abcdef' }) }, { data: chatChunk({ content: 'ghij' }) }, { data: chatChunk({}, 'stop') }, '[DONE]']);
  const r = parseResponse(openaiAdapter, req('/v1/chat/completions'), body, SSE, { options: { maxTextChars: 8 } });
  assert.equal(r.truncated, true);
  assert.equal(r.text[0]!.text, 'abcdefgh');
});

test('legacy completions JSON and stream', () => {
  const json = {
    id: 'cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7',
    object: 'text_completion',
    created: 1589478378,
    model: 'gpt-3.5-turbo-instruct',
    choices: [{ text: '\n\nThis is indeed a test', index: 0, logprobs: null, finish_reason: 'length' }],
    usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
  };
  const r = parseResponse(openaiAdapter, req('/v1/completions'), jsonBuf(json), JSONCT);
  assert.deepEqual(r.text, [{ role: 'assistant', text: '\n\nThis is indeed a test', path: 'choices[0].text' }]);
  assert.equal(r.finishReason, 'length');
  const stream = sse([
    { data: { id: 'cmpl-1', object: 'text_completion', choices: [{ text: 'This', index: 0, finish_reason: null }] } },
    { data: { id: 'cmpl-1', object: 'text_completion', choices: [{ text: ' is ünïcode', index: 0, finish_reason: 'stop' }] } },
    '[DONE]',
  ]);
  const s = parseResponse(openaiAdapter, req('/v1/completions'), stream, SSE);
  assert.deepEqual(s.text, [{ role: 'assistant', text: 'This is ünïcode', path: 'choices[0].text' }]);
});

test('embeddings response: understood, usage only', () => {
  const body = {
    object: 'list',
    data: [{ object: 'embedding', embedding: [0.0023064255, -0.009327292, 0.015797347], index: 0 }],
    model: 'text-embedding-3-small',
    usage: { prompt_tokens: 8, total_tokens: 8 },
  };
  const r = parseResponse(openaiAdapter, req('/v1/embeddings'), jsonBuf(body), JSONCT);
  assert.equal(r.parsed, true);
  assert.deepEqual(r.text, []);
  assert.deepEqual(r.usage, { inputTokens: 8, totalTokens: 8 });
});

test('responses API JSON: message text, function call, usage, status', () => {
  const body = {
    id: 'resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b',
    object: 'response',
    created_at: 1741476542,
    status: 'completed',
    error: null,
    incomplete_details: null,
    model: 'gpt-4.1-2025-04-14',
    output: [
      { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'Thinking about Oslo.' }] },
      {
        type: 'message',
        id: 'msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: `In a peaceful grove… ${INTL}`, annotations: [] }],
      },
      { type: 'function_call', id: 'fc_12345xyz', call_id: 'call_12345xyz', name: 'get_weather', arguments: '{"location":"Paris, France"}', status: 'completed' },
    ],
    usage: { input_tokens: 36, input_tokens_details: { cached_tokens: 0 }, output_tokens: 87, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 123 },
  };
  const r = parseResponse(openaiAdapter, req('/v1/responses'), jsonBuf(body), JSONCT);
  assert.deepEqual(r, {
    parsed: true,
    errors: [],
    text: [
      { role: 'reasoning', text: 'Thinking about Oslo.', path: 'output[0].summary[0].text' },
      { role: 'assistant', text: `In a peaceful grove… ${INTL}`, path: 'output[1].content[0].text' },
    ],
    toolCalls: [{ id: 'call_12345xyz', name: 'get_weather', arguments: '{"location":"Paris, France"}' }],
    usage: { inputTokens: 36, outputTokens: 87, totalTokens: 123 },
    finishReason: 'completed',
    truncated: false,
  });
});

test('responses API SSE stream: text deltas, function call argument fragments, completed with usage', () => {
  let seq = 0;
  const ev = (type: string, rest: Record<string, unknown>) => ({ event: type, data: { type, sequence_number: seq++, ...rest } });
  const fnItem = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'get_weather', arguments: '', status: 'in_progress' };
  const body = sse(
    [
      ev('response.created', { response: { id: 'resp_1', object: 'response', status: 'in_progress', output: [] } }),
      ev('response.in_progress', { response: { id: 'resp_1', object: 'response', status: 'in_progress', output: [] } }),
      ev('response.output_item.added', { output_index: 0, item: { id: 'msg_1', type: 'message', status: 'in_progress', role: 'assistant', content: [] } }),
      ev('response.content_part.added', { item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }),
      ev('response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Checking ' }),
      ev('response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Zürich ☔' }),
      ev('response.output_text.done', { item_id: 'msg_1', output_index: 0, content_index: 0, text: 'Checking Zürich ☔' }),
      ev('response.output_item.added', { output_index: 1, item: fnItem }),
      ev('response.function_call_arguments.delta', { item_id: 'fc_1', output_index: 1, delta: '{"loc' }),
      ev('response.function_call_arguments.delta', { item_id: 'fc_1', output_index: 1, delta: 'ation":"Zürich"}' }),
      ev('response.function_call_arguments.done', { item_id: 'fc_1', output_index: 1, arguments: '{"location":"Zürich"}' }),
      ev('response.output_item.done', { output_index: 1, item: { ...fnItem, arguments: '{"location":"Zürich"}', status: 'completed' } }),
      ev('response.completed', {
        response: { id: 'resp_1', object: 'response', status: 'completed', usage: { input_tokens: 37, output_tokens: 11, total_tokens: 48 } },
      }),
    ],
    '\r\n',
  );
  const r = parseResponse(openaiAdapter, req('/v1/responses'), body, SSE);
  assert.deepEqual(r, {
    parsed: true,
    errors: [],
    text: [{ role: 'assistant', text: 'Checking Zürich ☔', path: 'output[0].content[0].text' }],
    toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"location":"Zürich"}' }],
    usage: { inputTokens: 37, outputTokens: 11, totalTokens: 48 },
    finishReason: 'completed',
    truncated: false,
  });
});

test('responses API stream: error event and cut streams', () => {
  const err = sse([{ event: 'error', data: { type: 'error', code: 'server_error', message: 'The server had an error', param: null, sequence_number: 3 } }]);
  const r = parseResponse(openaiAdapter, req('/v1/responses'), err, SSE);
  assert.deepEqual(r.providerError, { type: 'server_error', message: 'The server had an error' });
  assert.deepEqual(r.errors, []);
  const cut = sse([{ event: 'response.output_text.delta', data: { type: 'response.output_text.delta', output_index: 0, content_index: 0, delta: 'half' } }]);
  const c = parseResponse(openaiAdapter, req('/v1/responses'), cut, SSE);
  assert.deepEqual(c.errors, ['stream ended before response.completed']);
  const failed = sse([
    { event: 'response.failed', data: { type: 'response.failed', response: { status: 'failed', error: { code: 'rate_limit_exceeded', message: 'slow down' } } } },
  ]);
  const f = parseResponse(openaiAdapter, req('/v1/responses'), failed, SSE);
  assert.deepEqual(f.providerError, { type: 'rate_limit_exceeded', message: 'slow down' });
  assert.equal(f.finishReason, 'failed');
});

test('provider error body (401) and garbage bodies', () => {
  const e = parseResponse(
    openaiAdapter,
    req('/v1/chat/completions'),
    jsonBuf({ error: { message: 'Incorrect API key provided: sk-abc***.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }),
    JSONCT,
    { status: 401 },
  );
  assert.deepEqual(e.providerError, { type: 'invalid_request_error', message: 'Incorrect API key provided: sk-abc***.' });
  assert.equal(e.parsed, true);
  // Azure content filter errors have a code but no type.
  const az = parseResponse(openaiAdapter, req('/openai/deployments/d/chat/completions'), jsonBuf({ error: { code: 'content_filter', message: 'filtered', status: 400 } }), JSONCT, { status: 400 });
  assert.deepEqual(az.providerError, { type: 'content_filter', message: 'filtered' });
  const g = parseResponse(openaiAdapter, req('/v1/chat/completions'), '<html><body>502 Bad Gateway</body></html>', 'text/html', { status: 502 });
  assert.equal(g.parsed, false);
  assert.equal(g.providerError?.type, 'http_502');
  assert.match(g.errors[0]!, /invalid JSON/);
  const junk = parseResponse(openaiAdapter, req('/v1/chat/completions'), Buffer.from([0x80, 0x81, 0xfe, 0x00, 0x7b]), '');
  assert.equal(junk.parsed, false);
  const badSse = parseResponse(openaiAdapter, req('/v1/chat/completions'), 'data: {not json\n\ndata: [DONE]\n\n', SSE);
  assert.equal(badSse.parsed, false);
  assert.match(badSse.errors[0]!, /invalid JSON/);
});

test('errorBody matches the OpenAI error shape', () => {
  const e = openaiAdapter.errorBody(403, 'policy_blocked', 'Blocked by policy');
  assert.equal(e.contentType, 'application/json');
  assert.deepEqual(JSON.parse(e.body), { error: { message: 'Blocked by policy', type: 'sluice_error', param: null, code: 'policy_blocked' } });
});
