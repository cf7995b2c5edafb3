// The detection stage: scans the request's prompt segments (messages, tool arguments and results) before
// anything goes upstream, and leaves the findings on the exchange for policy, audit and signals.

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

  constructor(inspector: Inspector) {
    this.inspector = inspector;
  }

  requestBody(x: Exchange): void | Promise<void> {
    const req = x.request;
    if (!req) return;
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
        x.requestFindings = found.length === 0 ? NONE : found.map((f) => {
          const seg = segments[f.segment]!;
          const e: ExchangeFinding = { rule: f.rule, category: f.category, severity: f.severity, confidence: f.confidence, role: seg.role, path: seg.path, start: f.start, end: f.end, masked: f.masked };
          if (f.digest !== undefined) e.digest = f.digest;
          if (f.count !== undefined) e.count = f.count;
          return e;
        });
      },
      (err: Error & { code?: string }) => {
        x.inspectMs += performance.now() - t0;
        const code = (err.code ?? 'SLUICE_ENGINE_ERROR') as ErrorCode;
        x.inspectFailure = { kind: FAILURE_KIND[code] ?? 'inspect_crashed', code, message: err.message };
      },
    );
  }
}
