// Streaming, limits and failure behaviour of the relay, driven through the gateway on loopback.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import OpenAI from 'openai';
import { request } from 'undici';
import { mockReplyText } from '../fixtures/mock-provider';
import { startHarness, type Harness } from '../fixtures/harness';

let h: Harness;
const MAX = 64 * 1024;
const INSPECT = 1024 * 1024;

before(async () => {
  h = await startHarness(`limits: { max_request_bytes: ${MAX}, upstream_timeout_ms: 700, max_inspect_bytes: ${INSPECT} }\n`, (c) => {
    c.upstreams['api.mistral.ai'] = 'http://127.0.0.1:1'; // nothing listens on port 1
    c.upstreams['api.x.ai'] = 'http://no-such-host.invalid';
  });
});
after(() => h.close());
beforeEach(() => h.skipPending());

const chatBody = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });

/** The mock numbers its ids and stamps times; everything else must match byte for byte. */
function normalise(s: string): string {
  return s.replace(/mock\d+/g, 'mockN').replace(/"(created|created_at)":\d+/g, '"$1":0');
}

function gw(path: string): string {
  return `${h.sluice.gatewayUrl}${path}`;
}

test('a body over limits.max_request_bytes gets 413 and nothing is forwarded', async () => {
  const before = h.mock.requests.length;
  const res = await fetch(gw('/openai/v1/chat/completions'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: chatBody('x'.repeat(MAX)),
  });
  assert.equal(res.status, 413);
  assert.equal(res.headers.get('x-sluice-error'), 'SLUICE_BODY_TOO_LARGE');
  const j = (await res.json()) as { error: { message: string; code: string } };
  assert.match(j.error.message, /max_request_bytes/);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'rejected');
  assert.equal(x.error?.code, 'SLUICE_BODY_TOO_LARGE');

  // Chunked upload without a Content-Length is cut off once it passes the limit.
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(gw('/openai/v1/chat/completions'), { method: 'POST', headers: { 'content-type': 'application/json' } }, (r) => {
      r.resume();
      resolve(r.statusCode ?? 0);
    });
    req.on('error', reject);
    for (let i = 0; i < 20; i++) req.write('y'.repeat(8 * 1024));
    req.end();
  });
  assert.equal(status, 413);
  await h.nextExchange();
  assert.equal(h.mock.requests.length, before, 'the provider saw neither request');
});

test('upstream refused → 502 and DNS failure → 502, provider-shaped, naming the cause', async () => {
  const mistral = new OpenAI({ baseURL: gw('/mistral/v1'), apiKey: 'k', maxRetries: 0 });
  await assert.rejects(mistral.chat.completions.create({ model: 'mistral-large', messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.APIError);
    assert.equal(err.status, 502);
    assert.match(err.message, /api\.mistral\.ai.*ECONNREFUSED/);
    return true;
  });
  let x = await h.nextExchange();
  assert.equal(x.outcome, 'upstream_error');
  assert.equal(x.error?.code, 'SLUICE_UPSTREAM_UNREACHABLE');

  const res = await fetch(gw('/xai/v1/chat/completions'), { method: 'POST', body: chatBody('hi'), headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 502);
  assert.match(((await res.json()) as { error: { message: string } }).error.message, /ENOTFOUND|EAI_AGAIN/);
  x = await h.nextExchange();
  assert.equal(x.error?.code, 'SLUICE_UPSTREAM_UNREACHABLE');
});

test('an upstream that does not answer within upstream_timeout_ms → 504', async () => {
  const res = await fetch(gw('/openai/v1/chat/completions'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-behavior': 'hang' },
    body: chatBody('hello?'),
  });
  assert.equal(res.status, 504);
  const j = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(j.error.code, 'SLUICE_UPSTREAM_TIMEOUT');
  const x = await h.nextExchange();
  assert.equal(x.error?.code, 'SLUICE_UPSTREAM_TIMEOUT');
});

test('a non-JSON request body is still proxied and marked unparsed', async () => {
  const res = await fetch(gw('/openai/v1/chat/completions'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
  await res.arrayBuffer();
  const x = await h.nextExchange();
  assert.equal(x.request?.parsed, false);
  assert.ok(x.request?.error);
  assert.equal(h.mock.requests.at(-1)?.body.toString(), '{not json');
});

test('a garbage response body reaches the client and is marked unparsed', async () => {
  const res = await fetch(gw('/openai/v1/chat/completions'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-behavior': 'garbage' },
    body: chatBody('hi'),
  });
  const direct = await fetch(`${h.mock.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-behavior': 'garbage' },
    body: chatBody('hi'),
  });
  assert.equal(normalise(await res.text()), normalise(await direct.text()));
  const x = await h.nextExchange();
  assert.equal(x.response?.parsed, false);
  assert.ok(x.response?.errors.length);
});

test('a broken SSE stream is delivered byte for byte and the parse error recorded', async () => {
  const init = {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-behavior': 'broken-sse' },
    body: chatBody('broken', { stream: true }),
  };
  const viaSluice = await (await fetch(gw('/openai/v1/chat/completions'), init)).text();
  const direct = await (await fetch(`${h.mock.url}/v1/chat/completions`, init)).text();
  assert.equal(normalise(viaSluice), normalise(direct));
  const x = await h.nextExchange();
  assert.ok(x.response && x.response.errors.length > 0, 'parse error recorded');
  assert.equal(x.outcome, 'completed');
});

test('a corrupt event-stream frame is delivered and the CRC error recorded', async () => {
  const init = {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-behavior': 'broken-eventstream' },
    body: JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'crc' }] }] }),
  };
  const viaSluice = Buffer.from(await (await fetch(gw('/bedrock/us-east-1/model/m/converse-stream'), init)).arrayBuffer());
  const direct = Buffer.from(await (await fetch(`${h.mock.url}/model/m/converse-stream`, init)).arrayBuffer());
  assert.deepEqual(viaSluice, direct);
  const x = await h.nextExchange();
  assert.ok(x.response?.errors.some((e) => /crc/i.test(e)), `errors: ${x.response?.errors.join('; ')}`);
});

test('gzip and br responses pass untouched; the adapter reads a decoded copy', async () => {
  for (const enc of ['gzip', 'br']) {
    const { statusCode, headers, body } = await request(gw('/openai/v1/chat/completions'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-mock-behavior': enc, 'accept-encoding': enc },
      body: chatBody(`compressed ${enc}`),
    });
    assert.equal(statusCode, 200);
    assert.equal(headers['content-encoding'], enc);
    const raw = Buffer.from(await body.arrayBuffer());
    if (enc === 'gzip') assert.match(gunzipSync(raw).toString(), /compressed gzip/);
    const x = await h.nextExchange();
    assert.equal(x.response?.parsed, true, `${enc}: ${x.response?.errors.join('; ')}`);
    assert.equal(x.response?.text.map((s) => s.text).join(''), mockReplyText(`compressed ${enc}`));
  }
});

test('client abort mid-stream cancels the upstream request', async () => {
  const ac = new AbortController();
  const res = await fetch(gw('/openai/v1/chat/completions'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-behavior': 'slow', 'x-mock-chunks': '100' },
    body: chatBody('abort me', { stream: true }),
    signal: ac.signal,
  });
  const reader = res.body!.getReader();
  await reader.read();
  ac.abort();
  await h.mock.waitForAborted(1, 3000);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'client_aborted');
});

test('upstream abort mid-stream ends the client response instead of hanging', async () => {
  const res = await fetch(gw('/openai/v1/chat/completions'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-behavior': 'abort' },
    body: chatBody('cut', { stream: true }),
  });
  assert.equal(res.status, 200);
  const text = await res.text().catch(() => 'stream error');
  assert.ok(text.length > 0);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'upstream_aborted');
  assert.ok(x.error);
});

test('a slow client throttles the upstream (backpressure) and still gets every byte', async () => {
  const bytes = 24 * 1024 * 1024;
  const body = chatBody('big', { stream: true });
  const { port } = new URL(h.sluice.gatewayUrl);
  const sock = connect(Number(port), '127.0.0.1');
  sock.write(
    `POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
      `x-mock-behavior: big\r\nx-mock-bytes: ${bytes}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  sock.pause();
  await h.mock.waitForRequests(h.mock.requests.length + 1);
  const upstream = h.mock.requests.at(-1)!;
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(upstream.outcome, 'pending', 'the provider is held back while the client reads nothing');
  const memBefore = process.memoryUsage().rss;

  const hash = createHash('sha256');
  let received = 0;
  sock.on('data', (d: Buffer) => {
    received += d.length;
    hash.update(d);
  });
  sock.resume();
  await new Promise((r) => sock.on('end', r));
  assert.ok(received > bytes, `received ${received}`);
  assert.equal(upstream.outcome, 'completed');
  assert.ok(process.memoryUsage().rss - memBefore < 64 * 1024 * 1024);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'completed');
  assert.ok(x.responseBytes >= bytes);
});

test('a compressed response bigger than max_inspect_bytes is relayed whole; inspection stops at the limit', async () => {
  const bytes = 8 * 1024 * 1024;
  const { statusCode, headers, body } = await request(gw('/openai/v1/chat/completions'), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-behavior': 'big,gzip', 'x-mock-bytes': String(bytes) },
    body: chatBody('bomb', { stream: true }),
  });
  assert.equal(statusCode, 200);
  assert.equal(headers['content-encoding'], 'gzip');
  const raw = Buffer.from(await body.arrayBuffer());
  assert.ok(gunzipSync(raw).length >= bytes, 'the client got every byte');
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'completed');
  assert.ok(x.response?.errors.some((e) => /max_inspect_bytes/.test(e)), x.response?.errors.join('; '));
});

test('a GET without a body passes through, status and body as the provider sent them', async () => {
  const res = await fetch(gw('/openai/v1/no-such-endpoint'));
  const direct = await fetch(`${h.mock.url}/v1/no-such-endpoint`);
  assert.equal(res.status, direct.status);
  assert.equal(normalise(await res.text()), normalise(await direct.text()));
  const x = await h.nextExchange();
  assert.equal(x.info.method, 'GET');
  assert.equal(x.outcome, 'completed');
});

test('HEAD keeps the upstream Content-Length and sends no body', async () => {
  const res = await request(gw('/openai/v1/chat/completions'), { method: 'HEAD' });
  const direct = await request(`${h.mock.url}/v1/chat/completions`, { method: 'HEAD' });
  assert.equal(res.statusCode, direct.statusCode);
  assert.equal(res.headers['content-length'], direct.headers['content-length']);
  assert.equal((await res.body.arrayBuffer()).byteLength, 0);
  await direct.body.arrayBuffer();
});
