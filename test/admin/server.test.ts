// Admin listener: liveness, readiness (including while draining), stats, metrics, signals, the dashboard's files,
// bearer-token authentication beyond loopback, unknown paths and methods.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { METRIC_NAMES } from '../../src/signals/metrics';
import { startHarness, type Harness } from '../fixtures/harness';

let h: Harness;

before(async () => {
  h = await startHarness();
});
after(() => h.close());

function admin(path: string): string {
  return `${h.sluice.adminUrl}${path}`;
}

function rawGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port: h.sluice.ports.admin, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

test('GET /healthz → 200 ok; HEAD works too', async () => {
  const res = await fetch(admin('/healthz'));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.deepEqual(await res.json(), { status: 'ok' });
  const head = await fetch(admin('/healthz'), { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
});

test('GET /readyz → 200 ready while serving', async () => {
  const res = await fetch(admin('/readyz?verbose=1'));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ready', in_flight: 0 });
});

test('an unknown path → 404 listing the endpoints', async () => {
  // Sent as written (fetch would resolve the dot segments): nothing outside the dashboard directory is served.
  for (const path of ['/nope', '/dashboard/nope.js', '/dashboard/../../package.json', '/dashboard/..%2f..%2fpackage.json', '/dashboard/.hidden']) {
    const res = await rawGet(path);
    assert.equal(res.status, 404, path);
    const j = JSON.parse(res.body) as { error: string; endpoints: string[] };
    assert.deepEqual(j.endpoints, ['/healthz', '/readyz', '/metrics', '/signals?window=1m|5m|1h|all', '/stats', 'POST /admin/reload', '/ (dashboard)'], path);
  }
});

test('GET /metrics → Prometheus text with every Sluice family declared, and the process metrics', async () => {
  const res = await fetch(admin('/metrics'));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  for (const name of METRIC_NAMES) assert.match(text, new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`, 'm'), name);
  assert.match(text, /^process_resident_memory_bytes \d+/m);
});

test('GET /signals → the snapshot JSON, 5m by default', async () => {
  const res = await fetch(admin('/signals'));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const s = (await res.json()) as { window: string; totals: { requests: number } };
  assert.equal(s.window, '5m');
  assert.equal(typeof s.totals.requests, 'number');
});

test("the dashboard page and its files are served, uPlot from its package", async () => {
  const page = await fetch(admin('/'));
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  assert.match(await page.text(), /<html/i);
  const uplot = await fetch(admin('/dashboard/uplot.min.js'));
  assert.equal(uplot.status, 200);
  assert.equal(uplot.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.match(await uplot.text(), /uPlot/);
  const css = await fetch(admin('/dashboard/uplot.min.css'));
  assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
  await css.arrayBuffer();
});

test('/stats reports interception and detection counters as JSON', async () => {
  const res = await fetch(admin('/stats'));
  assert.equal(res.status, 200);
  const j = (await res.json()) as { in_flight: number; interception: { handshakes: number; leaves: { mints: number } }; detection: unknown };
  assert.equal(j.in_flight, 0);
  assert.equal(typeof j.interception.handshakes, 'number');
  assert.equal(typeof j.interception.leaves.mints, 'number');
  assert.equal(j.detection, null, 'detection is off in the harness');
});

test('POST → 405 with Allow', async () => {
  for (const path of ['/healthz', '/readyz', '/nope']) {
    const res = await fetch(admin(path), { method: 'POST', body: '{}' });
    assert.equal(res.status, 405, path);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    await res.arrayBuffer();
  }
});

test('beyond loopback a token is required: start refused without admin.token_file, naming the keys', async () => {
  await assert.rejects(
    startHarness('', (c) => (c.listen.admin = { host: '0.0.0.0', port: 0 })),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
      assert.match(err.message, /listen\.admin 0\.0\.0\.0:0 .*admin\.token_file is required/);
      return true;
    },
  );
});

test('beyond loopback every path but health, readiness and the page files needs Authorization: Bearer <token>', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-admin-token-'));
  const tokenFile = join(dir, 'admin-token');
  writeFileSync(tokenFile, 's3cret-admin-token\n');
  // Bound to every interface; reached here through loopback, as a remote client would reach the machine's address.
  const a = await startHarness('', (c) => {
    c.listen.admin = { host: '0.0.0.0', port: 0 };
    c.admin.token_file = tokenFile;
  });
  try {
    const url = (path: string) => `http://127.0.0.1:${a.sluice.ports.admin}${path}`;
    const get = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
      const res = await fetch(url(path), { method, headers });
      await res.arrayBuffer();
      return res;
    };
    for (const path of ['/healthz', '/readyz', '/', '/dashboard/uplot.min.js']) assert.equal((await get(path)).status, 200, path);
    for (const path of ['/metrics', '/signals', '/stats', '/nope']) {
      const res = await get(path);
      assert.equal(res.status, 401, path);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.equal((await get(path, { authorization: 'Bearer wrong-token' })).status, 401, `${path} with a wrong token`);
      assert.equal((await get(path, { authorization: 's3cret-admin-token' })).status, 401, `${path} without the Bearer scheme`);
    }
    assert.equal((await get('/admin/reload', {}, 'POST')).status, 401);
    const denied = await fetch(url('/signals'));
    assert.deepEqual(await denied.json(), { error: 'send Authorization: Bearer <the token in admin.token_file> to the admin listener', code: 'SLUICE_ADMIN_AUTH' });
    const auth = { authorization: 'Bearer s3cret-admin-token' };
    for (const path of ['/metrics', '/signals?window=1m', '/stats']) assert.equal((await get(path, auth)).status, 200, path);
    assert.equal((await get('/admin/reload', auth, 'POST')).status, 200);
  } finally {
    await a.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// Last: it stops the harness's Sluice.
test('/readyz → 503 draining while an in-flight stream drains; the admin closes once stopped', async () => {
  const res = await fetch(`${h.sluice.gatewayUrl}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-mock-behavior': 'slow', 'x-mock-chunks': '16' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'drain me' }], stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read(); // the stream is flowing: the exchange is in flight

  const before = await fetch(admin('/readyz'));
  assert.equal(before.status, 200);
  assert.deepEqual(await before.json(), { status: 'ready', in_flight: 1 });

  const stopped = h.sluice.stop(5000);
  let stopDone = false;
  void stopped.then(() => (stopDone = true));

  const draining = await fetch(admin('/readyz'));
  assert.equal(draining.status, 503);
  assert.deepEqual(await draining.json(), { status: 'draining', in_flight: 1 });
  const health = await fetch(admin('/healthz'));
  assert.equal(health.status, 200, 'still alive while draining');
  await health.arrayBuffer();
  assert.equal(stopDone, false);

  const decoder = new TextDecoder();
  let rest = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += decoder.decode(value, { stream: true });
  }
  assert.match(rest, /data: \[DONE\]/, 'the in-flight stream finished');
  await stopped;
  await assert.rejects(fetch(admin('/readyz')), 'the admin listener is closed after stop');
});
