// Forward-proxy front door (HTTP_PROXY): absolute-form requests `POST http://host/path HTTP/1.1`.
// Served by node:http because uWebSockets.js does not accept absolute-form request targets.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ListenAddress } from '../config/schema';
import type { Destination, DestinationRegistry } from '../destinations/registry';
import { SluiceError, bodyTooLargeMessage } from '../errors';
import { Exchange } from '../pipeline/exchange';
import { forwardRequestHeaders } from '../pipeline/headers';
import type { Relay } from '../pipeline/relay';
import { NodeSink } from './node-sink';

export interface ForwardOptions {
  registry: DestinationRegistry;
  relay: Relay;
  maxRequestBytes: number;
}

export class ForwardProxy {
  private readonly server: Server;
  private readonly opts: ForwardOptions;
  private readonly sockets = new Set<Socket>();
  private draining = false;

  constructor(opts: ForwardOptions) {
    this.opts = opts;
    this.server = createServer({ requireHostHeader: false }, (req, res) => this.handle(req, res));
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      // HTTPS through this port needs TLS interception; until then refuse plainly, not silently.
      socket.on('error', () => undefined);
      socket.end(
        'HTTP/1.1 405 Method Not Allowed\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n' +
          JSON.stringify({ error: { code: 'SLUICE_BAD_REQUEST', message: 'CONNECT tunnelling is not enabled on this listener; use the gateway prefixes' } }),
      );
    });
    this.server.on('clientError', (_err, socket: Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  listen(addr: ListenAddress): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(new SluiceError('SLUICE_LISTEN_FAILED', `forward proxy cannot listen on ${addr.host}:${addr.port}: ${err.message}`, { cause: err }));
      this.server.once('error', onError);
      this.server.listen(addr.port, addr.host, () => {
        this.server.off('error', onError);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  stopAccepting(): void {
    this.draining = true;
    this.server.close();
    this.server.closeIdleConnections();
  }

  close(): void {
    this.stopAccepting();
    for (const s of this.sockets) s.destroy();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const t0 = performance.now();
    const sink = new NodeSink(res);
    let url: URL;
    try {
      if (!/^http:\/\//i.test(req.url ?? '')) throw new Error('not absolute-form');
      url = new URL(req.url!);
    } catch {
      sink.sendWhole(
        400,
        ['content-type', 'application/json'],
        JSON.stringify({
          error: {
            code: 'SLUICE_BAD_REQUEST',
            message: 'this listener is the forward proxy: send absolute-form requests (http://host/path) or use the gateway listener',
          },
        }),
      );
      return;
    }
    const dest = this.plainHttpDestination(url.host);
    const clientAddress = req.socket.remoteAddress ?? '';
    // Host upstream: the provider host for known destinations; for an unknown host, what the client
    // addressed (url.host keeps a non-default port, which RFC 9110 §7.2 requires in Host).
    const fwd = forwardRequestHeaders(req.rawHeaders, dest.tier === 'unknown' ? url.host : dest.host, clientAddress);
    const x = new Exchange(
      'forward',
      dest,
      { method: (req.method ?? 'GET').toUpperCase(), path: url.pathname, query: url.search.slice(1), contentType: fwd.contentType },
      clientAddress,
      fwd.sluice,
      t0,
    );
    x.requestEncoding = fwd.contentEncoding;
    const call = this.opts.relay.open(x, sink);
    const max = this.opts.maxRequestBytes;
    if (this.draining) return call.reject('SLUICE_SHUTTING_DOWN', 'Sluice is shutting down and takes no new requests');
    if (fwd.contentLength > max) return call.reject('SLUICE_BODY_TOO_LARGE', bodyTooLargeMessage(fwd.contentLength, max));

    const parts: Buffer[] = [];
    let received = 0;
    let rejected = false;
    req.on('data', (chunk: Buffer) => {
      if (rejected) return;
      received += chunk.length;
      if (received > max) {
        rejected = true;
        call.reject('SLUICE_BODY_TOO_LARGE', bodyTooLargeMessage(received, max));
        req.resume();
        return;
      }
      parts.push(chunk);
    });
    req.on('end', () => {
      if (!rejected) call.start(fwd.headers, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    });
    req.on('error', () => undefined);
  }

  /** Plain HTTP to a host Sluice does not know stays plain HTTP; AI providers are only served over TLS. */
  private plainHttpDestination(hostHeader: string): Destination {
    const dest = this.opts.registry.byHost(hostHeader);
    if (dest.tier !== 'unknown' || dest.origin !== `https://${hostHeader}`) return dest;
    return { ...dest, origin: `http://${hostHeader}` };
  }
}
