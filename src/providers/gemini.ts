// Adapter for Google's Gemini API (generateContent / streamGenerateContent, AI Studio and Vertex paths).
// Streams come as SSE with `?alt=sse`, otherwise as one JSON array whose elements are parsed as they complete.

import {
  sseEvent,
  routePath,
  arr,
  createResponseParser,
  isObject,
  jsonText,
  num,
  parseRequestWith,
  safeDecodeURIComponent,
  str,
  type JsonObject,
  type RequestCollector,
  type ResponseBuilder,
  type ResponseHandlers,
} from './common.js';
import type { Adapter, ErrorBody, ParsedRequest, RequestInfo, ResponseHead, ResponseParser, ResponseParserOptions } from './types.js';

const METHOD_PATH = /\/(?:models|tunedModels)\/([^/:]+):([A-Za-z]+)$/;

/** Model and operation from `/v1beta/models/{model}:{method}` (or Vertex's longer form). */
export function geminiPath(path: string): { model?: string; operation: string } {
  const p = routePath(path, false);
  const m = METHOD_PATH.exec(p);
  if (!m) return { operation: 'unknown' };
  const method = m[2]!;
  const operation = method === 'generateContent' || method === 'streamGenerateContent' ? method : 'unknown';
  return { model: safeDecodeURIComponent(m[1]!), operation };
}

function parts(c: RequestCollector, role: string, list: unknown, path: string): void {
  const ps = arr(list);
  for (let j = 0; j < ps.length; j++) {
    const part = ps[j];
    if (!isObject(part)) continue;
    const p = `${path}[${j}]`;
    if (typeof part.text === 'string') c.text(role, part.text, `${p}.text`);
    const fc = part.functionCall ?? part.function_call;
    if (isObject(fc)) c.json(role, fc.args, `${p}.${part.functionCall !== undefined ? 'functionCall' : 'function_call'}.args`);
    const fr = part.functionResponse ?? part.function_response;
    if (isObject(fr)) c.json('tool', fr.response, `${p}.${part.functionResponse !== undefined ? 'functionResponse' : 'function_response'}.response`);
  }
}

function fillRequest(body: JsonObject, c: RequestCollector): void {
  // The REST API accepts both camelCase and snake_case field names.
  const sysKey = body.systemInstruction !== undefined ? 'systemInstruction' : 'system_instruction';
  const sys = body[sysKey];
  if (typeof sys === 'string') c.text('system', sys, sysKey);
  else if (isObject(sys)) parts(c, 'system', sys.parts, `${sysKey}.parts`);
  const contents = arr(body.contents);
  for (let i = 0; i < contents.length; i++) {
    const ct = contents[i];
    if (isObject(ct)) parts(c, str(ct.role) ?? 'user', ct.parts, `contents[${i}].parts`);
  }
  // embedContent / countTokens style single content.
  if (isObject(body.content)) parts(c, str(body.content.role) ?? 'user', body.content.parts, 'content.parts');
  for (const t of arr(body.tools)) {
    if (!isObject(t)) continue;
    for (const fd of arr(t.functionDeclarations ?? t.function_declarations)) if (isObject(fd)) c.tool(fd.name);
  }
}

function parseRequest(body: Buffer, req: RequestInfo): ParsedRequest {
  const { model, operation } = geminiPath(req.path);
  const stream = operation === 'streamGenerateContent';
  return parseRequestWith(body, req.method, operation, model, stream, (obj, c) => {
    fillRequest(obj, c);
  });
}

// ---------------------------------------------------------------------------------------------
// Responses

class GeminiResponse implements ResponseHandlers {
  private sawFinish = false;

  constructor(
    private readonly b: ResponseBuilder,
    private readonly stream: boolean,
  ) {}

  json(v: unknown): void {
    if (!isObject(v)) {
      this.b.error('response JSON is not an object');
      return;
    }
    this.chunk(v);
  }

  sse(_event: string, v: unknown): void {
    if (isObject(v)) this.chunk(v);
  }

  end(info: { mode: string | undefined }): void {
    if (!this.stream || info.mode === 'json' || this.b.providerError !== undefined) return;
    if (!this.sawFinish) this.b.error('stream ended without finishReason');
  }

  private chunk(v: JsonObject): void {
    const b = this.b;
    if (isObject(v.error)) {
      const e = v.error;
      b.setProviderError(e.status ?? e.code, e.message);
    }
    const cands = arr(v.candidates);
    for (let pos = 0; pos < cands.length; pos++) {
      const cand = cands[pos];
      if (!isObject(cand)) continue;
      const ci = num(cand.index) ?? pos;
      const content = cand.content;
      if (isObject(content)) {
        const role = str(content.role) ?? 'model';
        const ps = arr(content.parts);
        for (let j = 0; j < ps.length; j++) {
          const part = ps[j];
          if (!isObject(part)) continue;
          // Stream chunks restart part numbering, so the same path accumulates the whole text.
          if (typeof part.text === 'string') b.text(`candidates[${ci}].content.parts[${j}].text`, part.thought === true ? 'thought' : role, part.text);
          const fc = part.functionCall;
          if (isObject(fc)) b.addTool(fc.id, fc.name, jsonText(fc.args ?? {}));
        }
      }
      if (typeof cand.finishReason === 'string') {
        this.sawFinish = true;
        if (ci === 0 || b.finishReason === undefined) b.setFinish(cand.finishReason);
      }
    }
    if (isObject(v.promptFeedback) && typeof v.promptFeedback.blockReason === 'string') {
      this.sawFinish = true;
      if (b.finishReason === undefined) b.setFinish(v.promptFeedback.blockReason);
    }
    const u = v.usageMetadata;
    if (isObject(u)) b.setUsage({ inputTokens: u.promptTokenCount, outputTokens: u.candidatesTokenCount, totalTokens: u.totalTokenCount });
  }
}

function responseParser(req: RequestInfo, parsed: ParsedRequest, head: ResponseHead, options?: ResponseParserOptions): ResponseParser {
  const stream = parsed.stream || geminiPath(req.path).operation === 'streamGenerateContent';
  return createResponseParser(head, options, (b) => new GeminiResponse(b, stream), { jsonSequence: true });
}

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  413: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** google.rpc.Status name for an HTTP status, as Google's SDKs expect in `error.status`. */
export function googleStatusName(status: number): string {
  return STATUS_NAMES[status] ?? (status >= 500 ? 'INTERNAL' : status >= 400 ? 'FAILED_PRECONDITION' : 'UNKNOWN');
}

function errorBody(status: number, code: string, message: string): ErrorBody {
  return {
    contentType: 'application/json',
    body: JSON.stringify({
      error: {
        code: status,
        message,
        status: googleStatusName(status),
        // ErrorInfo is how Google APIs carry a machine-readable reason next to the status.
        details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: code, domain: 'sluice' }],
      },
    }),
  };
}

/** Gemini's SSE (alt=sse) carries errors as a `data:` object with `error`, the same shape as its JSON errors. */
function streamErrorEvent(contentType: string, code: string, message: string): Buffer | null {
  if (!contentType.includes('text/event-stream')) return null;
  return sseEvent({ error: { code: 403, message, status: googleStatusName(403), details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: code, domain: 'sluice' }] } });
}

export const geminiAdapter: Adapter = {
  format: 'gemini',
  parseRequest,
  responseParser,
  errorBody,
  streamErrorEvent,
};
