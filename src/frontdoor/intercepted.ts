// HTTP inside terminated TLS: requests decrypted from CONNECT tunnels and transparent connections are
// parsed by h1.ts and go into the shared Relay, like every other front door's.

import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { Destination } from '../destinations/registry';
import type { ErrorCode } from '../errors';
import { Exchange, type FrontDoor, type Identity, type Outcome } from '../pipeline/exchange';
import type { Relay } from '../pipeline/relay';
import type { RequestInfo } from '../providers/types';
import { H1Connection, type H1Request, type H1Response } from './h1';
import { beginExchange, sinkSluiceError, type BodySink } from './node-request';

/** What the connection was opened for: every request on it is judged against this. */
export interface InterceptedConnection {
  frontDoor: FrontDoor;
  destination: Destination;
  /** Host the client's certificate was minted for (CONNECT target or SNI). */
  host: string;
  /**
   * Port the client asked for (CONNECT); requests must name it in Host when it is not 443. Null in transparent
   * mode, where a redirect may have changed the port the client addressed: any port in Host is accepted.
   */
  port: number | null;
  clientAddress: string;
  identity: Identity | null;
  /** A client certificate that was presented but not accepted. */
  identityProblem?: string | null;
}

export interface InterceptedOptions {
  relay: Relay;
  maxRequestBytes: number;
  /** Idle keep-alive connections are closed after this long. */
  idleTimeoutMs: number;
}

const CONNECT_INFO = Object.freeze({ method: 'CONNECT', path: '', query: '', contentType: '' });

/**
 * Records an event that never became a relayed exchange (a tunnel, a refusal, a failed handshake, a request
 * Sluice could not route) through the pipeline's completion stages, so audit and signals see it like any exchange.
 * `info` is the request line when there was one; connection-level events record as CONNECT.
 */
export function recordConnection(
  relay: Relay,
  c: Omit<InterceptedConnection, 'host' | 'port'>,
  outcome: Outcome,
  error: { code: ErrorCode; message: string } | null,
  t0: number,
  bytes?: { up: number; down: number },
  info: RequestInfo = CONNECT_INFO,
): Exchange {
  const x = new Exchange(c.frontDoor, c.destination, info, c.clientAddress, [], t0);
  x.identity = c.identity;
  if (c.identityProblem) x.identityProblem = c.identityProblem;
  x.outcome = outcome;
  if (error) {
    x.fail(error.code, error.message);
    if (outcome === 'denied') x.block('interception', error.message);
  }
  if (bytes) {
    x.requestBytes = bytes.up;
    x.responseBytes = bytes.down;
  }
  relay.record(x);
  return x;
}

export class InterceptedHttp {
  private readonly opts: InterceptedOptions;
  private readonly connections = new Map<TLSSocket, H1Connection>();
  private draining = false;

  constructor(opts: InterceptedOptions) {
    this.opts = opts;
  }

  /** Serves HTTP/1.1 on a socket whose handshake has completed. */
  accept(socket: TLSSocket, c: InterceptedConnection): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    const conn = new H1Connection(socket, {
      head: (req, res) => this.head(c, req, res),
      parseError: (code, message, res) => {
        const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
        recordConnection(this.opts.relay, c, 'rejected', { code: 'SLUICE_BAD_REQUEST', message: `unparseable request inside the tunnel to ${c.host}: ${message} (${code})` }, performance.now());
        sinkSluiceError(res, status, 'SLUICE_BAD_REQUEST', `unparseable request: ${message}`, true);
      },
    });
    this.connections.set(socket, conn);
    socket.on('close', () => this.connections.delete(socket));
    // Idle between requests (or before the first) this long, the connection goes; never while a request runs.
    socket.setTimeout(this.opts.idleTimeoutMs, () => {
      if (!conn.busy) socket.destroy();
    });
  }

  get openConnections(): number {
    return this.connections.size;
  }

  stopAccepting(): void {
    this.draining = true;
    // Idle keep-alive connections go now; busy ones finish their exchange (the relay drains them).
    for (const [s, conn] of this.connections) if (!conn.busy) s.destroy();
  }

  close(): void {
    this.draining = true;
    for (const s of this.connections.keys()) s.destroy();
  }

  private head(c: InterceptedConnection, req: H1Request, res: H1Response): BodySink | null {
    const t0 = performance.now();
    if (this.draining) res.close = true;
    if (req.upgrade) {
      // WebSocket (the OpenAI Realtime API) inside an intercepted tunnel is not relayed yet: refuse it plainly, and
      // say how to let it through.
      const message = 'a protocol upgrade inside an intercepted tunnel is not supported; list the host under interception.tunnel to pass it through uninspected';
      recordConnection(this.opts.relay, c, 'rejected', { code: 'SLUICE_BAD_REQUEST', message }, t0);
      sinkSluiceError(res, 501, 'SLUICE_BAD_REQUEST', message, true);
      return null;
    }
    const target = req.url;
    // Origin-form only: an absolute URL inside a tunnel could name another host than the certificate covers.
    if (target[0] !== '/') {
      sinkSluiceError(res, 400, 'SLUICE_BAD_REQUEST', `requests inside a tunnel to ${c.host} use origin-form targets (/path), not "${target.slice(0, 100)}"`);
      return null;
    }
    const hostHeader = hostOf(req.rawHeaders);
    if (hostHeader && !sameAuthority(hostHeader, c.host, c.port)) {
      // Domain fronting: the connection was judged for one host, the request names another.
      sinkSluiceError(res, 421, 'SLUICE_MISDIRECTED', `this connection was opened for ${c.host}; a request for "${hostHeader.slice(0, 255)}" needs its own connection`);
      recordConnection(this.opts.relay, c, 'rejected', { code: 'SLUICE_MISDIRECTED', message: `Host "${hostHeader.slice(0, 255)}" inside a tunnel to ${c.host}` }, t0);
      return null;
    }
    const q = target.indexOf('?');
    return beginExchange(
      req.method,
      req.rawHeaders,
      t0,
      {
        frontDoor: c.frontDoor,
        destination: c.destination,
        path: q < 0 ? target : target.slice(0, q),
        query: q < 0 ? '' : target.slice(q + 1),
        upstreamHost: c.destination.tier === 'unknown' && c.port !== null && c.port !== 443 ? `${c.host}:${c.port}` : c.destination.host,
        clientAddress: c.clientAddress,
        identity: c.identity,
        identityProblem: c.identityProblem ?? null,
      },
      { relay: this.opts.relay, maxRequestBytes: this.opts.maxRequestBytes, draining: this.draining },
      res,
    );
  }
}

/** The Host header from raw headers, lower-cased; reading req.headers would build an object of all of them. */
function hostOf(raw: readonly string[]): string {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 4 && n.toLowerCase() === 'host') return raw[i + 1]!.toLowerCase();
  }
  return '';
}

function sameAuthority(hostHeader: string, host: string, port: number | null): boolean {
  const bare = host.includes(':') ? `[${host}]` : host;
  if (hostHeader === host || hostHeader === bare) return port === null || port === 443;
  if (port === null) return hostHeader.startsWith(`${bare}:`) && /^\d{1,5}$/.test(hostHeader.slice(bare.length + 1));
  return hostHeader === `${bare}:${port}`;
}
