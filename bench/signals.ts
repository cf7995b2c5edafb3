// Signals benchmark: the per-exchange cost of recording into the signals stage, against recording the same
// series through prom-client's own counters (the baseline, same run); then /metrics scrape and /signals snapshot
// times with 100 destinations × 50 routes populated. Prints one JSON line.

import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Counter, Histogram, Registry } from 'prom-client';
import { defaultConfig } from '../src/config/schema';
import type { Destination } from '../src/destinations/registry';
import { Exchange, type ExchangeFinding } from '../src/pipeline/exchange';
import { LATENCY_BUCKETS_S, OVERHEAD_BUCKETS_S } from '../src/signals/aggregates';
import { renderMetrics } from '../src/signals/metrics';
import { SignalsStage } from '../src/signals/stage';

const RECORDS = Number(process.env.BENCH_SIGNALS_RECORDS ?? 1_000_000);
const SCRAPES = Number(process.env.BENCH_SIGNALS_SCRAPES ?? 50);
const DESTINATIONS = 100;
const ROUTES = 50;
/** One exchange in this many carries findings (one of them PII); one in this many is blocked. */
const RICH_EVERY = 8;
const BLOCK_EVERY = 16;

function destination(i: number): Destination {
  const tier = i % 10 === 0 ? 'long-tail' : i % 3 === 0 ? 'internal' : 'major';
  const sanctioned = tier !== 'long-tail' && i % 4 !== 0;
  return {
    host: `llm-${i}.provider-${i % 7}.example`,
    provider: `provider-${i % 7}`,
    format: 'openai',
    jurisdiction: i % 2 === 0 ? 'US' : 'EU',
    sanctioned,
    tier,
    shadow: tier === 'long-tail' && !sanctioned,
    origin: 'https://127.0.0.1:1',
  };
}

const finding = (category: 'pii' | 'credential' | 'financial', rule: string): ExchangeFinding => ({
  rule, category, severity: 'high', confidence: 0.9, role: 'user', path: 'messages[1].content', start: 0, end: 10, masked: 'xx******xx',
});
const FINDINGS = [finding('pii', 'email'), finding('credential', 'aws-access-key'), finding('financial', 'iban')];

/** A chat completion as the pipeline leaves it at completion, like bench/audit.ts builds them. */
function exchange(dests: Destination[], i: number): Exchange {
  const rich = i % RICH_EVERY === 0;
  const t0 = performance.now() - 1834;
  const x = new Exchange('gateway', dests[i % dests.length]!, { method: 'POST', path: '/v1/chat/completions', query: '', contentType: 'application/json' }, '10.1.2.3', [], t0);
  x.identity = { subject: `svc-${i % 50}`, source: 'jwt', verified: true, tenant: 'acme', jurisdiction: i % 5 === 0 ? 'EU' : 'US' };
  x.route = `route-${(i * 7) % ROUTES}`;
  x.requestBytes = 2817;
  x.requestFindings = rich ? FINDINGS.slice(0, 1 + (i % 3)) : [];
  x.status = i % 97 === 0 ? 503 : 200;
  x.responseBytes = 5120;
  x.response = {
    parsed: true,
    errors: [],
    text: [{ role: 'assistant', path: 'choices[0].message.content', text: 'Looking that up.' }],
    toolCalls: [],
    usage: { inputTokens: 812, outputTokens: 233, totalTokens: 1045 },
    finishReason: 'stop',
    truncated: false,
  };
  x.responseFindings = [];
  x.decision =
    i % BLOCK_EVERY === 0
      ? { action: 'block', rule: 'content:no-secrets', reason: 'credential', by: 'policy' }
      : rich
        ? { action: 'redact', rule: 'content:mask-pii', reason: 'pii', by: 'policy' }
        : { action: 'allow', by: 'policy' };
  x.outcome = x.decision.action === 'block' ? 'blocked' : 'completed';
  x.inspectMs = 0.41;
  x.tUpstreamStart = t0 + 2;
  x.tUpstreamHead = t0 + 414;
  x.tEnd = t0 + 1834;
  x.ownMs = 0.06;
  return x;
}

/** The same series recorded straight into prom-client metrics, one labelled call per series per exchange. */
function promClientBaseline(): { record: (x: Exchange) => void; registry: Registry } {
  const r = new Registry();
  const c = (name: string, labelNames: string[]) => new Counter({ name, help: name, labelNames, registers: [r] });
  const requests = c('requests_total', ['destination', 'route', 'decision']);
  const outcomes = c('outcomes_total', ['destination', 'outcome']);
  const status = c('upstream_responses_total', ['destination', 'status_class']);
  const findings = c('findings_total', ['route', 'category']);
  const pii = c('exchanges_with_pii_total', ['route']);
  const cross = c('cross_region_total', ['from', 'to']);
  const bytes = c('bytes_total', ['destination', 'direction']);
  const tokens = c('tokens_total', ['destination', 'direction']);
  const duration = new Histogram({ name: 'duration', help: 'd', labelNames: ['destination'], buckets: [...LATENCY_BUCKETS_S], registers: [r] });
  const ttfb = new Histogram({ name: 'ttfb', help: 't', labelNames: ['destination'], buckets: [...LATENCY_BUCKETS_S], registers: [r] });
  const overhead = new Histogram({ name: 'overhead', help: 'o', buckets: [...OVERHEAD_BUCKETS_S], registers: [r] });
  const record = (x: Exchange) => {
    const destination = x.destination.host;
    requests.inc({ destination, route: x.route, decision: x.decision.action });
    outcomes.inc({ destination, outcome: x.outcome });
    status.inc({ destination, status_class: x.status >= 500 ? '5xx' : '2xx' });
    let withPii = false;
    for (const f of x.requestFindings ?? []) {
      findings.inc({ route: x.route, category: f.category });
      withPii ||= f.category === 'pii';
    }
    if (withPii) pii.inc({ route: x.route });
    if (x.identity?.jurisdiction !== x.destination.jurisdiction) cross.inc({ from: x.identity!.jurisdiction!, to: x.destination.jurisdiction });
    bytes.inc({ destination, direction: 'up' }, x.requestBytes);
    bytes.inc({ destination, direction: 'down' }, x.responseBytes);
    tokens.inc({ destination, direction: 'input' }, x.response!.usage!.inputTokens!);
    tokens.inc({ destination, direction: 'output' }, x.response!.usage!.outputTokens!);
    duration.observe({ destination }, (x.tEnd - x.t0) / 1000);
    ttfb.observe({ destination }, (x.tUpstreamHead - x.tUpstreamStart) / 1000);
    overhead.observe((x.ownMs + x.inspectMs) / 1000);
  };
  return { record, registry: r };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const r2 = (n: number) => Math.round(n * 100) / 100;

async function main(): Promise<void> {
  const dests = Array.from({ length: DESTINATIONS }, (_, i) => destination(i));
  const exchanges = Array.from({ length: 4096 }, (_, i) => exchange(dests, i));
  const config = defaultConfig().signals;
  const stage = await SignalsStage.create(config, { audit: null });

  // Warm up both paths so the JIT has compiled them before timing.
  for (let i = 0; i < 50_000; i++) stage.complete(exchanges[i & 4095]!);
  const baseline = promClientBaseline().record;
  for (let i = 0; i < 50_000; i++) baseline(exchanges[i & 4095]!);

  // Rounds, best and median reported: other processes on the machine only ever add time.
  const rounds = (n: number, each: number, run: (i: number) => void): { best: number; median: number } => {
    const ns: number[] = [];
    for (let k = 0; k < n; k++) {
      const t0 = performance.now();
      for (let i = 0; i < each; i++) run(i);
      ns.push(((performance.now() - t0) * 1e6) / each);
    }
    ns.sort((a, b) => a - b);
    return { best: Math.round(ns[0]!), median: Math.round(quantile(ns, 0.5)) };
  };
  const record = rounds(5, RECORDS / 5, (i) => stage.complete(exchanges[i & 4095]!));
  const promClient = rounds(5, Math.min(RECORDS, 300_000) / 5, (i) => baseline(exchanges[i & 4095]!));
  let t: number;

  // Every destination × route pair seen, each with a few decisions and finding categories.
  const populated = await SignalsStage.create(config, { audit: null });
  const promPopulated = promClientBaseline();
  let n = 0;
  for (let d = 0; d < DESTINATIONS; d++) {
    for (let r = 0; r < ROUTES; r++) {
      for (let k = 0; k < 3; k++) {
        const x = exchange(dests, n++);
        (x as { destination: Destination }).destination = dests[d]!;
        x.route = `route-${r}`;
        x.decision = { action: (['allow', 'alert', 'block'] as const)[k]! };
        populated.complete(x);
        promPopulated.record(x);
      }
    }
  }
  for (let i = 0; i < 3; i++) await renderMetrics(populated); // warm-up, not timed
  const scrapeMs: number[] = [];
  let bytes = 0;
  for (let i = 0; i < SCRAPES; i++) {
    t = performance.now();
    const text = await renderMetrics(populated);
    scrapeMs.push(performance.now() - t);
    bytes = text.length;
  }
  scrapeMs.sort((a, b) => a - b);
  // Baseline: prom-client formatting the same series from its own counters.
  await promPopulated.registry.metrics();
  const promScrapeMs: number[] = [];
  for (let i = 0; i < Math.min(SCRAPES, 10); i++) {
    t = performance.now();
    await promPopulated.registry.metrics();
    promScrapeMs.push(performance.now() - t);
  }
  promScrapeMs.sort((a, b) => a - b);
  const snapshot = (w: '5m' | '1h' | 'all') => {
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      t = performance.now();
      JSON.stringify(populated.snapshot(w));
      times.push(performance.now() - t);
    }
    return r2(quantile(times.sort((a, b) => a - b), 0.5));
  };

  process.stdout.write(
    `${JSON.stringify({
      case: 'signals',
      records: RECORDS,
      record_ns_best: record.best,
      record_ns_median: record.median,
      promclient_record_ns_best: promClient.best,
      promclient_record_ns_median: promClient.median,
      scrape_series_lines: (await renderMetrics(populated)).split('\n').filter((l) => l && !l.startsWith('#')).length,
      scrape_bytes: bytes,
      scrape_ms_p50: r2(quantile(scrapeMs, 0.5)),
      scrape_ms_p99: r2(quantile(scrapeMs, 0.99)),
      promclient_scrape_ms_p50: r2(quantile(promScrapeMs, 0.5)),
      snapshot_ms_5m: snapshot('5m'),
      snapshot_ms_1h: snapshot('1h'),
      snapshot_ms_all: snapshot('all'),
      targets: { record_us: 2, scrape_ms: 10 },
      cpu: cpus()[0]?.model ?? 'unknown',
      node: process.version,
    })}\n`,
  );
  await stage.close();
  await populated.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/signals failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
