// ClientSink over a node:http response, for the front doors served by Node's own HTTP server.
// Backpressure is the stream's: write() returns false, 'drain' resumes the upstream.

import type { ServerResponse } from 'node:http';
import type { ClientSink } from '../pipeline/relay';

export class NodeSink implements ClientSink {
  aborted = false;
  private readonly res: ServerResponse;
  private abortCb: (() => void) | null = null;
  private closing = false;

  constructor(res: ServerResponse) {
    this.res = res;
    res.on('close', () => {
      if (res.writableFinished || this.aborted) return;
      this.aborted = true;
      if (!this.closing) this.abortCb?.();
    });
  }

  onAbort(cb: () => void): void {
    this.abortCb = cb;
  }

  respond(status: number, statusText: string, headers: string[], contentLength: number): void {
    if (this.aborted) return;
    if (contentLength >= 0) headers.push('content-length', String(contentLength));
    this.res.writeHead(status, statusText || undefined, headers);
  }

  write(chunk: Buffer): boolean {
    if (this.aborted) return true;
    return this.res.write(chunk);
  }

  onWritable(cb: () => void): void {
    this.res.once('drain', cb);
  }

  end(): void {
    if (!this.aborted) this.res.end();
  }

  destroy(): void {
    if (this.aborted) return;
    this.closing = true;
    this.aborted = true;
    this.res.destroy();
  }

  sendWhole(status: number, headers: readonly string[], body: string, close = false): void {
    if (this.aborted || this.res.headersSent) return;
    const h = [...headers, 'content-length', String(Buffer.byteLength(body))];
    if (close) h.push('connection', 'close');
    this.res.writeHead(status, h);
    this.res.end(body);
  }
}
