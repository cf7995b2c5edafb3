// End-to-end through the gateway with the official SDKs (and fetch where no SDK is a dev dependency).
import Anthropic from '@anthropic-ai/sdk';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import OpenAI, { AzureOpenAI } from 'openai';
import { MOCK_UNICODE, MOCK_USAGE, decodeEventStream, mockReplyText } from '../fixtures/mock-provider';
import { startHarness, type Harness } from '../fixtures/harness';
import type { Exchange } from '../../src/pipeline/exchange';

let h: Harness;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  h = await startHarness();
  openai = new OpenAI({ baseURL: `${h.sluice.gatewayUrl}/openai/v1`, apiKey: 'sk-test', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: `${h.sluice.gatewayUrl}/anthropic`, apiKey: 'sk-ant-test', maxRetries: 0 });
});
after(() => h.close());
beforeEach(() => h.skipPending());

const weather = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
};

function responseText(x: Exchange): string {
  return (x.response?.text ?? []).map((s) => s.text).join('');
}

function promptText(x: Exchange): string {
  return (x.request?.segments ?? []).map((s) => s.text).join('\n');
}

test('OpenAI chat completion, not streamed: reply, headers, exchange record', async () => {
  const prompt = `Summarise ticket 4411 for ${MOCK_UNICODE}`;
  const r = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: prompt },
    ],
  });
  assert.equal(r.choices[0]?.message.content, mockReplyText(prompt));
  const x = await h.nextExchange();
  assert.equal(x.frontDoor, 'gateway');
  assert.equal(x.destination.provider, 'openai');
  assert.equal(x.outcome, 'completed');
  assert.equal(x.status, 200);
  assert.equal(x.request?.parsed, true);
  assert.equal(x.request?.model, 'gpt-4o-mini');
  assert.equal(x.request?.stream, false);
  assert.ok(x.request?.segments.some((s) => s.role === 'user' && s.text === prompt && s.path.startsWith('messages[1]')));
  assert.equal(responseText(x), mockReplyText(prompt));
  assert.equal(x.response?.usage?.inputTokens, MOCK_USAGE.inputTokens);
  assert.equal(x.response?.usage?.outputTokens, MOCK_USAGE.outputTokens);
  assert.match(x.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const lat = x.latency();
  assert.ok(lat.totalMs > 0 && lat.ttfbMs > 0 && lat.ownMs > 0 && lat.ownMs < lat.totalMs);

  const seen = h.mock.requests.at(-1)!;
  assert.equal(seen.path, '/v1/chat/completions');
  assert.equal(seen.headers.host, 'api.openai.com');
  assert.equal(seen.headers.authorization, 'Bearer sk-test');
  assert.match(seen.headers['x-forwarded-for'] ?? '', /127\.0\.0\.1$/);
});

test('Sluice headers and hop-by-hop headers never reach the provider', async () => {
  // Raw HTTP/1.1: fetch refuses to send Connection and Keep-Alive, which is what is under test.
  const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
  const reply = await rawRequest(
    `POST /openai/v1/chat/completions HTTP/1.1\r\nHost: sluice\r\ncontent-type: application/json\r\n` +
      `x-sluice-identity: svc-billing\r\nx-forwarded-for: 10.9.8.7\r\nConnection: close, x-drop-me\r\n` +
      `x-drop-me: 1\r\nkeep-alive: timeout=5\r\nx-mock-behavior: echo-headers\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  assert.match(reply, /^HTTP\/1\.1 200/);
  assert.match(reply, /x-sluice-exchange-id: [0-9a-f-]{36}/i);
  const seen = h.mock.requests.at(-1)!.headers;
  assert.equal(seen['x-sluice-identity'], undefined);
  assert.equal(seen['x-drop-me'], undefined);
  assert.equal(seen['keep-alive'], undefined);
  assert.equal(seen.host, 'api.openai.com');
  assert.match(seen['x-forwarded-for'] ?? '', /^10\.9\.8\.7, (::ffff:)?127\.0\.0\.1$/);
  const x = await h.nextExchange();
  assert.deepEqual(x.sluiceHeaders, [['x-sluice-identity', 'svc-billing']]);
});

function rawRequest(text: string): Promise<string> {
  const { port } = new URL(h.sluice.gatewayUrl);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(Number(port), '127.0.0.1', () => s.write(text));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', reject);
  });
}

test('OpenAI chat streamed with a tool call: deltas arrive, tool call reassembled', async () => {
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'weather in Zürich?' }],
    tools: [weather],
    stream: true,
    stream_options: { include_usage: true },
  });
  let args = '';
  let name = '';
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    const tc = c.choices[0]?.delta.tool_calls?.[0];
    if (tc?.function?.name) name = tc.function.name;
    args += tc?.function?.arguments ?? '';
  }
  assert.ok(chunks > 2);
  assert.equal(name, 'get_weather');
  const x = await h.nextExchange();
  assert.equal(x.request?.stream, true);
  assert.deepEqual(x.request?.tools, ['get_weather']);
  assert.equal(x.response?.toolCalls[0]?.name, 'get_weather');
  assert.equal(x.response?.toolCalls[0]?.arguments, args);
  assert.deepEqual(x.response?.errors, []);
  assert.equal(x.response?.usage?.totalTokens, MOCK_USAGE.totalTokens);
});

test('OpenAI chat streamed text arrives intact across UTF-8 boundaries', async () => {
  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'say hello' }],
    stream: true,
  });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
  assert.equal(text, mockReplyText('say hello'));
  const x = await h.nextExchange();
  assert.equal(responseText(x), text);
  assert.equal(x.response?.finishReason, 'stop');
});

test('OpenAI Responses API, embeddings and legacy completions', async () => {
  const r = await openai.responses.create({ model: 'gpt-4.1', input: 'classify this' });
  assert.equal(r.output_text, mockReplyText('classify this'));
  let x = await h.nextExchange();
  assert.equal(x.request?.operation, 'responses');
  assert.equal(responseText(x), mockReplyText('classify this'));

  const s = await openai.responses.create({ model: 'gpt-4.1', input: 'stream it', stream: true });
  let streamed = '';
  for await (const e of s) if (e.type === 'response.output_text.delta') streamed += e.delta;
  assert.equal(streamed, mockReplyText('stream it'));
  x = await h.nextExchange();
  assert.equal(responseText(x), streamed);

  const e = await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
  assert.equal(e.data.length, 2);
  x = await h.nextExchange();
  assert.equal(x.request?.operation, 'embeddings');
  assert.deepEqual(x.request?.segments.map((s) => s.text), ['alpha', 'beta']);

  const c = await openai.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'once upon' });
  assert.ok(c.choices[0]?.text);
  x = await h.nextExchange();
  assert.equal(x.request?.operation, 'completions');
  assert.equal(promptText(x), 'once upon');
});

test('Azure OpenAI and an OpenAI-compatible long-tail provider', async () => {
  const azure = new AzureOpenAI({
    endpoint: `${h.sluice.gatewayUrl}/azure/contoso`,
    apiKey: 'az-key',
    apiVersion: '2024-10-21',
    deployment: 'gpt4o-prod',
    maxRetries: 0,
  });
  const r = await azure.chat.completions.create({ model: '', messages: [{ role: 'user', content: 'azure hi' }] });
  assert.equal(r.choices[0]?.message.content, mockReplyText('azure hi'));
  let x = await h.nextExchange();
  assert.equal(x.destination.provider, 'azure-openai');
  assert.equal(x.destination.host, 'contoso.openai.azure.com');
  const seen = h.mock.requests.at(-1)!;
  assert.equal(seen.path, '/openai/deployments/gpt4o-prod/chat/completions');
  assert.match(seen.url, /api-version=2024-10-21/);

  const groq = new OpenAI({ baseURL: `${h.sluice.gatewayUrl}/groq/openai/v1`, apiKey: 'gsk', maxRetries: 0 });
  const g = await groq.chat.completions.create({ model: 'llama-3.3-70b', messages: [{ role: 'user', content: 'groq hi' }] });
  assert.equal(g.choices[0]?.message.content, mockReplyText('groq hi'));
  x = await h.nextExchange();
  assert.equal(x.destination.provider, 'groq');
  assert.equal(x.destination.shadow, true);
  assert.equal(x.request?.model, 'llama-3.3-70b');
});

test('Anthropic messages, not streamed and streamed with tool use', async () => {
  const m = await anthropic.messages.create({
    model: 'claude-test-model',
    max_tokens: 256,
    system: 'Be brief.',
    messages: [{ role: 'user', content: 'hello claude' }],
  });
  assert.equal(m.content[0]?.type === 'text' && m.content[0].text, mockReplyText('hello claude'));
  let x = await h.nextExchange();
  assert.equal(x.destination.provider, 'anthropic');
  assert.equal(x.request?.model, 'claude-test-model');
  assert.ok(x.request?.segments.some((s) => s.role === 'system' && s.text === 'Be brief.'));
  assert.equal(responseText(x), mockReplyText('hello claude'));
  assert.equal(x.response?.usage?.outputTokens, MOCK_USAGE.outputTokens);

  const stream = anthropic.messages.stream({
    model: 'claude-test-model',
    max_tokens: 256,
    messages: [{ role: 'user', content: 'weather in Kraków' }],
    tools: [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
  });
  const final = await stream.finalMessage();
  const toolUse = final.content.find((b) => b.type === 'tool_use');
  assert.ok(toolUse && toolUse.type === 'tool_use');
  x = await h.nextExchange();
  assert.equal(x.request?.stream, true);
  assert.equal(x.response?.toolCalls[0]?.name, toolUse.name);
  assert.deepEqual(JSON.parse(x.response?.toolCalls[0]?.arguments ?? 'null'), toolUse.input);
  assert.equal(x.response?.finishReason, final.stop_reason);

  const plain = anthropic.messages.stream({ model: 'claude-test-small', max_tokens: 64, messages: [{ role: 'user', content: 'stream text' }] });
  assert.equal(await plain.finalText(), mockReplyText('stream text'));
  x = await h.nextExchange();
  assert.equal(responseText(x), mockReplyText('stream text'));
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${h.sluice.gatewayUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

test('Gemini generateContent and streamGenerateContent (SSE and JSON array)', async () => {
  const body = { contents: [{ role: 'user', parts: [{ text: 'gemini hi' }] }], systemInstruction: { parts: [{ text: 'sys' }] } };
  let res = await post('/gemini/v1beta/models/gemini-2.0-flash:generateContent', body, { 'x-goog-api-key': 'g' });
  assert.equal(res.status, 200);
  const j = (await res.json()) as { candidates: Array<{ content: { parts: Array<{ text: string }> } }> };
  assert.equal(j.candidates[0]?.content.parts[0]?.text, mockReplyText('gemini hi'));
  let x = await h.nextExchange();
  assert.equal(x.destination.provider, 'gemini');
  assert.equal(x.request?.model, 'gemini-2.0-flash');
  assert.equal(responseText(x), mockReplyText('gemini hi'));

  res = await post('/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse', body);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  await res.text();
  x = await h.nextExchange();
  assert.equal(x.request?.stream, true);
  assert.equal(responseText(x), mockReplyText('gemini hi'));

  res = await post('/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent', body);
  const arr = (await res.json()) as unknown[];
  assert.ok(arr.length > 1);
  x = await h.nextExchange();
  assert.equal(responseText(x), mockReplyText('gemini hi'));
});

test('Bedrock Converse, ConverseStream, InvokeModel and InvokeModelWithResponseStream', async () => {
  const conv = { messages: [{ role: 'user', content: [{ text: 'bedrock hi' }] }], system: [{ text: 'sys' }] };
  let res = await post('/bedrock/eu-central-1/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse', conv);
  assert.equal(res.status, 200);
  await res.json();
  let x = await h.nextExchange();
  assert.equal(x.destination.host, 'bedrock-runtime.eu-central-1.amazonaws.com');
  assert.equal(x.destination.jurisdiction, 'EU');
  assert.equal(x.request?.model, 'anthropic.claude-3-5-sonnet-20240620-v1:0');
  assert.equal(responseText(x), mockReplyText('bedrock hi'));

  res = await post('/bedrock/us-east-1/model/anthropic.claude-3-haiku/converse-stream', conv);
  assert.equal(res.headers.get('content-type'), 'application/vnd.amazon.eventstream');
  const frames = decodeEventStream(Buffer.from(await res.arrayBuffer()));
  assert.equal(frames.rest.length, 0, 'frames arrive whole and valid');
  x = await h.nextExchange();
  assert.equal(x.request?.operation, 'converseStream');
  assert.equal(responseText(x), mockReplyText('bedrock hi'));
  assert.deepEqual(x.response?.errors, []);

  const native = { anthropic_version: 'bedrock-2023-05-31', max_tokens: 100, messages: [{ role: 'user', content: 'invoke hi' }] };
  res = await post('/bedrock/us-east-1/model/anthropic.claude-3-haiku/invoke', native);
  await res.json();
  x = await h.nextExchange();
  assert.equal(x.request?.operation, 'invoke');
  assert.equal(responseText(x), mockReplyText('invoke hi'));

  res = await post('/bedrock/us-east-1/model/anthropic.claude-3-haiku/invoke-with-response-stream', native);
  await res.arrayBuffer();
  x = await h.nextExchange();
  assert.equal(x.request?.operation, 'invokeStream');
  assert.equal(responseText(x), mockReplyText('invoke hi'));
});

test('unknown prefix: 404 listing the known prefixes', async () => {
  const res = await fetch(`${h.sluice.gatewayUrl}/nowhere/v1/chat`);
  assert.equal(res.status, 404);
  const j = (await res.json()) as { error: { code: string; prefixes: string[] } };
  assert.equal(j.error.code, 'SLUICE_UNKNOWN_ROUTE');
  assert.ok(j.error.prefixes.includes('/openai/'));
  assert.ok(j.error.prefixes.includes('/bedrock/{region}/'));
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'rejected', 'a request Sluice cannot route is still recorded');
  assert.equal(x.error?.code, 'SLUICE_UNKNOWN_ROUTE');
  assert.equal(x.info.path, '/nowhere/v1/chat');
  assert.equal(x.info.method, 'GET');
});
