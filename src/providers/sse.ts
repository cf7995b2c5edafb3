// Incremental Server-Sent Events parser for streamed LLM responses.
// Holds only the unfinished line and event, so a long stream costs memory proportional to one event.

export interface SseParserOptions {
  /** Longest line kept, in bytes; longer lines are reported and dropped with their event. */
  maxLineBytes?: number;
  /** Largest event (all its data lines together), counted in characters; defaults to maxLineBytes. */
  maxEventBytes?: number;
  /** Receives problems met on the way; the parser itself never throws. */
  onError?: (message: string) => void;
}

/** Called once per dispatched event. `event` is `message` when the stream named none. */
export type SseEventHandler = (event: string, data: string, id: string | undefined) => void;

export const DEFAULT_SSE_MAX_LINE_BYTES = 4 * 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;

export class SseParser {
  /** True once a `data: [DONE]` event (OpenAI's end marker) went by; it is not passed to the handler. */
  sawDone = false;
  /** Events handed to the handler. */
  eventCount = 0;

  private readonly maxLine: number;
  private readonly maxEvent: number;
  private readonly onError: ((message: string) => void) | undefined;

  // The unfinished line: byte pieces rather than a string so a UTF-8 character cut by a chunk
  // boundary is decoded only once the whole line (and so the whole character) is here.
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The previous chunk ended on CR: a LF opening the next chunk belongs to the same line break. */
  private skipLF = false;
  /** Dropping the rest of an over-long line. */
  private discarding = false;
  private firstLine = true;

  private eventType = '';
  private data: string[] = [];
  private dataBytes = 0;
  private lastId: string | undefined;
  /** Part of the current event was dropped: dispatching the rest would hand on a lie. */
  private eventBroken = false;

  constructor(private readonly onEvent: SseEventHandler, options: SseParserOptions = {}) {
    this.maxLine = options.maxLineBytes ?? DEFAULT_SSE_MAX_LINE_BYTES;
    this.maxEvent = options.maxEventBytes ?? this.maxLine;
    this.onError = options.onError;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    if (len === 0) return;
    if (this.skipLF) {
      this.skipLF = false;
      if (chunk[0] === LF) pos = 1;
    }
    // Cached positions of the next CR and LF so each byte is searched once per chunk.
    let nextLF = -2;
    let nextCR = -2;
    while (pos < len) {
      if (nextLF !== -1 && nextLF < pos) nextLF = chunk.indexOf(LF, pos);
      if (nextCR !== -1 && nextCR < pos) nextCR = chunk.indexOf(CR, pos);
      let end: number;
      if (nextLF === -1) end = nextCR;
      else if (nextCR === -1) end = nextLF;
      else end = nextLF < nextCR ? nextLF : nextCR;
      if (end === -1) {
        this.keep(chunk, pos, len);
        return;
      }
      this.keep(chunk, pos, end);
      this.endLine();
      if (chunk[end] === CR) {
        if (end + 1 < len) pos = chunk[end + 1] === LF ? end + 2 : end + 1;
        else {
          this.skipLF = true;
          pos = len;
        }
      } else pos = end + 1;
    }
  }

  /** End of stream: a last line or event without its terminating blank line is still delivered,
   *  since a truncated stream is exactly what an inspector needs to see. */
  finish(): void {
    if (this.pendingBytes > 0 || this.discarding) this.endLine();
    this.dispatch();
  }

  private keep(chunk: Buffer, start: number, end: number): void {
    if (start === end || this.discarding) return;
    const n = end - start;
    if (this.pendingBytes + n > this.maxLine) {
      this.error(`SSE line longer than ${this.maxLine} bytes dropped`);
      this.pending = [];
      this.pendingBytes = 0;
      this.discarding = true;
      this.eventBroken = true;
      return;
    }
    this.pending.push(start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end));
    this.pendingBytes += n;
  }

  private endLine(): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    let line: string;
    if (this.pendingBytes === 0) line = '';
    else if (this.pending.length === 1) line = this.pending[0]!.toString('utf8');
    else line = Buffer.concat(this.pending, this.pendingBytes).toString('utf8');
    this.pending = [];
    this.pendingBytes = 0;
    if (this.firstLine) {
      this.firstLine = false;
      if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    }
    this.line(line);
  }

  private line(line: string): void {
    if (line.length === 0) {
      this.dispatch();
      return;
    }
    if (line.charCodeAt(0) === 0x3a /* ':' comment, used as keep-alive */) return;
    const colon = line.indexOf(':');
    let field: string;
    let value: string;
    if (colon === -1) {
      field = line;
      value = '';
    } else {
      field = line.slice(0, colon);
      value = line.charCodeAt(colon + 1) === 0x20 ? line.slice(colon + 2) : line.slice(colon + 1);
    }
    switch (field) {
      case 'data':
        if (this.eventBroken) return;
        this.dataBytes += value.length + 1;
        if (this.dataBytes > this.maxEvent) {
          this.error(`SSE event larger than ${this.maxEvent} bytes dropped`);
          this.data = [];
          this.eventBroken = true;
          return;
        }
        this.data.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (value.indexOf('\u0000') === -1) this.lastId = value;
        break;
      default:
        // `retry` and unknown fields carry nothing an inspector needs.
        break;
    }
  }

  private dispatch(): void {
    const broken = this.eventBroken;
    const hasData = this.data.length > 0;
    const type = this.eventType;
    const data = hasData ? (this.data.length === 1 ? this.data[0]! : this.data.join('\n')) : '';
    this.eventType = '';
    this.data = [];
    this.dataBytes = 0;
    this.eventBroken = false;
    if (broken || !hasData) return;
    if (data === '[DONE]') {
      this.sawDone = true;
      return;
    }
    this.eventCount++;
    try {
      this.onEvent(type === '' ? 'message' : type, data, this.lastId);
    } catch (err) {
      this.error(`SSE event handler failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private error(message: string): void {
    if (this.onError) {
      try {
        this.onError(message);
      } catch {
        // A failing reporter must not break parsing.
      }
    }
  }
}
