// Alert rules against measurements the test controls: per-subject firing and re-arming, min_requests, p99 and
// failure-rate messages, the audit callback, a webhook that is down (counted and logged, never thrown), and the
// p99-widening rule over a stage fed exchanges on its own clock.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { performance } from 'node:perf_hooks';
import { defaultConfig, type AlertRuleSpec } from '../../src/config/schema';
import { DestinationRegistry } from '../../src/destinations/registry';
import { Exchange } from '../../src/pipeline/exchange';
import { Alerts, type Measurement } from '../../src/signals/alerts';
import { SignalsStage } from '../../src/signals/stage';

/** A source whose measurements the test sets per rule id. */
function source(): { measure: (rule: AlertRuleSpec) => Measurement[]; set: (id: string, m: Measurement[]) => void } {
  const values = new Map<string, Measurement[]>();
  return { measure: (rule) => values.get(rule.id) ?? [], set: (id, m) => values.set(id, m) };
}

/** A port nothing listens on: bound, noted, closed. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('each subject fires once above the threshold with enough exchanges, and re-arms when it drops', async () => {
  const src = source();
  const records: Array<Record<string, unknown>> = [];
  const rules: AlertRuleSpec[] = [
    { id: 'flaky', kind: 'failure_rate', threshold: 0.2, min_requests: 5 },
    { id: 'slow', kind: 'p99', threshold: 2000, window: '1h', destination: 'api.openai.com' },
  ];
  const alerts = new Alerts(rules, src, { audit: (json) => records.push(JSON.parse(json) as Record<string, unknown>), webhook: null, token: null });
  try {
    src.set('flaky', [
      { subject: 'a.example', requests: 4, value: 1 }, // too few to judge
      { subject: 'b.example', requests: 50, value: 0.3 },
      { subject: 'c.example', requests: 50, value: 0.2 }, // at the threshold: not above
    ]);
    src.set('slow', [{ subject: 'api.openai.com', requests: 10, value: 2500 }]);
    alerts.evaluate();
    alerts.evaluate();
    assert.deepEqual(records.map((r) => [r.rule, r.subject]), [['flaky', 'b.example'], ['slow', 'api.openai.com']]);
    assert.equal(records[0]!.message, '30% of exchanges to b.example failed over 5m (threshold 20%, 50 exchanges)');
    assert.equal(records[1]!.message, 'p99 latency 2500 ms to api.openai.com over 1h (threshold 2000 ms, 10 exchanges)');
    assert.deepEqual([records[1]!.type, records[1]!.v, records[1]!.window, records[1]!.value, records[1]!.threshold], ['alert', 1, '1h', 2500, 2000]);

    src.set('flaky', [{ subject: 'b.example', requests: 50, value: 0.1 }]);
    alerts.evaluate(); // b went below: re-armed
    src.set('flaky', [{ subject: 'b.example', requests: 50, value: 0.5 }, { subject: 'a.example', requests: 5, value: 0.4 }]);
    alerts.evaluate();
    assert.deepEqual(records.slice(2).map((r) => [r.rule, r.subject, r.value]), [['flaky', 'b.example', 0.5], ['flaky', 'a.example', 0.4]]);
    assert.deepEqual(alerts.stats(), { fired: 4, webhook: { sent: 0, failed: 0 } });
    assert.deepEqual([...alerts.firedByRule()], [['flaky', { kind: 'failure_rate', count: 3 }], ['slow', { kind: 'p99', count: 1 }]]);
    assert.deepEqual(alerts.recent(0).map((a) => a.subject), ['a.example', 'b.example', 'api.openai.com', 'b.example']);
  } finally {
    await alerts.close();
  }
});

test('a webhook that cannot be reached is counted and logged; the alert still reaches the audit log', async () => {
  const src = source();
  let audited = 0;
  const alerts = new Alerts([{ id: 'shadow', kind: 'new_unsanctioned' }], src, {
    audit: () => audited++,
    webhook: `http://127.0.0.1:${await deadPort()}/hook`,
    token: 't',
  });
  const logged: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    logged.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    assert.doesNotThrow(() => alerts.newUnsanctioned('api.deepseek.com', 'deepseek', true));
    await alerts.close(); // waits for the delivery attempt
  } finally {
    process.stderr.write = write;
  }
  assert.equal(audited, 1);
  assert.deepEqual(alerts.stats(), { fired: 1, webhook: { sent: 0, failed: 1 } });
  assert.ok(logged.some((l) => l.includes('"msg":"alert webhook failed"') && l.includes('/hook')));
  assert.match(alerts.recent(0)[0]!.message, /first exchange to shadow AI destination api\.deepseek\.com \(deepseek\)/);
});

test('an audit log that refuses the record (closed) does not stop the alert', async () => {
  const alerts = new Alerts([{ id: 'shadow', kind: 'new_unsanctioned' }], source(), {
    audit: () => {
      throw new Error('the audit log is closed');
    },
    webhook: null,
    token: null,
  });
  const write = process.stderr.write.bind(process.stderr);
  const logged: string[] = [];
  process.stderr.write = ((chunk: string) => logged.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    alerts.newUnsanctioned('x.example', 'x', false);
  } finally {
    process.stderr.write = write;
    await alerts.close();
  }
  assert.equal(alerts.stats().fired, 1);
  assert.ok(logged.some((l) => l.includes('alert not recorded in the audit log')));
});

test('p99_widening: the last minute p99 against the hour fires when the tail widens, not on a steady slow tail', async () => {
  const config = defaultConfig();
  config.signals.alerts = [{ id: 'tail', kind: 'p99_widening', threshold: 2, window: '1m' }];
  const records: string[] = [];
  const stage = await SignalsStage.create(config.signals, { audit: (json) => records.push(json) });
  const registry = new DestinationRegistry(config);
  const start = performance.now();
  /** An exchange that ended `atS` seconds from now and took `ms`: the stage's clock follows exchange end times. */
  const exchange = (atS: number, ms: number) => {
    const end = start + atS * 1000;
    const x = new Exchange('gateway', registry.byHost('api.openai.com'), { method: 'POST', path: '/v1/chat/completions', query: '', contentType: 'application/json' }, '127.0.0.1', [], end - ms);
    x.tEnd = end;
    x.outcome = 'completed';
    x.status = 200;
    stage.complete(x);
  };
  try {
    // Forty minutes of 10 ms calls with a steady 0.5% at 80 ms: a tail, but the usual one.
    for (let i = 0; i < 4800; i++) exchange(i * 0.5, i % 200 === 0 ? 80 : 10);
    stage.alerts.evaluate();
    assert.equal(stage.alerts.recent(0).length, 0, 'a steady tail does not fire');
    // Then a minute where a third of the calls take 400 ms.
    for (let i = 0; i < 90; i++) exchange(2400 + i * 0.5, i % 3 === 0 ? 400 : 10);
    stage.alerts.evaluate();
    const fired = stage.alerts.recent(0);
    assert.equal(fired.length, 1);
    assert.equal(fired[0]!.kind, 'p99_widening');
    assert.ok(fired[0]!.value >= 4, `ratio ${fired[0]!.value}`);
    assert.match(fired[0]!.message, /p99 latency over all destinations over 1m is [\d.]+× its last hour value \(threshold 2×/);
    assert.equal(JSON.parse(records[0]!).kind, 'p99_widening');
  } finally {
    await stage.close();
  }
});

test('p99_widening needs a threshold: the start is refused naming the rule', async () => {
  const config = defaultConfig();
  config.signals.alerts = [{ id: 'tail', kind: 'p99_widening' }];
  await assert.rejects(SignalsStage.create(config.signals, { audit: null }), /signals\.alerts\[0\] \(tail\): kind p99_widening needs a threshold \(a ratio/);
});
