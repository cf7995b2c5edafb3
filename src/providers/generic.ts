// Fallback adapter for APIs Sluice has no format for: every string in the JSON becomes a segment.
// Crude but never blind: unknown providers still get their text inspected, within fixed work bounds.

import {
  sseEvent,
  createResponseParser,
  errorText,
  failedRequest,
  isObject,
  jp,
  num,
  parseJsonBody,
  str,
  type ResponseBuilder,
  type ResponseHandlers,
} from './common.js';
import type { Adapter, ErrorBody, ParsedRequest, RequestInfo, ResponseHead, ResponseParser, ResponseParserOptions, TextSegment } from './types.js';

/** Bounds on one walk, so a hostile body cannot make the walk itself the problem. */
export const GENERIC_MAX_DEPTH = 64;
export const GENERIC_MAX_NODES = 200_000;
export const GENERIC_MAX_SEGMENTS = 10_000;

export interface WalkResult {
  /** Set when a bound stopped the walk early. */
  limited?: string;
}

/**
 * Calls `emit` for every string value in document order with its path. Object keys are not
 * emitted: they are schema, not content.
 */
export function walkStrings(value: unknown, base: string, emit: (path: string, text: string) => void, maxNodes = GENERIC_MAX_NODES): WalkResult {
  let nodes = 0;
  let limited: string | undefined;
  const visit = (v: unknown, path: string, depth: number): void => {
    if (limited !== undefined) return;
    if (++nodes > maxNodes) {
      limited = `more than ${maxNodes} JSON values; the rest was not inspected`;
      return;
    }
    if (typeof v === 'string') {
      emit(path, v);
      return;
    }
    if (typeof v !== 'object' || v === null) return;
    if (depth >= GENERIC_MAX_DEPTH) {
      limited = `JSON nested deeper than ${GENERIC_MAX_DEPTH}; deeper values were not inspected`;
      return;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length && limited === undefined; i++) {
        const x = v[i];
        // Skip numbers without building a path: embeddings are long arrays of them.
        if (typeof x === 'object' && x !== null) visit(x, jp(path, i), depth + 1);
        else if (typeof x === 'string') visit(x, jp(path, i), depth + 1);
        else nodes++;
      }
      return;
    }
    for (const k in v as Record<string, unknown>) {
      if (limited !== undefined) return;
      const x = (v as Record<string, unknown>)[k];
      if ((typeof x === 'object' && x !== null) || typeof x === 'string') visit(x, jp(path, k), depth + 1);
      else nodes++;
    }
  };
  visit(value, base, 0);
  return limited === undefined ? {} : { limited };
}

/** Every non-empty string of a request body as a segment, bounded; `error` says what a bound cut off. */
export function genericSegments(value: unknown): { segments: TextSegment[]; error?: string } {
  const segments: TextSegment[] = [];
  let capped = false;
  const res = walkStrings(value, '', (path, text) => {
    if (text.length === 0) return;
    if (segments.length >= GENERIC_MAX_SEGMENTS) {
      capped = true;
      return;
    }
    segments.push({ role: 'unknown', text, path });
  });
  if (res.limited) return { segments, error: res.limited };
  if (capped) return { segments, error: `more than ${GENERIC_MAX_SEGMENTS} strings; the rest was not inspected` };
  return { segments };
}

function parseRequest(body: Buffer, req: RequestInfo): ParsedRequest {
  try {
    const p = parseJsonBody(body);
    if (!p.ok) {
      if (body.length === 0 && /^(GET|HEAD|DELETE|OPTIONS)$/i.test(req.method)) return { parsed: true, operation: 'unknown', stream: false, segments: [], tools: [] };
      return failedRequest('unknown', p.error);
    }
    const v = p.value;
    const g = genericSegments(v);
    const r: ParsedRequest = {
      parsed: true,
      operation: 'unknown',
      stream: isObject(v) && v.stream === true,
      segments: g.segments,
      tools: [],
    };
    const model = isObject(v) ? str(v.model) : undefined;
    if (model) r.model = model;
    if (g.error) r.error = g.error;
    return r;
  } catch (err) {
    return failedRequest('unknown', `request parse failed: ${errorText(err)}`);
  }
}

interface PathState {
  first: string;
  repeats: number;
  varying: boolean;
}

/**
 * Collects strings from a sequence of stream events. Same-path strings are concatenated, which
 * reassembles delta-style streams of any shape; a path whose value never changes (ids, model names,
 * object tags) is kept once, and its held-back repeats are restored if it later turns out to vary.
 */
export class GenericStreamCollector {
  private readonly paths = new Map<string, PathState>();
  private capped = false;

  constructor(private readonly b: ResponseBuilder) {}

  /** A whole JSON body: every string is its own segment. */
  document(v: unknown): void {
    const b = this.b;
    const res = walkStrings(v, '', (path, text) => b.text(path, 'unknown', text));
    if (res.limited) b.error(res.limited);
    genericUsage(b, v);
  }

  event(v: unknown): void {
    const res = walkStrings(v, '', (path, text) => this.add(path, text));
    if (res.limited) this.b.error(res.limited);
    genericUsage(this.b, v);
  }

  private add(path: string, text: string): void {
    if (text.length === 0) return;
    const b = this.b;
    const st = this.paths.get(path);
    if (st === undefined) {
      if (this.paths.size >= GENERIC_MAX_SEGMENTS) {
        if (!this.capped) b.error(`more than ${GENERIC_MAX_SEGMENTS} distinct paths in stream; the rest was not inspected`);
        this.capped = true;
        return;
      }
      this.paths.set(path, { first: text, repeats: 0, varying: false });
      b.text(path, 'unknown', text);
      return;
    }
    if (!st.varying) {
      if (text === st.first) {
        st.repeats++;
        return;
      }
      st.varying = true;
      for (let i = 0; i < st.repeats; i++) b.text(path, 'unknown', st.first);
    }
    b.text(path, 'unknown', text);
  }
}

/** Best-effort usage from the common spellings, so unknown providers still get token counts. */
export function genericUsage(b: ResponseBuilder, v: unknown): void {
  if (!isObject(v)) return;
  const u = isObject(v.usage) ? v.usage : isObject(v.usageMetadata) ? v.usageMetadata : isObject(v['amazon-bedrock-invocationMetrics']) ? v['amazon-bedrock-invocationMetrics'] : undefined;
  if (u === undefined) return;
  b.setUsage({
    inputTokens: num(u.prompt_tokens) ?? num(u.input_tokens) ?? num(u.inputTokens) ?? num(u.promptTokenCount) ?? num(u.inputTokenCount),
    outputTokens: num(u.completion_tokens) ?? num(u.output_tokens) ?? num(u.outputTokens) ?? num(u.candidatesTokenCount) ?? num(u.outputTokenCount),
    totalTokens: num(u.total_tokens) ?? num(u.totalTokens) ?? num(u.totalTokenCount),
  });
}

/** Error shapes most JSON APIs use: `{error:{message,type|code}}`, `{error:"…"}`, `{message}` on a failure status. */
export function genericError(b: ResponseBuilder, v: unknown, status: number): void {
  if (!isObject(v)) return;
  const e = v.error;
  if (isObject(e)) b.setProviderError(e.type ?? e.status ?? e.code, e.message ?? e.msg);
  else if (typeof e === 'string' && e !== '') b.setProviderError(v.type ?? v.code, v.message ?? e);
  else if (status >= 400 && (typeof v.message === 'string' || typeof v.Message === 'string')) b.setProviderError(v.__type ?? v.code ?? v.type ?? `http_${status}`, v.message ?? v.Message);
}

function responseParser(_req: RequestInfo, _parsed: ParsedRequest, head: ResponseHead, options?: ResponseParserOptions): ResponseParser {
  return createResponseParser(head, options, (b): ResponseHandlers => {
    const c = new GenericStreamCollector(b);
    return {
      json: (v) => {
        c.document(v);
        genericError(b, v, head.status);
      },
      sse: (_event, v) => {
        c.event(v);
        genericError(b, v, 0);
      },
      eventStream: (m) => {
        if (m.payload.length === 0) return;
        let v: unknown;
        try {
          v = JSON.parse(m.payload.toString('utf8'));
        } catch (err) {
          b.error(`event-stream payload: invalid JSON: ${errorText(err)}`);
          return;
        }
        c.event(v);
      },
    };
  });
}

function errorBody(status: number, code: string, message: string): ErrorBody {
  return {
    contentType: 'application/json',
    body: JSON.stringify({ error: { message, type: 'sluice_error', code, status } }),
  };
}

/** Unknown formats: an SSE `error` event is the common convention; anything else is cut instead. */
function streamErrorEvent(contentType: string, code: string, message: string): Buffer | null {
  if (!contentType.includes('text/event-stream')) return null;
  return sseEvent({ error: { code, message } }, 'error');
}

export const genericAdapter: Adapter = {
  format: 'generic',
  parseRequest,
  responseParser,
  errorBody,
  streamErrorEvent,
};
