// GET /metrics: Sluice's families written from the stage's own counters, then the process metrics from prom-client.
// prom-client formats about 100 series/ms here; 100 destinations × 50 routes is ~16k series, so Sluice writes its own.

import { Registry, collectDefaultMetrics } from 'prom-client';
import { CATEGORIES } from '../detect/categories';
import { ATTEMPT_ACTIONS, DECISIONS, OUTCOMES, STATUS_CLASSES, labelValue, type BucketCounts } from './aggregates';
import type { SignalsStage } from './stage';

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** Every family Sluice exports (process metrics aside): the dashboard test checks its queries against this list. */
export const METRIC_NAMES = [
  'sluice_requests_total',
  'sluice_outcomes_total',
  'sluice_upstream_responses_total',
  'sluice_failures_total',
  'sluice_findings_total',
  'sluice_exchanges_with_pii_total',
  'sluice_cross_region_total',
  'sluice_jurisdiction_known_total',
  'sluice_unauthorized_attempts_total',
  'sluice_bytes_total',
  'sluice_tokens_total',
  'sluice_destination_info',
  'sluice_alerts_total',
  'sluice_request_duration_seconds',
  'sluice_upstream_ttfb_seconds',
  'sluice_overhead_seconds',
] as const;

/** Process metrics (CPU, memory, event loop lag, GC) belong to the process, not to one Sluice: registered once. */
let processRegistry: Registry | null = null;

function head(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
}

/** The text exposition (format 0.0.4) of the stage's signals and the process. */
export async function renderMetrics(stage: SignalsStage): Promise<string> {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return sluiceMetrics(stage) + (await processRegistry.metrics());
}

function sluiceMetrics(stage: SignalsStage): string {
  const { destinations: dests, routes, flows } = stage;
  // Strings are built by concatenation: V8 joins the pieces once, when the response is written.
  let o = head('sluice_requests_total', 'counter', 'Exchanges by destination host, route and policy decision (the stronger of the request and response verdicts).');
  for (const d of dests) {
    for (let ri = 0; ri < d.requests.length; ri++) {
      const cell = d.requests[ri];
      if (!cell) continue;
      for (let i = 0; i < DECISIONS.length; i++) {
        if (cell[i]! > 0) o += (d.requestLines[ri * 4 + i] ??= `sluice_requests_total{destination="${d.label}",route="${routes[ri]!.label}",decision="${DECISIONS[i]}"} `) + num(cell[i]!) + '\n';
      }
    }
  }
  o += head('sluice_outcomes_total', 'counter', 'Exchanges by destination host and how they ended (completed, blocked, upstream_error, tunnelled, denied, ...).');
  for (const d of dests) o += perDestination('sluice_outcomes_total', d.label, 'outcome', OUTCOMES, d.outcomes);
  o += head('sluice_upstream_responses_total', 'counter', 'Upstream responses by destination host and status class.');
  for (const d of dests) o += perDestination('sluice_upstream_responses_total', d.label, 'status_class', STATUS_CLASSES, d.statusClasses);
  o += head('sluice_failures_total', 'counter', 'Failed exchanges by destination host: 5xx answers, upstream errors and aborts, client aborts, cut at shutdown, failed client handshakes (not blocks or denials).');
  for (const d of dests) if (d.failures > 0) o += `sluice_failures_total{destination="${d.label}"} ${num(d.failures)}\n`;
  o += head('sluice_findings_total', 'counter', 'Detector findings in requests and responses, by route and category.');
  for (const r of routes) {
    for (let i = 0; i < CATEGORIES.length; i++) if (r.findings[i]! > 0) o += `sluice_findings_total{route="${r.label}",category="${CATEGORIES[i]}"} ${r.findings[i]}\n`;
  }
  o += head('sluice_exchanges_with_pii_total', 'counter', 'Exchanges with at least one PII finding in the request or the response, by route.');
  for (const r of routes) o += `sluice_exchanges_with_pii_total{route="${r.label}"} ${r.withPii}\n`;
  o += head('sluice_cross_region_total', 'counter', "Exchanges whose caller's jurisdiction (identity, else signals.home_jurisdiction) differs from the destination's.");
  for (const f of flows) o += `sluice_cross_region_total{from="${f.fromLabel}",to="${f.toLabel}"} ${f.total}\n`;
  o += head('sluice_jurisdiction_known_total', 'counter', "Exchanges whose caller's and destination's jurisdictions are both known: the base of the cross-region share.");
  o += `sluice_jurisdiction_known_total ${num(stage.judged)}\n`;
  o += head('sluice_unauthorized_attempts_total', 'counter', 'Exchanges to an unsanctioned or shadow AI destination, denied CONNECTs and route allow-list violations, by what Sluice did.');
  for (const d of dests) o += perDestination('sluice_unauthorized_attempts_total', d.label, 'action', ATTEMPT_ACTIONS, d.attempts);
  o += head('sluice_bytes_total', 'counter', 'Body bytes by destination host: up (client to provider, as received), down (provider to client).');
  for (const d of dests) o += perDestination('sluice_bytes_total', d.label, 'direction', ['up', 'down'], d.bytes);
  o += head('sluice_tokens_total', 'counter', 'Tokens the provider reported, by destination host and direction.');
  for (const d of dests) o += perDestination('sluice_tokens_total', d.label, 'direction', ['input', 'output'], d.tokens);
  o += head('sluice_destination_info', 'gauge', 'One series per destination label: provider, sanctioned, shadow (a long-tail AI host nobody approved) and jurisdiction, for joins.');
  for (const d of dests) {
    o += `sluice_destination_info{destination="${d.label}",provider="${labelValue(d.provider)}",sanctioned="${d.sanctioned}",shadow="${d.shadow}",jurisdiction="${labelValue(d.jurisdiction)}"} 1\n`;
  }
  o += head('sluice_alerts_total', 'counter', 'Alerts fired, by signals.alerts rule and kind.');
  for (const [rule, a] of stage.alerts.firedByRule()) o += `sluice_alerts_total{rule="${labelValue(rule)}",kind="${a.kind}"} ${a.count}\n`;
  o += head('sluice_request_duration_seconds', 'histogram', 'Exchange duration, request accepted to last byte to the client, by destination host.');
  for (const d of dests) o += histogram('sluice_request_duration_seconds', `destination="${d.label}",`, d.duration);
  o += head('sluice_upstream_ttfb_seconds', 'histogram', 'Upstream request sent to response head received, by destination host.');
  for (const d of dests) o += histogram('sluice_upstream_ttfb_seconds', `destination="${d.label}",`, d.ttfb);
  o += head('sluice_overhead_seconds', 'histogram', "Sluice's own time per exchange: its code plus the inspection the client waited for.");
  o += histogram('sluice_overhead_seconds', '', stage.overhead);
  return o;
}

/** Counts are integral doubles; below 2^31 they print faster as small integers. */
function num(v: number): number {
  return v < 0x7fffffff ? v | 0 : v;
}

function perDestination(name: string, destination: string, label: string, values: readonly string[], counts: Float64Array): string {
  let o = '';
  for (let i = 0; i < values.length; i++) if (counts[i]! > 0) o += `${name}{destination="${destination}",${label}="${values[i]}"} ${num(counts[i]!)}\n`;
  return o;
}

/** `labels` is empty or ends with a comma, so `le` follows it. */
function histogram(name: string, labels: string, h: BucketCounts): string {
  if (h.count === 0) return '';
  let o = '';
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i]!;
    o += `${name}_bucket{${labels}le="${h.bounds[i]}"} ${num(cumulative)}\n`;
  }
  const plain = labels === '' ? '' : `{${labels.slice(0, -1)}}`;
  return `${o}${name}_bucket{${labels}le="+Inf"} ${h.count}\n${name}_sum${plain} ${h.sum}\n${name}_count${plain} ${h.count}\n`;
}
