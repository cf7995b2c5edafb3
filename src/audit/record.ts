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

/** JSON text of a string (or null): JSON.stringify escapes exactly what JSON requires. */
const str = (v: string | null | undefined): string => (v == null ? 'null' : JSON.stringify(v));
const num = (v: number | null | undefined): string => (v == null ? 'null' : String(v));
const strs = (list: readonly string[] | undefined): string => (list && list.length > 0 ? JSON.stringify(list) : '[]');

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
    `{"v":${AUDIT_SCHEMA_VERSION},"type":"exchange","id":"${x.id}","time":"${new Date(x.startedAt).toISOString()}","front_door":"${x.frontDoor}","outcome":"${x.outcome}"` +
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

const round = (ms: number) => Math.round(ms * 1000) / 1000;
