// The counters behind /metrics and /signals: one object per destination, route and cross-region flow, created
// once when the label is first seen, so recording an exchange is index arithmetic on typed arrays.

import { CATEGORIES, type Category } from '../detect/categories';
import type { Destination } from '../destinations/registry';
import type { Outcome } from '../pipeline/exchange';
import { LogLatencyWindows, WindowedCounters, type Clock } from './windows';

/** A Prometheus label value in the text format: backslash, double quote and newline escaped. */
export function labelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** The label every destination or route beyond signals.max_destinations / max_routes counts under. */
export const OTHER = 'other';

export const DECISIONS = ['allow', 'alert', 'redact', 'block'] as const;
export type DecisionAction = (typeof DECISIONS)[number];
export const DECISION_INDEX: Readonly<Record<DecisionAction, number>> = { allow: 0, alert: 1, redact: 2, block: 3 };

export const OUTCOMES = [
  'completed',
  'blocked',
  'rejected',
  'upstream_error',
  'upstream_aborted',
  'client_aborted',
  'cut_at_shutdown',
  'tunnelled',
  'denied',
  'client_tls_failed',
] as const satisfies ReadonlyArray<Exclude<Outcome, 'pending'>>;
export const OUTCOME_INDEX: Readonly<Record<string, number>> = Object.fromEntries(OUTCOMES.map((o, i) => [o, i]));

export const STATUS_CLASSES = ['2xx', '3xx', '4xx', '5xx'] as const;

/** What Sluice did with an unauthorised attempt: a policy decision, or `deny` for a refused CONNECT. */
export const ATTEMPT_ACTIONS = ['allow', 'alert', 'redact', 'block', 'deny'] as const;
export const DENY = 4;

export const CATEGORY_INDEX: Readonly<Record<Category, number>> = Object.fromEntries(CATEGORIES.map((c, i) => [c, i])) as Record<Category, number>;

/** Upper bounds (seconds) for the end-to-end and time-to-first-byte histograms: an LLM call takes ms to minutes. */
export const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600] as const;
/** Upper bounds (seconds) for Sluice's own overhead: tens of µs to a slow inspection. */
export const OVERHEAD_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] as const;

/** A Prometheus histogram's state: counts per bucket (not cumulative; the last is +Inf), sum and count. */
export class BucketCounts {
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/** Windowed fields of a destination. */
export const D_REQUESTS = 0;
export const D_FAILURES = 1;
export const D_BLOCKED = 2;
export const D_DENIED = 3;
const D_FIELDS = 4;

export class DestinationStats {
  readonly host: string;
  /** `host` escaped for /metrics, once. */
  readonly label: string;
  readonly provider: string;
  readonly sanctioned: boolean;
  readonly shadow: boolean;
  readonly jurisdiction: string;
  /** Cumulative, for /metrics. `requests[route index]` holds counts per decision, created on first use. */
  readonly requests: Array<Float64Array | undefined> = [];
  /** The /metrics line of `requests[route][decision]` up to its value (at `route * 4 + decision`), made at the first scrape that needs it. */
  readonly requestLines: Array<string | undefined> = [];
  readonly outcomes = new Float64Array(OUTCOMES.length);
  readonly statusClasses = new Float64Array(STATUS_CLASSES.length);
  /** As DestinationSignal.failures counts them. */
  failures = 0;
  /** up, down */
  readonly bytes = new Float64Array(2);
  /** input, output */
  readonly tokens = new Float64Array(2);
  readonly attempts = new Float64Array(ATTEMPT_ACTIONS.length);
  readonly duration = new BucketCounts(LATENCY_BUCKETS_S);
  readonly ttfb = new BucketCounts(LATENCY_BUCKETS_S);
  /** Windowed, for /signals and alerts. */
  readonly window = new WindowedCounters(D_FIELDS);
  readonly latency = new LogLatencyWindows();

  constructor(d: Destination | null, clock: Clock) {
    this.host = d ? d.host : OTHER;
    this.label = labelValue(this.host);
    this.provider = d ? d.provider : OTHER;
    this.sanctioned = d ? d.sanctioned : false;
    this.shadow = d ? d.shadow : false;
    this.jurisdiction = d ? d.jurisdiction : 'unknown';
    clock.track(this.window);
    clock.track(this.latency);
  }
}

/** Windowed fields of a route; findings per category follow from R_FINDINGS. */
export const R_REQUESTS = 0;
export const R_WITH_PII = 1;
export const R_FINDINGS = 2;

export class RouteStats {
  /** Position in SignalsStage.routes: destinations keep their per-route counts at it. */
  readonly index: number;
  readonly name: string;
  readonly label: string;
  readonly findings = new Float64Array(CATEGORIES.length);
  withPii = 0;
  readonly window = new WindowedCounters(R_FINDINGS + CATEGORIES.length);

  constructor(index: number, name: string, clock: Clock) {
    this.index = index;
    this.name = name;
    this.label = labelValue(name);
    clock.track(this.window);
  }
}

export class FlowStats {
  readonly from: string;
  readonly to: string;
  readonly fromLabel: string;
  readonly toLabel: string;
  total = 0;
  readonly window = new WindowedCounters(1);

  constructor(from: string, to: string, clock: Clock) {
    this.from = from;
    this.to = to;
    this.fromLabel = labelValue(from);
    this.toLabel = labelValue(to);
    clock.track(this.window);
  }
}

/** Windowed totals over every exchange. */
export const T = {
  requests: 0,
  allowed: 1,
  alerted: 2,
  redacted: 3,
  blocked: 4,
  failed: 5,
  tunnelled: 6,
  denied: 7,
  bytes_up: 8,
  bytes_down: 9,
  input_tokens: 10,
  output_tokens: 11,
  /** Exchanges whose caller and destination jurisdictions are both known: the base of the cross-region share. */
  judged: 12,
  cross_region: 13,
  unauthorized: 14,
} as const;
export const T_FIELDS = 15;
