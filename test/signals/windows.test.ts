// Sliding windows on a clock the test moves: what each window sums, minutes folding into the hour and since start,
// slots cleared when reused; latency percentiles per window; labels bounded by max_destinations / max_routes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig } from '../../src/config/schema';
import type { Destination } from '../../src/destinations/registry';
import { Exchange } from '../../src/pipeline/exchange';
import { renderMetrics } from '../../src/signals/metrics';
import { SignalsStage } from '../../src/signals/stage';
import { Clock, LatencyWindows, LogLatencyWindows, WindowedCounters } from '../../src/signals/windows';
import { parseMetrics, sample } from '../fixtures/metrics';

/** A clock at a minute boundary, so the test knows which slots it is in. */
function fakeClock(): { clock: Clock; at: (ms: number) => number } {
  const start = Math.ceil(Date.now() / 60_000) * 60_000;
  let now = start;
  const clock = new Clock(() => now);
  return {
    clock,
    at(ms) {
      now = start + ms;
      clock.advance(now);
      return now;
    },
  };
}

test('counts land in the window they happened in: 1m, 5m, 1h (whole minutes plus the current one) and since start', () => {
  const { clock, at } = fakeClock();
  const c = new WindowedCounters(2);
  clock.track(c);
  const sum = (w: '1m' | '5m' | '1h' | 'all', field = 0) => c.sum(clock.window(w).slots, field);
  at(0);
  c.add(clock, 0, 1);
  at(15_000);
  c.add(clock, 0, 2);
  c.add(clock, 1, 7);
  assert.deepEqual([sum('1m'), sum('5m'), sum('1h'), sum('all'), sum('all', 1)], [3, 3, 3, 3, 7]);
  const fine = clock.window('1m');
  assert.deepEqual(fine.buckets.map((b) => c.sum(b, 0)), [0, 0, 0, 0, 1, 2], '10 s trend, oldest first');

  at(65_000); // the first minute folded into its 1 min slot and since start
  c.add(clock, 0, 4);
  assert.deepEqual([sum('1m'), sum('5m'), sum('1h'), sum('all')], [6, 7, 7, 7], '1m still holds the 10-20 s slot');
  const hour = clock.window('1h');
  assert.equal(hour.buckets.length, 60);
  assert.deepEqual(hour.buckets.slice(-2).map((b) => c.sum(b, 0)), [3, 4], '1 min trend: the folded minute, then the current one');

  at(6 * 60_000 + 5_000); // the 5 min window has moved past both
  assert.deepEqual([sum('1m'), sum('5m'), sum('1h'), sum('all')], [0, 0, 7, 7]);
  c.add(clock, 0, 1);
  at(61 * 60_000 + 5_000); // and the hour past the first minutes too
  assert.deepEqual([sum('1m'), sum('5m'), sum('1h'), sum('all')], [0, 0, 1, 8], 'only minute 6 is left in the hour');
  at(3 * 3_600_000); // hours idle: every ring slot was cleared, nothing leaks back
  assert.deepEqual([sum('1m'), sum('5m'), sum('1h'), sum('all')], [0, 0, 0, 8]);
  c.add(clock, 0, 5);
  assert.deepEqual([sum('1m'), sum('5m'), sum('1h'), sum('all')], [5, 5, 5, 13]);
});

test('a clock that steps back keeps recording into the current slot', () => {
  const { clock, at } = fakeClock();
  const c = new WindowedCounters(1);
  clock.track(c);
  at(30_000);
  c.add(clock, 0, 1);
  at(5_000);
  c.add(clock, 0, 1);
  assert.deepEqual(clock.window('1m').buckets.map((b) => c.sum(b, 0)).slice(-1), [2]);
});

test('HDR latency windows: percentiles per window, merged across slots and folded minutes', () => {
  const { clock, at } = fakeClock();
  const l = new LatencyWindows();
  clock.track(l);
  at(0);
  for (let i = 1; i <= 100; i++) l.record(clock, i); // 1..100 ms
  at(70_000);
  for (let i = 0; i < 100; i++) l.record(clock, 1000); // 1 s
  // HDR reports the highest value equivalent at 3 significant figures: within 0.1 %.
  const near = (got: number, want: number) => assert.ok(Math.abs(got - want) <= want / 1000, `${got} ≈ ${want}`);
  const five = l.percentiles(clock.window('5m').slots);
  assert.equal(five.count, 200);
  near(five.p50, 100);
  near(five.p99, 1000);
  near(five.max, 1000);
  const first = l.percentiles(clock.window('1h').buckets.at(-2)!);
  assert.equal(first.count, 100, 'the folded first minute alone');
  near(first.p50, 50);
  near(first.p90, 90);
  near(first.max, 100);
  assert.equal(l.percentiles(clock.window('all').slots).count, 200);
  assert.equal(l.percentiles(clock.window('1m').slots).count, 100);
  l.record(clock, 0);
  l.record(clock, 10 * 3_600_000);
  assert.equal(l.percentiles(clock.window('1m').slots).count, 102, 'out-of-range values are clamped, not dropped');
});

test('per-destination log histogram: the p99 is within 10 % of the exact value', () => {
  const { clock, at } = fakeClock();
  const l = new LogLatencyWindows();
  clock.track(l);
  at(0);
  for (let i = 1; i <= 1000; i++) l.record(clock, i * 2); // 2..2000 ms: exact p99 1980
  const q = l.quantile(clock.window('5m').slots, 0.99);
  assert.equal(q.count, 1000);
  assert.ok(Math.abs(q.value - 1980) / 1980 < 0.1, `p99 ${q.value}`);
  at(120_000);
  assert.equal(l.quantile(clock.window('all').slots, 0.99).value, q.value, 'folded into since start unchanged');
  assert.equal(l.quantile(clock.window('1m').slots, 0.99).count, 0);
});

function exchange(host: string, route: string): Exchange {
  const d: Destination = { host, provider: 'openai', format: 'openai', jurisdiction: 'US', sanctioned: true, tier: 'major', shadow: false, origin: 'http://127.0.0.1:1' };
  const t0 = performance.now() - 50;
  const x = new Exchange('gateway', d, { method: 'POST', path: '/v1/chat/completions', query: '', contentType: 'application/json' }, '10.0.0.1', [], t0);
  x.route = route;
  x.outcome = 'completed';
  x.status = 200;
  x.tEnd = t0 + 50;
  return x;
}

test('labels are bounded: destinations and routes past the limits count under "other"', async () => {
  const stage = await SignalsStage.create({ ...defaultConfig().signals, max_destinations: 2, max_routes: 1 }, { audit: null });
  try {
    for (const [host, route] of [['a.example', 'r1'], ['b.example', 'r1'], ['c.example', 'r2'], ['d.example', 'r3'], ['a.example', 'r2']] as const) {
      stage.complete(exchange(host, route));
    }
    const m = parseMetrics(await renderMetrics(stage));
    assert.equal(sample(m, 'sluice_requests_total', { destination: 'a.example', route: 'r1', decision: 'allow' }), 1);
    assert.equal(sample(m, 'sluice_requests_total', { destination: 'a.example', route: 'other', decision: 'allow' }), 1);
    assert.equal(sample(m, 'sluice_requests_total', { destination: 'other', route: 'other', decision: 'allow' }), 2);
    assert.equal(sample(m, 'sluice_outcomes_total', { destination: 'other', outcome: 'completed' }), 2);
    assert.equal([...m.keys()].some((k) => k.includes('c.example') || k.includes('"r2"')), false);
    const s = stage.snapshot('5m');
    assert.deepEqual(s.destinations.map((d) => [d.host, d.requests]), [['a.example', 2], ['other', 2], ['b.example', 1]]);
    assert.deepEqual(s.routes.map((r) => [r.route, r.requests]), [['other', 3], ['r1', 2]]);
  } finally {
    await stage.close();
  }
});

test('label values are escaped in the exposition', async () => {
  const stage = await SignalsStage.create(defaultConfig().signals, { audit: null });
  try {
    const x = exchange('a.example', 'r1');
    x.identity = { subject: 's', source: 'jwt', verified: true, jurisdiction: 'E"U\\\n' };
    stage.complete(x);
    const text = await renderMetrics(stage);
    assert.match(text, /sluice_cross_region_total\{from="E\\"U\\\\\\n",to="US"\} 1\n/);
    assert.equal(sample(parseMetrics(text), 'sluice_cross_region_total', { from: 'E"U\\\n', to: 'US' }), 1);
  } finally {
    await stage.close();
  }
});

test('an alert rule without a threshold, or with a rate above 1, stops the start naming the rule', async () => {
  const base = defaultConfig().signals;
  await assert.rejects(SignalsStage.create({ ...base, alerts: [{ id: 'pii', kind: 'pii_rate' }] }, { audit: null }), {
    code: 'SLUICE_CONFIG_INVALID',
    message: /signals\.alerts\[0\] \(pii\): kind pii_rate needs a threshold/,
  });
  await assert.rejects(SignalsStage.create({ ...base, alerts: [{ id: 'f', kind: 'failure_rate', threshold: 5 }] }, { audit: null }), {
    code: 'SLUICE_CONFIG_INVALID',
    message: /fraction from 0 to 1, got 5/,
  });
  await assert.rejects(SignalsStage.create({ ...base, webhook: { url: 'http://127.0.0.1:1/', token_file: '/nonexistent/token' } }, { audit: null }), {
    code: 'SLUICE_CONFIG_INVALID',
    message: /signals\.webhook\.token_file: \/nonexistent\/token cannot be read/,
  });
});
