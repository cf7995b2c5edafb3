// Adapter for OpenAI's wire format: Chat Completions, Responses, Embeddings and legacy Completions,
// as spoken by OpenAI, Azure OpenAI and the many OpenAI-compatible providers (matched on path suffix).

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
  safeDecodeURIComponent,
  str,
  type JsonObject,
  type RequestCollector,
  type ResponseBuilder,
  type ResponseHandlers,
} from './common.js';
import type { Adapter, ErrorBody, ParsedRequest, RequestInfo, ResponseHead, ResponseParser, ResponseParserOptions } from './types.js';

/** Operation from the path suffix, since compatible providers put anything before `/chat/completions`. */
export function openaiOperation(path: string): string {
  const p = routePath(path);
  if (p.endsWith('/chat/completions')) return 'chat.completions';
  if (p.endsWith('/responses')) return 'responses';
  if (p.endsWith('/embeddings')) return 'embeddings';
  if (p.endsWith('/completions')) return 'completions';
  return 'unknown';
}

const AZURE_DEPLOYMENT = /\/openai\/deployments\/([^/]+)\//;

/** Azure names the model by deployment in the path and may leave `model` out of the body. */
export function azureDeployment(path: string): string | undefined {
  const m = AZURE_DEPLOYMENT.exec(path);
  return m ? safeDecodeURIComponent(m[1]!) : undefined;
}

/** Text parts of a `content` that is either a string or an array of parts; images and audio are skipped. */
function contentText(c: RequestCollector, role: string, content: unknown, path: string): void {
  if (typeof content === 'string') {
    c.text(role, content, path);
    return;
  }
  const parts = arr(content);
  for (let j = 0; j < parts.length; j++) {
    const part = parts[j];
    if (typeof part === 'string') c.text(role, part, jp(path, j));
    else if (isObject(part)) {
      if (typeof part.text === 'string') c.text(role, part.text, jp(jp(path, j), 'text'));
      else if (typeof part.refusal === 'string') c.text(role, part.refusal, jp(jp(path, j), 'refusal'));
    }
  }
}

function chatMessages(c: RequestCollector, messages: unknown[]): void {
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!isObject(m)) continue;
    const role = str(m.role) ?? 'unknown';
    const base = `messages[${i}]`;
    contentText(c, role, m.content, jp(base, 'content'));
    const calls = arr(m.tool_calls);
    for (let k = 0; k < calls.length; k++) {
      const tc = calls[k];
      if (isObject(tc) && isObject(tc.function)) c.json(role, tc.function.arguments, `${base}.tool_calls[${k}].function.arguments`);
    }
    if (isObject(m.function_call)) c.json(role, m.function_call.arguments, `${base}.function_call.arguments`);
  }
}

/** `input` is a string, a list of strings (embeddings) or a list of Responses items; token arrays are skipped. */
function inputItems(c: RequestCollector, input: unknown): void {
  if (typeof input === 'string') {
    c.text('user', input, 'input');
    return;
  }
  const items = arr(input);
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const base = `input[${i}]`;
    if (typeof item === 'string') {
      c.text('user', item, base);
      continue;
    }
    if (!isObject(item)) continue;
    const type = str(item.type);
    if (type === 'function_call' || type === 'custom_tool_call') {
      c.json('assistant', type === 'function_call' ? item.arguments : item.input, jp(base, type === 'function_call' ? 'arguments' : 'input'));
    } else if (type === 'function_call_output' || type === 'custom_tool_call_output') {
      contentText(c, 'tool', item.output, jp(base, 'output'));
    } else if (item.content !== undefined) {
      contentText(c, str(item.role) ?? 'user', item.content, jp(base, 'content'));
    }
  }
}

function fillRequest(body: JsonObject, c: RequestCollector): void {
  if (typeof body.instructions === 'string') c.text('system', body.instructions, 'instructions');
  if (Array.isArray(body.messages)) chatMessages(c, body.messages);
  if (body.input !== undefined) inputItems(c, body.input);
  const prompt = body.prompt;
  if (typeof prompt === 'string') c.text('user', prompt, 'prompt');
  else if (Array.isArray(prompt)) for (let i = 0; i < prompt.length; i++) c.text('user', prompt[i], `prompt[${i}]`);
  if (typeof body.suffix === 'string') c.text('user', body.suffix, 'suffix');
  for (const t of arr(body.tools)) {
    if (!isObject(t)) continue;
    // Built-in tools (web_search, file_search…) have no name; their type is what the request asks for.
    const name = isObject(t.function) ? t.function.name : t.name ?? (t.type !== 'function' ? t.type : undefined);
    c.tool(name);
  }
  for (const f of arr(body.functions)) if (isObject(f)) c.tool(f.name);
}

function parseRequest(body: Buffer, req: RequestInfo): ParsedRequest {
  const operation = openaiOperation(req.path);
  const deployment = azureDeployment(req.path);
  return parseRequestWith(body, req.method, operation, deployment, false, (obj, c) => {
    fillRequest(obj, c);
    return { model: str(obj.model) ?? deployment, stream: obj.stream === true };
  });
}

// ---------------------------------------------------------------------------------------------
// Responses

function usageFrom(b: ResponseBuilder, u: unknown): void {
  if (!isObject(u)) return;
  b.setUsage({
    inputTokens: u.prompt_tokens ?? u.input_tokens,
    outputTokens: u.completion_tokens ?? u.output_tokens,
    totalTokens: u.total_tokens,
  });
}

function errorFrom(b: ResponseBuilder, e: unknown): void {
  if (isObject(e)) b.setProviderError(e.type ?? e.code, e.message);
  else if (typeof e === 'string') b.setProviderError(undefined, e);
}

class OpenAIResponse implements ResponseHandlers {
  private sawChatChunk = false;
  private sawChatFinish = false;
  private sawResponsesEvent = false;
  private sawTerminal = false;
  private readonly chatRoles = new Map<number, string>();

  constructor(private readonly b: ResponseBuilder) {}

  json(v: unknown): void {
    const b = this.b;
    if (!isObject(v)) {
      b.error('response JSON is not an object');
      return;
    }
    if (v.error !== undefined && v.error !== null) errorFrom(b, v.error);
    if (Array.isArray(v.choices)) this.chatChoices(v.choices);
    if (Array.isArray(v.output)) this.responseObject(v);
    usageFrom(b, v.usage);
  }

  sse(event: string, v: unknown): void {
    if (!isObject(v)) return;
    const type = str(v.type) ?? event;
    if (type.startsWith('response.') || type === 'error') {
      this.sawResponsesEvent = true;
      this.responsesEvent(type, v);
      return;
    }
    if (Array.isArray(v.choices)) {
      this.sawChatChunk = true;
      this.chatChunk(v.choices);
    }
    if (isObject(v.usage)) usageFrom(this.b, v.usage);
    // Compatible providers report mid-stream failures as a bare `{"error":{…}}` chunk.
    if (v.error !== undefined && v.error !== null) errorFrom(this.b, v.error);
  }

  end(info: { mode: string | undefined; sseDone: boolean }): void {
    const b = this.b;
    if (info.mode !== 'sse' || b.providerError !== undefined) return;
    if (this.sawResponsesEvent && !this.sawTerminal) b.error('stream ended before response.completed');
    else if (this.sawChatChunk && !info.sseDone && !this.sawChatFinish) b.error('stream ended before [DONE]');
  }

  private setFinish(index: number, reason: unknown): void {
    if (index === 0 || this.b.finishReason === undefined) this.b.setFinish(reason);
  }

  private chatChoices(choices: unknown[]): void {
    const b = this.b;
    for (let pos = 0; pos < choices.length; pos++) {
      const ch = choices[pos];
      if (!isObject(ch)) continue;
      const i = num(ch.index) ?? pos;
      const base = `choices[${i}]`;
      const msg = ch.message;
      if (isObject(msg)) {
        const role = str(msg.role) ?? 'assistant';
        if (typeof msg.content === 'string') b.text(`${base}.message.content`, role, msg.content);
        else {
          const parts = arr(msg.content);
          for (let j = 0; j < parts.length; j++) {
            const p = parts[j];
            if (isObject(p)) b.text(`${base}.message.content[${j}].text`, role, p.text);
          }
        }
        b.text(`${base}.message.refusal`, role, msg.refusal);
        // DeepSeek, vLLM and OpenRouter-style reasoning text rides next to the content.
        b.text(`${base}.message.reasoning_content`, 'reasoning', msg.reasoning_content);
        b.text(`${base}.message.reasoning`, 'reasoning', msg.reasoning);
        for (const tc of arr(msg.tool_calls)) {
          if (!isObject(tc)) continue;
          const fn = isObject(tc.function) ? tc.function : {};
          b.addTool(tc.id, fn.name, jsonText(fn.arguments));
        }
        if (isObject(msg.function_call)) b.addTool(undefined, msg.function_call.name, jsonText(msg.function_call.arguments));
      }
      b.text(`${base}.text`, 'assistant', ch.text);
      this.setFinish(i, ch.finish_reason);
    }
  }

  private chatChunk(choices: unknown[]): void {
    const b = this.b;
    for (let pos = 0; pos < choices.length; pos++) {
      const ch = choices[pos];
      if (!isObject(ch)) continue;
      const i = num(ch.index) ?? pos;
      const base = `choices[${i}]`;
      const d = ch.delta;
      if (isObject(d)) {
        let role = this.chatRoles.get(i);
        if (typeof d.role === 'string' && d.role !== '') {
          role = d.role;
          this.chatRoles.set(i, role);
        }
        role ??= 'assistant';
        if (typeof d.content === 'string') b.text(`${base}.message.content`, role, d.content);
        if (typeof d.refusal === 'string') b.text(`${base}.message.refusal`, role, d.refusal);
        if (typeof d.reasoning_content === 'string') b.text(`${base}.message.reasoning_content`, 'reasoning', d.reasoning_content);
        if (typeof d.reasoning === 'string') b.text(`${base}.message.reasoning`, 'reasoning', d.reasoning);
        const calls = arr(d.tool_calls);
        for (let k = 0; k < calls.length; k++) {
          const tc = calls[k];
          if (!isObject(tc)) continue;
          // Fragments of one call share `index`; only the first carries id and name.
          const key = `${i}:${num(tc.index) ?? k}`;
          const fn = isObject(tc.function) ? tc.function : {};
          b.tool(key, tc.id, fn.name);
          b.toolArgs(key, fn.arguments);
        }
        if (isObject(d.function_call)) {
          const key = `${i}:function_call`;
          b.tool(key, undefined, d.function_call.name);
          b.toolArgs(key, d.function_call.arguments);
        }
      }
      if (typeof ch.text === 'string') b.text(`${base}.text`, 'assistant', ch.text);
      if (typeof ch.finish_reason === 'string') {
        this.sawChatFinish = true;
        this.setFinish(i, ch.finish_reason);
      }
    }
  }

  private responseObject(r: JsonObject): void {
    const out = arr(r.output);
    for (let i = 0; i < out.length; i++) this.outputItem(i, out[i], false);
    if (r.error !== undefined && r.error !== null) errorFrom(this.b, r.error);
    const reason = isObject(r.incomplete_details) ? r.incomplete_details.reason : undefined;
    this.b.setFinish(reason ?? r.status);
    usageFrom(this.b, r.usage);
  }

  /** One Responses API output item; from a stream's `.done` event it only fills what deltas missed. */
  private outputItem(i: number, item: unknown, fromStream: boolean): void {
    const b = this.b;
    if (!isObject(item)) return;
    const base = `output[${i}]`;
    switch (item.type) {
      case 'message': {
        const role = str(item.role) ?? 'assistant';
        const parts = arr(item.content);
        for (let j = 0; j < parts.length; j++) {
          const p = parts[j];
          if (!isObject(p)) continue;
          const key = p.type === 'refusal' ? 'refusal' : 'text';
          const path = `${base}.content[${j}].${key}`;
          if (!fromStream || !b.hasText(path, role)) b.text(path, role, p[key]);
        }
        break;
      }
      case 'function_call':
      case 'custom_tool_call': {
        const key = `out:${i}`;
        b.tool(key, item.call_id ?? item.id, item.name);
        b.toolSetArgs(key, jsonText(item.type === 'function_call' ? item.arguments : item.input));
        break;
      }
      case 'reasoning': {
        const parts = arr(item.summary);
        for (let j = 0; j < parts.length; j++) {
          const p = parts[j];
          const path = `${base}.summary[${j}].text`;
          if (isObject(p) && (!fromStream || !b.hasText(path, 'reasoning'))) b.text(path, 'reasoning', p.text);
        }
        break;
      }
      default:
        break;
    }
  }

  private responsesEvent(type: string, v: JsonObject): void {
    const b = this.b;
    const oi = num(v.output_index) ?? 0;
    switch (type) {
      case 'response.output_text.delta':
        b.text(`output[${oi}].content[${num(v.content_index) ?? 0}].text`, 'assistant', v.delta);
        break;
      case 'response.output_text.done': {
        const path = `output[${oi}].content[${num(v.content_index) ?? 0}].text`;
        if (!b.hasText(path, 'assistant')) b.text(path, 'assistant', v.text);
        break;
      }
      case 'response.refusal.delta':
        b.text(`output[${oi}].content[${num(v.content_index) ?? 0}].refusal`, 'assistant', v.delta);
        break;
      case 'response.reasoning_summary_text.delta':
        b.text(`output[${oi}].summary[${num(v.summary_index) ?? 0}].text`, 'reasoning', v.delta);
        break;
      case 'response.output_item.added': {
        const item = v.item;
        if (isObject(item) && (item.type === 'function_call' || item.type === 'custom_tool_call')) {
          const key = `out:${oi}`;
          b.tool(key, item.call_id ?? item.id, item.name);
          b.toolArgs(key, item.type === 'function_call' ? item.arguments : item.input);
        }
        break;
      }
      case 'response.function_call_arguments.delta':
      case 'response.custom_tool_call_input.delta':
        b.toolArgs(`out:${oi}`, v.delta);
        break;
      case 'response.function_call_arguments.done':
        b.tool(`out:${oi}`, undefined, v.name);
        b.toolSetArgs(`out:${oi}`, v.arguments);
        break;
      case 'response.custom_tool_call_input.done':
        b.toolSetArgs(`out:${oi}`, v.input);
        break;
      case 'response.output_item.done':
        this.outputItem(oi, v.item, true);
        break;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed': {
        this.sawTerminal = true;
        const r = v.response;
        if (isObject(r)) {
          if (r.error !== undefined && r.error !== null) errorFrom(b, r.error);
          const reason = isObject(r.incomplete_details) ? r.incomplete_details.reason : undefined;
          b.setFinish(reason ?? r.status ?? type.slice('response.'.length));
          usageFrom(b, r.usage);
        }
        break;
      }
      case 'error':
        this.sawTerminal = true;
        if (isObject(v.error)) errorFrom(b, v.error);
        else b.setProviderError(v.code ?? v.type, v.message);
        break;
      default:
        break;
    }
  }
}

function responseParser(_req: RequestInfo, _parsed: ParsedRequest, head: ResponseHead, options?: ResponseParserOptions): ResponseParser {
  return createResponseParser(head, options, (b) => new OpenAIResponse(b));
}

function errorBody(_status: number, code: string, message: string): ErrorBody {
  return {
    contentType: 'application/json',
    body: JSON.stringify({ error: { message, type: 'sluice_error', param: null, code } }),
  };
}

/** The SDKs raise an SSE event carrying `error` (chat) or an `error` event (Responses API) as APIError. */
function streamErrorEvent(contentType: string, code: string, message: string): Buffer | null {
  if (!contentType.includes('text/event-stream')) return null;
  return sseEvent({ error: { message, type: 'sluice_error', param: null, code } });
}

export const openaiAdapter: Adapter = {
  format: 'openai',
  parseRequest,
  responseParser,
  errorBody,
  streamErrorEvent,
};
