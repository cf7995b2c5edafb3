// ClientSink over a uWebSockets.js response: corked writes, tryEnd for sized bodies, onWritable backpressure.
// The status line and headers wait for the first body bytes so small responses leave in one packet.

import { STATUS_CODES } from 'node:http';
import type { HttpResponse } from '../http/uws';
import type { ClientSink } from '../pipeline/relay';

export class UwsSink implements ClientSink {
  aborted = false;
  private readonly res: HttpResponse;
  private abortCb: (() => void) | null = null;
  private writableCb: (() => void) | null = null;
  private head: string | null = null;
  private headHeaders: readonly string[] = [];
  private total = -1;
  private ended = false;
  private closing = false;
  private writableArmed = false;
  /** Sized mode only: bytes uWS could not take yet, and the write offset they start at. */
  private pending: Buffer | null = null;
  private pendingOffset = 0;
  private queue: Buffer[] | null = null;
  private readonly isHead: boolean;

  constructor(res: HttpResponse, isHead: boolean) {
    this.res = res;
    this.isHead = isHead;
  }

  /** Wired to res.onAborted by the front door (it must be registered synchronously). */
  markAborted(): void {
    if (this.aborted) return;
    this.aborted = true;
    if (!this.closing && this.abortCb) this.abortCb();
  }

  onAbort(cb: () => void): void {
    this.abortCb = cb;
  }

  respond(status: number, statusText: string, headers: string[], contentLength: number): void {
    this.head = `${status} ${statusText || STATUS_CODES[status] || ''}`;
    this.headHeaders = headers;
    this.total = contentLength;
  }

  write(chunk: Buffer): boolean {
    if (this.aborted || this.ended) return true;
    if (this.pending) {
      (this.queue ??= []).push(chunk);
      return false;
    }
    let ok = true;
    this.res.cork(() => {
      this.flushHead();
      ok = this.total >= 0 ? this.trySized(chunk) : this.res.write(chunk);
    });
    if (!ok) this.armWritable();
    return ok;
  }

  onWritable(cb: () => void): void {
    this.writableCb = cb;
  }

  end(): void {
    if (this.aborted || this.ended) return;
    if (this.pending) {
      // Sized body still draining: end when the last bytes are out (see drainSized).
      (this.queue ??= []).push(END);
      return;
    }
    this.ended = true;
    this.res.cork(() => {
      this.flushHead();
      if (this.total < 0) this.res.end();
      else if (this.isHead) this.res.endWithoutBody(this.total);
      else if (this.total === 0) this.res.end();
      else if (this.res.getWriteOffset() < this.total) {
        // The upstream sent fewer bytes than it announced; ending would corrupt the framing.
        this.closing = true;
        this.res.close();
      }
    });
  }

  destroy(): void {
    if (this.aborted || this.ended) return;
    this.ended = true;
    this.closing = true;
    this.aborted = true;
    this.res.close();
  }

  sendWhole(status: number, headers: readonly string[], body: string, close = false): void {
    if (this.aborted || this.ended) return;
    this.ended = true;
    this.closing = close;
    this.res.cork(() => {
      this.res.writeStatus(`${status} ${STATUS_CODES[status] ?? ''}`);
      for (let i = 0; i < headers.length; i += 2) this.res.writeHeader(headers[i]!, headers[i + 1]!);
      this.res.end(body, close);
    });
  }

  private flushHead(): void {
    if (this.head === null) return;
    this.res.writeStatus(this.head);
    const h = this.headHeaders;
    for (let i = 0; i < h.length; i += 2) this.res.writeHeader(h[i]!, h[i + 1]!);
    this.head = null;
  }

  private trySized(chunk: Buffer): boolean {
    const offset = this.res.getWriteOffset();
    const [ok, done] = this.res.tryEnd(chunk, this.total);
    if (done) this.ended = true;
    if (ok) return true;
    this.pending = chunk;
    this.pendingOffset = offset;
    return false;
  }

  private armWritable(): void {
    if (this.writableArmed) return;
    this.writableArmed = true;
    this.res.onWritable((offset) => {
      if (this.aborted) return true;
      if (this.total >= 0 && !this.drainSized(offset)) return false;
      const cb = this.writableCb;
      this.writableCb = null;
      cb?.();
      return true;
    });
  }

  /** Retries the unsent part of the pending chunk, then queued chunks; false while uWS is still full. */
  private drainSized(offset: number): boolean {
    if (this.pending) {
      const rest = this.pending.subarray(offset - this.pendingOffset);
      const [ok, done] = this.res.tryEnd(rest, this.total);
      if (done) this.ended = true;
      if (!ok) return false;
      this.pending = null;
    }
    while (this.queue && this.queue.length > 0) {
      const next = this.queue.shift()!;
      if (next === END) {
        this.end();
        continue;
      }
      let ok = true;
      this.res.cork(() => {
        ok = this.trySized(next);
      });
      if (!ok) return false;
    }
    return true;
  }
}

const END = Buffer.alloc(0);
