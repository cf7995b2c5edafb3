// Every error Sluice raises or answers with, each with a stable code callers branch on.
// The HTTP status is what a client sees when the error ends its exchange.

export const ErrorCodes = {
  SLUICE_BODY_TOO_LARGE: { status: 413, hint: 'raise limits.max_request_bytes or send a smaller body' },
  SLUICE_UNKNOWN_ROUTE: { status: 404, hint: 'use one of the gateway prefixes listed in the error' },
  SLUICE_BAD_REQUEST: { status: 400, hint: 'fix the request line or headers' },
  SLUICE_UPSTREAM_UNREACHABLE: { status: 502, hint: 'check DNS, network egress and the upstreams override for this host' },
  SLUICE_UPSTREAM_TLS: { status: 502, hint: 'the provider certificate did not verify; check the trust store' },
  SLUICE_UPSTREAM_TIMEOUT: { status: 504, hint: 'the provider did not answer within limits.upstream_timeout_ms' },
  SLUICE_UPSTREAM_ABORTED: { status: 502, hint: 'the provider closed the connection mid-response' },
  SLUICE_UPSTREAM_ERROR: { status: 502, hint: 'the upstream request failed; see the message' },
  SLUICE_CLIENT_ABORTED: { status: 499, hint: 'the client went away before the response finished' },
  SLUICE_SHUTTING_DOWN: { status: 503, hint: 'the proxy is draining; retry on another instance' },
  SLUICE_PROXY_AUTH: { status: 407, hint: 'put valid user:password in the proxy URL (interception.proxy_auth)' },
  SLUICE_CONNECT_DENIED: { status: 403, hint: 'the CONNECT target is refused by interception config (deny list, ports, IP literals)' },
  SLUICE_CONNECT_LOOP: { status: 403, hint: 'the target is this proxy itself; check the client proxy settings and upstreams' },
  SLUICE_MISDIRECTED: { status: 421, hint: 'open a separate connection for each host' },
  SLUICE_CLIENT_TLS: { status: 400, hint: 'the client refused or never finished the TLS handshake; trust `sluice ca path` or tunnel pinned hosts' },
  SLUICE_UNAUTHENTICATED: { status: 401, hint: 'send a valid identity token (identity.header), or none' },
  SLUICE_ADMIN_AUTH: { status: 401, hint: 'send Authorization: Bearer <the token in admin.token_file> to the admin listener' },
  SLUICE_BLOCKED: { status: 403, hint: 'the request was blocked by policy' },
  SLUICE_CONFIG_INVALID: { status: 500, hint: 'fix the configuration file' },
  SLUICE_LISTEN_FAILED: { status: 500, hint: 'the address is in use or not allowed' },
  SLUICE_RULE_INVALID: { status: 500, hint: 'fix the named rule in its rule pack' },
  SLUICE_ENGINE_ERROR: { status: 500, hint: 'the detection engine failed; see the message' },
  SLUICE_INSPECT_TIMEOUT: { status: 503, hint: 'inspection took longer than detect.timeout_ms; raise it or add detect.threads' },
  SLUICE_INSPECT_CRASHED: { status: 503, hint: 'a detection worker died mid-scan; it was replaced, see the log for the cause' },
  SLUICE_INSPECT_OVERLOADED: { status: 503, hint: 'the detection queue is full; add detect.threads or reduce load' },
  SLUICE_AUDIT_WRITE: { status: 503, hint: 'the audit log cannot be written (disk full, read-only or failing); free space or fix audit.dir, see /healthz' },
  SLUICE_AUDIT_UNREADABLE: { status: 500, hint: 'the audit directory or a file in it cannot be read; check the path and its permissions' },
  SLUICE_AUDIT_PROOF: { status: 404, hint: 'no sealed record matches; check the seq or exchange id, or wait for its batch to close' },
  SLUICE_INTERNAL: { status: 500, hint: 'a bug in Sluice; the request failed but the proxy keeps serving' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SluiceError';
    this.code = code;
    this.status = ErrorCodes[code].status;
  }
}

/** Maps an undici/system error from the upstream leg to the Sluice code a client should see. */
export function upstreamErrorCode(err: unknown): ErrorCode {
  const code = (err as { code?: string } | null)?.code ?? '';
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'SLUICE_UPSTREAM_TIMEOUT';
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ECONNRESET':
      return 'SLUICE_UPSTREAM_UNREACHABLE';
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'SLUICE_UPSTREAM_ABORTED';
    default:
      if (/^(ERR_TLS|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED)/.test(code)) return 'SLUICE_UPSTREAM_TLS';
      return 'SLUICE_UPSTREAM_ERROR';
  }
}

/** A one-line description of an upstream failure naming host and cause, for clients and records. */
export function describeUpstreamError(err: unknown, host: string): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } } | null;
  const code = e?.code ?? e?.cause?.code ?? 'unknown';
  const msg = e?.message ?? String(err);
  return `upstream ${host}: ${msg} (${code})`;
}

export function bodyTooLargeMessage(size: number, max: number): string {
  return `request body of ${size} bytes exceeds limits.max_request_bytes (${max}); nothing was forwarded`;
}
