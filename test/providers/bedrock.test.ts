// Tests for the Bedrock adapter: Converse and InvokeModel requests, Converse JSON, ConverseStream
// and InvokeModelWithResponseStream event streams (Anthropic inside), exceptions.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bedrockAdapter, bedrockPath } from '../../src/providers/bedrock.js';
import { encodeEventStreamMessage } from '../../src/providers/eventstream.js';
import { ANTHROPIC_TOOL_STREAM, ANTHROPIC_TOOL_STREAM_PARSED, esEvent, esException, INTL, jsonBuf, parseResponse, req } from './helpers.js';

const ES = 'application/vnd.amazon.eventstream';
const CLAUDE = 'anthropic.claude-3-5-sonnet-20240620-v1:0';

test('paths: model id URL-decoded, four operations', () => {
  assert.deepEqual(bedrockPath(`/model/${encodeURIComponent(CLAUDE)}/converse`), { model: CLAUDE, operation: 'converse' });
  assert.deepEqual(bedrockPath('/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream'), { model: 'us.anthropic.claude-sonnet-4-20250514-v1:0', operation: 'converseStream' });
  const arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0';
  assert.deepEqual(bedrockPath(`/model/${encodeURIComponent(arn)}/invoke`), { model: arn, operation: 'invoke' });
  assert.deepEqual(bedrockPath('/model/amazon.titan-text-express-v1/invoke-with-response-stream'), { model: 'amazon.titan-text-express-v1', operation: 'invokeStream' });
  assert.deepEqual(bedrockPath('/foundation-models'), { operation: 'unknown' });
});

test('Converse request: messages, toolUse, toolResult, system, toolConfig', () => {
  const body = {
    system: [{ text: 'You are an app that creates playlists.' }],
    messages: [
      { role: 'user', content: [{ text: `Top song on WZPZ? ${INTL}` }, { image: { format: 'png', source: { bytes: 'iVBOR' } } }] },
      { role: 'assistant', content: [{ toolUse: { toolUseId: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', name: 'top_song', input: { sign: 'WZPZ' } } }] },
      {
        role: 'user',
        content: [{ toolResult: { toolUseId: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', content: [{ json: { song: 'Elemental Hotel', artist: '8 Storey Hike' } }, { text: 'ok' }] } }],
      },
    ],
    toolConfig: { tools: [{ toolSpec: { name: 'top_song', description: 'Get the most popular song', inputSchema: { json: {} } } }] },
    inferenceConfig: { maxTokens: 512 },
  };
  const r = bedrockAdapter.parseRequest(jsonBuf(body), req(`/model/${encodeURIComponent(CLAUDE)}/converse-stream`));
  assert.equal(r.parsed, true);
  assert.equal(r.model, CLAUDE);
  assert.equal(r.operation, 'converseStream');
  assert.equal(r.stream, true);
  assert.deepEqual(r.tools, ['top_song']);
  assert.deepEqual(r.segments, [
    { role: 'system', text: 'You are an app that creates playlists.', path: 'system[0].text' },
    { role: 'user', text: `Top song on WZPZ? ${INTL}`, path: 'messages[0].content[0].text' },
    { role: 'assistant', text: '{"sign":"WZPZ"}', path: 'messages[1].content[0].toolUse.input' },
    { role: 'tool', text: '{"song":"Elemental Hotel","artist":"8 Storey Hike"}', path: 'messages[2].content[0].toolResult.content[0].json' },
    { role: 'tool', text: 'ok', path: 'messages[2].content[0].toolResult.content[1].text' },
  ]);
});

test('InvokeModel request: Anthropic payload by anthropic_version or model id; others fall back to generic', () => {
  const anth = { anthropic_version: 'bedrock-2023-05-31', max_tokens: 200, system: 'Be nice.', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }], tools: [{ name: 't1' }] };
  const r = bedrockAdapter.parseRequest(jsonBuf(anth), req('/model/some-custom-model/invoke'));
  assert.equal(r.operation, 'invoke');
  assert.equal(r.model, 'some-custom-model');
  assert.deepEqual(r.tools, ['t1']);
  assert.deepEqual(r.segments, [
    { role: 'system', text: 'Be nice.', path: 'system' },
    { role: 'user', text: 'Hi', path: 'messages[0].content[0].text' },
  ]);
  const byId = bedrockAdapter.parseRequest(jsonBuf({ messages: [{ role: 'user', content: 'Yo' }] }), req('/model/eu.anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream'));
  assert.deepEqual(byId.segments, [{ role: 'user', text: 'Yo', path: 'messages[0].content' }]);
  assert.equal(byId.stream, true);
  const titan = bedrockAdapter.parseRequest(jsonBuf({ inputText: 'Summarize: café', textGenerationConfig: { maxTokenCount: 100, stopSequences: ['User:'] } }), req('/model/amazon.titan-text-express-v1/invoke'));
  assert.deepEqual(titan.segments, [
    { role: 'unknown', text: 'Summarize: café', path: 'inputText' },
    { role: 'unknown', text: 'User:', path: 'textGenerationConfig.stopSequences[0]' },
  ]);
  const nova = bedrockAdapter.parseRequest(
    jsonBuf({ schemaVersion: 'messages-v1', system: [{ text: 'sys' }], messages: [{ role: 'user', content: [{ text: 'hello nova' }] }], inferenceConfig: { maxTokens: 10 } }),
    req('/model/amazon.nova-lite-v1%3A0/invoke'),
  );
  assert.deepEqual(nova.segments, [
    { role: 'system', text: 'sys', path: 'system[0].text' },
    { role: 'user', text: 'hello nova', path: 'messages[0].content[0].text' },
  ]);
});

test('Converse JSON response: text, toolUse, stopReason, usage', () => {
  const body = {
    output: {
      message: {
        role: 'assistant',
        content: [{ text: `Let me look that up. ${INTL}` }, { toolUse: { toolUseId: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', name: 'top_song', input: { sign: 'WZPZ' } } }],
      },
    },
    stopReason: 'tool_use',
    usage: { inputTokens: 375, outputTokens: 36, totalTokens: 411 },
    metrics: { latencyMs: 2325 },
  };
  const r = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse`), jsonBuf(body), 'application/json');
  assert.deepEqual(r, {
    parsed: true,
    errors: [],
    text: [{ role: 'assistant', text: `Let me look that up. ${INTL}`, path: 'output.message.content[0].text' }],
    toolCalls: [{ id: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', name: 'top_song', arguments: '{"sign":"WZPZ"}' }],
    usage: { inputTokens: 375, outputTokens: 36, totalTokens: 411 },
    finishReason: 'tool_use',
    truncated: false,
  });
});

/** A ConverseStream body as Bedrock frames it (`p` is Bedrock's padding field). */
function converseStream(): Buffer {
  return Buffer.concat([
    esEvent('messageStart', { p: 'abcdefghijk', role: 'assistant' }),
    esEvent('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Sure, ' }, p: 'abcd' }),
    esEvent('contentBlockDelta', { contentBlockIndex: 0, delta: { text: `checking ${INTL}` }, p: 'ab' }),
    esEvent('contentBlockStop', { contentBlockIndex: 0, p: 'abcdefgh' }),
    esEvent('contentBlockStart', { contentBlockIndex: 1, start: { toolUse: { toolUseId: 'tooluse_1', name: 'top_song' } }, p: 'abc' }),
    esEvent('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"si' } }, p: 'a' }),
    esEvent('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: 'gn": "WZ' } }, p: 'a' }),
    esEvent('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: 'PZ"}' } }, p: 'a' }),
    esEvent('contentBlockStop', { contentBlockIndex: 1, p: 'abcdefgh' }),
    esEvent('messageStop', { stopReason: 'tool_use', p: 'abcdefgh' }),
    esEvent('metadata', { usage: { inputTokens: 375, outputTokens: 36, totalTokens: 411 }, metrics: { latencyMs: 1212 }, p: 'abc' }),
  ]);
}

test('ConverseStream: text and toolUse input reassembled across frames and arbitrary splits', () => {
  const r = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse-stream`), converseStream(), ES);
  assert.deepEqual(r, {
    parsed: true,
    errors: [],
    text: [{ role: 'assistant', text: `Sure, checking ${INTL}`, path: 'output.message.content[0].text' }],
    toolCalls: [{ id: 'tooluse_1', name: 'top_song', arguments: '{"sign": "WZPZ"}' }],
    usage: { inputTokens: 375, outputTokens: 36, totalTokens: 411 },
    finishReason: 'tool_use',
    truncated: false,
  });
});

test('ConverseStream without content-type is sniffed as an event stream', () => {
  const r = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse-stream`), converseStream(), '');
  assert.equal(r.finishReason, 'tool_use');
  assert.deepEqual(r.errors, []);
});

test('ConverseStream exception frame becomes the provider error', () => {
  const body = Buffer.concat([
    esEvent('messageStart', { role: 'assistant' }),
    esEvent('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hi' } }),
    esException('throttlingException', 'Too many requests, please wait before trying again.'),
  ]);
  const r = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse-stream`), body, ES);
  assert.deepEqual(r.providerError, { type: 'throttlingException', message: 'Too many requests, please wait before trying again.' });
  assert.deepEqual(r.errors, []);
  assert.equal(r.text[0]!.text, 'Hi');
});

test('ConverseStream corruption and truncation are reported; bytes before them still count', () => {
  const good = converseStream();
  const corrupt = Buffer.from(good);
  corrupt[good.length - 20] ^= 0x01; // inside the last frame's payload
  const r = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse-stream`), corrupt, ES);
  assert.equal(r.finishReason, 'tool_use');
  assert.ok(r.errors.some((e) => /message CRC mismatch at message 10/.test(e)), r.errors.join());
  assert.equal(r.usage, undefined);

  const cut = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse-stream`), good.subarray(0, good.length - 30), ES);
  assert.ok(cut.errors.some((e) => /truncated frame/.test(e)), cut.errors.join());

  const early = esEvent('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'x' } });
  const noStop = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse-stream`), early, ES);
  assert.deepEqual(noStop.errors, ['stream ended before messageStop']);
});

/** InvokeModelWithResponseStream wraps each native event as base64 in a `chunk` frame. */
function invokeChunk(event: unknown): Buffer {
  return esEvent('chunk', { bytes: Buffer.from(JSON.stringify(event), 'utf8').toString('base64'), p: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123' });
}

test('InvokeModelWithResponseStream (Anthropic): chunks decoded and fed to the Messages stream logic', () => {
  const events = ANTHROPIC_TOOL_STREAM.map((e) =>
    e.type === 'message_stop' ? { ...e, 'amazon-bedrock-invocationMetrics': { inputTokenCount: 472, outputTokenCount: 89, invocationLatency: 2000, firstByteLatency: 300 } } : e,
  );
  const body = Buffer.concat(events.map(invokeChunk));
  const r = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/invoke-with-response-stream`), body, ES);
  assert.deepEqual(r, ANTHROPIC_TOOL_STREAM_PARSED);
  const cut = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/invoke-with-response-stream`), Buffer.concat(events.slice(0, 6).map(invokeChunk)), ES);
  assert.deepEqual(cut.errors, ['stream ended before message_stop']);
});

test('InvokeModelWithResponseStream (Titan): generic reassembly and Bedrock invocation metrics', () => {
  const body = Buffer.concat([
    invokeChunk({ outputText: 'Hola, ', index: 0, totalOutputTextTokenCount: null, completionReason: null, inputTextTokenCount: 5 }),
    invokeChunk({ outputText: '¿qué tal? ', index: 0, totalOutputTextTokenCount: null, completionReason: null }),
    invokeChunk({
      outputText: '',
      index: 0,
      totalOutputTextTokenCount: 9,
      completionReason: 'FINISH',
      'amazon-bedrock-invocationMetrics': { inputTokenCount: 5, outputTokenCount: 9, invocationLatency: 700, firstByteLatency: 200 },
    }),
  ]);
  const r = parseResponse(bedrockAdapter, req('/model/amazon.titan-text-express-v1/invoke-with-response-stream'), body, ES);
  // Generic collection keeps every string, so the completion reason shows up as text too.
  assert.deepEqual(r.text, [
    { role: 'unknown', text: 'Hola, ¿qué tal? ', path: 'outputText' },
    { role: 'unknown', text: 'FINISH', path: 'completionReason' },
  ]);
  assert.equal(r.finishReason, 'FINISH');
  assert.deepEqual(r.usage, { inputTokens: 5, outputTokens: 9, totalTokens: 14 });
  assert.deepEqual(r.errors, []);
});

test('InvokeModel JSON (Anthropic payload) and Nova payload', () => {
  const anth = {
    id: 'msg_bdrk_01',
    type: 'message',
    role: 'assistant',
    model: 'claude-3-5-sonnet-20240620',
    content: [{ type: 'text', text: 'Bonjour !' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 12, output_tokens: 6 },
  };
  const r = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/invoke`), jsonBuf(anth), 'application/json');
  assert.deepEqual(r.text, [{ role: 'assistant', text: 'Bonjour !', path: 'content[0].text' }]);
  assert.equal(r.finishReason, 'end_turn');
  const nova = { output: { message: { role: 'assistant', content: [{ text: 'Hi from Nova' }] } }, stopReason: 'end_turn', usage: { inputTokens: 4, outputTokens: 4, totalTokens: 8 } };
  const n = parseResponse(bedrockAdapter, req('/model/amazon.nova-lite-v1:0/invoke'), jsonBuf(nova), 'application/json');
  assert.deepEqual(n.text, [{ role: 'assistant', text: 'Hi from Nova', path: 'output.message.content[0].text' }]);
});

test('Bedrock error bodies', () => {
  const r = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse`), jsonBuf({ message: 'The security token included in the request is invalid.' }), 'application/json', { status: 403 });
  assert.deepEqual(r.providerError, { type: 'http_403', message: 'The security token included in the request is invalid.' });
  const typed = parseResponse(
    bedrockAdapter,
    req(`/model/${CLAUDE}/converse`),
    jsonBuf({ __type: 'com.amazon.coral.validate#ValidationException', message: 'Malformed input request' }),
    'application/json',
    { status: 400 },
  );
  assert.deepEqual(typed.providerError, { type: 'ValidationException', message: 'Malformed input request' });
  // Generic event-stream error frames use headers rather than a payload.
  const frame = encodeEventStreamMessage({ ':message-type': 'error', ':error-code': 'InternalFailure', ':error-message': 'boom' }, Buffer.alloc(0));
  const e = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse-stream`), frame, ES);
  assert.deepEqual(e.providerError, { type: 'InternalFailure', message: 'boom' });
});

test('garbage bodies are parsed:false', () => {
  const r = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse`), 'Service Unavailable', 'text/plain', { status: 503 });
  assert.equal(r.parsed, false);
  const bin = parseResponse(bedrockAdapter, req(`/model/${CLAUDE}/converse-stream`), Buffer.from([0, 0, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), ES);
  assert.equal(bin.parsed, false);
  assert.match(bin.errors[0]!, /prelude CRC mismatch/);
  const req1 = bedrockAdapter.parseRequest(Buffer.from('nope'), req(`/model/${CLAUDE}/converse`));
  assert.equal(req1.parsed, false);
  assert.equal(req1.model, CLAUDE);
});

test('errorBody is Bedrock-style with an exception type', () => {
  const e = bedrockAdapter.errorBody(429, 'rate_limited', 'Too many requests');
  assert.deepEqual(JSON.parse(e.body), { __type: 'ThrottlingException', message: 'Too many requests', sluiceCode: 'rate_limited' });
  assert.equal(JSON.parse(bedrockAdapter.errorBody(403, 'policy_blocked', 'no').body).__type, 'AccessDeniedException');
});
