// A bounded, decoded copy of a body for inspection; the client still gets the original bytes.
// Decompression stops at the inspection limit, so a compression bomb costs at most that much.

import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, constants } from 'node:zlib';

/** Recorded when a response outgrows what is inspected; shared by the decoded and plain paths. */
export function inspectLimitMessage(limit: number): string {
  return `response larger than limits.max_inspect_bytes (${limit}); the rest was relayed uninspected`;
}

export interface TapSink {
  chunk(decoded: Buffer): void;
  /** A problem worth recording (unsupported encoding, corrupt stream, limit reached). */
  problem(message: string): void;
}

/** Feeds decoded body bytes to `sink`, never more than `limit` bytes, and says when it is done. */
export class BodyTap {
  private readonly sink: TapSink;
  private readonly limit: number;
  private seen = 0;
  private stopped = false;
  private decoder: Transform | null = null;
  private done: (() => void) | null = null;
  private finished = false;

  constructor(encoding: string, limit: number, sink: TapSink) {
    this.sink = sink;
    this.limit = limit;
    if (encoding === '' || encoding === 'identity') return;
    const opts = { finishFlush: constants.Z_SYNC_FLUSH };
    if (encoding === 'gzip' || encoding === 'x-gzip') this.decoder = createGunzip(opts);
    else if (encoding === 'deflate') this.decoder = createInflate(opts);
    else if (encoding === 'br') this.decoder = createBrotliDecompress();
    else {
      this.stopped = true;
      sink.problem(`content-encoding "${encoding}" is not decoded; the response was not inspected`);
      return;
    }
    const d = this.decoder;
    d.on('data', (b: Buffer) => this.deliver(b));
    d.on('error', (err) => {
      if (!this.stopped) sink.problem(`decoding ${encoding} failed: ${err.message}`);
      this.stop();
    });
    d.on('end', () => this.finish());
    d.on('close', () => this.finish());
  }

  push(raw: Buffer): void {
    if (this.stopped) return;
    if (this.decoder) this.decoder.write(raw);
    else this.deliver(raw);
  }

  /** Calls `done` once every decoded byte has been delivered (or decoding stopped). */
  end(done: () => void): void {
    this.done = done;
    if (this.decoder && !this.stopped) this.decoder.end();
    else this.finish();
  }

  private deliver(b: Buffer): void {
    if (this.stopped) return;
    const room = this.limit - this.seen;
    if (b.length > room) {
      if (room > 0) this.sink.chunk(b.subarray(0, room));
      this.seen = this.limit;
      this.sink.problem(inspectLimitMessage(this.limit));
      this.stop();
      return;
    }
    this.seen += b.length;
    this.sink.chunk(b);
  }

  private stop(): void {
    this.stopped = true;
    if (this.decoder) {
      this.decoder.removeAllListeners('data');
      this.decoder.destroy();
    }
    this.finish();
  }

  private finish(): void {
    // Before end() there is no one to tell yet; end() calls back in.
    if (this.finished || !this.done) return;
    this.finished = true;
    const d = this.done;
    this.done = null;
    d();
  }
}
