// The detection stage: scans the request's prompt segments (messages, tool arguments and results) before
// anything goes upstream, and the reassembled response and tool calls after; findings stay on the exchange.

import { performance } from 'node:perf_hooks';
import type { ErrorCode } from '../errors';
import type { Exchange, ExchangeFinding, InspectFailureKind } from '../pipeline/exchange';
import type { Stage } from '../pipeline/pipeline';
import type { Inspector, SegmentFinding } from './pool';

const FAILURE_KIND: Partial<Record<string, InspectFailureKind>> = {
  SLUICE_INSPECT_TIMEOUT: 'inspect_timeout',
  SLUICE_INSPECT_CRASHED: 'inspect_crashed',
  SLUICE_INSPECT_OVERLOADED: 'inspect_overloaded',
};

const NONE: ExchangeFinding[] = [];

export class DetectStage implements Stage {
  readonly name = 'detect';
  private readonly inspector: Inspector;
  private readonly maxBytes: number;

  /** `maxBytes`: limits.max_inspect_bytes; a bigger request body is not scanned (policy.on_failure.oversized_body). */
  constructor(inspector: Inspector, maxBytes: number) {
    this.inspector = inspector;
    this.maxBytes = maxBytes;
  }

  requestBody(x: Exchange, body: Buffer): void | Promise<void> {
    const req = x.request;
    if (!req) return;
    if (body.length > this.maxBytes) {
      x.inspectFailure = { kind: 'oversized_body', code: 'SLUICE_BODY_TOO_LARGE', message: `the body (${body.length} bytes) is over limits.max_inspect_bytes (${this.maxBytes})` };
      return;
    }
    if (!req.parsed) {
      // Nothing to scan is only a failure when there was a body to read: a GET has none.
      if (x.requestBytes > 0) x.inspectFailure = { kind: 'unparseable_body', code: 'SLUICE_BAD_REQUEST', message: req.error ?? 'the body is not in the provider format' };
      return;
    }
    const segments = req.segments;
    if (segments.length === 0) {
      x.requestFindings = NONE;
      return;
    }
    const texts = segments.map((s) => s.text);
    const t0 = performance.now();
    return this.inspector.inspect(texts).then(
      (found: SegmentFinding[]) => {
        x.inspectMs += performance.now() - t0;
        x.requestFindings = found.length === 0 ? NONE : found.map((f) => toExchangeFinding(f, segments[f.segment]!));
      },
      (err: Error & { code?: string }) => {
        x.inspectMs += performance.now() - t0;
        const code = (err.code ?? 'SLUICE_ENGINE_ERROR') as ErrorCode;
        x.inspectFailure = { kind: FAILURE_KIND[code] ?? 'inspect_crashed', code, message: err.message };
      },
    );
  }

  /**
   * The response text and the tool calls the model made, scanned once the response is complete (the adapter has
   * reassembled it). Matches across chunk and event boundaries are found because the whole text is scanned.
   * The client already has the bytes: this feeds records, signals and after-the-fact policy, not blocking.
   */
  /** A held response: scanned before the client sees it, and policy waits for the findings. */
  responseEnd(x: Exchange): Promise<void> | void {
    this.complete(x);
    return x.responseInspection ?? undefined;
  }

  complete(x: Exchange): void {
    if (x.responseInspection) return;
    const r = x.response;
    if (!r || (r.text.length === 0 && r.toolCalls.length === 0)) return;
    const where: Array<{ role: string; path: string }> = [];
    const texts: string[] = [];
    for (const seg of r.text) {
      where.push(seg);
      texts.push(seg.text);
    }
    r.toolCalls.forEach((call, i) => {
      where.push({ role: `tool_call:${call.name}`, path: `toolCalls[${i}].arguments` });
      texts.push(call.arguments);
    });
    const t0 = performance.now();
    x.responseInspection = this.inspector.inspect(texts).then(
      (found) => {
        x.inspectMs += performance.now() - t0;
        x.responseFindings = found.length === 0 ? NONE : found.map((f) => toExchangeFinding(f, where[f.segment]!));
      },
      (err: Error) => {
        x.inspectMs += performance.now() - t0;
        x.inspectProblem(`response not inspected: ${err.message}`);
      },
    );
  }
}

function toExchangeFinding(f: SegmentFinding, seg: { role: string; path: string }): ExchangeFinding {
  const e: ExchangeFinding = { rule: f.rule, category: f.category, severity: f.severity, confidence: f.confidence, role: seg.role, path: seg.path, start: f.start, end: f.end, masked: f.masked };
  if (f.digest !== undefined) e.digest = f.digest;
  if (f.count !== undefined) e.count = f.count;
  return e;
}
