// The shape of GET /signals on the admin listener: the six operational signals, for the dashboard and for
// scripts. Shared by the signals core (which computes it), the dashboard (which draws it) and `sluice report`.

/** Latency percentiles in ms over the window (HDR histogram, 3 significant figures). */
export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export type SignalsWindow = '1m' | '5m' | '1h' | 'all';

export interface DestinationSignal {
  host: string;
  provider: string;
  sanctioned: boolean;
  /** A long-tail AI host nobody approved. */
  shadow: boolean;
  jurisdiction: string;
  requests: number;
  /** Upstream errors, 5xx answers, aborted or failed exchanges (blocks and denials are not failures). */
  failures: number;
  failure_rate: number;
  blocked: number;
  denied: number;
  p99_ms: number;
  /** Requests per bucket over the window, oldest first (10 s buckets for 1m/5m, 1 min for 1h and all). */
  trend: number[];
}

export interface RouteSignal {
  route: string;
  requests: number;
  /** Exchanges with at least one finding of category pii (request or response). */
  with_pii: number;
  pii_rate: number;
  /** Findings by category (pii, phi, credential, financial, source_code, …). */
  findings: Record<string, number>;
}

export interface CrossRegionFlow {
  /** The caller's jurisdiction (identity, else signals.home_jurisdiction). */
  from: string;
  /** The destination's jurisdiction. */
  to: string;
  count: number;
}

/** An attempt to reach a destination that is not authorised: unsanctioned or shadow AI, a denied CONNECT, a route allow-list. */
export interface UnauthorizedAttempt {
  time: string;
  exchange_id: string;
  subject: string;
  client: string;
  host: string;
  provider: string;
  /** What Sluice did: allow/alert (monitor, or policy says alert) or block/deny. */
  action: string;
  reason: string;
}

export interface Alert {
  time: string;
  /** The alert rule's id from signals.alerts. */
  rule: string;
  kind: 'pii_rate' | 'p99' | 'p99_widening' | 'new_unsanctioned' | 'failure_rate';
  message: string;
  /** The route or destination it is about. */
  subject: string;
  value: number;
  threshold: number;
}

export interface SignalsSnapshot {
  generated_at: string;
  uptime_s: number;
  window: SignalsWindow;
  /** Bucket width of every `trend` and `latency.series`, in seconds. */
  bucket_s: number;
  /** allowed…blocked split `requests` by decision (a denied CONNECT is a block too); failed as DestinationSignal.failures. */
  totals: {
    requests: number;
    allowed: number;
    alerted: number;
    redacted: number;
    blocked: number;
    failed: number;
    tunnelled: number;
    denied: number;
    bytes_up: number;
    bytes_down: number;
    input_tokens: number;
    output_tokens: number;
  };
  /** Signal 1, destination distribution (sanctioned vs shadow), and signal 4, failure rate by destination. */
  destinations: DestinationSignal[];
  /** Signal 2: PII rate per route. */
  routes: RouteSignal[];
  /** Signal 3: cross-region traffic; `share` is of the exchanges whose caller and destination jurisdictions are both known. */
  cross_region: { exchanges: number; share: number; flows: CrossRegionFlow[] };
  /** Signal 5: the latency tail. `series` has one point per bucket, oldest first; t is epoch seconds. */
  latency: {
    total: Percentiles;
    upstream_ttfb: Percentiles;
    overhead: Percentiles;
    series: Array<{ t: number; count: number; p50: number; p90: number; p99: number; p999: number }>;
  };
  /** Signal 6: attempts to reach unauthorised destinations, who and where (most recent first, bounded). */
  unauthorized: { attempts: number; recent: UnauthorizedAttempt[] };
  /** Alerts fired in the window, most recent first. */
  alerts: Alert[];
}
