// A request read by a node-based front door into the shared Relay: the forward proxy (node:http, absolute-form)
// and requests decrypted from intercepted CONNECT tunnels and transparent TLS (h1.ts). Bounds the body.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Destination } from '../destinations/registry';
import { bodyTooLargeMessage } from '../errors';
import { Exchange, type FrontDoor, type Identity } from '../pipeline/exchange';
import { forwardRequestHeaders } from '../pipeline/headers';
import type { ClientSink, Relay } from '../pipeline/relay';
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
  /** A client certificate that was presented but not accepted. */
  identityProblem?: string | null;
}

export interface NodeRequestLimits {
  relay: Relay;
  maxRequestBytes: number;
  draining: boolean;
}

/** Receives the request body as it arrives; `end` hands the whole body to the Relay. */
export interface BodySink {
  data(chunk: Buffer): void;
  end(): void;
}

/**
 * Opens the exchange for a request head and returns where its body goes, or null when Sluice already answered
 * (draining, a declared length over the limit); the rest of such a body is read and dropped by the caller.
 */
export function beginExchange(
  method: string,
  rawHeaders: readonly string[],
  t0: number,
  target: NodeRequestTarget,
  limits: NodeRequestLimits,
  sink: ClientSink,
): BodySink | null {
  const fwd = forwardRequestHeaders(rawHeaders, target.upstreamHost, target.clientAddress);
  const x = new Exchange(target.frontDoor, target.destination, { method: method.toUpperCase(), path: target.path, query: target.query, contentType: fwd.contentType }, target.clientAddress, fwd.sluice, t0);
  x.identity = target.identity;
  if (target.identityProblem) x.identityProblem = target.identityProblem;
  x.requestEncoding = fwd.contentEncoding;
  x.authScheme = fwd.authScheme;
  x.apiKeyFingerprint = fwd.apiKeyFingerprint;
  const call = limits.relay.open(x, sink);
  const max = limits.maxRequestBytes;
  if (limits.draining) {
    call.reject('SLUICE_SHUTTING_DOWN', 'Sluice is shutting down and takes no new requests');
    return null;
  }
  if (fwd.contentLength > max) {
    call.reject('SLUICE_BODY_TOO_LARGE', bodyTooLargeMessage(fwd.contentLength, max));
    return null;
  }
  let first: Buffer | null = null;
  let parts: Buffer[] | null = null;
  let received = 0;
  let rejected = false;
  return {
    data(chunk) {
      if (rejected) return;
      received += chunk.length;
      if (received > max) {
        rejected = true;
        call.reject('SLUICE_BODY_TOO_LARGE', bodyTooLargeMessage(received, max));
        return;
      }
      if (!first) first = chunk;
      else (parts ??= [first]).push(chunk);
    },
    end() {
      if (!rejected) call.start(fwd.headers, parts ? Buffer.concat(parts) : (first ?? EMPTY));
    },
  };
}

/** The forward proxy's absolute-form requests, served by node:http. */
export function serveNodeRequest(req: IncomingMessage, res: ServerResponse, t0: number, target: NodeRequestTarget, limits: NodeRequestLimits): void {
  const body = beginExchange(req.method ?? 'GET', req.rawHeaders, t0, target, limits, new NodeSink(res));
  if (!body) return;
  req.on('data', (chunk: Buffer) => body.data(chunk));
  req.on('end', () => body.end());
  req.on('error', () => undefined);
}

/** A JSON error Sluice answers itself on a node:http response, before any exchange exists. */
export function sendSluiceError(res: ServerResponse, status: number, code: string, message: string, extra: readonly string[] = []): void {
  const body = JSON.stringify({ error: { code, type: 'sluice_error', message } });
  res.writeHead(status, ['content-type', 'application/json', 'content-length', String(Buffer.byteLength(body)), 'x-sluice-error', code, ...extra]);
  res.end(body);
}

/** The same error as a whole response on any ClientSink. */
export function sinkSluiceError(sink: ClientSink, status: number, code: string, message: string, close = false): void {
  const body = JSON.stringify({ error: { code, type: 'sluice_error', message } });
  sink.sendWhole(status, ['content-type', 'application/json', 'x-sluice-error', code], body, close);
}

const EMPTY = Buffer.alloc(0);
