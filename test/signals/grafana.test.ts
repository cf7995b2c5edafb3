// The Grafana dashboard in the repo: well-formed JSON, one Prometheus data source input, a panel per signal,
// and every metric its queries name is one Sluice exports (so a renamed metric cannot leave a panel empty).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { METRIC_NAMES } from '../../src/signals/metrics';

interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}

// dist/test/signals → the repository root.
const FILE = join(__dirname, '..', '..', '..', 'dashboards', 'grafana-sluice.json');
const dashboard = JSON.parse(readFileSync(FILE, 'utf8')) as {
  __inputs: Array<{ name: string; pluginId: string }>;
  panels: Panel[];
  templating: { list: Array<{ query: { query: string } }> };
};
const queries = dashboard.panels.filter((p) => p.type !== 'row');

test('the dashboard takes its Prometheus data source as the DS_PROMETHEUS input, everywhere', () => {
  assert.deepEqual(dashboard.__inputs.map((i) => [i.name, i.pluginId]), [['DS_PROMETHEUS', 'prometheus']]);
  for (const p of queries) {
    assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${DS_PROMETHEUS}' }, p.title);
    assert.ok(p.targets && p.targets.length > 0, `${p.title} has queries`);
    for (const t of p.targets) assert.equal(t.datasource?.uid, '${DS_PROMETHEUS}', p.title);
  }
});

test('every metric the queries name is exported by Sluice, and every signal has a panel', () => {
  const exprs = [...queries.flatMap((p) => p.targets!.map((t) => t.expr)), ...dashboard.templating.list.map((v) => v.query.query)];
  const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\bsluice_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))));
  const exported = new Set<string>(METRIC_NAMES);
  for (const name of used) assert.ok(exported.has(name), `${name} is not a metric Sluice exports`);
  for (const name of ['sluice_requests_total', 'sluice_destination_info', 'sluice_exchanges_with_pii_total', 'sluice_cross_region_total', 'sluice_failures_total', 'sluice_request_duration_seconds', 'sluice_unauthorized_attempts_total']) {
    assert.ok(used.has(name), `no panel uses ${name}`);
  }
  const titles = queries.map((p) => p.title.toLowerCase()).join('\n');
  for (const signal of [/sanctioned/, /pii/, /cross-region/, /failure rate/, /latency/, /unauthorised/]) assert.match(titles, signal);
  for (const e of exprs) assert.equal((e.match(/\(/g) ?? []).length, (e.match(/\)/g) ?? []).length, `balanced parentheses: ${e}`);
});
