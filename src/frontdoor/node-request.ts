// One node:http request into the shared Relay: used by the forward proxy (absolute-form) and by
// requests decrypted from intercepted CONNECT tunnels and transparent TLS. Reads the bounded body.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Destination } from '../destinations/registry';
import { bodyTooLargeMessage } from '../errors';
import { Exchange, type FrontDoor, type Identity } from '../pipeline/exchange';
import { forwardRequestHeaders } from '../pipeline/headers';
import type { Relay } from '../pipeline/relay';
import { NodeSink } from './node-sink';

export interface NodeRequestTarget {
  frontDoor: FrontDoor;
  destination: Destination;
  path: string;
  /** Without the leading `?`. */
  query: string;
  /** What `Host` says upstream. */
  upstreamHost: string;
  clientAddress: string;
  identity: Identity | null;
}

export interface NodeRequestLimits {
  relay: Relay;
  maxRequestBytes: number;
  draining: boolean;
}

export function serveNodeRequest(req: IncomingMessage, res: ServerResponse, t0: number, target: NodeRequestTarget, limits: NodeRequestLimits): void {
  const sink = new NodeSink(res);
  const fwd = forwardRequestHeaders(req.rawHeaders, target.upstreamHost, target.clientAddress);
  const x = new Exchange(
    target.frontDoor,
    target.destination,
    { method: (req.method ?? 'GET').toUpperCase(), path: target.path, query: target.query, contentType: fwd.contentType },
    target.clientAddress,
    fwd.sluice,
    t0,
  );
  x.identity = target.identity;
  x.requestEncoding = fwd.contentEncoding;
  const call = limits.relay.open(x, sink);
  const max = limits.maxRequestBytes;
  if (limits.draining) return call.reject('SLUICE_SHUTTING_DOWN', 'Sluice is shutting down and takes no new requests');
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

/** A JSON error Sluice answers itself on a node:http response, before any exchange exists. */
export function sendSluiceError(res: ServerResponse, status: number, code: string, message: string, extra: readonly string[] = []): void {
  const body = JSON.stringify({ error: { code, type: 'sluice_error', message } });
  res.writeHead(status, ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body)), 'x-sluice-error', code, ...extra]);
  res.end(body);
}
