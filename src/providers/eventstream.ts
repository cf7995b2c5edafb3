// Incremental decoder (and a small encoder) for AWS binary event streams (application/vnd.amazon.eventstream),
// the framing Bedrock uses for ConverseStream and InvokeModelWithResponseStream.

import { crc32 } from 'node:zlib';

export type EventStreamHeaderValue = string | number | boolean | Buffer;

export interface EventStreamMessage {
  headers: Record<string, EventStreamHeaderValue>;
  /** A view into the received bytes, not a copy. */
  payload: Buffer;
}

export interface EventStreamDecoderOptions {
  /** Largest frame accepted; AWS caps messages at 16 MiB, so anything bigger is corruption. */
  maxMessageBytes?: number;
  onError?: (message: string) => void;
}

export const DEFAULT_EVENTSTREAM_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

const PRELUDE = 12;
const MIN_MESSAGE = PRELUDE + 4;

export class EventStreamDecoder {
  /** Set on the first framing error; decoding stops there because frame boundaries are lost. */
  error: string | undefined;
  messageCount = 0;

  private readonly maxMessage: number;
  private readonly onError: ((message: string) => void) | undefined;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes needed before the next step can run: the prelude, then the whole frame. */
  private need = PRELUDE;

  constructor(private readonly onMessage: (message: EventStreamMessage) => void, options: EventStreamDecoderOptions = {}) {
    this.maxMessage = options.maxMessageBytes ?? DEFAULT_EVENTSTREAM_MAX_MESSAGE_BYTES;
    this.onError = options.onError;
  }

  push(chunk: Buffer): void {
    if (this.error !== undefined || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.need) return;
    // Join only when a step can complete, so a frame trickling in byte by byte is copied once.
    let buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    let off = 0;
    while (this.error === undefined && buf.length - off >= PRELUDE) {
      const total = buf.readUInt32BE(off);
      const headersLen = buf.readUInt32BE(off + 4);
      if (this.need === PRELUDE) {
        const preludeCrc = buf.readUInt32BE(off + 8);
        if (crc32(buf.subarray(off, off + 8)) !== preludeCrc) {
          this.fail(`event-stream prelude CRC mismatch at message ${this.messageCount}`);
          break;
        }
        if (total < MIN_MESSAGE || total > this.maxMessage || headersLen > total - MIN_MESSAGE) {
          this.fail(`event-stream impossible lengths (total ${total}, headers ${headersLen}) at message ${this.messageCount}`);
          break;
        }
        this.need = total;
      }
      if (buf.length - off < total) break;
      const frame = buf.subarray(off, off + total);
      off += total;
      this.need = PRELUDE;
      this.frame(frame, headersLen);
    }
    const rest = buf.length - off;
    if (this.error !== undefined || rest === 0) {
      this.chunks = [];
      this.buffered = 0;
    } else {
      buf = off === 0 ? buf : buf.subarray(off);
      this.chunks = [buf];
      this.buffered = rest;
    }
  }

  /** End of stream: leftover bytes mean the last frame was cut off. */
  finish(): void {
    if (this.error === undefined && this.buffered > 0) {
      const want = this.need === PRELUDE ? 'a prelude' : `${this.need} bytes`;
      this.fail(`event-stream truncated frame: ${this.buffered} bytes left, expected ${want}`);
    }
    this.chunks = [];
    this.buffered = 0;
  }

  private frame(frame: Buffer, headersLen: number): void {
    const total = frame.length;
    const messageCrc = frame.readUInt32BE(total - 4);
    if (crc32(frame.subarray(0, total - 4)) !== messageCrc) {
      this.fail(`event-stream message CRC mismatch at message ${this.messageCount}`);
      return;
    }
    const headers = decodeHeaders(frame, PRELUDE, PRELUDE + headersLen);
    if (typeof headers === 'string') {
      this.fail(`event-stream ${headers} at message ${this.messageCount}`);
      return;
    }
    this.messageCount++;
    try {
      this.onMessage({ headers, payload: frame.subarray(PRELUDE + headersLen, total - 4) });
    } catch (err) {
      this.report(`event-stream message handler failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private fail(message: string): void {
    this.error = message;
    this.report(message);
  }

  private report(message: string): void {
    if (this.onError) {
      try {
        this.onError(message);
      } catch {
        // A failing reporter must not break decoding.
      }
    }
  }
}

/** Headers of one frame, or a string describing why they are malformed. */
function decodeHeaders(buf: Buffer, start: number, end: number): Record<string, EventStreamHeaderValue> | string {
  const headers: Record<string, EventStreamHeaderValue> = {};
  let p = start;
  while (p < end) {
    const nameLen = buf[p]!;
    p += 1;
    if (nameLen === 0 || p + nameLen + 1 > end) return 'malformed header name';
    const name = buf.toString('utf8', p, p + nameLen);
    p += nameLen;
    const type = buf[p]!;
    p += 1;
    let value: EventStreamHeaderValue;
    switch (type) {
      case 0:
        value = true;
        break;
      case 1:
        value = false;
        break;
      case 2:
        if (p + 1 > end) return 'truncated byte header';
        value = buf.readInt8(p);
        p += 1;
        break;
      case 3:
        if (p + 2 > end) return 'truncated short header';
        value = buf.readInt16BE(p);
        p += 2;
        break;
      case 4:
        if (p + 4 > end) return 'truncated int header';
        value = buf.readInt32BE(p);
        p += 4;
        break;
      case 5:
      case 8:
        // Longs and millisecond timestamps become numbers; beyond 2^53 they lose precision,
        // which no header Bedrock sends comes near.
        if (p + 8 > end) return 'truncated long header';
        value = Number(buf.readBigInt64BE(p));
        p += 8;
        break;
      case 6:
      case 7: {
        if (p + 2 > end) return 'truncated header length';
        const n = buf.readUInt16BE(p);
        p += 2;
        if (p + n > end) return 'truncated header value';
        value = type === 7 ? buf.toString('utf8', p, p + n) : buf.subarray(p, p + n);
        p += n;
        break;
      }
      case 9: {
        if (p + 16 > end) return 'truncated uuid header';
        const h = buf.toString('hex', p, p + 16);
        value = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
        p += 16;
        break;
      }
      default:
        return `unknown header type ${type}`;
    }
    // defineProperty so a header called `__proto__` stays a plain key.
    if (name === '__proto__') Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
    else headers[name] = value;
  }
  return headers;
}

/** One frame with string headers; used by tests and the mock provider to speak Bedrock's streams. */
export function encodeEventStreamMessage(headers: Record<string, string>, payload: Buffer): Buffer {
  const encoded: Buffer[] = [];
  let headersLen = 0;
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(value, 'utf8');
    if (n.length === 0 || n.length > 255) throw new RangeError(`event-stream header name length ${n.length}`);
    if (v.length > 0xffff) throw new RangeError(`event-stream header ${name} too long`);
    const h = Buffer.allocUnsafe(1 + n.length + 1 + 2 + v.length);
    h[0] = n.length;
    n.copy(h, 1);
    h[1 + n.length] = 7;
    h.writeUInt16BE(v.length, 2 + n.length);
    v.copy(h, 4 + n.length);
    encoded.push(h);
    headersLen += h.length;
  }
  const total = PRELUDE + headersLen + payload.length + 4;
  const out = Buffer.allocUnsafe(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(headersLen, 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  let p = PRELUDE;
  for (const h of encoded) {
    h.copy(out, p);
    p += h.length;
  }
  payload.copy(out, p);
  out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4);
  return out;
}
