// Starting and stopping a running Sluice: graceful shutdown (in-flight exchanges finish, new ones are refused,
// what outlives the grace period is cut and recorded) and the certificates it loads at start.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import type { Config } from '../src/config/schema';
import { curlThrough } from './fixtures/curl';
import { mockReplyText } from './fixtures/mock-provider';
import { startHarness, type Harness } from './fixtures/harness';
import { httpOver, openTunnel, testCa, tlsOver } from './fixtures/tls';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const streamBody = (content: string) => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], stream: true });

/** Starts a slow SSE stream through the gateway and returns once its first bytes arrived. */
async function startSlowStream(harness: Harness, content: string, chunks: number) {
  const res = await fetch(`${harness.sluice.gatewayUrl}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-behavior': 'slow', 'x-mock-chunks': String(chunks) },
    body: streamBody(content),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const first = await reader.read();
  let text = first.value ? decoder.decode(first.value, { stream: true }) : '';
  /** Reads to the end; resolves with the text and whether the stream ended cleanly. */
  const rest = async (): Promise<{ text: string; clean: boolean }> => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return { text, clean: true };
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      return { text, clean: false };
    }
  };
  return { rest };
}

/** The same through the forward proxy (absolute-form request target), on node:http. */
async function startSlowForwardStream(harness: Harness, content: string, chunks: number) {
  const { hostname, port } = new URL(harness.sluice.forwardUrl);
  const body = streamBody(content);
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = httpRequest(
      {
        host: hostname,
        port: Number(port),
        method: 'POST',
        path: 'http://api.openai.com/v1/chat/completions',
        headers: { host: 'api.openai.com', 'content-type': 'application/json', 'x-mock-behavior': 'slow', 'x-mock-chunks': String(chunks) },
      },
      resolve,
    );
    req.on('error', reject);
    req.end(body);
  });
  assert.equal(res.statusCode, 200);
  res.setEncoding('utf8');
  let text = '';
  await new Promise<void>((resolve) => res.once('data', (d: string) => ((text += d), resolve())));
  // Listen now: the connection may be cut before the test gets round to reading.
  const ended = new Promise<{ text: string; clean: boolean }>((resolve) => {
    res.on('data', (d: string) => (text += d));
    res.on('error', () => undefined);
    res.on('close', () => resolve({ text, clean: res.complete }));
  });
  return { rest: () => ended };
}

/** Resolves with the connect error code, or 'connected' when the port still accepts. */
function tryConnect(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), hostname);
    s.setTimeout(2000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? String(err)));
  });
}

/** One HTTP/1.1 request on an already open socket; resolves with the raw response head and body. */
function requestOn(sock: Socket, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const onData = (d: Buffer) => {
      data += d.toString();
      const sep = data.indexOf('\r\n\r\n');
      if (sep < 0) return;
      const len = Number(/content-length: *(\d+)/i.exec(data.slice(0, sep))?.[1] ?? 0);
      if (data.length >= sep + 4 + len) {
        sock.off('data', onData);
        resolve(data);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(head);
  });
}

test('an in-flight stream finishes in full during stop(grace); new connections and requests are refused', async () => {
  h = await startHarness();
  const harness = h;
  // A keep-alive connection opened before the stop, to send a request on once draining.
  const { port } = new URL(harness.sluice.gatewayUrl);
  const keep = connect(Number(port), '127.0.0.1');
  await new Promise((r) => keep.once('connect', r));
  const first = await requestOn(keep, 'GET /nope HTTP/1.1\r\nhost: x\r\n\r\n');
  assert.match(first, /^HTTP\/1\.1 404/);
  assert.equal((await harness.nextExchange()).error?.code, 'SLUICE_UNKNOWN_ROUTE', 'the unroutable request is recorded');

  const stream = await startSlowStream(harness, 'finish me', 16); // ~16 × 50 ms
  const fwdStream = await startSlowForwardStream(harness, 'finish me too', 16);
  const t0 = Date.now();
  const stopped = harness.sluice.stop(5000);
  let stopDone = false;
  void stopped.then(() => (stopDone = true));

  assert.equal(await tryConnect(harness.sluice.gatewayUrl), 'ECONNREFUSED', 'gateway refuses new connections');
  assert.equal(await tryConnect(harness.sluice.forwardUrl), 'ECONNREFUSED', 'forward proxy refuses new connections');

  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'too late' }] });
  const mockBefore = harness.mock.requests.length;
  const refused = await requestOn(
    keep,
    `POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  keep.destroy();
  assert.match(refused, /^HTTP\/1\.1 503/);
  assert.match(refused, /x-sluice-error: SLUICE_SHUTTING_DOWN/i);
  assert.equal(harness.mock.requests.length, mockBefore, 'the refused request was not forwarded');
  const rejected = await harness.nextExchange();
  assert.equal(rejected.outcome, 'rejected');
  assert.equal(rejected.error?.code, 'SLUICE_SHUTTING_DOWN');

  assert.equal(stopDone, false, 'stop waits for the in-flight stream');
  const { text, clean } = await stream.rest();
  assert.ok(clean, 'the stream ended cleanly');
  assert.match(text, /data: \[DONE\]\s*$/);
  const fwd = await fwdStream.rest();
  assert.ok(fwd.clean, 'the forward-proxy stream ended cleanly');
  assert.match(fwd.text, /data: \[DONE\]\s*$/);
  const done = [await harness.nextExchange(), await harness.nextExchange()];
  for (const x of done) {
    assert.equal(x.outcome, 'completed');
    assert.equal(x.error, null);
  }
  const byDoor = Object.fromEntries(done.map((x) => [x.frontDoor, x.response?.text.map((s) => s.text).join('')]));
  assert.deepEqual(byDoor, { gateway: mockReplyText('finish me'), forward: mockReplyText('finish me too') });
  await stopped;
  assert.ok(Date.now() - t0 < 4000, 'stop returned once the stream was done, well before the grace ended');
  assert.equal(harness.mock.aborted, 0);
});

test('a stream that outlives a short grace is cut and recorded as SLUICE_SHUTTING_DOWN', async () => {
  h = await startHarness();
  const harness = h;
  const streams = [await startSlowStream(harness, 'cut me', 200), await startSlowForwardStream(harness, 'cut me too', 200)]; // ~10 s each
  const t0 = Date.now();
  await harness.sluice.stop(300);
  const took = Date.now() - t0;
  assert.ok(took >= 250 && took < 2000, `stop took ${took} ms`);

  for (const stream of streams) {
    const { text, clean } = await stream.rest();
    assert.equal(clean, false, 'the client sees the connection cut, not a clean end');
    assert.doesNotMatch(text, /\[DONE\]/);
  }
  await harness.mock.waitForAborted(2, 3000);
  const cut = [await harness.nextExchange(), await harness.nextExchange()];
  assert.deepEqual(cut.map((x) => x.frontDoor).sort(), ['forward', 'gateway']);
  for (const x of cut) {
    assert.equal(x.error?.code, 'SLUICE_SHUTTING_DOWN');
    assert.match(x.error?.message ?? '', /300 ms/);
    assert.equal(x.outcome, 'cut_at_shutdown');
  }
  assert.equal(harness.sluice.relay.inFlight, 0);
});

test('stop() with nothing in flight returns at once and is idempotent', async () => {
  h = await startHarness();
  const t0 = Date.now();
  const a = h.sluice.stop(5000);
  const b = h.sluice.stop(5000);
  assert.equal(a, b);
  await a;
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(await tryConnect(h.sluice.gatewayUrl), 'ECONNREFUSED');
  assert.equal(await tryConnect(h.sluice.adminUrl), 'ECONNREFUSED');
});

// ----------------------------------------------------------------------------------------------
// Certificates at start: Sluice's own CA on first run, an enterprise CA from config, the gateway over HTTPS.

test('first start creates the CA under data_dir; an enterprise CA from tls.ca_cert/ca_key is used instead when set', async () => {
  h = await startHarness();
  const own = h.sluice.caCert;
  assert.equal(own, join(h.sluice.config.data_dir, 'ca', 'ca.pem'));
  assert.equal(statSync(join(h.sluice.config.data_dir, 'ca', 'ca-key.pem')).mode & 0o777, 0o600);
  await h.close();

  // A realistic enterprise setup: Sluice signs with an intermediate; clients trust only the root.
  const dir = mkdtempSync(join(tmpdir(), 'sluice-enterprise-'));
  try {
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const ext = (lines: string) => {
      writeFileSync(join(dir, 'ext.cnf'), lines);
      return join(dir, 'ext.cnf');
    };
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-days', '30',
      '-subj', '/CN=Example Corp Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'proxy.key', '-out', 'proxy.csr', '-subj', '/CN=Example Corp Proxy CA');
    ssl('x509', '-req', '-in', 'proxy.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'proxy.pem', '-days', '30',
      '-extfile', ext('basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n'));
    h = await startHarness('', (c) => {
      c.tls.ca_cert = join(dir, 'proxy.pem');
      c.tls.ca_key = join(dir, 'proxy.key');
    });
    assert.equal(h.sluice.caCert, join(dir, 'proxy.pem'));
    assert.ok(!existsSync(join(h.sluice.config.data_dir, 'ca')), 'no CA of its own is created');
    const t = await tlsOver(await openTunnel(h.sluice.ports.forward, 'api.openai.com:443'), 'api.openai.com', readFileSync(join(dir, 'root.pem'), 'utf8'));
    const chain = t.getPeerCertificate(true);
    assert.equal(chain.issuer.CN, 'Example Corp Proxy CA');
    assert.equal(chain.issuerCertificate.issuer.CN, 'Example Corp Root', 'the intermediate is sent with the leaf');
    assert.match(await httpOver(t, 'GET /v1/models HTTP/1.1\r\nhost: api.openai.com'), /^HTTP\/1\.1 \d{3} /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the gateway serves HTTPS with tls.gateway_cert/gateway_key (curl --cacert)', async () => {
  const ca = await testCa('Gateway Issuer');
  try {
    const files = ca.issueFiles('127.0.0.1');
    h = await startHarness('', (c) => {
      c.tls.gateway_cert = files.cert;
      c.tls.gateway_key = files.key;
    });
    assert.match(h.sluice.gatewayUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await curlThrough(null, ['--cacert', ca.certPath, `${h.sluice.gatewayUrl}/openai/v1/chat/completions`, '-H', 'content-type: application/json', '--data-binary', streamBody('over https').replace('"stream":true', '"stream":false')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.body).choices[0].message.content, mockReplyText('over https'));
    assert.equal((await h.nextExchange()).frontDoor, 'gateway');
  } finally {
    ca.cleanup();
  }
});

test('certificate config mistakes stop the start with an error naming the setting', async () => {
  const ca = await testCa('Mismatch');
  const other = await testCa('Other');
  try {
    const a = ca.issueFiles('127.0.0.1');
    const keyOfOther = other.certPath.replace(/ca\.pem$/, 'ca-key.pem');
    const cases: Array<[(c: Config) => void, RegExp]> = [
      [(c) => void (c.tls.ca_cert = ca.certPath), /tls\.ca_cert and tls\.ca_key go together/],
      [(c) => Object.assign(c.tls, { ca_cert: ca.certPath, ca_key: keyOfOther }), /CA key .* is unusable: the key does not belong/],
      [(c) => Object.assign(c.tls, { gateway_cert: a.cert, gateway_key: keyOfOther }), /tls\.gateway_cert .*: the key does not belong to the certificate/],
      [(c) => void (c.tls.upstream_ca = ['/nonexistent/ca.pem']), /tls\.upstream_ca: cannot read \/nonexistent\/ca\.pem/],
      [(c) => void (c.tls.upstream_ca = [a.key]), /holds no PEM certificate/],
    ];
    for (const [mutate, message] of cases) {
      await assert.rejects(startHarness('', mutate), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
        assert.match(err.message, message);
        return true;
      });
    }
  } finally {
    ca.cleanup();
    other.cleanup();
  }
});
