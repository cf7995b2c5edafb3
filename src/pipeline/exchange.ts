// The Exchange: everything Sluice learns about one request/response pair, as it passes.
// Front doors create it, stages read and annotate it, the audit and signals stages consume it.

import { randomFillSync } from 'node:crypto';
import type { Category, Severity } from '../detect/categories';
import type { Destination } from '../destinations/registry';
import type { ErrorCode } from '../errors';
import type { ParsedRequest, ParsedResponse, RequestInfo, ResponseParser } from '../providers/types';

/** gateway: base URL; forward: absolute-form HTTP; connect: CONNECT (intercepted, tunnelled or denied); transparent: TLS by SNI. */
export type FrontDoor = 'gateway' | 'forward' | 'connect' | 'transparent';

/** What policy decided; `allow` until a stage says otherwise. */
export interface Decision {
  action: 'allow' | 'alert' | 'redact' | 'block';
  reason?: string;
  /** Stage that took the decision. */
  by?: string;
  /** The policy rule that fired (`content:no-secrets`, `unsanctioned`, `on_failure.inspect_timeout`). */
  rule?: string;
  /** Hash of the policy in force when the decision was taken. */
  policyVersion?: string;
  /** The error a block answers with, when not SLUICE_BLOCKED (401 for a refused identity). */
  code?: ErrorCode;
}

/** A detector finding in an exchange: where it sits and what it is, never the raw value. */
export interface ExchangeFinding {
  rule: string;
  category: Category;
  severity: Severity;
  confidence: number;
  /** The segment's role and JSON path (`messages[1].content`). */
  role: string;
  path: string;
  /** UTF-16 offsets into that segment's text, end exclusive. */
  start: number;
  end: number;
  masked: string;
  digest?: string;
  /** Score rules: how many matches this finding stands for. */
  count?: number;
}

/** Why an exchange could not be inspected, by the kinds policy.on_failure names. */
export type InspectFailureKind = 'inspect_timeout' | 'inspect_crashed' | 'inspect_overloaded' | 'unparseable_body' | 'oversized_body';

/** How the exchange ended, from the client's point of view. */
export type Outcome =
  | 'pending'
  | 'completed'
  | 'blocked'
  | 'rejected' // Sluice refused it before any upstream contact (413, unknown route, shutting down)
  | 'upstream_error'
  | 'upstream_aborted'
  | 'client_aborted'
  | 'cut_at_shutdown' // still running when the shutdown grace period ended
  | 'tunnelled' // CONNECT passed through blind: destination and byte counts only
  | 'denied' // CONNECT or SNI refused by interception config or as bad input
  | 'client_tls_failed'; // the client's TLS handshake with Sluice failed (pinning, untrusted CA, timeout)

/** Who is calling: filled by the identity stage (signed token, proxy credentials, API-key fingerprint, address). */
export interface Identity {
  subject: string;
  /** In order of trust: a signed JWT, Proxy-Authorization, a mapped API key, the source address. */
  source: 'jwt' | 'mtls' | 'proxy_auth' | 'api_key' | 'address';
  /** False when nothing proved the claim (a proxy user name without passwords, an address). */
  verified: boolean;
  tenant?: string;
  app?: string;
  groups?: string[];
  jurisdiction?: string;
}

export interface Latency {
  /** Client request accepted → last byte handed to the client, ms. */
  totalMs: number;
  /** Upstream request sent → upstream response head received, ms. */
  ttfbMs: number;
  /** Time spent inside Sluice (parsing, stages, relaying), ms. */
  ownMs: number;
}

const ALLOW: Decision = Object.freeze({ action: 'allow' });

const rnd = Buffer.allocUnsafe(4096);
let rndPos = rnd.length;
let lastMs = 0;
let seq = 0;
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** RFC 9562 UUIDv7: time-ordered, so audit records and ids sort by arrival. */
export function uuidv7(now = Date.now()): string {
  if (rndPos + 8 > rnd.length) {
    randomFillSync(rnd);
    rndPos = 0;
  }
  // 12-bit rand_a used as a counter within one millisecond keeps ids monotonic (RFC 9562 §6.2 method 1).
  if (now <= lastMs) {
    now = lastMs;
    seq = (seq + 1) & 0xfff;
    if (seq === 0) now = ++lastMs;
  } else {
    lastMs = now;
    seq = rnd[rndPos]! & 0x7ff;
  }
  const hi = Math.floor(now / 0x10000);
  const lo = now & 0xffff;
  const r = rnd;
  const p = rndPos;
  rndPos += 8;
  return (
    HEX[(hi >>> 24) & 0xff]! + HEX[(hi >>> 16) & 0xff]! + HEX[(hi >>> 8) & 0xff]! + HEX[hi & 0xff]! + '-' +
    HEX[lo >>> 8]! + HEX[lo & 0xff]! + '-' +
    HEX[0x70 | (seq >>> 8)]! + HEX[seq & 0xff]! + '-' +
    HEX[0x80 | (r[p]! & 0x3f)]! + HEX[r[p + 1]!]! + '-' +
    HEX[r[p + 2]!]! + HEX[r[p + 3]!]! + HEX[r[p + 4]!]! + HEX[r[p + 5]!]! + HEX[r[p + 6]!]! + HEX[r[p + 7]!]!
  );
}

export class Exchange {
  readonly id: string;
  /** Wall clock at arrival (epoch ms), for records. */
  readonly startedAt: number;
  /** Monotonic clock at arrival (performance.now() ms), for latencies. */
  readonly t0: number;
  readonly frontDoor: FrontDoor;
  readonly destination: Destination;
  readonly info: RequestInfo;
  readonly clientAddress: string;
  /** `x-sluice-*` request headers, taken off before forwarding; identity stages read them. */
  readonly sluiceHeaders: ReadonlyArray<readonly [string, string]>;
  identity: Identity | null = null;

  requestBytes = 0;
  /** Request content-encoding, lower-cased ('' when none). */
  requestEncoding = '';
  /** Authorization scheme, lower-cased ('' when none); `aws4-hmac-sha256` signs the body itself. */
  authScheme = '';
  /** SHA-256 of the provider API key the request carried, '' when none. */
  apiKeyFingerprint = '';
  /** Why a presented identity token was not accepted; null when none was presented or it verified. */
  identityProblem: string | null = null;
  /** The class of traffic (routes); `default` when no route matched. */
  route = 'default';
  request: ParsedRequest | null = null;
  status = 0;
  responseContentType = '';
  responseEncoding = '';
  responseBytes = 0;
  /** Problems met while tapping the response for inspection (decoding, limits); null when none. */
  inspectProblems: string[] | null = null;
  response: ParsedResponse | null = null;
  /** The adapter's incremental parser while the response streams; null once `response` is final. */
  responseParser: ResponseParser | null = null;
  decision: Decision = ALLOW;
  /** Findings in the request's prompt segments; null until inspected (or when detection is off). */
  requestFindings: ExchangeFinding[] | null = null;
  /** Set when inspection could not run; policy.on_failure decides what follows. */
  inspectFailure: { kind: InspectFailureKind; code: ErrorCode; message: string } | null = null;
  /** ms spent in detection (waiting for it included). */
  inspectMs = 0;
  /** Findings in the response text and the tool calls the model made; null until scanned. */
  responseFindings: ExchangeFinding[] | null = null;
  /** Settles when the response scan is done (it runs after the last byte reached the client). */
  responseInspection: Promise<void> | null = null;
  /** What policy says about the response: after the fact, or the block that cut a stream. */
  responseDecision: Decision | null = null;
  /** Set by policy: the client gets this response only once all of it has been inspected (non-streamed responses). */
  holdResponse = false;
  /** Set by a stage before the response starts, to see its text as it is reassembled (stream inspection). */
  onResponseText: ((path: string, role: string, text: string) => void) | null = null;
  /** Set by the relay while a response streams: ends it with an in-stream error event (or cuts it) and aborts upstream. */
  interrupt: ((code: ErrorCode, message: string) => void) | null = null;
  /** The body sent upstream instead of the client's (redaction); null when it goes as received. */
  rewrittenBody: Buffer | null = null;
  outcome: Outcome = 'pending';
  error: { code: ErrorCode; message: string } | null = null;

  /** performance.now() stamps; 0 until reached. */
  tUpstreamStart = 0;
  tUpstreamHead = 0;
  tEnd = 0;
  /** Accumulated ms spent in Sluice's own code. */
  ownMs = 0;

  constructor(
    frontDoor: FrontDoor,
    destination: Destination,
    info: RequestInfo,
    clientAddress: string,
    sluiceHeaders: ReadonlyArray<readonly [string, string]>,
    t0: number,
  ) {
    this.startedAt = Date.now();
    this.id = uuidv7(this.startedAt);
    this.t0 = t0;
    this.frontDoor = frontDoor;
    this.destination = destination;
    this.info = info;
    this.clientAddress = clientAddress;
    this.sluiceHeaders = sluiceHeaders;
  }

  /** Any stage may block; the first block wins and its reason is kept. */
  block(by: string, reason: string): void {
    if (this.decision.action !== 'block') this.decision = { action: 'block', reason, by };
  }

  inspectProblem(message: string): void {
    (this.inspectProblems ??= []).push(message);
  }

  fail(code: ErrorCode, message: string): void {
    if (!this.error) this.error = { code, message };
  }

  latency(): Latency {
    const end = this.tEnd || this.t0;
    return {
      totalMs: end - this.t0,
      ttfbMs: this.tUpstreamHead && this.tUpstreamStart ? this.tUpstreamHead - this.tUpstreamStart : 0,
      ownMs: this.ownMs,
    };
  }
}
