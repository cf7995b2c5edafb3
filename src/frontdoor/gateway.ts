// Gateway front door: SDKs set their base URL to `http://sluice:8080/{provider}/…`.
// Routes by path prefix, reads the bounded body and hands the exchange to the shared Relay.

import { performance } from 'node:perf_hooks';
import type { ListenAddress } from '../config/schema';
import type { DestinationRegistry } from '../destinations/registry';
import { SluiceError, bodyTooLargeMessage } from '../errors';
import { App, SSLApp, closeApp, closeListenSocket, listenPort, type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from '../http/uws';
import { Exchange } from '../pipeline/exchange';
import { forwardRequestHeaders } from '../pipeline/headers';
import type { Relay } from '../pipeline/relay';
import { UwsSink } from './uws-sink';
import { recordConnection } from './intercepted';

export interface GatewayOptions {
  registry: DestinationRegistry;
  relay: Relay;
  maxRequestBytes: number;
  /** Serve HTTPS with these PEM files (checked readable and matching before this is built). */
  tls?: { cert: string; key: string };
}

export class Gateway {
  private readonly app: TemplatedApp;
  private readonly opts: GatewayOptions;
  private socket: us_listen_socket | null = null;
  private draining = false;
  private readonly notFoundBody: string;
  /** Reused for every request: headers are copied out by forwardRequestHeaders before the handler returns. */
  private readonly rawHeaders: string[] = [];
  private readonly collectHeader = (k: string, v: string): void => {
    this.rawHeaders.push(k, v);
  };

  constructor(opts: GatewayOptions) {
    this.opts = opts;
    this.notFoundBody = JSON.stringify({
      error: {
        code: 'SLUICE_UNKNOWN_ROUTE',
        type: 'sluice_error',
        message: 'no provider is routed at this path; point your SDK base URL at one of the prefixes',
        prefixes: opts.registry.prefixes(),
      },
    });
    this.app = opts.tls ? SSLApp({ cert_file_name: opts.tls.cert, key_file_name: opts.tls.key }) : App();
    this.app.any('/*', (res, req) => this.handle(res, req));
  }

  listen(addr: ListenAddress): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(addr.host, addr.port, (socket) => {
        if (!socket) {
          reject(new SluiceError('SLUICE_LISTEN_FAILED', `gateway cannot listen on ${addr.host}:${addr.port} (in use or not permitted)`));
          return;
        }
        this.socket = socket;
        resolve(listenPort(socket));
      });
    });
  }

  /** Stops accepting connections; in-flight exchanges are drained by the Relay. */
  stopAccepting(): void {
    this.draining = true;
    if (this.socket) closeListenSocket(this.socket);
    this.socket = null;
  }

  /** Closes every remaining connection (after the drain deadline). */
  close(): void {
    this.stopAccepting();
    closeApp(this.app);
  }

  private handle(res: HttpResponse, req: HttpRequest): void {
    const t0 = performance.now();
    const url = req.getUrl();
    const route = this.opts.registry.route(url);
    if (!route) {
      const method = req.getCaseSensitiveMethod().toUpperCase();
      const clientAddress = LATIN1.decode(res.getRemoteAddressAsText());
      res.cork(() => res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json').end(this.notFoundBody));
      // Probing for endpoints (or a misconfigured SDK) is worth a record too.
      const message = `no gateway prefix matches ${url.slice(0, 200)}`;
      recordConnection(this.opts.relay, { frontDoor: 'gateway', destination: this.opts.registry.byHost('invalid.invalid'), clientAddress, identity: null }, 'rejected', { code: 'SLUICE_UNKNOWN_ROUTE', message }, t0, undefined, { method, path: url, query: '', contentType: '' });
      return;
    }
    const raw = this.rawHeaders;
    raw.length = 0;
    req.forEach(this.collectHeader);
    const method = req.getCaseSensitiveMethod().toUpperCase();
    const clientAddress = LATIN1.decode(res.getRemoteAddressAsText());
    const dest = route.destination;
    const fwd = forwardRequestHeaders(raw, dest.host, clientAddress);
    const x = new Exchange(
      'gateway',
      dest,
      { method, path: route.path, query: req.getQuery() ?? '', contentType: fwd.contentType },
      clientAddress,
      fwd.sluice,
      t0,
    );
    x.requestEncoding = fwd.contentEncoding;
    x.authScheme = fwd.authScheme;
    x.apiKeyFingerprint = fwd.apiKeyFingerprint;
    const sink = new UwsSink(res, method === 'HEAD');
    res.onAborted(() => sink.markAborted());
    const call = this.opts.relay.open(x, sink);
    const max = this.opts.maxRequestBytes;
    if (this.draining) return call.reject('SLUICE_SHUTTING_DOWN', 'Sluice is shutting down and takes no new requests');
    if (fwd.contentLength > max) return call.reject('SLUICE_BODY_TOO_LARGE', bodyTooLargeMessage(fwd.contentLength, max));

    // Copy as it arrives: uWS reuses the chunk memory once the callback returns.
    const expected = fwd.contentLength;
    let body: Buffer | null = expected > 0 ? Buffer.allocUnsafe(expected) : null;
    let parts: Buffer[] | null = null;
    let received = 0;
    let rejected = false;
    res.onData((chunk, isLast) => {
      if (rejected) return;
      const n = chunk.byteLength;
      if (received + n > max) {
        rejected = true;
        call.reject('SLUICE_BODY_TOO_LARGE', bodyTooLargeMessage(received + n, max));
        return;
      }
      if (body && received + n <= body.length) {
        body.set(new Uint8Array(chunk), received);
      } else if (n > 0) {
        (parts ??= body ? [body.subarray(0, received)] : []).push(Buffer.from(new Uint8Array(chunk)));
        body = null;
      }
      received += n;
      if (!isLast) return;
      const full = parts ? Buffer.concat(parts) : body ? (received === body.length ? body : body.subarray(0, received)) : EMPTY;
      call.start(fwd.headers, full);
    });
  }
}

const EMPTY = Buffer.alloc(0);
const LATIN1 = new TextDecoder('latin1');
