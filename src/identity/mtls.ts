// Client certificates on the forward proxy listener (HTTPS_PROXY=https://…): a certificate that verifies against
// tls.client_ca names the caller, second in trust after a signed identity token.

import { readFile } from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';
import type { Config } from '../config/schema';
import { SluiceError } from '../errors';
import type { Identity } from '../pipeline/exchange';

/** The forward listener's TLS settings, loaded and checked at start. */
export interface ProxyTls {
  cert: Buffer;
  key: Buffer;
  /** CA certificates client certificates must chain to; empty when none are asked for. */
  clientCa: Buffer[];
  clientCertRequired: boolean;
}

export interface CertificateIdentity {
  identity: Identity | null;
  /** Why a presented certificate was not accepted (policy.invalid_identity decides what follows). */
  problem: string | null;
}

const NONE: CertificateIdentity = Object.freeze({ identity: null, problem: null });

/** Reads tls.proxy_cert / proxy_key / client_ca; undefined when the forward proxy stays plain HTTP. */
export async function loadProxyTls(config: Config): Promise<ProxyTls | undefined> {
  const { proxy_cert: cert, proxy_key: key, client_ca, client_cert_required } = config.tls;
  if (cert === null && key === null) {
    if (client_ca.length > 0) throw new SluiceError('SLUICE_CONFIG_INVALID', 'tls.client_ca needs tls.proxy_cert and tls.proxy_key: client certificates come with a TLS forward proxy');
    return undefined;
  }
  if (cert === null || key === null) throw new SluiceError('SLUICE_CONFIG_INVALID', 'tls.proxy_cert and tls.proxy_key go together');
  if (client_cert_required && client_ca.length === 0) throw new SluiceError('SLUICE_CONFIG_INVALID', 'tls.client_cert_required needs tls.client_ca to verify the certificates against');
  const read = (setting: string, file: string) =>
    readFile(file).catch((err: Error) => {
      throw new SluiceError('SLUICE_CONFIG_INVALID', `${setting} ${file}: ${err.message}`, { cause: err });
    });
  return {
    cert: await read('tls.proxy_cert', cert),
    key: await read('tls.proxy_key', key),
    clientCa: await Promise.all(client_ca.map((f) => read('tls.client_ca', f))),
    clientCertRequired: client_cert_required,
  };
}

const cache = new WeakMap<TLSSocket, CertificateIdentity>();

/**
 * The identity a connection's client certificate proves: subject CN (else the first SAN email or URI),
 * O as tenant, OU as app. Computed once per connection; plain sockets and no certificate give none.
 */
export function certificateIdentity(socket: TLSSocket): CertificateIdentity {
  if (typeof socket.getPeerCertificate !== 'function') return NONE;
  let r = cache.get(socket);
  if (r) return r;
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) r = NONE;
  else if (!socket.authorized) {
    r = { identity: null, problem: `client certificate refused: ${String(socket.authorizationError ?? 'it does not verify against tls.client_ca')}` };
  } else {
    const subject = first(cert.subject?.CN) ?? /(?:email|URI):([^,\s]+)/.exec(cert.subjectaltname ?? '')?.[1];
    if (!subject) r = { identity: null, problem: 'client certificate refused: it names no subject (CN, email or URI)' };
    else {
      const identity: Identity = { subject, source: 'mtls', verified: true };
      const tenant = first(cert.subject?.O);
      const app = first(cert.subject?.OU);
      if (tenant) identity.tenant = tenant;
      if (app) identity.app = app;
      r = { identity, problem: null };
    }
  }
  cache.set(socket, r);
  return r;
}

/** Subject fields repeat as arrays when a name has the attribute twice; the first one names the caller. */
function first(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s ? s : undefined;
}
