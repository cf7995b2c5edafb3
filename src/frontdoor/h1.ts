// HTTP/1.1 server side for decrypted (intercepted) connections: node's own llhttp parser, driven directly,
// and responses framed straight onto the socket. node:http's IncomingMessage/ServerResponse streams cost about
// as much per request as the TLS itself on this path (bench/mitm.ts); the parsing stays node's.

import { HTTPParser, methods } from '_http_common';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ClientSink } from '../pipeline/relay';

/** One parsed request head, in the shape the front doors already use (flat raw headers). */
export interface H1Request {
  method: string;
  /** Request target as sent (origin-form for intercepted traffic). */
  url: string;
  rawHeaders: string[];
  /** Content-Length when sent, -1 when chunked or absent. */
  contentLength: number;
  keepAlive: boolean;
  upgrade: boolean;
  /** HTTP/1.0: no chunked framing; a body of unknown length ends with the connection. */
  http10: boolean;
}

export interface H1Handlers {
  /** The head of a request arrived; returns the callbacks for its body, or null when it was answered already. */
  head(req: H1Request, res: H1Response): H1Body | null;
  /** The bytes could not be parsed as HTTP/1.1; the connection is answered with `status` (0: cut) and closed. */
  parseError(code: string, message: string, res: H1Response): void;
}

export interface H1Body {
  data(chunk: Buffer): void;
  end(): void;
}

const MAX_HEADER_BYTES = 16 * 1024;

let dateSecond = 0;
let dateValue = '';
/** RFC 9110 Date, computed once per second. */
function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

/**
 * One response on a connection: a ClientSink the Relay writes to. The head goes out with the first body
 * bytes in one write; bodies of unknown length are chunked.
 */
export class H1Response implements ClientSink {
  aborted = false;
  /** Set once the response was completely written (or abandoned). */
  done = false;
  private readonly conn: H1Connection;
  private readonly head: boolean;
  /** The client asked to close, or the framing requires it. */
  close: boolean;
  private chunked = false;
  private noBody = false;
  private abortCb: (() => void) | null = null;

  private readonly http10: boolean;

  constructor(conn: H1Connection, method: string, keepAlive: boolean, http10 = false) {
    this.conn = conn;
    this.head = method === 'HEAD';
    this.close = !keepAlive;
    this.http10 = http10;
  }

  onAbort(cb: () => void): void {
    this.abortCb = cb;
  }

  /** The connection went away before this response was complete. */
  abort(): void {
    if (this.done || this.aborted) return;
    this.aborted = true;
    this.abortCb?.();
  }

  respond(status: number, statusText: string, headers: string[], contentLength: number): void {
    if (this.aborted) return;
    let h = `HTTP/1.1 ${status} ${statusText || STATUS_CODES[status] || 'Unknown'}\r\n`;
    for (let i = 0; i < headers.length; i += 2) h += `${headers[i]}: ${headers[i + 1]}\r\n`;
    this.noBody = this.head || status === 204 || status === 304 || status < 200;
    if (status !== 204 && status !== 304) {
      if (contentLength >= 0) h += `content-length: ${contentLength}\r\n`;
      else if (this.http10) this.close = true;
      else if (!this.head) {
        this.chunked = true;
        h += 'transfer-encoding: chunked\r\n';
      }
    }
    if (this.close) h += 'connection: close\r\n';
    h += `date: ${httpDate()}\r\n\r\n`;
    this.conn.socket.cork();
    this.conn.socket.write(h, 'latin1');
    this.conn.uncorkSoon();
  }

  write(chunk: Buffer): boolean {
    if (this.aborted || this.noBody || chunk.length === 0) return true;
    const s = this.conn.socket;
    if (!this.chunked) return s.write(chunk);
    s.cork();
    s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    s.write(chunk);
    const ok = s.write('\r\n', 'latin1');
    this.conn.uncorkSoon();
    return ok;
  }

  onWritable(cb: () => void): void {
    this.conn.socket.once('drain', cb);
  }

  end(): void {
    if (this.aborted || this.done) return;
    if (this.chunked) this.conn.socket.write('0\r\n\r\n', 'latin1');
    this.done = true;
    this.conn.responseDone(this);
  }

  destroy(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.done = true;
    this.conn.socket.destroy();
  }

  sendWhole(status: number, headers: readonly string[], body: string, close = false): void {
    if (this.aborted || this.done) return;
    if (close) this.close = true;
    this.respond(status, '', [...headers], Buffer.byteLength(body));
    if (!this.noBody) this.conn.socket.write(body);
    this.end();
  }
}

type ParserWithHandlers = InstanceType<typeof HTTPParser> & Record<number, unknown>;

/**
 * A parsed request head and its body. The body is buffered until the request's turn comes (pipelining), then
 * handed to whatever the handler returned, or dropped when the handler answered at the head.
 */
class Pending implements H1Body {
  readonly req: H1Request;
  readonly expectContinue: boolean;
  private target: H1Body | null = null;
  private started = false;
  private buffered: Buffer[] | null = null;
  private ended = false;

  constructor(req: H1Request, expectContinue: boolean) {
    this.req = req;
    this.expectContinue = expectContinue;
  }

  begin(target: H1Body | null): void {
    this.started = true;
    this.target = target;
    if (this.buffered) for (const c of this.buffered) target?.data(c);
    this.buffered = null;
    if (this.ended) target?.end();
  }

  data(chunk: Buffer): void {
    if (this.started) this.target?.data(chunk);
    else (this.buffered ??= []).push(chunk);
  }

  end(): void {
    this.ended = true;
    if (this.started) this.target?.end();
  }
}

/**
 * One client connection: feeds socket bytes to llhttp, runs requests one at a time (a pipelined request waits
 * for the response before it, and reading pauses meanwhile), keeps the connection alive between them.
 */
export class H1Connection {
  readonly socket: Duplex;
  private readonly parser: ParserWithHandlers;
  private readonly handlers: H1Handlers;
  private current: H1Response | null = null;
  /** Where the body of the request being parsed goes (a pipelined one buffers until its turn). */
  private body: Pending | null = null;
  /** Requests parsed while an earlier response was still going out. */
  private readonly queue: Pending[] = [];
  private corked = false;
  private closed = false;
  /** The bytes stopped making sense: nothing more is parsed on this connection. */
  private broken = false;
  /** Requests answered so far on this connection. */
  requests = 0;

  constructor(socket: Duplex, handlers: H1Handlers) {
    this.socket = socket;
    this.handlers = handlers;
    const parser = new HTTPParser() as ParserWithHandlers;
    parser.initialize(HTTPParser.REQUEST, {}, MAX_HEADER_BYTES, HTTPParser.kLenientNone);
    parser[HTTPParser.kOnHeadersComplete] = this.onHeadersComplete;
    parser[HTTPParser.kOnBody] = this.onBody;
    parser[HTTPParser.kOnMessageComplete] = this.onMessageComplete;
    // Heads larger than one callback: llhttp hands them over in pieces before kOnHeadersComplete.
    parser[HTTPParser.kOnHeaders] = this.onHeaders;
    this.parser = parser;
    socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('end', () => {
      // A half-closed client may still read the response it is owed; close once it is written.
      if (this.current) this.current.close = true;
      else socket.end();
    });
    socket.on('close', () => this.onClose());
    socket.on('error', () => undefined);
  }

  /** True while a request is being handled (a drain lets it finish). */
  get busy(): boolean {
    return this.current !== null;
  }

  uncorkSoon(): void {
    if (this.corked) return;
    this.corked = true;
    process.nextTick(this.uncork);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    while (this.socket.writableCorked) this.socket.uncork();
  };

  private feed(chunk: Buffer): void {
    if (this.broken) return;
    let r: number | Error;
    try {
      r = this.parser.execute(chunk);
    } catch (err) {
      // A handler threw: this connection cannot be trusted to be in step any more; the process goes on.
      r = Object.assign(new Error(`request handling failed: ${(err as Error).message}`), { code: 'SLUICE_INTERNAL' });
    }
    if (typeof r !== 'number') this.fail(r as Error & { code?: string });
  }

  private pendingHeaders: string[] | null = null;
  private pendingUrl = '';

  private readonly onHeaders = (headers: string[], url: string): void => {
    (this.pendingHeaders ??= []).push(...headers);
    this.pendingUrl += url;
  };

  private readonly onHeadersComplete = (
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    _status: number,
    _statusText: string,
    upgrade: boolean,
    keepAlive: boolean,
  ): number => {
    const raw = this.pendingHeaders ? (headers ? [...this.pendingHeaders, ...headers] : this.pendingHeaders) : (headers ?? []);
    const target = this.pendingUrl + (url ?? '');
    this.pendingHeaders = null;
    this.pendingUrl = '';
    let contentLength = -1;
    let expectContinue = false;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      if (n.length === 14 && n.toLowerCase() === 'content-length') contentLength = Number(raw[i + 1]);
      else if (n.length === 6 && n.toLowerCase() === 'expect' && raw[i + 1]!.toLowerCase() === '100-continue') expectContinue = true;
    }
    const pending = new Pending({ method: methods[method] ?? 'GET', url: target, rawHeaders: raw, contentLength, keepAlive, upgrade, http10: major === 1 && minor === 0 }, expectContinue);
    this.body = pending;
    if (this.current) {
      // Pipelined: read no further until the earlier response is out; this request waits its turn.
      this.socket.pause();
      this.queue.push(pending);
    } else this.start(pending);
    return 0;
  };

  private start(p: Pending): void {
    const res = new H1Response(this, p.req.method, p.req.keepAlive && !p.req.upgrade, p.req.http10);
    this.current = res;
    if (p.expectContinue && !p.req.upgrade) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    p.begin(this.handlers.head(p.req, res));
  }

  private readonly onBody = (chunk: Buffer): void => {
    this.body?.data(chunk);
  };

  private readonly onMessageComplete = (): void => {
    const body = this.body;
    this.body = null;
    body?.end();
  };

  /** Called by a response once it is completely written. */
  responseDone(res: H1Response): void {
    if (this.current !== res) return;
    this.current = null;
    this.requests++;
    if (res.close || this.closed) {
      this.uncork();
      this.socket.end();
      return;
    }
    const next = this.queue.shift();
    if (next) this.start(next);
    else this.socket.resume();
  }

  private fail(err: Error & { code?: string }): void {
    this.broken = true;
    this.queue.length = 0;
    if (this.current) {
      // A request is being answered: its response stands; the connection ends after it.
      this.current.close = true;
      return;
    }
    const res = new H1Response(this, 'GET', false);
    this.current = res;
    this.handlers.parseError(err.code ?? 'HPE_ERROR', err.message, res);
  }

  private onClose(): void {
    this.closed = true;
    this.current?.abort();
    this.queue.length = 0;
    this.parser.close();
  }
}
