// Upstream connections: one keep-alive undici Pool per origin, created on first use.
// Timeouts come from limits.upstream_timeout_ms; TLS verifies against the trust built in trust.ts.

import { isIP } from 'node:net';
import type { SecureContext } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';

export interface UpstreamOptions {
  connectionsPerOrigin: number;
  timeoutMs: number;
  /** Roots upstream certificates are verified against (trust.ts); Node's defaults when absent. */
  trust?: SecureContext;
}

export class Upstreams {
  private readonly pools = new Map<string, Pool>();
  /** TLS server name per origin: the host dialled, not the Host header (which names the provider). */
  private readonly servernames = new Map<string, string | undefined>();
  private readonly opts: UpstreamOptions;

  constructor(opts: UpstreamOptions) {
    this.opts = opts;
  }

  /** Sends a request with a raw undici handler (no stream objects on the hot path). */
  dispatch(origin: string, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.opts.connectionsPerOrigin,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
        connect: {
          timeout: Math.min(this.opts.timeoutMs, 30_000),
          ...(this.opts.trust ? { secureContext: this.opts.trust } : {}),
        },
      });
      this.pools.set(origin, pool);
      const host = new URL(origin).hostname;
      this.servernames.set(origin, isIP(host.replace(/^\[|\]$/g, '')) ? undefined : host);
    }
    // Without it undici takes SNI from the Host header, which is wrong behind an `upstreams`
    // override that points at an HTTPS relay, and costs an IP-literal regex on every request.
    const servername = this.servernames.get(origin);
    if (servername) (options as Dispatcher.DispatchOptions & { servername?: string }).servername = servername;
    pool.dispatch(options, handler);
  }

  /** Closes idle connections and waits for in-flight requests (callers drain first). */
  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}
