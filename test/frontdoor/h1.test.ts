// The HTTP/1.1 server for decrypted connections, on plain loopback sockets: keep-alive, pipelining, chunked bodies
// both ways, Expect: 100-continue, HEAD, Connection: close, parse errors, and a client that leaves mid-response.
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { H1Connection, type H1Response } from '../../src/frontdoor/h1';
import { rawExchange } from '../fixtures/tls';

let server: Server;
let port = 0;
const aborted: string[] = [];

/** Echo: `/echo` returns the body (sized), `/stream` returns it in pieces (chunked), `/hang` never finishes. */
function handle(method: string, url: string, res: H1Response) {
  const parts: Buffer[] = [];
  res.onAbort(() => aborted.push(url));
  return {
    data: (c: Buffer) => parts.push(c),
    end: () => {
      const body = Buffer.concat(parts);
      const text = `${method} ${url} ${body.toString()}`;
      if (url === '/stream') {
        res.respond(200, '', ['content-type', 'text/plain'], -1);
        for (const piece of text.match(/.{1,4}/gs) ?? []) res.write(Buffer.from(piece));
        res.end();
      } else if (url === '/hang') {
        res.respond(200, '', ['content-type', 'text/plain'], -1);
        res.write(Buffer.from('first'));
      } else if (url === '/empty') {
        res.respond(204, '', [], 0);
        res.end();
      } else {
        res.respond(200, '', ['content-type', 'text/plain'], Buffer.byteLength(text));
        res.write(Buffer.from(text));
        res.end();
      }
    },
  };
}

before(async () => {
  server = createServer((socket) => {
    new H1Connection(socket, {
      head: (req, res) => handle(req.method, req.url, res),
      parseError: (code, _message, res) => {
        const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
        res.sendWhole(status, ['content-type', 'text/plain'], code, true);
      },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

function call(agent: Agent, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string; socketPort: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      let data = '';
      res.setEncoding('utf8').on('data', (d: string) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data, socketPort: res.socket?.localPort ?? 0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('keep-alive: sequential requests share one connection; sized and chunked bodies both ways', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const a = await call(agent, 'POST', '/echo', 'hello');
    assert.equal(a.body, 'POST /echo hello');
    assert.equal(a.headers['content-length'], String(a.body.length));
    assert.ok(a.headers.date);
    const b = await call(agent, 'POST', '/stream', 'chunked please', { 'transfer-encoding': 'chunked' });
    assert.equal(b.body, 'POST /stream chunked please');
    assert.equal(b.headers['transfer-encoding'], 'chunked');
    assert.equal(b.socketPort, a.socketPort, 'same connection');
    const head = await call(agent, 'HEAD', '/echo');
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], String('HEAD /echo '.length));
    const empty = await call(agent, 'GET', '/empty');
    assert.equal(empty.status, 204);
    assert.equal(empty.headers['content-length'], undefined);
    assert.equal((await call(agent, 'GET', '/echo')).socketPort, a.socketPort, 'still the same connection after HEAD and 204');
  } finally {
    agent.destroy();
  }
});

test('pipelined requests are answered in order, each with its own body', async () => {
  const r = await rawExchange(
    port,
    'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\none' +
      'POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n' +
      'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\nthree',
  );
  assert.ok(r.closed, 'closed after the request that asked for it');
  const bodies = [...r.data.matchAll(/POST \/echo (one|two|three)/g)].map((m) => m[1]);
  assert.deepEqual(bodies, ['one', 'two', 'three']);
  assert.equal((r.data.match(/HTTP\/1\.1 200 OK/g) ?? []).length, 3);
  assert.match(r.data, /connection: close\r\n/);
});

test('an HTTP/1.0 client gets an unchunked body of unknown length, ended by closing the connection', async () => {
  const r = await rawExchange(port, 'POST /stream HTTP/1.0\r\ncontent-length: 3\r\n\r\nold');
  assert.ok(r.closed);
  assert.doesNotMatch(r.data, /transfer-encoding/i);
  assert.match(r.data, /connection: close\r\n/);
  assert.ok(r.data.endsWith('\r\n\r\nPOST /stream old'));
});

test('Expect: 100-continue gets 100 before the body is sent', async () => {
  const got = await new Promise<string>((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      data += d;
      if (data === 'HTTP/1.1 100 Continue\r\n\r\n') s.write('body');
    });
    s.on('close', () => resolve(data));
    s.on('error', reject);
    s.write('POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n');
  });
  assert.match(got, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  assert.match(got, /POST \/echo body$/);
});

test('bad input: garbage gets 400, an oversized head 431, a smuggling-shaped request 400; each connection closes', async () => {
  const garbage = await rawExchange(port, 'THIS IS NOT HTTP\r\n\r\n');
  assert.match(garbage.data, /^HTTP\/1\.1 400 /);
  assert.ok(garbage.closed);
  const big = await rawExchange(port, `GET /echo HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.match(big.data, /^HTTP\/1\.1 431 /);
  assert.ok(big.closed);
  const both = await rawExchange(port, 'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n');
  assert.match(both.data, /^HTTP\/1\.1 400 /);
  // After a good request, trailing garbage: the good response stands, the garbage gets its 400, the connection ends.
  const tail = await rawExchange(port, 'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nokGARBAGE\x00\r\n\r\n');
  assert.match(tail.data, /^HTTP\/1\.1 200 OK[\s\S]*POST \/echo okHTTP\/1\.1 400 /);
  assert.ok(tail.closed);
});

test('a client that leaves mid-response aborts that response', async () => {
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => {
    s.once('data', () => resolve());
    s.write('GET /hang HTTP/1.1\r\nhost: x\r\n\r\n');
  });
  s.destroy();
  for (let i = 0; i < 50 && !aborted.includes('/hang'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(aborted.includes('/hang'));
});
