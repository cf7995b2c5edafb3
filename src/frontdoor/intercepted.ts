// HTTP inside terminated TLS: requests decrypted from CONNECT tunnels and transparent connections
// go through one internal node:http server into the shared Relay, like every other front door.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Destination } from '../destinations/registry';
import type { ErrorCode } from '../errors';
import { Exchange, type FrontDoor, type Identity, type Outcome } from '../pipeline/exchange';
import type { Relay } from '../pipeline/relay';
import { sendSluiceError, serveNodeRequest } from './node-request';

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
}

export interface InterceptedOptions {
  relay: Relay;
  maxRequestBytes: number;
  /** Idle keep-alive connections are closed after this long. */
  idleTimeoutMs: number;
}

const CONNECT_INFO = Object.freeze({ method: 'CONNECT', path: '', query: '', contentType: '' });

/**
 * Records a connection-level event that carries no HTTP exchange (a tunnel, a refusal, a failed
 * handshake) through the pipeline's completion stages, so audit and signals see it like any exchange.
 */
export function recordConnection(
  relay: Relay,
  c: Omit<InterceptedConnection, 'host' | 'port'>,
  outcome: Outcome,
  error: { code: ErrorCode; message: string } | null,
  t0: number,
  bytes?: { up: number; down: number },
): Exchange {
  const x = new Exchange(c.frontDoor, c.destination, CONNECT_INFO, c.clientAddress, [], t0);
  x.identity = c.identity;
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
  private readonly server: Server;
  private readonly opts: InterceptedOptions;
  private readonly connections = new WeakMap<object, Served>();
  private readonly sockets = new Set<TLSSocket>();
  private draining = false;

  constructor(opts: InterceptedOptions) {
    this.opts = opts;
    this.server = createServer({ requireHostHeader: false, keepAliveTimeout: opts.idleTimeoutMs }, (req, res) => this.handle(req, res));
    // WebSocket (the OpenAI Realtime API) inside an intercepted tunnel is not relayed yet: refuse it plainly, and
    // say how to let it through, rather than let node drop the socket without a word.
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      const c = this.connections.get(socket)?.connection;
      const message = `protocol upgrade (${String(req.headers.upgrade ?? '').slice(0, 40)}) inside an intercepted tunnel is not supported; list the host under interception.tunnel to pass it through uninspected`;
      if (c) recordConnection(opts.relay, c, 'rejected', { code: 'SLUICE_BAD_REQUEST', message }, performance.now());
      const body = JSON.stringify({ error: { code: 'SLUICE_BAD_REQUEST', type: 'sluice_error', message } });
      socket.end(`HTTP/1.1 501 Not Implemented\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
    this.server.on('clientError', (err: Error & { code?: string }, socket) => {
      const c = this.connections.get(socket)?.connection;
      if (c && err.code !== 'ECONNRESET') {
        const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
        recordConnection(opts.relay, c, 'rejected', { code: 'SLUICE_BAD_REQUEST', message: `unparseable request inside the tunnel to ${c.host}: ${err.message}` }, performance.now());
        if (socket.writable) {
          socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
          return;
        }
      }
      socket.destroy();
    });
  }

  /** Serves HTTP/1.1 on a socket whose handshake has completed. */
  accept(socket: TLSSocket, c: InterceptedConnection): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    const served = new Served(c);
    this.connections.set(socket, served);
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    // Until the first request, a connection that sends nothing is cut here; after it, node's keep-alive timer
    // (keepAliveTimeout) takes over between requests and none runs while a provider is still thinking.
    socket.setTimeout(this.opts.idleTimeoutMs, () => {
      if (!served.busy) socket.destroy();
    });
    this.server.emit('connection', socket);
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  stopAccepting(): void {
    this.draining = true;
    // Idle keep-alive connections go now; busy ones finish their exchange (the relay drains them).
    for (const s of this.sockets) if (!this.connections.get(s)?.busy) s.destroy();
  }

  close(): void {
    this.draining = true;
    for (const s of this.sockets) s.destroy();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const t0 = performance.now();
    const served = this.connections.get(req.socket);
    if (!served) {
      res.destroy();
      return;
    }
    const c = served.connection;
    if (!served.requests++) req.socket.setTimeout(0);
    served.busy = true;
    res.on('close', served.idle);
    if (this.draining) res.shouldKeepAlive = false;
    const target = req.url ?? '/';
    // Origin-form only: an absolute URL inside a tunnel could name another host than the certificate covers.
    if (target[0] !== '/') {
      sendSluiceError(res, 400, 'SLUICE_BAD_REQUEST', `requests inside a tunnel to ${c.host} use origin-form targets (/path), not "${target.slice(0, 100)}"`);
      return;
    }
    const hostHeader = hostOf(req.rawHeaders);
    if (hostHeader && !sameAuthority(hostHeader, c.host, c.port)) {
      // Domain fronting: the connection was judged for one host, the request names another.
      sendSluiceError(res, 421, 'SLUICE_MISDIRECTED', `this connection was opened for ${c.host}; a request for "${hostHeader.slice(0, 255)}" needs its own connection`);
      recordConnection(this.opts.relay, c, 'rejected', { code: 'SLUICE_MISDIRECTED', message: `Host "${hostHeader.slice(0, 255)}" inside a tunnel to ${c.host}` }, t0);
      return;
    }
    const q = target.indexOf('?');
    serveNodeRequest(
      req,
      res,
      t0,
      {
        frontDoor: c.frontDoor,
        destination: c.destination,
        path: q < 0 ? target : target.slice(0, q),
        query: q < 0 ? '' : target.slice(q + 1),
        upstreamHost: c.destination.tier === 'unknown' && c.port !== null && c.port !== 443 ? `${c.host}:${c.port}` : c.destination.host,
        clientAddress: c.clientAddress,
        identity: c.identity,
      },
      { relay: this.opts.relay, maxRequestBytes: this.opts.maxRequestBytes, draining: this.draining },
    );
  }
}

/** Per-connection state, allocated once per connection rather than per request. */
class Served {
  readonly connection: InterceptedConnection;
  busy = false;
  requests = 0;
  readonly idle = (): void => {
    this.busy = false;
  };

  constructor(connection: InterceptedConnection) {
    this.connection = connection;
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
