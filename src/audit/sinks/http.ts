// HTTP sink transport: one POST per batch, as Splunk HEC events or an Elastic `_bulk` NDJSON body.
// 2xx is delivered; anything else is a failure the core retries with backoff, with the receiver's own words kept.

import { hostname } from 'node:os';
import { rootCertificates } from 'node:tls';
import { Pool } from 'undici';
import type { Batch, Transport } from './delivery';
import { recordFacts } from './record';

const REQUEST_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;
/** Enough of a receiver's error body to say why, without logging a whole HTML error page. */
const MAX_REASON_CHARS = 500;

export interface HttpOptions {
  url: URL;
  format: 'hec' | 'ndjson';
  token: string | null;
  /** PEM text of an extra CA trusted for the receiver's certificate. */
  ca: string | null;
}

export class HttpTransport implements Transport {
  readonly #opts: HttpOptions;
  readonly #pool: Pool;
  readonly #path: string;
  readonly #headers: Record<string, string>;
  readonly #host = hostname();
  #connected = false;

  constructor(opts: HttpOptions) {
    this.#opts = opts;
    this.#path = opts.url.pathname + opts.url.search;
    this.#pool = new Pool(opts.url.origin, {
      connections: 1,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
      connect: { timeout: CONNECT_TIMEOUT_MS, ...(opts.ca ? { ca: [...rootCertificates, opts.ca] } : {}) },
    });
    const auth = opts.token === null ? null : opts.format === 'hec' ? `Splunk ${opts.token}` : `Bearer ${opts.token}`;
    this.#headers = {
      'content-type': opts.format === 'hec' ? 'application/json' : 'application/x-ndjson',
      ...(auth ? { authorization: auth } : {}),
    };
  }

  get connected(): boolean {
    return this.#connected;
  }

  async send(batch: Batch): Promise<Batch[]> {
    const body = this.#opts.format === 'hec' ? this.#hec(batch) : ndjson(batch);
    let status: number;
    let text: string;
    try {
      const res = await this.#pool.request({ method: 'POST', path: this.#path, headers: this.#headers, body });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      this.#connected = false;
      const e = err as Error & { code?: string };
      throw new Error(`http ${this.#opts.url.origin}: ${e.message}${e.code ? ` (${e.code})` : ''}`, { cause: err });
    }
    this.#connected = true;
    if (status < 200 || status > 299) throw new Error(`http ${this.#opts.url.origin}: ${status} ${reason(text)}`);
    if (this.#opts.format === 'ndjson') {
      const failed = bulkItemFailure(text);
      if (failed) throw new Error(`http ${this.#opts.url.origin}: ${failed}`);
    }
    return [batch];
  }

  async settle(): Promise<Batch[]> {
    return [];
  }

  async close(): Promise<void> {
    this.#connected = false;
    await this.#pool.destroy().catch(() => undefined);
  }

  /** Splunk HEC: one event object per record, the record itself as `event` (the line as written, not re-encoded). */
  #hec(batch: Batch): string {
    let out = '';
    for (let i = 0; i < batch.lines.length; i++) {
      const line = batch.lines[i]!;
      const r = recordFacts(line, batch.seqs[i]!);
      const ms = r.time !== null ? Date.parse(r.time) : NaN;
      const time = (Number.isNaN(ms) ? Date.now() : ms) / 1000;
      out += `{"time":${time},"host":${JSON.stringify(this.#host)},"source":"sluice","sourcetype":"sluice:audit","event":${line}}\n`;
    }
    return out;
  }
}

/** Elastic `_bulk`: a `create` keyed by the record id, so a batch sent twice is stored once. */
function ndjson(batch: Batch): string {
  let out = '';
  for (let i = 0; i < batch.lines.length; i++) {
    const line = batch.lines[i]!;
    const r = recordFacts(line, batch.seqs[i]!);
    out += `{"create":{"_id":${JSON.stringify(r.id ?? String(r.seq))}}}\n${line}\n`;
  }
  return out;
}

/**
 * `_bulk` answers 200 even when items failed. A 409 is the de-duplication working (the record is already there);
 * any other failed item fails the batch, naming the first cause, and the whole batch is retried (409s again).
 */
function bulkItemFailure(text: string): string | null {
  let body: { errors?: boolean; items?: Array<Record<string, { status?: number; error?: { type?: string; reason?: string } }>> };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    return null;
  }
  if (body.errors !== true || !Array.isArray(body.items)) return null;
  let failed = 0;
  let first = '';
  for (const item of body.items) {
    const result = Object.values(item)[0];
    const status = result?.status ?? 0;
    if ((status >= 200 && status < 300) || status === 409) continue;
    failed++;
    first ||= `${status} ${result?.error?.type ?? ''}: ${result?.error?.reason ?? ''}`;
  }
  return failed > 0 ? `${failed} of ${body.items.length} bulk items failed, first: ${reason(first)}` : null;
}

function reason(text: string): string {
  const t = text.trim().replace(/\s+/g, ' ');
  return t.length > MAX_REASON_CHARS ? `${t.slice(0, MAX_REASON_CHARS)}…` : t;
}
