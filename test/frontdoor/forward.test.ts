// The forward-proxy front door (HTTP_PROXY style), driven by real curl on loopback.
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import { mockReplyText } from '../fixtures/mock-provider';
import { curlThrough } from '../fixtures/curl';
import { startHarness, type Harness } from '../fixtures/harness';

let h: Harness;
/** A plain HTTP server Sluice does not know, standing in for an arbitrary intranet host. */
let plain: Server;
let plainPort = 0;
const plainSeen: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }> = [];

before(async () => {
  h = await startHarness();
  plain = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      plainSeen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(parts).toString() });
      res.writeHead(200, { 'content-type': 'text/plain', 'x-plain': 'yes' }).end(`plain hello ${req.url}`);
    });
  });
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  plainPort = (plain.address() as AddressInfo).port;
});
after(async () => {
  plain?.closeAllConnections();
  await new Promise<void>((resolve) => (plain ? plain.close(() => resolve()) : resolve()));
  await h?.close();
});
beforeEach(() => h.skipPending());

/** Runs curl through the forward proxy. */
const curl = (args: string[], timeoutMs = 5000) => curlThrough(h.sluice.forwardUrl, args, timeoutMs);

const chatBody = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });

test('curl -x: an absolute-form POST to api.openai.com is relayed and recorded', async () => {
  const before = h.mock.requests.length;
  const r = await curl([
    '-X',
    'POST',
    'http://api.openai.com/v1/chat/completions',
    '-H',
    'content-type: application/json',
    '-H',
    'authorization: Bearer sk-test',
    '-H',
    'Proxy-Authorization: Basic xx',
    '-H',
    'x-sluice-identity: svc-billing',
    '--data-binary',
    chatBody('through the forward proxy'),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.status, 200);
  assert.ok(r.headers['x-sluice-exchange-id'], 'every response carries the exchange id');
  const reply = JSON.parse(r.body) as { choices: Array<{ message: { content: string } }> };
  assert.equal(reply.choices[0]!.message.content, mockReplyText('through the forward proxy'));

  assert.equal(h.mock.requests.length, before + 1);
  const seen = h.mock.requests.at(-1)!;
  assert.equal(seen.method, 'POST');
  assert.equal(seen.path, '/v1/chat/completions');
  assert.equal(seen.headers.host, 'api.openai.com');
  assert.equal(seen.headers.authorization, 'Bearer sk-test', 'provider credentials pass through');
  const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  assert.deepEqual(
    names.filter((n) => n.startsWith('proxy-') || n.startsWith('x-sluice-')),
    [],
    `no Proxy-* or x-sluice-* header reaches the provider (saw ${names.join(', ')})`,
  );

  const x = await h.nextExchange();
  assert.equal(x.id, r.headers['x-sluice-exchange-id']);
  assert.equal(x.frontDoor, 'forward');
  assert.equal(x.destination.provider, 'openai');
  assert.equal(x.destination.host, 'api.openai.com');
  assert.equal(x.info.path, '/v1/chat/completions');
  assert.equal(x.outcome, 'completed');
  assert.equal(x.status, 200);
  assert.equal(x.request?.parsed, true);
  assert.equal(x.request?.model, 'gpt-4o-mini');
  assert.deepEqual(
    x.request?.segments.map((s) => s.text),
    ['through the forward proxy'],
  );
  assert.equal(x.response?.parsed, true);
  assert.equal(x.response?.text.map((s) => s.text).join(''), mockReplyText('through the forward proxy'));
  assert.deepEqual(x.sluiceHeaders, [['x-sluice-identity', 'svc-billing']]);
});

test('curl -x: an SSE stream passes through the forward proxy and is reassembled', async () => {
  const r = await curl([
    '-N',
    'http://api.openai.com/v1/chat/completions?trace=1',
    '-H',
    'content-type: application/json',
    '-H',
    'x-mock-chunks: 12',
    '--data-binary',
    chatBody('stream me', { stream: true }),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'] ?? '', /text\/event-stream/);
  assert.match(r.body, /data: \[DONE\]/);
  assert.equal(h.mock.requests.at(-1)!.url, '/v1/chat/completions?trace=1', 'query string forwarded');
  const x = await h.nextExchange();
  assert.equal(x.frontDoor, 'forward');
  assert.equal(x.info.query, 'trace=1');
  assert.equal(x.outcome, 'completed');
  assert.equal(x.request?.stream, true);
  assert.equal(x.response?.text.map((s) => s.text).join(''), mockReplyText('stream me'));
});

test('an origin-form request to the forward port gets 400 JSON naming the listener', async () => {
  const before = h.mock.requests.length;
  const res = await fetch(`${h.sluice.forwardUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: chatBody('wrong door'),
  });
  assert.equal(res.status, 400);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const j = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(j.error.code, 'SLUICE_BAD_REQUEST');
  assert.match(j.error.message, /forward proxy/);
  assert.match(j.error.message, /gateway/);
  assert.equal(h.mock.requests.length, before, 'nothing forwarded');
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'rejected');
  assert.equal(x.frontDoor, 'forward');
  assert.equal(x.info.path, '/v1/chat/completions');
});

test('an unknown host is proxied over plain HTTP as provider "unknown"', async () => {
  plainSeen.length = 0;
  const r = await curl([
    `http://127.0.0.1:${plainPort}/x?y=1`,
    '-H',
    'Proxy-Authorization: Basic xx',
    '-H',
    'x-sluice-identity: svc-intranet',
    '--data-binary',
    'just text',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-plain'], 'yes');
  assert.equal(r.body, 'plain hello /x?y=1');
  assert.equal(plainSeen.length, 1);
  const seen = plainSeen[0]!;
  assert.equal(seen.method, 'POST');
  assert.equal(seen.url, '/x?y=1');
  assert.equal(seen.body, 'just text');
  assert.equal(seen.headers.host, `127.0.0.1:${plainPort}`, 'Host keeps the non-default port');
  assert.deepEqual(
    Object.keys(seen.headers).filter((n) => n.startsWith('proxy-') || n.startsWith('x-sluice-')),
    [],
  );

  const x = await h.nextExchange();
  assert.equal(x.frontDoor, 'forward');
  assert.equal(x.destination.provider, 'unknown');
  assert.equal(x.destination.tier, 'unknown');
  assert.equal(x.destination.origin, `http://127.0.0.1:${plainPort}`);
  assert.equal(x.outcome, 'completed');
  assert.equal(x.status, 200);
  assert.deepEqual(x.sluiceHeaders, [['x-sluice-identity', 'svc-intranet']]);
});

test('a client that goes away mid-stream cancels the upstream request', async () => {
  const abortedBefore = h.mock.aborted;
  const { hostname, port } = new URL(h.sluice.forwardUrl);
  const req = httpRequest({
    host: hostname,
    port: Number(port),
    method: 'POST',
    path: 'http://api.openai.com/v1/chat/completions',
    headers: { host: 'api.openai.com', 'content-type': 'application/json', 'x-mock-behavior': 'slow', 'x-mock-chunks': '200' },
  });
  req.on('error', () => undefined);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
    req.end(chatBody('leave early', { stream: true }));
  });
  assert.equal(res.statusCode, 200);
  res.on('error', () => undefined);
  await new Promise((resolve) => res.once('data', resolve));
  req.destroy();
  await h.mock.waitForAborted(abortedBefore + 1, 3000);
  const x = await h.nextExchange();
  assert.equal(x.frontDoor, 'forward');
  assert.equal(x.outcome, 'client_aborted');
  assert.equal(x.error?.code, 'SLUICE_CLIENT_ABORTED');
});
