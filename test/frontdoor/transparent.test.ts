// Transparent TLS (listen.transparent): a client that resolved api.openai.com to Sluice (curl --resolve) gets a
// leaf chosen by SNI and its request inspected; no SNI or a host that is not intercepted is refused and recorded.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { after, before, beforeEach, test } from 'node:test';
import { curlThrough } from '../fixtures/curl';
import { startHarness, type Harness } from '../fixtures/harness';
import { mockReplyText } from '../fixtures/mock-provider';

let h: Harness;
let port = 0;

before(async () => {
  h = await startHarness('', (c) => {
    c.listen.transparent = { host: '127.0.0.1', port: 0 };
  });
  port = h.sluice.ports.transparent;
});
after(() => h?.close());
beforeEach(() => h.skipPending());

/** A handshake with the transparent listener; resolves with the failure message, or '' when it succeeded. */
function handshake(servername: string | undefined): Promise<string> {
  return new Promise((resolve) => {
    const t = tlsConnect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), ca: readFileSync(h.sluice.caCert, 'utf8') }, () => {
      t.destroy();
      resolve('');
    });
    t.on('error', (err) => resolve(err.message || 'error'));
  });
}

test('curl --resolve api.openai.com to the transparent port: SNI picks the leaf, the exchange is inspected', async () => {
  const r = await curlThrough(null, [
    '--resolve', `api.openai.com:${port}:127.0.0.1`,
    '--cacert', h.sluice.caCert,
    `https://api.openai.com:${port}/v1/chat/completions`,
    '-H', 'content-type: application/json',
    '--data-binary', JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'redirected here' }] }),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).choices[0].message.content, mockReplyText('redirected here'));
  const x = await h.nextExchange();
  assert.equal(x.frontDoor, 'transparent');
  assert.equal(x.destination.provider, 'openai');
  assert.equal(x.request?.model, 'gpt-4o');
});

test('a client without SNI is refused and recorded', async () => {
  assert.notEqual(await handshake(undefined), '');
  const x = await h.nextExchange();
  assert.equal(x.frontDoor, 'transparent');
  assert.equal(x.outcome, 'denied');
  assert.match(x.error?.message ?? '', /^no_sni: /);
});

test('an SNI that is not an AI host is refused (transparent mode cannot tunnel) and recorded', async () => {
  assert.notEqual(await handshake('www.example.com'), '');
  const x = await h.nextExchange();
  assert.equal(x.outcome, 'denied');
  assert.equal(x.destination.host, 'www.example.com');
  assert.match(x.error?.message ?? '', /^refused_sni: www\.example\.com is not intercepted here \(not an AI destination\)/);
  const f = h.sluice.interceptionStats().handshake_failures.find((e) => e.reason === 'refused_sni');
  assert.equal(f?.destination, 'www.example.com');

  // The listener keeps serving.
  assert.equal(await handshake('api.anthropic.com'), '');
});
