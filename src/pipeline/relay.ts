// Runs one exchange end to end: request stages, upstream call, streamed response, completion.
// Front doors hand it an Exchange, the forwarded headers, the body and a ClientSink; nothing else.

import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { ErrorCodes, describeUpstreamError, upstreamErrorCode, type ErrorCode } from '../errors';
import { adapterFor } from '../providers/index';
import type { Upstreams } from '../upstream/pools';
import { BodyTap, inspectLimitMessage } from './decode';
import type { Exchange, Outcome } from './exchange';
import { clientResponseHeaders } from './headers';
import type { Pipeline } from './pipeline';

const EMPTY = Buffer.alloc(0);
const RELEASED: unknown = Object.freeze({});

/** How the pipeline talks back to the client, whatever the front door's server library. */
export interface ClientSink {
  /** True once the client has gone; later calls are ignored. */
  readonly aborted: boolean;
  onAbort(cb: () => void): void;
  /** Status line and headers (a fresh array the sink may append to). contentLength -1 means length unknown (chunked). */
  respond(status: number, statusText: string, headers: string[], contentLength: number): void;
  /** False when the chunk had to be buffered; wait for onWritable before sending more. */
  write(chunk: Buffer): boolean;
  onWritable(cb: () => void): void;
  end(): void;
  /** Cuts the connection: used when a response cannot be completed truthfully. */
  destroy(): void;
  /** A whole response produced by Sluice (errors, blocks); `close` drops the connection after it. */
  sendWhole(status: number, headers: readonly string[], body: string, close?: boolean): void;
}

export interface RelayOptions {
  maxInspectBytes: number;
}

/**
 * One exchange in flight, from the moment its head arrived (so a drain waits for uploads too).
 * Implements undici's raw handler: raw header buffers, no stream objects on the hot path.
 */
export class Call implements Dispatcher.DispatchHandler {
  x: Exchange;
  sink: ClientSink;
  readonly relay: Relay;
  headers: string[] = [];
  body: Buffer = EMPTY;
  abortUpstream: ((err?: Error) => void) | null = null;
  resumeUpstream: (() => void) | null = null;
  responded = false;
  chunked = false;
  finished = false;
  /** Set once the exchange was cancelled (client gone, shutdown): upstream errors that follow are ours. */
  cancelled = false;
  /** Compressed responses: the decoder that feeds stages. */
  tap: BodyTap | null = null;
  /** Plain responses: bytes stages may still see (limits.max_inspect_bytes); -1 when no stage wants chunks. */
  inspectRoom = -1;
  /** A response held back until policy has judged all of it (x.holdResponse): its head and body so far. */
  held: { status: number; statusText: string; headers: string[]; contentLength: number; parts: Buffer[]; bytes: number } | null = null;

  constructor(relay: Relay, x: Exchange, sink: ClientSink) {
    this.relay = relay;
    this.x = x;
    this.sink = sink;
  }

  /** The body has been read in full: run the request stages, then go upstream. */
  start(headers: string[], body: Buffer): void {
    if (this.finished || this.cancelled) return;
    this.headers = headers;
    this.body = body;
    this.relay.begin(this);
  }

  /** Sluice refuses the exchange before anything went upstream (413, draining…). */
  reject(code: ErrorCode, message: string): void {
    if (this.finished) return;
    this.x.fail(code, message);
    this.x.outcome = 'rejected';
    if (!this.sink.aborted) this.relay.answer(this.x, this.sink, code, message);
    this.finish();
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.cancelled) abort(new Error('exchange cancelled'));
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (status < 200) return true; // 1xx informational: the final head follows
    const t = performance.now();
    const x = this.x;
    x.tUpstreamHead = t;
    x.status = status;
    const head = clientResponseHeaders(raw);
    x.responseContentType = head.contentType;
    x.responseEncoding = head.contentEncoding;
    this.resumeUpstream = resume;
    const pipeline = this.relay.pipeline;
    pipeline.responseHead(x);
    if (pipeline.wantsResponseChunks) {
      const enc = head.contentEncoding;
      if (enc === '' || enc === 'identity') this.inspectRoom = this.relay.opts.maxInspectBytes;
      else
        this.tap = new BodyTap(enc, this.relay.opts.maxInspectBytes, {
          chunk: (b) => pipeline.responseChunk(x, b),
          problem: (m) => x.inspectProblem(m),
        });
    }
    // A HEAD answer keeps the length of the body it describes; 204 and 304 have none.
    const contentLength = status === 204 || status === 304 ? 0 : head.contentLength;
    this.chunked = contentLength < 0;
    head.headers.push('x-sluice-exchange-id', x.id);
    if (x.holdResponse) {
      // Nothing reaches the client until the stages have judged the whole body (onComplete).
      this.held = { status, statusText, headers: head.headers, contentLength, parts: [], bytes: 0 };
      x.ownMs += performance.now() - t;
      return true;
    }
    this.responded = true;
    if (pipeline.wantsResponseChunks) x.interrupt = (code, message) => this.interrupt(code, message);
    this.sink.respond(status, statusText, head.headers, contentLength);
    x.ownMs += performance.now() - t;
    return true;
  }

  /** Sends what was held back: the head, then the body, as if it had streamed. */
  private releaseHeld(): void {
    const h = this.held!;
    this.held = null;
    this.responded = true;
    this.sink.respond(h.status, h.statusText, h.headers, h.contentLength);
    for (const p of h.parts) this.sink.write(p);
  }

  onData(chunk: Buffer): boolean {
    const t = performance.now();
    this.x.responseBytes += chunk.length;
    if (this.inspectRoom > 0) this.inspect(chunk);
    else if (this.tap) this.tap.push(chunk);
    const h = this.held;
    if (h) {
      h.parts.push(chunk);
      h.bytes += chunk.length;
      this.x.ownMs += performance.now() - t;
      if (h.bytes <= this.relay.opts.maxInspectBytes) return true;
      // Too large to hold in memory: it goes out unjudged, and the record says so.
      this.x.inspectProblem(`response over ${this.relay.opts.maxInspectBytes} bytes was passed on before policy could judge it whole`);
      this.releaseHeld();
      return true;
    }
    const ok = this.sink.write(chunk);
    this.x.ownMs += performance.now() - t;
    if (ok || this.sink.aborted) return true;
    // Backpressure: undici stops reading the upstream socket until the client drains.
    this.sink.onWritable(this.resumeUpstream!);
    return false;
  }

  private inspect(chunk: Buffer): void {
    const x = this.x;
    if (chunk.length <= this.inspectRoom) {
      this.inspectRoom -= chunk.length;
      this.relay.pipeline.responseChunk(x, chunk);
      return;
    }
    this.relay.pipeline.responseChunk(x, chunk.subarray(0, this.inspectRoom));
    this.inspectRoom = 0;
    x.inspectProblem(inspectLimitMessage(this.relay.opts.maxInspectBytes));
  }

  /**
   * undici keeps finished handlers reachable until its timer wheel next ticks (~1 s), long enough
   * for the young generation to promote whatever they reference. Cutting the links here keeps each
   * exchange's objects short-lived: scavenges went from ~5 ms to ~1 ms under load.
   */
  release(): void {
    this.x = RELEASED as Exchange;
    this.sink = RELEASED as ClientSink;
    this.headers = [];
    this.body = EMPTY;
    this.tap = null;
    this.abortUpstream = null;
    this.resumeUpstream = null;
  }

  onComplete(): void {
    const x = this.x;
    if (this.held && !this.cancelled) {
      // Decoding (a compressed body) must finish before the stages judge what it said.
      const tap = this.tap;
      this.tap = null;
      if (tap) tap.end(() => this.judgeHeld());
      else this.judgeHeld();
      return;
    }
    if (!this.cancelled) {
      this.sink.end();
      x.outcome = 'completed';
    }
    this.finish();
  }

  /** The held body is complete: the stages judge it, then the client gets it, or Sluice's error instead. */
  private judgeHeld(): void {
    const x = this.x;
    const t = performance.now();
    const p = this.relay.pipeline.responseEnd(x);
    x.ownMs += performance.now() - t;
    const go = () => {
      if (this.cancelled || this.finished) return;
      const d = x.responseDecision;
      if (d?.action === 'block') {
        this.held = null;
        x.outcome = 'blocked';
        const message = `blocked by Sluice policy: ${d.reason ?? 'no reason given'} (reference ${x.id})`;
        x.fail(d.code ?? 'SLUICE_BLOCKED', message);
        this.relay.answer(x, this.sink, d.code ?? 'SLUICE_BLOCKED', message);
      } else {
        this.releaseHeld();
        this.sink.end();
        x.outcome = 'completed';
      }
      this.finish();
    };
    if (p) p.then(go, go);
    else go();
  }

  onError(err: Error): void {
    const x = this.x;
    if (this.cancelled) {
      this.finish();
      return;
    }
    const code = upstreamErrorCode(err);
    const message = describeUpstreamError(err, x.destination.host);
    x.fail(code, message);
    if (!this.responded) {
      x.outcome = 'upstream_error';
      this.relay.answer(x, this.sink, code, message);
    } else {
      x.outcome = 'upstream_aborted';
      // A chunked body can end at a chunk boundary (SSE clients see the stream stop);
      // a sized body cannot end early without lying about its length, so the connection goes.
      if (this.chunked) this.sink.end();
      else this.sink.destroy();
    }
    this.finish();
  }

  /**
   * Policy cut the response mid-stream: the client gets the provider's own in-stream error event, when the body
   * is a plain stream it can be appended to, and the stream ends; otherwise the connection is cut. Upstream is aborted.
   */
  interrupt(code: ErrorCode, message: string): void {
    if (this.finished || this.cancelled) return;
    const x = this.x;
    this.cancelled = true;
    x.outcome = 'blocked';
    x.fail(code, message);
    const plain = x.responseEncoding === '' || x.responseEncoding === 'identity';
    const event = plain && this.chunked ? adapterFor(x.destination.format).streamErrorEvent(x.responseContentType, code, message) : null;
    if (event) {
      this.sink.write(event);
      this.sink.end();
    } else this.sink.destroy();
    if (this.abortUpstream) this.abortUpstream(new Error(message));
  }

  clientAborted(): void {
    this.cancel('client_aborted', 'SLUICE_CLIENT_ABORTED', 'client closed the connection before the response finished');
  }

  /** Ends the exchange early: the upstream request (if any) is aborted, the client connection cut. */
  cancel(outcome: Outcome, code: ErrorCode, message: string): void {
    if (this.finished || this.cancelled) return;
    this.cancelled = true;
    this.x.outcome = outcome;
    this.x.fail(code, message);
    this.sink.destroy();
    if (this.abortUpstream) this.abortUpstream(new Error(message));
    // Not sent upstream yet (reading the body, or in request stages): nothing to wait for.
    else if (this.x.tUpstreamStart === 0) this.finish();
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.x.interrupt = null;
    if (this.tap) this.tap.end(() => this.relay.complete(this));
    else this.relay.complete(this);
  }
}

export class Relay {
  readonly pipeline: Pipeline;
  readonly opts: RelayOptions;
  private readonly upstreams: Upstreams;
  private readonly active = new Set<Call>();
  private idleWaiters: Array<() => void> = [];

  constructor(pipeline: Pipeline, upstreams: Upstreams, opts: RelayOptions) {
    this.pipeline = pipeline;
    this.upstreams = upstreams;
    this.opts = opts;
  }

  get inFlight(): number {
    return this.active.size;
  }

  /** Registers an exchange as soon as its head is read; the front door then calls start or reject. */
  open(x: Exchange, sink: ClientSink): Call {
    const call = new Call(this, x, sink);
    this.active.add(call);
    sink.onAbort(() => call.clientAborted());
    return call;
  }

  begin(call: Call): void {
    const x = call.x;
    x.requestBytes = call.body.length;
    const t = performance.now();
    const p = this.pipeline.requestHead(x);
    x.ownMs += performance.now() - t;
    if (p) p.then(() => this.afterHead(call));
    else this.afterHead(call);
  }

  /** Sluice answers itself (limits, routing, upstream failures) in the provider's error shape. */
  answer(x: Exchange, sink: ClientSink, code: ErrorCode, message: string): void {
    const status = ErrorCodes[code].status;
    const { contentType, body } = adapterFor(x.destination.format).errorBody(status, code, message);
    // After a refused upload the rest of the body may still be in flight: close rather than read it.
    const close = code === 'SLUICE_BODY_TOO_LARGE';
    sink.sendWhole(status, ['content-type', contentType, 'x-sluice-error', code, 'x-sluice-exchange-id', x.id], body, close);
  }

  /** Waits for in-flight exchanges up to `graceMs`, then cuts what is left. */
  async drain(graceMs: number): Promise<void> {
    if (this.active.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, graceMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    for (const call of [...this.active]) {
      call.cancel('cut_at_shutdown', 'SLUICE_SHUTTING_DOWN', `shutdown grace period of ${graceMs} ms ended before the exchange did`);
    }
  }

  /**
   * Completes an exchange that never carried an HTTP request through the relay (a tunnel, a denied
   * CONNECT, a failed client handshake), so later stages record it like any other.
   */
  record(x: Exchange): void {
    x.tEnd = performance.now();
    this.pipeline.complete(x);
  }

  complete(call: Call): void {
    const x = call.x;
    x.tEnd = performance.now();
    const t = x.tEnd;
    this.pipeline.complete(x);
    x.ownMs += performance.now() - t;
    this.active.delete(call);
    call.release();
    if (this.active.size === 0 && this.idleWaiters.length) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private afterHead(call: Call): void {
    const x = call.x;
    if (call.cancelled) return;
    if (x.decision.action === 'block') return this.blocked(call);
    const t = performance.now();
    const p = this.pipeline.requestBody(x, call.body);
    x.ownMs += performance.now() - t;
    if (p) p.then(() => this.send(call));
    else this.send(call);
  }

  private send(call: Call): void {
    const x = call.x;
    if (call.cancelled) return;
    if (x.decision.action === 'block') return this.blocked(call);
    x.tUpstreamStart = performance.now();
    const q = x.info.query;
    try {
      this.upstreams.dispatch(
        x.destination.origin,
        {
          path: q ? `${x.info.path}?${q}` : x.info.path,
          method: x.info.method as Dispatcher.HttpMethod,
          headers: call.headers,
          body: x.rewrittenBody ?? (call.body.length > 0 || x.info.method !== 'GET' ? call.body : null),
        },
        call,
      );
    } catch (err) {
      // undici refuses what it cannot send (a header value with a newline, an odd method).
      x.fail('SLUICE_BAD_REQUEST', `request cannot be forwarded: ${(err as Error).message}`);
      x.outcome = 'rejected';
      this.answer(x, call.sink, 'SLUICE_BAD_REQUEST', `request cannot be forwarded: ${(err as Error).message}`);
      call.finish();
    }
  }

  private blocked(call: Call): void {
    const x = call.x;
    x.outcome = 'blocked';
    // The reference is the exchange id the record carries, so a user's report leads the SOC to it.
    const code = x.decision.code ?? 'SLUICE_BLOCKED';
    const message = `blocked by Sluice policy: ${x.decision.reason ?? 'no reason given'} (reference ${x.id})`;
    x.fail(code, message);
    this.answer(x, call.sink, code, message);
    call.finish();
  }
}
