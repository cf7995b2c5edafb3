// The audit record: one JSON object per exchange, schema v1 (docs/audit-format.md). Built once when the
// exchange completes; no prompt or response text unless capture is on, and then with detected values masked.

import { createHmac } from 'node:crypto';
import type { Decision, Exchange, ExchangeFinding } from '../pipeline/exchange';
import type { TextSegment } from '../providers/types';
import { callerJurisdiction, overheadMs } from '../signals/definitions';

export const AUDIT_SCHEMA_VERSION = 1;

export interface RecordOptions {
  /** Store prompt and response text (detected values masked). */
  capture: boolean;
  /** HMAC key for tool-argument digests: the same key as finding digests, so equal values correlate. */
  digestKey: Buffer;
  /** signals.home_jurisdiction: the caller's jurisdiction when the identity names none. */
  homeJurisdiction: string | null;
}

/** What JSON.stringify would escape in a string: a quote, a backslash, a control character or a surrogate. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * JSON text of a string (or null). Most values need no escaping and are only quoted; the others go through
 * JSON.stringify, which escapes exactly what JSON requires. ~1/3 cheaper than JSON.stringify on every value. A regex
 * rather than a charCodeAt loop: the values come in many string representations (sliced, cons, internalized…),
 * which made the loop's property loads megamorphic in the proxy (~5 µs a record under `perf`).
 */
const str = (v: string | null | undefined): string => (v == null ? 'null' : NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);
const num = (v: number | null | undefined): string => (v == null ? 'null' : String(v));
const strs = (list: readonly string[] | undefined): string => (list && list.length > 0 ? JSON.stringify(list) : '[]');

// The record's `time` is its arrival as `new Date(ms).toISOString()` writes it, which costs ~1.2 µs: the text up to
// the minute is kept (consecutive records almost always start in the same minute) and only seconds and milliseconds
// are written out.
let isoMinute = NaN;
let isoMinuteText = '';
function isoTime(ms: number): string {
  const minute = Math.floor(ms / 60_000);
  if (minute !== isoMinute) {
    const iso = new Date(minute * 60_000).toISOString();
    isoMinute = minute;
    isoMinuteText = iso.slice(0, iso.length - 'ss.mmmZ'.length);
  }
  const inMinute = ms - minute * 60_000;
  const sec = Math.floor(inMinute / 1000);
  const milli = inMinute - sec * 1000;
  return `${isoMinuteText}${sec < 10 ? '0' : ''}${sec}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/**
 * Serializes the exchange's record (without `seq`/`prev`, which the log adds). Written out as text rather than
 * built as an object and stringified: it runs once per exchange on the event loop, and this is half the cost
 * (bench/audit.ts `record_build_us`). Keys and order are the documented schema (docs/audit-format.md).
 */
export function exchangeRecord(x: Exchange, opts: RecordOptions, overhead = overheadMs(x.ownMs, x.inspectMs)): string {
  const d = x.destination;
  const req = x.request;
  const res = x.response;
  const lat = x.latency();
  const id = x.identity;
  // Enum-valued and generated fields (ids, outcomes, front doors, tiers, methods) need no escaping.
  let out =
    `{"v":${AUDIT_SCHEMA_VERSION},"type":"exchange","id":"${x.id}","time":"${isoTime(x.startedAt)}","front_door":"${x.frontDoor}","outcome":"${x.outcome}"` +
    `,"server.address":${str(d.host)},"client.address":${str(x.clientAddress)}` +
    `,"destination":{"host":${str(d.host)},"provider":${str(d.provider)},"tier":"${d.tier}","sanctioned":${d.sanctioned},"shadow":${d.shadow},"region":${str(d.region)},"jurisdiction":${str(d.jurisdiction)}}` +
    `,"identity":${
      id
        ? `{"subject":${str(id.subject)},"method":"${id.source}","verified":${id.verified},"tenant":${str(id.tenant)},"app":${str(id.app)},"groups":${strs(id.groups)},"jurisdiction":${str(id.jurisdiction)},"api_key_fingerprint":${str(x.apiKeyFingerprint || null)},"problem":${str(x.identityProblem)}}`
        : 'null'
    }` +
    `,"caller_jurisdiction":${str(callerJurisdiction(id?.jurisdiction, opts.homeJurisdiction))}` +
    `,"route":${str(x.route)},"gen_ai.provider.name":${str(d.provider)},"gen_ai.operation.name":${str(req?.operation)},"gen_ai.request.model":${str(req?.model)}` +
    `,"request":{"method":${str(x.info.method)},"path":${str(x.info.path)},"bytes":${x.requestBytes},"encoding":${str(x.requestEncoding || null)},"parsed":${req ? req.parsed : 'null'},"stream":${req?.stream ?? false},"segments":${req?.segments.length ?? 0},"tools_offered":${strs(req?.tools)},"findings":${findings(x.requestFindings)},"redacted":${x.rewrittenBody !== null}}` +
    `,"response":`;
  if (res || x.status) {
    out +=
      `{"status":${x.status},"bytes":${x.responseBytes},"content_type":${str(x.responseContentType || null)},"streamed":${req?.stream ?? false},"finish_reason":${str(res?.finishReason)}` +
      `,"provider_error":${res?.providerError ? JSON.stringify(res.providerError) : 'null'},"findings":${findings(x.responseFindings)},"tool_calls":${toolCalls(x, opts.digestKey)},"parse_errors":${strs(res?.errors)}}`;
  } else out += 'null';
  const dec = x.decision;
  out +=
    `,"gen_ai.usage.input_tokens":${num(res?.usage?.inputTokens)},"gen_ai.usage.output_tokens":${num(res?.usage?.outputTokens)}` +
    `,"latency_ms":{"total":${round(lat.totalMs)},"upstream_ttfb":${round(lat.ttfbMs)},"inspection":${round(x.inspectMs)},"own":${round(lat.ownMs)},"overhead":${round(overhead)}}` +
    `,"policy":{"decision":"${dec.action}","rule":${str(dec.rule)},"reason":${str(dec.reason)},"by":${str(dec.by)},"version":${str(dec.policyVersion)},"response":${x.responseDecision ? decision(x.responseDecision) : 'null'}}` +
    `,"inspection":${x.inspectFailure || x.inspectProblems ? JSON.stringify({ failure: x.inspectFailure, problems: x.inspectProblems ?? [] }) : 'null'}` +
    `,"error":${x.error ? JSON.stringify(x.error) : 'null'}`;
  if (opts.capture) {
    out += `,"capture":${JSON.stringify({ request: req ? captured(req.segments, x.requestFindings) : [], response: res ? captured(res.text, x.responseFindings) : [] })}`;
  }
  return out + '}';
}

function decision(d: Decision): string {
  return `{"decision":"${d.action}","rule":${str(d.rule)},"reason":${str(d.reason)},"version":${str(d.policyVersion)}}`;
}

function findings(list: readonly ExchangeFinding[] | null): string {
  if (!list || list.length === 0) return '[]';
  let out = '[';
  for (let i = 0; i < list.length; i++) {
    const f = list[i]!;
    out +=
      (i > 0 ? ',' : '') +
      `{"rule":${str(f.rule)},"category":"${f.category}","severity":"${f.severity}","confidence":${f.confidence},"count":${f.count ?? 1},"role":${str(f.role)},"path":${str(f.path)},"masked":${str(f.masked)}` +
      (f.digest !== undefined ? `,"digest":"${f.digest}"}` : '}');
  }
  return out + ']';
}

/** The tool calls the model made: name, an HMAC of the whole argument text, and the findings in it. */
function toolCalls(x: Exchange, key: Buffer): string {
  const calls = x.response?.toolCalls;
  if (!calls || calls.length === 0) return '[]';
  return `[${calls
    .map((c, i) => {
      const digest = createHmac('sha256', key).update(c.arguments, 'utf8').digest('hex');
      const own = (x.responseFindings ?? []).filter((f) => f.path === `toolCalls[${i}].arguments`);
      return `{"name":${str(c.name)},"argument_digest":"${digest}","argument_findings":${findings(own)}}`;
    })
    .join(',')}]`;
}

/** Segment texts with every finding in them replaced by its masked form (right to left, so offsets stay valid). */
function captured(segments: readonly TextSegment[], found: readonly ExchangeFinding[] | null): Array<{ role: string; path: string; text: string }> {
  return segments.map((s) => {
    let text = s.text;
    const here = (found ?? []).filter((f) => f.path === s.path).sort((a, b) => b.start - a.start);
    let floor = Infinity;
    for (const f of here) {
      // Overlapping findings: the right-most one was masked already; mask only what is left of it.
      const end = Math.min(f.end, floor);
      if (end <= f.start) continue;
      text = text.slice(0, f.start) + f.masked + text.slice(end);
      floor = f.start;
    }
    return { role: s.role, path: s.path, text };
  });
}

// Milliseconds to three decimals, as `String(Math.round(ms * 1000) / 1000)` writes them: the whole part and a
// precomputed fraction (`.5`, `.25`, `.125`), which skips printing a double (~250 vs ~60 ns a value, five a record).
// Exact below 1e9 ms, where doubles are far closer together than 0.001; anything else takes the general path.
const FRACTIONS = Array.from({ length: 1000 }, (_, i) => (i === 0 ? '' : `.${String(i).padStart(3, '0').replace(/0+$/, '')}`));
function round(ms: number): string {
  const n = Math.round(ms * 1000);
  if (!(n >= 0 && n < 1e12)) return String(n / 1000);
  const whole = Math.floor(n / 1000);
  return `${whole}${FRACTIONS[n - whole * 1000]!}`;
}
