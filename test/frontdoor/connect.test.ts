// CONNECT on the forward proxy with real clients: curl, the openai SDK through undici's ProxyAgent, Python's
// urllib. Intercepted AI hosts reach the mock through verified TLS; other hosts are tunnelled untouched; bad input
// is refused and recorded while the proxy keeps serving.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { after, before, beforeEach, test } from 'node:test';
import OpenAI, { type ClientOptions } from 'openai';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { curlThrough } from '../fixtures/curl';
import { startHarness, type Harness } from '../fixtures/harness';
import { mockReplyText } from '../fixtures/mock-provider';
import { httpOver, openTunnel, rawExchange, startTlsServer, testCa, tlsOver, type TestCa, type TlsFront } from '../fixtures/tls';

let h: Harness;
/** Issues the certificates of "the internet": upstream provider fronts and the intranet server. */
let publicCa: TestCa;
/** A CA nobody configured Sluice to trust. */
let rogueCa: TestCa;
let anthropicFront: TlsFront;
let rogueFront: TlsFront;
let intranet: TlsFront;
let forwardPort = 0;
let caPem = '';

before(async () => {
  publicCa = await testCa('Test Public Root');
  rogueCa = await testCa('Rogue Root');
  h = await startHarness('', (c) => {
    c.tls.upstream_ca = [publicCa.certPath];
    c.tls.handshake_timeout_ms = 400;
    c.interception.deny = ['*.blocked.example'];
  });
  // The harness maps providers to the plain mock; these hosts go through TLS fronts instead.
  // The origin dialled is what is verified: an IP-literal override needs a certificate for that address.
  anthropicFront = await startTlsServer(publicCa.ca, '127.0.0.1', { targetPort: h.mock.port });
  rogueFront = await startTlsServer(rogueCa.ca, '127.0.0.1', { targetPort: h.mock.port });
  intranet = await startTlsServer(publicCa.ca, 'intranet.example.test', { body: 'intranet says hi' });
  // Late edits are seen: the registry reads the same upstreams object on first lookup of each host.
  Object.assign(h.sluice.config.upstreams, {
    'api.anthropic.com': `https://127.0.0.1:${anthropicFront.port}`,
    'api.groq.com': `https://127.0.0.1:${rogueFront.port}`,
    'intranet.example.test': `https://127.0.0.1:${intranet.port}`,
  });
  forwardPort = h.sluice.ports.forward;
  caPem = readFileSync(h.sluice.caCert, 'utf8');
});
after(async () => {
  await h?.close();
  await Promise.all([anthropicFront, rogueFront, intranet].map((f) => f?.close()));
  publicCa?.cleanup();
  rogueCa?.cleanup();
});
beforeEach(() => h.skipPending());

const curl = (args: string[], timeoutMs = 5000) => curlThrough(h.sluice.forwardUrl, args, timeoutMs);
const chat = (content: string, extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra });
const text = (segs: Array<{ text: string }> | undefined) => (segs ?? []).map((s) => s.text).join('');

test('curl -x --cacert: an intercepted POST to api.openai.com is decrypted, relayed and recorded', async () => {
  const r = await curl(['--cacert', h.sluice.caCert, 'https://api.openai.com/v1/chat/completions', '-H', 'content-type: application/json', '--data-binary', chat('through the tunnel')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).choices[0].message.content, mockReplyText('through the tunnel'));
  assert.ok(r.headers['x-sluice-exchange-id']);
  const x = await h.nextExchange();
  assert.equal(x.frontDoor, 'connect');
  assert.equal(x.outcome, 'completed');
  assert.equal(x.destination.provider, 'openai');
  assert.equal(x.request?.model, 'gpt-4o-mini');
  assert.equal(text(x.request?.segments), 'through the tunnel');
  assert.equal(text(x.response?.text), mockReplyText('through the tunnel'));
  assert.equal(h.mock.requests.at(-1)?.headers.host, 'api.openai.com');
});

test('the leaf a client sees is minted by the Sluice CA for the CONNECT host', async () => {
  const sock = await openTunnel(forwardPort, 'api.openai.com:443');
  const t = await tlsOver(sock, 'api.openai.com', caPem);
  const leaf = t.getPeerX509Certificate()!;
  assert.ok(leaf.checkHost('api.openai.com'));
  assert.ok(leaf.verify(new X509Certificate(caPem).publicKey));
  assert.equal(t.alpnProtocol, 'http/1.1');
  // A full exchange, so the server side finishes its handshake instead of waiting for a Finished that never comes.
  assert.match(await httpOver(t, 'GET /v1/models HTTP/1.1\r\nhost: api.openai.com'), /^HTTP\/1\.1 \d{3} /);
  await h.nextExchange();
});

test('openai SDK through undici ProxyAgent: a completion and a stream, both inspected', async () => {
  const agent = new ProxyAgent({ uri: h.sluice.forwardUrl, requestTls: { ca: caPem } });
  try {
    const client = new OpenAI({ apiKey: 'sk-test', fetch: undiciFetch as unknown as typeof fetch, fetchOptions: { dispatcher: agent } as unknown as ClientOptions['fetchOptions'], maxRetries: 0 });
    const done = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'sdk via proxy' }] });
    assert.equal(done.choices[0]?.message.content, mockReplyText('sdk via proxy'));
    const x1 = await h.nextExchange();
    assert.equal(x1.frontDoor, 'connect');
    assert.equal(x1.request?.model, 'gpt-4o-mini');

    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'sdk stream via proxy' }] });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(streamed, mockReplyText('sdk stream via proxy'));
    const x2 = await h.nextExchange();
    assert.equal(x2.frontDoor, 'connect');
    assert.equal(x2.request?.stream, true);
    assert.equal(text(x2.response?.text), streamed);
    assert.deepEqual(x2.response?.errors, []);
  } finally {
    await agent.close();
  }
});

test("Python's urllib with HTTPS_PROXY and SSL_CERT_FILE goes through interception", async () => {
  const script = [
    'import json, urllib.request',
    "req = urllib.request.Request('https://api.openai.com/v1/chat/completions', data=json.dumps({'model': 'gpt-4o-mini', 'messages': [{'role': 'user', 'content': 'from python'}]}).encode(), headers={'content-type': 'application/json', 'authorization': 'Bearer sk-py'})",
    "print(json.load(urllib.request.urlopen(req, timeout=10))['choices'][0]['message']['content'])",
  ].join('\n');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', HTTPS_PROXY: h.sluice.forwardUrl, https_proxy: h.sluice.forwardUrl, SSL_CERT_FILE: h.sluice.caCert };
  const out = await new Promise<string>((resolve, reject) =>
    execFile('python3', ['-c', script], { env, encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
  );
  assert.equal(out.trim(), mockReplyText('from python'));
  const x = await h.nextExchange();
  assert.equal(x.frontDoor, 'connect');
  assert.equal(h.mock.requests.at(-1)?.headers.authorization, 'Bearer sk-py');
});

test('upstream TLS is verified: a trusted provider front works, a rogue certificate is a 502 that says why', async () => {
  const ok = await curl(['--cacert', h.sluice.caCert, 'https://api.anthropic.com/v1/messages', '-H', 'content-type: application/json', '-H', 'anthropic-version: 2023-06-01', '--data-binary', JSON.stringify({ model: 'claude-3-5-haiku-latest', max_tokens: 50, messages: [{ role: 'user', content: 'over verified tls' }] })]);
  assert.equal(ok.status, 200, ok.body);
  assert.equal(JSON.parse(ok.body).content[0].text, mockReplyText('over verified tls'));
  await h.nextExchange();

  const bad = await curl(['--cacert', h.sluice.caCert, 'https://api.groq.com/openai/v1/chat/completions', '-H', 'content-type: application/json', '--data-binary', chat('to a rogue upstream')]);
  assert.equal(bad.status, 502);
  assert.equal(bad.headers['x-sluice-error'], 'SLUICE_UPSTREAM_TLS');
  assert.match(JSON.parse(bad.body).error.message, /api\.groq\.com.*certificate/i);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'upstream_error');
  assert.equal(x.error?.code, 'SLUICE_UPSTREAM_TLS');
});

test('a non-AI host is tunnelled untouched: the client sees that server\'s own certificate, bytes are recorded', async () => {
  // curl trusts only the intranet's issuer, so success proves Sluice did not put its own leaf in between.
  const r = await curl(['--cacert', publicCa.certPath, 'https://intranet.example.test/']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.body, 'intranet says hi');
  const sock = await openTunnel(forwardPort, 'intranet.example.test:443');
  const t = await tlsOver(sock, 'intranet.example.test', readFileSync(publicCa.certPath, 'utf8'));
  const leaf = t.getPeerX509Certificate()!;
  assert.ok(leaf.verify(new X509Certificate(readFileSync(publicCa.certPath)).publicKey), 'issued by the intranet CA');
  assert.ok(!leaf.verify(new X509Certificate(caPem).publicKey), 'not by Sluice');
  await httpOver(t, 'GET / HTTP/1.1\r\nhost: intranet.example.test');
  const xs = [await h.nextExchange(), await h.nextExchange()];
  for (const x of xs) {
    assert.equal(x.outcome, 'tunnelled');
    assert.equal(x.destination.provider, 'unknown');
    assert.equal(x.info.method, 'CONNECT');
    assert.ok(x.requestBytes > 100 && x.responseBytes > 100, `bytes up ${x.requestBytes} down ${x.responseBytes}`);
  }
  assert.equal(h.sluice.interceptionStats().tunnels_open, 0);
});

test('a denied host gets 403 with the matching rule, and a record', async () => {
  const r = await curl(['https://chat.blocked.example/']);
  assert.equal(r.code, 56, r.stderr);
  assert.match(r.stderr, /403/);
  const raw = await rawExchange(forwardPort, 'CONNECT api.blocked.example:443 HTTP/1.1\r\nHost: api.blocked.example:443\r\n\r\n');
  assert.match(raw.data, /^HTTP\/1\.1 403 /);
  const body = JSON.parse(raw.data.slice(raw.data.indexOf('\r\n\r\n') + 4));
  assert.equal(body.error.code, 'SLUICE_CONNECT_DENIED');
  assert.match(body.error.message, /interception\.deny "\*\.blocked\.example"/);
  for (const host of ['chat.blocked.example', 'api.blocked.example']) {
    const x = await h.nextExchange();
    assert.equal(x.outcome, 'denied');
    assert.equal(x.destination.host, host);
    assert.equal(x.decision.action, 'block');
  }
});

test('a client that does not trust the CA (or pins) is counted per destination and client', async () => {
  const before = h.sluice.interceptionStats().handshake_failures.find((f) => f.destination === 'api.openai.com' && f.reason === 'rejected_certificate')?.count ?? 0;
  const r = await curl(['https://api.openai.com/v1/models']);
  assert.equal(r.code, 60, r.stderr);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'client_tls_failed');
  assert.equal(x.error?.code, 'SLUICE_CLIENT_TLS');
  const f = h.sluice.interceptionStats().handshake_failures.find((e) => e.destination === 'api.openai.com' && e.reason === 'rejected_certificate');
  assert.equal(f?.client, '127.0.0.1');
  assert.equal(f?.count, before + 1);
  const stats = (await (await fetch(`${h.sluice.adminUrl}/stats`)).json()) as { interception: { handshake_failures: unknown[] } };
  assert.ok(stats.interception.handshake_failures.length >= 1);
});

test('a request inside a tunnel that names another host is refused (421), not relayed there', async () => {
  const t = await tlsOver(await openTunnel(forwardPort, 'api.openai.com:443'), 'api.openai.com', caPem);
  const res = await httpOver(t, 'POST /v1/chat/completions HTTP/1.1\r\nhost: api.anthropic.com\r\ncontent-type: application/json', chat('fronted'));
  assert.match(res, /^HTTP\/1\.1 421 /);
  assert.match(res, /SLUICE_MISDIRECTED/);
  const x = await h.nextExchange();
  assert.equal(x.error?.code, 'SLUICE_MISDIRECTED');
});

test('a WebSocket upgrade inside an intercepted tunnel is refused with 501 saying how to pass it', async () => {
  const t = await tlsOver(await openTunnel(forwardPort, 'api.openai.com:443'), 'api.openai.com', caPem);
  const res = await httpOver(t, 'GET /v1/realtime HTTP/1.1\r\nhost: api.openai.com\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13');
  assert.match(res, /^HTTP\/1\.1 501 /);
  assert.match(res, /interception\.tunnel/);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'rejected');
});

// ----------------------------------------------------------------------------------------------
// Bad input: each gets a clear refusal or a closed socket, a record, and the proxy keeps serving.

const refusal = (data: string) => ({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), body: data.slice(data.indexOf('\r\n\r\n') + 4) });

test('bad CONNECT targets: no port, port 25, an IP literal, the proxy itself', async () => {
  const cases: Array<[string, number, string, RegExp]> = [
    ['api.openai.com', 400, 'SLUICE_BAD_REQUEST', /host:port/],
    ['smtp.example.com:25', 403, 'SLUICE_CONNECT_DENIED', /port 25 is not in interception\.ports/],
    ['93.184.216.34:443', 403, 'SLUICE_CONNECT_DENIED', /IP address/],
    [`localhost:${forwardPort}`, 403, 'SLUICE_CONNECT_LOOP', /back at this proxy/],
    [`127.0.0.1:${h.sluice.ports.proxy}`, 403, 'SLUICE_CONNECT_LOOP', /back at this proxy/],
  ];
  for (const [target, status, code, message] of cases) {
    const raw = await rawExchange(forwardPort, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    const r = refusal(raw.data);
    assert.equal(r.status, status, `${target}: ${raw.data}`);
    assert.ok(raw.closed, `${target}: connection closed after the refusal`);
    const err = JSON.parse(r.body).error;
    assert.equal(err.code, code, target);
    assert.match(err.message, message, target);
    const x = await h.nextExchange();
    assert.equal(x.outcome, 'denied', target);
    assert.equal(x.error?.code, code, target);
  }
});

test('garbage: a malformed request line, and non-TLS bytes after CONNECT', async () => {
  const line = await rawExchange(forwardPort, 'CONNECT \x01\x02 garbage\r\n\r\n');
  assert.equal(refusal(line.data).status, 400);
  let x = await h.nextExchange();
  assert.equal(x.outcome, 'rejected');

  const after200 = await rawExchange(forwardPort, 'CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\nthis is not a TLS ClientHello\r\n\r\n');
  assert.match(after200.data, /^HTTP\/1\.1 200 /);
  assert.ok(after200.closed);
  x = await h.nextExchange();
  assert.equal(x.outcome, 'client_tls_failed');
  assert.match(x.error?.message ?? '', /^protocol: /);
});

test('a TLS ClientHello on the plain proxy port is cut and recorded', async () => {
  const err = await new Promise<Error>((resolve) => {
    const t = tlsConnect({ host: '127.0.0.1', port: forwardPort, servername: 'api.openai.com', ca: caPem }, () => resolve(new Error('handshake should not succeed')));
    t.on('error', resolve);
  });
  assert.match(err.message, /socket disconnected|ECONNRESET|EPROTO/i);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'rejected');
  assert.match(x.error?.message ?? '', /TLS ClientHello.*http:\/\//);
});

test('a client that never finishes the handshake is cut after tls.handshake_timeout_ms', async () => {
  const raw = await rawExchange(forwardPort, 'CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n', 5000);
  assert.match(raw.data, /^HTTP\/1\.1 200 /);
  assert.ok(raw.closed, 'closed by Sluice, not by the test timeout');
  assert.ok(raw.ms >= 350, `closed after ${raw.ms} ms`);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'client_tls_failed');
  assert.match(x.error?.message ?? '', /^timeout: /);
  assert.ok(h.sluice.interceptionStats().handshake_failures.some((f) => f.reason === 'timeout' && f.destination === 'api.openai.com'));
});

test('an oversized header block gets 431, and the proxy keeps serving', async () => {
  const raw = await rawExchange(forwardPort, `CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.equal(refusal(raw.data).status, 431);
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'rejected');

  const r = await curl(['--cacert', h.sluice.caCert, 'https://api.openai.com/v1/chat/completions', '-H', 'content-type: application/json', '--data-binary', chat('still serving')]);
  assert.equal(r.status, 200, r.stderr);
  await h.nextExchange();
});

test('Proxy-Authorization: required credentials give a verified identity; missing or wrong ones get 407', async () => {
  const users = { alice: createHash('sha256').update('s3cret').digest('hex') };
  const p = await startHarness('', (c) => {
    c.interception.proxy_auth = { required: true, users };
  });
  try {
    const port = p.sluice.ports.forward;
    const ca = readFileSync(p.sluice.caCert, 'utf8');
    const none = await rawExchange(port, 'CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n');
    assert.equal(refusal(none.data).status, 407);
    assert.match(none.data, /proxy-authenticate: Basic realm="sluice"/i);
    const wrong = `proxy-authorization: Basic ${Buffer.from('alice:nope').toString('base64')}\r\n`;
    await assert.rejects(openTunnel(port, 'api.openai.com:443', wrong), /407/);
    for (let i = 0; i < 2; i++) assert.equal((await p.nextExchange()).error?.code, 'SLUICE_PROXY_AUTH');

    const right = `proxy-authorization: Basic ${Buffer.from('alice:s3cret').toString('base64')}\r\n`;
    const t = await tlsOver(await openTunnel(port, 'api.openai.com:443', right), 'api.openai.com', ca);
    const res = await httpOver(t, 'POST /v1/chat/completions HTTP/1.1\r\nhost: api.openai.com\r\ncontent-type: application/json', chat('as alice'));
    assert.match(res, /^HTTP\/1\.1 200 /);
    const x = await p.nextExchange();
    assert.deepEqual(x.identity, { subject: 'alice', source: 'proxy_auth', verified: true });
    assert.equal(p.mock.requests.at(-1)?.headers['proxy-authorization'], undefined, 'credentials stop at the proxy');
  } finally {
    await p.close();
  }
});

test('a body over limits.max_request_bytes inside a tunnel gets 413, and nothing reaches the provider', async () => {
  const p = await startHarness('', (c) => {
    c.limits.max_request_bytes = 1024;
  });
  try {
    const big = chat('x'.repeat(5000));
    const r = await curlThrough(p.sluice.forwardUrl, ['--cacert', p.sluice.caCert, 'https://api.openai.com/v1/chat/completions', '-H', 'content-type: application/json', '--data-binary', big]);
    assert.equal(r.status, 413, r.stderr);
    assert.equal(r.headers['x-sluice-error'], 'SLUICE_BODY_TOO_LARGE');
    assert.equal((await p.nextExchange()).outcome, 'rejected');
    assert.equal(p.mock.requests.length, 0);
    // Chunked upload (no declared length) is cut the same way.
    const chunked = await curlThrough(p.sluice.forwardUrl, ['--cacert', p.sluice.caCert, 'https://api.openai.com/v1/chat/completions', '-H', 'content-type: application/json', '-H', 'transfer-encoding: chunked', '--data-binary', big]);
    assert.equal(chunked.status, 413, chunked.stderr);
    assert.equal(p.mock.requests.length, 0);
  } finally {
    await p.close();
  }
});
