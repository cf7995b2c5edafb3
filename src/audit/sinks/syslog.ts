// Syslog sink transport: one RFC 5424 message per audit record, over TCP or TLS, octet-counted (RFC 6587 §3.4.1)
// so a record may hold any character and the receiver never splits or merges messages.

import { connect as netConnect, isIP, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import type { Batch, Transport } from './delivery';
import { recordFacts } from './record';

const FACILITY_LOCAL0 = 16;
/** RFC 5424 severities: block → warning, alert → notice, everything else → informational. */
const SEVERITY: Record<string, number> = { block: 4, alert: 5 };
const SEVERITY_INFO = 6;
/** SD-ID `name@PEN`; 32473 is the example Private Enterprise Number (RFC 5612), until Sluice has its own. */
const SD_ID = 'sluice@32473';
const APP_NAME = 'sluice';
const CONNECT_TIMEOUT_MS = 10_000;
/** A receiver that stops reading fills the socket buffers; past this the connection is dropped and retried. */
const WRITE_TIMEOUT_MS = 30_000;
/** How long the connection must outlive a batch before it counts as delivered. */
const SETTLE_MS = 500;
/** Unconfirmed bytes held for resending; a full window waits for the oldest batch to settle (≈ 32 MiB/s at most). */
const MAX_PENDING_BYTES = 16 << 20;
const KEEPALIVE_MS = 30_000;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

export interface SyslogOptions {
  host: string;
  port: number;
  tls: boolean;
  /** PEM text of an extra CA trusted for the receiver's certificate (tls only). */
  ca: string | null;
}

/**
 * TCP has no application acknowledgement: a write callback only means our kernel took the bytes, and a receiver
 * that restarts drops whatever still sits unread in the socket buffers. So a batch counts as delivered only once
 * the same connection has taken a later batch and stayed up SETTLE_MS after the batch was written (with nothing
 * more to send, the SETTLE_MS alone): a healthy receiver reads within that, and one that goes away closes or
 * resets the connection, which is seen. Until then the batch is held (up to MAX_PENDING_BYTES) and sent again, first,
 * on the next connection. Left open: a receiver that stalls longer than SETTLE_MS and then dies, or that loses
 * what it read; plain TCP syslog cannot close that (RELP could). At least once; records carry seq and id.
 */
export class SyslogTransport implements Transport {
  readonly #opts: SyslogOptions;
  readonly #label: string;
  readonly #hostname: string;
  #socket: Socket | null = null;
  /** A connection being set up, so close() need not wait out CONNECT_TIMEOUT_MS. */
  #connecting: Socket | null = null;
  /** Written on the current connection but not yet confirmed, oldest first; `at` is when its write completed. */
  #pending: Array<{ batch: Batch; at: number; bytes: number }> = [];
  #pendingBytes = 0;
  #closed = false;

  constructor(opts: SyslogOptions) {
    this.#opts = opts;
    this.#label = `syslog ${opts.tls ? 'tls' : 'tcp'}://${opts.host}:${opts.port}`;
    this.#hostname = printable(hostname(), 255);
  }

  get connected(): boolean {
    return this.#socket !== null && !this.#socket.destroyed;
  }

  async send(batch: Batch): Promise<Batch[]> {
    const socket = await this.#connection();
    if (this.#pendingBytes >= MAX_PENDING_BYTES) await this.#outlive(socket, this.#pending[0]!.at);
    const frames = this.#frames([batch]);
    await this.#write(socket, frames);
    this.#pending.push({ batch, at: performance.now(), bytes: frames.length });
    this.#pendingBytes += frames.length;
    // The newest waits for a later batch or settle(); older ones are in once the connection outlived them.
    return this.#confirm(this.#pending.length - 1, performance.now() - SETTLE_MS);
  }

  async settle(): Promise<Batch[]> {
    if (this.#pending.length === 0) return [];
    const socket = await this.#connection();
    await this.#outlive(socket, this.#pending.at(-1)!.at);
    return this.#confirm(this.#pending.length, Infinity);
  }

  /** Takes, oldest first, up to `limit` pending batches written at or before `cutoff`. */
  #confirm(limit: number, cutoff: number): Batch[] {
    let n = 0;
    while (n < limit && this.#pending[n]!.at <= cutoff) this.#pendingBytes -= this.#pending[n++]!.bytes;
    return this.#pending.splice(0, n).map((p) => p.batch);
  }

  /** Resolves once SETTLE_MS has passed since `at` with `socket` still open; rejects if it closes first. */
  #outlive(socket: Socket, at: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onClose = () => {
        clearTimeout(timer);
        reject(new Error(`${this.#label}: the receiver closed the connection before the last records were confirmed`));
      };
      const timer = setTimeout(
        () => {
          socket.off('close', onClose);
          resolve();
        },
        Math.max(0, at + SETTLE_MS - performance.now()),
      );
      socket.once('close', onClose);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#connecting?.destroy(new Error('sink closed'));
    this.#socket?.destroy();
    this.#socket = null;
  }

  /** The open connection, or a new one on which the pending batches have been sent again. */
  async #connection(): Promise<Socket> {
    if (this.#closed) throw new Error(`${this.#label}: sink closed`);
    if (this.#socket && !this.#socket.destroyed) return this.#socket;
    this.#socket = null;
    const socket = await this.#open();
    if (this.#closed) {
      socket.destroy();
      throw new Error(`${this.#label}: sink closed`);
    }
    this.#socket = socket;
    if (this.#pending.length > 0) {
      await this.#write(socket, this.#frames(this.#pending.map((p) => p.batch)));
      const at = performance.now();
      for (const p of this.#pending) p.at = at;
    }
    return socket;
  }

  #open(): Promise<Socket> {
    const { host, port, tls, ca } = this.#opts;
    return new Promise((resolve, reject) => {
      const socket = tls
        ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...(ca ? { ca: [...rootCertificates, ca] } : {}) })
        : netConnect({ host, port });
      this.#connecting = socket;
      const timer = setTimeout(() => socket.destroy(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      const fail = (err: Error) => {
        clearTimeout(timer);
        this.#connecting = null;
        socket.destroy();
        reject(new Error(`${this.#label}: ${err.message}`, { cause: err }));
      };
      socket.once('error', fail);
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        this.#connecting = null;
        socket.off('error', fail);
        // Errors surface through the pending write or settle (via 'close'); this only keeps them from being uncaught.
        socket.on('error', () => undefined);
        socket.setKeepAlive(true, KEEPALIVE_MS);
        // The receiver sends nothing; reading is how its close (FIN or reset) is seen at all.
        socket.resume();
        resolve(socket);
      });
    });
  }

  #write(socket: Socket, data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err?: Error | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.off('close', onClose);
        if (err) {
          socket.destroy();
          reject(new Error(`${this.#label}: ${err.message}`, { cause: err }));
        } else resolve();
      };
      const onClose = () => finish(new Error('the receiver closed the connection'));
      const timer = setTimeout(() => finish(new Error(`write timed out after ${WRITE_TIMEOUT_MS} ms; the receiver stopped reading`)), WRITE_TIMEOUT_MS);
      socket.once('close', onClose);
      socket.write(data, finish);
    });
  }

  #frames(batches: Batch[]): Buffer {
    let out = '';
    for (const batch of batches) {
      for (let i = 0; i < batch.lines.length; i++) {
        const msg = this.#message(batch.lines[i]!, batch.seqs[i]!);
        out += `${Buffer.byteLength(msg)} ${msg}`;
      }
    }
    return Buffer.from(out);
  }

  /**
   * `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [sluice@32473 seq id] MSG`. MSG is the record line as written,
   * without the optional UTF-8 BOM (RFC 5424 §6.4 MSG-ANY): SIEM parsers read it as JSON, and a BOM breaks that.
   */
  #message(line: string, seq: number): string {
    const r = recordFacts(line, seq);
    const pri = FACILITY_LOCAL0 * 8 + ((r.decision !== null ? SEVERITY[r.decision] : undefined) ?? SEVERITY_INFO);
    const time = r.time !== null && RFC3339.test(r.time) ? r.time : new Date().toISOString();
    const msgid = r.type !== null ? printable(r.type, 32) : '-';
    const sd = `[${SD_ID} seq="${seq}"${r.id !== null ? ` id="${sdEscape(r.id)}"` : ''}]`;
    return `<${pri}>1 ${time} ${this.#hostname} ${APP_NAME} ${process.pid} ${msgid} ${sd} ${line}`;
  }
}

/** A header field: printable US-ASCII only (RFC 5424 PRINTUSASCII), at most `max` characters, `-` when empty. */
function printable(s: string, max: number): string {
  const v = s.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return v === '' ? '-' : v;
}

/** PARAM-VALUE escaping (RFC 5424 §6.3.3). */
function sdEscape(s: string): string {
  return s.replace(/["\\\]]/g, (c) => `\\${c}`);
}
