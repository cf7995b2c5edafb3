// `sluice report`: the six signals and the record-keeping tables over a period, computed from the audit log alone.
// Segments are read page by page; only records whose `time` falls in the period are parsed.

import { join } from 'node:path';
import type { PublicKeyInfo } from '../audit/keys';
import { listSegments, readSegmentLines, RECORD_PREFIX, stampTime } from '../audit/segments';
import { verifyLog, type Problem } from '../audit/verify';
import type { Alert, CrossRegionFlow, DestinationSignal, Percentiles, RouteSignal, SignalsSnapshot, UnauthorizedAttempt } from '../signals/types';
import { comparable, isFailure, isUnauthorized, overheadMs } from '../signals/definitions';

/** Outcomes with no HTTP exchange through the pipeline: their "latency" is a tunnel's or a handshake's lifetime. */
const NOT_HTTP: ReadonlySet<string> = new Set(['tunnelled', 'denied', 'client_tls_failed']);
/** Rows kept for the tables that list individual events (the counts cover everything). */
const LIST_LIMIT = 200;
/** Rows kept for the "top" tables. */
const TOP_LIMIT = 20;
/** Problems copied into the report; `sluice verify` lists them all. */
const PROBLEM_LIMIT = 20;
const PAGE_BYTES = 4 << 20;
/** The writer stamps a segment's name when it opens it; a minute's slack covers clock steps between the two clocks' reads. */
const STAMP_SLACK_MS = 60_000;
/** `"time"` comes within the first fields of every record (after seq, prev, v, type and id). */
const TIME_KEY = '"time":"';
const TIME_KEY_WITHIN = 400;

export interface ReportDestination extends Omit<DestinationSignal, 'trend'> {
  tier: string;
  /** This destination's share of the period's exchanges. */
  share: number;
}

export interface IdentityRow {
  subject: string;
  requests: number;
  blocked: number;
  /** Findings in the subject's requests and responses. */
  findings: number;
}

export interface FindingRow {
  rule: string;
  category: string;
  /** Times the rule was found (request and response findings). */
  count: number;
  /** Exchanges it was found in. */
  exchanges: number;
}

export interface BlockedAttempt {
  time: string;
  exchange_id: string;
  subject: string;
  destination: string;
  rule: string;
  reason: string;
}

export interface ReportVerification {
  ok: boolean;
  problems: number;
  /** The first problems, as `sluice verify` names them. */
  first_problems: Problem[];
  /** `pubkey`: the keys given with --pubkey; `log_dir`: the .pub files in the log's own keys/ directory. */
  keys_from: 'pubkey' | 'log_dir';
  key_files: string[];
  /** Key ids trusted by the end (given, plus any handed over by a key rotation inside the log). */
  keys: string[];
  records: number;
  batches: number;
  segments: number;
  /** Sequence numbers sealed by signed checkpoints, after any range pruned on purpose; null for an empty log. */
  sealed: { first_seq: number; last_seq: number } | null;
  pruned: Array<{ first_seq: number; last_seq: number }>;
}

export interface Report {
  report: 'sluice-report/v1';
  generated_at: string;
  sluice_version: string;
  log_dir: string;
  /** `since` and `until` as asked (null: unbounded); first and last record time found in between. */
  period: { since: string | null; until: string | null; first_record: string | null; last_record: string | null };
  /** Records of every type in the period, and of those the exchanges. */
  records: number;
  exchanges: number;
  /** Record lines in the period that are not valid JSON (verification names them). */
  unreadable_records: number;
  verification: ReportVerification;
  totals: SignalsSnapshot['totals'];
  /** Signal 1: destination distribution. `other` is internal and unknown hosts (tunnelled, operator-added). */
  destinations: { sanctioned: number; unsanctioned: number; shadow: number; other: number; list: ReportDestination[] };
  /** Signal 2: PII rate per route. */
  routes: RouteSignal[];
  /** Signal 3: exchanges whose caller's jurisdiction (caller_jurisdiction) and destination's differ, of those where both are known. */
  cross_region: { compared: number; exchanges: number; share: number; flows: CrossRegionFlow[] };
  /** Signal 5 (signal 4, failure rate by destination, is in `destinations.list`). `overhead` is latency_ms.overhead. */
  latency: { total: Percentiles; upstream_ttfb: Percentiles; overhead: Percentiles };
  /** Signal 6: attempts to reach unauthorised destinations, most recent first. */
  unauthorized: { attempts: number; recent: UnauthorizedAttempt[] };
  identities: IdentityRow[];
  findings: FindingRow[];
  blocked: { count: number; recent: BlockedAttempt[] };
  /** Records of `type: "alert"`, most recent first. */
  alerts: { count: number; recent: Alert[] };
}

export interface ReportOptions {
  dir: string;
  /** Epoch ms; records with since ≤ time < until are reported. Null: unbounded. */
  since: number | null;
  until: number | null;
  publicKeys: readonly PublicKeyInfo[];
  keysFrom: ReportVerification['keys_from'];
  keyFiles: string[];
  version: string;
  now?: number;
}

/** The fields of an audit record the report reads (docs/audit-format.md). */
interface Finding {
  rule?: string;
  category?: string;
}
interface AuditRecord {
  type?: string;
  id?: string;
  time?: string;
  outcome?: string;
  'client.address'?: string | null;
  destination?: { host?: string | null; provider?: string | null; tier?: string; sanctioned?: boolean; shadow?: boolean; jurisdiction?: string | null };
  identity?: { subject?: string | null; jurisdiction?: string | null } | null;
  caller_jurisdiction?: string | null;
  route?: string | null;
  request?: { bytes?: number; findings?: Finding[] } | null;
  response?: { status?: number; bytes?: number; findings?: Finding[] } | null;
  'gen_ai.usage.input_tokens'?: number | null;
  'gen_ai.usage.output_tokens'?: number | null;
  latency_ms?: { total?: number; upstream_ttfb?: number; own?: number; inspection?: number; overhead?: number };
  policy?: { decision?: string; rule?: string | null; reason?: string | null; response?: { decision?: string; rule?: string | null; reason?: string | null } | null };
  error?: { code?: string; message?: string } | null;
  // An alert record's own fields.
  rule?: string;
  kind?: string;
  message?: string;
  subject?: string;
  value?: number;
  threshold?: number;
}

const RANK: Readonly<Record<string, number>> = { allow: 0, alert: 1, redact: 2, block: 3 };

/** The stronger of the request's and the response's decision: what counts in the totals, as on the dashboard. */
function strongest(request: string, response: string | undefined): string {
  return response !== undefined && (RANK[response] ?? 0) > (RANK[request] ?? 0) ? response : request;
}

function failed(r: AuditRecord): boolean {
  return isFailure(r.outcome ?? '', r.response?.status ?? 0);
}

function unauthorized(r: AuditRecord): boolean {
  const d = r.destination;
  return isUnauthorized(d?.tier ?? 'unknown', d?.sanctioned !== false, r.outcome ?? '', r.policy?.rule);
}

/** A growable array of numbers for exact percentiles. */
class Samples {
  private buf = new Float64Array(256);
  length = 0;

  push(v: number): void {
    if (this.length === this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.length++] = v;
  }

  /** Nearest-rank percentiles over the sorted values. */
  percentiles(): Percentiles {
    const n = this.length;
    if (n === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    const s = this.buf.subarray(0, n).sort();
    const at = (q: number) => s[Math.max(0, Math.ceil(q * n) - 1)]!;
    return { count: n, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: s[n - 1]! };
  }
}

/** Keeps the last `limit` items pushed. */
class Recent<T> {
  private items: T[] = [];
  count = 0;
  constructor(private readonly limit: number) {}

  push(item: T): void {
    this.count++;
    this.items.push(item);
    if (this.items.length > this.limit * 2) this.items = this.items.slice(-this.limit);
  }

  /** Most recent first by `time`. */
  latest(time: (t: T) => string): T[] {
    return this.items
      .slice(-this.limit)
      .sort((a, b) => (time(a) < time(b) ? 1 : time(a) > time(b) ? -1 : 0));
  }
}

interface DestAcc {
  row: ReportDestination;
  latency: Samples;
}

class Accumulator {
  records = 0;
  exchanges = 0;
  unreadable = 0;
  first: string | null = null;
  last: string | null = null;
  readonly totals: SignalsSnapshot['totals'] = {
    requests: 0,
    allowed: 0,
    alerted: 0,
    redacted: 0,
    blocked: 0,
    failed: 0,
    tunnelled: 0,
    denied: 0,
    bytes_up: 0,
    bytes_down: 0,
    input_tokens: 0,
    output_tokens: 0,
  };
  readonly dests = new Map<string, DestAcc>();
  readonly routes = new Map<string, RouteSignal>();
  compared = 0;
  crossRegion = 0;
  readonly flows = new Map<string, CrossRegionFlow>();
  readonly total = new Samples();
  readonly ttfb = new Samples();
  readonly own = new Samples();
  readonly unauthorized = new Recent<UnauthorizedAttempt>(LIST_LIMIT);
  readonly identities = new Map<string, IdentityRow>();
  readonly findings = new Map<string, FindingRow>();
  readonly blocked = new Recent<BlockedAttempt>(LIST_LIMIT);
  readonly alerts = new Recent<Alert>(LIST_LIMIT);

  add(r: AuditRecord): void {
    this.records++;
    const time = r.time ?? '';
    if (this.first === null || time < this.first) this.first = time;
    if (this.last === null || time > this.last) this.last = time;
    if (r.type === 'alert') this.alert(r, time);
    else if (r.type === 'exchange') this.exchange(r, time);
  }

  private alert(r: AuditRecord, time: string): void {
    this.alerts.push({
      time,
      rule: r.rule ?? '',
      kind: (r.kind ?? '') as Alert['kind'],
      message: r.message ?? '',
      subject: r.subject ?? '',
      value: r.value ?? 0,
      threshold: r.threshold ?? 0,
    });
  }

  private exchange(r: AuditRecord, time: string): void {
    this.exchanges++;
    const t = this.totals;
    const outcome = r.outcome ?? '';
    const decision = r.policy?.decision ?? 'allow';
    const action = strongest(decision, r.policy?.response?.decision);
    const blocked = action === 'block';
    const failedNow = failed(r);
    t.requests++;
    if (action === 'block') t.blocked++;
    else if (action === 'redact') t.redacted++;
    else if (action === 'alert') t.alerted++;
    else t.allowed++;
    if (outcome === 'tunnelled') t.tunnelled++;
    if (outcome === 'denied') t.denied++;
    if (failedNow) t.failed++;
    t.bytes_up += r.request?.bytes ?? 0;
    t.bytes_down += r.response?.bytes ?? 0;
    t.input_tokens += r['gen_ai.usage.input_tokens'] ?? 0;
    t.output_tokens += r['gen_ai.usage.output_tokens'] ?? 0;

    const d = r.destination ?? {};
    const host = d.host ?? '(unknown)';
    let dest = this.dests.get(host);
    if (!dest) {
      dest = {
        row: {
          host,
          provider: d.provider ?? '',
          tier: d.tier ?? 'unknown',
          sanctioned: d.sanctioned === true,
          shadow: d.shadow === true,
          jurisdiction: d.jurisdiction ?? '',
          requests: 0,
          share: 0,
          failures: 0,
          failure_rate: 0,
          blocked: 0,
          denied: 0,
          p99_ms: 0,
        },
        latency: new Samples(),
      };
      this.dests.set(host, dest);
    }
    dest.row.requests++;
    if (failedNow) dest.row.failures++;
    if (blocked) dest.row.blocked++;
    if (outcome === 'denied') dest.row.denied++;

    const found = [...(r.request?.findings ?? []), ...(r.response?.findings ?? [])];
    const routeName = r.route ?? '(none)';
    let route = this.routes.get(routeName);
    if (!route) this.routes.set(routeName, (route = { route: routeName, requests: 0, with_pii: 0, pii_rate: 0, findings: {} }));
    route.requests++;
    if (found.some((f) => f.category === 'pii')) route.with_pii++;
    const seen = new Set<string>();
    for (const f of found) {
      const category = f.category ?? 'unknown';
      route.findings[category] = (route.findings[category] ?? 0) + 1;
      const key = `${f.rule ?? ''}\0${category}`;
      let row = this.findings.get(key);
      if (!row) this.findings.set(key, (row = { rule: f.rule ?? '', category, count: 0, exchanges: 0 }));
      row.count++;
      if (!seen.has(key)) row.exchanges++;
      seen.add(key);
    }

    const from = r.caller_jurisdiction;
    if (comparable(from, d.jurisdiction) && from && d.jurisdiction) {
      this.compared++;
      if (from !== d.jurisdiction) {
        this.crossRegion++;
        const key = `${from}\0${d.jurisdiction}`;
        const flow = this.flows.get(key);
        if (flow) flow.count++;
        else this.flows.set(key, { from, to: d.jurisdiction, count: 1 });
      }
    }

    const lat = r.latency_ms;
    if (lat && !NOT_HTTP.has(outcome)) {
      this.total.push(lat.total ?? 0);
      this.own.push(lat.overhead ?? overheadMs(lat.own ?? 0, lat.inspection ?? 0));
      dest.latency.push(lat.total ?? 0);
      // No upstream response head, no time to it: blocked and refused requests carry 0.
      if ((lat.upstream_ttfb ?? 0) > 0) this.ttfb.push(lat.upstream_ttfb!);
    }

    const subject = r.identity?.subject ?? 'anonymous';
    let who = this.identities.get(subject);
    if (!who) this.identities.set(subject, (who = { subject, requests: 0, blocked: 0, findings: 0 }));
    who.requests++;
    if (blocked) who.blocked++;
    who.findings += found.length;

    const id = r.id ?? '';
    if (unauthorized(r)) {
      const denied = outcome === 'denied';
      this.unauthorized.push({
        time,
        exchange_id: id,
        subject,
        client: r['client.address'] ?? '',
        host,
        provider: d.provider ?? '',
        action: denied ? 'deny' : decision,
        reason: (denied ? r.error?.message : r.policy?.reason) ?? `${d.provider ?? host} is not a sanctioned provider`,
      });
    }
    if (blocked) {
      // A response rule's block is on policy.response; the request's decision may be an allow.
      const p = decision === 'block' ? r.policy : r.policy?.response;
      this.blocked.push({ time, exchange_id: id, subject, destination: host, rule: p?.rule ?? '', reason: p?.reason ?? r.error?.message ?? '' });
    }
  }

  result(): Omit<Report, 'report' | 'generated_at' | 'sluice_version' | 'log_dir' | 'period' | 'verification'> {
    const n = this.exchanges;
    const list = [...this.dests.values()].map(({ row, latency }) => ({
      ...row,
      share: n ? row.requests / n : 0,
      failure_rate: row.requests ? row.failures / row.requests : 0,
      p99_ms: latency.percentiles().p99,
    }));
    list.sort((a, b) => b.requests - a.requests || (a.host < b.host ? -1 : 1));
    const count = (pred: (d: ReportDestination) => boolean) => list.filter(pred).reduce((s, d) => s + d.requests, 0);
    const unsanctioned = (d: ReportDestination) => (d.tier === 'major' || d.tier === 'long-tail') && !d.sanctioned;
    const routes = [...this.routes.values()].map((r) => ({ ...r, pii_rate: r.requests ? r.with_pii / r.requests : 0 }));
    routes.sort((a, b) => b.requests - a.requests || (a.route < b.route ? -1 : 1));
    const byCount = <T extends { count: number }>(a: T, b: T) => b.count - a.count;
    return {
      records: this.records,
      exchanges: n,
      unreadable_records: this.unreadable,
      totals: this.totals,
      destinations: {
        sanctioned: count((d) => d.sanctioned),
        unsanctioned: count(unsanctioned),
        shadow: count((d) => d.shadow),
        other: count((d) => !d.sanctioned && !unsanctioned(d)),
        list,
      },
      routes,
      cross_region: {
        compared: this.compared,
        exchanges: this.crossRegion,
        share: this.compared ? this.crossRegion / this.compared : 0,
        flows: [...this.flows.values()].sort(byCount),
      },
      latency: { total: this.total.percentiles(), upstream_ttfb: this.ttfb.percentiles(), overhead: this.own.percentiles() },
      unauthorized: { attempts: this.unauthorized.count, recent: this.unauthorized.latest((a) => a.time) },
      identities: [...this.identities.values()].sort((a, b) => b.requests - a.requests || b.blocked - a.blocked).slice(0, TOP_LIMIT),
      findings: [...this.findings.values()].sort(byCount).slice(0, TOP_LIMIT),
      blocked: { count: this.blocked.count, recent: this.blocked.latest((a) => a.time) },
      alerts: { count: this.alerts.count, recent: this.alerts.latest((a) => a.time) },
    };
  }
}

/** Reads every record line of the log whose time is in [since, until), parsing only those. */
async function scan(dir: string, since: string | null, until: string | null, sinceMs: number | null, acc: Accumulator): Promise<void> {
  const segs = await listSegments(dir);
  for (let i = 0; i < segs.length; i++) {
    // Every record in a segment was written before the next segment was opened.
    const next = segs[i + 1];
    if (sinceMs !== null && next && stampTime(next.stamp) + STAMP_SLACK_MS <= sinceMs) continue;
    const path = join(dir, segs[i]!.file);
    for (let from = 0; ; ) {
      const { lines, end } = await readSegmentLines(path, from, PAGE_BYTES);
      if (lines.length === 0) break;
      from = end;
      for (const { text } of lines) {
        if (!text.startsWith(RECORD_PREFIX)) continue;
        const at = text.indexOf(TIME_KEY);
        if (at >= 0 && at < TIME_KEY_WITHIN) {
          const time = text.slice(at + TIME_KEY.length, at + TIME_KEY.length + 24);
          if ((since !== null && time < since) || (until !== null && time >= until)) continue;
        }
        let r: AuditRecord;
        try {
          r = JSON.parse(text) as AuditRecord;
        } catch {
          acc.unreadable++;
          continue;
        }
        if (typeof r.time !== 'string' || (since !== null && r.time < since) || (until !== null && r.time >= until)) continue;
        acc.add(r);
      }
    }
  }
}

function sealedRange(r: { last_seq: number; pruned: Array<{ first_seq: number; last_seq: number }> }): ReportVerification['sealed'] {
  let first = 1;
  for (const p of [...r.pruned].sort((a, b) => a.first_seq - b.first_seq)) if (p.first_seq <= first) first = Math.max(first, p.last_seq + 1);
  return r.last_seq >= first ? { first_seq: first, last_seq: r.last_seq } : null;
}

export async function computeReport(opts: ReportOptions): Promise<Report> {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const since = iso(opts.since);
  const until = iso(opts.until);
  const acc = new Accumulator();
  const [, v] = await Promise.all([scan(opts.dir, since, until, opts.since, acc), verifyLog(opts.dir, { publicKeys: opts.publicKeys })]);
  const { records, exchanges, unreadable_records, ...signals } = acc.result();
  return {
    report: 'sluice-report/v1',
    generated_at: new Date(opts.now ?? Date.now()).toISOString(),
    sluice_version: opts.version,
    log_dir: opts.dir,
    period: { since, until, first_record: acc.first, last_record: acc.last },
    records,
    exchanges,
    unreadable_records,
    verification: {
      ok: v.ok,
      problems: v.problems.length,
      first_problems: v.problems.slice(0, PROBLEM_LIMIT),
      keys_from: opts.keysFrom,
      key_files: opts.keyFiles,
      keys: v.keys,
      records: v.records,
      batches: v.batches,
      segments: v.segments,
      sealed: sealedRange(v),
      pruned: v.pruned,
    },
    ...signals,
  };
}

const RELATIVE = /^(\d+)(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/;

/**
 * A report bound: an ISO 8601 date (`2026-11-01`, midnight UTC) or date-time (`2026-11-26T10:00:00Z`; without a
 * zone, UTC), or a duration back from `now` (`30m`, `24h`, `7d`). Returns epoch ms, or null when `text` is neither.
 */
export function parseReportTime(text: string, now: number): number | null {
  const rel = RELATIVE.exec(text);
  if (rel) return now - Number(rel[1]) * UNIT_MS[rel[2]!]!;
  const m = ISO.exec(text);
  if (!m) return null;
  const ms = Date.parse(m[4] === undefined ? `${text}T00:00:00Z` : m[7] === undefined ? `${text}Z` : text);
  if (Number.isNaN(ms)) return null;
  // Date.parse rolls 2026-02-30 over to March; a calendar date that does not exist is a typo.
  const check = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!));
  if (check.getUTCMonth() !== +m[2]! - 1 || check.getUTCDate() !== +m[3]!) return null;
  return ms;
}
