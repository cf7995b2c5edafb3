// Adapter for Amazon Bedrock Runtime: Converse / ConverseStream, and InvokeModel(WithResponseStream)
// whose bodies are the model's native payload (Anthropic Messages, Nova, or anything else via generic).

import { fillAnthropicRequest, AnthropicResponseState, isAnthropicMessage, isAnthropicStreamEvent } from './anthropic.js';
import {
  routePath,
  arr,
  createResponseParser,
  errorText,
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
import { encodeEventStreamMessage, type EventStreamMessage } from './eventstream.js';
import { genericError, genericSegments, GenericStreamCollector, genericUsage } from './generic.js';
import type { Adapter, ErrorBody, ParsedRequest, RequestInfo, ResponseHead, ResponseParser, ResponseParserOptions } from './types.js';

const OPERATIONS: Record<string, string> = {
  converse: 'converse',
  'converse-stream': 'converseStream',
  invoke: 'invoke',
  'invoke-with-response-stream': 'invokeStream',
};

const MODEL_PATH = /\/model\/(.+)\/(converse-stream|converse|invoke-with-response-stream|invoke)$/;

/** Model id (URL-decoded: ARNs and inference profiles arrive percent-encoded) and operation. */
export function bedrockPath(path: string): { model?: string; operation: string } {
  const p = routePath(path);
  const m = MODEL_PATH.exec(p);
  if (!m) return { operation: 'unknown' };
  return { model: safeDecodeURIComponent(m[1]!), operation: OPERATIONS[m[2]!]! };
}

/** Anthropic model ids look like `anthropic.claude-…`, `us.anthropic.claude-…` (inference profiles)
 *  or end a foundation-model ARN (`…:foundation-model/anthropic.claude-…`). */
export function isAnthropicModelId(model: string | undefined): boolean {
  if (model === undefined) return false;
  return model.startsWith('anthropic.') || model.includes('.anthropic.') || model.includes('/anthropic.');
}

function converseContent(c: RequestCollector, role: string, content: unknown, path: string): void {
  const list = arr(content);
  for (let j = 0; j < list.length; j++) {
    const blk = list[j];
    if (!isObject(blk)) continue;
    const p = `${path}[${j}]`;
    if (typeof blk.text === 'string') c.text(role, blk.text, `${p}.text`);
    if (isObject(blk.toolUse)) c.json(role, blk.toolUse.input, `${p}.toolUse.input`);
    if (isObject(blk.toolResult)) {
      const parts = arr(blk.toolResult.content);
      for (let k = 0; k < parts.length; k++) {
        const part = parts[k];
        if (!isObject(part)) continue;
        const pp = `${p}.toolResult.content[${k}]`;
        if (typeof part.text === 'string') c.text('tool', part.text, `${pp}.text`);
        if (part.json !== undefined) c.json('tool', part.json, `${pp}.json`);
      }
    }
  }
}

/** Converse requests, and Nova's native InvokeModel body, which has the same shape. */
function fillConverse(body: JsonObject, c: RequestCollector): void {
  const sys = arr(body.system);
  for (let i = 0; i < sys.length; i++) {
    const s = sys[i];
    if (isObject(s)) c.text('system', s.text, `system[${i}].text`);
  }
  const messages = arr(body.messages);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (isObject(m)) converseContent(c, str(m.role) ?? 'unknown', m.content, `messages[${i}].content`);
  }
  const cfg = body.toolConfig;
  if (isObject(cfg)) for (const t of arr(cfg.tools)) if (isObject(t) && isObject(t.toolSpec)) c.tool(t.toolSpec.name);
}

function looksLikeConverse(body: JsonObject): boolean {
  return (typeof body.schemaVersion === 'string' && body.schemaVersion.startsWith('messages')) || isObject(body.inferenceConfig) || isObject(body.toolConfig);
}

function parseRequest(body: Buffer, req: RequestInfo): ParsedRequest {
  const { model, operation } = bedrockPath(req.path);
  const stream = operation === 'converseStream' || operation === 'invokeStream';
  let limited: string | undefined;
  const r = parseRequestWith(body, req.method, operation, model, stream, (obj, c) => {
    if (operation === 'converse' || operation === 'converseStream') {
      fillConverse(obj, c);
      return;
    }
    if (typeof obj.anthropic_version === 'string' || isAnthropicModelId(model)) {
      fillAnthropicRequest(obj, c);
    } else if (looksLikeConverse(obj)) {
      fillConverse(obj, c);
    } else {
      // Titan, Llama, Mistral, Cohere…: too many native shapes to track, so inspect every string.
      const g = genericSegments(obj);
      c.segments.push(...g.segments);
      limited = g.error;
    }
  });
  if (limited !== undefined) r.error = limited;
  return r;
}

// ---------------------------------------------------------------------------------------------
// Responses

function converseUsage(b: ResponseBuilder, u: unknown): void {
  if (isObject(u)) b.setUsage({ inputTokens: u.inputTokens, outputTokens: u.outputTokens, totalTokens: u.totalTokens });
}

/** Bedrock errors are `{"message": …}` with the type in a header (or `__type` from some paths). */
function bedrockError(b: ResponseBuilder, v: JsonObject, status: number): void {
  const message = v.message ?? v.Message;
  if (status >= 400 || v.__type !== undefined) {
    if (typeof message === 'string' || v.__type !== undefined) b.setProviderError(shortType(v.__type) ?? `http_${status}`, message);
  }
}

/** `__type` may be `com.amazon.coral.validate#ValidationException`; the name after `#` is what matters. */
function shortType(t: unknown): string | undefined {
  if (typeof t !== 'string' || t === '') return undefined;
  const i = t.lastIndexOf('#');
  return i === -1 ? t : t.slice(i + 1);
}

class BedrockResponse implements ResponseHandlers {
  private readonly anthropic: AnthropicResponseState;
  private readonly generic: GenericStreamCollector;
  private sawConverseEvent = false;
  private sawMessageStop = false;
  private sawAnthropicChunk = false;
  private role = 'assistant';

  constructor(
    private readonly b: ResponseBuilder,
    private readonly status: number,
  ) {
    this.anthropic = new AnthropicResponseState(b);
    this.generic = new GenericStreamCollector(b);
  }

  json(v: unknown): void {
    const b = this.b;
    if (!isObject(v)) {
      b.error('response JSON is not an object');
      return;
    }
    if (isObject(v.output) || v.stopReason !== undefined) {
      this.converseJson(v);
    } else if (isAnthropicMessage(v)) {
      this.anthropic.message(v);
    } else if (typeof v.message === 'string' || typeof v.Message === 'string' || v.__type !== undefined) {
      bedrockError(b, v, this.status);
    } else {
      this.generic.document(v);
      genericError(b, v, this.status);
    }
  }

  eventStream(m: EventStreamMessage): void {
    const b = this.b;
    const h = m.headers;
    const messageType = h[':message-type'];
    if (messageType === 'error') {
      b.setProviderError(h[':error-code'], h[':error-message']);
      return;
    }
    const payload = this.payload(m);
    if (messageType === 'exception') {
      const message = isObject(payload) ? (payload.message ?? payload.Message) : m.payload.toString('utf8');
      b.setProviderError(h[':exception-type'], message);
      return;
    }
    if (!isObject(payload)) return;
    const eventType = str(h[':event-type']) ?? '';
    if (eventType === 'chunk') this.invokeChunk(payload);
    else this.converseEvent(eventType, payload);
  }

  end(info: { mode: string | undefined }): void {
    if (info.mode !== 'eventstream' || this.b.providerError !== undefined) return;
    if (this.sawAnthropicChunk) this.anthropic.end();
    else if (this.sawConverseEvent && !this.sawMessageStop) this.b.error('stream ended before messageStop');
  }

  private payload(m: EventStreamMessage): unknown {
    if (m.payload.length === 0) return undefined;
    try {
      return JSON.parse(m.payload.toString('utf8'));
    } catch (err) {
      this.b.error(`event-stream payload: invalid JSON: ${errorText(err)}`);
      return undefined;
    }
  }

  private converseJson(v: JsonObject): void {
    const b = this.b;
    const out = v.output;
    const msg = isObject(out) ? out.message : undefined;
    if (isObject(msg)) {
      const role = str(msg.role) ?? 'assistant';
      const content = arr(msg.content);
      for (let i = 0; i < content.length; i++) {
        const blk = content[i];
        if (!isObject(blk)) continue;
        const p = `output.message.content[${i}]`;
        b.text(`${p}.text`, role, blk.text);
        if (isObject(blk.toolUse)) b.addTool(blk.toolUse.toolUseId, blk.toolUse.name, jsonText(blk.toolUse.input ?? {}));
        const rc = blk.reasoningContent;
        if (isObject(rc) && isObject(rc.reasoningText)) b.text(`${p}.reasoningContent.reasoningText.text`, 'reasoning', rc.reasoningText.text);
      }
    }
    b.setFinish(v.stopReason);
    converseUsage(b, v.usage);
  }

  private converseEvent(eventType: string, v: JsonObject): void {
    const b = this.b;
    this.sawConverseEvent = true;
    const idx = num(v.contentBlockIndex) ?? 0;
    switch (eventType) {
      case 'messageStart':
        if (typeof v.role === 'string') this.role = v.role;
        break;
      case 'contentBlockStart': {
        const start = v.start;
        if (isObject(start) && isObject(start.toolUse)) b.tool(`blk:${idx}`, start.toolUse.toolUseId, start.toolUse.name);
        break;
      }
      case 'contentBlockDelta': {
        const d = v.delta;
        if (!isObject(d)) break;
        b.text(`output.message.content[${idx}].text`, this.role, d.text);
        if (isObject(d.toolUse)) b.toolArgs(`blk:${idx}`, d.toolUse.input);
        const rc = d.reasoningContent;
        if (isObject(rc)) b.text(`output.message.content[${idx}].reasoningContent.reasoningText.text`, 'reasoning', rc.text);
        break;
      }
      case 'messageStop':
        this.sawMessageStop = true;
        b.setFinish(v.stopReason);
        break;
      case 'metadata':
        converseUsage(b, v.usage);
        break;
      default:
        break;
    }
  }

  /** InvokeModelWithResponseStream: each chunk is `{"bytes":"<base64 of one native stream event>"}`. */
  private invokeChunk(v: JsonObject): void {
    const b = this.b;
    if (typeof v.bytes !== 'string') return;
    let inner: unknown;
    try {
      inner = JSON.parse(Buffer.from(v.bytes, 'base64').toString('utf8'));
    } catch (err) {
      b.error(`invoke stream chunk: invalid JSON: ${errorText(err)}`);
      return;
    }
    if (isAnthropicStreamEvent(inner)) {
      this.sawAnthropicChunk = true;
      this.anthropic.event(inner);
      // Bedrock adds its own token counts to the last event.
      if (isObject(inner['amazon-bedrock-invocationMetrics']) && this.b.usage === undefined) genericUsage(b, inner);
    } else {
      this.generic.event(inner);
      if (isObject(inner)) {
        const reason = inner.stop_reason ?? inner.stopReason ?? inner.completionReason ?? inner.finish_reason;
        b.setFinish(reason);
      }
    }
  }
}

/** Shape-driven rather than operation-driven: Converse, native Anthropic and Nova bodies and both
 *  stream kinds are told apart by their content, which survives odd paths and mislabelled requests. */
function responseParser(_req: RequestInfo, _parsed: ParsedRequest, head: ResponseHead, options?: ResponseParserOptions): ResponseParser {
  return createResponseParser(head, options, (b) => new BedrockResponse(b, head.status));
}

const EXCEPTIONS: Record<number, string> = {
  400: 'ValidationException',
  401: 'AccessDeniedException',
  403: 'AccessDeniedException',
  404: 'ResourceNotFoundException',
  408: 'ModelTimeoutException',
  413: 'ValidationException',
  424: 'ModelErrorException',
  429: 'ThrottlingException',
  500: 'InternalServerException',
  502: 'ServiceUnavailableException',
  503: 'ServiceUnavailableException',
  504: 'ModelTimeoutException',
};

/** The Bedrock exception name an HTTP status corresponds to. */
export function bedrockExceptionType(status: number): string {
  return EXCEPTIONS[status] ?? (status >= 500 ? 'InternalServerException' : 'ValidationException');
}

function errorBody(status: number, code: string, message: string): ErrorBody {
  // AWS SDKs take the exception name from the `x-amzn-errortype` header or, failing that, `__type`;
  // a `code` field would take precedence over `__type`, so Sluice's code goes in its own field.
  return {
    contentType: 'application/json',
    body: JSON.stringify({ __type: bedrockExceptionType(status), message, sluiceCode: code }),
  };
}

/** An exception frame in the AWS event stream; the SDKs raise it as that modeled exception. */
function streamErrorEvent(contentType: string, code: string, message: string): Buffer | null {
  if (!contentType.includes('vnd.amazon.eventstream')) return null;
  const type = 'validationException';
  return encodeEventStreamMessage(
    { ':message-type': 'exception', ':exception-type': type, ':content-type': 'application/json' },
    Buffer.from(JSON.stringify({ message, sluiceCode: code })),
  );
}

export const bedrockAdapter: Adapter = {
  format: 'bedrock',
  parseRequest,
  responseParser,
  errorBody,
  streamErrorEvent,
};
