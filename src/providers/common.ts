// Helpers shared by the provider adapters: JSON paths, bounded accumulators, and the body driver
// that picks JSON / SSE / event-stream framing and feeds a format's handlers incrementally.

import { EventStreamDecoder, type EventStreamMessage } from './eventstream.js';
import { SseParser } from './sse.js';
import type {
  ParsedRequest,
  ParsedResponse,
  ProviderError,
  ResponseHead,
  ResponseParser,
  ResponseParserOptions,
  TextSegment,
  ToolInvocation,
  Usage,
} from './types.js';

export const DEFAULT_MAX_TEXT_CHARS = 1024 * 1024;
/** JSON bodies (and single streamed JSON values) are buffered up to this size, then given up on. */
export const MAX_JSON_BODY_BYTES = 8 * 1024 * 1024;
/** Past this many, further parse errors are counted but not described, so a garbage stream stays cheap. */
export const MAX_ERRORS = 20;

// ---------------------------------------------------------------------------------------------
// Small value helpers

export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Arguments and tool inputs travel as JSON text; strings are kept verbatim rather than re-quoted. */
export function jsonText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === undefined) return '';
  try {
    return JSON.stringify(v) ?? '';
  } catch {
    return '';
  }
}

export function snippet(s: string, max = 300): string {
  return s.length <= max ? s : `${s.slice(0, max)}…`;
}

/** The path adapters route on: no query string and, unless asked to keep it, no trailing slash. */
export function routePath(path: string, trimSlash = true): string {
  let p = path;
  const q = p.indexOf('?');
  if (q !== -1) p = p.slice(0, q);
  if (trimSlash) while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

// ---------------------------------------------------------------------------------------------
// JSON paths in the `messages[2].content[0].text` style

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Appends a property or index to a path; odd keys are quoted so the path stays unambiguous. */
export function jp(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (IDENT.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

// ---------------------------------------------------------------------------------------------
// Request side

export type JsonParse = { ok: true; value: unknown } | { ok: false; error: string };

export function parseJson(text: string): JsonParse {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: `invalid JSON: ${errorText(err)}` };
  }
}

/** Decodes a whole body as JSON, tolerating a UTF-8 BOM. */
export function parseJsonBody(body: Buffer): JsonParse {
  let text = body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') return { ok: false, error: 'empty body' };
  return parseJson(text);
}

const BODYLESS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

/** Collects what a request sends; skips empty strings since there is nothing in them to inspect. */
export class RequestCollector {
  readonly segments: TextSegment[] = [];
  readonly tools: string[] = [];

  text(role: string, text: unknown, path: string): void {
    if (typeof text === 'string' && text.length > 0) this.segments.push({ role, text, path });
  }

  /** Structured values (tool inputs, function results) are inspected as their JSON text. */
  json(role: string, value: unknown, path: string): void {
    if (value === undefined || value === null) return;
    this.text(role, jsonText(value), path);
  }

  tool(name: unknown): void {
    if (typeof name === 'string' && name.length > 0 && !this.tools.includes(name)) this.tools.push(name);
  }

  result(operation: string, stream: boolean, model: string | undefined): ParsedRequest {
    const r: ParsedRequest = { parsed: true, operation, stream, segments: this.segments, tools: this.tools };
    if (model !== undefined && model !== '') r.model = model;
    return r;
  }
}

export function failedRequest(operation: string, error: string, model?: string, stream = false): ParsedRequest {
  const r: ParsedRequest = { parsed: false, error, operation, stream, segments: [], tools: [] };
  if (model !== undefined && model !== '') r.model = model;
  return r;
}

/**
 * Shared request prologue: parses the body as a JSON object and runs `fill`, turning every
 * failure (bad JSON, wrong shape, a bug in `fill`) into `parsed: false` instead of a throw.
 */
export function parseRequestWith(
  body: Buffer,
  method: string,
  operation: string,
  model: string | undefined,
  stream: boolean,
  fill: (obj: JsonObject, c: RequestCollector) => { model?: string | undefined; stream?: boolean; operation?: string } | void,
): ParsedRequest {
  try {
    if (body.length === 0 && BODYLESS.has(method.toUpperCase())) return new RequestCollector().result(operation, stream, model);
    const parsed = parseJsonBody(body);
    if (!parsed.ok) return failedRequest(operation, parsed.error, model, stream);
    if (!isObject(parsed.value)) return failedRequest(operation, 'expected a JSON object', model, stream);
    const c = new RequestCollector();
    const over = fill(parsed.value, c) ?? {};
    return c.result(over.operation ?? operation, over.stream ?? stream, over.model ?? model);
  } catch (err) {
    return failedRequest(operation, `request parse failed: ${errorText(err)}`, model, stream);
  }
}

export function safeDecodeURIComponent(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Response side: bounded accumulation

export interface ToolAcc {
  id?: string;
  name: string;
  args: string;
  /** Used when no argument text arrived (Anthropic's start block carries `input: {}`). */
  defaultArgs?: string;
}

/** Accumulates what a response says, with text and tool arguments sharing one character budget. */
export class ResponseBuilder {
  understood = false;
  truncated = false;
  usage: Usage | undefined;
  finishReason: string | undefined;
  providerError: ProviderError | undefined;

  private readonly errors: string[] = [];
  private droppedErrors = 0;
  private readonly segments: TextSegment[] = [];
  private readonly segIndex = new Map<string, TextSegment>();
  private readonly tools: ToolAcc[] = [];
  private readonly toolIndex = new Map<string, ToolAcc>();
  private remaining: number;
  private readonly onText: ((path: string, role: string, text: string) => void) | undefined;

  constructor(maxTextChars: number = DEFAULT_MAX_TEXT_CHARS, onText?: (path: string, role: string, text: string) => void) {
    this.remaining = Math.max(0, Math.floor(maxTextChars));
    this.onText = onText;
  }

  get errorCount(): number {
    return this.errors.length + this.droppedErrors;
  }

  error(message: string): void {
    if (this.errors.length < MAX_ERRORS) this.errors.push(message);
    else this.droppedErrors++;
  }

  /** Appends to the segment at `path` (streams deliver one segment in many deltas). */
  text(path: string, role: string, text: unknown): void {
    if (typeof text !== 'string' || text.length === 0) return;
    const key = `${role}\u0000${path}`;
    let seg = this.segIndex.get(key);
    if (seg === undefined) {
      seg = { role, text: '', path };
      this.segIndex.set(key, seg);
      this.segments.push(seg);
    }
    const kept = this.take(text);
    seg.text += kept;
    if (kept && this.onText) this.onText(path, role, kept);
  }

  hasText(path: string, role: string): boolean {
    return this.segIndex.has(`${role}\u0000${path}`);
  }

  /** Finds or opens the tool call known by `key` (a stream index, an item id…). */
  tool(key: string, id?: unknown, name?: unknown): ToolAcc {
    let t = this.toolIndex.get(key);
    if (t === undefined) {
      t = { name: '', args: '' };
      this.toolIndex.set(key, t);
      this.tools.push(t);
    }
    if (typeof id === 'string' && id !== '' && t.id === undefined) t.id = id;
    if (typeof name === 'string' && name !== '') t.name = t.name === '' ? name : t.name;
    return t;
  }

  hasTool(key: string): boolean {
    return this.toolIndex.has(key);
  }

  toolArgs(key: string, fragment: unknown): void {
    if (typeof fragment !== 'string' || fragment.length === 0) return;
    const t = this.tool(key);
    const kept = this.take(fragment);
    t.args += kept;
    // Streamed tool arguments are inspected as they arrive, like text (a secret in them can cut the stream).
    if (kept && this.onText) this.onText(`toolCalls[${this.tools.indexOf(t)}].arguments`, `tool_call:${t.name}`, kept);
  }

  /** Replaces the arguments with an authoritative full text (a `.done` event, a final item). */
  toolSetArgs(key: string, full: unknown): void {
    if (typeof full !== 'string') return;
    const t = this.tool(key);
    if (t.args === full) return;
    this.remaining += t.args.length;
    t.args = this.take(full);
  }

  /** A complete tool call from a non-streamed body. */
  addTool(id: unknown, name: unknown, args: string): void {
    const t = this.tool(`#${this.tools.length}`, id, name);
    t.args = this.take(args);
  }

  setUsage(u: { inputTokens?: unknown; outputTokens?: unknown; totalTokens?: unknown }): void {
    const i = num(u.inputTokens);
    const o = num(u.outputTokens);
    const t = num(u.totalTokens);
    if (i === undefined && o === undefined && t === undefined) return;
    const usage = this.usage ?? (this.usage = {});
    if (i !== undefined) usage.inputTokens = i;
    if (o !== undefined) usage.outputTokens = o;
    if (t !== undefined) usage.totalTokens = t;
  }

  setFinish(reason: unknown): void {
    if (typeof reason === 'string' && reason !== '') this.finishReason = reason;
  }

  setProviderError(type: unknown, message: unknown): void {
    const m = typeof message === 'string' ? message : message === undefined || message === null ? '' : jsonText(message);
    const e: ProviderError = { message: m };
    if (typeof type === 'string' && type !== '') e.type = type;
    else if (typeof type === 'number') e.type = String(type);
    // The first error is usually the cause; later ones tend to be consequences.
    if (this.providerError === undefined) this.providerError = e;
  }

  result(): ParsedResponse {
    const errors = this.droppedErrors > 0 ? [...this.errors, `${this.droppedErrors} more errors not shown`] : [...this.errors];
    const toolCalls: ToolInvocation[] = [];
    for (const t of this.tools) {
      const call: ToolInvocation = { name: t.name, arguments: t.args === '' && t.defaultArgs !== undefined ? t.defaultArgs : t.args };
      if (t.id !== undefined) call.id = t.id;
      toolCalls.push(call);
    }
    const r: ParsedResponse = {
      parsed: this.understood,
      errors,
      text: this.segments.filter((s) => s.text.length > 0).map((s) => ({ role: s.role, text: s.text, path: s.path })),
      toolCalls,
      truncated: this.truncated,
    };
    if (this.usage !== undefined) {
      const u = { ...this.usage };
      if (u.totalTokens === undefined && u.inputTokens !== undefined && u.outputTokens !== undefined) u.totalTokens = u.inputTokens + u.outputTokens;
      r.usage = u;
    }
    if (this.finishReason !== undefined) r.finishReason = this.finishReason;
    if (this.providerError !== undefined) r.providerError = { ...this.providerError };
    return r;
  }

  private take(s: string): string {
    if (s.length <= this.remaining) {
      this.remaining -= s.length;
      return s;
    }
    this.truncated = true;
    let n = this.remaining;
    // Never keep half of a surrogate pair.
    if (n > 0) {
      const c = s.charCodeAt(n - 1);
      if (c >= 0xd800 && c <= 0xdbff) n--;
    }
    this.remaining = 0;
    return n > 0 ? s.slice(0, n) : '';
  }
}

// ---------------------------------------------------------------------------------------------
// Response side: framing

/** Keeps chunks up to a cap without joining them until the end. */
export class BoundedBuffer {
  overflow = false;
  length = 0;
  private chunks: Buffer[] = [];

  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
    if (this.overflow) return;
    if (this.length + chunk.length > this.cap) {
      this.overflow = true;
      this.chunks = [];
      return;
    }
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  take(): Buffer {
    const b = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
    this.chunks = [];
    return b;
  }
}

/**
 * Splits a streamed JSON document into values as they complete: the elements of a top-level
 * array (Gemini's streamGenerateContent without `alt=sse`), or consecutive top-level values.
 * Tracks strings and escapes so brackets inside text do not count.
 */
export class JsonValueSplitter {
  error: string | undefined;
  private decided = false;
  private inArray = false;
  private arrayClosed = false;
  private depth = 0;
  private inString = false;
  private escape = false;
  private collecting = false;
  /** Collecting a bare number or literal, which ends at a delimiter rather than a bracket. */
  private scalar = false;
  private discarding = false;
  private pieces: Buffer[] = [];
  private pieceBytes = 0;

  constructor(
    private readonly onValue: (bytes: Buffer) => void,
    private readonly onError: (message: string) => void,
    private readonly maxValueBytes = MAX_JSON_BODY_BYTES,
  ) {}

  push(chunk: Buffer): void {
    if (this.error !== undefined) return;
    let start = this.collecting ? 0 : -1;
    // Cached positions of the next quote and backslash: string bodies are most of the bytes,
    // so they are skipped with native searches instead of a byte loop.
    let nextQuote = -2;
    let nextBackslash = -2;
    for (let i = 0; i < chunk.length; i++) {
      if (this.inString) {
        if (this.escape) {
          this.escape = false;
          continue;
        }
        if (nextQuote !== -1 && nextQuote < i) nextQuote = chunk.indexOf(0x22, i);
        if (nextBackslash !== -1 && nextBackslash < i) nextBackslash = chunk.indexOf(0x5c, i);
        if (nextBackslash !== -1 && (nextQuote === -1 || nextBackslash < nextQuote)) {
          this.escape = true;
          i = nextBackslash;
          continue;
        }
        if (nextQuote === -1) break;
        i = nextQuote;
        this.inString = false;
        if (this.collecting && this.depth === (this.inArray ? 1 : 0)) {
          this.emit(chunk, start, i + 1);
          start = -1;
        }
        continue;
      }
      const c = chunk[i]!;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        if (this.scalar) {
          this.emit(chunk, start, i);
          start = -1;
        }
        continue;
      }
      if (!this.decided) {
        this.decided = true;
        if (c === 0x5b /* [ */) {
          this.inArray = true;
          this.depth = 1;
          continue;
        }
        if (c === 0xef || c === 0xbb || c === 0xbf) {
          // UTF-8 BOM bytes before the document.
          this.decided = false;
          continue;
        }
      }
      const level = this.inArray ? 1 : 0;
      if (this.arrayClosed) {
        this.fail('data after the end of the JSON array');
        return;
      }
      if (this.scalar && (c === 0x2c || c === 0x5d || c === 0x7d)) {
        this.emit(chunk, start, i);
        start = -1;
      }
      if (!this.collecting && this.depth === level) {
        if (c === 0x2c /* , */) continue;
        if (c === 0x5d /* ] */ && this.inArray) {
          this.depth = 0;
          this.arrayClosed = true;
          continue;
        }
        if (c === 0x7d || c === 0x5d) {
          this.fail('unbalanced bracket in JSON stream');
          return;
        }
        this.collecting = true;
        this.discarding = false;
        start = i;
        if (c === 0x7b || c === 0x5b) this.depth++;
        else if (c === 0x22) this.inString = true;
        else this.scalar = true;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        this.depth--;
        if (this.collecting && this.depth === level) {
          this.emit(chunk, start, i + 1);
          start = -1;
        }
      }
    }
    if (this.collecting && start !== -1) this.keep(chunk.subarray(start));
  }

  /** Reports a value or array cut off by the end of the body. */
  finish(): void {
    if (this.error !== undefined) return;
    if (this.scalar) {
      this.emit(Buffer.alloc(0), 0, 0);
    }
    if (this.collecting) this.fail('JSON stream ended inside a value');
    else if (this.inArray && !this.arrayClosed) this.fail('JSON array not closed at end of stream');
  }

  private keep(piece: Buffer): void {
    if (this.discarding) return;
    if (this.pieceBytes + piece.length > this.maxValueBytes) {
      this.onError(`streamed JSON value larger than ${this.maxValueBytes} bytes skipped`);
      this.discarding = true;
      this.pieces = [];
      this.pieceBytes = 0;
      return;
    }
    this.pieces.push(piece);
    this.pieceBytes += piece.length;
  }

  private emit(chunk: Buffer, start: number, end: number): void {
    if (start !== -1 && end > start) this.keep(chunk.subarray(start, end));
    const discarded = this.discarding;
    const value = discarded ? undefined : this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.pieceBytes);
    this.pieces = [];
    this.pieceBytes = 0;
    this.collecting = false;
    this.scalar = false;
    this.discarding = false;
    if (value !== undefined) this.onValue(value);
  }

  private fail(message: string): void {
    this.error = message;
    this.onError(message);
    this.pieces = [];
    this.pieceBytes = 0;
  }
}

export type BodyMode = 'json' | 'json-seq' | 'sse' | 'eventstream';

export interface EndInfo {
  mode: BodyMode | undefined;
  /** An SSE `data: [DONE]` went by. */
  sseDone: boolean;
}

/** What a wire format does with each unit of a response body. Handlers may throw; the driver records it. */
export interface ResponseHandlers {
  /** The whole JSON body, or one value of a streamed JSON array. */
  json?(value: unknown): void;
  /** One SSE event whose data parsed as JSON (parsed once, here). */
  sse?(event: string, value: unknown): void;
  eventStream?(message: EventStreamMessage): void;
  /** End of body, to flag streams that stopped before their final event. */
  end?(info: EndInfo): void;
}

export interface DriverOptions {
  /** Split a JSON body into values as it streams instead of buffering it whole. */
  jsonSequence?: boolean;
}

/** A response parser for a format, given its handlers; owns framing, bounds and error capture. */
export function createResponseParser(
  head: ResponseHead,
  options: ResponseParserOptions | undefined,
  makeHandlers: (b: ResponseBuilder) => ResponseHandlers,
  driverOptions: DriverOptions = {},
): ResponseParser {
  const b = new ResponseBuilder(options?.maxTextChars ?? DEFAULT_MAX_TEXT_CHARS, options?.onText);
  let handlers: ResponseHandlers;
  try {
    handlers = makeHandlers(b);
  } catch (err) {
    b.error(`parser setup failed: ${errorText(err)}`);
    handlers = {};
  }
  return new BodyDriver(head, b, handlers, driverOptions);
}

const SNIFF_BYTES = 16;

class BodyDriver implements ResponseParser {
  private mode: BodyMode | undefined;
  private prefix: Buffer[] = [];
  private prefixBytes = 0;
  private json: BoundedBuffer | undefined;
  private seq: JsonValueSplitter | undefined;
  private sse: SseParser | undefined;
  private es: EventStreamDecoder | undefined;
  private done: ParsedResponse | undefined;
  private readonly contentType: string;

  constructor(
    private readonly head: ResponseHead,
    private readonly b: ResponseBuilder,
    private readonly handlers: ResponseHandlers,
    private readonly options: DriverOptions,
  ) {
    this.contentType = (head.contentType ?? '').toLowerCase();
  }

  push(chunk: Buffer): void {
    if (this.done !== undefined || chunk.length === 0) return;
    try {
      if (this.mode === undefined) {
        this.prefix.push(chunk);
        this.prefixBytes += chunk.length;
        const all = this.prefix.length === 1 ? this.prefix[0]! : Buffer.concat(this.prefix, this.prefixBytes);
        const mode = this.decide(all, false);
        if (mode === undefined) {
          this.prefix = [all];
          return;
        }
        this.prefix = [];
        this.start(mode);
        this.feed(all);
        return;
      }
      this.feed(chunk);
    } catch (err) {
      this.b.error(`response parse failed: ${errorText(err)}`);
    }
  }

  finish(): ParsedResponse {
    if (this.done !== undefined) return this.done;
    const b = this.b;
    try {
      if (this.mode === undefined) {
        const all = Buffer.concat(this.prefix, this.prefixBytes);
        this.prefix = [];
        if (all.length === 0 || isBlank(all)) {
          b.error('empty body');
        } else {
          const mode = this.decide(all, true) ?? 'json';
          this.start(mode);
          this.feed(all);
        }
      }
      this.end();
    } catch (err) {
      b.error(`response parse failed: ${errorText(err)}`);
    }
    try {
      this.handlers.end?.({ mode: this.mode, sseDone: this.sse?.sawDone ?? false });
    } catch (err) {
      b.error(`response parse failed: ${errorText(err)}`);
    }
    this.done = b.result();
    return this.done;
  }

  /** Content-type first, but a body that plainly starts as JSON is JSON whatever the header says. */
  private decide(all: Buffer, final: boolean): BodyMode | undefined {
    let i = 0;
    while (i < all.length && isSpaceOrBom(all[i]!)) i++;
    if (i === all.length) return final ? 'json' : undefined;
    const c = all[i]!;
    const ct = this.contentType;
    // Only a top-level array is worth splitting; anything else is one document, buffered whole.
    if (c === 0x5b && this.options.jsonSequence) return 'json-seq';
    if (c === 0x7b || c === 0x5b) return 'json';
    if (ct.includes('amazon.eventstream')) return 'eventstream';
    if (ct.includes('text/event-stream')) return 'sse';
    // JSON or no useful content-type: sniff for SSE text (a mislabelled stream), then for an
    // event-stream prelude, whose big-endian length is below 16 MiB so its first byte is 0.
    if (c === 0x00) return 'eventstream';
    if (all.length - i < SNIFF_BYTES && !final) return undefined;
    const head = all.toString('latin1', i, Math.min(all.length, i + SNIFF_BYTES));
    if (/^(data|event|id|retry):|^:/.test(head)) return 'sse';
    return 'json';
  }

  private start(mode: BodyMode): void {
    this.mode = mode;
    const b = this.b;
    const onError = (m: string): void => b.error(m);
    switch (mode) {
      case 'json':
        this.json = new BoundedBuffer(MAX_JSON_BODY_BYTES);
        break;
      case 'json-seq':
        this.seq = new JsonValueSplitter((bytes) => this.jsonValue(bytes.toString('utf8')), onError);
        break;
      case 'sse':
        if (!this.handlers.sse) b.error('unexpected SSE body for this format');
        this.sse = new SseParser((event, data) => this.sseEvent(event, data), { onError });
        break;
      case 'eventstream':
        if (!this.handlers.eventStream) b.error('unexpected event-stream body for this format');
        this.es = new EventStreamDecoder((m) => this.esMessage(m), { onError });
        break;
    }
  }

  private feed(chunk: Buffer): void {
    if (this.json) {
      this.json.push(chunk);
    } else if (this.seq) this.seq.push(chunk);
    else if (this.sse) this.sse.push(chunk);
    else if (this.es) this.es.push(chunk);
  }

  private end(): void {
    if (this.json) {
      const buf = this.json;
      if (buf.overflow) {
        this.b.error(`JSON body larger than ${MAX_JSON_BODY_BYTES} bytes not parsed`);
        return;
      }
      let text = buf.take().toString('utf8');
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (text.trim() === '') {
        this.b.error('empty body');
        return;
      }
      const ok = this.jsonValue(text);
      if (!ok && this.head.status >= 400) this.b.setProviderError(`http_${this.head.status}`, snippet(text.trim()));
    } else if (this.seq) this.seq.finish();
    else if (this.sse) this.sse.finish();
    else if (this.es) this.es.finish();
  }

  private jsonValue(text: string): boolean {
    const p = parseJson(text);
    if (!p.ok) {
      this.b.error(p.error);
      return false;
    }
    this.b.understood = true;
    if (this.handlers.json) {
      try {
        this.handlers.json(p.value);
      } catch (err) {
        this.b.error(`response handler failed: ${errorText(err)}`);
      }
    }
    return true;
  }

  private sseEvent(event: string, data: string): void {
    const p = parseJson(data);
    if (!p.ok) {
      this.b.error(`SSE event ${event}: ${p.error}`);
      return;
    }
    this.b.understood = true;
    if (this.handlers.sse) this.handlers.sse(event, p.value);
  }

  private esMessage(m: EventStreamMessage): void {
    this.b.understood = true;
    if (this.handlers.eventStream) this.handlers.eventStream(m);
  }
}

function isSpaceOrBom(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0xef || c === 0xbb || c === 0xbf;
}

function isBlank(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (!isSpaceOrBom(b[i]!)) return false;
  return true;
}

/** `data: {json}` as one SSE event (with an `event:` line when given). */
export function sseEvent(data: unknown, event?: string): Buffer {
  return Buffer.from(`${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`);
}
