// Adapter for Anthropic's Messages API (/v1/messages), JSON and SSE.
// Its request filler and response state are exported because Bedrock's InvokeModel carries the same payloads.

import {
  sseEvent,
  routePath,
  arr,
  createResponseParser,
  isObject,
  jp,
  jsonText,
  num,
  parseRequestWith,
  str,
  type JsonObject,
  type RequestCollector,
  type ResponseBuilder,
  type ResponseHandlers,
} from './common.js';
import type { Adapter, ErrorBody, ParsedRequest, RequestInfo, ResponseHead, ResponseParser, ResponseParserOptions } from './types.js';

export function anthropicOperation(path: string): string {
  const p = routePath(path);
  return p.endsWith('/messages') ? 'messages' : 'unknown';
}

function blocks(c: RequestCollector, role: string, content: unknown, path: string): void {
  if (typeof content === 'string') {
    c.text(role, content, path);
    return;
  }
  const list = arr(content);
  for (let j = 0; j < list.length; j++) {
    const blk = list[j];
    if (!isObject(blk)) continue;
    const p = jp(path, j);
    switch (blk.type) {
      case 'tool_use':
      case 'server_tool_use':
        c.json(role, blk.input, `${p}.input`);
        break;
      case 'tool_result':
        // Tool output is what the caller's tools produced, so it gets its own role.
        blocks(c, 'tool', blk.content, `${p}.content`);
        break;
      case 'document':
        if (isObject(blk.source) && blk.source.type === 'text') c.text(role, blk.source.data, `${p}.source.data`);
        else if (isObject(blk.source) && blk.source.type === 'content') blocks(c, role, blk.source.content, `${p}.source.content`);
        break;
      default:
        if (typeof blk.text === 'string') c.text(role, blk.text, `${p}.text`);
        break;
    }
  }
}

/** Fills a collector from a Messages request body; shared with Bedrock InvokeModel. */
export function fillAnthropicRequest(body: JsonObject, c: RequestCollector): void {
  if (body.system !== undefined) blocks(c, 'system', body.system, 'system');
  const messages = arr(body.messages);
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!isObject(m)) continue;
    blocks(c, str(m.role) ?? 'unknown', m.content, `messages[${i}].content`);
  }
  for (const t of arr(body.tools)) if (isObject(t)) c.tool(t.name);
}

function parseRequest(body: Buffer, req: RequestInfo): ParsedRequest {
  return parseRequestWith(body, req.method, anthropicOperation(req.path), undefined, false, (obj, c) => {
    fillAnthropicRequest(obj, c);
    return { model: str(obj.model), stream: obj.stream === true };
  });
}

// ---------------------------------------------------------------------------------------------
// Responses

const STREAM_EVENTS = new Set([
  'message_start',
  'content_block_start',
  'content_block_delta',
  'content_block_stop',
  'message_delta',
  'message_stop',
  'ping',
  'error',
]);

/** True for an object shaped like a Messages stream event (Bedrock hands them over base64-wrapped). */
export function isAnthropicStreamEvent(v: unknown): v is JsonObject {
  return isObject(v) && typeof v.type === 'string' && STREAM_EVENTS.has(v.type);
}

/** True for a whole Messages response or error body. */
export function isAnthropicMessage(v: unknown): boolean {
  return isObject(v) && (v.type === 'message' || (v.type === 'error' && isObject(v.error)) || (Array.isArray(v.content) && 'stop_reason' in v));
}

/** Reassembles a Messages response, from a whole body or from its stream events. */
export class AnthropicResponseState {
  private sawStreamEvent = false;
  private sawStop = false;
  private readonly blockTypes = new Map<number, string>();

  constructor(private readonly b: ResponseBuilder) {}

  /** A whole (non-streamed) response body. */
  message(v: unknown): void {
    const b = this.b;
    if (!isObject(v)) {
      b.error('response JSON is not an object');
      return;
    }
    if (isObject(v.error)) b.setProviderError(v.error.type, v.error.message);
    const role = str(v.role) ?? 'assistant';
    const content = arr(v.content);
    for (let i = 0; i < content.length; i++) {
      const blk = content[i];
      if (!isObject(blk)) continue;
      switch (blk.type) {
        case 'text':
          b.text(`content[${i}].text`, role, blk.text);
          break;
        case 'thinking':
          b.text(`content[${i}].thinking`, 'thinking', blk.thinking);
          break;
        case 'tool_use':
        case 'server_tool_use':
          b.addTool(blk.id, blk.name, jsonText(blk.input ?? {}));
          break;
        default:
          break;
      }
    }
    b.setFinish(v.stop_reason);
    this.usage(v.usage);
  }

  /** One stream event object (the SSE data, or a decoded Bedrock chunk). */
  event(v: unknown): void {
    if (!isObject(v)) return;
    const b = this.b;
    this.sawStreamEvent = true;
    switch (v.type) {
      case 'message_start':
        if (isObject(v.message)) this.usage(v.message.usage);
        break;
      case 'content_block_start': {
        const idx = num(v.index) ?? 0;
        const blk = v.content_block;
        if (!isObject(blk)) break;
        const type = str(blk.type) ?? '';
        this.blockTypes.set(idx, type);
        if (type === 'tool_use' || type === 'server_tool_use') {
          const t = b.tool(`blk:${idx}`, blk.id, blk.name);
          // The start block carries `input: {}`; the real input follows as JSON fragments.
          t.defaultArgs = jsonText(blk.input ?? {});
        } else if (type === 'text') b.text(`content[${idx}].text`, 'assistant', blk.text);
        else if (type === 'thinking') b.text(`content[${idx}].thinking`, 'thinking', blk.thinking);
        break;
      }
      case 'content_block_delta': {
        const idx = num(v.index) ?? 0;
        const d = v.delta;
        if (!isObject(d)) break;
        switch (d.type) {
          case 'text_delta':
            b.text(`content[${idx}].text`, 'assistant', d.text);
            break;
          case 'input_json_delta':
            b.toolArgs(`blk:${idx}`, d.partial_json);
            break;
          case 'thinking_delta':
            b.text(`content[${idx}].thinking`, 'thinking', d.thinking);
            break;
          default:
            break;
        }
        break;
      }
      case 'message_delta':
        if (isObject(v.delta)) b.setFinish(v.delta.stop_reason);
        this.usage(v.usage);
        break;
      case 'message_stop':
        this.sawStop = true;
        break;
      case 'error':
        if (isObject(v.error)) b.setProviderError(v.error.type, v.error.message);
        else b.setProviderError(undefined, v.message);
        break;
      default:
        break;
    }
  }

  /** Flags a stream that stopped before `message_stop` (an aborted or cut connection). */
  end(): void {
    if (this.sawStreamEvent && !this.sawStop && this.b.providerError === undefined) this.b.error('stream ended before message_stop');
  }

  private usage(u: unknown): void {
    if (!isObject(u)) return;
    this.b.setUsage({ inputTokens: u.input_tokens, outputTokens: u.output_tokens });
  }
}

function responseParser(_req: RequestInfo, _parsed: ParsedRequest, head: ResponseHead, options?: ResponseParserOptions): ResponseParser {
  return createResponseParser(head, options, (b): ResponseHandlers => {
    const state = new AnthropicResponseState(b);
    return {
      json: (v) => state.message(v),
      sse: (_event, v) => state.event(v),
      end: (info) => {
        if (info.mode === 'sse') state.end();
      },
    };
  });
}

function errorBody(_status: number, code: string, message: string): ErrorBody {
  return {
    contentType: 'application/json',
    body: JSON.stringify({ type: 'error', error: { type: 'sluice_error', message, code } }),
  };
}

/** Anthropic streams end in error with `event: error`, which its SDKs raise as APIError. */
function streamErrorEvent(contentType: string, code: string, message: string): Buffer | null {
  if (!contentType.includes('text/event-stream')) return null;
  return sseEvent({ type: 'error', error: { type: 'sluice_error', message, code } }, 'error');
}

export const anthropicAdapter: Adapter = {
  format: 'anthropic',
  parseRequest,
  responseParser,
  errorBody,
  streamErrorEvent,
};
