// One definition of each signal's terms, shared by the live signals (from an Exchange) and `sluice report`
// (from an audit record), so the dashboard, /metrics and the compliance report count the same things.

/**
 * Outcomes that count against a destination, besides any 5xx answer: the call broke off upstream, was cut at
 * shutdown, or the client's TLS with Sluice failed for that host (pinning). A client giving up, a request Sluice
 * refused (413, bad request), blocks and denials are decisions or client errors, not failures of the destination.
 */
const FAILURE_OUTCOMES: Readonly<Record<string, true>> = {
  upstream_error: true,
  upstream_aborted: true,
  cut_at_shutdown: true,
  client_tls_failed: true,
};

export function isFailure(outcome: string, status: number): boolean {
  return status >= 500 || FAILURE_OUTCOMES[outcome] === true;
}

/**
 * An attempt to reach an unauthorised destination: a catalog AI provider (major or long-tail) nobody sanctioned,
 * a CONNECT denied by interception config, or a route's allow-list rule (whatever its action: an alert is still
 * an attempt).
 */
export function isUnauthorized(tier: string, sanctioned: boolean, outcome: string, rule: string | null | undefined): boolean {
  return ((tier === 'major' || tier === 'long-tail') && !sanctioned) || outcome === 'denied' || (rule != null && rule.startsWith('route:'));
}

/** The caller's jurisdiction: the identity's, else signals.home_jurisdiction (recorded as `caller_jurisdiction`). */
export function callerJurisdiction(identity: string | null | undefined, home: string | null): string | null {
  return identity || home || null;
}

/** Whether two jurisdictions can be compared for cross-region traffic: both known. */
export function comparable(from: string | null | undefined, to: string | null | undefined): boolean {
  return !!from && from !== 'unknown' && !!to && to !== 'unknown';
}

/**
 * Sluice's overhead on an exchange: its own time plus inspection. An upper bound: a scan that runs inline on the
 * event loop is counted in both.
 */
export function overheadMs(ownMs: number, inspectionMs: number): number {
  return ownMs + inspectionMs;
}
