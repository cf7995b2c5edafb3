// Client-side TLS termination for intercepted CONNECT tunnels and the transparent listener,
// and the handshake-failure ledger: which clients refuse Sluice's certificate for which host (pinning).

import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import type { CertificateAuthority } from './ca';

/**
 * Why a client's handshake with Sluice failed:
 * - `rejected_certificate`: the client sent a certificate alert (it pins, or does not trust Sluice's CA);
 * - `closed`: it hung up mid-handshake without saying why (what many pinning clients do);
 * - `timeout`: it never finished within tls.handshake_timeout_ms;
 * - `no_sni` / `refused_sni`: transparent mode could not choose, or refused, a certificate;
 * - `protocol`: what arrived was not TLS, or no protocol both sides speak.
 */
export type HandshakeFailureReason = 'rejected_certificate' | 'closed' | 'timeout' | 'no_sni' | 'refused_sni' | 'protocol';

export interface HandshakeFailure {
  destination: string;
  client: string;
  reason: HandshakeFailureReason;
  count: number;
  /** The last failure's message. */
  message: string;
  /** Epoch ms of the last failure. */
  last: number;
}

export interface TerminateOptions {
  /** Connection target (CONNECT host), or null to choose the certificate from the client's SNI. */
  host: string | null;
  /** Bytes that arrived with the CONNECT request, already read off the socket. */
  head?: Buffer;
  /** Transparent mode: whether an SNI may be served; returning a string refuses it with that reason. */
  acceptSni?(servername: string): true | string;
}

export type TerminateResult =
  | { ok: true; socket: TLSSocket; servername: string }
  | { ok: false; reason: HandshakeFailureReason; message: string; servername: string };

const CERT_ALERT = /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED|DECRYPT_ERROR)/;
const MAX_LEDGER = 10_000;

export class TlsTerminator {
  readonly #ca: CertificateAuthority;
  readonly #timeoutMs: number;
  readonly #failures = new Map<string, HandshakeFailure>();
  /** No certificate: a transparent client without SNI gets a failed handshake, not someone else's leaf. */
  readonly #empty: SecureContext = createSecureContext({});
  #completed = 0;

  constructor(ca: CertificateAuthority, options: { handshakeTimeoutMs: number }) {
    this.#ca = ca;
    this.#timeoutMs = options.handshakeTimeoutMs;
  }

  get ca(): CertificateAuthority {
    return this.#ca;
  }

  /** Runs the server side of a handshake on `raw`; never throws, a failure is returned (and the socket destroyed). */
  async terminate(raw: Socket, options: TerminateOptions): Promise<TerminateResult> {
    let servername = options.host ?? '';
    let context: SecureContext;
    if (options.host !== null) {
      raw.pause();
      try {
        context = await this.#ca.context(options.host);
      } catch (err) {
        raw.destroy();
        return { ok: false, reason: 'protocol', message: `no certificate for ${options.host}: ${(err as Error).message}`, servername };
      }
    } else {
      context = this.#empty;
    }
    return new Promise<TerminateResult>((resolve) => {
      let sniAsked = false;
      let refused: string | null = null;
      let settled = false;
      const stream = options.head?.length ? withHead(raw, options.head) : raw;
      const tls = new TLSSocket(stream, {
        isServer: true,
        secureContext: context,
        ALPNProtocols: ['http/1.1'],
        ...(options.host === null
          ? {
              SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
                sniAsked = true;
                servername = name.toLowerCase();
                const verdict = options.acceptSni?.(servername) ?? true;
                if (verdict !== true) {
                  refused = verdict;
                  cb(new Error(verdict));
                  return;
                }
                this.#ca.context(servername).then(
                  (ctx) => cb(null, ctx),
                  (err: Error) => cb(err),
                );
              },
            }
          : {}),
      });
      const finish = (r: TerminateResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        tls.off('close', onClose);
        if (!r.ok) {
          tls.destroy();
          raw.destroy();
        }
        resolve(r);
      };
      const fail = (reason: HandshakeFailureReason, message: string) => finish({ ok: false, reason, message, servername });
      const timer = setTimeout(() => fail('timeout', `TLS handshake not finished within ${this.#timeoutMs} ms`), this.#timeoutMs);
      const onClose = () => fail('closed', 'client closed the connection during the TLS handshake');
      tls.once('secure', () => {
        this.#completed++;
        finish({ ok: true, socket: tls, servername });
      });
      tls.on('error', (err: Error & { code?: string }) => {
        if (settled) return;
        const code = err.code ?? '';
        if (options.host === null && refused !== null) fail('refused_sni', refused);
        else if (options.host === null && !sniAsked) fail('no_sni', 'the client sent no SNI, so no certificate can be chosen');
        else if (CERT_ALERT.test(code)) fail('rejected_certificate', `client refused Sluice's certificate (${code}): it pins or does not trust the CA`);
        else if (code === 'ECONNRESET') fail('closed', 'client reset the connection during the TLS handshake');
        else fail('protocol', `${err.message}${code ? ` (${code})` : ''}`);
      });
      tls.once('close', onClose);
    });
  }

  /** Counts a failed handshake against (destination, client); the ledger is bounded. */
  recordFailure(destination: string, client: string, reason: HandshakeFailureReason, message: string): void {
    const key = `${destination}\n${client}\n${reason}`;
    const f = this.#failures.get(key);
    if (f) {
      f.count++;
      f.message = message;
      f.last = Date.now();
      return;
    }
    if (this.#failures.size >= MAX_LEDGER) {
      // Oldest entry out: the ledger answers "who pins what lately", not history (the audit log keeps that).
      const first = this.#failures.keys().next().value;
      if (first !== undefined) this.#failures.delete(first);
    }
    this.#failures.set(key, { destination, client, reason, count: 1, message, last: Date.now() });
  }

  stats(): { handshakes: number; failures: HandshakeFailure[]; leaves: ReturnType<CertificateAuthority['stats']> } {
    return {
      handshakes: this.#completed,
      failures: [...this.#failures.values()].sort((a, b) => b.count - a.count).map((f) => ({ ...f })),
      leaves: this.#ca.stats(),
    };
  }
}

/**
 * The CONNECT head (bytes a client sent before waiting for our 200) must reach TLS first. A TLSSocket over
 * a net.Socket reads the handle directly and would skip them, so such rare clients get a stream in between.
 */
function withHead(raw: Socket, head: Buffer): Duplex {
  const d = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      raw.write(chunk, cb);
    },
    final(cb) {
      raw.end();
      cb();
    },
    destroy(err, cb) {
      raw.destroy(err ?? undefined);
      cb(err);
    },
  });
  d.push(head);
  raw.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) raw.pause();
  });
  raw.on('end', () => d.push(null));
  raw.on('error', (err) => d.destroy(err));
  raw.on('close', () => d.destroy());
  return d;
}
