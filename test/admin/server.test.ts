// Admin listener: liveness, readiness (including while draining), stats, unknown paths and methods.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startHarness, type Harness } from '../fixtures/harness';

let h: Harness;

before(async () => {
  h = await startHarness();
});
after(() => h.close());

function admin(path: string): string {
  return `${h.sluice.adminUrl}${path}`;
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
  const res = await fetch(admin('/metrics'));
  assert.equal(res.status, 404);
  const j = (await res.json()) as { error: string; endpoints: string[] };
  assert.deepEqual(j.endpoints, ['/healthz', '/readyz', '/stats', 'POST /admin/reload']);
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
