import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientResponseHeaders, forwardRequestHeaders } from '../../src/pipeline/headers';

test('request headers: hop-by-hop, Connection-listed and Sluice headers stop at the proxy', () => {
  const f = forwardRequestHeaders(
    [
      'Host', 'sluice:8080',
      'Connection', 'keep-alive, X-Trace-Hop',
      'X-Trace-Hop', '1',
      'Proxy-Authorization', 'Basic Zm9vOmJhcg==',
      'TE', 'trailers',
      'Content-Length', '42',
      'Content-Type', 'application/json',
      'Content-Encoding', 'GZIP',
      'X-Sluice-Identity', 'jwt.token',
      'X-Forwarded-For', '10.0.0.1',
      'X-Forwarded-For', '10.0.0.2',
      'Authorization', 'Bearer sk',
    ],
    'api.openai.com',
    '192.0.2.7',
  );
  assert.deepEqual(f.headers, [
    'host', 'api.openai.com',
    'content-type', 'application/json',
    'content-encoding', 'GZIP',
    'authorization', 'Bearer sk',
    'x-forwarded-for', '10.0.0.1, 10.0.0.2, 192.0.2.7',
  ]);
  assert.deepEqual(f.sluice, [['x-sluice-identity', 'jwt.token']]);
  assert.equal(f.contentLength, 42);
  assert.equal(f.contentEncoding, 'gzip');
});

test('response headers: framing and hop-by-hop dropped, the rest kept', () => {
  const raw = ['Content-Type', 'text/event-stream', 'Transfer-Encoding', 'chunked', 'Connection', 'close', 'Date', 'x', 'x-request-id', 'req_1', 'Content-Encoding', 'br', 'Content-Length', '10']
    .map((s) => Buffer.from(s));
  const r = clientResponseHeaders(raw);
  assert.deepEqual(r.headers, ['content-type', 'text/event-stream', 'x-request-id', 'req_1', 'content-encoding', 'br']);
  assert.equal(r.contentLength, 10);
  assert.equal(r.contentType, 'text/event-stream');
  assert.equal(r.contentEncoding, 'br');
});
