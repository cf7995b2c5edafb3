// Header rewriting shared by every front door: what crosses the proxy and what stops at it.
// Headers travel as flat [name, value, name, value…] arrays, the shape undici and Node's rawHeaders use.

import { createHash } from 'node:crypto';

/** RFC 9110 §7.6.1 connection-specific headers, plus proxy credentials meant for Sluice. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Dropped from requests: recomputed by the upstream client, or meaningless after the hop. */
const REQUEST_DROP = new Set([...HOP_BY_HOP, 'host', 'content-length', 'expect', 'http2-settings']);

/** Dropped from responses: the front door frames the body itself and stamps its own Date. */
const RESPONSE_DROP = new Set([...HOP_BY_HOP, 'content-length', 'date']);

export const SLUICE_HEADER_PREFIX = 'x-sluice-';

/** Where providers take API keys besides `Authorization: Bearer` (Anthropic, Azure OpenAI, Gemini). */
const API_KEY_HEADERS = new Set(['x-api-key', 'api-key', 'x-goog-api-key']);

const NONE: ReadonlyArray<readonly [string, string]> = Object.freeze([]);

export interface ForwardHeaders {
  /** Flat list for the upstream request. */
  headers: string[];
  /** `x-sluice-*` headers addressed to the proxy (identity and the like); never forwarded. */
  sluice: ReadonlyArray<readonly [string, string]>;
  contentLength: number;
  contentType: string;
  contentEncoding: string;
  /** Lower-cased Authorization scheme (`bearer`, `aws4-hmac-sha256`), '' when none: a signed body cannot be rewritten. */
  authScheme: string;
  /** SHA-256 (hex) of the provider API key the request carries (never the key), '' when none. */
  apiKeyFingerprint: string;
}

/** Names listed in a Connection header are hop-by-hop for this message (RFC 9110 §7.6.1). */
function connectionTokens(value: string): Set<string> | null {
  if (!value) return null;
  const out = new Set<string>();
  for (const t of value.split(',')) {
    const n = t.trim().toLowerCase();
    if (n && n !== 'close' && n !== 'keep-alive') out.add(n);
  }
  return out.size ? out : null;
}

/**
 * Builds upstream request headers from the client's (flat, any case): drops hop-by-hop and
 * Sluice's own headers, sets Host to the provider host and appends the client to X-Forwarded-For.
 */
export function forwardRequestHeaders(raw: readonly string[], upstreamHost: string, clientAddress: string): ForwardHeaders {
  let connection = '';
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') connection += (connection ? ',' : '') + raw[i + 1];
  }
  const extraDrop = connectionTokens(connection);
  const headers: string[] = ['host', upstreamHost];
  let sluice: Array<[string, string]> | null = null;
  let xff = '';
  let contentLength = -1;
  let contentType = '';
  let contentEncoding = '';
  let authScheme = '';
  let apiKey = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name.startsWith(SLUICE_HEADER_PREFIX)) {
      (sluice ??= []).push([name, value]);
      continue;
    }
    if (name === 'content-length') contentLength = Number(value);
    else if (name === 'content-type') contentType = value;
    else if (name === 'content-encoding') contentEncoding = value.toLowerCase();
    else if (name === 'authorization') {
      const sp = value.indexOf(' ');
      authScheme = value.slice(0, Math.max(0, sp)).toLowerCase();
      if (authScheme === 'bearer') apiKey = value.slice(sp + 1).trim();
      // SigV4 names its access key id (not secret, but it identifies the caller like an API key does).
      else if (authScheme === 'aws4-hmac-sha256') apiKey = /Credential=([^/,\s]+)/.exec(value)?.[1] ?? '';
    } else if (API_KEY_HEADERS.has(name) && !apiKey) apiKey = value.trim();
    if (REQUEST_DROP.has(name) || extraDrop?.has(name)) continue;
    if (name === 'x-forwarded-for') {
      xff += (xff ? ', ' : '') + value;
      continue;
    }
    headers.push(name, value);
  }
  headers.push('x-forwarded-for', xff ? `${xff}, ${clientAddress}` : clientAddress);
  const apiKeyFingerprint = apiKey ? createHash('sha256').update(apiKey).digest('hex') : '';
  return { headers, sluice: sluice ?? NONE, contentLength, contentType, contentEncoding, authScheme, apiKeyFingerprint };
}

export interface ResponseHeadInfo {
  /** Flat list for the client. */
  headers: string[];
  contentLength: number;
  contentType: string;
  contentEncoding: string;
}

/** Filters upstream response headers (undici raw Buffers) for the client. */
export function clientResponseHeaders(raw: ReadonlyArray<Buffer | string>): ResponseHeadInfo {
  let connection = '';
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 10 && n.toString().toLowerCase() === 'connection') connection += (connection ? ',' : '') + raw[i + 1]!.toString();
  }
  const extraDrop = connectionTokens(connection);
  const headers: string[] = [];
  let contentLength = -1;
  let contentType = '';
  let contentEncoding = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    if (name === 'content-length') {
      const n = Number(value);
      if (Number.isSafeInteger(n) && n >= 0) contentLength = n;
    } else if (name === 'content-type') contentType = value.toLowerCase();
    else if (name === 'content-encoding') contentEncoding = value.toLowerCase().trim();
    if (RESPONSE_DROP.has(name) || extraDrop?.has(name)) continue;
    headers.push(name, value);
  }
  return { headers, contentLength, contentType, contentEncoding };
}
