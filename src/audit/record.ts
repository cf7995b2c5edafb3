// The audit record: one JSON object per exchange, schema v1 (docs/audit-format.md). Built once when the
// exchange completes; no prompt or response text unless capture is on, and then with detected values masked.

import { createHmac } from 'node:crypto';
import type { Decision, Exchange, ExchangeFinding } from '../pipeline/exchange';
import type { TextSegment } from '../providers/types';

export const AUDIT_SCHEMA_VERSION = 1;

export interface RecordOptions {
  /** Store prompt and response text (detected values masked). */
  capture: boolean;
  /** HMAC key for tool-argument digests: the same key as finding digests, so equal values correlate. */
  digestKey: Buffer;
}

interface FindingOut {
  rule: string;
  category: string;
  severity: string;
  confidence: number;
  count: number;
  role: string;
  path: string;
  masked: string;
  digest?: string;
}

/** Serializes the exchange's record (without `seq`/`prev`, which the log adds). */
export function exchangeRecord(x: Exchange, opts: RecordOptions): string {
  const d = x.destination;
  const req = x.request;
  const res = x.response;
  const lat = x.latency();
  const id = x.identity;
  const rec: Record<string, unknown> = {
    v: AUDIT_SCHEMA_VERSION,
    type: 'exchange',
    id: x.id,
    time: new Date(x.startedAt).toISOString(),
    front_door: x.frontDoor,
    outcome: x.outcome,
    'server.address': d.host,
    'client.address': x.clientAddress,
    destination: {
      host: d.host,
      provider: d.provider,
      tier: d.tier,
      sanctioned: d.sanctioned,
      shadow: d.shadow,
      region: d.region ?? null,
      jurisdiction: d.jurisdiction,
    },
    identity: id
      ? {
          subject: id.subject,
          method: id.source,
          verified: id.verified,
          tenant: id.tenant ?? null,
          app: id.app ?? null,
          groups: id.groups ?? [],
          jurisdiction: id.jurisdiction ?? null,
          api_key_fingerprint: x.apiKeyFingerprint || null,
          problem: x.identityProblem,
        }
      : null,
    route: x.route,
    'gen_ai.provider.name': d.provider,
    'gen_ai.operation.name': req?.operation ?? null,
    'gen_ai.request.model': req?.model ?? null,
    request: {
      method: x.info.method,
      path: x.info.path,
      bytes: x.requestBytes,
      encoding: x.requestEncoding || null,
      parsed: req ? req.parsed : null,
      stream: req?.stream ?? false,
      segments: req?.segments.length ?? 0,
      tools_offered: req?.tools ?? [],
      findings: findings(x.requestFindings),
      redacted: x.rewrittenBody !== null,
    },
    response: res || x.status
      ? {
          status: x.status,
          bytes: x.responseBytes,
          content_type: x.responseContentType || null,
          streamed: req?.stream ?? false,
          finish_reason: res?.finishReason ?? null,
          provider_error: res?.providerError ?? null,
          findings: findings(x.responseFindings),
          tool_calls: (res?.toolCalls ?? []).map((c, i) => ({
            name: c.name,
            argument_digest: createHmac('sha256', opts.digestKey).update(c.arguments, 'utf8').digest('hex'),
            argument_findings: findings((x.responseFindings ?? []).filter((f) => f.path === `toolCalls[${i}].arguments`)),
          })),
          parse_errors: res?.errors.length ? res.errors : [],
        }
      : null,
    'gen_ai.usage.input_tokens': res?.usage?.inputTokens ?? null,
    'gen_ai.usage.output_tokens': res?.usage?.outputTokens ?? null,
    latency_ms: {
      total: round(lat.totalMs),
      upstream_ttfb: round(lat.ttfbMs),
      inspection: round(x.inspectMs),
      own: round(lat.ownMs),
    },
    policy: {
      decision: x.decision.action,
      rule: x.decision.rule ?? null,
      reason: x.decision.reason ?? null,
      by: x.decision.by ?? null,
      version: x.decision.policyVersion ?? null,
      response: x.responseDecision ? decision(x.responseDecision) : null,
    },
    inspection: x.inspectFailure || x.inspectProblems ? { failure: x.inspectFailure, problems: x.inspectProblems ?? [] } : null,
    error: x.error,
  };
  if (opts.capture) {
    rec.capture = {
      request: req ? captured(req.segments, x.requestFindings) : [],
      response: res ? captured(res.text, x.responseFindings) : [],
    };
  }
  return JSON.stringify(rec);
}

function decision(d: Decision): Record<string, unknown> {
  return { decision: d.action, rule: d.rule ?? null, reason: d.reason ?? null, version: d.policyVersion ?? null };
}

function findings(list: readonly ExchangeFinding[] | null): FindingOut[] {
  if (!list || list.length === 0) return [];
  return list.map((f) => {
    const o: FindingOut = { rule: f.rule, category: f.category, severity: f.severity, confidence: f.confidence, count: f.count ?? 1, role: f.role, path: f.path, masked: f.masked };
    if (f.digest !== undefined) o.digest = f.digest;
    return o;
  });
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
