// The record's text is written out by hand for speed; these pin it to what JSON.stringify and Date would write:
// string escaping, arrival times across minutes, and latencies rounded to the microsecond.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { exchangeRecord } from '../../src/audit/record.js';
import { defaultConfig } from '../../src/config/schema.js';
import { DestinationRegistry } from '../../src/destinations/registry.js';
import { Exchange } from '../../src/pipeline/exchange.js';

const registry = new DestinationRegistry(defaultConfig());
const opts = { capture: false, digestKey: randomBytes(32), homeJurisdiction: 'EU' };

function exchange(path = '/v1/chat/completions'): Exchange {
  const x = new Exchange('gateway', registry.byHost('api.openai.com'), { method: 'POST', path, query: '', contentType: 'application/json' }, '10.1.2.3', [], 1000);
  x.outcome = 'completed';
  return x;
}

test('strings are escaped exactly as JSON.stringify escapes them, the ones that need none only quoted', () => {
  const values = ['plain', 'a "quoted" word', 'back\\slash', 'tab\there', 'nul\u0000 and \u001f', 'line\u2028sep', 'Zoë 東京', 'pair 🙂', 'lone \ud800 high', 'lone \udfff low', ''];
  for (const v of values) {
    const x = exchange();
    x.route = v;
    const text = exchangeRecord(x, opts);
    assert.ok(text.includes(`,"route":${JSON.stringify(v)},`), `route ${JSON.stringify(v)}`);
    assert.equal((JSON.parse(text) as { route: string }).route, v);
  }
});

test('time is the arrival as toISOString writes it, across minutes, hours, days and years', () => {
  const times = [Date.UTC(2026, 10, 26, 4, 28, 0, 0), Date.UTC(2026, 10, 26, 4, 28, 59, 999), Date.UTC(2026, 10, 26, 4, 29, 0, 7), Date.UTC(2026, 11, 31, 23, 59, 59, 990), Date.UTC(2027, 0, 1, 0, 0, 0, 40), 0];
  for (let i = 0; i < 200; i++) times.push(Date.UTC(2026, 0, 1) + Math.floor(Math.random() * 4e10));
  for (const t of times) {
    const x = exchange();
    (x as { startedAt: number }).startedAt = t;
    assert.ok(exchangeRecord(x, opts).includes(`,"time":"${new Date(t).toISOString()}",`), new Date(t).toISOString());
  }
});

test('latencies are rounded to the microsecond and written as String(Math.round(ms * 1000) / 1000) writes them', () => {
  const ms = [0, 0.0004, 0.0005, 0.001, 0.1, 0.25, 1, 27.629, 18.97100001, 999.9995, 1834, 86_400_000.123, -0.0004, -2.5];
  for (let i = 0; i < 500; i++) ms.push(Math.random() * 10 ** Math.floor(Math.random() * 7));
  const json = (v: number) => String(Math.round(v * 1000) / 1000);
  for (const v of ms) {
    const x = exchange();
    x.tEnd = x.t0 + v;
    x.inspectMs = v / 3;
    x.ownMs = v / 7;
    const text = exchangeRecord(x, opts);
    const overhead = json(v / 7 + v / 3);
    assert.ok(text.includes(`"latency_ms":{"total":${json(x.latency().totalMs)},"upstream_ttfb":0,"inspection":${json(v / 3)},"own":${json(v / 7)},"overhead":${overhead}}`), `${v} ms`);
  }
});
