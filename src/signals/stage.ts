// The signals stage: every completed exchange, of every front door and outcome, is counted into bounded
// aggregates (per destination, route, decision, outcome, cross-region flow) and latency windows, read by /metrics and /signals.

import { performance } from 'node:perf_hooks';
import type { AlertRuleSpec, SignalsConfig } from '../config/schema';
import { readSecretFile } from '../config/secret';
import { CATEGORIES } from '../detect/categories';
import type { Destination } from '../destinations/registry';
import { SluiceError } from '../errors';
import { log } from '../log';
import type { Decision, Exchange, ExchangeFinding } from '../pipeline/exchange';
import type { Stage } from '../pipeline/pipeline';
import {
  BucketCounts,
  CATEGORY_INDEX,
  D_BLOCKED,
  D_DENIED,
  D_FAILURES,
  D_REQUESTS,
  DECISION_INDEX,
  DENY,
  DestinationStats,
  FlowStats,
  OTHER,
  OUTCOME_INDEX,
  OVERHEAD_BUCKETS_S,
  R_FINDINGS,
  R_REQUESTS,
  R_WITH_PII,
  RouteStats,
  T,
  T_FIELDS,
  type DecisionAction,
} from './aggregates';
import { callerJurisdiction, comparable, isFailure, isUnauthorized, overheadMs } from './definitions';
import { Alerts, type AlertsStats, type Measurement } from './alerts';
import type { DestinationSignal, RouteSignal, SignalsSnapshot, SignalsWindow, UnauthorizedAttempt } from './types';
import { Clock, LatencyWindows, monotonicNow, WindowedCounters } from './windows';

export const SIGNALS_WINDOWS: readonly SignalsWindow[] = ['1m', '5m', '1h', 'all'];

/** Most recent unauthorised attempts kept with who and where. */
const RECENT_ATTEMPTS = 100;
/** Distinct cross-region (from, to) pairs tracked; beyond, they count under other → other. */
const MAX_FLOWS = 100;
const PII = CATEGORY_INDEX.pii;
const TIME_ORIGIN = performance.timeOrigin;
const RANK: Readonly<Record<DecisionAction, number>> = { allow: 0, alert: 1, redact: 2, block: 3 };

/** One unauthorised attempt, kept in a ring of preallocated slots (overwritten in place). */
class Attempt {
  time = 0;
  exchangeId = '';
  subject = '';
  client = '';
  host = '';
  provider = '';
  action = '';
  reason = '';
}

export interface SignalsStageOptions {
  /** Appends one audit record (an alert); null when the audit log is off. */
  audit: ((json: string) => void) | null;
}

export class SignalsStage implements Stage {
  readonly name = 'signals';
  readonly clock: Clock;
  readonly alerts: Alerts;
  private readonly startedAt: number;
  private readonly maxDestinations: number;
  private readonly maxRoutes: number;
  private readonly home: string | null;
  private readonly destinationsByHost = new Map<string, DestinationStats>();
  /** Every destination label in first-seen order, `other` last once it exists (read by /metrics). */
  readonly destinations: DestinationStats[] = [];
  private otherDestination: DestinationStats | null = null;
  private readonly routesByName = new Map<string, RouteStats>();
  readonly routes: RouteStats[] = [];
  private otherRoute: RouteStats | null = null;
  private readonly flowsByFrom = new Map<string, Map<string, FlowStats>>();
  readonly flows: FlowStats[] = [];
  private otherFlow: FlowStats | null = null;
  readonly totals = new WindowedCounters(T_FIELDS);
  /** Exchanges whose caller and destination jurisdictions are both known, since start: the base of the cross-region share. */
  judged = 0;
  readonly latency: { readonly total: LatencyWindows; readonly ttfb: LatencyWindows; readonly overhead: LatencyWindows };
  /** Sluice's own time per exchange, for the Prometheus histogram (one series: it is not about a destination). */
  readonly overhead = new BucketCounts(OVERHEAD_BUCKETS_S);
  private readonly attempts: Attempt[] = Array.from({ length: RECENT_ATTEMPTS }, () => new Attempt());
  private attemptsNext = 0;
  /** Unsanctioned or shadow hosts seen since start, for new_unsanctioned alerts (null without such a rule). */
  private readonly seenUnsanctioned: Set<string> | null;

  private constructor(config: SignalsConfig, alerts: (stage: SignalsStage) => Alerts) {
    this.clock = new Clock();
    this.startedAt = this.clock.now();
    this.maxDestinations = config.max_destinations;
    this.maxRoutes = config.max_routes;
    this.home = config.home_jurisdiction;
    this.latency = { total: new LatencyWindows(), ttfb: new LatencyWindows(), overhead: new LatencyWindows() };
    for (const w of [this.totals, this.latency.total, this.latency.ttfb, this.latency.overhead]) this.clock.track(w);
    this.seenUnsanctioned = config.alerts.some((r) => r.kind === 'new_unsanctioned') ? new Set() : null;
    this.alerts = alerts(this);
  }

  /** Checks the alert rules and reads the webhook token; a bad rule or an unreadable file stops the start. */
  static async create(config: SignalsConfig, opts: SignalsStageOptions): Promise<SignalsStage> {
    config.alerts.forEach(checkRule);
    const file = config.webhook.token_file;
    let token: string | null = null;
    if (file !== null) {
      if (config.webhook.url === null) throw new SluiceError('SLUICE_CONFIG_INVALID', 'signals.webhook.token_file is set but signals.webhook.url is not');
      token = await readSecretFile(file, 'signals.webhook.token_file');
    }
    return new SignalsStage(config, (stage) => new Alerts(config.alerts, stage, { audit: opts.audit, webhook: config.webhook.url, token }));
  }

  complete(x: Exchange): void {
    // The relay stamped tEnd just now: no clock read of our own.
    this.clock.advance(TIME_ORIGIN + (x.tEnd || x.t0));
    const d = this.destination(x.destination);
    // Latencies are final now; `ownMs + inspectMs` must be read now too, before the response scan adds to inspectMs.
    this.recordLatency(x, d);
    const scan = x.responseInspection;
    if (scan) {
      // Findings on the response (and policy's verdict on them) are known once the scan settles, as for the audit record.
      const count = () => {
        try {
          this.clock.advance(monotonicNow());
          this.count(x, this.destination(x.destination));
        } catch (err) {
          // Outside the pipeline's guard: a bug here must cost this exchange's counts, not the process.
          log('error', 'signals: exchange not counted', { exchange: x.id, error: (err as Error).message });
        }
      };
      scan.then(count, count);
    } else this.count(x, d);
  }

  /**
   * Sluice's overhead is `ownMs` (its own code: parsing, stages, relaying) plus the inspection the client waited for
   * (`inspectMs` at completion: the request scan, and the response scan of a held response). A scan inline on the
   * event loop counts in both, so this is an upper bound by at most that scan (a few hundred µs at most).
   */
  private recordLatency(x: Exchange, d: DestinationStats): void {
    const o = x.outcome;
    // Connection-level events (a tunnel, a refused CONNECT, a failed handshake) carry no request to time.
    if (o === 'tunnelled' || o === 'denied' || o === 'client_tls_failed') return;
    const clock = this.clock;
    const total = (x.tEnd || x.t0) - x.t0;
    this.latency.total.record(clock, total);
    d.latency.record(clock, total);
    d.duration.observe(total / 1000);
    if (x.tUpstreamHead > 0 && x.tUpstreamStart > 0) {
      const ttfb = x.tUpstreamHead - x.tUpstreamStart;
      this.latency.ttfb.record(clock, ttfb);
      d.ttfb.observe(ttfb / 1000);
    }
    const own = overheadMs(x.ownMs, x.inspectMs);
    this.latency.overhead.record(clock, own);
    this.overhead.observe(own / 1000);
  }

  private count(x: Exchange, d: DestinationStats): void {
    const clock = this.clock;
    const t = this.totals;
    const r = this.route(x.route);
    const action = strongest(x.decision, x.responseDecision);
    const ai = DECISION_INDEX[action];
    (d.requests[r.index] ??= new Float64Array(4))[ai]!++;
    t.add(clock, T.requests, 1);
    t.add(clock, T.allowed + ai, 1);
    d.window.add(clock, D_REQUESTS, 1);
    r.window.add(clock, R_REQUESTS, 1);
    if (ai === 3) d.window.add(clock, D_BLOCKED, 1);

    const outcome = x.outcome;
    const oi = OUTCOME_INDEX[outcome];
    if (oi !== undefined) d.outcomes[oi]!++;
    const status = x.status;
    if (status >= 200 && status < 600) d.statusClasses[((status / 100) | 0) - 2]!++;
    if (isFailure(outcome, status)) {
      d.failures++;
      t.add(clock, T.failed, 1);
      d.window.add(clock, D_FAILURES, 1);
    }
    if (outcome === 'tunnelled') t.add(clock, T.tunnelled, 1);
    else if (outcome === 'denied') {
      t.add(clock, T.denied, 1);
      d.window.add(clock, D_DENIED, 1);
    }

    const up = x.requestBytes;
    const down = x.responseBytes;
    d.bytes[0]! += up;
    d.bytes[1]! += down;
    t.add(clock, T.bytes_up, up);
    t.add(clock, T.bytes_down, down);
    const usage = x.response?.usage;
    if (usage) {
      const i = usage.inputTokens ?? 0;
      const o = usage.outputTokens ?? 0;
      d.tokens[0]! += i;
      d.tokens[1]! += o;
      t.add(clock, T.input_tokens, i);
      t.add(clock, T.output_tokens, o);
    }

    const pii = this.findings(r, x.requestFindings) | this.findings(r, x.responseFindings);
    if (pii) {
      r.withPii++;
      r.window.add(clock, R_WITH_PII, 1);
    }

    const dest = x.destination;
    const from = callerJurisdiction(x.identity?.jurisdiction, this.home);
    const to = dest.jurisdiction;
    if (comparable(from, to)) {
      this.judged++;
      t.add(clock, T.judged, 1);
      if (from !== to) {
        t.add(clock, T.cross_region, 1);
        const f = this.flow(from!, to);
        f.total++;
        f.window.add(clock, 0, 1);
      }
    }

    const unsanctioned = (dest.tier === 'major' || dest.tier === 'long-tail') && !dest.sanctioned;
    const denied = outcome === 'denied';
    const rule = x.decision.rule;
    if (isUnauthorized(dest.tier, dest.sanctioned, outcome, rule)) {
      this.attempt(x, d, denied, unsanctioned);
      if (unsanctioned && this.seenUnsanctioned && !this.seenUnsanctioned.has(dest.host)) this.firstSeen(dest);
    }
  }

  /** Counts the findings by category; 1 when one of them is PII (a number, so both lists are always counted). */
  private findings(r: RouteStats, list: readonly ExchangeFinding[] | null): number {
    if (list === null) return 0;
    let pii = 0;
    for (let i = 0; i < list.length; i++) {
      const c = CATEGORY_INDEX[list[i]!.category];
      r.findings[c]!++;
      r.window.add(this.clock, R_FINDINGS + c, 1);
      if (c === PII) pii = 1;
    }
    return pii;
  }

  private attempt(x: Exchange, d: DestinationStats, denied: boolean, unsanctioned: boolean): void {
    const decision = x.decision;
    const ai = denied ? DENY : DECISION_INDEX[decision.action];
    d.attempts[ai]!++;
    this.totals.add(this.clock, T.unauthorized, 1);
    const a = this.attempts[this.attemptsNext]!;
    this.attemptsNext = (this.attemptsNext + 1) % RECENT_ATTEMPTS;
    const dest = x.destination;
    a.time = x.startedAt;
    a.exchangeId = x.id;
    a.subject = x.identity?.subject ?? '';
    a.client = x.clientAddress;
    a.host = dest.host;
    a.provider = dest.provider;
    a.action = denied ? 'deny' : decision.action;
    a.reason =
      decision.reason ??
      (denied ? (x.error?.message ?? 'refused by interception config') : unsanctioned ? (dest.shadow ? 'shadow AI destination nobody approved' : 'AI provider outside destinations.sanctioned') : 'outside the route allow-list');
  }

  private firstSeen(dest: Destination): void {
    // Bounded: hosts come from requests (an Azure resource name is anyone's choice); past this, no more first sightings.
    if (this.seenUnsanctioned!.size >= 10_000) return;
    this.seenUnsanctioned!.add(dest.host);
    this.alerts.newUnsanctioned(dest.host, dest.provider, dest.shadow);
  }

  private destination(dest: Destination): DestinationStats {
    const found = this.destinationsByHost.get(dest.host);
    if (found) return found;
    if (this.destinationsByHost.size >= this.maxDestinations) {
      if (!this.otherDestination) {
        this.otherDestination = new DestinationStats(null, this.clock);
        this.destinations.push(this.otherDestination);
      }
      return this.otherDestination;
    }
    const d = new DestinationStats(dest, this.clock);
    this.destinationsByHost.set(dest.host, d);
    this.destinations.push(d);
    return d;
  }

  private route(name: string): RouteStats {
    const found = this.routesByName.get(name);
    if (found) return found;
    if (this.routesByName.size >= this.maxRoutes) {
      if (!this.otherRoute) {
        this.otherRoute = new RouteStats(this.routes.length, OTHER, this.clock);
        this.routes.push(this.otherRoute);
      }
      return this.otherRoute;
    }
    const r = new RouteStats(this.routes.length, name, this.clock);
    this.routesByName.set(name, r);
    this.routes.push(r);
    return r;
  }

  private flow(from: string, to: string): FlowStats {
    let byTo = this.flowsByFrom.get(from);
    const found = byTo?.get(to);
    if (found) return found;
    if (this.flows.length - (this.otherFlow ? 1 : 0) >= MAX_FLOWS) {
      if (!this.otherFlow) {
        this.otherFlow = new FlowStats(OTHER, OTHER, this.clock);
        this.flows.push(this.otherFlow);
      }
      return this.otherFlow;
    }
    const f = new FlowStats(from, to, this.clock);
    if (!byTo) this.flowsByFrom.set(from, (byTo = new Map()));
    byTo.set(to, f);
    this.flows.push(f);
    return f;
  }

  /** The six signals over a window (GET /signals). */
  snapshot(window: SignalsWindow = '5m'): SignalsSnapshot {
    const now = this.clock.now();
    const ws = this.clock.window(window, now);
    const { slots, buckets } = ws;
    const total = (field: number) => this.totals.sum(slots, field);
    const since = window === 'all' ? -Infinity : ws.starts[0]!;

    const destinations: DestinationSignal[] = [];
    for (const d of this.destinations) {
      const requests = d.window.sum(slots, D_REQUESTS);
      if (requests === 0) continue;
      const failures = d.window.sum(slots, D_FAILURES);
      destinations.push({
        host: d.host,
        provider: d.provider,
        sanctioned: d.sanctioned,
        shadow: d.shadow,
        jurisdiction: d.jurisdiction,
        requests,
        failures,
        failure_rate: rate(failures, requests),
        blocked: d.window.sum(slots, D_BLOCKED),
        denied: d.window.sum(slots, D_DENIED),
        p99_ms: d.latency.quantile(slots, 0.99).value,
        trend: buckets.map((b) => d.window.sum(b, D_REQUESTS)),
      });
    }
    destinations.sort((a, b) => b.requests - a.requests);

    const routes: RouteSignal[] = [];
    for (const r of this.routes) {
      const requests = r.window.sum(slots, R_REQUESTS);
      if (requests === 0) continue;
      const withPii = r.window.sum(slots, R_WITH_PII);
      const findings: Record<string, number> = {};
      CATEGORIES.forEach((c, i) => (findings[c] = r.window.sum(slots, R_FINDINGS + i)));
      routes.push({ route: r.name, requests, with_pii: withPii, pii_rate: rate(withPii, requests), findings });
    }
    routes.sort((a, b) => b.requests - a.requests);

    const flows = this.flows
      .map((f) => ({ from: f.from, to: f.to, count: f.window.sum(slots, 0) }))
      .filter((f) => f.count > 0)
      .sort((a, b) => b.count - a.count);

    const recent: UnauthorizedAttempt[] = [];
    for (let i = 1; i <= RECENT_ATTEMPTS; i++) {
      const a = this.attempts[(this.attemptsNext - i + RECENT_ATTEMPTS) % RECENT_ATTEMPTS]!;
      if (a.time === 0) break;
      // Ordered by completion, stamped at arrival: a long exchange may sit after later ones, so filter, don't stop.
      if (a.time < since) continue;
      recent.push({
        time: new Date(a.time).toISOString(),
        exchange_id: a.exchangeId,
        subject: a.subject,
        client: a.client,
        host: a.host,
        provider: a.provider,
        action: a.action,
        reason: a.reason,
      });
    }

    const lat = this.latency;
    return {
      generated_at: new Date(now).toISOString(),
      uptime_s: Math.round((now - this.startedAt) / 1000),
      window,
      bucket_s: ws.bucketMs / 1000,
      totals: {
        requests: total(T.requests),
        allowed: total(T.allowed),
        alerted: total(T.alerted),
        redacted: total(T.redacted),
        blocked: total(T.blocked),
        failed: total(T.failed),
        tunnelled: total(T.tunnelled),
        denied: total(T.denied),
        bytes_up: total(T.bytes_up),
        bytes_down: total(T.bytes_down),
        input_tokens: total(T.input_tokens),
        output_tokens: total(T.output_tokens),
      },
      destinations,
      routes,
      cross_region: { exchanges: total(T.cross_region), share: rate(total(T.cross_region), total(T.judged)), flows },
      latency: {
        total: lat.total.percentiles(slots),
        upstream_ttfb: lat.ttfb.percentiles(slots),
        overhead: lat.overhead.percentiles(slots),
        series: buckets.map((b, i) => {
          const p = lat.total.percentiles(b);
          return { t: Math.floor(ws.starts[i]! / 1000), count: p.count, p50: p.p50, p90: p.p90, p99: p.p99, p999: p.p999 };
        }),
      },
      unauthorized: { attempts: total(T.unauthorized), recent },
      alerts: this.alerts.recent(since),
    };
  }

  /** What an alert rule looks at, per subject, over its window. */
  measure(rule: AlertRuleSpec, window: SignalsWindow): Measurement[] {
    const { slots } = this.clock.window(window);
    const out: Measurement[] = [];
    if (rule.kind === 'pii_rate') {
      for (const r of this.routes) {
        if (rule.route !== undefined && r.name !== rule.route) continue;
        const requests = r.window.sum(slots, R_REQUESTS);
        out.push({ subject: r.name, requests, value: rate(r.window.sum(slots, R_WITH_PII), requests) });
      }
    } else if (rule.kind === 'failure_rate') {
      for (const d of this.destinations) {
        if (rule.destination !== undefined && d.host !== rule.destination) continue;
        const requests = d.window.sum(slots, D_REQUESTS);
        out.push({ subject: d.host, requests, value: rate(d.window.sum(slots, D_FAILURES), requests) });
      }
    } else if (rule.kind === 'p99') {
      const m = this.p99(rule.destination, slots);
      if (m) out.push(m);
    } else if (rule.kind === 'p99_widening') {
      // The tail against its own recent past: an hour's p99 is the baseline (the whole run's for a 1h window).
      const m = this.p99(rule.destination, slots);
      const base = this.p99(rule.destination, this.clock.window(window === '1h' ? 'all' : '1h').slots);
      if (m && base && base.value > 0) out.push({ subject: m.subject, requests: m.requests, value: Math.round((m.value / base.value) * 100) / 100 });
    }
    return out;
  }

  /** p99 of total latency over `slots`, of all destinations or of one. */
  private p99(destination: string | undefined, slots: readonly number[]): Measurement | null {
    if (destination === undefined) {
      const p = this.latency.total.percentiles(slots);
      return { subject: 'all', requests: p.count, value: p.p99 };
    }
    const d = this.destinationsByHost.get(destination);
    if (!d) return null;
    const q = d.latency.quantile(slots, 0.99);
    return { subject: d.host, requests: q.count, value: q.value };
  }

  stats(): { destinations: number; routes: number; alerts: AlertsStats } {
    return { destinations: this.destinations.length, routes: this.routes.length, alerts: this.alerts.stats() };
  }

  /** Stops the alert timer and waits for webhook deliveries in flight. */
  close(): Promise<void> {
    return this.alerts.close();
  }
}

/** The stronger of the request decision and the verdict on the response (a stream policy cut is a block). */
function strongest(d: Decision, response: Decision | null): DecisionAction {
  return response !== null && RANK[response.action] > RANK[d.action] ? response.action : d.action;
}

const rate = (n: number, of: number): number => (of > 0 ? Math.round((n / of) * 10_000) / 10_000 : 0);

function checkRule(r: AlertRuleSpec, i: number): void {
  const where = `signals.alerts[${i}] (${r.id})`;
  if (r.kind !== 'new_unsanctioned' && r.threshold === undefined) {
    const unit = r.kind === 'p99' ? 'ms' : r.kind === 'p99_widening' ? 'a ratio to the baseline p99, e.g. 2' : 'a fraction from 0 to 1';
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: kind ${r.kind} needs a threshold (${unit})`);
  }
  if ((r.kind === 'pii_rate' || r.kind === 'failure_rate') && r.threshold! > 1) {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: a ${r.kind} threshold is a fraction from 0 to 1, got ${r.threshold}`);
  }
  if (r.route !== undefined && r.kind !== 'pii_rate') throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: route applies to pii_rate only; use destination`);
  if (r.destination !== undefined && r.kind !== 'failure_rate' && r.kind !== 'p99' && r.kind !== 'p99_widening') {
    throw new SluiceError('SLUICE_CONFIG_INVALID', `${where}: destination applies to failure_rate, p99 and p99_widening only`);
  }
}
