// Tests for the Gemini adapter: paths, requests, JSON / SSE / streamed-JSON-array responses,
// function calls, errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { geminiAdapter, geminiPath } from '../../src/providers/gemini.js';
import { INTL, jsonBuf, parseResponse, req, sse } from './helpers.js';

const STREAM_PATH = '/v1beta/models/gemini-2.0-flash:streamGenerateContent';

test('model and operation come from the path', () => {
  assert.deepEqual(geminiPath('/v1beta/models/gemini-2.0-flash:generateContent'), { model: 'gemini-2.0-flash', operation: 'generateContent' });
  assert.deepEqual(geminiPath(STREAM_PATH), { model: 'gemini-2.0-flash', operation: 'streamGenerateContent' });
  assert.deepEqual(geminiPath('/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent'), {
    model: 'gemini-2.5-pro',
    operation: 'streamGenerateContent',
  });
  assert.deepEqual(geminiPath('/v1beta/models/text-embedding-004:embedContent'), { model: 'text-embedding-004', operation: 'unknown' });
  assert.deepEqual(geminiPath('/v1beta/models'), { operation: 'unknown' });
});

test('request: contents, parts, systemInstruction, function calls/responses, tools', () => {
  const body = {
    systemInstruction: { parts: [{ text: 'You are a cat. Your name is Neko.' }] },
    contents: [
      { role: 'user', parts: [{ text: `Hello there ${INTL}` }, { inlineData: { mimeType: 'image/jpeg', data: '/9j/4AAQ' } }] },
      { role: 'model', parts: [{ functionCall: { name: 'find_theaters', args: { location: 'Mountain View, CA', movie: 'Barbie' } } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'find_theaters', response: { name: 'find_theaters', content: { movie: 'Barbie' } } } }] },
    ],
    tools: [{ functionDeclarations: [{ name: 'find_movies' }, { name: 'find_theaters' }] }, { googleSearch: {} }],
    generationConfig: { temperature: 0.2 },
  };
  const r = geminiAdapter.parseRequest(jsonBuf(body), req(STREAM_PATH, { query: 'alt=sse' }));
  assert.equal(r.parsed, true);
  assert.equal(r.model, 'gemini-2.0-flash');
  assert.equal(r.operation, 'streamGenerateContent');
  assert.equal(r.stream, true);
  assert.deepEqual(r.tools, ['find_movies', 'find_theaters']);
  assert.deepEqual(r.segments, [
    { role: 'system', text: 'You are a cat. Your name is Neko.', path: 'systemInstruction.parts[0].text' },
    { role: 'user', text: `Hello there ${INTL}`, path: 'contents[0].parts[0].text' },
    { role: 'model', text: '{"location":"Mountain View, CA","movie":"Barbie"}', path: 'contents[1].parts[0].functionCall.args' },
    { role: 'tool', text: '{"name":"find_theaters","content":{"movie":"Barbie"}}', path: 'contents[2].parts[0].functionResponse.response' },
  ]);
  const snake = geminiAdapter.parseRequest(jsonBuf({ system_instruction: { parts: [{ text: 'sys' }] }, contents: [{ parts: [{ text: 'hi' }] }] }), req('/v1beta/models/m:generateContent'));
  assert.deepEqual(snake.segments, [
    { role: 'system', text: 'sys', path: 'system_instruction.parts[0].text' },
    { role: 'user', text: 'hi', path: 'contents[0].parts[0].text' },
  ]);
  assert.equal(snake.stream, false);
});

test('JSON response: text, function call, finishReason, usage', () => {
  const body = {
    candidates: [
      {
        content: {
          parts: [{ text: `Meow ${INTL}` }, { functionCall: { name: 'find_theaters', args: { location: 'Mountain View, CA', movie: 'Barbie' } } }],
          role: 'model',
        },
        finishReason: 'STOP',
        index: 0,
        safetyRatings: [{ category: 'HARM_CATEGORY_HARASSMENT', probability: 'NEGLIGIBLE' }],
      },
    ],
    usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 12, totalTokenCount: 21 },
    modelVersion: 'gemini-2.0-flash',
  };
  const r = parseResponse(geminiAdapter, req('/v1beta/models/gemini-2.0-flash:generateContent'), jsonBuf(body), 'application/json; charset=UTF-8');
  assert.deepEqual(r, {
    parsed: true,
    errors: [],
    text: [{ role: 'model', text: `Meow ${INTL}`, path: 'candidates[0].content.parts[0].text' }],
    toolCalls: [{ name: 'find_theaters', arguments: '{"location":"Mountain View, CA","movie":"Barbie"}' }],
    usage: { inputTokens: 9, outputTokens: 12, totalTokens: 21 },
    finishReason: 'STOP',
    truncated: false,
  });
});

const CHUNKS = [
  { candidates: [{ content: { parts: [{ text: 'The quick brown ' }], role: 'model' }, index: 0 }], usageMetadata: { promptTokenCount: 8, totalTokenCount: 8 }, modelVersion: 'gemini-2.0-flash' },
  { candidates: [{ content: { parts: [{ text: 'fox 🦊 jumps über den [Zaun] {"not": "json"} ' }], role: 'model' }, index: 0 }], modelVersion: 'gemini-2.0-flash' },
  { candidates: [{ content: { parts: [{ functionCall: { name: 'get_weather', args: { city: '東京', days: 3 } } }], role: 'model' }, index: 0 }] },
  { candidates: [{ content: { parts: [{ functionCall: { name: 'get_time', args: {} } }], role: 'model' }, index: 0 }] },
  {
    candidates: [{ content: { parts: [{ text: '\\ done.' }], role: 'model' }, finishReason: 'STOP', index: 0 }],
    usageMetadata: { promptTokenCount: 8, candidatesTokenCount: 20, totalTokenCount: 28 },
  },
];

const EXPECTED_STREAM = {
  parsed: true,
  errors: [],
  text: [{ role: 'model', text: 'The quick brown fox 🦊 jumps über den [Zaun] {"not": "json"} \\ done.', path: 'candidates[0].content.parts[0].text' }],
  toolCalls: [
    { name: 'get_weather', arguments: '{"city":"東京","days":3}' },
    { name: 'get_time', arguments: '{}' },
  ],
  usage: { inputTokens: 8, outputTokens: 20, totalTokens: 28 },
  finishReason: 'STOP',
  truncated: false,
};

test('SSE stream (?alt=sse): text merged across chunks, function calls, usage (CRLF)', () => {
  const body = sse(
    CHUNKS.map((c) => ({ data: c })),
    '\r\n',
  );
  const r = parseResponse(geminiAdapter, req(STREAM_PATH, { query: 'alt=sse' }), body, 'text/event-stream');
  assert.deepEqual(r, EXPECTED_STREAM);
});

test('streamed JSON array (no alt=sse) is split into elements incrementally', () => {
  // Gemini's REST stream: a pretty-printed array with CRLF between elements.
  const body = `[${CHUNKS.map((c) => JSON.stringify(c, null, 2)).join(',\r\n')}]`;
  const r = parseResponse(geminiAdapter, req(STREAM_PATH), body, 'application/json; charset=UTF-8');
  assert.deepEqual(r, EXPECTED_STREAM);
});

test('streamed JSON array cut mid-element keeps what completed and reports the rest', () => {
  const full = `[${CHUNKS.map((c) => JSON.stringify(c)).join(',')}]`;
  const cut = full.slice(0, full.indexOf('get_time') + 3);
  const r = parseResponse(geminiAdapter, req(STREAM_PATH), cut, 'application/json');
  assert.equal(r.parsed, true);
  assert.equal(r.toolCalls.length, 1);
  assert.ok(r.errors.includes('JSON stream ended inside a value'), r.errors.join());
  assert.ok(r.errors.includes('stream ended without finishReason'), r.errors.join());
});

test('streamed array elements are parsed as they arrive, not at the end', () => {
  const p = geminiAdapter.responseParser(req(STREAM_PATH), { parsed: true, operation: 'streamGenerateContent', stream: true, segments: [], tools: [] }, { status: 200, contentType: 'application/json' });
  p.push(Buffer.from(`[${JSON.stringify(CHUNKS[0])}`));
  // Nothing after the first element is buffered: memory stays at the unfinished element.
  const splitter = (p as unknown as { seq: { pieceBytes: number } }).seq;
  assert.equal(splitter.pieceBytes, 0);
  p.push(Buffer.from(`,${JSON.stringify(CHUNKS[1]).slice(0, 10)}`));
  assert.equal(splitter.pieceBytes, 10);
});

test('error bodies: plain object and inside a streamed array; prompt blocked', () => {
  const err = { error: { code: 400, message: 'API key not valid. Please pass a valid API key.', status: 'INVALID_ARGUMENT', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }] } };
  const r = parseResponse(geminiAdapter, req('/v1beta/models/gemini-2.0-flash:generateContent'), jsonBuf(err), 'application/json', { status: 400 });
  assert.deepEqual(r.providerError, { type: 'INVALID_ARGUMENT', message: 'API key not valid. Please pass a valid API key.' });
  const s = parseResponse(geminiAdapter, req(STREAM_PATH), `[${JSON.stringify(err)}]`, 'application/json', { status: 400 });
  assert.deepEqual(s.providerError, { type: 'INVALID_ARGUMENT', message: 'API key not valid. Please pass a valid API key.' });
  assert.deepEqual(s.errors, []);
  const blocked = parseResponse(
    geminiAdapter,
    req('/v1beta/models/gemini-2.0-flash:generateContent'),
    jsonBuf({ promptFeedback: { blockReason: 'SAFETY', safetyRatings: [] }, usageMetadata: { promptTokenCount: 5, totalTokenCount: 5 } }),
    'application/json',
  );
  assert.equal(blocked.finishReason, 'SAFETY');
});

test('garbage bodies are parsed:false', () => {
  const r = parseResponse(geminiAdapter, req(STREAM_PATH), 'Internal Server Error', 'text/plain', { status: 500 });
  assert.equal(r.parsed, false);
  const r2 = parseResponse(geminiAdapter, req(STREAM_PATH), '[{"candidates": nope}]', 'application/json');
  assert.equal(r2.parsed, false);
  assert.match(r2.errors[0]!, /invalid JSON/);
});

test('errorBody follows google.rpc.Status', () => {
  const e = geminiAdapter.errorBody(403, 'policy_blocked', 'Blocked by Sluice policy');
  assert.deepEqual(JSON.parse(e.body), {
    error: {
      code: 403,
      message: 'Blocked by Sluice policy',
      status: 'PERMISSION_DENIED',
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'policy_blocked', domain: 'sluice' }],
    },
  });
  assert.equal(JSON.parse(geminiAdapter.errorBody(429, 'x', 'y').body).error.status, 'RESOURCE_EXHAUSTED');
});
