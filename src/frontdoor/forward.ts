// Forward-proxy front door (HTTP_PROXY / HTTPS_PROXY): absolute-form requests `POST http://host/path HTTP/1.1`
// and CONNECT (handed to ConnectDoor). Served by node:http because uWebSockets.js accepts neither.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import type { ListenAddress } from '../config/schema';
import { listenOn } from '../http/listen';
import type { Destination, DestinationRegistry } from '../destinations/registry';
import { certificateIdentity, type ProxyTls } from '../identity/mtls';
import type { Relay } from '../pipeline/relay';
import type { ConnectDoor } from './connect';
import { recordConnection } from './intercepted';
import { sendSluiceError, serveNodeRequest } from './node-request';
import { PROXY_AUTH_CHALLENGE, type ProxyAuth } from './proxy-auth';

export interface ForwardOptions {
  registry: DestinationRegistry;
  relay: Relay;
  maxRequestBytes: number;
  auth: ProxyAuth;
  /** CONNECT handling; without it CONNECT is refused. */
  connect?: ConnectDoor;
  /** Serve over TLS, optionally asking for client certificates (identity). */
  tls?: ProxyTls;
  handshakeTimeoutMs?: number;
}

/** First byte of a TLS record carrying a handshake (RFC 8446 §5.1): a ClientHello sent to this plain port. */
const TLS_HANDSHAKE = 0x16;

export class ForwardProxy {
  private readonly server: Server;
  private readonly opts: ForwardOptions;
  private readonly sockets = new Set<Socket>();
  private draining = false;

  constructor(opts: ForwardOptions) {
    this.opts = opts;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    const t = opts.tls;
    this.server = t
      ? createTlsServer(
          {
            requireHostHeader: false,
            cert: t.cert,
            key: t.key,
            ALPNProtocols: ['http/1.1'],
            handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
            // Optional certificates are verified too, but a failure is left to policy (identity problem) instead of the handshake.
            ...(t.clientCa.length > 0 ? { requestCert: true, ca: t.clientCa, rejectUnauthorized: t.clientCertRequired } : {}),
          },
          onRequest,
        )
      : createServer({ requireHostHeader: false }, onRequest);
    if (t) this.server.on('tlsClientError', (err: Error, s: TLSSocket) => this.tlsClientError(err, s));
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      if (opts.connect) {
        opts.connect.handle(req, socket, head);
        return;
      }
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
    this.server.on('clientError', (err: Error & { code?: string; rawPacket?: Buffer }, socket: Socket) => this.clientError(err, socket));
  }

  listen(addr: ListenAddress): Promise<number> {
    return listenOn(this.server, addr, 'forward proxy');
  }

  stopAccepting(): void {
    this.draining = true;
    this.opts.connect?.stopAccepting();
    this.server.close();
    this.server.closeIdleConnections();
  }

  close(): void {
    this.stopAccepting();
    this.opts.connect?.close();
    for (const s of this.sockets) s.destroy();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const t0 = performance.now();
    let url: URL;
    try {
      if (!/^http:\/\//i.test(req.url ?? '')) throw new Error('not absolute-form');
      url = new URL(req.url!);
    } catch {
      const message = 'this listener is the forward proxy: send absolute-form requests (http://host/path), CONNECT host:443, or use the gateway listener';
      sendSluiceError(res, 400, 'SLUICE_BAD_REQUEST', message);
      const info = { method: req.method ?? '', path: (req.url ?? '').slice(0, 200), query: '', contentType: '' };
      recordConnection(this.opts.relay, { frontDoor: 'forward', destination: this.opts.registry.byHost('invalid.invalid'), clientAddress: req.socket.remoteAddress ?? '', identity: null }, 'rejected', { code: 'SLUICE_BAD_REQUEST', message }, t0, undefined, info);
      return;
    }
    const auth = this.opts.auth.check(req.headers['proxy-authorization']);
    if (!auth.ok) {
      sendSluiceError(res, 407, 'SLUICE_PROXY_AUTH', auth.message, PROXY_AUTH_CHALLENGE);
      return;
    }
    const dest = this.plainHttpDestination(url.host);
    const cert = certificateIdentity(req.socket as TLSSocket);
    serveNodeRequest(
      req,
      res,
      t0,
      {
        frontDoor: 'forward',
        destination: dest,
        path: url.pathname,
        query: url.search.slice(1),
        // Host upstream: the provider host for known destinations; for an unknown host, what the client
        // addressed (url.host keeps a non-default port, which RFC 9110 §7.2 requires in Host).
        upstreamHost: dest.tier === 'unknown' ? url.host : dest.host,
        clientAddress: req.socket.remoteAddress ?? '',
        identity: cert.identity ?? auth.identity,
        identityProblem: cert.problem,
      },
      { relay: this.opts.relay, maxRequestBytes: this.opts.maxRequestBytes, draining: this.draining },
    );
  }

  /** Unparseable input: answered when the client can read HTTP, recorded either way. */
  private clientError(err: Error & { code?: string; rawPacket?: Buffer }, socket: Socket): void {
    const t0 = performance.now();
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    let status = 400;
    let message = `unparseable request: ${err.message}`;
    if (err.rawPacket?.[0] === TLS_HANDSHAKE) {
      // The client speaks TLS to the plain port (HTTPS_PROXY=https://…); an HTTP answer would be noise to it.
      message = 'a TLS ClientHello arrived on the plain-HTTP proxy port; set the proxy URL to http://, not https://';
      status = 0;
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      message = 'request header block exceeds the 16 KiB limit';
    }
    const destination = this.opts.registry.byHost('invalid.invalid');
    recordConnection(this.opts.relay, { frontDoor: 'forward', destination, clientAddress: socket.remoteAddress ?? '', identity: null }, 'rejected', { code: 'SLUICE_BAD_REQUEST', message }, t0);
    if (status === 0) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify({ error: { code: 'SLUICE_BAD_REQUEST', type: 'sluice_error', message } });
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\ncontent-type: application/json\r\n` +
        `x-sluice-error: SLUICE_BAD_REQUEST\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }

  /** A client that failed the TLS handshake with the proxy itself (no or a bad client certificate, wrong CA). */
  private tlsClientError(err: Error, socket: TLSSocket): void {
    const destination = this.opts.registry.byHost('invalid.invalid');
    const message = `TLS handshake with the forward proxy failed: ${err.message}`;
    recordConnection(this.opts.relay, { frontDoor: 'forward', destination, clientAddress: socket.remoteAddress ?? '', identity: null }, 'client_tls_failed', { code: 'SLUICE_CLIENT_TLS', message }, performance.now());
    socket.destroy();
  }

  /** Plain HTTP to a host Sluice does not know stays plain HTTP; AI providers are only served over TLS. */
  private plainHttpDestination(hostHeader: string): Destination {
    const dest = this.opts.registry.byHost(hostHeader);
    if (dest.tier !== 'unknown' || dest.origin !== `https://${hostHeader}`) return dest;
    return { ...dest, origin: `http://${hostHeader}` };
  }
}
